"""Rank query features against gallery features the way a protocol says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vreid_bench.data import Tracklet
from vreid_bench.errors import ConfigError
from vreid_bench.metrics import RankResult, evaluate_rank, l2_normalize, pairwise_distance, re_ranking
from vreid_bench.protocol import Protocol


@dataclass(frozen=True)
class Labels:
    """What ranking needs of one side (query or gallery), one entry per tracklet."""

    pids: np.ndarray  # (N,) int64
    camids: np.ndarray  # (N,) int64
    videos: np.ndarray  # (N,) str; "" where the dataset has no videos

    @classmethod
    def of(cls, tracklets: Sequence[Tracklet]) -> "Labels":
        return cls(pids=np.fromiter((t.pid for t in tracklets), dtype=np.int64, count=len(tracklets)),
                   camids=np.fromiter((t.camid for t in tracklets), dtype=np.int64, count=len(tracklets)),
                   videos=np.array([t.video or "" for t in tracklets], dtype=str))

    def __len__(self) -> int:
        return len(self.pids)


def evaluate_features(query_feats: np.ndarray | torch.Tensor, gallery_feats: np.ndarray | torch.Tensor,
                      query: Sequence[Tracklet], gallery: Sequence[Tracklet], protocol: Protocol) -> RankResult:
    """mAP / CMC / mINP of query features ranked against gallery features under ``protocol``."""
    return evaluate_arrays(query_feats, gallery_feats, Labels.of(query), Labels.of(gallery), protocol)


def evaluate_arrays(query_feats: np.ndarray | torch.Tensor, gallery_feats: np.ndarray | torch.Tensor,
                    query: Labels, gallery: Labels, protocol: Protocol) -> RankResult:
    """mAP / CMC / mINP of query features ranked against gallery features under ``protocol``.

    ``gallery="query+gallery"`` ranks against every test tracklet (the query itself is removed like any
    same-camera match); ``gallery_scope="video"`` keeps for each query only the gallery tracklets of its own video.
    """
    problem = ranking_problem(query_feats, gallery_feats, query, gallery, protocol)
    scopes = (problem.query.videos, problem.gallery.videos) if problem.scoped else (None, None)
    return evaluate_rank(problem.distmat, problem.query.pids, problem.gallery.pids, problem.query.camids,
                         problem.gallery.camids, max_rank=protocol.max_rank, q_scopes=scopes[0], g_scopes=scopes[1],
                         ap=protocol.ap)


@dataclass(frozen=True)
class RankingProblem:
    """What a protocol ranks: the distances of every query to every gallery item, with both sides' labels.

    With ``gallery="query+gallery"`` the gallery side is the queries followed by the gallery (``from_query``
    of them); ``scoped`` says each query is ranked within its own video.
    """

    distmat: np.ndarray  # (Q, G)
    query: Labels
    gallery: Labels
    scoped: bool
    from_query: int

    def ranked(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Query ``i``'s gallery as the metric ranks it: indices by ascending (distance, index), without junk,
        same-camera matches or other videos; and whether each is a true match."""
        pid, cam = self.query.pids[i], self.query.camids[i]
        g = self.gallery
        keep = (g.pids != -1) & ~((g.pids == pid) & (g.camids == cam))
        if self.scoped:
            keep &= g.videos == self.query.videos[i]
        candidates = np.flatnonzero(keep)
        order = candidates[np.argsort(self.distmat[i, candidates], kind="stable")]
        return order, g.pids[order] == pid


def ranking_problem(query_feats: np.ndarray | torch.Tensor, gallery_feats: np.ndarray | torch.Tensor,
                    query: Labels, gallery: Labels, protocol: Protocol) -> RankingProblem:
    """The distance matrix and labels ``protocol`` ranks (see :class:`RankingProblem`)."""
    q = _as_numpy(query_feats)
    g = _as_numpy(gallery_feats)
    if len(q) != len(query) or len(g) != len(gallery):
        raise ValueError(f"{len(q)} query features for {len(query)} tracklets, {len(g)} gallery features for "
                         f"{len(gallery)} tracklets")
    ranked_gallery, from_query = gallery, 0
    if protocol.gallery == "query+gallery":
        g = np.concatenate([q, g])
        ranked_gallery = Labels(*(np.concatenate(a) for a in ((query.pids, gallery.pids),
                                                               (query.camids, gallery.camids),
                                                               (query.videos, gallery.videos))))
        from_query = len(q)
    scoped = protocol.gallery_scope == "video"
    if scoped and (not all(query.videos) or not all(ranked_gallery.videos)):
        raise ConfigError(f"protocol {protocol.name} ranks within each video but this dataset's tracklets have "
                          "no video; use protocol gallery-only")
    if protocol.rerank:
        if protocol.normalize_features:
            q, g = l2_normalize(q), l2_normalize(g)
        distmat = re_ranking(q, g, k1=protocol.rerank_k1, k2=protocol.rerank_k2, lambda_value=protocol.rerank_lambda)
    else:
        distmat = pairwise_distance(q, g, metric=protocol.distance, normalize=protocol.normalize_features)
    return RankingProblem(np.asarray(distmat), query, ranked_gallery, scoped, from_query)


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)
