"""Query-gallery distances between feature vectors.

Computed with torch, on the device the features live on, one block of queries at a time: a full-size
temporary next to the (num_query, num_gallery) output would double the peak memory of a MARS-size evaluation.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import torch
from numpy.typing import ArrayLike

from vreid_bench.errors import ConfigError, UnknownNameError
from vreid_bench.errors import MetricInputError

Metric = Literal["euclidean", "cosine"]
METRICS: tuple[str, ...] = ("euclidean", "cosine")
NORM_EPS = 1e-12  # a zero vector stays zero instead of becoming NaN

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def l2_normalize(features: ArrayOrTensor, axis: int = -1, eps: float = NORM_EPS) -> ArrayOrTensor:
    """Scale each vector along ``axis`` to unit L2 norm; returns the input's type (numpy array or tensor)."""
    if isinstance(features, torch.Tensor):
        return torch.nn.functional.normalize(features, p=2.0, dim=axis, eps=eps)
    features = np.asarray(features)
    norms = np.linalg.norm(features, axis=axis, keepdims=True)
    return features / np.maximum(norms, eps)


def pairwise_distance(
    q: ArrayLike | torch.Tensor,
    g: ArrayLike | torch.Tensor,
    metric: Metric = "euclidean",
    normalize: bool = True,
    chunk_size: int = 1024,
) -> np.ndarray:
    """(num_query, num_gallery) float32 distances between query and gallery feature rows.

    ``euclidean`` uses the matmul form |q|^2 + |g|^2 - 2 q.g (clamped at 0 before the square root), on
    L2-normalised features unless ``normalize=False``. ``cosine`` is 1 - cos(q, g), for which normalising is
    implied. Peak memory beyond the output is a few (chunk_size, num_gallery) blocks.
    """
    if metric not in METRICS:
        raise UnknownNameError(f"unknown distance metric {metric!r}; use one of: {', '.join(METRICS)}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ConfigError(f"chunk_size={chunk_size!r} is not a positive integer; pass e.g. chunk_size=1024")
    q_t = _as_feature_tensor("q", q)
    g_t = _as_feature_tensor("g", g)
    if q_t.shape[1] != g_t.shape[1]:
        raise MetricInputError(
            f"query features have dimension {q_t.shape[1]} but gallery features {g_t.shape[1]}; "
            "extract both with the same model"
        )
    if q_t.device != g_t.device:
        g_t = g_t.to(q_t.device)
    dtype = torch.promote_types(torch.promote_types(q_t.dtype, g_t.dtype), torch.float32)
    q_t, g_t = q_t.to(dtype), g_t.to(dtype)
    if metric == "cosine" or normalize:
        g_t = l2_normalize(g_t, axis=1)
    # The matmul adds this row to every block row, so each block costs one fused matmul and few passes.
    if metric == "cosine":
        offset, alpha = torch.ones(1, 1, dtype=dtype, device=g_t.device), -1.0  # 1 - q.g
    else:
        offset, alpha = g_t.pow(2).sum(dim=1).unsqueeze(0), -2.0  # (1, G): |g|^2 - 2 q.g

    out = np.empty((q_t.shape[0], g_t.shape[0]), dtype=np.float32)
    out_t = torch.from_numpy(out)
    with torch.no_grad():
        for start in range(0, q_t.shape[0], chunk_size):
            block = q_t[start : start + chunk_size]
            if metric == "cosine" or normalize:
                block = l2_normalize(block, axis=1)
            dist = torch.addmm(offset, block, g_t.T, alpha=alpha)  # (C, D) @ (D, G) -> (C, G)
            if metric == "euclidean":
                dist.add_(block.pow(2).sum(dim=1, keepdim=True)).clamp_(min=0.0).sqrt_()
            out_t[start : start + block.shape[0]].copy_(dist)
    return out


def _as_feature_tensor(name: str, features: ArrayLike | torch.Tensor) -> torch.Tensor:
    """A 2-D floating tensor sharing memory with the input where it can."""
    if isinstance(features, torch.Tensor):
        tensor = features.detach()
    else:
        array = np.asarray(features)
        if array.dtype.kind not in "biuf":
            raise MetricInputError(f"{name} features have dtype {array.dtype}; pass real-valued features")
        tensor = torch.from_numpy(np.require(array, requirements=["C", "W"]))
    if tensor.ndim != 2:
        raise MetricInputError(
            f"{name} features have shape {tuple(tensor.shape)}; pass a 2-D (num_items, feature_dim) array"
        )
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise MetricInputError(f"{name} features have dtype {tensor.dtype}; pass real-valued features")
    return tensor
