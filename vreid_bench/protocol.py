"""The evaluation protocol: how features are ranked and scored, one frozen, hashed object per result.

A protocol holds only what defines an evaluation: which test clips make a tracklet's feature, the distance, the
gallery each query is ranked against, the AP definition, the CMC depth, the gallery scope, re-ranking and the split.
How a model is trained (input size, normalisation, augmentation, sampler, solver) is its recipe
(:mod:`vreid_bench.recipe`); two results are ranked together only when their protocol hashes match.

Junk, in every protocol: for each query, gallery items with its identity *and* its camera are removed, and so are
items of identity -1 (MARS's junk boxes; the loaders drop them already). Queries left without a true match are
excluded and counted.

Presets, and the datasets that declare them as their default (the numbers their literature reports):

- ``all-tracklets``: each query against every test tracklet (query ∪ gallery), plain AP. MARS and LS-VID: what
  TF-CLIP, CG-CLIP, AP3D and most video-ReID code report.
- ``mars-official``: the same gallery with the trapezoid AP of the official MATLAB code (``liangzheng06/
  MARS-evaluation``, ``utils/compute_AP.m``), which reproduces that evaluation.
- ``gallery-only``: each query against the gallery without the query tracklets (torchreid, CLIP-ReID). The default
  of DukeMTMC-VideoReID, and of iLIDS-VID and PRID-2011, whose query is camera 1 and gallery camera 2 (each split
  is one result; the leaderboard reports the mean and std over the 10).
- ``video-scope``: ``gallery-only`` ranked within each video: single-camera sports and dance footage, whose
  pseudo-cameras are time segments of one video.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import Any, Literal

from vreid_bench.coerce import coerce
from vreid_bench.errors import ConfigError, UnknownNameError

TestSampling = Literal["dense", "restricted_random", "evenly"]


@dataclass(frozen=True)
class Protocol:
    """One evaluation; see the module docstring. ``split`` is set from the dataset (None where it has one)."""

    name: str
    test_sampling: TestSampling = "dense"  # dense: every consecutive clip of the model's length, features averaged
    distance: Literal["euclidean", "cosine"] = "euclidean"
    normalize_features: bool = True
    gallery: Literal["gallery", "query+gallery"] = "query+gallery"
    ap: Literal["plain", "trapezoid"] = "plain"
    max_rank: int = 50
    gallery_scope: Literal["all", "video"] = "all"
    rerank: bool = False
    rerank_k1: int = 20
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    split: int | None = None

    def __post_init__(self) -> None:
        for key in ("max_rank", "rerank_k1", "rerank_k2"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"protocol {self.name}: {key}={value!r} must be a positive integer")
        if not 0.0 <= float(self.rerank_lambda) <= 1.0:
            raise ConfigError(f"protocol {self.name}: rerank_lambda={self.rerank_lambda!r} must lie in [0, 1]")

    def hash(self) -> str:
        """Short stable hash of every setting except the name."""
        return _digest({k: v for k, v in self._fields().items() if k != "name"})

    def family_hash(self) -> str:
        """The hash without the split: results on the splits of one dataset share it (and one leaderboard table)."""
        return _digest({k: v for k, v in self._fields().items() if k not in ("name", "split")})

    def with_split(self, split: int | None) -> "Protocol":
        return dataclasses.replace(self, split=split)

    def _fields(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict[str, object]:
        return {**self._fields(), "hash": self.hash(), "family_hash": self.family_hash()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "Protocol":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]


def _digest(fields: dict[str, object]) -> str:
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(payload).hexdigest()[:12]


_ALL = Protocol(name="all-tracklets")

PRESETS: dict[str, Protocol] = {
    "all-tracklets": _ALL,
    "mars-official": dataclasses.replace(_ALL, name="mars-official", ap="trapezoid"),
    "gallery-only": dataclasses.replace(_ALL, name="gallery-only", gallery="gallery"),
    "video-scope": dataclasses.replace(_ALL, name="video-scope", gallery="gallery", gallery_scope="video"),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError(f"unknown protocol {name!r}: use one of {', '.join(PRESETS)}") from None


def apply_protocol_overrides(protocol: Protocol, overrides: dict[str, Any]) -> Protocol:
    """``protocol`` with the given fields changed (``--set protocol.<key>=value``); a changed protocol is named
    ``<name>-custom`` so that it never passes for the preset."""
    if not overrides:
        return protocol
    hints = typing.get_type_hints(Protocol)
    valid = [f.name for f in dataclasses.fields(Protocol) if f.name not in ("name", "split")]
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in valid:
            raise ConfigError(f"unknown protocol key {key!r}: valid keys are {', '.join(valid)}")
        values[key] = coerce(f"protocol.{key}", value, hints[key])
    changed = dataclasses.replace(protocol, **values)
    if changed.hash() == protocol.hash():
        return protocol
    return dataclasses.replace(changed, name=f"{protocol.name}-custom")
