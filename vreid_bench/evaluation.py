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
    q = _as_numpy(query_feats)
    g = _as_numpy(gallery_feats)
    if len(q) != len(query) or len(g) != len(gallery):
        raise ValueError(f"{len(q)} query features for {len(query)} tracklets, {len(g)} gallery features for "
                         f"{len(gallery)} tracklets")
    g_pids, g_cams, g_videos = gallery.pids, gallery.camids, gallery.videos
    if protocol.gallery == "query+gallery":
        g = np.concatenate([q, g])
        g_pids, g_cams, g_videos = (np.concatenate(a) for a in ((query.pids, g_pids), (query.camids, g_cams),
                                                               (query.videos, g_videos)))
    if protocol.gallery_scope == "video":
        if not all(query.videos) or not all(g_videos):
            raise ConfigError(f"protocol {protocol.name} ranks within each video but this dataset's tracklets have "
                              "no video; use protocol gallery-only")
        scopes: tuple[np.ndarray | None, np.ndarray | None] = (query.videos, g_videos)
    else:
        scopes = (None, None)
    if protocol.rerank:
        if protocol.normalize_features:
            q, g = l2_normalize(q), l2_normalize(g)
        distmat = re_ranking(q, g, k1=protocol.rerank_k1, k2=protocol.rerank_k2, lambda_value=protocol.rerank_lambda)
    else:
        distmat = pairwise_distance(q, g, metric=protocol.distance, normalize=protocol.normalize_features)
    return evaluate_rank(distmat, query.pids, g_pids, query.camids, g_cams, max_rank=protocol.max_rank,
                         q_scopes=scopes[0], g_scopes=scopes[1], ap=protocol.ap)


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)
