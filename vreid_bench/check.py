"""``vreid check DATASET``: is every frame of a dataset readable, and is the dataset what a benchmark needs?

Every frame is read and fully decoded (in parallel threads: Pillow's decoders release the GIL), which is what
training and evaluation will do, so a truncated or corrupt file is found here rather than hours into a run.
The report lists:

- unreadable frames (missing, truncated, not an image), with the reason;
- empty and one-frame tracklets (for a build: tracklet folders whose frame count differs from its table too);
- duplicate frames: the same bytes at two paths, within one tracklet (a frozen video) or across tracklets (a copy
  that puts one image in both query and gallery);
- identities seen by one camera only, per split (a test identity needs a second camera for a true match);
- the counts: identities, tracklets, cameras and frames per split.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vreid_bench.data import SplitStats, VideoReIDDataset
from vreid_bench.datasets.toolkit import linked, list_frames, read_manifest

SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True)
class FrameResult:
    path: str
    digest: str | None  # None when unreadable
    problem: str | None = None


def read_frame(path: str) -> FrameResult:
    """The frame's content hash after a full decode, or why it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return FrameResult(path, None, f"cannot be read ({exc.strerror or type(exc).__name__})")
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return FrameResult(path, None, "truncated JPEG (no end-of-image marker)")
    try:
        from io import BytesIO

        with Image.open(BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        return FrameResult(path, None, f"not a readable image ({type(exc).__name__}: {exc})")
    return FrameResult(path, hashlib.sha1(data).hexdigest())


@dataclass
class CheckReport:
    dataset: str
    stats: dict[str, SplitStats]
    frames_checked: int
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    short_tracklets: list[tuple[str, int]] = field(default_factory=list)  # (tracklet id, frames): 0 or 1
    count_mismatches: list[tuple[str, int, int]] = field(default_factory=list)  # (tracklet id, table, on disk)
    duplicates_within: list[tuple[str, str, str]] = field(default_factory=list)  # (tracklet id, path, same as)
    duplicates_across: list[tuple[str, str, str, str]] = field(default_factory=list)  # (id, path, other id, path)
    single_camera: dict[str, list[str]] = field(default_factory=dict)  # split -> identities

    @property
    def problems(self) -> int:
        return (len(self.unreadable) + len(self.short_tracklets) + len(self.count_mismatches)
                + len(self.duplicates_within) + len(self.duplicates_across)
                + len(self.single_camera.get("test", [])))

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "frames_checked": self.frames_checked, "problems": self.problems,
                "stats": {name: vars(s) for name, s in self.stats.items()},
                "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
                "short_tracklets": [{"tracklet_id": t, "frames": n} for t, n in self.short_tracklets],
                "count_mismatches": [{"tracklet_id": t, "table": a, "on_disk": b} for t, a, b in self.count_mismatches],
                "duplicates_within": [{"tracklet_id": t, "path": p, "same_as": q}
                                      for t, p, q in self.duplicates_within],
                "duplicates_across": [{"tracklet_id": t, "path": p, "other_tracklet_id": u, "other_path": q}
                                      for t, p, u, q in self.duplicates_across],
                "single_camera": self.single_camera}


@dataclass(frozen=True)
class Entry:
    """One tracklet as the check sees it: a build's table row (with its folder's frames), or a loaded tracklet."""

    split: str
    tracklet_id: str
    identity: str
    camid: int
    frames: tuple[str, ...]


def build_entries(root: Path) -> tuple[list[Entry], list[tuple[str, int, int]]]:
    """A build's tracklets from its table and folders, without the loader's refusals (an empty folder is reported,
    not raised); and the tracklets whose folder holds another number of frames than the table says."""
    entries, mismatches = [], []
    links = read_manifest(root).get("identity_links") or {}
    with (root / "tracklets.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            folder = root / row["dir"]
            frames = list_frames(folder) if folder.is_dir() else ()
            if len(frames) != int(row["n_frames"]):
                mismatches.append((row["tracklet_id"], int(row["n_frames"]), len(frames)))
            entries.append(Entry(row["split"], row["tracklet_id"], linked(row["pid"], links), int(row["camid"]),
                                 frames))
    return entries, mismatches


def dataset_entries(dataset: VideoReIDDataset) -> list[Entry]:
    return [Entry(name, str(t.tracklet_id), dataset.pid_names.get(t.pid, str(t.pid)), t.camid, t.frames)
            for name in SPLITS for t in getattr(dataset, name)]


def _stats(entries: Sequence[Entry]) -> dict[str, SplitStats]:
    out = {}
    for name in SPLITS:
        own = [e for e in entries if e.split == name]
        lengths = [len(e.frames) for e in own] or [0]
        out[name] = SplitStats(identities=len({e.identity for e in own}), tracklets=len(own),
                               cameras=len({e.camid for e in own}), frames_min=min(lengths),
                               frames_mean=sum(lengths) / max(len(own), 1), frames_max=max(lengths))
    return out


def _single_camera(entries: Sequence[Entry]) -> dict[str, list[str]]:
    """Identities whose tracklets all sit on one camera: in training, and in the test set (query ∪ gallery)."""
    found = {}
    for name, splits in (("train", ("train",)), ("test", ("query", "gallery"))):
        cameras: dict[str, set[int]] = defaultdict(set)
        for e in entries:
            if e.split in splits:
                cameras[e.identity].add(e.camid)
        found[name] = sorted(identity for identity, cams in cameras.items() if len(cams) < 2)
    return found


def check_entries(name: str, entries: Sequence[Entry], mismatches: Sequence[tuple[str, int, int]] = (),
                  workers: int | None = None, progress: bool = True) -> CheckReport:
    """Read every frame of ``entries`` in parallel and report (see the module docstring)."""
    frames = [path for e in entries for path in e.frames]
    results: dict[str, FrameResult] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        task = bar.add_task("frames", total=len(frames))
        for result in pool.map(read_frame, frames, chunksize=64):
            results[result.path] = result
            bar.advance(task)
    report = CheckReport(name, _stats(entries), len(frames), count_mismatches=list(mismatches),
                         single_camera=_single_camera(entries))
    listing = [(e.split, e.tracklet_id, e.frames) for e in entries]
    report.unreadable = [(r.path, r.problem) for r in results.values() if r.problem is not None]
    report.short_tracklets = [(tracklet_id, len(paths)) for _, tracklet_id, paths in listing if len(paths) < 2]
    first_seen: dict[str, tuple[str, str]] = {}
    for _, tracklet_id, paths in listing:
        for path in paths:
            digest = results[path].digest
            if digest is None:
                continue
            if digest not in first_seen:
                first_seen[digest] = (tracklet_id, path)
                continue
            other_id, other_path = first_seen[digest]
            if other_id == tracklet_id:
                report.duplicates_within.append((tracklet_id, path, other_path))
            else:
                report.duplicates_across.append((tracklet_id, path, other_id, other_path))
    return report


def check_dataset(name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                  workers: int | None = None, progress: bool = True, **options: object) -> CheckReport:
    """Check a build by its table and folders, or a registered dataset as its loader reads it."""
    from vreid_bench.datasets import is_toolkit_dataset, load

    path = Path(name_or_path)
    if is_toolkit_dataset(path) and (path / "tracklets.csv").is_file():
        entries, mismatches = build_entries(path)
        return check_entries(str(read_manifest(path).get("name", path.name)), entries, mismatches, workers, progress)
    dataset = load(name_or_path, root=root, captions="none", **options)
    return check_entries(dataset.name, dataset_entries(dataset), (), workers, progress)
