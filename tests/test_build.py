"""Curation rules, splits, and the build: round trips through the toolkit loader, resume, workers, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import builders.build as build_module
from builders.build import build_dataset
from builders.mot import make_track_table
from builders.recipe import (
    Recipe, assign_splits, cap_parts, covered_fraction, curate, plan_video, pseudo_cameras, run_labels,
)
from test_mot_readers import gt_text, walkers, write_dancetrack, write_sequence, write_sportsmot, write_video
from vreid_bench import cli, cli_build
from vreid_bench.datasets import load
from vreid_bench.errors import ConfigError, DatasetFormatError

SPORTS_SPLITS = {"train": ["v_a_c001", "v_b_c002"], "val": ["v_c_c003", "v_d_c004"], "test": ["v_e_c005"]}
PEOPLE, FRAMES = 3, 60  # at 10 fps: two pseudo-cameras of 25 frames around a 10-frame gap


def table_of(rows):
    frame, track, *box = np.array(rows, dtype=np.float64).T
    return make_track_table(frame.astype(np.int64), track.astype(np.int64), np.stack(box, axis=1))


def track_rows(track, frames, left=100.0, top=20.0, width=40.0, height=100.0):
    return [(f, track, left, top, width, height) for f in frames]


# ------------------------------------------------------------------------------------------ curation rules


def test_short_track_is_dropped_and_long_one_kept():
    table = table_of(track_rows(1, range(1, 11)) + track_rows(2, range(1, 41), left=200))
    tracklets, counts = curate(table, 640, 360, 10, Recipe(segments=1))
    assert [(t.track, len(t.frames)) for t in tracklets] == [(2, 40)]
    assert (counts["tracks"], counts["tracks_kept"]) == (2, 1)


def test_small_and_border_boxes_are_dropped():
    rows = track_rows(1, range(1, 41))
    rows[5] = (6, 1, 100.0, 20.0, 40.0, 50.0)  # 50 px high < 64
    rows[6] = (7, 1, 0.0, 20.0, 40.0, 100.0)  # touches the left border
    rows[7] = (8, 1, 100.0, 270.0, 40.0, 89.5)  # bottom at 359.5, within 2 px of 360
    keep_frames = [f for f in range(1, 41) if f not in (6, 7, 8)]
    tracklets, counts = curate(table_of(rows), 640, 360, 10, Recipe(segments=1, max_gap=5))
    assert (counts["boxes_small"], counts["boxes_border"], counts["boxes_overlapped"]) == (1, 2, 0)
    assert tracklets[0].frames.tolist() == keep_frames


def brute_force_covered(boxes):
    """Per box: the largest share of its area inside one other box (pairwise loop, the reference)."""
    result = []
    for i, (l1, t1, w1, h1) in enumerate(boxes):
        best = 0.0
        for j, (l2, t2, w2, h2) in enumerate(boxes):
            if i != j:
                iw = max(0.0, min(l1 + w1, l2 + w2) - max(l1, l2))
                ih = max(0.0, min(t1 + h1, t2 + h2) - max(t1, t2))
                best = max(best, iw * ih / (w1 * h1))
        result.append(best)
    return result


def test_covered_fraction_matches_pairwise_reference_and_drops_the_occluded_box():
    rng = np.random.default_rng(3)
    rows = []
    for frame in range(1, 6):
        for track in range(6):
            l, t = rng.uniform(0, 200, 2)
            rows.append((frame, track, l, t, rng.uniform(10, 80), rng.uniform(20, 120)))
    table = table_of(rows)
    fraction = covered_fraction(table)
    for frame in range(1, 6):
        at = table.frame == frame
        assert np.allclose(fraction[at], brute_force_covered(table.box[at].tolist()))

    occluded = track_rows(1, range(1, 41), left=100) + track_rows(2, range(1, 41), left=300)
    occluded[10] = (11, 1, 300.0, 20.0, 40.0, 100.0)  # frame 11: track 1 exactly on track 2
    occluded[40 + 10] = (11, 2, 280.0, 10.0, 96.0, 240.0)  # a much larger box that covers it
    _, counts = curate(table_of(occluded), 640, 360, 10, Recipe(segments=1))
    fractions = covered_fraction(table_of(occluded))
    assert counts["boxes_overlapped"] == 1
    assert fractions.max() == 1.0 and np.sort(fractions)[-2] < 0.5


def test_gap_splits_a_track():
    frames = list(range(1, 21)) + list(range(31, 51))  # 10 frames missing
    table = table_of(track_rows(1, frames))
    split, _ = curate(table, 640, 360, 10, Recipe(segments=1, max_gap=5))
    whole, _ = curate(table, 640, 360, 10, Recipe(segments=1, max_gap=10))
    assert [(t.frames[0], t.frames[-1]) for t in split] == [(1, 20), (31, 50)]
    assert [(t.frames[0], t.frames[-1]) for t in whole] == [(1, 50)]
    assert run_labels(np.array(frames), 5).tolist() == [0] * 20 + [1] * 20


def test_pseudo_cameras_are_equal_time_segments_separated_by_the_gap():
    frames = np.arange(1, 61)
    cams = pseudo_cameras(frames, segments=2, gap=10, min_frames=16)
    assert cams.tolist() == [0] * 25 + [-1] * 10 + [1] * 25
    three = pseudo_cameras(np.arange(0, 100), segments=3, gap=5, min_frames=16)  # segments of 30 frames
    assert three.tolist() == [0] * 30 + [-1] * 5 + [1] * 30 + [-1] * 5 + [2] * 30
    assert set(pseudo_cameras(np.arange(1, 31), 2, 10, 16).tolist()) == {0}  # too short to cut: one camera


def test_segment_gap_is_converted_with_the_frame_rate():
    table = table_of(track_rows(1, range(1, 101)))
    at_10fps, _ = curate(table, 640, 360, 10, Recipe(segment_gap_s=1.0))
    at_20fps, _ = curate(table, 640, 360, 20, Recipe(segment_gap_s=1.0))
    assert [(t.camid, t.frames[0], t.frames[-1]) for t in at_10fps] == [(0, 1, 45), (1, 56, 100)]
    assert [(t.camid, t.frames[0], t.frames[-1]) for t in at_20fps] == [(0, 1, 40), (1, 61, 100)]


def test_long_runs_are_cut_into_near_equal_tracklets():
    assert [s.stop - s.start for s in cap_parts(50, 20)] == [17, 17, 16]
    assert cap_parts(7, None) == [slice(0, 7)]
    tracklets, _ = curate(table_of(track_rows(1, range(1, 51))), 640, 360, 10,
                          Recipe(segments=1, max_tracklet_frames=20))
    assert [len(t.frames) for t in tracklets] == [17, 17, 16]
    assert np.array_equal(np.concatenate([t.frames for t in tracklets]), np.arange(1, 51))


def test_test_split_keeps_multi_camera_identities_with_one_query_each():
    rows = track_rows(1, range(1, 61)) + track_rows(2, range(1, 61), left=300) + track_rows(3, range(1, 21), left=500)
    tracklets, counts = curate(table_of(rows), 640, 360, 10, Recipe())
    plan = plan_video("vid", "test", tracklets, counts, Recipe())
    roles = defaultdict(list)
    for t in plan.tracklets:
        roles[t.pid].append((t.split, t.camid))
    assert sorted(roles) == ["vid:1", "vid:2"]  # track 3 sits on one camera only
    assert plan.counts["test_identities_single_camera"] == 1
    for pid, items in roles.items():
        assert [s for s, _ in items].count("query") == 1
        query_cam = next(c for s, c in items if s == "query")
        assert any(s == "gallery" and c != query_cam for s, c in items)
    again = plan_video("vid", "test", tracklets, counts, Recipe())
    assert [t.split for t in again.tracklets] == [t.split for t in plan.tracklets]
    train = plan_video("vid", "train", tracklets, counts, Recipe())
    assert {t.split for t in train.tracklets} == {"train"} and len(train.tracklets) == 5


def test_splits_follow_the_source_and_draw_unsplit_videos_from_the_seed():
    plan = assign_splits([("a", "train"), ("b", "val"), ("c", "test"), ("u1", None), ("u2", None),
                          ("u3", None), ("u4", None)], Recipe(seed=1))
    splits = plan.splits
    assert (splits["a"], splits["b"], splits["c"]) == ("train", "test", "test")
    assert sorted(splits[u] for u in ("u1", "u2", "u3", "u4")) == ["test", "test", "train", "train"]
    assert plan.by == "source lists and seeded draw" and plan.moved == ()


def test_one_video_is_split_in_time_or_refused_with_its_fix():
    plan = assign_splits([("only", None)], Recipe())
    assert plan.splits == {"only": "time"} and plan.by == "time"
    with pytest.raises(ConfigError, match=r"every video of this build lands in test .*--groups FILE"):
        assign_splits([("only", None)], Recipe(few_videos="refuse"))


def test_groups_keep_clips_of_one_match_on_one_side_and_count_the_moves():
    videos = [("v_m1_c001", "train"), ("v_m1_c002", "train"), ("v_m1_c003", "val"), ("v_m2_c001", "train"),
              ("v_m3_c001", "val"), ("v_m3_c002", "train")]
    from builders.groups import video_groups

    groups = video_groups([v for v, _ in videos], "sportsmot")
    assert groups["v_m1_c003"] == "m1" and groups["v_m3_c002"] == "m3"
    plan = assign_splits(videos, Recipe(), groups)
    assert plan.splits == {"v_m1_c001": "train", "v_m1_c002": "train", "v_m1_c003": "train", "v_m2_c001": "train",
                           "v_m3_c001": "test", "v_m3_c002": "test"}  # a tie goes to test
    assert plan.moved == ("v_m1_c003", "v_m3_c002")


def test_invalid_recipe_names_the_parameter():
    with pytest.raises(ConfigError, match="segments=0 is invalid"):
        Recipe(segments=0)


def test_reduced_decoding_is_used_only_when_every_crop_shrinks_and_matches_full_decoding(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from builders.crops import decode_scale, encode_crops

    assert decode_scale(np.array([[0, 0, 300, 600], [10, 10, 400, 700]], dtype=float), (256, 128)) == 2
    assert decode_scale(np.array([[0, 0, 300, 600], [10, 10, 100, 200]], dtype=float), (256, 128)) == 1
    assert decode_scale(np.array([[0, 0, 1100, 2100]], dtype=float), (256, 128)) == 8
    yy, xx = np.mgrid[0:1080, 0:1920]
    image = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=2).astype(np.uint8)  # smooth ramps
    path = tmp_path / "frame.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    regions = np.array([[200.0, 100.0, 500.0, 700.0]])
    full = encode_crops(cv2.imread(str(path)), regions, 1, (256, 128), 95)[0]
    reduced = encode_crops(cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2), regions, 2, (256, 128), 95)[0]
    full_pixels, reduced_pixels = (cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR).astype(int)
                                   for b in (full, reduced))
    assert full_pixels.shape == reduced_pixels.shape == (256, 128, 3)
    assert np.abs(full_pixels - reduced_pixels).mean() < 4


# ------------------------------------------------------------------------------------- build round trips


def check_dataset(dataset) -> None:
    """Invariants every built dataset keeps: disjoint train/test identities, one query per test identity, and a
    true match of every query on another pseudo-camera of the same video."""
    train_ids = {t.pid for t in dataset.train}
    test_ids = {t.pid for t in dataset.query} | {t.pid for t in dataset.gallery}
    assert not train_ids & test_ids
    queries = defaultdict(list)
    for t in dataset.query:
        queries[t.pid].append(t)
    assert sorted(queries) == sorted(test_ids) and all(len(q) == 1 for q in queries.values())
    for pid, (query,) in queries.items():
        assert any(g.pid == pid and g.camid != query.camid and g.video == query.video for g in dataset.gallery)


def expected_counts(train_videos: int, test_videos: int, people: int) -> dict[str, int]:
    """What the walkers' gt implies: every person kept, two pseudo-cameras each, 25 frames per tracklet."""
    return {"identities_train": train_videos * people, "identities_test": test_videos * people,
            "tracklets_train": 2 * train_videos * people, "tracklets_query": test_videos * people,
            "tracklets_gallery": test_videos * people, "crops": 50 * (train_videos + test_videos) * people}


@pytest.fixture(scope="module")
def sportsmot(tmp_path_factory) -> Path:
    return write_sportsmot(tmp_path_factory.mktemp("src") / "sportsmot_publish", SPORTS_SPLITS, PEOPLE, FRAMES)


@pytest.fixture(scope="module")
def reference(sportsmot, tmp_path_factory):
    """One uninterrupted single-process build that other tests compare against."""
    return build_dataset("sports", sportsmot, tmp_path_factory.mktemp("ref") / "sportsvreid", progress=False)


def test_sportsmot_build_round_trips_through_the_loader(reference):
    dataset = load(reference.path)
    check_dataset(dataset)
    assert {k: reference.counts[k] for k in expected_counts(2, 2, PEOPLE)} == expected_counts(2, 2, PEOPLE)
    assert dataset.fingerprint == reference.fingerprint
    assert dataset.default_protocol == "video-scope"
    assert sorted(dataset.pid_names.values())[0] == "v_a_c001:1"
    assert all(len(t) == 25 for t in dataset.train + dataset.query + dataset.gallery)
    manifest = json.loads((reference.path / "manifest.json").read_text())
    assert manifest["recipe"] == {"name": "vreid-build-1", "params": Recipe().params()}
    assert [(s["video"], s["split"]) for s in manifest["sources"]] == [
        ("v_a_c001", "train"), ("v_b_c002", "train"), ("v_c_c003", "test"), ("v_d_c004", "test")]
    assert manifest["identities_verified"] is True and manifest["failures"] == []
    assert "CC BY-NC 4.0" in manifest["licence"] and "not the" in manifest["licence"]
    assert manifest["counts"]["sequences_skipped"] == 1
    first = dataset.train[0].frames[0]
    assert Path(first).relative_to(reference.path).as_posix() == "crops/v_a_c001/1/v_a_c001_1_000/000001.jpg"
    from PIL import Image

    with Image.open(first) as crop:
        assert crop.size == (128, 256)
        red, green, blue = np.asarray(crop)[128, 64].astype(int)
        assert green > 150 and red < 100 and blue < 100  # track 1 is drawn green: the crop is of the right box


def test_rebuilding_a_complete_dataset_reuses_every_video(reference, sportsmot):
    again = build_dataset("sports", sportsmot, reference.path, progress=False)
    assert again.built == () and len(again.reused) == 4
    assert again.fingerprint == reference.fingerprint


def test_two_workers_give_the_same_fingerprint(reference, sportsmot, tmp_path):
    parallel = build_dataset("sports", sportsmot, tmp_path / "ds", workers=2, progress=False)
    assert parallel.fingerprint == reference.fingerprint


def test_a_recipe_change_rebuilds_and_changes_the_fingerprint(reference, sportsmot, tmp_path):
    out = tmp_path / "ds"
    build_dataset("sports", sportsmot, out, progress=False)
    changed = build_dataset("sports", sportsmot, out, recipe=Recipe(crop_size=(128, 64)), progress=False)
    assert len(changed.built) == 4 and changed.fingerprint != reference.fingerprint
    assert load(out).train[0].frames[0].endswith("000001.jpg")


def test_dancetrack_build_round_trips(tmp_path):
    root = write_dancetrack(tmp_path / "dancetrack", {"train": ["dancetrack0001"], "val": ["dancetrack0002"]},
                            people=2, frames=FRAMES)
    result = build_dataset("dance", root, tmp_path / "dancevreid", progress=False)
    dataset = load(result.path)
    check_dataset(dataset)
    assert {k: result.counts[k] for k in expected_counts(1, 1, 2)} == expected_counts(1, 1, 2)
    assert "dancetrack0001:0" in dataset.pid_names.values()
    assert "DanceTrack" in json.loads((result.path / "manifest.json").read_text())["licence"]


def test_single_motchallenge_sequence_becomes_a_test_set(tmp_path):
    rows = walkers(2, FRAMES)
    seq = write_sequence(tmp_path / "MOT17-02-SDP", rows, FRAMES, gt=gt_text(rows, "1,1,0.8"))
    result = build_dataset("sports", seq, tmp_path / "ds", progress=False, recipe=Recipe(few_videos="test"))
    dataset = load(result.path)
    check_dataset(dataset)
    assert {k: result.counts[k] for k in expected_counts(0, 1, 2)} == expected_counts(0, 1, 2)


def test_video_with_gt_builds_the_same_tracklets_as_its_frames(tmp_path):
    rows = walkers(2, FRAMES)
    video = write_video(tmp_path / "clips" / "match.mp4", rows, FRAMES)
    result = build_dataset("sports", video, tmp_path / "ds", progress=False, recipe=Recipe(few_videos="test"))
    dataset = load(result.path)
    check_dataset(dataset)
    assert {k: result.counts[k] for k in expected_counts(0, 1, 2)} == expected_counts(0, 1, 2)
    query = dataset.query[0]
    import cv2

    crop = cv2.imread(query.frames[0])
    assert crop.shape == (256, 128, 3) and crop[128, 64, 1] > 150 > crop[128, 64, 2]  # track 1 is green


def test_synthetic_footage_made_by_the_cli_builds_and_loads(cli_app, tmp_path):
    pytest.importorskip("builders.synth")
    footage = tmp_path / "footage"
    made = CliRunner().invoke(cli_app, ["synth", "sports", "--out", str(footage), "--videos", "2", "--frames", "60",
                                        "--people", "4", "--width", "320", "--height", "180", "--fps", "10"])
    assert made.exit_code == 0, made.output
    result = build_dataset("sports", footage, tmp_path / "ds", recipe=Recipe(min_box_height=16), progress=False)
    dataset = load(result.path)
    check_dataset(dataset)
    assert result.counts["tracklets_query"] == result.counts["identities_test"] > 0 and dataset.train
    assert sorted(p.name for p in (result.path / "attributes").iterdir()) == [
        f"{s['video']}.json" for s in json.loads((result.path / "manifest.json").read_text())["sources"]]


# ------------------------------------------------------------------------------------ failures and resume


def crop_folders(out: Path) -> list[str]:
    """Video folders in place (staged ``.<video>.*.partial`` folders are not)."""
    if not (out / "crops").is_dir():
        return []
    return sorted(p.name for p in (out / "crops").iterdir() if not p.name.startswith("."))


def test_interrupted_build_leaves_no_half_video_and_resumes_to_the_same_fingerprint(reference, sportsmot,
                                                                                    tmp_path, monkeypatch):
    out = tmp_path / "ds"
    real_run_chunk = build_module.run_chunk

    def fail_in_second_video(chunk):
        if chunk.video == "v_b_c002":
            raise KeyboardInterrupt
        return real_run_chunk(chunk)

    monkeypatch.setattr(build_module, "run_chunk", fail_in_second_video)
    with pytest.raises(KeyboardInterrupt):
        build_dataset("sports", sportsmot, out, progress=False)
    assert sorted(p.name for p in (out / "crops").iterdir()) == ["v_a_c001"]  # no staged leftovers either
    assert (out / "crops" / "v_a_c001" / "record.json").is_file()
    assert not (out / "manifest.json").exists()

    monkeypatch.setattr(build_module, "run_chunk", real_run_chunk)
    resumed = build_dataset("sports", sportsmot, out, progress=False)
    assert resumed.reused == ("v_a_c001",) and len(resumed.built) == 3
    assert resumed.fingerprint == reference.fingerprint


def test_killed_build_process_resumes_to_the_same_fingerprint(reference, sportsmot, tmp_path):
    out = tmp_path / "ds"
    script = textwrap.dedent(f"""
        import os, signal
        import builders.build as b
        real = b.run_chunk
        def run_chunk(chunk):
            result = real(chunk)
            if chunk.video == "v_c_c003":
                os.kill(os.getpid(), signal.SIGKILL)  # mid-video: some crops of it are already written
            return result
        b.run_chunk = run_chunk
        b.build_dataset("sports", {str(sportsmot)!r}, {str(out)!r}, progress=False)
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent, capture_output=True)
    assert killed.returncode == -9
    assert crop_folders(out) == ["v_a_c001", "v_b_c002"]
    assert list((out / "crops").glob(".v_c_c003.*.partial"))  # what a hard kill leaves behind
    resumed = build_dataset("sports", sportsmot, out, progress=False)
    assert resumed.built == ("v_c_c003", "v_d_c004")
    assert not list((out / "crops").glob(".*.partial"))
    assert resumed.fingerprint == reference.fingerprint


def test_malformed_source_reports_file_and_line_and_writes_nothing(tmp_path):
    root = write_sportsmot(tmp_path / "src", {"train": ["v_a_c001", "v_b_c002"]}, people=2, frames=20)
    gt = root / "dataset" / "train" / "v_b_c002" / "gt" / "gt.txt"
    gt.write_text(gt.read_text() + "21,1,10,10,30,80,1,1,1\n")
    with pytest.raises(DatasetFormatError, match=rf"{gt}:41: frame 21 is outside 1..20"):
        build_dataset("sports", root, tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()


def test_an_undecodable_frame_in_a_worker_names_the_file_and_leaves_no_staged_folder(tmp_path):
    root = write_sportsmot(tmp_path / "src", {"train": ["v_a_c001"], "val": ["v_b_c002"]}, people=2, frames=FRAMES)
    broken = root / "dataset" / "val" / "v_b_c002" / "img1" / "000040.jpg"
    broken.write_bytes(b"not a jpeg")
    out = tmp_path / "ds"
    with pytest.raises(DatasetFormatError, match=rf"{broken}: cannot be decoded"):
        build_dataset("sports", root, out, workers=2, progress=False)
    assert sorted(p.name for p in (out / "crops").iterdir()) in ([], ["v_a_c001"])
    assert not (out / "manifest.json").exists()


def test_a_foreign_output_folder_is_refused(sportsmot, tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a vreid dataset"):
        build_dataset("sports", sportsmot, tmp_path / "home", progress=False)


# ------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_app(cli_with) -> typer.Typer:
    return cli_with(cli_build)


def test_cli_bad_mot_root_exits_2_with_one_line(cli_app, tmp_path, capsys):
    code = cli.main(["build", "sports", "--mot-root", str(tmp_path / "missing"), "--out", str(tmp_path / "ds")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "missing does not exist" in err


def test_cli_build_writes_the_dataset_and_prints_counts(cli_app, sportsmot, tmp_path, monkeypatch):
    monkeypatch.setenv("VREID_DATA", str(tmp_path / "data"))
    result = CliRunner().invoke(cli_app, ["build", "sports", "--mot-root", str(sportsmot), "--segments", "3",
                                          "--segment-gap", "0.5", "--crop-height", "64", "--crop-width", "32",
                                          "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "identities train" in result.output and str(tmp_path / "data" / "sportsvreid") in result.output
    dataset = load("sports")  # found by name under the data root
    check_dataset(dataset)
    assert dataset.notes["recipe"]["params"]["segments"] == 3
    assert dataset.notes["recipe"]["params"]["crop_size"] == [64, 32]
    assert dataset.num_cams == 3
