"""re_ranking against a direct dense implementation of k-reciprocal re-ranking (Zhong et al., CVPR 2017)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from vreid_bench.errors import ConfigError
from vreid_bench.metrics import re_ranking
from vreid_bench.errors import MetricInputError


def dense_re_ranking(q: np.ndarray, g: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """The method as written in the paper, on dense (N, N) matrices, N = queries + gallery."""
    feats = np.concatenate([q, g]).astype(np.float64)
    num_q, num_all = len(q), len(feats)
    sq = (feats**2).sum(axis=1)
    dist = sq[:, None] + sq[None, :] - 2.0 * feats @ feats.T  # squared Euclidean
    original = (dist / dist.max(axis=0)).T  # each item's distances over its largest one
    initial_rank = np.argsort(original, axis=1, kind="stable")

    def k_reciprocal(i: int, k: int) -> np.ndarray:
        forward = initial_rank[i, : k + 1]
        backward = initial_rank[forward, : k + 1]
        return forward[(backward == i).any(axis=1)]

    weights = np.zeros((num_all, num_all))
    for i in range(num_all):
        reciprocal = k_reciprocal(i, k1)
        expanded = reciprocal
        for candidate in reciprocal:
            candidate_set = k_reciprocal(candidate, int(np.around(k1 / 2)))
            if len(np.intersect1d(candidate_set, reciprocal)) > 2.0 / 3.0 * len(candidate_set):
                expanded = np.append(expanded, candidate_set)
        expanded = np.unique(expanded)
        w = np.exp(-original[i, expanded])
        weights[i, expanded] = w / w.sum()
    if k2 != 1:
        weights = np.stack([weights[initial_rank[i, :k2]].mean(axis=0) for i in range(num_all)])

    intersection = np.minimum(weights[:num_q, None, :], weights[None, :, :]).sum(axis=2)  # (Q, N)
    jaccard = 1.0 - intersection / (2.0 - intersection)
    final = jaccard * (1.0 - lambda_value) + original[:num_q] * lambda_value
    return final[:, num_q:]


def clustered_features(
    rng: np.random.Generator, num_q: int, num_g: int, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features around a few identity centres, so k-reciprocal sets are neither empty nor everything."""
    centres = rng.normal(size=(max(2, (num_q + num_g) // 6), dim))
    labels = rng.integers(0, len(centres), num_q + num_g)
    feats = centres[labels] + 0.6 * rng.normal(size=(num_q + num_g, dim))
    return feats[:num_q], feats[num_q:]


@pytest.mark.parametrize(
    ("k1", "k2", "lambda_value"),
    [(20, 6, 0.3), (20, 1, 0.3), (5, 3, 0.0), (7, 1, 1.0), (3, 6, 0.5), (1, 2, 0.3), (4, 4, 0.8)],
)
def test_matches_dense_reference(k1: int, k2: int, lambda_value: float) -> None:
    rng = np.random.default_rng(k1 * 100 + k2)
    for trial in range(6):
        num_q, num_g = int(rng.integers(1, 12)), int(rng.integers(2, 60))
        q, g = clustered_features(rng, num_q, num_g, dim=int(rng.integers(2, 12)))
        expected = dense_re_ranking(q, g, k1, k2, lambda_value)
        block_size = [2048, 7, 13, 5, 16, 4][trial]  # one block, and many blocks not aligned with the queries
        result = re_ranking(q, g, k1=k1, k2=k2, lambda_value=lambda_value, block_size=block_size)
        assert result.shape == (num_q, num_g) and result.dtype == np.float32
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("k1", "k2"), [(20, 6), (4, 1), (6, 3)])
def test_ties_follow_the_stable_order(k1: int, k2: int) -> None:
    # Small integer features: every distance is exact in float32, and many are equal.
    rng = np.random.default_rng(k1 + k2)
    feats = rng.integers(0, 3, size=(40, 3)).astype(np.float32)
    q, g = feats[:8], feats[8:]
    expected = dense_re_ranking(q, g, k1, k2, 0.3)
    np.testing.assert_allclose(re_ranking(q, g, k1=k1, k2=k2, block_size=6), expected, rtol=1e-5, atol=1e-6)


def test_float32_and_torch_inputs() -> None:
    rng = np.random.default_rng(3)
    q, g = clustered_features(rng, 10, 80, dim=16)
    expected = dense_re_ranking(q, g, 20, 6, 0.3)
    from_numpy = re_ranking(q.astype(np.float32), g.astype(np.float32), block_size=32)
    from_torch = re_ranking(torch.from_numpy(q).float(), torch.from_numpy(g).float(), block_size=32)
    np.testing.assert_allclose(from_numpy, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(from_numpy, from_torch)


def test_memory_grows_with_the_output_not_with_all_pairs() -> None:
    rng = np.random.default_rng(4)
    q, g = clustered_features(rng, 200, 3800, dim=16)
    q, g = q.astype(np.float32), g.astype(np.float32)
    re_ranking(q[:5], g[:50])  # compile before measuring
    tracemalloc.start()
    result = re_ranking(q, g, block_size=512)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    all_pairs = 4000 * 4000 * 4  # one float32 (N, N) matrix: 64 MB
    assert result.shape == (200, 3800)
    assert peak < all_pairs / 2, f"peak {peak / 1e6:.1f} MB"


def test_bad_arguments_name_the_fix() -> None:
    q, g = np.ones((2, 4)), np.ones((3, 4))
    with pytest.raises(ConfigError, match="k1=0 .*k1=20"):
        re_ranking(q, g, k1=0)
    with pytest.raises(ConfigError, match="k2=2.5"):
        re_ranking(q, g, k2=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="lambda_value=1.5"):
        re_ranking(q, g, lambda_value=1.5)
    with pytest.raises(MetricInputError, match="dimension 4 but gallery features 3"):
        re_ranking(q, g[:, :3])
    with pytest.raises(MetricInputError, match=r"g_feats has shape \(0, 4\)"):
        re_ranking(q, g[:0])
    with pytest.raises(MetricInputError, match="NaN or inf"):
        re_ranking(np.full((2, 4), np.nan), g)
