"""Captions for registered datasets: sidecars keyed by stable tracklet ids, imports, and CG-CLIP training on them.

The MARS and iLIDS-VID layouts are the tiny published-layout copies of :mod:`layouts`, with real frames; the
captioner is the tiny LLaVA of :mod:`tiny_llava`, saved as a model folder, as a user passes a downloaded one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch
import yaml

transformers = pytest.importorskip("transformers")

from builders.captions import caption_target, import_captions  # noqa: E402
from layouts import write_ilidsvid, write_mars  # noqa: E402
from tiny_llava import build_tiny_llava  # noqa: E402
from vreid_bench import cli, cli_caption, cli_run  # noqa: E402
from vreid_bench.captions import captions_hash  # noqa: E402
from vreid_bench.datasets import load  # noqa: E402
from vreid_bench.engine.train import build_training_data  # noqa: E402
from vreid_bench.errors import DatasetFormatError  # noqa: E402
from vreid_bench.recipe import recipe_for  # noqa: E402

TINY_CGCLIP = ["--set", "model.backbone=tiny", "--set", "input.height=32", "--set", "input.width=16",
               "--set", "input.seq_len=2", "--set", "sampler.ids_per_batch=3", "--set", "sampler.instances_per_id=2",
               "--set", "schedule.warmup_epochs=0", "--set", "schedule.milestones=[]", "--epochs", "1"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture
def mars_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VREID_DATA", str(tmp_path / "data"))
    write_mars(tmp_path / "datasets", images=True)
    return tmp_path / "datasets"


def sidecar(tmp_path: Path, name: str = "mars") -> Path:
    return tmp_path / "data" / "captions" / name / "captions.jsonl"


def vreid(cli_with, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The real entry point: exit code and everything printed (a user error is its one line on stderr)."""
    cli_with(cli_caption, cli_run)
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_mars_captions_go_to_a_sidecar_and_cg_clip_trains_on_them(mars_root: Path, model_dir: Path, tmp_path: Path,
                                                                 cli_with, capsys) -> None:
    caption = ["caption", "--dataset", "mars", "--root", str(mars_root), "--captioner", str(model_dir),
               "--device", "cpu", "--max-new-tokens", "4", "--frames", "2"]
    code, output = vreid(cli_with, capsys, *caption)
    assert code == 0, output
    assert "6 tracklets to caption (0 already captioned) × 2 frames each" in output
    rows = [json.loads(line) for line in sidecar(tmp_path).read_text().splitlines()]
    assert [r["tracklet_id"] for r in rows] == [f"train:{row}" for row in range(1, 7)]  # rows of the track info
    assert not list(mars_root.rglob("captions.jsonl"))  # the dataset folder is never written

    code, output = vreid(cli_with, capsys, *caption)
    assert code == 0 and "captioned 0, cached 6, total 6" in output

    code, output = vreid(cli_with, capsys, "run", "cgclip", "--dataset", "mars", "--root", str(mars_root),
                         "--out", str(tmp_path / "runs"), "--device", "cpu", *TINY_CGCLIP)
    assert code == 0, output
    (config_file,) = (tmp_path / "runs").rglob("config.yaml")
    recorded = yaml.safe_load(config_file.read_text())["dataset"]["captions"]
    assert recorded["store"] == str(sidecar(tmp_path).resolve())
    assert recorded["count"] == 6 and recorded["sources"] == {f"{model_dir}@{rows[0]['prompt_id']}": 6}
    assert recorded["sha256"] == captions_hash((r["tracklet_id"], r["caption"]) for r in rows)
    metrics = json.loads((config_file.parent / "metrics.json").read_text())
    assert metrics["captions"]["sha256"] == recorded["sha256"]


def test_listed_ids_and_imported_captions_are_what_the_model_sees(mars_root: Path, tmp_path: Path, cli_with,
                                                                  capsys) -> None:
    code, output = vreid(cli_with, capsys, "caption", "--dataset", "mars", "--root", str(mars_root), "--list-ids")
    assert code == 0
    listed = list(csv.DictReader(io.StringIO(output)))
    assert [row["tracklet_id"] for row in listed] == [f"train:{row}" for row in range(1, 7)]
    assert {row["split"] for row in listed} == {"train"}

    reviewed = tmp_path / "reviewed.jsonl"
    reviewed.write_text("".join(json.dumps({"tracklet_id": row["tracklet_id"],
                                            "caption": f"person {row['pid']} seen by camera {row['camid']}"}) + "\n"
                                for row in listed))
    code, output = vreid(cli_with, capsys, "caption", "--dataset", "mars", "--root", str(mars_root),
                         "--import", str(reviewed))
    assert code == 0 and "imported 6 reviewed captions" in output

    dataset = load("mars", root=mars_root)
    seen = build_training_data(dataset, recipe_for("cgclip", "mars").input, torch.device("cpu"), 0,
                               {}).captions
    expected: dict[int, list[str]] = {}
    for row in listed:
        expected.setdefault(dataset.train_label(int(row["pid"])), []).append(
            f"person {row['pid']} seen by camera {row['camid']}")
    assert seen == expected
    assert not any(t.caption for t in (*dataset.query, *dataset.gallery))


def test_a_sidecar_with_ids_the_dataset_lacks_is_refused_naming_them(mars_root: Path, tmp_path: Path) -> None:
    path = sidecar(tmp_path)
    path.parent.mkdir(parents=True)
    lines = [{"tracklet_id": tid, "caption": "x", "captioner": "import", "prompt_id": "reviewed"}
             for tid in ("train:1", "train:99", "train:100", "test:500", "train:101")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = path.read_text()
    with pytest.raises(DatasetFormatError, match=r"4 caption\(s\) for tracklet ids that mars does not have "
                                        r"\('test:500', 'train:100', 'train:101', \.\.\.\).*--list-ids"):
        load("mars", root=mars_root)
    assert path.read_text() == before


def test_ilids_captions_follow_the_split_and_refuse_its_test_tracklets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VREID_DATA", str(tmp_path / "data"))
    layout = write_ilidsvid(tmp_path / "datasets")
    root = tmp_path / "datasets"
    train_people, test_people = layout.splits[1]
    target = caption_target("ilidsvid", root=root, split=1)
    assert sorted({t.tracklet_id.split("/")[1] for t in target.tracklets}) == train_people

    file = tmp_path / "reviewed.csv"
    file.write_text("tracklet_id,caption\n" + f"cam1/{train_people[0]},a training person\n"
                    + f"cam2/{test_people[0]},a test person\n")
    with pytest.raises(DatasetFormatError, match=rf"test tracklets of ilidsvid split 1 .*'cam2/{test_people[0]}'"):
        import_captions(target, file)
    file.write_text("tracklet_id,caption\n" + f"cam1/{train_people[0]},a training person\n")
    import_captions(target, file)

    at_split_1 = load("ilidsvid", root=root, split=1)
    assert {t.tracklet_id: t.caption for t in at_split_1.train if t.caption} == {
        f"cam1/{train_people[0]}": "a training person"}
    other = next(k for k, (train, _) in enumerate(layout.splits) if train_people[0] not in train)
    at_other = load("ilidsvid", root=root, split=other)  # there that person is a test identity: no caption
    assert not any(t.caption for t in (*at_other.train, *at_other.query, *at_other.gallery))
