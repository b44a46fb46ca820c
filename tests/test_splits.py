"""Leak-free splits: clips of one match on one side, a groups file, and single videos split in time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builders.build import build_dataset
from builders.track import FootageConfig, build_from_videos
from test_mot_readers import walkers, write_sportsmot, write_video
from tiny_reid import tiny_factory
from vreid_bench.datasets import load
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.train import run_training
from vreid_bench.errors import ConfigError
from vreid_bench.protocol import get_protocol
from vreid_bench.recipe import resolve

SPLITS = {"train": ["v_m1_c001", "v_m2_c001", "v_m4_c001"], "val": ["v_m1_c002", "v_m3_c001"]}


def match_of(video: str) -> str:
    return video.split("_")[1]


def sides(dataset_dir: Path) -> dict[str, str]:
    return {s["video"]: s["split"] for s in json.loads((dataset_dir / "manifest.json").read_text())["sources"]}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return write_sportsmot(tmp_path_factory.mktemp("src") / "sportsmot", SPLITS, people=2, frames=40)


def test_clips_of_one_match_never_span_both_splits_and_the_moves_are_counted(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = build_dataset("sports", source, out, progress=False)
    split_of = sides(out)
    by_match: dict[str, set[str]] = {}
    for video, split in split_of.items():
        by_match.setdefault(match_of(video), set()).add(split)
    assert all(len(splits) == 1 for splits in by_match.values()), by_match
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["moved"] == ["v_m1_c001"]  # its match's other clip is in val: a tie goes to test
    assert manifest["split"]["groups"]["v_m1_c002"] == "m1" and manifest["split"]["by"] == "source lists"
    assert any("1 clip(s) moved" in note for note in result.notes)
    dataset = load(out)
    assert not {t.pid for t in dataset.train} & {t.pid for t in (*dataset.query, *dataset.gallery)}


def test_a_groups_file_joins_videos_the_names_do_not(source: Path, tmp_path: Path) -> None:
    groups = tmp_path / "groups.csv"
    groups.write_text("video,group\nv_m4_c001,m3\n")  # the same players as match 3
    build_dataset("sports", source, tmp_path / "ds", progress=False, groups=groups)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert sides(tmp_path / "ds")["v_m4_c001"] == sides(tmp_path / "ds")["v_m3_c001"] == "test"
    assert manifest["split"]["moved"] == ["v_m1_c001", "v_m4_c001"]
    groups.write_text("v_nope_c001,m3\n")
    with pytest.raises(ConfigError, match=r"--groups names 1 video\(s\) this build does not have \('v_nope_c001'\)"):
        build_dataset("sports", source, tmp_path / "ds2", progress=False, groups=groups)


def arrivals() -> list[tuple[int, int, float, float, float, float]]:
    """Two people there from the start, leaving at frame 60; two others arriving at frame 105 (160 frames, 10 fps:
    the cut falls at frame 81 and the test part starts 2 s later, at 101)."""
    early = walkers(2, 60)
    late = [(frame + 104, track + 2, left, top, w, h) for frame, track, left, top, w, h in walkers(2, 56)]
    return early + late


def test_one_raw_video_is_split_in_time_with_no_identity_on_both_sides_and_trains(tmp_path: Path) -> None:
    rows = arrivals()
    video = write_video(tmp_path / "clip" / "pedestrians.mp4", rows, 160)
    detections = tmp_path / "det.txt"
    detections.write_text("".join(f"{f},-1,{l:.1f},{t:.1f},{w:.1f},{h:.1f},0.95\n" for f, _, l, t, w, h in rows))
    out = tmp_path / "ds"
    result = build_from_videos("sports", [video], out, FootageConfig(detections=detections), progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["by"] == "time" and manifest["sources"][0]["split"] == "time"
    assert result.counts["videos_split_in_time"] == 1
    dataset = load(out)
    train = {t.pid for t in dataset.train}
    test = {t.pid for t in (*dataset.query, *dataset.gallery)}
    assert len(train) == 2 and len(test) == 2 and not train & test
    assert max(int(Path(f).stem) for t in dataset.train for f in t.frames) < 81  # training frames before the cut
    assert min(int(Path(f).stem) for t in (*dataset.query, *dataset.gallery) for f in t.frames) >= 101

    recipe = resolve(None, sets=["input.height=32", "input.width=16", "input.seq_len=4", "sampler.ids_per_batch=2",
                                 "sampler.instances_per_id=2", "epochs=1", "schedule.warmup_epochs=0",
                                 "schedule.milestones=[]"])
    run = run_training("tiny", dataset, get_protocol(dataset.default_protocol), recipe, tmp_path / "runs",
                       options=RunOptions(workers=0, device="cpu"), progress=False, model_factory=tiny_factory)
    assert run.metrics["num_valid_queries"] == 2


def test_a_video_whose_people_stay_throughout_cannot_be_split_in_time_and_says_what_to_do(tmp_path: Path) -> None:
    rows = walkers(2, 60)
    video = write_video(tmp_path / "clip" / "match.mp4", rows, 60)
    with pytest.raises(ConfigError, match=r"no test identities .*--few-videos test"):
        build_dataset("sports", video, tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()


def test_tracker_identities_and_pseudo_cameras_are_declared_and_followed(tmp_path: Path, cli_with, capsys) -> None:
    import yaml

    from leaderboard.collect import collect_runs
    from leaderboard.tables import build_leaderboards
    from vreid_bench import cli, cli_data
    from vreid_bench.recipe import recipe_for

    rows = arrivals()
    video = write_video(tmp_path / "clip" / "pedestrians.mp4", rows, 160)
    detections = tmp_path / "det.txt"
    detections.write_text("".join(f"{f},-1,{l:.1f},{t:.1f},{w:.1f},{h:.1f},0.95\n" for f, _, l, t, w, h in rows))
    out = tmp_path / "ds"
    build_from_videos("sports", [video], out, FootageConfig(detections=detections), progress=False)
    cli_with(cli_data)
    assert cli.main(["info", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "tracker identities, not reviewed" in printed and "pseudo-cameras" in printed

    dataset = load(out)
    sets = ["model.backbone=tiny", "input.height=32", "input.width=16", "input.seq_len=2", "sampler.ids_per_batch=2",
            "sampler.instances_per_id=2", "epochs=1", "schedule.warmup_epochs=0", "schedule.milestones=[]"]
    recipe = recipe_for("clip-tap", dataset.family, sets=sets, pseudo_cameras=True)
    assert recipe.model["camera_embedding"] is False and "pseudo-cameras" in recipe.sources["model.camera_embedding"]
    assert recipe_for("tfclip", "mars", sets=sets).model["camera_embedding"] is True  # MARS: real cameras
    turned_on = recipe_for("clip-tap", dataset.family, sets=[*sets, "model.camera_embedding=true"], pseudo_cameras=True)
    assert turned_on.model["camera_embedding"] is True

    run = run_training("clip-tap", dataset, get_protocol(dataset.default_protocol), recipe, tmp_path / "runs",
                       pretrained="none", options=RunOptions(workers=0, device="cpu"), progress=False)
    config = yaml.safe_load((run.run_dir / "config.yaml").read_text())
    assert config["recipe"]["model"]["camera_embedding"] is False and config["dataset"]["identities_verified"] is False
    (board,) = build_leaderboards(collect_runs([tmp_path / "runs"]).frame)
    assert board.title.endswith("(tracker identities, not reviewed)")
