"""iLIDS-VID (Wang et al., "Person Re-Identification by Video Ranking", ECCV 2014).

Source: iLIDS-VID.tar from the QMUL project page
(www.eecs.qmul.ac.uk/~xiatian/downloads_qmul_iLIDS-VID_ReID_dataset.html). Licence: for research use only,
under the terms on that page; the footage comes from the i-LIDS Multiple-Camera Tracking Scenario of the UK
Home Office.

Layout (``<root>/ilids-vid/`` or ``<root>`` itself)::

    i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png ...
    i-LIDS-VID/sequences/cam2/person001/cam2_person001_00407.png ...
    train-test people splits/train_test_splits_ilidsvid.mat

The person folders are numbered with gaps (300 people out of person001..person319). The split file holds
``ls_set``, 10 x 300: row k is a permutation of person indices, 1-based into the sorted list of person folders;
its first half is the test people and the second half the training people (Wang et al.'s protocol, as torchreid
reads it).

Published statistics: 300 identities, 2 cameras, 600 tracklets (one per person and camera) of 23 to 192 frames,
73 on average.
Each split: train 150 identities / 300 tracklets (both cameras); query 150 tracklets (camera 1 of the test
people); gallery 150 tracklets (camera 2). Results are the mean over the 10 splits (``split=0..9``).

Identities keep the number of their folder (person012 is pid 12) in every split; ``pid_names`` maps them back.
A tracklet's id is ``<camera>/<person>`` (``cam1/person012``). The fingerprint covers the split file and every frame's
path, not the split chosen (that is part of the evaluation protocol).
Frames are ordered by the frame number that ends each file name, not by listing order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import scipy.io

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.datasets import find_dataset_dir, get_entry
from vreid_bench.datasets.common import check_split, content_fingerprint, numbered_frames, require_path
from vreid_bench.errors import DatasetFormatError

NAME = "ilidsvid"
CAMERAS = ("cam1", "cam2")
SPLIT_FILE = Path("train-test people splits") / "train_test_splits_ilidsvid.mat"
PERSON_DIR = re.compile(r"person(\d+)")
FRAME_NUMBER = re.compile(r"(\d+)\.png$", re.IGNORECASE)



def person_dirs(camera_dir: Path) -> list[str]:
    """Person folder names of one camera, sorted (the order the split file's indices refer to)."""
    with os.scandir(require_path(camera_dir, NAME)) as entries:
        return sorted(e.name for e in entries if e.is_dir() and PERSON_DIR.fullmatch(e.name))



def read_splits(path: Path, num_people: int) -> np.ndarray:
    """(splits, num_people) 0-based person indices; each row's first half is the test people."""
    try:
        ls_set = scipy.io.loadmat(require_path(path, NAME))["ls_set"]
    except (ValueError, NotImplementedError, OSError) as exc:
        raise DatasetFormatError(f"{path} is not a readable MATLAB file ({exc}); unpack iLIDS-VID.tar again") from None
    except KeyError:
        raise DatasetFormatError(f"{path} has no variable 'ls_set'; unpack iLIDS-VID.tar again") from None
    splits = np.asarray(ls_set, dtype=np.int64) - 1
    valid = splits.ndim == 2 and splits.shape[1] == num_people and all(
        np.array_equal(np.sort(row), np.arange(num_people)) for row in splits
    )
    if not valid:
        raise DatasetFormatError(
            f"{path}: ls_set must have one row per split, each a permutation of 1..{num_people} "
            f"(the person folders found); got shape {splits.shape}. Unpack iLIDS-VID.tar again"
        )
    return splits



def load(root: str | os.PathLike[str], split: int = 0) -> VideoReIDDataset:
    """Load split ``split`` (0..9) of iLIDS-VID from ``root`` (the ``ilids-vid`` folder or the one holding it)."""
    entry = get_entry(NAME)
    base = find_dataset_dir(root, entry.folder, "i-LIDS-VID", NAME)
    sequences = base / "i-LIDS-VID" / "sequences"
    people = person_dirs(sequences / CAMERAS[0])
    other = person_dirs(sequences / CAMERAS[1])
    if people != other:
        only = sorted(set(people) ^ set(other))
        raise DatasetFormatError(
            f"{sequences}: cam1 and cam2 must hold the same person folders; {', '.join(only[:5])} are in one only. "
            "Unpack iLIDS-VID.tar again"
        )
    splits = read_splits(base / SPLIT_FILE, len(people))
    row = splits[check_split(NAME, split, len(splits))]
    half = len(people) // 2
    test_people = sorted(people[i] for i in row[:half])
    train_people = sorted(people[i] for i in row[half:])

    frames = {(name, camid): numbered_frames(sequences / CAMERAS[camid] / name, FRAME_NUMBER,
                                             "unpack iLIDS-VID.tar again")
              for name in people for camid in (0, 1)}

    def tracklets(names: list[str], camids: tuple[int, ...]) -> list[Tracklet]:
        return [Tracklet(frames=frames[name, camid], pid=int(PERSON_DIR.fullmatch(name).group(1)), camid=camid,
                         tracklet_id=f"{CAMERAS[camid]}/{name}")
                for name in names for camid in camids]

    cut = len(str(base)) + 1
    listing = (path[cut:] for key in sorted(frames) for path in frames[key])
    return VideoReIDDataset(
        name=NAME,
        family=NAME,
        benchmark=NAME,
        default_protocol="gallery-only",
        train=tracklets(train_people, (0, 1)),
        query=tracklets(test_people, (0,)),
        gallery=tracklets(test_people, (1,)),
        root=str(base),
        fingerprint=content_fingerprint([base / SPLIT_FILE], listing),
        pid_names={int(PERSON_DIR.fullmatch(n).group(1)): n for n in people},
        notes={"split": split, "num_splits": len(splits)},
    )


__all__ = ["load"]
