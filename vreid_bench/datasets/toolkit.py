"""The toolkit's own dataset directory, as written by ``vreid build``.

Layout::

    <dataset>/
      manifest.json      name, format_version, recipe {name, params}, sources, licence, counts, fingerprint,
                         default_protocol; written last, so a dataset without it is not complete
      tracklets.csv      tracklet_id, pid, camid, split (train|query|gallery), video, first_frame, last_frame,
                         n_frames, dir (relative to <dataset>)
      captions.jsonl     optional; tracklet_id, caption, captioner, prompt_id, reviewed (vreid_bench.captions)
      crops/<video>/<track id>/<tracklet_id>/<frame>.jpg

Identities are video-scoped strings (``<video>:<track id>``); they become integers here (sorted order) and
``VideoReIDDataset.pid_names`` maps them back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.errors import DatasetFormatError, DatasetNotFoundError

FORMAT_VERSION = 1
TRACKLET_COLUMNS = ("tracklet_id", "pid", "camid", "split", "video", "first_frame", "last_frame", "n_frames", "dir")
SPLITS = ("train", "query", "gallery")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_manifest(root: Path) -> dict:
    path = root / "manifest.json"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{root} has no manifest.json: it is not a vreid dataset, or its build did not finish "
            "(run the same `vreid build` command again to resume it)"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path} is not valid JSON ({exc}); rebuild the dataset") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetFormatError(
            f"{path}: format_version {version!r} is not supported (this vreid reads {FORMAT_VERSION}); "
            "rebuild the dataset with this version of vreid"
        )
    return manifest


def linked(pid: str, links: Mapping[str, str]) -> str:
    """The identity a pid is, following the identity links a review made across videos of one match."""
    seen = set()
    while pid in links and pid not in seen:
        seen.add(pid)
        pid = links[pid]
    return pid


def _recover(root: Path) -> None:
    """Finish a change to the dataset that a crash interrupted (a review apply), so it loads whole."""
    from vreid_bench.io import JOURNAL, recover

    if not (root / JOURNAL).is_file():
        return
    try:
        recover(root)
    except OSError as exc:
        raise DatasetFormatError(f"{root}: a change to this dataset was interrupted and cannot be finished here "
                                 f"({exc}); make the folder writable and load it again") from None


def _frame_key(name: str) -> tuple[int, str]:
    stem = os.path.splitext(name)[0]
    return (int(stem), name) if stem.isdigit() else (1 << 62, name)


def list_frames(directory: Path) -> tuple[str, ...]:
    """Image files of one tracklet folder in temporal (numeric) order."""
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES)]
    names.sort(key=_frame_key)
    return tuple(str(directory / n) for n in names)


def load(root: str | os.PathLike[str], check_frames: bool = True) -> VideoReIDDataset:
    root = Path(root)
    _recover(root)
    manifest = read_manifest(root)
    table_path = root / "tracklets.csv"
    if not table_path.is_file():
        raise DatasetNotFoundError(f"{root}: manifest.json is there but tracklets.csv is missing; rebuild the dataset")
    table = pd.read_csv(table_path, dtype={"tracklet_id": str, "pid": str, "video": str, "dir": str})
    missing = [c for c in TRACKLET_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetFormatError(f"{table_path}: missing columns {', '.join(missing)}; expected "
                                 f"{', '.join(TRACKLET_COLUMNS)}")
    bad_split = sorted(set(table["split"]) - set(SPLITS))
    if bad_split:
        raise DatasetFormatError(f"{table_path}: unknown split values {bad_split}; expected train, query or gallery")

    links = manifest.get("identity_links") or {}  # a review's merges across videos of one match

    def identity(name: str) -> str:
        return linked(name, links)

    pid_names = sorted({identity(name) for name in table["pid"]})
    pid_number = {name: number for number, name in enumerate(pid_names)}
    splits: dict[str, list[Tracklet]] = {s: [] for s in SPLITS}
    for row_no, row in enumerate(table.itertuples(index=False), start=2):
        directory = root / row.dir
        if not directory.is_dir():
            raise DatasetNotFoundError(f"{table_path}:{row_no}: crop folder {directory} is missing; rebuild the "
                                       "dataset")
        frames = list_frames(directory)
        if check_frames and len(frames) != int(row.n_frames):
            raise DatasetFormatError(
                f"{table_path}:{row_no}: {directory} holds {len(frames)} frames, n_frames says {row.n_frames}; "
                "rebuild the dataset"
            )
        if not frames:
            raise DatasetFormatError(f"{table_path}:{row_no}: {directory} holds no frames; rebuild the dataset")
        splits[row.split].append(
            Tracklet(frames=frames, pid=pid_number[identity(row.pid)], camid=int(row.camid), video=str(row.video),
                     tracklet_id=row.tracklet_id)
        )
    return VideoReIDDataset(
        name=str(manifest.get("name", root.name)),
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        root=str(root),
        default_protocol=str(manifest.get("default_protocol", "video-scope")),
        family=str(manifest["kind"]) if manifest.get("kind") else None,
        benchmark=manifest.get("benchmark"),
        fingerprint=manifest.get("fingerprint"),
        pid_names=dict(enumerate(pid_names)),
        notes={"recipe": manifest.get("recipe"), "identities_verified": manifest.get("identities_verified"),
               "pseudo_cameras": bool(manifest.get("pseudo_cameras", True))},
    )
