"""Ranked-list pictures: the list is the metric's, the borders say match or not, the command writes them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leaderboard.visrank import MATCH, QUERY, WRONG, VisrankLayout, ranked_queries, render_ranked_query
from tiny_reid import tiny_factory
from toolkit_fixture import write_identity_dataset
from vreid_bench import cli, cli_run
from vreid_bench.data import Tracklet
from vreid_bench.datasets import load
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.saved import SavedFeatures
from vreid_bench.engine.train import run_training
from vreid_bench.evaluation import Labels, ranking_problem
from vreid_bench.metrics import evaluate_rank
from vreid_bench.protocol import apply_protocol_overrides, get_protocol
from vreid_bench.recipe import resolve


def frame_file(folder: Path, name: str) -> str:
    path = folder / f"{name}.png"
    Image.new("RGB", (16, 32), (200, 200, 200)).save(path)
    return str(path)


def saved(query: list[tuple[str, int, int, list[float]]], gallery: list[tuple[str, int, int, list[float]]],
          ) -> SavedFeatures:
    def side(rows):
        return (np.array([r[3] for r in rows], dtype=np.float32),
                Labels(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), np.array([""] * len(rows))),
                np.array([r[0] for r in rows]))

    (q, q_labels, q_ids), (g, g_labels, g_ids) = side(query), side(gallery)
    return SavedFeatures(q, g, q_labels, g_labels, q_ids, g_ids, "dense", {})


def test_borders_follow_the_identities_of_the_ranked_gallery(tmp_path: Path) -> None:
    # Query a (pid 1, cam 0) at x=0; the gallery on a line: its same-camera twin (removed), a stranger, the true
    # match, junk (removed), another stranger.
    features = saved([("a", 1, 0, [0.0, 1.0])],
                     [("twin", 1, 0, [0.0, 1.0]), ("s1", 2, 1, [0.1, 1.0]), ("m", 1, 1, [0.3, 1.0]),
                      ("junk", -1, 1, [0.05, 1.0]), ("s2", 3, 1, [0.9, 1.0])])
    protocol = apply_protocol_overrides(get_protocol("gallery-only"), {"normalize_features": False})
    (query,) = ranked_queries(features, protocol, top=3)
    assert [(r.tracklet_id, r.match) for r in query.top] == [("s1", False), ("m", True), ("s2", False)]
    assert query.first_rank == 2 and query.ap == pytest.approx(0.5)

    tracklets = {name: Tracklet((frame_file(tmp_path, name),), 0, 0, tracklet_id=name)
                 for name in ("a", "s1", "m", "s2")}
    layout = VisrankLayout(frames=1)
    with Image.open(io.BytesIO(render_ranked_query(query, tracklets, {}, layout))) as image:
        pixels = image.convert("RGB")
        assert pixels.size == (layout.width(3), layout.height)
        colours = [pixels.getpixel((layout.left(position) + 1, layout.margin + 1)) for position in range(4)]
    assert colours == [QUERY, WRONG, MATCH, WRONG]


@pytest.mark.parametrize("changes", [{}, {"gallery": "query+gallery"}, {"gallery_scope": "video"}])
def test_the_ranked_list_puts_the_first_true_match_where_the_metric_does(changes: dict) -> None:
    rng = np.random.default_rng(0)
    q_labels = Labels(rng.integers(0, 5, 12), rng.integers(0, 3, 12), rng.choice(["v1", "v2"], 12))
    g_labels = Labels(rng.integers(-1, 5, 40), rng.integers(0, 3, 40), rng.choice(["v1", "v2"], 40))
    q, g = rng.normal(size=(12, 4)), rng.normal(size=(40, 4))
    protocol = apply_protocol_overrides(get_protocol("gallery-only"), changes)
    problem = ranking_problem(q, g, q_labels, g_labels, protocol)
    scopes = (problem.query.videos, problem.gallery.videos) if problem.scoped else (None, None)
    first = evaluate_rank(problem.distmat, problem.query.pids, problem.gallery.pids, problem.query.camids,
                          problem.gallery.camids, q_scopes=scopes[0], g_scopes=scopes[1]).query_first_rank
    for i in range(12):
        _, matches = problem.ranked(i)
        assert (int(np.argmax(matches)) + 1 if matches.any() else 0) == first[i]


def test_the_command_draws_the_worst_queries_of_a_run(tmp_path: Path, cli_with, capsys) -> None:
    dataset_dir = write_identity_dataset(tmp_path / "data", 32, 16)
    recipe = resolve(None, sets=["input.height=32", "input.width=16", "input.seq_len=4", "sampler.ids_per_batch=3",
                                 "sampler.instances_per_id=4", "epochs=1", "schedule.warmup_epochs=0",
                                 "schedule.milestones=[]"])
    run = run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), recipe, tmp_path / "runs",
                       options=RunOptions(workers=0, device="cpu"), progress=False, model_factory=tiny_factory)
    cli_with(cli_run)
    assert cli.main(["visrank", str(run.run_dir), "--worst", "--queries", "3", "--top", "4", "--frames", "2"]) == 0
    assert "wrote 3 ranked lists" in capsys.readouterr().out
    folder = run.run_dir / "visrank" / "gallery-only"
    index = json.loads((folder / "index.json").read_text())
    aps = [entry["ap"] for entry in index["queries"]]
    assert aps == sorted(aps) and aps[0] == pytest.approx(min(v for v in run.metrics["query_ap"] if v is not None), abs=1e-6)
    for entry in index["queries"]:
        with Image.open(folder / entry["file"]) as image:
            assert image.size == (VisrankLayout(frames=2).width(4), VisrankLayout(frames=2).height)
        assert len(entry["top"]) == 4


def test_a_run_evaluates_on_another_dataset_and_gets_a_cross_dataset_table(tmp_path: Path, cli_with, capsys) -> None:
    from leaderboard.collect import collect_runs
    from leaderboard.tables import build_leaderboards

    source = write_identity_dataset(tmp_path / "a", 32, 16, seed=0, name="build-a")
    other = write_identity_dataset(tmp_path / "b", 32, 16, seed=1, name="build-b", test_ids=4)
    recipe = resolve(None, sets=["input.height=32", "input.width=16", "input.seq_len=4", "sampler.ids_per_batch=3",
                                 "sampler.instances_per_id=4", "epochs=1", "schedule.warmup_epochs=0",
                                 "schedule.milestones=[]"])
    run = run_training("tiny", load(source), get_protocol("gallery-only"), recipe, tmp_path / "runs",
                       options=RunOptions(workers=0, device="cpu"), progress=False, model_factory=tiny_factory)
    cli_with(cli_run)
    assert cli.main(["eval", str(run.run_dir), "--dataset", str(other), "--device", "cpu", "--workers", "0"]) == 0
    assert "trained on build-a, tested on build-b (cross-dataset)" in capsys.readouterr().out
    written = json.loads((run.run_dir / "metrics@build-b-gallery-only.json").read_text())
    assert (written["dataset"], written["train_dataset"]) == ("build-b", "build-a")
    assert written["dataset_fingerprint"] == load(other).fingerprint != written["train_dataset_fingerprint"]
    assert (run.run_dir / "features@build-b-dense.npz").is_file()

    # Another protocol on the same other dataset is re-scored from its saved features.
    assert cli.main(["eval", str(run.run_dir), "--dataset", str(other), "--set", "protocol.ap=trapezoid",
                     "--device", "cpu"]) == 0
    rescored = json.loads((run.run_dir / "metrics@build-b-gallery-only-custom.json").read_text())
    assert rescored["rescored_from"] == "features@build-b-dense.npz"

    boards = build_leaderboards(collect_runs([tmp_path / "runs"]).frame)
    assert [board.group.cross_dataset for board in boards] == [False, True, True]  # in-dataset tables first
    assert boards[0].title == "build-a — gallery-only"
    assert {board.title for board in boards[1:]} == {
        f"cross-dataset: trained on build-a, tested on build-b — {name}" for name in ("gallery-only",
                                                                                      "gallery-only-custom")}
    assert "trained on build-a (fingerprint" in boards[1].caption

    assert cli.main(["eval", str(run.run_dir), "--dataset", str(source)]) == 2  # that is its own dataset
    assert "was trained on build-a" in capsys.readouterr().err
