"""LS-VID (Li et al., "Global-Local Temporal Representations for Video Person Re-Identification", ICCV 2019).

Source: distributed by its authors (Peking University) on request, as LS-VID.zip. Licence: for non-commercial
research only, under the agreement signed to obtain it; cite the ICCV 2019 paper.

Layout (``<root>/LS-VID/`` or ``<root>`` itself)::

    list_sequence/list_seq_train.txt    one tracklet a line: "<path prefix> <pid>", e.g.
    list_sequence/list_seq_val.txt          "tracklet_train/0001/0001_0003_05 1"; the prefix is relative to
    list_sequence/list_seq_test.txt         the dataset folder and names the tracklet's frames
    test/data/info_test.mat             MATLAB v7.3 (HDF5): ``query``, 1-based rows of list_seq_test.txt that are
                                        queries, and ``info_test``, one row per test tracklet
    tracklet_train/ tracklet_val/ tracklet_test/     frames <prefix>_<frame>.jpg

A frame's name has four ``_``-separated fields; the third is the camera (1..15) and the last the frame number,
which sets the temporal order.

Published statistics: 3,772 identities, 15 cameras (indoor and outdoor), 14,943 tracklets, about 2.98 M frames.
Train 842 identities / 2,831 tracklets; test 11,333 tracklets split by ``info_test.mat`` into 3,504 queries and a
gallery of 7,829 (test minus queries, the torchreid / CLIP-ReID convention; the authors' MATLAB evaluation ranks
each query against the whole test set, dropping same-identity same-camera items, which removes the query
itself). The other 779 tracklets (14,943 - 2,831 - 11,333) form the validation set (``tracklet_val``),
which is not loaded. Tracklets whose pid is -1 (junk), if any, are dropped as in MARS.

Reading the HDF5 flavour of ``info_test.mat`` needs h5py; a version-5 MAT file is read by SciPy alone.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.datasets import find_dataset_dir, get_entry
from vreid_bench.datasets.common import content_fingerprint, require_path
from vreid_bench.errors import DatasetFormatError, DatasetNotFoundError

NAME = "lsvid"
NUM_CAMERAS = 15
JUNK_PID = -1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LIST_LINE = re.compile(r"(\S+)\s+(-?\d+)")


@dataclass(frozen=True)
class SequenceLine:
    """One line of a ``list_seq_*.txt`` file."""

    prefix: str  # relative to the dataset folder, without the "_<frame>.jpg" part
    pid: int
    line_no: int



def read_sequence_list(path: Path) -> list[SequenceLine]:
    lines = []
    for line_no, text in enumerate(require_path(path, NAME).read_text().splitlines(), start=1):
        if not text.strip():
            continue
        match = LIST_LINE.fullmatch(text.strip())
        if match is None or os.path.isabs(match.group(1)):
            raise DatasetFormatError(
                f"{path}:{line_no}: {text.strip()!r} is not '<relative path prefix> <pid>'; unpack LS-VID.zip again"
            )
        lines.append(SequenceLine(prefix=match.group(1), pid=int(match.group(2)), line_no=line_no))
    if not lines:
        raise DatasetFormatError(f"{path} lists no tracklets; unpack LS-VID.zip again")
    return lines


def _frame_fields(name: str) -> tuple[int, int] | None:
    """(camera, frame number) of a frame name ``a_b_<camera>_<frame>.jpg``, or None for other files."""
    fields = os.path.splitext(name)[0].split("_")
    if len(fields) < 4 or not fields[2].isdigit() or not fields[-1].isdigit():
        return None
    return int(fields[2]), int(fields[-1])


class FrameIndex:
    """Image names of each tracklet folder, listed once and kept sorted so a prefix is a contiguous range."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._listings: dict[Path, list[str]] = {}

    def _listing(self, directory: Path) -> list[str]:
        if directory not in self._listings:
            with os.scandir(directory) as entries:
                self._listings[directory] = sorted(e.name for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES))
        return self._listings[directory]

    def frames(self, line: SequenceLine, list_path: Path) -> tuple[tuple[str, ...], int]:
        """The line's frames in temporal order and its 0-based camera."""
        directory = self.base / os.path.dirname(line.prefix)
        stem = os.path.basename(line.prefix)
        if not directory.is_dir():
            raise DatasetNotFoundError(
                f"{list_path}:{line.line_no}: folder {directory} is missing; {get_entry(NAME).how_to_get}"
            )
        names = self._listing(directory)
        first = bisect.bisect_left(names, stem)
        last = first
        while last < len(names) and names[last].startswith(stem):
            last += 1
        parsed = [(fields, name) for name in names[first:last] if (fields := _frame_fields(name))]
        cameras = {camera for (camera, _), _ in parsed}
        if not parsed or len(cameras) != 1 or not 1 <= min(cameras) <= NUM_CAMERAS:
            raise DatasetFormatError(
                f"{list_path}:{line.line_no}: {directory} holds no frames {stem}*.jpg of one camera 1..{NUM_CAMERAS} "
                f"(cameras found: {sorted(cameras)}); unpack LS-VID.zip again"
            )
        ordered = sorted(parsed, key=lambda item: (item[0][1], item[1]))
        return tuple(os.path.join(directory, name) for _, name in ordered), cameras.pop() - 1


def _read_query_array(path: Path) -> np.ndarray:
    """The ``query`` variable of info_test.mat, from either MAT flavour."""
    try:
        return np.asarray(scipy.io.loadmat(path, variable_names=["query"])["query"])
    except NotImplementedError:  # MATLAB v7.3, which is HDF5
        pass
    except KeyError:
        raise DatasetFormatError(f"{path} has no variable 'query'; unpack LS-VID.zip again") from None
    except (ValueError, OSError) as exc:
        raise DatasetFormatError(f"{path} is not a readable MATLAB file ({exc}); unpack LS-VID.zip again") from None
    try:
        import h5py
    except ImportError:
        raise DatasetFormatError(
            f"{path} is a MATLAB v7.3 (HDF5) file and h5py is not installed; run `pip install h5py`"
        ) from None
    with h5py.File(path, "r") as handle:
        if "query" not in handle:
            raise DatasetFormatError(f"{path} has no variable 'query'; unpack LS-VID.zip again")
        return np.asarray(handle["query"])


def read_query_rows(path: Path, num_test: int) -> np.ndarray:
    """0-based rows of list_seq_test.txt that are queries."""
    values = _read_query_array(require_path(path, NAME)).astype(np.float64).ravel()
    rows = values.astype(np.int64) - 1
    valid = (values.size > 0 and np.all(values == np.round(values)) and rows.min() >= 0 and rows.max() < num_test
             and len(np.unique(rows)) == len(rows))
    if not valid:
        raise DatasetFormatError(
            f"{path}: query must list distinct rows 1..{num_test} of list_seq_test.txt; the two files do not "
            "belong together. Unpack LS-VID.zip again"
        )
    return rows


def build_tracklets(lines: list[SequenceLine], index: FrameIndex, list_path: Path, part: str) -> list[Tracklet]:
    """Each tracklet's id is ``<part>:<line>``, its 1-based line in ``list_seq_<part>.txt``."""
    tracklets = []
    for line in lines:
        if line.pid == JUNK_PID:
            continue
        frames, camid = index.frames(line, list_path)
        tracklets.append(Tracklet(frames=frames, pid=line.pid, camid=camid, tracklet_id=f"{part}:{line.line_no}"))
    return tracklets


def load(root: str | os.PathLike[str]) -> VideoReIDDataset:
    """Load LS-VID from ``root`` (the ``LS-VID`` folder or the folder holding it)."""
    entry = get_entry(NAME)
    base = find_dataset_dir(root, entry.folder, "list_sequence", NAME)
    train_list = base / "list_sequence" / "list_seq_train.txt"
    test_list = base / "list_sequence" / "list_seq_test.txt"
    train_lines = read_sequence_list(train_list)
    test_lines = read_sequence_list(test_list)
    query_rows = read_query_rows(base / "test" / "data" / "info_test.mat", len(test_lines))

    is_query = np.zeros(len(test_lines), dtype=bool)
    is_query[query_rows] = True
    index = FrameIndex(base)
    junk = sum(line.pid == JUNK_PID for line in train_lines + test_lines)
    return VideoReIDDataset(
        name=NAME,
        family=NAME,
        benchmark=NAME,
        default_protocol="all-tracklets",
        train=build_tracklets(train_lines, index, train_list, "train"),
        query=build_tracklets([test_lines[i] for i in query_rows], index, test_list, "test"),
        gallery=build_tracklets([line for line, q in zip(test_lines, is_query) if not q], index, test_list, "test"),
        root=str(base),
        fingerprint=content_fingerprint([train_list, test_list, base / "test" / "data" / "info_test.mat"]),
        notes={"junk_tracklets_dropped": junk, "gallery": "test minus query"},
    )


__all__ = ["load"]
