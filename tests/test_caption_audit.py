"""The caption audit: the attribute reader, precision and hallucination against the sheets, distinctiveness,
consistency, its files and its command; and the caption-quality study end to end on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builders.captions import caption_dataset, caption_target, create_captioner, import_captions
from builders.captions.attributes import read_statements, truth_statements
from builders.captions.audit import audit_captions, token_similarity, write_audit
from toolkit_fixture import make_toolkit_dataset
from vreid_bench import cli, cli_caption
from vreid_bench.datasets import load
from vreid_bench.errors import DatasetFormatError


def audited(dataset_dir: Path, **options: object):
    return audit_captions(load(dataset_dir, captions="none"), similarity="tokens", **options)


def test_the_reader_finds_each_attribute_in_free_text() -> None:
    said = read_statements("Red team, number 17: a short stocky player with black hair in a ponytail and dark "
                           "brown skin who wears white shoes, grey crew socks, a white headband and a blue knee "
                           "sleeve on the right knee.")
    assert said == {"team": {"red"}, "number": {"17"}, "build": {"short stocky"}, "hair": {"black ponytail"},
                    "skin": {"dark brown"}, "shoes": {"white"}, "socks": {"grey crew"},
                    "accessories": {"white headband", "blue knee sleeve right"}}
    # Punctuation and "and" end a phrase: the shoes' colour is not read as the hair's.
    assert read_statements("white shoes, black hair; no. 23")["hair"] == {"black"}
    assert read_statements("He has a shaved head.")["hair"] == {"shaved"}
    assert read_statements("The weather is nice.") == {}


def test_a_sheet_read_as_truth_states_every_shown_attribute() -> None:
    truth = truth_statements({"team": "home", "jersey_color": "red", "jersey_number": "7", "build": "tall slim build",
                              "hair": "short curly dark brown hair", "skin_tone": "tan skin", "shoes": "neon yellow shoes",
                              "socks": "navy knee-high socks", "accessories": []}, "sports")
    assert truth == {"team": {"red"}, "number": {"7"}, "build": {"tall slim"}, "hair": {"short curly dark brown"},
                     "skin": {"tan"}, "shoes": {"neon yellow"}, "socks": {"navy knee-high"},
                     "accessories": frozenset()}


@pytest.mark.parametrize("kind", ["sports", "dance"])
def test_exact_template_captions_are_all_true_and_a_known_rate_is_measured(tmp_path: Path, kind: str) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, kind=kind, videos=12, ids_per_video=3)
    target = caption_target(dataset_dir, include_test=True)
    caption_dataset(target, create_captioner("template"), progress=False)
    exact = audited(dataset_dir).overall_truth()
    assert exact.statements > 400 and exact.precision == 1.0 and exact.recall == 1.0 and exact.hallucination == 0.0

    corrupted = create_captioner("template", hallucination=0.3, seed=1)
    caption_dataset(target, corrupted, progress=False)
    measured = audited(dataset_dir, selector=corrupted.prompt_id).overall_truth()
    assert abs(measured.hallucination - 0.3) <= 0.05, measured


def test_distinctiveness_counts_the_identities_a_caption_does_not_separate(tmp_path: Path) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, videos=1, ids_per_video=3, cameras=2)
    texts = {"1": "A player with black hair and white shoes.", "2": "A player with black hair and white shoes.",
             "3": "A player with blond hair and red shoes."}
    file = tmp_path / "reviewed.jsonl"
    file.write_text("".join(json.dumps({"tracklet_id": f"v_fixture_000_t{track}_c{camera}", "caption": text}) + "\n"
                            for track, text in texts.items() for camera in (0, 1)))
    import_captions(dataset_dir, file)
    rows = {row.identity.split(":")[1]: row for row in audited(dataset_dir).identities}
    assert (rows["1"].confusers, rows["2"].confusers, rows["3"].confusers) == (1, 1, 0)
    assert rows["1"].closest.endswith(":2") and rows["1"].closest_similarity == 1.0
    jaccard = token_similarity([texts["1"], texts["3"]])[0, 1]  # {black, hair, white, shoes} vs {blond, ..., red}
    assert jaccard == pytest.approx(2 / 6) and rows["3"].closest_similarity == pytest.approx(2 / 6, abs=1e-4)


def test_a_statement_against_the_identitys_majority_is_listed(tmp_path: Path) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, videos=1, ids_per_video=1, cameras=3)
    file = tmp_path / "reviewed.jsonl"
    said = {0: "white shoes and black hair", 1: "white shoes and black hair", 2: "black shoes and black hair"}
    file.write_text("".join(json.dumps({"tracklet_id": f"v_fixture_000_t1_c{c}", "caption": text}) + "\n"
                            for c, text in said.items()))
    import_captions(dataset_dir, file)
    audit = audited(dataset_dir)
    assert [(c.tracklet_id, c.attribute, c.said, c.majority) for c in audit.contradictions] == [
        ("v_fixture_000_t1_c2", "shoes", "black", "white")]
    assert audit.consistency == {"hair": {"checked": 3, "against": 0}, "shoes": {"checked": 3, "against": 1}}


def test_the_audit_command_writes_its_files_and_tables(tmp_path: Path, cli_with, capsys) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path)
    cli_with(cli_caption)
    assert cli.main(["caption", "--dataset", str(dataset_dir)]) == 0
    capsys.readouterr()
    assert cli.main(["caption", "audit", str(dataset_dir), "--similarity", "tokens"]) == 0
    out = capsys.readouterr().out
    assert "caption audit" in out and "against the attribute sheets" in out and "100.0" in out
    folder = dataset_dir / "caption-audit"
    for name in ("audit.json", "identities.csv", "contradictions.csv", "attributes.csv", "audit.png"):
        assert (folder / name).is_file(), name
    written = json.loads((folder / "audit.json").read_text())
    assert written["truth"][-1]["attribute"] == "all" and written["truth"][-1]["precision"] == 1.0
    assert (folder / "audit.png").read_bytes()[:4] == b"\x89PNG"


def test_auditing_a_dataset_without_captions_says_how_to_make_them(tmp_path: Path, cli_with, capsys) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path)
    cli_with(cli_caption)
    assert cli.main(["caption", "audit", str(dataset_dir)]) == 2
    err = capsys.readouterr().err
    assert "holds no captions to audit" in err and "vreid caption" in err
    assert not (dataset_dir / "caption-audit").exists()
    with pytest.raises(DatasetFormatError):
        audited(dataset_dir)


def test_write_audit_without_sheets_plots_consistency(tmp_path: Path) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, attributes=False)
    file = tmp_path / "reviewed.jsonl"
    file.write_text(json.dumps({"tracklet_id": "v_fixture_000_t1_c0", "caption": "white shoes"}) + "\n")
    import_captions(dataset_dir, file)
    audit = audited(dataset_dir)
    assert audit.truth == []
    folder = write_audit(audit, tmp_path / "out")
    assert (folder / "audit.png").is_file() and not (folder / "attributes.csv").exists()


STUDY_SETS = ("model.backbone=tiny", "input.height=32", "input.width=16", "input.seq_len=2", "sampler.ids_per_batch=3",
              "sampler.instances_per_id=2", "schedule.warmup_epochs=0", "schedule.milestones=[]", "epochs=1")


def test_the_caption_study_trains_every_condition_and_writes_its_table_and_plot(tmp_path: Path, cli_with,
                                                                                capsys) -> None:
    from vreid_bench import cli_study

    dataset_dir = make_toolkit_dataset(tmp_path / "data", videos=2, ids_per_video=3, frames=4, crop_size=(32, 16))
    before = sorted(p.name for p in dataset_dir.iterdir())
    out = tmp_path / "study"
    cli_with(cli_study)
    args = ["study", "captions", "--dataset", str(dataset_dir), "--rates", "0,0.5", "--out", str(out),
            "--device", "cpu", "--workers", "0", *(part for item in STUDY_SETS for part in ("--set", item))]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "Caption quality study" in printed and "placeholder" in printed

    table = json.loads((out / "study.json").read_text())["rows"]
    assert [row["condition"] for row in table] == ["hallucination 0", "hallucination 0.5", "placeholder", "none"]
    assert table[0]["measured_hallucination"] == 0.0 and abs(table[1]["measured_hallucination"] - 0.5) < 0.2
    assert all(row["mAP_low"] <= row["mAP"] <= row["mAP_high"] for row in table)
    assert sum(row["verdict"] == "best" for row in table) == 1
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG" and (out / "study.csv").is_file()
    runs = sorted((out / "runs").rglob("metrics.json"))
    assert len(runs) == 4 and len({json.loads(p.read_text())["captions"]["sha256"]
                                   for p in runs if json.loads(p.read_text())["captions"]}) == 2
    assert sorted(p.name for p in dataset_dir.iterdir()) == before  # the dataset's own captions are untouched

    assert cli.main(args) == 0  # a second run trains nothing again
    assert capsys.readouterr().out.count("skipped, a finished run") == 4


def test_clip_similarity_is_a_cosine_matrix_and_clip_without_weights_says_how(monkeypatch) -> None:
    import numpy as np

    from builders.captions import audit as audit_module
    from vreid_bench.errors import ConfigError

    similar = audit_module.clip_similarity("none", backbone="tiny")  # random weights: the code path, not the values
    matrix = similar(["white shoes", "black hair", "white shoes"])
    assert matrix.shape == (3, 3) and np.allclose(np.diag(matrix), 1.0, atol=1e-5)
    assert matrix[0, 2] == pytest.approx(1.0, abs=1e-5) and matrix[0, 1] < 1.0
    from vreid_bench.models import clip_backbone

    monkeypatch.setattr(clip_backbone, "cached_clip_weights", lambda *args: None)
    with pytest.raises(ConfigError, match="--clip-weights FILE"):
        audit_module.choose_similarity("clip", None)
    assert audit_module.choose_similarity("auto", None)[0].startswith("content-word Jaccard")
