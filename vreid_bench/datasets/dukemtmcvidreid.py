"""DukeMTMC-VideoReID (Wu et al., "Exploit the Unknown Gradually", CVPR 2018; from DukeMTMC, Ristani et al. 2016).

Source: DukeMTMC-VideoReID.zip, described at github.com/Yu-Wu/DukeMTMC-VideoReID. Licence: CC BY-NC-SA 4.0, with
the attribution protocol of that repository (cite both papers). DukeMTMC itself was withdrawn by Duke University in
2019; use only a copy you are entitled to.

Layout (``<root>/dukemtmc-vidreid/``, its ``DukeMTMC-VideoReID/`` subfolder as the zip unpacks, or ``<root>``)::

    train/<pid>/<tracklet id>/<frame>.jpg
    query/<pid>/<tracklet id>/<frame>.jpg
    gallery/<pid>/<tracklet id>/<frame>.jpg

Frame names come in two forms, both read here: the released ``0001C6F0099X30823.jpg`` and the underscored
``0001_C6_F0099_X30823.jpg``; the ``X`` part (the frame number in the camera's whole video) may be absent. ``C`` is
the camera (1..8) and ``F`` the frame's index within the tracklet, which sets the temporal order.

Published statistics: 702 training identities with 2,196 tracklets; 702 test identities and 408 distractor
identities with 2,636 test tracklets; 8 cameras; one frame in every 12 of the video. Query: one tracklet per test
identity (702). Gallery: the gallery folder, 2,636 tracklets of 1,110 identities as torchreid counts it; the
distractors are ordinary identities there that no query shares. This loader lists the folders as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.datasets import find_dataset_dir, get_entry
from vreid_bench.datasets.common import content_fingerprint, require_path
from vreid_bench.errors import DatasetFormatError, DatasetNotFoundError

NAME = "dukemtmcvidreid"
SPLITS = ("train", "query", "gallery")
ZIP_FOLDER = "DukeMTMC-VideoReID"
NUM_CAMERAS = 8
FRAME_NAME = re.compile(r"(\d+)_?C(\d+)_?F(\d+)(?:_?X(\d+))?\.jpe?g", re.IGNORECASE)



def dataset_dir(root: str | os.PathLike[str]) -> Path:
    """The folder holding train/, query/ and gallery/, with or without the zip's own top folder."""
    folder = get_entry(NAME).folder
    try:
        return find_dataset_dir(root, folder, f"{ZIP_FOLDER}/query", NAME) / ZIP_FOLDER
    except DatasetNotFoundError:
        return find_dataset_dir(root, folder, "query", NAME)


def _subdirs(directory: Path) -> list[str]:
    with os.scandir(directory) as entries:
        return sorted(e.name for e in entries if e.is_dir())


def tracklet_frames(directory: Path) -> tuple[tuple[str, ...], int]:
    """Frames of one tracklet folder in temporal order (by ``F``), and its 0-based camera."""
    with os.scandir(directory) as entries:
        parsed = [(m, e.name) for e in entries if (m := FRAME_NAME.fullmatch(e.name))]
    if not parsed:
        raise DatasetFormatError(
            f"{directory} holds no frames named like 0001C6F0099X30823.jpg; unpack DukeMTMC-VideoReID.zip again"
        )
    cameras = {int(m.group(2)) for m, _ in parsed}
    if len(cameras) != 1 or not 1 <= min(cameras) <= NUM_CAMERAS:
        raise DatasetFormatError(
            f"{directory} has cameras {sorted(cameras)}; a tracklet comes from one camera of 1..{NUM_CAMERAS}. "
            "Unpack DukeMTMC-VideoReID.zip again"
        )
    ordered = sorted(parsed, key=lambda item: (int(item[0].group(3)), item[1]))
    return tuple(os.path.join(directory, name) for _, name in ordered), cameras.pop() - 1


def read_split(split_dir: Path) -> list[Tracklet]:
    tracklets = []
    for pid_name in _subdirs(require_path(split_dir, NAME)):
        if not pid_name.isdigit():
            raise DatasetFormatError(
                f"{split_dir / pid_name}: identity folders are numbers like 0001; unpack DukeMTMC-VideoReID.zip again"
            )
        for tracklet_name in _subdirs(split_dir / pid_name):
            frames, camid = tracklet_frames(split_dir / pid_name / tracklet_name)
            tracklets.append(Tracklet(frames=frames, pid=int(pid_name), camid=camid,
                                      tracklet_id=f"{split_dir.name}/{pid_name}/{tracklet_name}"))
    return tracklets


def load(root: str | os.PathLike[str]) -> VideoReIDDataset:
    """Load DukeMTMC-VideoReID from ``root`` (its folder, the zip's folder inside it, or the folder holding it)."""
    base = dataset_dir(root)
    train, query, gallery = (read_split(base / split) for split in SPLITS)
    cut = len(str(base)) + 1
    listing = (frame[cut:] for split in (train, query, gallery) for t in split for frame in t.frames)
    return VideoReIDDataset(name=NAME, family=NAME, benchmark=NAME, default_protocol="gallery-only", train=train,
                            query=query, gallery=gallery, root=str(base),
                            fingerprint=content_fingerprint([], listing))


__all__ = ["load"]
