"""The evaluation protocol: one frozen, hashed object recorded with every result.

Two results are only ranked together when their protocol hashes match. The hash covers every field but the
name, so a renamed copy of a protocol compares equal and any changed setting does not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from vreid_bench.errors import UnknownNameError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Protocol:
    name: str
    height: int = 256
    width: int = 128
    seq_len: int = 8
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # training clips
    train_sampling: Literal["restricted_random", "evenly"] = "restricted_random"
    num_ids_per_batch: int = 4  # P
    num_tracklets_per_id: int = 4  # K
    flip_p: float = 0.5
    erasing_p: float = 0.5
    # test features
    test_sampling: Literal["dense", "restricted_random", "evenly"] = "dense"
    distance: Literal["euclidean", "cosine"] = "euclidean"
    normalize_features: bool = True
    # ranking
    max_rank: int = 50
    gallery: Literal["gallery", "query+gallery"] = "gallery"
    gallery_scope: Literal["all", "video"] = "all"
    rerank: bool = False

    def hash(self) -> str:
        """Short stable hash of every setting except the name."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}
        payload = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    def to_dict(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "hash": self.hash()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "Protocol":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)  # type: ignore[arg-type]


_P1 = Protocol(name="vreid-p1")

PRESETS: dict[str, Protocol] = {
    # The default for multi-camera datasets: torchreid / CLIP-ReID ranking against the gallery alone.
    "vreid-p1": _P1,
    # Single-camera sources (sports, dance): a query is ranked only against tracklets of its own video, so
    # every negative is a teammate or opponent from the same footage.
    "vreid-p1-video": dataclasses.replace(_P1, name="vreid-p1-video", gallery_scope="video"),
    # TF-CLIP's published evaluation ranks each query against query ∪ gallery; only for reproducing its numbers.
    "tfclip-mars": dataclasses.replace(_P1, name="tfclip-mars", gallery="query+gallery"),
    # k-reciprocal re-ranking on top of vreid-p1.
    "vreid-p1-rerank": dataclasses.replace(_P1, name="vreid-p1-rerank", rerank=True),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown protocol {name!r}: use one of {', '.join(PRESETS)}"
        ) from None
