"""Tiny copies of the published layouts of the standard video-ReID datasets, written on disk for the loader tests.

Each writer builds the folder tree, index files and split files that the real download has, with a handful of
people and zero-byte frames (the loaders list frames, they never open them), and returns what a correct loader
must yield, worked out here from the written layout rather than by the loaders' code. Frame numbers are chosen
so that name order and listing order differ from temporal order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

SPLIT_NAMES = ("train", "query", "gallery")


@dataclass(frozen=True)
class ExpectedTracklet:
    pid: int
    camid: int  # 0-based
    frames: tuple[str, ...]  # paths relative to the dataset folder, in temporal order


@dataclass
class Layout:
    """A written dataset: its folder and, per split, the tracklets a loader must return."""

    dataset_dir: Path
    expected: dict[str, list[ExpectedTracklet]] = field(default_factory=dict)


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


# --- MARS ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MarsTracklet:
    pid: int  # -1 junk, 0 distractor
    camera: int  # 1-based, as in the track info
    frame_numbers: tuple[int, ...]  # in the order the name list holds them


MARS_TRAIN = (
    MarsTracklet(1, 1, (1, 2, 3)),
    MarsTracklet(1, 2, (1, 2, 3, 4)),
    MarsTracklet(2, 1, (1, 2)),
    MarsTracklet(2, 3, (5, 6, 7)),
    MarsTracklet(3, 4, (1, 2)),
    MarsTracklet(3, 5, (1, 2)),
)
MARS_TEST = (
    MarsTracklet(4, 1, (3, 1, 2)),  # a query listed out of temporal order
    MarsTracklet(4, 2, (1, 2)),
    MarsTracklet(-1, 2, (1, 2)),  # junk
    MarsTracklet(5, 3, (1, 2, 3)),  # a query
    MarsTracklet(5, 6, (12, 10, 11)),  # a gallery tracklet listed out of order
    MarsTracklet(0, 1, (1, 2)),  # distractors
    MarsTracklet(0, 4, (1, 2)),
    MarsTracklet(-1, 5, (1,)),  # junk
    MarsTracklet(4, 2, (20, 21)),
)
MARS_QUERY_ROWS = (0, 3)  # 0-based rows of MARS_TEST


def mars_pid_folder(pid: int) -> str:
    return "00-1" if pid == -1 else f"{pid:04d}"


def mars_frame_name(pid: int, camera: int, tracklet_number: int, frame: int) -> str:
    return f"{mars_pid_folder(pid)}C{camera}T{tracklet_number:04d}F{frame:03d}.jpg"


def _write_mars_part(dataset_dir: Path, part: str, tracklets: tuple[MarsTracklet, ...], write_frames: bool,
                     images: bool = False) -> tuple[np.ndarray, list[ExpectedTracklet]]:
    """Name list and track info of bbox_<part>; returns the track info and the expected tracklets in row order."""
    names: list[str] = []
    rows = []
    expected = []
    counters: dict[tuple[int, int], int] = {}
    for tracklet in tracklets:
        number = counters[(tracklet.pid, tracklet.camera)] = counters.get((tracklet.pid, tracklet.camera), 0) + 1
        start = len(names) + 1
        listed = [mars_frame_name(tracklet.pid, tracklet.camera, number, f) for f in tracklet.frame_numbers]
        names.extend(listed)
        rows.append((start, len(names), tracklet.pid, tracklet.camera))
        folder = f"bbox_{part}/{mars_pid_folder(tracklet.pid)}"
        ordered = [mars_frame_name(tracklet.pid, tracklet.camera, number, f) for f in sorted(tracklet.frame_numbers)]
        expected.append(ExpectedTracklet(tracklet.pid, tracklet.camera - 1, tuple(f"{folder}/{n}" for n in ordered)))
        if write_frames:
            for name in listed:
                if images:
                    _person_image(dataset_dir / folder / name, max(tracklet.pid, 0), tracklet.camera - 1)
                else:
                    _touch(dataset_dir / folder / name)
    (dataset_dir / f"bbox_{part}").mkdir(parents=True, exist_ok=True)
    (dataset_dir / "info" / f"{part}_name.txt").write_text("\n".join(names) + "\n")
    return np.array(rows, dtype=np.float64), expected  # MATLAB stores the track info as doubles


def write_mars(parent: Path, train: tuple[MarsTracklet, ...] = MARS_TRAIN, test: tuple[MarsTracklet, ...] = MARS_TEST,
               query_rows: tuple[int, ...] = MARS_QUERY_ROWS, write_frames: bool = True, images: bool = False) -> Layout:
    """``images``: real JPEG frames instead of empty files, for tests that caption or train on the layout."""
    dataset_dir = parent / "mars"
    (dataset_dir / "info").mkdir(parents=True)
    train_info, train_expected = _write_mars_part(dataset_dir, "train", train, write_frames, images)
    test_info, test_expected = _write_mars_part(dataset_dir, "test", test, write_frames, images)
    scipy.io.savemat(dataset_dir / "info" / "tracks_train_info.mat", {"track_train_info": train_info})
    scipy.io.savemat(dataset_dir / "info" / "tracks_test_info.mat", {"track_test_info": test_info})
    scipy.io.savemat(dataset_dir / "info" / "query_IDX.mat",
                     {"query_IDX": np.array([[r + 1 for r in query_rows]], dtype=np.float64)})
    not_junk = [t for t in train_expected if t.pid != -1]
    return Layout(dataset_dir, {
        "train": not_junk,
        "query": [test_expected[r] for r in query_rows if test_expected[r].pid != -1],
        "gallery": [t for r, t in enumerate(test_expected) if r not in query_rows and t.pid != -1],
    })


# --- iLIDS-VID -----------------------------------------------------------------------------------------------

ILIDS_PEOPLE = ("person001", "person002", "person004", "person007", "person010", "person012")
ILIDS_FRAMES = {"cam1": (7, 9, 10, 11), "cam2": (98, 99, 100)}


@dataclass
class SplitLayout(Layout):
    """A dataset with numbered train/test splits; ``expected_for(split)`` gives that split's tracklets."""

    splits: list[tuple[list[str], list[str]]] = field(default_factory=list)  # (train people, test people)
    person_pid: dict[str, int] = field(default_factory=dict)
    sequence_dir: str = ""
    cameras: tuple[str, str] = ("", "")
    frame_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # camera -> names, temporal order

    def expected_for(self, split: int) -> dict[str, list[ExpectedTracklet]]:
        train_people, test_people = self.splits[split]

        def tracklets(people: list[str], camids: tuple[int, ...]) -> list[ExpectedTracklet]:
            return [
                ExpectedTracklet(self.person_pid[p], c, tuple(
                    f"{self.sequence_dir}/{self.cameras[c]}/{p}/{name.format(person=p)}"
                    for name in self.frame_names[self.cameras[c]]))
                for p in people for c in camids
            ]

        return {"train": tracklets(train_people, (0, 1)), "query": tracklets(test_people, (0,)),
                "gallery": tracklets(test_people, (1,))}


def _person_image(path: Path, person: int, camera: int) -> None:
    """A 32×16 PNG: the person's colour in the middle, the camera's in the rest (for tests that train)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    frame = np.full((32, 16, 3), (200, 60, 60) if camera == 0 else (60, 60, 200), dtype=np.uint8)
    frame[8:24, 4:12] = np.random.default_rng(person).integers(0, 256, 3)
    Image.fromarray(frame).save(path)


def write_ilidsvid(parent: Path, seed: int = 0, images: bool = False) -> SplitLayout:
    """``images``: real PNG frames instead of empty files, for tests that train on the layout."""
    dataset_dir = parent / "ilids-vid"
    sequences = "i-LIDS-VID/sequences"
    frame_names = {cam: tuple(f"{cam}_{{person}}_{n}.png" for n in numbers) for cam, numbers in ILIDS_FRAMES.items()}
    for camera, (cam, names) in enumerate(frame_names.items()):
        for person in ILIDS_PEOPLE:
            for name in reversed(names):
                path = dataset_dir / sequences / cam / person / name.format(person=person)
                if images:
                    _person_image(path, int(person[len("person"):]), camera)
                else:
                    _touch(path)
    rng = np.random.default_rng(seed)
    ls_set = np.stack([rng.permutation(len(ILIDS_PEOPLE)) + 1 for _ in range(10)])  # (10, people), 1-based
    split_dir = dataset_dir / "train-test people splits"
    split_dir.mkdir(parents=True)
    scipy.io.savemat(split_dir / "train_test_splits_ilidsvid.mat", {"ls_set": ls_set.astype(np.float64)})
    half = len(ILIDS_PEOPLE) // 2
    splits = [(sorted(ILIDS_PEOPLE[i - 1] for i in row[half:]), sorted(ILIDS_PEOPLE[i - 1] for i in row[:half]))
              for row in ls_set]
    return SplitLayout(dataset_dir, splits=splits, person_pid={p: int(p[len("person"):]) for p in ILIDS_PEOPLE},
                       sequence_dir=sequences, cameras=("cam1", "cam2"), frame_names=frame_names)


# --- PRID-2011 -----------------------------------------------------------------------------------------------

PRID_BOTH = tuple(f"person_{i:04d}" for i in range(1, 9))  # seen by both cameras
PRID_ONLY_A = ("person_0009", "person_0010")  # cam_a numbers its other people on from there
PRID_ONLY_B = ("person_0009", "person_0010", "person_0011")  # cam_b's 9.. are other people than cam_a's
PRID_FRAMES = {"cam_a": (1, 2, 10, 11), "cam_b": (3, 20, 100)}


def write_prid2011(parent: Path, seed: int = 0) -> SplitLayout:
    dataset_dir = parent / "prid2011"
    multi_shot = "prid_2011/multi_shot"
    frame_names = {cam: tuple(f"{n}.png" for n in numbers) for cam, numbers in PRID_FRAMES.items()}
    people = {"cam_a": PRID_BOTH + PRID_ONLY_A, "cam_b": PRID_BOTH + PRID_ONLY_B}
    for cam, names in frame_names.items():
        for person in people[cam]:
            for name in reversed(names):
                _touch(dataset_dir / multi_shot / cam / person / name)
    (dataset_dir / "prid_2011" / "single_shot").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    used = PRID_BOTH[:6]  # the split file leaves out some people seen by both cameras, as the real one does
    split_records = []
    splits = []
    for _ in range(10):
        order = [used[i] for i in rng.permutation(len(used))]
        split_records.append({"train": order[:3], "test": order[3:]})
        splits.append((sorted(order[:3]), sorted(order[3:])))
    (dataset_dir / "splits_prid2011.json").write_text(json.dumps(split_records))
    return SplitLayout(dataset_dir, splits=splits, person_pid={p: int(p[len("person_"):]) for p in PRID_BOTH},
                       sequence_dir=multi_shot, cameras=("cam_a", "cam_b"), frame_names=frame_names)


# --- DukeMTMC-VideoReID --------------------------------------------------------------------------------------

DUKE_NAME_STYLES = {
    "compact": "{pid:04d}C{cam}F{frame:04d}X{x:05d}.jpg",  # as released
    "underscored": "{pid:04d}_C{cam}_F{frame:04d}_X{x:05d}.jpg",
    "no_x": "{pid:04d}_C{cam}_F{frame:04d}.jpg",
}
# split -> (pid, tracklet id, camera 1-based, frame numbers in temporal order)
DUKE_TRACKLETS = {
    "train": ((1, 1, 1, (1, 2, 3)), (1, 2, 2, (2, 3)), (2, 1, 3, (9998, 9999, 10000)), (3, 4, 8, (1, 2))),
    "query": ((5, 1, 1, (1, 2)), (6, 3, 2, (4, 5, 6))),
    "gallery": ((5, 2, 4, (1, 2, 3)), (5, 7, 4, (1, 2)), (6, 1, 5, (1, 2)), (7, 1, 7, (1, 2))),  # pid 7: distractor
}


def write_dukemtmcvidreid(parent: Path, name_style: str = "compact", zip_folder: bool = True) -> Layout:
    """With ``zip_folder`` the splits sit in ``DukeMTMC-VideoReID/`` as the zip unpacks; without, directly."""
    folder = parent / "dukemtmc-vidreid"
    dataset_dir = folder / "DukeMTMC-VideoReID" if zip_folder else folder
    pattern = DUKE_NAME_STYLES[name_style]
    expected: dict[str, list[ExpectedTracklet]] = {}
    for split, tracklets in DUKE_TRACKLETS.items():
        expected[split] = []
        for pid, tracklet_id, cam, frames in tracklets:
            relative = f"{split}/{pid:04d}/{tracklet_id:04d}"
            names = [pattern.format(pid=pid, cam=cam, frame=f, x=90000 - 3 * f) for f in frames]
            for name in reversed(names):
                _touch(dataset_dir / relative / name)
            expected[split].append(ExpectedTracklet(pid, cam - 1, tuple(f"{relative}/{n}" for n in names)))
    return Layout(dataset_dir, expected)


# --- LS-VID --------------------------------------------------------------------------------------------------

# part -> (pid, sequence number, camera 1-based, frame numbers in temporal order)
LSVID_TRACKLETS = {
    "train": ((1, 1, 3, (8, 9, 10, 11)), (1, 2, 12, (1, 2)), (2, 1, 15, (5, 6, 7))),
    "val": ((3, 1, 1, (1, 2)),),
    "test": ((4, 1, 2, (1, 2, 3)), (4, 2, 5, (9, 10)), (5, 1, 7, (1, 2)), (5, 2, 8, (30, 31)), (6, 1, 1, (1, 2)),
             (-1, 1, 4, (1, 2))),  # a junk line
}
LSVID_QUERY_ROWS = (0, 2)  # 0-based rows of the test list


def lsvid_prefix(part: str, pid: int, sequence: int, camera: int) -> str:
    return f"tracklet_{part}/{pid:04d}/{pid:04d}_{sequence:04d}_{camera:02d}"


def write_info_test_hdf5(path: Path, query: np.ndarray, info_test: np.ndarray) -> None:
    """A MATLAB v7.3 MAT file: HDF5 behind the 128-byte MATLAB header; MATLAB stores arrays transposed."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as handle:
        handle.create_dataset("query", data=query.T)
        handle.create_dataset("info_test", data=info_test.T)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2019 HDF5 schema 1.00 ."
    with path.open("r+b") as handle:
        handle.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


def write_lsvid(parent: Path, mat_format: str = "v5") -> Layout:
    """``mat_format`` "hdf5" writes info_test.mat as MATLAB v7.3 (the published form, needs h5py), "v5" as v5."""
    dataset_dir = parent / "LS-VID"
    (dataset_dir / "list_sequence").mkdir(parents=True)
    expected_rows: dict[str, list[ExpectedTracklet]] = {}
    for part, tracklets in LSVID_TRACKLETS.items():
        lines, expected_rows[part] = [], []
        for pid, sequence, camera, frames in tracklets:
            prefix = lsvid_prefix(part, pid, sequence, camera)
            for frame in reversed(frames):
                _touch(dataset_dir / f"{prefix}_{frame}.jpg")
            lines.append(f"{prefix} {pid}")
            expected_rows[part].append(ExpectedTracklet(pid, camera - 1, tuple(f"{prefix}_{f}.jpg" for f in frames)))
        (dataset_dir / "list_sequence" / f"list_seq_{part}.txt").write_text("\n".join(lines) + "\n")
    test = LSVID_TRACKLETS["test"]
    query = np.array([[r + 1 for r in LSVID_QUERY_ROWS]], dtype=np.float64)  # (1, Q)
    info_test = np.array([(0, 0, pid, cam) for pid, _, cam, _ in test], dtype=np.float64)  # (N, 4)
    mat_path = dataset_dir / "test" / "data" / "info_test.mat"
    mat_path.parent.mkdir(parents=True)
    if mat_format == "hdf5":
        write_info_test_hdf5(mat_path, query, info_test)
    else:
        scipy.io.savemat(mat_path, {"query": query, "info_test": info_test})
    rows = expected_rows["test"]
    return Layout(dataset_dir, {
        "train": [t for t in expected_rows["train"] if t.pid != -1],
        "query": [rows[r] for r in LSVID_QUERY_ROWS],
        "gallery": [t for r, t in enumerate(rows) if r not in LSVID_QUERY_ROWS and t.pid != -1],
    })
