"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) without (N x N) matrices, N = queries + gallery.

Same result as the feature-form ``re_ranking(probFea, galFea, k1, k2, lambda_value)`` that TransReID and
CLIP-ReID ship, which builds dense N x N distance, rank and weight matrices (2.9 GB and half a minute at MARS
size). Here the squared distances are produced block by block (each block once, serving its rows and its
columns) and folded straight into each item's running list of nearest neighbours and its largest distance;
only the (Q, G) block that is returned is ever stored. Weight vectors are sparse (a few dozen entries per
item), and the Jaccard overlap uses an inverted index over the gallery's entries.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from numba import njit, prange
from numpy.typing import ArrayLike

from vreid_bench.errors import ConfigError
from vreid_bench.errors import MetricInputError

COLUMN_TILE = 16  # gallery columns one thread folds in together: one cache line of float32 products


def re_ranking(
    q_feats: ArrayLike | torch.Tensor,
    g_feats: ArrayLike | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    block_size: int = 2048,
) -> np.ndarray:
    """(Q, G) float32 re-ranked distances: (1 - lambda) * Jaccard + lambda * normalised squared distance.

    Distances are squared Euclidean between the features as given (normalise them first if the protocol
    does); each item's distances are divided by its largest distance to any of the Q + G items. ``k1`` sets
    the k-reciprocal neighbourhoods (expanded with those of size round(k1 / 2) that overlap by more than 2/3),
    ``k2`` the query expansion (1 turns it off). ``block_size`` bounds the working memory to a few
    (block_size, block_size) blocks.
    """
    _check_parameters(k1, k2, lambda_value, block_size)
    q = _as_feature_matrix("q_feats", q_feats)
    g = _as_feature_matrix("g_feats", g_feats)
    if q.shape[1] != g.shape[1]:
        raise MetricInputError(
            f"query features have dimension {q.shape[1]} but gallery features {g.shape[1]}; "
            "extract both with the same model"
        )
    dtype = np.float64 if np.float64 in (q.dtype, g.dtype) else np.float32
    feats = np.concatenate([q, g]).astype(dtype, copy=False)  # (N, D), queries first
    num_q, num_all = len(q), len(feats)

    k_reciprocal = min(k1 + 1, num_all)
    k_half = min(int(np.around(k1 / 2)) + 1, num_all)  # numpy's rounding, half to even, as in the original
    k_expand = min(k2, num_all)
    sq_norms = np.einsum("nd,nd->n", feats, feats).astype(np.float64)  # (N,)
    nn_idx, nn_dist, row_max, qg_dist = _nearest_neighbours(
        feats, sq_norms, num_q, max(k_reciprocal, k_expand), block_size
    )
    weights = _reciprocal_weights(feats, sq_norms, nn_idx, nn_dist, row_max, k_reciprocal, k_half)
    if k2 != 1:
        weights = _query_expansion(weights, nn_idx[:, :k_expand])
    _blend_jaccard(weights, num_q, qg_dist, row_max[:num_q], float(lambda_value))
    return qg_dist


def _check_parameters(k1: int, k2: int, lambda_value: float, block_size: int) -> None:
    for name, value, usual in (("k1", k1, 20), ("k2", k2, 6), ("block_size", block_size, 2048)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name}={value!r} is not a positive integer; the usual value is {name}={usual}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ConfigError(f"lambda_value={lambda_value!r} is outside [0, 1]; the usual value is 0.3")


def _as_feature_matrix(name: str, features: ArrayLike | torch.Tensor) -> np.ndarray:
    array = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if array.ndim != 2 or array.shape[0] == 0:
        raise MetricInputError(
            f"{name} has shape {array.shape}; pass a non-empty 2-D (num_items, feature_dim) array"
        )
    if array.dtype.kind not in "biuf":
        raise MetricInputError(f"{name} has dtype {array.dtype}; pass real-valued features")
    if not np.isfinite(array).all():
        raise MetricInputError(f"{name} contains NaN or inf; check the model's output before re-ranking")
    return array if array.dtype == np.float64 else array.astype(np.float32, copy=False)


def _nearest_neighbours(
    feats: np.ndarray, sq_norms: np.ndarray, num_q: int, k: int, block_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each item's k nearest items by (distance, index), its largest distance, and the raw (Q, G) distances."""
    num_all = len(feats)
    nn_dist = np.full((num_all, k), np.inf)
    nn_idx = np.full((num_all, k), -1, dtype=np.int64)
    nn_count = np.zeros(num_all, dtype=np.int64)
    row_max = np.full(num_all, -np.inf)
    qg_dist = np.empty((num_q, num_all - num_q), dtype=np.float32)
    feats_t = torch.from_numpy(feats)
    for row0 in range(0, num_all, block_size):
        rows = feats_t[row0 : row0 + block_size]
        for col0 in range(row0, num_all, block_size):  # upper triangle of blocks: the distance is symmetric
            products = (rows @ feats_t[col0 : col0 + block_size].T).numpy()  # (B, D) @ (D, B') -> (B, B')
            _fold_block(products, sq_norms, row0, col0, num_q, nn_dist, nn_idx, nn_count, row_max, qg_dist)
    return nn_idx, nn_dist, row_max, qg_dist


@njit(cache=True)
def _insert_neighbour(dists: np.ndarray, idx: np.ndarray, count: int, d: float, j: int) -> int:
    """Insert (d, j) into a row's sorted neighbour list unless it is full of nearer items; returns the count."""
    k = len(dists)
    if count == k:
        if d > dists[k - 1] or (d == dists[k - 1] and j > idx[k - 1]):
            return count
        pos = k - 1
    else:
        pos = count
        count += 1
    while pos > 0 and (dists[pos - 1] > d or (dists[pos - 1] == d and idx[pos - 1] > j)):
        dists[pos] = dists[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    dists[pos] = d
    idx[pos] = j
    return count


@njit(parallel=True, cache=True)
def _fold_block(
    products: np.ndarray,
    sq_norms: np.ndarray,
    row0: int,
    col0: int,
    num_q: int,
    nn_dist: np.ndarray,
    nn_idx: np.ndarray,
    nn_count: np.ndarray,
    row_max: np.ndarray,
    qg_dist: np.ndarray,
) -> None:
    """Fold the squared distances of one block into the neighbour lists of its rows, then of its columns."""
    num_rows, num_cols = products.shape
    k = nn_dist.shape[1]
    for r in prange(num_rows):
        i = row0 + r
        count, largest = nn_count[i], row_max[i]
        worst_d, worst_j = nn_dist[i, k - 1], nn_idx[i, k - 1]
        for c in range(num_cols):
            j = col0 + c
            d = sq_norms[i] + sq_norms[j] - 2.0 * products[r, c]
            largest = max(largest, d)
            if i < num_q <= j:
                qg_dist[i, j - num_q] = d
            if count == k and (d > worst_d or (d == worst_d and j > worst_j)):
                continue
            count = _insert_neighbour(nn_dist[i], nn_idx[i], count, d, j)
            worst_d, worst_j = nn_dist[i, k - 1], nn_idx[i, k - 1]
        nn_count[i], row_max[i] = count, largest
    if row0 == col0:
        return  # a diagonal block's rows already covered every pair in it
    for tile in prange((num_cols + COLUMN_TILE - 1) // COLUMN_TILE):
        first = tile * COLUMN_TILE
        last = min(first + COLUMN_TILE, num_cols)
        for r in range(num_rows):
            i = row0 + r
            for c in range(first, last):
                j = col0 + c
                d = sq_norms[i] + sq_norms[j] - 2.0 * products[r, c]
                if d > row_max[j]:
                    row_max[j] = d
                worst_d, worst_i = nn_dist[j, k - 1], nn_idx[j, k - 1]
                if nn_count[j] == k and (d > worst_d or (d == worst_d and i > worst_i)):
                    continue
                nn_count[j] = _insert_neighbour(nn_dist[j], nn_idx[j], nn_count[j], d, i)


def _reciprocal_weights(
    feats: np.ndarray,
    sq_norms: np.ndarray,
    nn_idx: np.ndarray,
    nn_dist: np.ndarray,
    row_max: np.ndarray,
    k_reciprocal: int,
    k_half: int,
) -> sp.csr_matrix:
    """(N, N) sparse V: exp(-normalised distance) over each item's expanded k-reciprocal set, rows summing to 1."""
    recip, recip_count = _k_reciprocal_sets(nn_idx, k_reciprocal)
    half, half_count = _k_reciprocal_sets(nn_idx, k_half)
    idx, val, count = _expanded_weights(
        feats, sq_norms, nn_idx, nn_dist, row_max, recip, recip_count, half, half_count
    )
    keep = np.arange(idx.shape[1]) < count[:, None]  # (N, width): the filled prefix of each padded row
    indptr = np.zeros(len(count) + 1, dtype=np.int64)
    np.cumsum(count, out=indptr[1:])
    num_all = len(feats)
    return sp.csr_matrix((val[keep], idx[keep], indptr), shape=(num_all, num_all))


@njit(parallel=True, cache=True)
def _k_reciprocal_sets(nn_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """R(i, k): items among i's k nearest that also have i among their k nearest (padded rows, counts)."""
    num_all = nn_idx.shape[0]
    members = np.full((num_all, k), -1, dtype=np.int64)
    counts = np.zeros(num_all, dtype=np.int64)
    for i in prange(num_all):
        for a in range(k):
            j = nn_idx[i, a]
            for b in range(k):
                if nn_idx[j, b] == i:
                    members[i, counts[i]] = j
                    counts[i] += 1
                    break
    return members, counts


@njit(parallel=True, cache=True)
def _expanded_weights(
    feats: np.ndarray,
    sq_norms: np.ndarray,
    nn_idx: np.ndarray,
    nn_dist: np.ndarray,
    row_max: np.ndarray,
    recip: np.ndarray,
    recip_count: np.ndarray,
    half: np.ndarray,
    half_count: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: its expanded k-reciprocal set, ascending, and normalised exp(-distance) weights over it.

    Rows are padded to the largest possible set and built in place; ``out_count`` says how much of each is used.
    """
    num_all, k = recip.shape
    width = k + k * half.shape[1]
    out_idx = np.empty((num_all, width), dtype=np.int64)
    out_val = np.empty((num_all, width), dtype=np.float64)
    out_count = np.zeros(num_all, dtype=np.int64)
    for i in prange(num_all):
        members = out_idx[i]
        base_size = recip_count[i]
        members[:base_size] = recip[i, :base_size]
        size = base_size
        for a in range(base_size):
            cand = recip[i, a]
            cand_size = half_count[cand]
            overlap = 0
            for b in range(cand_size):
                for c in range(base_size):
                    if half[cand, b] == recip[i, c]:
                        overlap += 1
                        break
            if overlap > 2.0 / 3.0 * cand_size:
                members[size : size + cand_size] = half[cand, :cand_size]
                size += cand_size
        members[:size].sort()
        unique = 0
        for a in range(size):
            if unique == 0 or members[a] != members[unique - 1]:
                members[unique] = members[a]
                unique += 1

        total = 0.0
        for a in range(unique):
            j = members[a]
            d = _known_distance(nn_idx[i], nn_dist[i], j)
            if np.isnan(d):  # outside i's own neighbour list: compute it
                d = sq_norms[i] + sq_norms[j] - 2.0 * np.dot(feats[i], feats[j])
            w = np.exp(-d / row_max[i])
            out_val[i, a] = w
            total += w
        out_val[i, :unique] /= total
        out_count[i] = unique
    return out_idx, out_val, out_count


@njit(cache=True)
def _known_distance(idx: np.ndarray, dists: np.ndarray, j: int) -> float:
    for a in range(len(idx)):
        if idx[a] == j:
            return dists[a]
    return np.nan


def _query_expansion(weights: sp.csr_matrix, neighbours: np.ndarray) -> sp.csr_matrix:
    """Replace each item's weight vector by the mean over its k2 nearest items (itself included)."""
    num_all, k2 = neighbours.shape
    averaging = sp.csr_matrix(
        (np.full(num_all * k2, 1.0 / k2), neighbours.ravel(), np.arange(0, num_all * k2 + 1, k2)),
        shape=(num_all, num_all),
    )
    return (averaging @ weights).tocsr()


def _blend_jaccard(
    weights: sp.csr_matrix, num_q: int, qg_dist: np.ndarray, q_row_max: np.ndarray, lambda_value: float
) -> None:
    """Turn the raw (Q, G) distances in place into (1 - lambda) * Jaccard + lambda * normalised distance."""
    queries = weights[:num_q]
    gallery_by_entry = weights[num_q:].tocsc()  # inverted index: for each entry, the gallery items holding it
    _blend_rows(
        queries.indptr, queries.indices, queries.data,
        gallery_by_entry.indptr, gallery_by_entry.indices, gallery_by_entry.data,
        qg_dist, q_row_max, lambda_value,
    )


@njit(parallel=True, cache=True)
def _blend_rows(
    q_indptr: np.ndarray,
    q_entries: np.ndarray,
    q_values: np.ndarray,
    g_indptr: np.ndarray,
    g_items: np.ndarray,
    g_values: np.ndarray,
    qg_dist: np.ndarray,
    q_row_max: np.ndarray,
    lambda_value: float,
) -> None:
    num_q, num_g = qg_dist.shape
    for i in prange(num_q):
        shared = np.zeros(num_g)  # sum over entries of min(V[i], V[j]), the Jaccard intersection
        for p in range(q_indptr[i], q_indptr[i + 1]):
            entry, value = q_entries[p], q_values[p]
            for t in range(g_indptr[entry], g_indptr[entry + 1]):
                shared[g_items[t]] += min(value, g_values[t])
        for j in range(num_g):
            jaccard = 1.0 - shared[j] / (2.0 - shared[j])
            qg_dist[i, j] = (1.0 - lambda_value) * jaccard + lambda_value * (qg_dist[i, j] / q_row_max[i])
