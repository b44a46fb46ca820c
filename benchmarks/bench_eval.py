"""MARS-size evaluation: distance matrix, evaluate_rank (first call and warm), and a bare argsort to beat.

Prints one JSON object. The synthetic features have identity structure (a centre per identity, an offset per
camera, noise per tracklet) so mAP and R1 are meaningful, and distractors (pid 0) in the gallery as in MARS.
``evaluate_rank_first_call_s`` is the first call in this process (it loads the compiled code from numba's cache
when one exists); ``evaluate_rank_compile_s`` is a first call with an empty cache, measured in a subprocess.

    python benchmarks/bench_eval.py [--queries 1980 --gallery 9330 --dim 2048 --repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from vreid_bench.metrics import evaluate_rank, pairwise_distance

T = TypeVar("T")


@dataclass(frozen=True)
class SyntheticProblem:
    q_feats: np.ndarray  # (Q, D) float32
    g_feats: np.ndarray  # (G, D) float32
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray


def synthetic_problem(
    num_query: int = 1980,
    num_gallery: int = 9330,
    dim: int = 2048,
    num_ids: int = 625,
    num_cams: int = 6,
    num_distractors: int = 2000,
    noise: float = 2.8,
    camera_shift: float = 0.5,
    seed: int = 0,
) -> SyntheticProblem:
    """Query and gallery features of a MARS-shaped test split; noise and camera_shift set the difficulty.

    ``noise`` is the per-tracklet noise at 2048 dimensions (mAP about 0.85); it is scaled by (dim / 2048)^(1/4),
    which keeps the spread of squared distances in the same proportion to the identity gap at any ``dim``.
    """
    rng = np.random.default_rng(seed)
    noise *= (dim / 2048) ** 0.25
    centres = rng.standard_normal((num_ids + 1, dim), dtype=np.float32)  # row 0: unused, distractors are random
    shifts = camera_shift * rng.standard_normal((num_cams, dim), dtype=np.float32)
    q_pids = np.concatenate([np.arange(1, num_ids + 1), rng.integers(1, num_ids + 1, num_query - num_ids)])
    g_pids = np.concatenate([
        rng.integers(1, num_ids + 1, num_gallery - num_distractors),
        np.zeros(num_distractors, dtype=np.int64),
    ])
    q_camids = rng.integers(0, num_cams, num_query)
    g_camids = rng.integers(0, num_cams, num_gallery)

    def tracklet_features(pids: np.ndarray, camids: np.ndarray) -> np.ndarray:
        feats = noise * rng.standard_normal((len(pids), dim), dtype=np.float32)  # (n, D)
        feats += shifts[camids]
        identity = pids > 0
        feats[identity] += centres[pids[identity]]
        feats[~identity] += rng.standard_normal((int((~identity).sum()), dim), dtype=np.float32)
        return feats

    return SyntheticProblem(
        q_feats=tracklet_features(q_pids, q_camids),
        g_feats=tracklet_features(g_pids, g_camids),
        q_pids=q_pids,
        g_pids=g_pids,
        q_camids=q_camids,
        g_camids=g_camids,
    )


def median_time(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall time of ``repeats`` calls, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


_COLD_COMPILE_SNIPPET = """
import time, numpy as np
from vreid_bench.metrics import evaluate_rank
rng = np.random.default_rng(0)
distmat = rng.random((1024, 1024), dtype=np.float32)  # large enough for the parallel path
pids = rng.integers(0, 100, 1024)
start = time.perf_counter()
evaluate_rank(distmat, pids, pids, np.zeros(1024), np.ones(1024))
print(time.perf_counter() - start)
"""


def cold_compile_seconds() -> float:
    """First-call time with an empty numba cache, in a fresh interpreter (the cost of the first use ever)."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        out = subprocess.run(
            [sys.executable, "-c", _COLD_COMPILE_SNIPPET], env=env, check=True, capture_output=True, text=True
        )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1980)
    parser.add_argument("--gallery", type=int, default=9330)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--ids", type=int, default=625)
    parser.add_argument("--distractors", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-cold-compile", action="store_true", help="do not time a compile from scratch")
    args = parser.parse_args(argv)

    problem = synthetic_problem(
        args.queries, args.gallery, args.dim, num_ids=args.ids, num_distractors=args.distractors, seed=args.seed
    )
    distance_s, distmat = median_time(lambda: pairwise_distance(problem.q_feats, problem.g_feats), args.repeats)

    def rank() -> object:
        return evaluate_rank(distmat, problem.q_pids, problem.g_pids, problem.q_camids, problem.g_camids)

    first_call_s, _ = median_time(rank, 1)
    evaluate_s, result = median_time(rank, args.repeats)
    argsort_s, _ = median_time(lambda: np.argsort(distmat, axis=1), args.repeats)
    report = {
        "queries": args.queries,
        "gallery": args.gallery,
        "dim": args.dim,
        "distance_s": round(distance_s, 4),
        "evaluate_rank_s": round(evaluate_s, 4),
        "evaluate_rank_first_call_s": round(first_call_s, 4),
        "evaluate_rank_compile_s": None if args.skip_cold_compile else round(cold_compile_seconds(), 4),
        "argsort_s": round(argsort_s, 4),
        "mAP": round(result.mAP, 4),
        "R1": round(float(result.cmc[0]), 4),
        "mINP": round(result.mINP, 4),
        "skipped_queries": result.num_skipped_queries,
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
