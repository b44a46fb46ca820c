"""pairwise_distance and l2_normalize against the direct formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vreid_bench.errors import ConfigError, UnknownNameError
from vreid_bench.metrics import l2_normalize, pairwise_distance
from vreid_bench.errors import MetricInputError


def direct_euclidean(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.sqrt(((q[:, None, :] - g[None, :, :]) ** 2).sum(axis=2))


def direct_cosine(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(g, axis=1)[None, :]
    return 1.0 - (q @ g.T) / norms


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def features() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(13, 24)) * 3.0, rng.normal(size=(29, 24)) * 3.0


@pytest.mark.parametrize("as_torch", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_euclidean_on_normalised_features(features, as_torch: bool, chunk_size: int) -> None:
    q, g = features
    q_in, g_in = (torch.from_numpy(q), torch.from_numpy(g)) if as_torch else (q, g)
    dist = pairwise_distance(q_in, g_in, chunk_size=chunk_size)
    assert isinstance(dist, np.ndarray) and dist.dtype == np.float32 and dist.shape == (13, 29)
    np.testing.assert_allclose(dist, direct_euclidean(unit_rows(q), unit_rows(g)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("as_torch", [False, True])
def test_euclidean_without_normalising(features, as_torch: bool) -> None:
    q, g = (x.astype(np.float32) for x in features)
    q_in, g_in = (torch.from_numpy(q), torch.from_numpy(g)) if as_torch else (q, g)
    dist = pairwise_distance(q_in, g_in, normalize=False, chunk_size=4)
    np.testing.assert_allclose(dist, direct_euclidean(q.astype(np.float64), g.astype(np.float64)), rtol=1e-4)


@pytest.mark.parametrize("as_torch", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_cosine_is_one_minus_cosine_similarity(features, as_torch: bool, normalize: bool) -> None:
    q, g = features
    q_in, g_in = (torch.from_numpy(q), torch.from_numpy(g)) if as_torch else (q, g)
    dist = pairwise_distance(q_in, g_in, metric="cosine", normalize=normalize, chunk_size=3)
    np.testing.assert_allclose(dist, direct_cosine(q, g), rtol=1e-5, atol=1e-6)


def test_identical_vectors_are_at_distance_zero_never_nan() -> None:
    rng = np.random.default_rng(1)
    q = rng.normal(size=(50, 64)).astype(np.float32)
    dist = pairwise_distance(q, q)
    assert np.isfinite(dist).all() and (dist >= 0).all()
    np.testing.assert_allclose(np.diag(dist), 0.0, atol=1e-3)  # float32 matmul form: sqrt of rounding error


def test_zero_vectors_stay_finite() -> None:
    q = np.zeros((2, 8), dtype=np.float32)
    g = np.eye(3, 8, dtype=np.float32)
    np.testing.assert_allclose(pairwise_distance(q, g), 1.0)  # |0 - unit| = 1
    np.testing.assert_allclose(pairwise_distance(q, g, metric="cosine"), 1.0)


def test_torch_half_and_integer_inputs_are_promoted() -> None:
    q = torch.tensor([[3.0, 4.0]], dtype=torch.float16)
    g = np.array([[3, 4], [0, 5]])
    np.testing.assert_allclose(pairwise_distance(q, g, normalize=False), [[0.0, np.sqrt(10.0)]], atol=1e-3)


def test_inputs_are_left_untouched(features) -> None:
    q, g = features
    q_copy, g_copy = q.copy(), g.copy()
    pairwise_distance(q, g)
    np.testing.assert_array_equal(q, q_copy)
    np.testing.assert_array_equal(g, g_copy)


@pytest.mark.parametrize("as_torch", [False, True])
def test_l2_normalize_keeps_the_input_type(as_torch: bool) -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = l2_normalize(torch.from_numpy(x) if as_torch else x)
    assert isinstance(out, torch.Tensor) == as_torch
    np.testing.assert_allclose(np.asarray(out), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(l2_normalize(x, axis=0))[:, 1], [1.0, 0.0])


def test_bad_arguments_name_the_fix(features) -> None:
    q, g = features
    with pytest.raises(UnknownNameError, match="'manhattan'.*euclidean, cosine"):
        pairwise_distance(q, g, metric="manhattan")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="chunk_size=0"):
        pairwise_distance(q, g, chunk_size=0)
    with pytest.raises(MetricInputError, match="dimension 24 but gallery features 23"):
        pairwise_distance(q, g[:, :-1])
    with pytest.raises(MetricInputError, match=r"q features have shape \(24,\)"):
        pairwise_distance(q[0], g)
    with pytest.raises(MetricInputError, match="dtype <U1"):
        pairwise_distance(np.array([["a"]]), g)
