"""Evaluation metrics: distances between features, k-reciprocal re-ranking, and CMC/mAP/mINP of a ranking."""

from vreid_bench.metrics.distance import l2_normalize, pairwise_distance
from vreid_bench.errors import MetricInputError, NoValidQueryError
from vreid_bench.metrics.rank import RankResult, evaluate_rank
from vreid_bench.metrics.rerank import re_ranking

__all__ = [
    "MetricInputError",
    "NoValidQueryError",
    "RankResult",
    "evaluate_rank",
    "l2_normalize",
    "pairwise_distance",
    "re_ranking",
]
