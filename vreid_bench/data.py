"""The data model every loader produces and every model consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vreid_bench.captions import CaptionSet


@dataclass(frozen=True, slots=True)
class Tracklet:
    """One tracklet: an identity seen by one camera over consecutive frames.

    ``frames`` are image paths in temporal order. ``pid`` is the dataset's identity number (MARS keeps 0 for
    distractors; junk -1 never reaches a Tracklet). ``camid`` is 0-based. ``video`` names the source footage
    for single-camera datasets (it scopes ranking), ``tracklet_id`` the row of a toolkit dataset.
    """

    frames: tuple[str, ...]
    pid: int
    camid: int
    video: str | None = None
    caption: str | None = None
    tracklet_id: str | None = None

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError(f"tracklet of pid {self.pid}, camera {self.camid} has no frames")

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class SplitStats:
    identities: int
    tracklets: int
    cameras: int
    frames_min: int
    frames_mean: float
    frames_max: int


def split_stats(tracklets: Sequence[Tracklet]) -> SplitStats:
    if not tracklets:
        return SplitStats(0, 0, 0, 0, 0.0, 0)
    lengths = np.fromiter((len(t) for t in tracklets), dtype=np.int64, count=len(tracklets))
    return SplitStats(
        identities=len({t.pid for t in tracklets}),
        tracklets=len(tracklets),
        cameras=len({t.camid for t in tracklets}),
        frames_min=int(lengths.min()),
        frames_mean=float(lengths.mean()),
        frames_max=int(lengths.max()),
    )


@dataclass
class VideoReIDDataset:
    """Train, query and gallery tracklets of one dataset (one split of it, for datasets with several).

    ``default_protocol`` names the evaluation protocol results on this dataset use unless told otherwise (its
    literature's: every test tracklet for MARS, camera 1 against camera 2 for iLIDS-VID, within each video for
    single-camera sources). ``family`` names the kind of data (``mars``, ``ilidsvid`` ..., ``sports``, ``dance``
    for builds): the per-dataset section of a recipe that applies. ``benchmark`` names the published benchmark the
    dataset is (``mars`` ...; ``sportsvreid`` for a build of real SportsMOT footage; None for synthetic footage),
    whose reported numbers may sit beside its results. ``pid_names`` maps identity numbers back to the source's
    own names where those are not numbers (``<video>:<track id>`` in toolkit datasets). ``captions`` describes
    the captions its training tracklets carry (:func:`vreid_bench.captions.attach_captions`), None without any.
    """

    name: str
    train: list[Tracklet]
    query: list[Tracklet]
    gallery: list[Tracklet]
    root: str | None = None
    default_protocol: str = "gallery-only"
    family: str | None = None
    benchmark: str | None = None
    fingerprint: str | None = None
    pid_names: dict[int, str] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)
    captions: CaptionSet | None = None

    def __post_init__(self) -> None:
        self.train_pids: list[int] = sorted({t.pid for t in self.train})
        self._train_label = {pid: label for label, pid in enumerate(self.train_pids)}

    @property
    def num_train_pids(self) -> int:
        return len(self.train_pids)

    @property
    def num_cams(self) -> int:
        """Number of camera ids a model must embed: one more than the largest camid in any split."""
        cams = [t.camid for split in (self.train, self.query, self.gallery) for t in split]
        return max(cams) + 1 if cams else 0

    def train_label(self, pid: int) -> int:
        """Training label (0..num_train_pids-1) of a training identity."""
        return self._train_label[pid]

    def train_labels(self) -> np.ndarray:
        return np.array([self._train_label[t.pid] for t in self.train], dtype=np.int64)

    def stats(self) -> dict[str, SplitStats]:
        return {
            "train": split_stats(self.train),
            "query": split_stats(self.query),
            "gallery": split_stats(self.gallery),
        }
