"""MARS-size k-reciprocal re-ranking: wall time and peak extra memory.

Prints one JSON object. Peak memory is read from the kernel (VmHWM, which sees every allocation, numpy's,
BLAS's and torch's alike): the high-water mark is reset to the current RSS just before the first full-size call
where Linux allows it (/proc/self/clear_refs), and ``peak_extra_mb`` is the rise above the RSS at that point.
Features come from the same synthetic MARS-shaped problem as bench_eval.py; mAP/R1 before and after
re-ranking show that the re-ranked distances still rank well.

    python benchmarks/bench_rerank.py [--queries 1980 --gallery 9330 --dim 2048 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench_eval import median_time, synthetic_problem
from vreid_bench.metrics import evaluate_rank, l2_normalize, pairwise_distance, re_ranking


def memory_status_kb(field: str) -> int:
    """A ``VmRSS``/``VmHWM``-style field of /proc/self/status, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} field; this benchmark needs Linux")


def reset_peak_rss() -> bool:
    """Lower VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1980)
    parser.add_argument("--gallery", type=int, default=9330)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--ids", type=int, default=625)
    parser.add_argument("--distractors", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k1", type=int, default=20)
    parser.add_argument("--k2", type=int, default=6)
    parser.add_argument("--lambda-value", type=float, default=0.3)
    parser.add_argument("--block-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    problem = synthetic_problem(
        args.queries, args.gallery, args.dim, num_ids=args.ids, num_distractors=args.distractors, seed=args.seed
    )
    q_feats, g_feats = l2_normalize(problem.q_feats, axis=1), l2_normalize(problem.g_feats, axis=1)
    labels = (problem.q_pids, problem.g_pids, problem.q_camids, problem.g_camids)

    def rerank() -> np.ndarray:
        return re_ranking(
            q_feats, g_feats, k1=args.k1, k2=args.k2, lambda_value=args.lambda_value, block_size=args.block_size
        )

    start = time.perf_counter()
    re_ranking(q_feats[:8], g_feats[:64], k1=args.k1, k2=args.k2)  # load or compile the kernels
    first_call_s = time.perf_counter() - start

    peak_was_reset = reset_peak_rss()
    rss_before_kb = memory_status_kb("VmRSS")
    hwm_before_kb = memory_status_kb("VmHWM")
    reranked = rerank()
    peak_extra_kb = memory_status_kb("VmHWM") - (rss_before_kb if peak_was_reset else hwm_before_kb)
    rerank_s, reranked = median_time(rerank, args.repeats)

    before = evaluate_rank(pairwise_distance(q_feats, g_feats), *labels)
    after = evaluate_rank(reranked, *labels)
    report = {
        "queries": args.queries,
        "gallery": args.gallery,
        "dim": args.dim,
        "k1": args.k1,
        "k2": args.k2,
        "lambda_value": args.lambda_value,
        "block_size": args.block_size,
        "rerank_s": round(rerank_s, 3),
        "rerank_first_call_s": round(first_call_s, 3),
        "peak_extra_mb": round(peak_extra_kb / 1024, 1),
        "peak_measured_from": "current RSS" if peak_was_reset else "earlier peak RSS (may under-report)",
        "output_mb": round(reranked.nbytes / 2**20, 1),
        "mAP_before": round(before.mAP, 4),
        "mAP_after": round(after.mAP, 4),
        "R1_before": round(float(before.cmc[0]), 4),
        "R1_after": round(float(after.cmc[0]), 4),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
