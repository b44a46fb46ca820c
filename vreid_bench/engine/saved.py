"""A run's test features on disk: what its metrics were computed from, so any protocol re-scores them in seconds.

``features.npz`` in the run directory holds the query and gallery features under the run's own test sampling
(``features-<sampling>.npz`` for another sampling, once extracted) with every tracklet's identity, camera, video and
id. Features are stored in float16 (float32 where float16 would overflow) and a run's metrics are always computed
from the stored values, so re-scoring reproduces them exactly and a re-extraction on the same device gives the
same numbers. The file is written atomically before ``metrics.json``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vreid_bench.data import Tracklet
from vreid_bench.errors import ConfigError
from vreid_bench.evaluation import Labels, evaluate_arrays
from vreid_bench.io import atomic_write, atomic_write_text
from vreid_bench.metrics import RankResult
from vreid_bench.protocol import Protocol

FEATURES_FILE = "features.npz"
FORMAT_VERSION = 1


def features_file(sampling: str, own_sampling: str) -> str:
    """The file name of the features extracted under ``sampling`` for a run whose protocol uses ``own_sampling``."""
    return FEATURES_FILE if sampling == own_sampling else f"features-{sampling}.npz"


def storable(features: torch.Tensor) -> torch.Tensor:
    """Features as they are stored, float16 unless that would overflow; the values every metric is computed from."""
    half = features.half()
    return half if bool(torch.isfinite(half).all()) else features.float()


def tracklet_ids(tracklets: Sequence[Tracklet], side: str) -> list[str]:
    """Each tracklet's dataset id (``test:17`` for MARS ...), or ``<side>:<position>`` where it has none."""
    return [t.tracklet_id or f"{side}:{i}" for i, t in enumerate(tracklets)]


def query_digest(ids: Sequence[str]) -> str:
    """Short hash of the query list in order: results are compared query by query only when theirs agree."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SavedFeatures:
    """Query and gallery features with their labels, as one run stored them."""

    query: np.ndarray  # (Q, D) float16 or float32
    gallery: np.ndarray  # (G, D)
    query_labels: Labels
    gallery_labels: Labels
    query_ids: np.ndarray  # (Q,) str
    gallery_ids: np.ndarray  # (G,) str
    sampling: str
    meta: dict[str, Any]

    def evaluate(self, protocol: Protocol) -> RankResult:
        if protocol.test_sampling != self.sampling:
            raise ConfigError(f"these features were extracted with {self.sampling} test clips; protocol "
                              f"{protocol.name} needs {protocol.test_sampling} ones (extract them again)")
        return evaluate_arrays(self.query, self.gallery, self.query_labels, self.gallery_labels, protocol)

    @property
    def digest(self) -> str:
        return query_digest([str(i) for i in self.query_ids])


def save_features(path: Path, query: torch.Tensor, gallery: torch.Tensor, query_tracklets: Sequence[Tracklet],
                  gallery_tracklets: Sequence[Tracklet], sampling: str, meta: dict[str, Any]) -> None:
    """Write the stored form of the features (:func:`storable`) and the tracklets' labels to ``path``."""
    q, g = Labels.of(query_tracklets), Labels.of(gallery_tracklets)
    arrays = {
        "query": storable(query).numpy(), "gallery": storable(gallery).numpy(),
        "query_pids": q.pids, "query_camids": q.camids, "query_videos": q.videos,
        "gallery_pids": g.pids, "gallery_camids": g.camids, "gallery_videos": g.videos,
        "query_ids": np.array(tracklet_ids(query_tracklets, "query"), dtype=str),
        "gallery_ids": np.array(tracklet_ids(gallery_tracklets, "gallery"), dtype=str),
        "meta": np.array(json.dumps({**meta, "sampling": sampling, "format_version": FORMAT_VERSION})),
    }
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_features(path: str | os.PathLike[str]) -> SavedFeatures:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: the run saved no features for that test sampling; "
                          f"`vreid eval {path.parent}` extracts and saves them")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return SavedFeatures(
                query=data["query"], gallery=data["gallery"],
                query_labels=Labels(data["query_pids"], data["query_camids"], data["query_videos"]),
                gallery_labels=Labels(data["gallery_pids"], data["gallery_camids"], data["gallery_videos"]),
                query_ids=data["query_ids"], gallery_ids=data["gallery_ids"], sampling=meta["sampling"], meta=meta)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path} is not a readable features file ({type(exc).__name__}: {exc}); evaluate the run "
                          "again to rewrite it") from None


def export_features(saved: SavedFeatures, out: str | os.PathLike[str], fmt: str) -> Path:
    """Hand the features to other tools: ``npz`` (arrays in float32 with their labels) or ``csv`` (one row per
    tracklet: side, id, pid, camid, video, then the feature values)."""
    out = Path(out)
    if fmt == "npz":
        arrays = {"query": saved.query.astype(np.float32), "gallery": saved.gallery.astype(np.float32),
                  "query_pids": saved.query_labels.pids, "query_camids": saved.query_labels.camids,
                  "query_videos": saved.query_labels.videos, "query_ids": saved.query_ids,
                  "gallery_pids": saved.gallery_labels.pids, "gallery_camids": saved.gallery_labels.camids,
                  "gallery_videos": saved.gallery_labels.videos, "gallery_ids": saved.gallery_ids}
        atomic_write(out, lambda handle: np.savez(handle, **arrays))
        return out
    if fmt != "csv":
        raise ConfigError(f"unknown export format {fmt!r}: use npz or csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    dim = saved.query.shape[1]
    writer.writerow(["side", "tracklet_id", "pid", "camid", "video", *(f"f{i}" for i in range(dim))])
    for side, features, labels, ids in (("query", saved.query, saved.query_labels, saved.query_ids),
                                        ("gallery", saved.gallery, saved.gallery_labels, saved.gallery_ids)):
        for row in range(len(features)):
            writer.writerow([side, ids[row], int(labels.pids[row]), int(labels.camids[row]), labels.videos[row],
                             *(f"{float(v):.6g}" for v in features[row])])
    atomic_write_text(out, buffer.getvalue())
    return out
