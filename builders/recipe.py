"""Recipe ``vreid-build-1``: how annotated boxes become a video-ReID dataset.

Everything here is pure array work on a :class:`~builders.mot.TrackTable` (no files), so the rules can be read,
tested and changed in one place, and the same curation serves ground truth and, later, tracker output.

Order of the rules, per video:

1. drop boxes lower than ``min_box_height``, within ``border_margin`` px of the frame border (cut people), or
   covered beyond ``max_overlap`` of their area by another box of the same frame (occluded people);
2. split each track where more than ``max_gap`` frames are missing, and drop runs shorter than
   ``min_track_frames``;
3. pseudo-cameras: an identity's remaining frames are cut into ``segments`` equal time spans separated by
   ``segment_gap_s`` seconds (frames in the gaps are dropped, so query and gallery are never near-duplicates);
   the span index is the camera id. An identity too short for spans of ``min_track_frames`` stays whole on
   camera 0;
4. each run inside a span is a tracklet (again at least ``min_track_frames``), cut into consecutive near-equal
   parts when longer than ``max_tracklet_frames``;
5. train/test by the source's split (train -> train; val and test -> test, as the source's test labels are
   hidden), one split per group of videos that may share people (:mod:`builders.groups`: a SportsMOT match);
   sources without split lists send a seeded ``unsplit_test_fraction`` of their groups to test. When that leaves
   one side empty (a single video, a single match), each video is split in time instead (``few_videos``
   ``time``): identities seen before ``time_split_at`` of the footage train, on that part only; identities first
   seen after a gap of ``time_split_gap_s`` seconds past it are the test set; identities first seen in the gap
   are dropped. No identity is on both sides. ``few_videos`` ``test`` keeps such a build on one side (an
   all-test set, to evaluate trained weights on), ``refuse`` stops it with its fix;
6. test: identities whose tracklets sit on one camera only are dropped (counted), so that every query has a
   true match on another camera; one tracklet per identity, chosen from the seed, is the query.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from builders.mot import TrackTable
from vreid_bench.errors import ConfigError

RECIPE_NAME = "vreid-build-1"
FEW_VIDEOS = ("time", "test", "refuse")


@dataclass(frozen=True)
class Recipe:
    """Parameters of ``vreid-build-1``; all of them are recorded in the dataset's manifest."""

    min_track_frames: int = 16  # shortest run and shortest tracklet kept
    min_box_height: float = 64.0  # px at the source resolution
    border_margin: int = 2  # px; boxes this close to a frame border are cut people
    max_overlap: float = 0.5  # largest share of a box's area another box may cover
    max_gap: int = 5  # missing frames bridged inside one run
    segments: int = 2  # pseudo-cameras per identity
    segment_gap_s: float = 1.0  # seconds of video dropped between pseudo-cameras
    crop_margin: float = 0.1  # added on each side, as a fraction of the box's width and height
    crop_size: tuple[int, int] = (256, 128)  # (height, width)
    jpeg_quality: int = 95
    max_tracklet_frames: int | None = None  # longer tracklets are cut into consecutive parts
    unsplit_test_fraction: float = 0.5  # share of test groups where the source has no split lists
    seed: int = 0  # query choice and the split of unsplit groups
    few_videos: str = "time"  # too few videos (groups) for both splits: "time" (split each in time), "test" (an
    #                           evaluation-only dataset) or "refuse"
    time_split_at: float = 0.5  # fraction of a video's footage before the time split
    time_split_gap_s: float = 2.0  # seconds between the training part and the test part

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_size", tuple(int(v) for v in self.crop_size))
        checks = (
            (self.min_track_frames >= 1, "min_track_frames", "use 1 or more"),
            (self.min_box_height >= 0, "min_box_height", "use 0 or more pixels"),
            (self.border_margin >= 0, "border_margin", "use 0 or more pixels"),
            (0 < self.max_overlap <= 1, "max_overlap", "use a fraction in (0, 1]"),
            (self.max_gap >= 0, "max_gap", "use 0 or more frames"),
            (self.segments >= 1, "segments", "use 1 or more"),
            (self.segment_gap_s >= 0, "segment_gap_s", "use 0 or more seconds"),
            (0 <= self.crop_margin < 1, "crop_margin", "use a fraction in [0, 1)"),
            (len(self.crop_size) == 2 and min(self.crop_size) >= 8, "crop_size", "use (height, width) of 8 px or more"),
            (1 <= self.jpeg_quality <= 100, "jpeg_quality", "use 1..100"),
            (self.max_tracklet_frames is None or self.max_tracklet_frames >= self.min_track_frames,
             "max_tracklet_frames", f"use at least min_track_frames ({self.min_track_frames}) or none"),
            (0 <= self.unsplit_test_fraction <= 1, "unsplit_test_fraction", "use a fraction in [0, 1]"),
            (self.few_videos in FEW_VIDEOS, "few_videos", f"use {', '.join(FEW_VIDEOS)}"),
            (0 < self.time_split_at < 1, "time_split_at", "use a fraction in (0, 1)"),
            (self.time_split_gap_s >= 0, "time_split_gap_s", "use 0 or more seconds"),
        )
        for ok, name, fix in checks:
            if not ok:
                raise ConfigError(f"recipe {RECIPE_NAME}: {name}={getattr(self, name)!r} is invalid; {fix}")

    def params(self) -> dict[str, object]:
        """JSON-ready parameters, as recorded in the manifest and hashed into the fingerprint."""
        params = dataclasses.asdict(self)
        params["crop_size"] = list(self.crop_size)
        return params

    def segment_gap_frames(self, frame_rate: float) -> int:
        return int(round(self.segment_gap_s * frame_rate))


@dataclass(frozen=True)
class CuratedTracklet:
    """One tracklet after curation: ``frames`` (n,) int64 in time order; ``boxes`` the per-frame payload: (n, 4)
    left, top, w, h in a build, crop indices when a review re-splits crops already on disk."""

    track: int | str  # a split-off identity in review is "<track>s<k>"
    camid: int
    frames: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class PlannedTracklet:
    """A tracklet with its place in the dataset (``split`` is train, query or gallery)."""

    tracklet_id: str
    pid: str
    track: int | str
    camid: int
    split: str
    frames: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class VideoPlan:
    """What one video contributes: its tracklets and the counts of what the rules removed."""

    video: str
    split: str  # train | test
    tracklets: tuple[PlannedTracklet, ...]
    counts: dict[str, int]


# ------------------------------------------------------------------------------------------------ boxes


def _corners(box: np.ndarray) -> np.ndarray:
    """(N, 4) left, top, width, height -> (N, 4) x0, y0, x1, y1."""
    return np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1)


def small_boxes(table: TrackTable, min_height: float) -> np.ndarray:
    return table.box[:, 3] < min_height


def border_boxes(table: TrackTable, width: int, height: int, margin: int) -> np.ndarray:
    """Boxes within ``margin`` px of the frame border: the person is likely cut by it."""
    corners = _corners(table.box)
    return ((corners[:, 0] < margin) | (corners[:, 1] < margin)
            | (corners[:, 2] > width - margin) | (corners[:, 3] > height - margin))


def covered_fraction(table: TrackTable) -> np.ndarray:
    """(N,) largest fraction of each box's area that one other box of the same frame covers."""
    fraction = np.zeros(len(table))
    order = np.argsort(table.frame, kind="stable")
    frames = table.frame[order]
    corners = _corners(table.box[order])
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
    ends = np.r_[starts[1:], len(frames)]
    for start, end in zip(starts, ends):
        if end - start < 2:
            continue
        c = corners[start:end]  # (k, 4)
        inter_w = np.clip(np.minimum(c[:, None, 2], c[None, :, 2]) - np.maximum(c[:, None, 0], c[None, :, 0]), 0, None)
        inter_h = np.clip(np.minimum(c[:, None, 3], c[None, :, 3]) - np.maximum(c[:, None, 1], c[None, :, 1]), 0, None)
        inter = inter_w * inter_h  # (k, k)
        np.fill_diagonal(inter, 0.0)
        area = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
        fraction[order[start:end]] = np.divide(inter.max(axis=1), area, out=np.ones(end - start), where=area > 0)
    return fraction


def box_filter(table: TrackTable, width: int, height: int, recipe: Recipe) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of the boxes kept and how many each rule removed (a box counts under the first rule it breaks)."""
    small = small_boxes(table, recipe.min_box_height)
    border = border_boxes(table, width, height, recipe.border_margin) & ~small
    overlap = (covered_fraction(table) > recipe.max_overlap) & ~small & ~border
    keep = ~(small | border | overlap)
    counts = {"boxes": len(table), "boxes_small": int(small.sum()), "boxes_border": int(border.sum()),
              "boxes_overlapped": int(overlap.sum())}
    return keep, counts


# ------------------------------------------------------------------------------------------------ tracks


def run_labels(frames: np.ndarray, max_gap: int) -> np.ndarray:
    """(n,) sorted frames -> (n,) run index; a new run starts after more than ``max_gap`` missing frames."""
    return np.r_[0, np.cumsum(np.diff(frames) > max_gap + 1)].astype(np.int64)


def pseudo_cameras(frames: np.ndarray, segments: int, gap: int, min_frames: int) -> np.ndarray:
    """(n,) sorted frames -> (n,) camera id per frame, -1 inside the gaps between segments."""
    span = int(frames[-1] - frames[0] + 1)
    segment_length = (span - (segments - 1) * gap) / segments
    if segments == 1 or segment_length < min_frames:
        return np.zeros(len(frames), dtype=np.int64)
    period = segment_length + gap
    offset = (frames - frames[0]).astype(np.float64)
    segment = np.minimum(np.floor(offset / period), segments - 1)
    in_gap = offset - segment * period >= segment_length
    return np.where(in_gap, -1, segment).astype(np.int64)


def cap_parts(n: int, cap: int | None) -> list[slice]:
    """Consecutive near-equal parts of at most ``cap`` items (one part when there is no cap)."""
    parts = 1 if cap is None else math.ceil(n / cap)
    sizes = [n // parts + (index < n % parts) for index in range(parts)]  # the longer parts first
    bounds = np.cumsum([0, *sizes])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _blocks(keys: np.ndarray) -> list[slice]:
    """Slices of equal consecutive rows of ``keys`` (n, k)."""
    change = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
    bounds = np.r_[0, change, len(keys)]
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def curate_track(track: int | str, frames: np.ndarray, boxes: np.ndarray, gap: int,
                 recipe: Recipe) -> list[CuratedTracklet]:
    """One identity's kept boxes (time order) -> its tracklets across the pseudo-cameras."""
    runs = run_labels(frames, recipe.max_gap)
    run_sizes = np.bincount(runs)
    long_enough = run_sizes[runs] >= recipe.min_track_frames
    frames, boxes, runs = frames[long_enough], boxes[long_enough], runs[long_enough]
    if len(frames) == 0:
        return []
    cams = pseudo_cameras(frames, recipe.segments, gap, recipe.min_track_frames)
    tracklets = []
    for block in _blocks(np.stack([runs, cams], axis=1)):
        camid = int(cams[block.start])
        if camid < 0 or block.stop - block.start < recipe.min_track_frames:
            continue
        for part in cap_parts(block.stop - block.start, recipe.max_tracklet_frames):
            piece = slice(block.start + part.start, block.start + part.stop)
            tracklets.append(CuratedTracklet(track, camid, frames[piece], boxes[piece]))
    return tracklets


def _curate_kept(kept: TrackTable, frame_rate: float, recipe: Recipe) -> list[CuratedTracklet]:
    gap = recipe.segment_gap_frames(frame_rate)
    tracklets: list[CuratedTracklet] = []
    for block in _blocks(kept.track[:, None]) if len(kept) else []:
        tracklets += curate_track(int(kept.track[block.start]), kept.frame[block], kept.box[block], gap, recipe)
    return tracklets


def curate(table: TrackTable, width: int, height: int, frame_rate: float,
           recipe: Recipe) -> tuple[list[CuratedTracklet], dict[str, int]]:
    """All tracklets of one video, in (track, time) order, and the counts of what the rules removed."""
    keep, counts = box_filter(table, width, height, recipe)
    tracklets = _curate_kept(table.select(keep), frame_rate, recipe)
    counts["tracks"] = len(np.unique(table.track))
    counts["tracks_kept"] = len({t.track for t in tracklets})
    return tracklets, counts


def time_windows(table: TrackTable, frame_rate: float, recipe: Recipe) -> tuple[np.ndarray, np.ndarray, int]:
    """Masks of the boxes of the training part and of the test part of one video, and the cut frame.

    Training identities are those seen before the cut, on their boxes before it; test identities are those
    first seen at least ``time_split_gap_s`` after it; identities first seen in between are in neither.
    """
    if len(table) == 0:
        empty = np.zeros(0, dtype=bool)
        return empty, empty, 0
    first, last = int(table.frame.min()), int(table.frame.max())
    cut = first + int(round(recipe.time_split_at * (last - first + 1)))
    start_test = cut + int(round(recipe.time_split_gap_s * frame_rate))
    first_seen = {int(track): int(table.frame[table.track == track].min()) for track in np.unique(table.track)}
    seen_first = np.array([first_seen[int(t)] for t in table.track], dtype=np.int64)
    train = (seen_first < cut) & (table.frame < cut)
    test = seen_first >= start_test
    return train, test, cut


def curate_in_time(table: TrackTable, width: int, height: int, frame_rate: float,
                   recipe: Recipe) -> tuple[list[CuratedTracklet], list[CuratedTracklet], dict[str, int]]:
    """One video split in time (:func:`time_windows`): its training tracklets, its test tracklets, the counts."""
    keep, counts = box_filter(table, width, height, recipe)
    train_rows, test_rows, cut = time_windows(table, frame_rate, recipe)
    train = _curate_kept(table.select(keep & train_rows), frame_rate, recipe)
    test = _curate_kept(table.select(keep & test_rows), frame_rate, recipe)
    both = np.unique(table.track[train_rows | test_rows])
    counts["tracks"] = len(np.unique(table.track))
    counts["tracks_kept"] = len({t.track for t in train} | {t.track for t in test})
    counts["time_split_cut_frame"] = cut
    counts["tracks_first_seen_in_time_gap"] = len(np.unique(table.track)) - len(both)
    return train, test, counts


# ------------------------------------------------------------------------------------------------ splits


def dataset_split(source_split: str | None) -> str | None:
    """train -> train; val and test -> test (the source's own test labels are hidden); None stays unsplit."""
    return None if source_split is None else ("train" if source_split == "train" else "test")


@dataclass(frozen=True)
class SplitPlan:
    """Each video's split (train | test | time), how it was decided, and the clips the groups moved."""

    splits: dict[str, str]
    groups: dict[str, str]
    moved: tuple[str, ...]
    by: str  # "source lists", "seeded draw", "source lists and seeded draw" or "time"

    def record(self) -> dict[str, object]:
        """What the manifest says of the split."""
        record: dict[str, object] = {"by": self.by, "groups": dict(self.groups), "moved": list(self.moved)}
        if self.by == "time":
            record["time_split"] = "each video: identities seen in its first part train, identities first seen " \
                                   "after the gap are tested, none on both sides"
        return record


def assign_splits(videos: list[tuple[str, str | None]], recipe: Recipe,
                  groups: dict[str, str] | None = None) -> SplitPlan:
    """Dataset split of each (video, source split): one per group (see the module docstring), unsplit groups by a
    seeded draw, every video in time when a side would be empty (or a :class:`ConfigError` naming the fix)."""
    from builders.groups import group_splits

    groups = groups or {video: video for video, _ in videos}
    grouped = group_splits({video: dataset_split(source) for video, source in videos}, groups)
    splits = dict(grouped.splits)
    unsplit_groups = sorted({groups[video] for video, split in splits.items() if split is None})
    n_test = math.ceil(len(unsplit_groups) * recipe.unsplit_test_fraction)
    test = {unsplit_groups[i] for i in np.random.default_rng(recipe.seed).permutation(len(unsplit_groups))[:n_test]}
    for video, split in list(splits.items()):
        if split is None:
            splits[video] = "test" if groups[video] in test else "train"
    listed = any(source is not None for _, source in videos)
    by = ("source lists and seeded draw" if listed and unsplit_groups else "source lists" if listed
          else "seeded draw")
    sides = set(splits.values())
    if videos and sides != {"train", "test"} and recipe.few_videos != "test":
        side = next(iter(sides))
        if recipe.few_videos == "refuse":
            raise ConfigError(f"every video of this build lands in {side} ({len(videos)} video(s), "
                              f"{len(set(groups.values()))} group(s)): add videos of other matches, give --groups "
                              "FILE, let each video be split in time (--few-videos time), or build a test-only "
                              "dataset (--few-videos test)")
        return SplitPlan({video: "time" for video, _ in videos}, dict(groups), grouped.moved, "time")
    return SplitPlan(splits, dict(groups), grouped.moved, by)


def stable_choice(seed: int, key: str, n: int) -> int:
    """An index in [0, n) that depends only on (seed, key): independent of processing order and platform."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


def plan_video(video: str, split: str, tracklets: list[CuratedTracklet], counts: dict[str, int],
               recipe: Recipe) -> VideoPlan:
    """Name the tracklets, and for a test video pick queries and drop single-camera identities."""
    by_track: dict[int, list[CuratedTracklet]] = {}
    for tracklet in tracklets:
        by_track.setdefault(tracklet.track, []).append(tracklet)
    planned: list[PlannedTracklet] = []
    dropped = 0
    for track, own in by_track.items():
        pid = f"{video}:{track}"
        roles = ["train"] * len(own)
        if split == "test":
            if len({t.camid for t in own}) < 2:
                dropped += 1
                continue
            roles = ["gallery"] * len(own)
            roles[stable_choice(recipe.seed, pid, len(own))] = "query"
        planned += [PlannedTracklet(f"{video}_{track}_{k:03d}", pid, track, t.camid, role, t.frames, t.boxes)
                    for k, (t, role) in enumerate(zip(own, roles))]
    counts = {**counts, "tracklets": len(planned), "identities": len({t.pid for t in planned}),
              "test_identities_single_camera": dropped}
    return VideoPlan(video=video, split=split, tracklets=tuple(planned), counts=counts)


def plan_time_split(video: str, train: list[CuratedTracklet], test: list[CuratedTracklet], counts: dict[str, int],
                    recipe: Recipe) -> VideoPlan:
    """One video split in time: its training identities and its test identities (queries chosen, single-camera
    ones dropped) as one plan whose split is ``time``."""
    train_plan = plan_video(video, "train", train, {}, recipe)
    test_plan = plan_video(video, "test", test, {}, recipe)
    counts = {**counts, "tracklets": len(train_plan.tracklets) + len(test_plan.tracklets),
              "identities": train_plan.counts["identities"] + test_plan.counts["identities"],
              "identities_train": train_plan.counts["identities"], "identities_test": test_plan.counts["identities"],
              "test_identities_single_camera": test_plan.counts["test_identities_single_camera"]}
    return VideoPlan(video=video, split="time", tracklets=train_plan.tracklets + test_plan.tracklets, counts=counts)
