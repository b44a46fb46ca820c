"""PRID-2011 (Hirzer et al., "Person Re-Identification by Descriptive and Discriminative Classification", SCIA 2011).

Source: prid_2011.zip from the TU Graz ICG download page (www.tugraz.at/institute/icg/research/team-bischof/lrs/
downloads/PRID11/); the split file ``splits_prid2011.json`` is the one torchreid's documentation points to.
Licence: for research use only, under the terms on the download page; cite the SCIA 2011 paper.

Layout (``<root>/prid2011/`` or ``<root>`` itself)::

    prid_2011/multi_shot/cam_a/person_0001/0001.png ...   385 people
    prid_2011/multi_shot/cam_b/person_0001/0001.png ...   749 people; person_0001..person_0200 are in both cameras
    splits_prid2011.json    [{"train": ["person_0001", ...], "test": [...]}, ...]  10 splits

Published statistics: 934 identities in all, of which 200 are seen by both cameras (400 tracklets of 5 to 675
frames, about 100 on average). Video re-identification uses only people seen by both cameras, and the
standard split file (Wang et al., ECCV 2014, as shipped for torchreid) keeps the 178 of those 200 whose sequences
are long enough: each split has 89 training and 89 test people. Per split: train 89 identities / 178 tracklets
(both cameras); query 89 tracklets (camera A of the test people); gallery 89 tracklets (camera B). Results are
the mean over the 10 splits (``split=0..9``).

Identities keep the number of their folder (person_0042 is pid 42) in every split; ``pid_names`` maps them back.
A tracklet's id is ``<camera>/<person>`` (``cam_a/person_0042``). The fingerprint covers the split file and the
frames of every person a split names, not the split chosen.
Frames are ordered by the frame number of the file name, not by listing order.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.datasets import find_dataset_dir, get_entry
from vreid_bench.datasets.common import check_split, content_fingerprint, numbered_frames, require_path
from vreid_bench.errors import DatasetFormatError

NAME = "prid2011"
CAMERAS = ("cam_a", "cam_b")
SPLIT_FILE = "splits_prid2011.json"
PERSON_DIR = re.compile(r"person_(\d+)")
FRAME_NUMBER = re.compile(r"(\d+)\.png$", re.IGNORECASE)



def person_dirs(camera_dir: Path) -> set[str]:
    with os.scandir(require_path(camera_dir, NAME)) as entries:
        return {e.name for e in entries if e.is_dir() and PERSON_DIR.fullmatch(e.name)}



def read_splits(path: Path, both_cameras: set[str]) -> list[dict[str, list[str]]]:
    """The split file's splits, each checked to name disjoint people seen by both cameras."""
    fix = f"use the {SPLIT_FILE} that torchreid's documentation links"
    try:
        splits = json.loads(require_path(path, NAME).read_text())
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path} is not valid JSON ({exc}); {fix}") from None
    shape_ok = isinstance(splits, list) and splits and all(
        isinstance(s, dict) and all(isinstance(s.get(k), list) and s[k] for k in ("train", "test")) for s in splits
    )
    if not shape_ok:
        raise DatasetFormatError(f"{path}: expected a list of {{\"train\": [...], \"test\": [...]}} objects; {fix}")
    for number, split in enumerate(splits):
        unknown = sorted(set(split["train"] + split["test"]) - both_cameras)
        if unknown:
            raise DatasetFormatError(
                f"{path}: split {number} names {', '.join(map(str, unknown[:5]))}, not a person folder in both "
                f"cam_a and cam_b; {fix}"
            )
        if set(split["train"]) & set(split["test"]):
            raise DatasetFormatError(f"{path}: split {number} puts the same people in train and test; {fix}")
    return splits



def _pid(person: str) -> int:
    return int(PERSON_DIR.fullmatch(person).group(1))


def load(root: str | os.PathLike[str], split: int = 0) -> VideoReIDDataset:
    """Load split ``split`` (0..9) of PRID-2011 from ``root`` (the ``prid2011`` folder or the one holding it)."""
    entry = get_entry(NAME)
    base = find_dataset_dir(root, entry.folder, "prid_2011", NAME)
    multi_shot = base / "prid_2011" / "multi_shot"
    both_cameras = person_dirs(multi_shot / CAMERAS[0]) & person_dirs(multi_shot / CAMERAS[1])
    splits = read_splits(base / SPLIT_FILE, both_cameras)
    chosen = splits[check_split(NAME, split, len(splits))]

    used = sorted({p for split in splits for p in split["train"] + split["test"]}, key=_pid)
    frames = {(person, camid): numbered_frames(multi_shot / CAMERAS[camid] / person, FRAME_NUMBER,
                                               "unpack prid_2011.zip again")
              for person in used for camid in (0, 1)}

    def tracklets(people: list[str], camids: tuple[int, ...]) -> list[Tracklet]:
        return [Tracklet(frames=frames[person, camid], pid=_pid(person), camid=camid,
                         tracklet_id=f"{CAMERAS[camid]}/{person}")
                for person in sorted(people, key=_pid) for camid in camids]

    cut = len(str(base)) + 1
    listing = (path[cut:] for key in sorted(frames) for path in frames[key])
    return VideoReIDDataset(
        name=NAME,
        family=NAME,
        benchmark=NAME,
        default_protocol="gallery-only",
        train=tracklets(chosen["train"], (0, 1)),
        query=tracklets(chosen["test"], (0,)),
        gallery=tracklets(chosen["test"], (1,)),
        root=str(base),
        fingerprint=content_fingerprint([base / SPLIT_FILE], listing),
        pid_names={_pid(p): p for p in chosen["train"] + chosen["test"]},
        notes={"split": split, "num_splits": len(splits)},
    )


__all__ = ["load"]
