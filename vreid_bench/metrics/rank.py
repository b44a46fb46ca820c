"""Ranking metrics of a query-gallery distance matrix: CMC, mAP and mINP.

For each query, gallery items with the query's identity *and* camera are removed, and so are gallery items of
identity -1 (junk, as the official MARS evaluation treats them); queries left without a true match are skipped
and counted, and ties in distance are broken by gallery index (what a stable sort gives). mINP follows Ye et al.
(2021).

Two AP definitions (``ap=``): ``"plain"``, the mean of the precision at each true match (torchreid, TF-CLIP,
CLIP-ReID); ``"trapezoid"``, precision integrated over recall with trapezoids as the official MARS / Market-1501
MATLAB ``compute_AP.m`` does it: ``Σ_k (p(r_k - 1) + p(r_k)) / 2 / n`` over the n true matches at ranks r_k, with
p(i) the precision of the first i valid items and p(0) = 1.

Sorting every row costs more than the whole evaluation needs: only the rank of each true match matters. Per
query, the few true matches are sorted and one pass over the row counts the valid non-matches that precede
each of them. The pass is compiled with numba (cached on disk, so only the first use ever pays the compile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike

from vreid_bench.errors import MetricInputError, NoValidQueryError


PARALLEL_MIN_DISTANCES = 1 << 20  # below this many distances, one thread is faster


AP_DEFINITIONS = ("plain", "trapezoid")


@dataclass(frozen=True, eq=False)
class RankResult:
    """Ranking metrics over the valid queries; ``cmc[k]`` is the rank-(k+1) accuracy.

    ``query_ap``, ``query_inp`` and ``query_first_rank`` hold every query's own values (NaN, NaN and 0 for a
    skipped query), so that intervals can be computed by resampling queries.
    """

    cmc: np.ndarray  # (max_rank,) float64, read-only
    mAP: float
    mINP: float
    num_valid_queries: int
    num_skipped_queries: int
    query_ap: np.ndarray  # (num_query,) float64
    query_inp: np.ndarray  # (num_query,) float64
    query_first_rank: np.ndarray  # (num_query,) int64, 1-based; 0 for a query without a true match


def evaluate_rank(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
    q_scopes: ArrayLike | None = None,
    g_scopes: ArrayLike | None = None,
    ap: str = "plain",
) -> RankResult:
    """CMC, mAP and mINP of ranking each query's gallery by ascending distance.

    ``q_scopes``/``g_scopes`` (any labels, e.g. video names) restrict each query to gallery items of its own
    scope, so that single-camera footage is ranked within one video. ``ap`` is ``"plain"`` or ``"trapezoid"``
    (see the module docstring). Raises ``NoValidQueryError`` when no query has a true match left,
    ``MetricInputError`` for mismatched shapes or NaN distances.
    """
    dist = _as_distance_matrix(distmat)
    num_q, num_g = dist.shape
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise MetricInputError(f"max_rank={max_rank!r} is not a positive integer; pass e.g. max_rank=50")
    if ap not in AP_DEFINITIONS:
        raise MetricInputError(f"ap={ap!r} is not an AP definition; use one of {', '.join(AP_DEFINITIONS)}")
    q_pid_codes, g_pid_codes = _shared_codes("q_pids", q_pids, num_q, "g_pids", g_pids, num_g)
    g_labels = np.asarray(g_pids)
    g_junk = g_labels == -1 if g_labels.dtype.kind in "iuf" else np.zeros(num_g, dtype=bool)
    q_cam_codes, g_cam_codes = _shared_codes("q_camids", q_camids, num_q, "g_camids", g_camids, num_g)
    if (q_scopes is None) != (g_scopes is None):
        raise MetricInputError("only one of q_scopes/g_scopes was given; pass both (e.g. video ids) or neither")
    if q_scopes is None:
        q_scope_codes = np.zeros(num_q, dtype=np.int64)
        g_scope_codes = np.zeros(num_g, dtype=np.int64)
    else:
        q_scope_codes, g_scope_codes = _shared_codes("q_scopes", q_scopes, num_q, "g_scopes", g_scopes, num_g)

    # Gallery indices grouped by identity, ascending within each group, so a query finds its matches directly.
    num_pids = int(max(q_pid_codes.max(initial=-1), g_pid_codes.max(initial=-1))) + 1
    group_order = np.argsort(g_pid_codes, kind="stable")
    group_start = np.zeros(num_pids + 1, dtype=np.int64)
    np.cumsum(np.bincount(g_pid_codes, minlength=num_pids), out=group_start[1:])

    labels = (
        q_pid_codes, q_cam_codes, q_scope_codes, g_pid_codes, g_cam_codes, g_scope_codes, group_order, group_start,
        np.ascontiguousarray(g_junk, dtype=np.bool_),
    )
    first_rank, query_ap, inp, nan_rows = _rank_true_matches(dist, labels, ap == "trapezoid")
    if nan_rows.any():
        row = int(np.flatnonzero(nan_rows)[0])
        raise MetricInputError(
            f"distmat has NaN distances (first in query row {row}); check the features for NaN or inf values"
        )
    valid = first_rank > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise NoValidQueryError(
            f"no query has a true match in the gallery ({num_q} queries, {num_g} gallery items, same-camera "
            "matches removed); check that query and gallery share identities seen by different cameras"
        )
    query_ap[~valid] = np.nan
    inp[~valid] = np.nan
    for array in (query_ap, inp, first_rank):
        array.flags.writeable = False
    return RankResult(
        cmc=_cmc_curve(first_rank[valid], max_rank),
        mAP=float(query_ap[valid].mean()),
        mINP=float(inp[valid].mean()),
        num_valid_queries=num_valid,
        num_skipped_queries=num_q - num_valid,
        query_ap=query_ap,
        query_inp=inp,
        query_first_rank=first_rank,
    )


def _as_distance_matrix(distmat: ArrayLike) -> np.ndarray:
    """A C-contiguous float32/float64 view or copy, the two dtypes the compiled pass is built for."""
    dist = np.asarray(distmat)
    if dist.ndim != 2:
        raise MetricInputError(f"distmat has shape {dist.shape}; pass a 2-D (num_query, num_gallery) matrix")
    if dist.dtype.kind not in "biuf":
        raise MetricInputError(f"distmat has dtype {dist.dtype}; pass real-valued distances")
    if dist.dtype not in (np.float32, np.float64):
        dist = dist.astype(np.float64)
    return np.ascontiguousarray(dist)


def _shared_codes(
    q_name: str, q_labels: ArrayLike, num_q: int, g_name: str, g_labels: ArrayLike, num_g: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map query and gallery labels of any hashable kind to int64 codes shared by both sides."""
    q_arr = _label_vector(q_name, q_labels, num_q, "query")
    g_arr = _label_vector(g_name, g_labels, num_g, "gallery")
    _, codes = np.unique(np.concatenate([q_arr, g_arr]), return_inverse=True)
    codes = codes.astype(np.int64, copy=False).reshape(-1)
    return codes[:num_q], codes[num_q:]


def _label_vector(name: str, labels: ArrayLike, expected: int, side: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.shape != (expected,):
        raise MetricInputError(
            f"{name} has shape {arr.shape} but distmat has {expected} {side} items; pass one label per {side} item"
        )
    return arr


def _cmc_curve(first_rank: np.ndarray, max_rank: int) -> np.ndarray:
    """Fraction of queries whose first true match is within each rank 1..max_rank."""
    # (V,) -> (max_rank,): ranks beyond max_rank land in an overflow bin that the curve never reaches
    counts = np.bincount(np.minimum(first_rank, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    cmc = np.cumsum(counts) / len(first_rank)
    cmc.flags.writeable = False
    return cmc


@njit(cache=True)
def _row_has_nan(row: np.ndarray) -> bool:
    for value in row:
        if np.isnan(value):
            return True
    return False


@njit(cache=True)
def _matches_before(sorted_d: np.ndarray, sorted_idx: np.ndarray, d: float, j: int) -> int:
    """How many sorted true matches rank before an item at distance ``d`` and gallery index ``j``.

    A branch-free binary search: on rows where the item's position is unpredictable it runs about twice as
    fast as the branching one.
    """
    base = 0
    size = len(sorted_d)
    while size > 1:
        half = size >> 1
        probe = base + half
        base += half * ((sorted_d[probe] < d) | ((sorted_d[probe] == d) & (sorted_idx[probe] < j)))
        size -= half
    return base + ((sorted_d[base] < d) | ((sorted_d[base] == d) & (sorted_idx[base] < j)))


# Arrays the compiled pass reads (query pid, camera, scope codes; the same for the gallery; the gallery grouped
# by pid; the gallery's junk mask) and fills (rank of the first true match, AP, INP, NaN seen), passed as tuples
# to keep signatures short.
Labels = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
               np.ndarray]
Results = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _rank_true_matches(dist: np.ndarray, labels: Labels, trapezoid: bool) -> Results:
    """Per query: rank of the first true match (0 if none), AP, INP, and whether the row holds a NaN."""
    num_q = dist.shape[0]
    results = (
        np.zeros(num_q, dtype=np.int64),
        np.zeros(num_q, dtype=np.float64),
        np.zeros(num_q, dtype=np.float64),
        np.zeros(num_q, dtype=np.bool_),
    )
    # Starting threads costs more than a small problem takes, and much more on a busy machine.
    rank_all = _rank_queries_parallel if dist.size >= PARALLEL_MIN_DISTANCES else _rank_queries_serial
    rank_all(dist, labels, results, trapezoid)
    return results


@njit(cache=True)
def _rank_one_query(i: int, dist: np.ndarray, labels: Labels, results: Results, trapezoid: bool) -> None:
    """Fill query ``i``'s entries of ``results``: one scan of its row, no sort of it."""
    q_pids, q_cams, q_scopes, g_pids, g_cams, g_scopes, group_order, group_start, g_junk = labels
    first_rank, ap, inp, nan_rows = results
    row = dist[i]
    pid, cam, scope = q_pids[i], q_cams[i], q_scopes[i]

    # True matches: the query's identity, another camera, the query's scope; ascending gallery index.
    start, stop = group_start[pid], group_start[pid + 1]
    match_idx = np.empty(stop - start, dtype=np.int64)
    num_matches = 0
    for p in range(start, stop):
        j = group_order[p]
        if g_cams[j] != cam and g_scopes[j] == scope and not g_junk[j]:
            match_idx[num_matches] = j
            num_matches += 1
    if num_matches == 0:
        nan_rows[i] = _row_has_nan(row)
        return
    match_idx = match_idx[:num_matches]
    match_d = row[match_idx]
    if _row_has_nan(match_d):
        nan_rows[i] = True
        return
    # A stable sort of index-ordered matches orders them by (distance, gallery index).
    order = np.argsort(match_d, kind="mergesort")
    sorted_d = match_d[order]
    sorted_idx = match_idx[order]
    last_d, last_j = sorted_d[-1], sorted_idx[-1]

    # between[k]: valid non-matches ranked after match k-1 and before match k.
    between = np.zeros(num_matches, dtype=np.int64)
    for j in range(dist.shape[1]):
        d = row[j]
        if d > last_d or (d == last_d and j >= last_j):
            continue  # ranked after every true match (NaN never takes this branch)
        if np.isnan(d):
            nan_rows[i] = True
            return
        if g_pids[j] == pid or g_scopes[j] != scope or g_junk[j]:
            continue  # a true match, a removed same-camera item, junk, or outside the query's scope
        between[_matches_before(sorted_d, sorted_idx, d, j)] += 1

    preceding = 0
    precision_sum = 0.0
    rank = 0
    for k in range(num_matches):
        preceding += between[k]
        rank = k + 1 + preceding
        precision = (k + 1) / rank
        if trapezoid:
            # compute_AP.m: the precision just before this match (1 before the first item) and at it, averaged.
            before = 1.0 if rank == 1 else k / (rank - 1)
            precision_sum += 0.5 * (before + precision)
        else:
            precision_sum += precision
        if k == 0:
            first_rank[i] = rank
    ap[i] = precision_sum / num_matches
    inp[i] = num_matches / rank


@njit(parallel=True, cache=True)
def _rank_queries_parallel(dist: np.ndarray, labels: Labels, results: Results, trapezoid: bool) -> None:
    for i in prange(dist.shape[0]):
        _rank_one_query(i, dist, labels, results, trapezoid)


@njit(cache=True)
def _rank_queries_serial(dist: np.ndarray, labels: Labels, results: Results, trapezoid: bool) -> None:
    for i in range(dist.shape[0]):
        _rank_one_query(i, dist, labels, results, trapezoid)
