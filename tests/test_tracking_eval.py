"""Tracking quality: TrackEval's scores and the built identities' purity, against cases with a known answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trackeval")

from builders.mot import make_track_table  # noqa: E402
from builders.recipe import PlannedTracklet  # noqa: E402
from builders.track import FootageConfig, build_from_videos  # noqa: E402
from builders.tracking_eval import evaluate_tracking, identity_counts, identity_quality  # noqa: E402
from test_mot_readers import walkers, write_sequence, write_video  # noqa: E402
from vreid_bench import cli, cli_build  # noqa: E402
from vreid_bench.errors import ConfigError, DatasetNotFoundError  # noqa: E402


def table(rows) -> object:
    rows = np.asarray(rows, dtype=float)
    return make_track_table(rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2:6])


def test_tracks_equal_to_the_truth_score_one_and_a_switch_is_counted() -> None:
    truth = table(walkers(3, 40))
    frames = np.arange(1, 41)
    perfect = evaluate_tracking({"v": (truth, truth, frames)})["combined"]
    assert perfect == {"HOTA": 1.0, "DetA": 1.0, "AssA": 1.0, "MOTA": 1.0, "IDSW": 0, "IDF1": 1.0}

    switched = [(f, (2 if t == 1 else 1) if f > 20 and t in (1, 2) else t, l, top, w, h)
                for f, t, l, top, w, h in walkers(3, 40)]  # people 1 and 2 swap their ids half-way
    scores = evaluate_tracking({"v": (table(switched), truth, frames)})["combined"]
    assert scores["DetA"] == 1.0 and scores["MOTA"] < 1.0 and scores["IDSW"] == 2 and scores["AssA"] < 1.0
    assert scores["IDF1"] == pytest.approx(4 / 6, abs=1e-3)  # each person keeps its id over 2/3 of its frames


def planned(pid: str, rows) -> PlannedTracklet:
    rows = np.asarray(rows, dtype=float)
    return PlannedTracklet(f"{pid}_0", pid, pid, 0, "train", rows[:, 0].astype(np.int64), rows[:, 2:6])


def test_purity_completeness_and_fragments_of_built_identities() -> None:
    rows = walkers(2, 40)
    truth = table(rows)
    one = [r for r in rows if r[1] == 1]
    two = [r for r in rows if r[1] == 2]
    exact = identity_quality([identity_counts([planned("v:1", one), planned("v:2", two)], truth)])
    assert (exact["purity"], exact["completeness"], exact["fragments_per_person"]) == (1.0, 1.0, 1.0)

    # Person 1 cut in two identities; identity "v:9" wrongly follows person 2 for 10 frames after person 1's 30.
    mixed = [planned("v:1", one[:20]), planned("v:3", one[20:]), planned("v:9", one[:30] + two[30:40])]
    quality = identity_quality([identity_counts(mixed, truth)])
    assert quality["purity"] == pytest.approx((20 + 20 + 30) / 80)
    assert quality["completeness"] == pytest.approx((30 + 10) / (70 + 10))
    assert quality["fragments_per_person"] == pytest.approx(3 / 1)  # all three identities are mostly person 1


def test_a_raw_build_with_eval_tracking_records_the_scores(tmp_path: Path, cli_with, capsys) -> None:
    rows = walkers(2, 60)
    for name in ("a", "b"):
        seq = write_sequence(tmp_path / "footage" / f"v_{name}_c001", rows, 60)
        (seq / "det").mkdir()
        (seq / "det" / "det.txt").write_text("".join(f"{f},-1,{l},{t},{w},{h},0.95\n" for f, _, l, t, w, h in rows))
    cli_with(cli_build)
    out = tmp_path / "ds"
    assert cli.main(["build", "sports", "--videos", str(tmp_path / "footage"), "--detections", "public",
                     "--eval-tracking", "--out", str(out), "--no-progress"]) == 0
    assert "tracking against the ground truth" in capsys.readouterr().out
    evaluation = json.loads((out / "manifest.json").read_text())["tracking"]["evaluation"]
    assert evaluation["tracking"]["combined"]["HOTA"] > 0.95  # exact boxes, easy tracks (a track starts late)
    assert evaluation["identities"]["combined"]["purity"] == 1.0
    assert set(evaluation["tracking"]["per_video"]) == {"v_a_c001", "v_b_c001"}


def test_eval_tracking_needs_ground_truth_and_public_detections_need_det_files(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clips" / "match.mp4", walkers(2, 60), 60)
    video.with_name("match.gt.txt").unlink()
    dets = tmp_path / "det.txt"
    dets.write_text("".join(f"{f},-1,{l},{t},{w},{h},0.9\n" for f, _, l, t, w, h in walkers(2, 60)))
    with pytest.raises(ConfigError, match=r"--eval-tracking needs ground truth, and match has none"):
        build_from_videos("sports", [video], tmp_path / "ds", FootageConfig(detections=dets), progress=False,
                          eval_tracking=True)
    with pytest.raises(DatasetNotFoundError, match=r"--detections public: match has no .*det.txt"):
        build_from_videos("sports", [video], tmp_path / "ds", FootageConfig(detections=Path("public")),
                          progress=False)
