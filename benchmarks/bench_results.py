"""MARS-size results work: re-scoring a run from its saved features, and the leaderboard's paired bootstrap.

Prints one JSON object:

- ``rescore_*``: a run's saved ``features.npz`` (1,980 queries and 9,330 gallery tracklets of 2,048-d features, in
  float16) loaded and scored under another protocol (every test tracklet in the gallery, trapezoid AP), with the
  file's size per 1,000 tracklets;
- ``bootstrap_*``: the paired bootstrap of one table (1,980 queries, 1,000 resamples, ``--models`` rows).

    python benchmarks/bench_results.py [--queries 1980 --gallery 9330 --dim 2048 --models 5 --resamples 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval import synthetic_problem  # noqa: E402  (the same MARS-shaped features as the ranking benchmark)

from leaderboard.significance import table_significance  # noqa: E402
from vreid_bench.data import Tracklet  # noqa: E402
from vreid_bench.engine.saved import load_features, save_features  # noqa: E402
from vreid_bench.protocol import apply_protocol_overrides, get_protocol  # noqa: E402


def _tracklets(pids: np.ndarray, camids: np.ndarray, side: str) -> list[Tracklet]:
    return [Tracklet(frames=("f",), pid=int(p), camid=int(c), tracklet_id=f"{side}:{i}")
            for i, (p, c) in enumerate(zip(pids, camids))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=1980)
    parser.add_argument("--gallery", type=int, default=9330)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    problem = synthetic_problem(args.queries, args.gallery, args.dim)
    protocol = apply_protocol_overrides(get_protocol("all-tracklets"), {"ap": "trapezoid"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.npz"
        save_features(path, torch.from_numpy(problem.q_feats), torch.from_numpy(problem.g_feats),
                      _tracklets(problem.q_pids, problem.q_camids, "query"),
                      _tracklets(problem.g_pids, problem.g_camids, "gallery"), "dense", {})
        size = path.stat().st_size
        protocol_of = load_features(path)
        protocol_of.evaluate(protocol)  # warm the compiled ranking code, as any earlier evaluation has
        start = time.perf_counter()
        saved = load_features(path)
        result = saved.evaluate(protocol)
        rescore_s = time.perf_counter() - start
    valid = ~np.isnan(result.query_ap)
    rng = np.random.default_rng(0)
    rows = []
    for model in range(args.models):  # each row a noisy copy of the measured per-query APs
        ap = np.clip(result.query_ap + rng.normal(0, 0.05, len(valid)), 0, 1)
        ap[~valid] = np.nan
        first = np.where(valid, np.where(rng.random(len(valid)) < result.cmc[0], 1, 2), 0)
        rows.append([{"query_ap": [None if np.isnan(a) else float(a) for a in ap],
                      "query_first_rank": first.tolist(), "query_digest": "d", "seed": 0, "split": None}])
    start = time.perf_counter()
    table_significance(rows, resamples=args.resamples)
    bootstrap_s = time.perf_counter() - start
    print(json.dumps({
        "benchmark": "results", "queries": args.queries, "gallery": args.gallery, "dim": args.dim,
        "rescore_s": round(rescore_s, 3), "rescore_mAP": round(result.mAP, 4),
        "features_bytes": size, "features_bytes_per_1000_tracklets": round(size / (args.queries + args.gallery) * 1000),
        "bootstrap_models": args.models, "bootstrap_resamples": args.resamples, "bootstrap_s": round(bootstrap_s, 3),
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
