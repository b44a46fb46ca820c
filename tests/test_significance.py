"""The paired bootstrap behind every leaderboard table: known answers, pairing, strata, determinism, formats."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import scipy.stats

from leaderboard.collect import collect_runs
from leaderboard.significance import QueryResults, table_significance
from leaderboard.tables import board_rich, build_leaderboards, to_csv, to_latex, to_markdown


def record(ap, first=None, seed=0, split=None, digest="q") -> dict:
    ap = list(ap)
    first = list(first) if first is not None else [1 if a == 1.0 else (0 if a is None else 2) for a in ap]
    return {"query_ap": ap, "query_first_rank": first, "query_digest": digest, "seed": seed, "split": split}


def test_identical_per_query_results_are_tied_and_a_model_better_everywhere_is_not():
    rng = np.random.default_rng(0)
    ap = rng.random(300).round(4).tolist()
    better = [min(1.0, a + 0.05) for a in ap]
    result = table_significance([[record(better)], [record(ap)], [record(ap)]])
    best, twin, also = result.rows
    assert best.verdict == "best" and best.map_delta is None
    assert twin.verdict == also.verdict == "below"  # 5 points lower on every single query
    assert twin.map_delta_ci.high < 0
    same = table_significance([[record(ap)], [record(ap)]])
    assert [r.verdict for r in same.rows] == ["best", "tied"]
    assert same.rows[1].map_delta == 0.0 and same.rows[1].map_delta_ci.low == same.rows[1].map_delta_ci.high == 0.0
    assert same.queries == 300 and same.resamples == 1000


def test_a_small_noisy_margin_is_tied_and_the_same_margin_on_many_queries_is_not():
    rng = np.random.default_rng(1)

    def pair(n):
        base = rng.random(n)
        other = np.clip(base + rng.normal(0.01, 0.2, n), 0, 1)  # +1 point on average, very noisy per query
        return [[record(other.tolist())], [record(base.tolist())]]

    assert sorted(r.verdict for r in table_significance(pair(20)).rows) == ["best", "tied"]
    assert [r.verdict for r in table_significance(pair(5000)).rows] == ["best", "below"]


def test_resampling_is_deterministic_for_a_seed():
    ap = np.random.default_rng(2).random(200).tolist()
    other = np.random.default_rng(3).random(200).tolist()
    rows = [[record(ap)], [record(other)]]
    assert table_significance(rows, seed=7) == table_significance(rows, seed=7)
    assert table_significance(rows, seed=7).rows[0].map_ci != table_significance(rows, seed=8).rows[0].map_ci


def test_the_interval_agrees_with_scipys_percentile_bootstrap():
    ap = np.random.default_rng(4).beta(2, 1, 500)
    ours = table_significance([[record(ap.tolist())]], resamples=20000).rows[0].map_ci
    reference = scipy.stats.bootstrap((ap,), np.mean, n_resamples=20000, method="percentile",
                                      random_state=np.random.default_rng(5)).confidence_interval
    assert ours.low == pytest.approx(reference.low, abs=0.003) and ours.high == pytest.approx(reference.high, abs=0.003)


def test_queries_without_a_match_are_left_out_and_r1_is_resampled_with_map():
    ap = [1.0, None, 0.5, 1.0, None, 0.25]
    first = [1, 0, 2, 1, 0, 4]
    result = table_significance([[record(ap, first)]])
    assert (result.queries, result.excluded) == (4, 2)
    row = result.rows[0]
    assert row.r1_ci.low <= 0.5 <= row.r1_ci.high and 0 <= row.r1_ci.low and row.r1_ci.high <= 1


def test_strata_are_resampled_apart_and_averaged():
    seed0 = np.random.default_rng(6).random(100)
    seed1 = np.random.default_rng(7).random(100)
    both = [record(seed0.tolist(), seed=0), record(seed1.tolist(), seed=1)]
    result = table_significance([both])
    assert result.strata == 2
    point = (seed0.mean() + seed1.mean()) / 2
    assert result.rows[0].map_ci.low < point < result.rows[0].map_ci.high
    assert QueryResults.of(both[1]).stratum == (1, -1)


def test_results_on_other_queries_are_not_paired():
    result = table_significance([[record([0.5, 0.7], digest="a")], [record([0.5, 0.6], digest="b")]])
    assert all(row.map_ci is None for row in result.rows)
    assert "other queries" in result.note
    none = table_significance([[{"seed": 0}]])
    assert none.queries == 0 and "no per-query results" in none.description


def _write(root, model, ap, seed=0, recipe_hash="aaaaaaaabbbb"):
    run = root / "sportsvreid" / f"{model}-s{seed}"
    run.mkdir(parents=True)
    mAP = float(np.mean(ap))
    r1 = float(np.mean([a == 1.0 for a in ap]))
    metrics = {"model": model, "dataset": "sportsvreid", "dataset_fingerprint": "f" * 64, "protocol": "video-scope",
               "protocol_hash": "p" * 12, "mAP": mAP, "cmc": [r1] * 50, "mINP": 0.5, "seed": seed,
               "recipe": model, "recipe_hash": recipe_hash, "num_valid_queries": len(ap), "num_skipped_queries": 0,
               "query_ap": ap, "query_first_rank": [1 if a == 1.0 else 2 for a in ap], "query_digest": "d",
               "device": "cpu (2 threads)", "inference_dtype": "float32"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "config.yaml").write_text("model: x\n")


def test_every_format_marks_the_tied_rows(tmp_path):
    rng = np.random.default_rng(8)
    base = rng.choice([1.0, 0.5, 0.25], size=60).tolist()
    _write(tmp_path, "cgclip", base)
    _write(tmp_path, "tfclip", [a if i % 20 else 0.5 for i, a in enumerate(base)])  # a hair below: noise
    _write(tmp_path, "resnet-tap", [0.1] * 60)
    [board] = build_leaderboards(collect_runs([tmp_path]).frame)
    assert [(r.label, r.significance.verdict) for r in board.measured] == [
        ("cgclip", "best"), ("tfclip", "tied"), ("resnet-tap", "below")]
    assert "60 queries" in board.intervals and "paired bootstrap" in board.intervals
    markdown = to_markdown([board])
    assert "| vs best |" in markdown and "| tied |" in markdown and "60 queries" in markdown
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(to_csv([board])))}
    assert (rows["tfclip"]["verdict"], rows["resnet-tap"]["verdict"], rows["cgclip"]["queries"]) == ("tied", "below",
                                                                                                   "60")
    assert float(rows["tfclip"]["mAP_delta_ci_low"]) <= 0 <= float(rows["tfclip"]["mAP_delta_ci_high"])
    assert " & tied & " in to_latex([board])
    from leaderboard.report import render_report

    assert 'class="ranked tied"' in render_report([board])
    accuracy, costs = board_rich([board][0])
    assert accuracy.columns[1].header.replace("\n", " ") == "vs best" and costs.title.endswith("(not ranked)")
