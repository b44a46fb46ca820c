"""MARS: Motion Analysis and Re-identification Set (Zheng et al., ECCV 2016).

Source: the MARS project page of Liang Zheng (``bbox_train.zip``, ``bbox_test.zip``) and the ``info/`` folder of
the MARS-evaluation code (github.com/liangzheng06/MARS-evaluation). Licence: released by its authors for
non-commercial research use; cite the ECCV 2016 paper.

Layout (``<root>/mars/`` or ``<root>`` itself)::

    bbox_train/<pid4>/<pid4>C<cam>T<tracklet4>F<frame3>.jpg   e.g. bbox_train/0001/0001C1T0001F001.jpg
    bbox_test/<pid4>/...            pid4 "0000" holds the distractors, "00-1" the junk boxes
    info/train_name.txt             one frame name per line; the track info indexes these rows
    info/test_name.txt
    info/tracks_train_info.mat      track_train_info (8,298 x 4): [start, end, pid, camera], 1-based rows
    info/tracks_test_info.mat       track_test_info (12,180 x 4), same columns
    info/query_IDX.mat              query_IDX (1,980): 1-based rows of track_test_info that are queries

Published statistics: 1,261 identities, 6 cameras, 20,478 tracklets, about 1.19 M frames. Train: 625
identities, 8,298 tracklets. Test: 636 identities, 12,180 tracklets, of which 1,980 are queries.

What this loader yields:

- junk tracklets (pid -1) are dropped from every split;
- distractor tracklets (pid 0) stay in the gallery;
- gallery = test tracklets that are not queries, minus junk. torchreid's 9,330 gallery tracklets are counted the
  same way (its 11,310 is that gallery plus the 1,980 queries), so the test set holds 870 junk tracklets;
- so train 625 identities / 8,298 tracklets, query 1,980, gallery 9,330;
- each tracklet's id is ``train:<row>`` or ``test:<row>``, its 1-based row in the published track-info table.

The dataset's default protocol, ``all-tracklets``, ranks each query against query ∪ gallery (every test
tracklet), as the official MATLAB evaluation, TF-CLIP and CG-CLIP do; ``mars-official`` adds the official
trapezoid AP. Ranked against the gallery alone (``gallery-only``, torchreid's convention) about 140 queries have
no true match; the ranking code excludes and counts them.

The 1.2 M frame names are parsed as one fixed-width character array, so loading costs no per-frame file-system
call and no per-frame Python parsing; only building the path strings touches each frame once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from vreid_bench.data import Tracklet, VideoReIDDataset
from vreid_bench.datasets import find_dataset_dir, get_entry
from vreid_bench.datasets.common import content_fingerprint, require_path
from vreid_bench.errors import DatasetFormatError

NAME = "mars"
NAME_WIDTH = 19  # "0001C1T0001F001.jpg"
NUM_CAMERAS = 6
JUNK_PID = -1


@dataclass(frozen=True)
class FrameNames:
    """One name list (train or test) with the fields the loader needs, parsed for every row at once."""

    path: Path
    names: list[str]
    pid_keys: np.ndarray  # (N,) int64, the 4-character pid field packed into one number
    cameras: np.ndarray  # (N,) int64, the C field, 1-based
    frame_numbers: np.ndarray  # (N,) int64, the F field



def _char_codes(names: np.ndarray) -> np.ndarray:
    """(N,) fixed-width unicode array -> (N, width) array of code points, a view without copying."""
    width = names.dtype.itemsize // 4
    return names.view(np.uint32).reshape(len(names), width)


def _pack(codes: np.ndarray, base: int) -> np.ndarray:
    """(N, k) small integers -> (N,) integers, most significant first."""
    weights = base ** np.arange(codes.shape[1] - 1, -1, -1, dtype=np.int64)
    return codes.astype(np.int64) @ weights


def _malformed_rows(codes: np.ndarray) -> np.ndarray:
    """Rows that do not read ``<pid4>C<d>T<dddd>F<ddd>.jpg``."""
    def is_digit(column: np.ndarray) -> np.ndarray:
        return (column >= ord("0")) & (column <= ord("9"))

    pid = codes[:, 0:4]
    ok = np.all(is_digit(pid) | (pid == ord("-")), axis=1)
    ok &= (codes[:, 4] == ord("C")) & (codes[:, 6] == ord("T")) & (codes[:, 11] == ord("F"))
    ok &= is_digit(codes[:, 5]) & np.all(is_digit(codes[:, 7:11]), axis=1) & np.all(is_digit(codes[:, 12:15]), axis=1)
    suffix = np.array([ord(c) for c in ".jpg"], dtype=np.uint32)
    ok &= np.all(codes[:, 15:19] == suffix, axis=1)
    return np.flatnonzero(~ok)


def _bad_name(path: Path, names: list[str], row: int) -> DatasetFormatError:
    return DatasetFormatError(
        f"{path}:{row + 1}: {names[row]!r} is not a MARS frame name like 0001C1T0001F001.jpg; "
        "download the MARS-evaluation info/ folder again"
    )


def read_frame_names(path: Path) -> FrameNames:
    names = require_path(path, NAME).read_text().split()
    if not names:
        raise DatasetFormatError(f"{path} lists no frame names; download the MARS-evaluation info/ folder again")
    array = np.array(names)
    if array.dtype.itemsize // 4 != NAME_WIDTH:
        raise _bad_name(path, names, next(i for i, n in enumerate(names) if len(n) != NAME_WIDTH))
    codes = _char_codes(array)  # (N, 19); shorter names are padded with code 0 and fail the suffix test
    bad_rows = _malformed_rows(codes)
    if bad_rows.size:
        raise _bad_name(path, names, int(bad_rows[0]))
    return FrameNames(
        path=path,
        names=names,
        pid_keys=_pack(codes[:, 0:4], 128),
        cameras=codes[:, 5].astype(np.int64) - ord("0"),
        frame_numbers=_pack(codes[:, 12:15] - ord("0"), 10),
    )


def read_mat_array(path: Path, key: str) -> np.ndarray:
    """One integer array from a MATLAB file, checked to hold whole numbers."""
    try:
        value = scipy.io.loadmat(require_path(path, NAME))[key]
    except (ValueError, NotImplementedError, OSError) as exc:
        raise DatasetFormatError(f"{path} is not a readable MATLAB file ({exc}); download it again") from None
    except KeyError:
        raise DatasetFormatError(
            f"{path} has no variable {key!r}; download the MARS-evaluation info/ folder again"
        ) from None
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
        raise DatasetFormatError(f"{path}: {key} holds non-integer values; download it again")
    return array.astype(np.int64)


def read_track_info(path: Path, key: str, num_names: int) -> np.ndarray:
    """(T, 4) rows [start, end, pid, camera] with 0-based, end-exclusive frame ranges."""
    info = read_mat_array(path, key)
    if info.ndim != 2 or info.shape[1] != 4:
        raise DatasetFormatError(f"{path}: {key} has shape {info.shape}, expected (tracklets, 4); download it again")
    start, end, _, camera = info.T
    bad = np.flatnonzero((start < 1) | (end < start) | (end > num_names) | (camera < 1) | (camera > NUM_CAMERAS))
    if bad.size:
        row = int(bad[0])
        raise DatasetFormatError(
            f"{path}: {key} row {row + 1} {info[row].tolist()} is out of range (1 <= start <= end <= {num_names}, "
            f"camera 1..{NUM_CAMERAS}); download the MARS-evaluation info/ folder again"
        )
    info[:, 0] -= 1  # 1-based inclusive -> 0-based, end stays as the exclusive bound
    return info


def _frame_rows(ranges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) [start, end) ranges -> (rows of every frame in them, the tracklet each belongs to), both (F,)."""
    lengths = ranges[:, 1] - ranges[:, 0]
    owner = np.repeat(np.arange(len(ranges)), lengths)
    offsets = np.cumsum(lengths) - lengths
    rows = np.arange(int(lengths.sum())) - np.repeat(offsets, lengths) + np.repeat(ranges[:, 0], lengths)
    return rows, owner


def _check_tracklets_match_names(info: np.ndarray, frames: FrameNames, info_path: Path) -> None:
    """Every frame of a tracklet must show the tracklet's person and camera, as its name says."""
    rows, owner = _frame_rows(info[:, :2])
    first = info[owner, 0]
    wrong = (frames.cameras[rows] != info[owner, 3]) | (frames.pid_keys[rows] != frames.pid_keys[first])
    bad = np.flatnonzero(wrong)
    if bad.size:
        tracklet, row = int(owner[bad[0]]), int(rows[bad[0]])
        raise DatasetFormatError(
            f"{info_path}: row {tracklet + 1} {info[tracklet].tolist()} spans {frames.path} row {row + 1} "
            f"({frames.names[row]}), another person or camera; the two files do not belong together"
        )


def unsorted_tracklets(frame_numbers: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """(T,) bool: which [start, end) ranges are not in frame-number order.

    The published name lists are already in order, so this is all False there; one vectorised diff finds the
    descending steps and counts them per range.
    """
    descending = np.flatnonzero(np.diff(frame_numbers) < 0) + 1  # rows smaller than the row before them
    inside = np.searchsorted(descending, ranges[:, 1], "left") - np.searchsorted(descending, ranges[:, 0], "right")
    return inside > 0


def frame_paths(frames: FrameNames, image_dir: Path) -> list[str]:
    """``<image_dir>/<pid4>/<name>`` for every row of a name list, built once per list."""
    prefix = str(image_dir) + os.sep
    return [f"{prefix}{name[:4]}{os.sep}{name}" for name in frames.names]


def build_tracklets(info: np.ndarray, frames: FrameNames, paths: list[str], part: str,
                    rows: np.ndarray) -> list[Tracklet]:
    """Tracklets of track-info rows ``rows`` (0-based); each one's id is ``<part>:<row>``, its 1-based row in the
    published ``tracks_<part>_info.mat``."""
    unsorted = unsorted_tracklets(frames.frame_numbers, info[:, :2])
    tracklets = []
    for (start, end, pid, camera), needs_sort, row in zip(info.tolist(), unsorted.tolist(), rows.tolist()):
        if pid == JUNK_PID:
            continue
        tracklet_paths = paths[start:end]
        if needs_sort:
            order = np.argsort(frames.frame_numbers[start:end], kind="stable")
            tracklet_paths = [tracklet_paths[i] for i in order]
        tracklets.append(Tracklet(frames=tuple(tracklet_paths), pid=pid, camid=camera - 1,
                                  tracklet_id=f"{part}:{row + 1}"))
    return tracklets


def read_query_rows(path: Path, num_test: int) -> np.ndarray:
    query = read_mat_array(path, "query_IDX").ravel() - 1
    if query.size == 0 or query.min() < 0 or query.max() >= num_test or len(np.unique(query)) != len(query):
        raise DatasetFormatError(
            f"{path}: query_IDX must list distinct rows 1..{num_test} of tracks_test_info.mat; "
            "download the MARS-evaluation info/ folder again"
        )
    return query


def load(root: str | os.PathLike[str]) -> VideoReIDDataset:
    """Load MARS from ``root`` (the ``mars`` folder or the folder holding it)."""
    entry = get_entry(NAME)
    base = find_dataset_dir(root, entry.folder, "info", NAME)
    info_dir = base / "info"
    train_dir, test_dir = require_path(base / "bbox_train", NAME), require_path(base / "bbox_test", NAME)

    train_names = read_frame_names(info_dir / "train_name.txt")
    test_names = read_frame_names(info_dir / "test_name.txt")
    train_info = read_track_info(info_dir / "tracks_train_info.mat", "track_train_info", len(train_names.names))
    test_info = read_track_info(info_dir / "tracks_test_info.mat", "track_test_info", len(test_names.names))
    _check_tracklets_match_names(train_info, train_names, info_dir / "tracks_train_info.mat")
    _check_tracklets_match_names(test_info, test_names, info_dir / "tracks_test_info.mat")
    query_rows = read_query_rows(info_dir / "query_IDX.mat", len(test_info))

    is_query = np.zeros(len(test_info), dtype=bool)
    is_query[query_rows] = True
    test_junk = int(np.count_nonzero(test_info[:, 2] == JUNK_PID))
    test_paths = frame_paths(test_names, test_dir)
    rows = np.arange(len(test_info))
    index_files = [info_dir / name for name in ("train_name.txt", "test_name.txt", "tracks_train_info.mat",
                                                "tracks_test_info.mat", "query_IDX.mat")]
    return VideoReIDDataset(
        name=NAME,
        family=NAME,
        benchmark=NAME,
        default_protocol="all-tracklets",
        train=build_tracklets(train_info, train_names, frame_paths(train_names, train_dir), "train",
                              np.arange(len(train_info))),
        query=build_tracklets(test_info[query_rows], test_names, test_paths, "test", rows[query_rows]),
        gallery=build_tracklets(test_info[~is_query], test_names, test_paths, "test", rows[~is_query]),
        root=str(base),
        fingerprint=content_fingerprint(index_files),
        notes={"junk_tracklets_dropped": int(np.count_nonzero(train_info[:, 2] == JUNK_PID)) + test_junk,
               "gallery": "test minus query (all-tracklets ranks against query ∪ gallery)"},
    )


__all__ = ["load"]
