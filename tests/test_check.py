"""``vreid check`` and corrupt frames: one line naming the file, in checking, training, evaluation and building."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builders.build import build_dataset
from test_mot_readers import write_sportsmot
from tiny_reid import tiny_factory  # noqa: F401  (registers the ``tiny`` model)
from toolkit_fixture import make_toolkit_dataset, write_identity_dataset
from vreid_bench import cli, cli_data, cli_run
from vreid_bench.datasets import load
from vreid_bench.errors import DatasetFormatError

TINY_RUN = ["--set", "input.height=32", "--set", "input.width=16", "--set", "input.seq_len=4", "--set",
            "sampler.ids_per_batch=3", "--set", "schedule.warmup_epochs=0", "--set", "schedule.milestones=[]",
            "--epochs", "1", "--device", "cpu"]


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # a copy cut short: the JPEG's end marker is gone
    return path


def test_check_lists_every_kind_of_problem_and_exits_1(tmp_path: Path, cli_with, capsys) -> None:
    dataset = make_toolkit_dataset(tmp_path, frames=6)
    folders = sorted((dataset / "crops").glob("*/*/*"))
    broken = truncate(sorted(folders[0].glob("*.jpg"))[2])
    shutil.copy(sorted(folders[1].glob("*.jpg"))[0], sorted(folders[1].glob("*.jpg"))[1])  # a frozen frame
    shutil.copy(sorted(folders[2].glob("*.jpg"))[0], sorted(folders[5].glob("*.jpg"))[0])  # one image in two
    for frame in sorted(folders[3].glob("*.jpg"))[1:]:
        frame.unlink()  # a one-frame tracklet (and a folder that disagrees with the table)
    cli_with(cli_data)
    assert cli.main(["check", str(dataset), "--json", str(tmp_path / "report.json"), "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "unreadable frames: 1" in out and broken.name in out and "truncated JPEG" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert [u["path"] for u in report["unreadable"]] == [str(broken)]
    assert [t["frames"] for t in report["short_tracklets"]] == [1]
    assert report["count_mismatches"][0]["on_disk"] == 1
    assert len(report["duplicates_within"]) == 1 and len(report["duplicates_across"]) == 1
    assert report["frames_checked"] == 12 * 6 - 5


def test_a_clean_dataset_checks_clean(tmp_path: Path, cli_with, capsys) -> None:
    dataset = make_toolkit_dataset(tmp_path)
    cli_with(cli_data)
    assert cli.main(["check", str(dataset)]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_training_and_evaluation_stop_with_one_line_naming_the_corrupt_frame(tmp_path: Path, cli_with,
                                                                            capsys) -> None:
    dataset = write_identity_dataset(tmp_path / "data", 32, 16)
    cli_with(cli_run)
    assert cli.main(["run", "tiny", "--dataset", str(dataset), "--out", str(tmp_path / "runs"), "--workers", "1",
                     *TINY_RUN]) == 0
    (run_dir,) = (tmp_path / "runs").glob("*/*")
    capsys.readouterr()

    query = load(dataset).query[0]
    broken = truncate(Path(query.frames[0]))
    (run_dir / "features.npz").unlink()  # so evaluation reads the frames again
    assert cli.main(["eval", str(run_dir), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(broken) in err and "vreid check" in err

    train = load(dataset).train
    for path in (*query.frames, *(f for t in train for f in t.frames)):
        truncate(Path(path))
    assert cli.main(["run", "tiny", "--dataset", str(dataset), "--out", str(tmp_path / "runs2"), "--workers", "2",
                     *TINY_RUN]) == 2  # a data-loader worker hits it: still one line
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read frame" in err and "Traceback" not in err


def test_building_from_a_truncated_source_frame_names_it(tmp_path: Path) -> None:
    root = write_sportsmot(tmp_path / "src", {"train": ["v_a_c001"], "val": ["v_b_c001"]}, frames=40)
    broken = truncate(root / "dataset" / "train" / "v_a_c001" / "img1" / "000005.jpg")
    with pytest.raises(DatasetFormatError, match=rf"{broken}: truncated JPEG"):
        build_dataset("sports", root, tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds" / "manifest.json").exists()
