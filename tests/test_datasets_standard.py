"""Loaders of MARS, iLIDS-VID, PRID-2011, DukeMTMC-VideoReID and LS-VID against tiny copies of their layouts."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from layouts import (
    ExpectedTracklet,
    Layout,
    write_dukemtmcvidreid,
    write_ilidsvid,
    write_lsvid,
    write_mars,
    write_prid2011,
)
from vreid_bench.data import VideoReIDDataset
from vreid_bench.datasets import get_entry, load
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

SPLITS = ("train", "query", "gallery")


def relative(dataset: VideoReIDDataset, dataset_dir: Path) -> dict[str, list[ExpectedTracklet]]:
    """The loaded tracklets with frame paths relative to the dataset folder, in a canonical order."""
    result = {}
    for split in SPLITS:
        tracklets = []
        for t in getattr(dataset, split):
            assert all(isinstance(f, str) for f in t.frames)
            frames = tuple(Path(f).relative_to(dataset_dir).as_posix() for f in t.frames)
            tracklets.append(ExpectedTracklet(t.pid, t.camid, frames))
        result[split] = sorted(tracklets, key=lambda e: (e.pid, e.camid, e.frames))
    return result


def canonical(expected: dict[str, list[ExpectedTracklet]]) -> dict[str, list[ExpectedTracklet]]:
    return {split: sorted(expected[split], key=lambda e: (e.pid, e.camid, e.frames)) for split in SPLITS}


def root_of(layout: Layout, form: str) -> Path:
    """The dataset folder itself, or the folder holding it (for Duke, the folder the zip was unpacked in)."""
    folder = layout.dataset_dir
    if folder.name == "DukeMTMC-VideoReID":
        folder = folder.parent
    return folder if form == "dataset" else folder.parent


def assert_one_line_naming(error: pytest.ExceptionInfo, *parts: object) -> None:
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert str(part) in message, f"{part} not in {message!r}"


ROOT_FORMS = ("dataset", "parent")


# --- MARS ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ROOT_FORMS)
def test_mars_yields_the_published_protocol(tmp_path: Path, form: str) -> None:
    layout = write_mars(tmp_path)
    dataset = load("mars", root=root_of(layout, form))
    assert relative(dataset, layout.dataset_dir) == canonical(layout.expected)
    assert (len(dataset.train), len(dataset.query), len(dataset.gallery)) == (6, 2, 5)
    assert dataset.num_train_pids == 3
    assert dataset.num_cams == 6


def test_mars_drops_junk_everywhere_and_keeps_distractors_in_gallery(tmp_path: Path) -> None:
    dataset = load("mars", root=write_mars(tmp_path).dataset_dir)
    all_pids = [t.pid for split in SPLITS for t in getattr(dataset, split)]
    assert -1 not in all_pids
    assert sorted(t.pid for t in dataset.gallery) == [0, 0, 4, 4, 5]
    assert sorted(t.pid for t in dataset.query) == [4, 5]
    assert dataset.notes["junk_tracklets_dropped"] == 2


def test_mars_sorts_frames_by_frame_number_not_list_order(tmp_path: Path) -> None:
    dataset = load("mars", root=write_mars(tmp_path).dataset_dir)
    query = next(t for t in dataset.query if t.pid == 4)
    assert [Path(f).name[-7:-4] for f in query.frames] == ["001", "002", "003"]
    gallery = next(t for t in dataset.gallery if t.camid == 5)
    assert [Path(f).name[-7:-4] for f in gallery.frames] == ["010", "011", "012"]


@pytest.mark.parametrize("missing", ["info/query_IDX.mat", "info/train_name.txt", "info/tracks_test_info.mat",
                                     "bbox_test"])
def test_mars_missing_file_names_the_path_and_how_to_get_it(tmp_path: Path, missing: str) -> None:
    layout = write_mars(tmp_path, write_frames=False)
    target = layout.dataset_dir / missing
    if target.is_dir():
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load("mars", root=tmp_path)
    assert_one_line_naming(error, target, get_entry("mars").how_to_get)


def test_mars_malformed_track_info_names_the_file(tmp_path: Path) -> None:
    layout = write_mars(tmp_path, write_frames=False)
    path = layout.dataset_dir / "info" / "tracks_train_info.mat"
    scipy.io.savemat(path, {"track_train_info": np.ones((3, 5))})
    with pytest.raises(DatasetFormatError) as error:
        load("mars", root=tmp_path)
    assert_one_line_naming(error, path, "(3, 5)")


def test_mars_track_info_beyond_the_name_list_is_a_format_error(tmp_path: Path) -> None:
    layout = write_mars(tmp_path, write_frames=False)
    path = layout.dataset_dir / "info" / "tracks_test_info.mat"
    info = scipy.io.loadmat(path)["track_test_info"]
    info[-1, 1] = 10_000
    scipy.io.savemat(path, {"track_test_info": info})
    with pytest.raises(DatasetFormatError) as error:
        load("mars", root=tmp_path)
    assert_one_line_naming(error, path, f"row {len(info)}")


def test_mars_bad_frame_name_names_file_and_line(tmp_path: Path) -> None:
    layout = write_mars(tmp_path, write_frames=False)
    path = layout.dataset_dir / "info" / "test_name.txt"
    names = path.read_text().split()
    names[4] = "0004C2T0001X001.jpg"
    path.write_text("\n".join(names) + "\n")
    with pytest.raises(DatasetFormatError) as error:
        load("mars", root=tmp_path)
    assert_one_line_naming(error, f"{path}:5", "0004C2T0001X001.jpg")


def test_mars_tracklet_spanning_two_cameras_is_a_format_error(tmp_path: Path) -> None:
    layout = write_mars(tmp_path, write_frames=False)
    path = layout.dataset_dir / "info" / "train_name.txt"
    names = path.read_text().split()
    names[1] = names[1].replace("C1T", "C2T")  # second frame of the first tracklet
    path.write_text("\n".join(names) + "\n")
    with pytest.raises(DatasetFormatError) as error:
        load("mars", root=tmp_path)
    assert_one_line_naming(error, layout.dataset_dir / "info" / "tracks_train_info.mat", "row 1")


# --- iLIDS-VID and PRID-2011 ---------------------------------------------------------------------------------

SPLIT_WRITERS = {"ilidsvid": write_ilidsvid, "prid2011": write_prid2011}


@pytest.mark.parametrize("name", SPLIT_WRITERS)
@pytest.mark.parametrize("form", ROOT_FORMS)
def test_split_datasets_follow_the_split_file(tmp_path: Path, name: str, form: str) -> None:
    layout = SPLIT_WRITERS[name](tmp_path)
    for split in (0, 3):
        dataset = load(name, root=root_of(layout, form), split=split)
        assert relative(dataset, layout.dataset_dir) == canonical(layout.expected_for(split))
        assert dataset.notes["split"] == split
    assert layout.splits[0] != layout.splits[3]


@pytest.mark.parametrize("name", SPLIT_WRITERS)
def test_split_datasets_query_camera_one_gallery_camera_two(tmp_path: Path, name: str) -> None:
    layout = SPLIT_WRITERS[name](tmp_path)
    dataset = load(name, root=layout.dataset_dir, split=3)
    train_people, test_people = layout.splits[3]
    test_pids = sorted(layout.person_pid[p] for p in test_people)
    assert sorted(t.pid for t in dataset.query) == test_pids
    assert sorted(t.pid for t in dataset.gallery) == test_pids
    assert {t.camid for t in dataset.query} == {0} and {t.camid for t in dataset.gallery} == {1}
    assert sorted(t.pid for t in dataset.train) == sorted(layout.person_pid[p] for p in train_people for _ in "ab")
    assert not set(dataset.train_pids) & set(test_pids)
    assert all(dataset.pid_names[layout.person_pid[p]] == p for p in train_people + test_people)


@pytest.mark.parametrize("name", SPLIT_WRITERS)
def test_split_frames_are_in_temporal_order(tmp_path: Path, name: str) -> None:
    layout = SPLIT_WRITERS[name](tmp_path)
    dataset = load(name, root=layout.dataset_dir)
    for tracklet in dataset.train + dataset.query + dataset.gallery:
        numbers = [int(Path(f).stem.split("_")[-1]) for f in tracklet.frames]
        assert numbers == sorted(numbers) and len(numbers) > 2
        assert [Path(f).name for f in tracklet.frames] != sorted(Path(f).name for f in tracklet.frames)


@pytest.mark.parametrize("name", SPLIT_WRITERS)
@pytest.mark.parametrize("split", [10, -1, "3", True])
def test_split_out_of_range_is_a_config_error(tmp_path: Path, name: str, split: object) -> None:
    layout = SPLIT_WRITERS[name](tmp_path)
    with pytest.raises(ConfigError) as error:
        load(name, root=layout.dataset_dir, split=split)
    assert_one_line_naming(error, f"split={split!r}", "0..9")


def test_ilidsvid_missing_split_file_names_it(tmp_path: Path) -> None:
    layout = write_ilidsvid(tmp_path)
    path = layout.dataset_dir / "train-test people splits" / "train_test_splits_ilidsvid.mat"
    path.unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load("ilids-vid", root=tmp_path)
    assert_one_line_naming(error, path, get_entry("ilidsvid").how_to_get)


def test_ilidsvid_split_matrix_of_wrong_size_is_a_format_error(tmp_path: Path) -> None:
    layout = write_ilidsvid(tmp_path)
    path = layout.dataset_dir / "train-test people splits" / "train_test_splits_ilidsvid.mat"
    scipy.io.savemat(path, {"ls_set": np.tile(np.arange(1, 5), (10, 1)).astype(float)})
    with pytest.raises(DatasetFormatError) as error:
        load("ilidsvid", root=tmp_path)
    assert_one_line_naming(error, path, "ls_set")


def test_prid_missing_split_file_names_it(tmp_path: Path) -> None:
    layout = write_prid2011(tmp_path)
    (layout.dataset_dir / "splits_prid2011.json").unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load("prid", root=tmp_path)
    assert_one_line_naming(error, layout.dataset_dir / "splits_prid2011.json", get_entry("prid2011").how_to_get)


def test_prid_split_naming_a_person_missing_from_a_camera_is_a_format_error(tmp_path: Path) -> None:
    layout = write_prid2011(tmp_path)
    path = layout.dataset_dir / "splits_prid2011.json"
    path.write_text('[{"train": ["person_0001", "person_0011"], "test": ["person_0002"]}]')
    with pytest.raises(DatasetFormatError) as error:
        load("prid2011", root=tmp_path)
    assert_one_line_naming(error, path, "person_0011")


# --- DukeMTMC-VideoReID --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name_style", ["compact", "underscored", "no_x"])
@pytest.mark.parametrize("zip_folder", [True, False])
@pytest.mark.parametrize("form", ROOT_FORMS)
def test_duke_reads_both_name_forms_and_folder_forms(tmp_path: Path, name_style: str, zip_folder: bool,
                                                     form: str) -> None:
    layout = write_dukemtmcvidreid(tmp_path, name_style=name_style, zip_folder=zip_folder)
    dataset = load("dukemtmcvidreid", root=root_of(layout, form))
    assert relative(dataset, layout.dataset_dir) == canonical(layout.expected)


def test_duke_counts_distractors_and_cameras(tmp_path: Path) -> None:
    dataset = load("duke", root=write_dukemtmcvidreid(tmp_path).dataset_dir)
    assert (len(dataset.train), len(dataset.query), len(dataset.gallery)) == (4, 2, 4)
    assert dataset.num_train_pids == 3
    assert {t.pid for t in dataset.gallery} - {t.pid for t in dataset.query} == {7}
    assert dataset.num_cams == 8
    long_one = next(t for t in dataset.train if t.pid == 2)
    assert [re.search(r"F(\d+)", Path(f).name).group(1) for f in long_one.frames] == ["9998", "9999", "10000"]


def test_duke_missing_split_folder_names_it(tmp_path: Path) -> None:
    layout = write_dukemtmcvidreid(tmp_path)
    gallery = layout.dataset_dir / "gallery"
    for directory, _, files in sorted(os.walk(gallery), key=lambda item: -len(item[0])):
        for name in files:
            Path(directory, name).unlink()
        Path(directory).rmdir()
    with pytest.raises(DatasetNotFoundError) as error:
        load("duke", root=tmp_path)
    assert_one_line_naming(error, gallery)


def test_duke_empty_tracklet_folder_is_a_format_error(tmp_path: Path) -> None:
    layout = write_dukemtmcvidreid(tmp_path)
    empty = layout.dataset_dir / "query" / "0005" / "0009"
    empty.mkdir()
    with pytest.raises(DatasetFormatError) as error:
        load("duke", root=tmp_path)
    assert_one_line_naming(error, empty)


# --- LS-VID --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ROOT_FORMS)
def test_lsvid_splits_test_list_by_info_test(tmp_path: Path, form: str) -> None:
    layout = write_lsvid(tmp_path)
    dataset = load("lsvid", root=root_of(layout, form))
    assert relative(dataset, layout.dataset_dir) == canonical(layout.expected)
    assert (len(dataset.train), len(dataset.query), len(dataset.gallery)) == (3, 2, 3)
    assert dataset.notes["junk_tracklets_dropped"] == 1
    assert max(t.camid for t in dataset.train) == 14


def test_lsvid_reads_the_published_hdf5_info_test(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    layout = write_lsvid(tmp_path, mat_format="hdf5")
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(layout.dataset_dir / "test" / "data" / "info_test.mat")  # really a v7.3 file
    dataset = load("ls-vid", root=tmp_path)
    assert relative(dataset, layout.dataset_dir) == canonical(layout.expected)


def test_lsvid_missing_info_test_names_it(tmp_path: Path) -> None:
    layout = write_lsvid(tmp_path)
    path = layout.dataset_dir / "test" / "data" / "info_test.mat"
    path.unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load("lsvid", root=tmp_path)
    assert_one_line_naming(error, path, get_entry("lsvid").how_to_get)


def test_lsvid_query_rows_out_of_range_is_a_format_error(tmp_path: Path) -> None:
    layout = write_lsvid(tmp_path)
    path = layout.dataset_dir / "test" / "data" / "info_test.mat"
    scipy.io.savemat(path, {"query": np.array([[1.0, 99.0]])})
    with pytest.raises(DatasetFormatError) as error:
        load("lsvid", root=tmp_path)
    assert_one_line_naming(error, path, "list_seq_test.txt")


def test_lsvid_line_without_frames_names_the_list_line(tmp_path: Path) -> None:
    layout = write_lsvid(tmp_path)
    path = layout.dataset_dir / "list_sequence" / "list_seq_train.txt"
    path.write_text(path.read_text() + "tracklet_train/0001/0001_0009_03 1\n")
    with pytest.raises(DatasetFormatError) as error:
        load("lsvid", root=tmp_path)
    assert_one_line_naming(error, f"{path}:4", "0001_0009_03")


# --- every loader ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mars", "ilidsvid", "prid2011", "dukemtmcvidreid", "lsvid"])
def test_bad_root_is_one_line_naming_root_and_how_to_get(tmp_path: Path, name: str) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as error:
        load(name, root=root)
    entry = get_entry(name)
    assert_one_line_naming(error, root, root / entry.folder, entry.how_to_get)


# --- ids, fingerprints and literature defaults ----------------------------------------------------------------

WRITERS = {"mars": write_mars, "ilidsvid": write_ilidsvid, "prid2011": write_prid2011, "lsvid": write_lsvid,
           "dukemtmcvidreid": write_dukemtmcvidreid}
DEFAULTS = {"mars": "all-tracklets", "lsvid": "all-tracklets", "ilidsvid": "gallery-only",
            "prid2011": "gallery-only", "dukemtmcvidreid": "gallery-only"}


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_standard_dataset_has_stable_ids_a_fingerprint_and_its_literatures_protocol(tmp_path, name):
    layout = WRITERS[name](tmp_path / "a")
    dataset = load(name, root=root_of(layout, "parent"))
    assert (dataset.default_protocol, dataset.family, dataset.benchmark) == (DEFAULTS[name], name, name)
    ids = [t.tracklet_id for split in SPLITS for t in getattr(dataset, split)]
    assert all(ids) and len(set(ids)) == len(ids)
    assert len(dataset.fingerprint) == 64
    copy = tmp_path / "b"  # the same content elsewhere (a .mat file written anew has a new timestamp inside)
    shutil.copytree(tmp_path / "a", copy)
    assert load(name, root=copy).fingerprint == dataset.fingerprint


def test_mars_ids_are_rows_of_the_published_track_info(tmp_path):
    layout = write_mars(tmp_path)
    dataset = load("mars", root=layout.dataset_dir)
    assert dataset.train[0].tracklet_id == "train:1"
    assert {t.tracklet_id.split(":")[0] for t in dataset.query + dataset.gallery} == {"test"}


@pytest.mark.parametrize("name", ["ilidsvid", "prid2011"])
def test_a_splits_fingerprint_ignores_the_split_and_sees_the_split_file(tmp_path, name):
    layout = WRITERS[name](tmp_path)
    fingerprints = {load(name, root=layout.dataset_dir, split=k).fingerprint for k in range(3)}
    assert len(fingerprints) == 1  # the split is part of the protocol, not of the data
    ilids = name == "ilidsvid"
    split_file = layout.dataset_dir / ("train-test people splits/train_test_splits_ilidsvid.mat" if ilids
                                       else "splits_prid2011.json")
    split_file.write_bytes(split_file.read_bytes() + (b"" if ilids else b"\n"))
    if ilids:  # a different (valid) split matrix
        matrix = scipy.io.loadmat(split_file)["ls_set"][::-1].copy()
        scipy.io.savemat(split_file, {"ls_set": matrix})
    assert load(name, root=layout.dataset_dir).fingerprint not in fingerprints
