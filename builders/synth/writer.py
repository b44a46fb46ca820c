"""The public on-disk layouts the generator writes: SportsMOT's and DanceTrack's, file for file.

SportsMOT::

    <root>/dataset/{train,val}/<seq>/img1/000001.jpg
                                    /gt/gt.txt
                                    /det/det.txt           (public detections: builders.synth.detections)
                                    /seqinfo.ini
                                    /attributes.json       (ours: the attribute sheet of every identity)
    <root>/splits_txt/{train,val}.txt                      (sequence names, one per line)

DanceTrack::

    <root>/{train,val}/dancetrackNNNN/img1/00000001.jpg, gt/gt.txt, seqinfo.ini, attributes.json
    <root>/{train,val}_seqmap.txt                          (a ``name`` header line, then sequence names)

``gt.txt`` lines are ``frame,id,left,top,width,height,1,1,1``: 1-based frame and id, 0-based whole-pixel box
clipped to the image, sorted by frame then id. The published SportsMOT files write ", " between fields and
number ids from 0; the MOTChallenge form used here is what DanceTrack and MOT tools read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vreid_bench.io import atomic_write_text

Kind = Literal["sports", "dance"]
Split = Literal["train", "val"]
SPLITS: tuple[Split, ...] = ("train", "val")
IMAGE_DIR = "img1"
ATTRIBUTES_FILE = "attributes.json"
GtRow = tuple[int, int, int, int, int, int]  # frame, id, left, top, width, height


@dataclass(frozen=True)
class Layout:
    kind: Kind

    @property
    def frame_digits(self) -> int:
        return 6 if self.kind == "sports" else 8

    def sequence_name(self, seed: int, index: int) -> str:
        """SportsMOT names clips ``v_<match video id>_c<clip>``, DanceTrack ``dancetrack<4 digits>``; index is 0-based.

        Every synthetic clip draws its own people, so each is the first clip of a match of its own: clips that
        shared a match would be kept on one side of a split (:mod:`builders.groups`)."""
        if self.kind == "sports":
            return f"v_synth-s{seed}m{index + 1:03d}_c001"
        return f"dancetrack{index + 1:04d}"

    def split_dir(self, root: Path, split: Split) -> Path:
        return root / "dataset" / split if self.kind == "sports" else root / split

    def sequence_dir(self, root: Path, split: Split, name: str) -> Path:
        return self.split_dir(root, split) / name

    def frame_name(self, frame: int) -> str:
        """File name of 1-based ``frame``."""
        return f"{frame:0{self.frame_digits}d}.jpg"

    def split_list_path(self, root: Path, split: Split) -> Path:
        return root / "splits_txt" / f"{split}.txt" if self.kind == "sports" else root / f"{split}_seqmap.txt"

    def split_list_text(self, names: Iterable[str]) -> str:
        header = [] if self.kind == "sports" else ["name"]
        return "".join(f"{line}\n" for line in [*header, *names])


def format_gt(rows: Iterable[GtRow]) -> str:
    return "".join(f"{f},{i},{x},{y},{w},{h},1,1,1\n" for f, i, x, y, w, h in sorted(rows))


def format_seqinfo(name: str, fps: int, frames: int, width: int, height: int) -> str:
    return (f"[Sequence]\nname={name}\nimDir={IMAGE_DIR}\nframeRate={fps}\nseqLength={frames}\n"
            f"imWidth={width}\nimHeight={height}\nimExt=.jpg\n")


def write_annotations(directory: Path, name: str, fps: int, frames: int, width: int, height: int,
                      rows: Iterable[GtRow], attributes: dict, detection_seed: int = 0) -> None:
    """gt/gt.txt, det/det.txt (public detections), seqinfo.ini and attributes.json of a sequence being staged."""
    from builders.synth.detections import public_detections

    rows = sorted(rows)
    (directory / "gt").mkdir(parents=True, exist_ok=True)
    (directory / "gt" / "gt.txt").write_text(format_gt(rows))
    (directory / "det").mkdir(exist_ok=True)
    (directory / "det" / "det.txt").write_text(public_detections(rows, width, height, detection_seed))
    (directory / "seqinfo.ini").write_text(format_seqinfo(name, fps, frames, width, height))
    (directory / ATTRIBUTES_FILE).write_text(json.dumps(attributes, indent=2) + "\n")


def read_params(directory: Path) -> dict | None:
    """The generation parameters recorded in a finished sequence, or None when there is none to trust."""
    try:
        return json.loads((directory / ATTRIBUTES_FILE).read_text())["generator"]["params"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_stale_stages(final: Path) -> None:
    """Delete staging folders an interrupted run left beside ``final`` (``.<name>.*.partial``)."""
    if not final.parent.is_dir():
        return
    for stale in final.parent.glob(f".{final.name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def write_split_lists(layout: Layout, root: Path, names: dict[Split, list[str]]) -> None:
    """Written after every sequence is in place, so a listed sequence always exists."""
    for split in SPLITS:
        atomic_write_text(layout.split_list_path(root, split), layout.split_list_text(names.get(split, [])))
