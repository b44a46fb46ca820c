"""Captioner interface, template captions, the caption cache and reviewed imports."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from builders.captions import (
    Captioner,
    CaptionRequest,
    CaptionTarget,
    caption_dataset,
    caption_target,
    create_captioner,
    evenly_spaced,
    import_captions,
)
from toolkit_fixture import ACCESSORIES, make_toolkit_dataset
from vreid_bench import cli_caption
from vreid_bench.datasets import load
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, UnknownNameError

ACCESSORY_PHRASES = {phrase for group in ACCESSORIES for phrase in group}


class SpyCaptioner(Captioner):
    """Records what it is asked; its caption names the tracklet so tests can tell runs apart."""

    frames_per_request = 3

    def __init__(self, prompt_id: str = "p1", name: str = "spy", fail_after_batches: int | None = None) -> None:
        self.name = name
        self.prompt_id = prompt_id
        self.batches: list[list[CaptionRequest]] = []
        self.fail_after_batches = fail_after_batches

    def caption_batch(self, requests: Sequence[CaptionRequest]) -> list[str]:
        if self.fail_after_batches is not None and len(self.batches) >= self.fail_after_batches:
            raise KeyboardInterrupt  # the run is killed mid-way
        self.batches.append(list(requests))
        return [f"{self.prompt_id} caption of {r.tracklet_id}" for r in requests]

    @property
    def requests(self) -> list[CaptionRequest]:
        return [r for batch in self.batches for r in batch]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_toolkit_dataset(tmp_path)


def everything(dataset_dir: Path) -> CaptionTarget:
    """Every tracklet of the dataset, test ones too (the audit's captions): the cache tests need more than 6."""
    return caption_target(dataset_dir, include_test=True)


def read_rows(dataset_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (dataset_dir / "captions.jsonl").read_text().splitlines()]


def sheet_attributes(dataset_dir: Path, tracklet_id: str) -> tuple[str, dict]:
    """(kind, attributes) of a tracklet's identity, read straight from the files."""
    table = (dataset_dir / "tracklets.csv").read_text().splitlines()
    header = table[0].split(",")
    row = next(dict(zip(header, line.split(","))) for line in table[1:] if line.startswith(tracklet_id + ","))
    sheet = json.loads((dataset_dir / "attributes" / f"{row['video']}.json").read_text())
    return sheet["kind"], sheet["identities"][row["pid"].split(":", 1)[1]]


def visible(key: str, value: object, caption: str, kind: str) -> bool:
    """Whether the caption shows this attribute value (an independent reading of the sentence)."""
    noun = "player" if kind == "sports" else "dancer"
    if key == "jersey_number":
        return re.search(rf"\bnumber {value}\b", caption) is not None
    if key == "jersey_color":
        return re.search(rf"\b{value} team\b", caption, re.IGNORECASE) is not None
    if key == "build":
        return re.search(rf"\b{str(value).removesuffix(' build')} {noun}\b", caption) is not None
    if key == "accessories":
        return {p for p in ACCESSORY_PHRASES if p in caption} == set(value)
    return str(value) in caption


def shown_keys(kind: str) -> tuple[str, ...]:
    identity = ("jersey_color", "jersey_number") if kind == "sports" else ("costume",)
    return (*identity, "hair", "skin_tone", "shoes", "socks", "build", "accessories")


def test_evenly_spaced_keeps_first_and_last() -> None:
    assert evenly_spaced(list(range(10)), 4) == [0, 3, 6, 9]
    assert evenly_spaced(list(range(3)), 8) == [0, 1, 2]
    assert evenly_spaced(list(range(5)), 1) == [2]


@pytest.mark.parametrize("kind", ["sports", "dance"])
def test_template_captions_every_tracklet_with_its_own_attributes(tmp_path: Path, kind: str) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, kind=kind)
    summary = caption_dataset(everything(dataset_dir), create_captioner("template"), progress=False)
    assert (summary.captioned, summary.cached, summary.total) == (12, 0, 12)

    loaded = load(dataset_dir)  # only training tracklets carry captions into a run
    assert len(loaded.train) == 6 and all(t.caption for t in loaded.train)
    assert not any(t.caption for t in (*loaded.query, *loaded.gallery))
    for row in read_rows(dataset_dir):
        assert row["captioner"] == "template" and row["reviewed"] is False and row["hallucinated"] == []
        assert row["caption"].endswith(".") and row["caption"][0].isupper()
        sheet_kind, attributes = sheet_attributes(dataset_dir, row["tracklet_id"])
        for key in shown_keys(kind):
            assert visible(key, attributes[key], row["caption"], sheet_kind), (key, row["caption"])
    forms = {row["caption"].split(" ")[0] + row["caption"][10:30] for row in read_rows(dataset_dir)}
    assert len(forms) > 1, "sentence forms should vary"


def test_hallucination_swaps_about_that_fraction_and_records_it(tmp_path: Path) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, videos=4, ids_per_video=3)
    caption_dataset(everything(dataset_dir), create_captioner("template", hallucination=0.5, seed=3), progress=False)
    swapped = total = 0
    for row in read_rows(dataset_dir):
        kind, attributes = sheet_attributes(dataset_dir, row["tracklet_id"])
        keys = shown_keys(kind)
        assert set(row["hallucinated"]) <= set(keys)
        for key in keys:
            assert visible(key, attributes[key], row["caption"], kind) == (key not in row["hallucinated"]), \
                (key, row["hallucinated"], row["caption"])
        swapped += len(row["hallucinated"])
        total += len(keys)
    assert 0.4 <= swapped / total <= 0.6


def test_same_seed_same_captions_other_seed_different(tmp_path: Path) -> None:
    texts = []
    for folder, seed in (("a", 7), ("b", 7), ("c", 8)):
        dataset_dir = make_toolkit_dataset(tmp_path / folder)
        caption_dataset(dataset_dir, create_captioner("template", hallucination=0.5, seed=seed), progress=False)
        texts.append((dataset_dir / "captions.jsonl").read_text())
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_batch_size_does_not_change_template_captions(tmp_path: Path) -> None:
    texts = []
    for folder, batch_size in (("a", 1), ("b", 5)):
        dataset_dir = make_toolkit_dataset(tmp_path / folder)
        caption_dataset(dataset_dir, create_captioner("template", hallucination=0.3), batch_size, progress=False)
        texts.append((dataset_dir / "captions.jsonl").read_text())
    assert texts[0] == texts[1]


def test_requests_carry_evenly_spaced_frames_and_the_identity_sheet(dataset: Path) -> None:
    spy = SpyCaptioner()
    caption_dataset(everything(dataset), spy, batch_size=5, progress=False)
    assert [len(b) for b in spy.batches] == [5, 5, 2]
    request = next(r for r in spy.requests if r.tracklet_id == "v_fixture_001_t2_c1")
    frames = sorted((dataset / "crops/v_fixture_001/2/v_fixture_001_t2_c1").iterdir())
    assert [Path(f).name for f in request.frames] == [frames[0].name, frames[3].name, frames[5].name]
    assert (request.video, request.track_id) == ("v_fixture_001", "2")
    assert dict(request.attributes) == sheet_attributes(dataset, request.tracklet_id)[1]


def test_cache_skips_captioned_tracklets_per_captioner_and_prompt(dataset: Path) -> None:
    first = SpyCaptioner("p1")
    caption_dataset(everything(dataset), first, progress=False)
    assert len(first.requests) == 12

    again = SpyCaptioner("p1")
    summary = caption_dataset(everything(dataset), again, progress=False)
    assert again.requests == [] and (summary.captioned, summary.cached) == (0, 12)

    forced = SpyCaptioner("p1")
    caption_dataset(everything(dataset), forced, overwrite=True, progress=False)
    assert len(forced.requests) == 12

    new_prompt = SpyCaptioner("p2")
    caption_dataset(everything(dataset), new_prompt, progress=False)
    assert len(new_prompt.requests) == 12
    assert len(read_rows(dataset)) == 24
    assert all(t.caption.startswith("p2 ") for t in load(dataset).train)

    # Re-running the first prompt is all cached, yet its captions become the current ones again.
    back = SpyCaptioner("p1")
    caption_dataset(everything(dataset), back, progress=False)
    assert back.requests == []
    assert all(t.caption.startswith("p1 ") for t in load(dataset).train)
    assert len(read_rows(dataset)) == 24


def test_interrupted_run_keeps_its_checkpoint_and_resumes(dataset: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        caption_dataset(everything(dataset), SpyCaptioner(fail_after_batches=2), batch_size=4, progress=False,
                        checkpoint_seconds=0)
    assert len(read_rows(dataset)) == 8
    assert sum(t.caption is not None for t in load(dataset).train) == 6

    resumed = SpyCaptioner()
    summary = caption_dataset(everything(dataset), resumed, batch_size=4, progress=False)
    assert (summary.captioned, summary.cached, len(resumed.requests)) == (4, 8, 4)
    assert len(read_rows(dataset)) == 12


def test_torn_last_line_is_dropped_and_the_file_repaired(dataset: Path) -> None:
    caption_dataset(dataset, SpyCaptioner(), progress=False)
    path = dataset / "captions.jsonl"
    text = path.read_text()
    last = text.splitlines()[-1]
    path.write_text(text[: len(text) - len(last) - 1] + last[: len(last) // 2])  # a write cut short

    summary = caption_dataset(dataset, SpyCaptioner(), progress=False)
    assert summary.dropped_torn_line and (summary.captioned, summary.cached) == (1, 5)
    assert path.read_text().endswith("\n") and len(read_rows(dataset)) == 6
    assert all(t.caption for t in load(dataset).train)


def test_bad_line_before_the_end_is_an_error_naming_it(dataset: Path) -> None:
    caption_dataset(dataset, SpyCaptioner(), progress=False)
    path = dataset / "captions.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = "not json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"captions\.jsonl:3:"):
        caption_dataset(dataset, SpyCaptioner(), progress=False)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_import_round_trip(dataset: Path, tmp_path: Path, suffix: str) -> None:
    caption_dataset(dataset, create_captioner("template"), progress=False)
    reviewed = {"v_fixture_000_t1_c0": "A player in red, number 4, checked by hand.",
                "v_fixture_000_t3_c1": 'Red team, "number 12", with short hair.'}
    file = tmp_path / f"reviewed{suffix}"
    if suffix == ".jsonl":
        file.write_text("".join(json.dumps({"tracklet_id": k, "caption": v}) + "\n" for k, v in reviewed.items()))
    else:
        file.write_text("tracklet_id,caption\n" + "".join(f'{k},"{v.replace(chr(34), 2 * chr(34))}"\n'
                                                          for k, v in reviewed.items()))
    summary = import_captions(dataset, file)
    assert (summary.imported, summary.total) == (2, 6)

    imported = [r for r in read_rows(dataset) if r["captioner"] == "import"]
    assert {r["tracklet_id"]: r["caption"] for r in imported} == reviewed
    assert all(r["reviewed"] is True for r in imported)
    loaded = load(dataset)
    captions = {t.tracklet_id: t.caption for t in loaded.train}
    template = {r["tracklet_id"]: r["caption"] for r in read_rows(dataset) if r["captioner"] == "template"}
    assert captions == {**template, **reviewed}
    assert loaded.captions is not None and loaded.captions.count == 6
    only_reviewed = load(dataset, captions="import")
    assert {t.tracklet_id: t.caption for t in only_reviewed.train if t.caption} == reviewed
    assert only_reviewed.captions.sha256 != loaded.captions.sha256


def test_a_caption_for_a_test_tracklet_is_refused_for_training(dataset: Path, tmp_path: Path) -> None:
    file = tmp_path / "reviewed.jsonl"
    file.write_text('{"tracklet_id": "v_fixture_000_t1_c0", "caption": "ok"}\n'
                    '{"tracklet_id": "v_fixture_001_t2_c1", "caption": "a query"}\n')
    with pytest.raises(DatasetFormatError, match=r"1 caption\(s\) are for test tracklets .*'v_fixture_001_t2_c1'.*"
                                                 r"--include-test"):
        import_captions(dataset, file)
    assert not (dataset / "captions.jsonl").exists()
    assert import_captions(everything(dataset), file).imported == 2  # kept for the audit ...
    loaded = load(dataset)
    assert not any(t.caption for t in (*loaded.query, *loaded.gallery))  # ... and never seen by a run


def test_import_rejects_an_unknown_tracklet_naming_its_line(dataset: Path, tmp_path: Path) -> None:
    file = tmp_path / "reviewed.jsonl"
    file.write_text('{"tracklet_id": "v_fixture_000_t1_c0", "caption": "ok"}\n\n'
                    '{"tracklet_id": "no_such_tracklet", "caption": "x"}\n')
    with pytest.raises(DatasetFormatError, match=r"reviewed\.jsonl: 1 tracklet id\(s\) are not in .*'no_such_tracklet'"):
        import_captions(dataset, file)
    assert not (dataset / "captions.jsonl").exists()


def test_template_without_attribute_sheets_says_what_to_use(tmp_path: Path) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, attributes=False)
    with pytest.raises(ConfigError, match=r"attribute sheet.*--import"):
        caption_dataset(dataset_dir, create_captioner("template"), progress=False)
    assert not (dataset_dir / "captions.jsonl").exists()


def test_captioner_names_and_options_are_checked() -> None:
    with pytest.raises(UnknownNameError, match="'phi4'.*template"):
        create_captioner("phi4")
    with pytest.raises(ConfigError, match="hallucination 1.5"):
        create_captioner("template", hallucination=1.5)
    with pytest.raises(ConfigError, match="no option temperature; its options are: hallucination, seed"):
        create_captioner("template", temperature=0.1)
    assert create_captioner("template", seed=1).prompt_id != create_captioner("template", seed=2).prompt_id


def cli_app() -> typer.Typer:
    app = typer.Typer()
    cli_caption.register(app)
    return app


def test_cli_caption_summary_cache_and_import(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    app = cli_app()
    first = runner.invoke(app, ["caption", "--dataset", str(dataset), "--hallucination", "0.2", "--seed", "4"])
    assert first.exit_code == 0, first.output
    assert "6 tracklets to caption (0 already captioned) × 4 frames each" in first.output
    assert "captioned 6, cached 0, total 6" in first.output
    second = runner.invoke(app, ["caption", "--dataset", str(dataset), "--captioner", "template", "--hallucination",
                                 "0.2", "--seed", "4", "--batch-size", "3"])
    assert "captioned 0, cached 6, total 6" in second.output

    file = tmp_path / "reviewed.csv"
    file.write_text("tracklet_id,caption\nv_fixture_000_t2_c1,A blue player.\n")
    imported = runner.invoke(app, ["caption", "--dataset", str(dataset), "--import", str(file)])
    assert imported.exit_code == 0 and "imported 1 reviewed captions" in imported.output

    both = runner.invoke(app, ["caption", "--dataset", str(dataset), "--import", str(file), "--captioner",
                               "template"])
    assert isinstance(both.exception, ConfigError) and "--captioner" in str(both.exception)


def test_cli_caption_on_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app(), ["caption", "--dataset", str(tmp_path)])
    assert isinstance(result.exception, DatasetNotFoundError)
    assert "manifest.json" in str(result.exception)
