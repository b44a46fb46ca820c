"""Readers of MOT-annotated footage: the sources a dataset is built from.

Supported layouts, detected by :func:`read_mot_root`:

- a MOTChallenge-family **sequence** folder: ``<seq>/img1/000001.jpg``, ``<seq>/gt/gt.txt``, ``<seq>/seqinfo.ini``;
- a **SportsMOT** root: ``dataset/{train,val,test}/<seq>/`` and ``splits_txt/{train,val,test}.txt``;
- a **DanceTrack** root: ``{train,val,test}/<seq>/`` and ``{train,val,test}_seqmap.txt`` (a ``name`` header line);
- a **MOTChallenge** root: ``train/`` and ``test/`` folders of sequences (MOT15/16/17/20); sequences whose gt is
  byte-identical to an earlier one (MOT17 ships each video three times, once per public detector) are read once;
- **videos**: a video file with its ground truth beside it as ``<stem>.gt.txt`` (``clip.mp4`` + ``clip.gt.txt``),
  or a folder of such pairs.

Ground-truth lines are ``frame,id,left,top,width,height[,conf[,class[,visibility[,z]]]]`` (1-based frames, ids
local to the sequence). Rows whose conf flag is 0 are ignored (MOT16/17/20 mark boxes not to be evaluated that
way), and where a class column is given (not -1) only pedestrians (class 1) are kept.

The reader's product is a :class:`TrackTable` per sequence: the boxes of every identity in every frame. It is
the interface between reading (or, for raw footage, detection and tracking) and curation.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vreid_bench.errors import DatasetFormatError, DatasetNotFoundError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
GT_FIELDS_MIN, GT_FIELDS_MAX = 6, 10
PEDESTRIAN_CLASS = 1
SPLIT_NAMES = ("train", "val", "test")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
GT_FORMAT = "frame,id,left,top,width,height[,conf,class,visibility]"


@dataclass(frozen=True)
class TrackTable:
    """Boxes of one video, sorted by (track, frame).

    ``frame`` (N,) int64, 1-based; ``track`` (N,) int64, ids local to the video; ``box`` (N, 4) float64 as
    left, top, width, height in pixels of the source resolution.
    """

    frame: np.ndarray
    track: np.ndarray
    box: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def select(self, mask: np.ndarray) -> TrackTable:
        return TrackTable(self.frame[mask], self.track[mask], self.box[mask])

    def digest(self) -> str:
        """Content hash, so that a finished video can be recognised when a build is resumed."""
        sha = hashlib.sha256()
        for array in (self.frame, self.track, self.box):
            sha.update(np.ascontiguousarray(array).tobytes())
        return sha.hexdigest()


def make_track_table(frame: np.ndarray, track: np.ndarray, box: np.ndarray) -> TrackTable:
    """A :class:`TrackTable` in its canonical (track, frame) order."""
    order = np.lexsort((frame, track))
    return TrackTable(
        frame=np.asarray(frame, dtype=np.int64)[order],
        track=np.asarray(track, dtype=np.int64)[order],
        box=np.asarray(box, dtype=np.float64).reshape(-1, 4)[order],
    )


@dataclass(frozen=True)
class MotSequence:
    """One annotated video: where its frames are, its geometry and its ground truth.

    Frames come from an image folder (``frame_files`` maps the 1-based frame number to its file) or from a
    ``video_file`` decoded in order. ``split`` is the source's own split (train, val, test) or None where the
    source has no split lists.
    """

    name: str
    split: str | None
    path: Path
    frame_rate: float
    width: int
    height: int
    n_frames: int
    gt: TrackTable
    gt_path: Path
    frame_files: dict[int, Path] = field(default_factory=dict)
    video_file: Path | None = None
    attributes_path: Path | None = None

    def frame_path(self, frame: int) -> Path:
        return self.frame_files[frame]


@dataclass(frozen=True)
class MotSource:
    """Every readable sequence under a root, the layout it was recognised as, and notes on what was skipped."""

    layout: str
    root: Path
    sequences: tuple[MotSequence, ...]
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- ground truth


def _gt_error(path: Path, line_no: int, problem: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}:{line_no}: {problem}; fix or remove the line (format: {GT_FORMAT})")


def _parse_int(text: str, path: Path, line_no: int, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise _gt_error(path, line_no, f"{what} {text.strip()!r} is not a number") from None
    if not value.is_integer():
        raise _gt_error(path, line_no, f"{what} {text.strip()!r} is not a whole number")
    return int(value)


def _parse_float(text: str, path: Path, line_no: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _gt_error(path, line_no, f"{what} {text.strip()!r} is not a number") from None
    if not np.isfinite(value):
        raise _gt_error(path, line_no, f"{what} {text.strip()!r} is not finite")
    return value


def read_gt(path: Path, n_frames: int) -> tuple[TrackTable, np.ndarray]:
    """Parse a MOT ``gt.txt``; returns the kept boxes and, for each, its line number (for later messages).

    Every line is checked, kept or not, so a malformed file is reported where it is wrong rather than
    half-used.
    """
    frames: list[int] = []
    tracks: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    line_numbers: list[int] = []
    seen: dict[tuple[int, int], int] = {}
    with path.open() as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.strip().split(",")
            if not GT_FIELDS_MIN <= len(fields) <= GT_FIELDS_MAX:
                raise _gt_error(path, line_no, f"expected {GT_FIELDS_MIN} to {GT_FIELDS_MAX} comma-separated "
                                f"fields, found {len(fields)}")
            frame = _parse_int(fields[0], path, line_no, "frame")
            track = _parse_int(fields[1], path, line_no, "track id")
            left, top, width, height = (_parse_float(fields[i], path, line_no, name)
                                        for i, name in enumerate(("left", "top", "width", "height"), start=2))
            if not 1 <= frame <= n_frames:
                raise _gt_error(path, line_no, f"frame {frame} is outside 1..{n_frames} (seqLength)")
            if track < 0:
                raise _gt_error(path, line_no, f"track id {track} is negative")
            if width < 0 or height < 0:
                raise _gt_error(path, line_no, f"negative box size {width:g}x{height:g}")
            if len(fields) > 6 and _parse_float(fields[6], path, line_no, "conf") == 0:
                continue
            if len(fields) > 7 and _parse_int(fields[7], path, line_no, "class") not in (-1, PEDESTRIAN_CLASS):
                continue
            earlier = seen.setdefault((frame, track), line_no)
            if earlier != line_no:
                raise _gt_error(path, line_no, f"track {track} already has a box in frame {frame} (line {earlier})")
            frames.append(frame)
            tracks.append(track)
            boxes.append((left, top, width, height))
            line_numbers.append(line_no)
    frame_array, track_array = np.array(frames, dtype=np.int64), np.array(tracks, dtype=np.int64)
    order = np.lexsort((frame_array, track_array))
    table = TrackTable(frame_array[order], track_array[order], np.array(boxes, dtype=np.float64).reshape(-1, 4)[order])
    return table, np.array(line_numbers, dtype=np.int64)[order]


# ------------------------------------------------------------------------------------------ one sequence


def _read_seqinfo(seq_dir: Path) -> configparser.SectionProxy:
    path = seq_dir / "seqinfo.ini"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} is missing: every MOT sequence folder needs one ([Sequence] with frameRate, seqLength, "
            "imWidth, imHeight, imDir, imExt); add it"
        )
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise DatasetFormatError(f"{path}: not a valid ini file ({exc.message.splitlines()[0]}); fix it") from None
    if not parser.has_section("Sequence"):
        raise DatasetFormatError(f"{path}: no [Sequence] section; add one with frameRate, seqLength, imWidth, imHeight")
    return parser["Sequence"]


def _seqinfo_number(info: configparser.SectionProxy, key: str, path: Path, cast: type) -> int | float:
    raw = info.get(key)
    if raw is None:
        raise DatasetFormatError(f"{path}: key {key} is missing from [Sequence]; add it")
    try:
        value = cast(raw.strip())
    except ValueError:
        raise DatasetFormatError(f"{path}: {key}={raw!r} is not a number; fix it") from None
    if value <= 0:
        raise DatasetFormatError(f"{path}: {key}={raw!r} must be positive; fix it")
    return value


def _list_frame_files(image_dir: Path, suffix: str) -> dict[int, Path]:
    """Frame number -> file, from one listing of the folder."""
    if not image_dir.is_dir():
        raise DatasetNotFoundError(
            f"{image_dir} is missing: the sequence's frames (imDir in seqinfo.ini) must be there"
        )
    files: dict[int, Path] = {}
    with os.scandir(image_dir) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() == suffix.lower() and stem.isdigit():
                files[int(stem)] = image_dir / entry.name
    return files


def _check_frames_present(gt_path: Path, table: TrackTable, line_numbers: np.ndarray, available: Iterable[int],
                          image_dir: Path) -> None:
    present = np.isin(table.frame, np.fromiter(available, dtype=np.int64))
    if not present.all():
        first = int(np.argmin(present))
        frame = int(table.frame[first])
        raise DatasetFormatError(
            f"{gt_path}:{int(line_numbers[first])}: frame {frame} has boxes but no image in {image_dir}; "
            "restore the missing frames or remove their lines"
        )


def _attributes(seq_dir: Path) -> Path | None:
    path = seq_dir / "attributes.json"
    return path if path.is_file() else None


def read_sequence(seq_dir: str | os.PathLike[str], split: str | None = None) -> MotSequence:
    """Read one MOTChallenge-family sequence folder (``img1/``, ``gt/gt.txt``, ``seqinfo.ini``)."""
    seq_dir = Path(seq_dir)
    info = _read_seqinfo(seq_dir)
    ini_path = seq_dir / "seqinfo.ini"
    n_frames = int(_seqinfo_number(info, "seqLength", ini_path, int))
    image_dir = seq_dir / info.get("imDir", "img1").strip()
    suffix = info.get("imExt", ".jpg").strip()
    gt_path = seq_dir / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise DatasetNotFoundError(f"{gt_path} is missing: a sequence needs ground truth to be built from; add it")
    table, line_numbers = read_gt(gt_path, n_frames)
    frame_files = _list_frame_files(image_dir, suffix)
    _check_frames_present(gt_path, table, line_numbers, frame_files, image_dir)
    return MotSequence(
        name=info.get("name", seq_dir.name).strip() or seq_dir.name,
        split=split,
        path=seq_dir,
        frame_rate=float(_seqinfo_number(info, "frameRate", ini_path, float)),
        width=int(_seqinfo_number(info, "imWidth", ini_path, int)),
        height=int(_seqinfo_number(info, "imHeight", ini_path, int)),
        n_frames=n_frames,
        gt=table,
        gt_path=gt_path,
        frame_files={frame: frame_files[frame] for frame in np.unique(table.frame).tolist()},
        attributes_path=_attributes(seq_dir),
    )


def video_gt_path(video: Path) -> Path:
    """Where the ground truth of a video file lives: ``clip.mp4`` -> ``clip.gt.txt``."""
    return video.with_name(video.stem + ".gt.txt")


def read_video(video: str | os.PathLike[str], split: str | None = None) -> MotSequence:
    """Read a video file and the ``<stem>.gt.txt`` beside it; geometry comes from the container."""
    import cv2

    video = Path(video)
    gt_path = video_gt_path(video)
    if not gt_path.is_file():
        raise DatasetNotFoundError(f"{gt_path} is missing: a video needs its ground truth beside it as <stem>.gt.txt")
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise DatasetFormatError(f"{video}: cannot be decoded by OpenCV; convert it to H.264 MP4")
        n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frame_rate = float(capture.get(cv2.CAP_PROP_FPS))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if n_frames <= 0 or frame_rate <= 0 or width <= 0 or height <= 0:
        raise DatasetFormatError(f"{video}: the container reports no frame count, rate or size; re-encode it")
    table, _ = read_gt(gt_path, n_frames)
    return MotSequence(
        name=video.stem, split=split, path=video, frame_rate=frame_rate, width=width, height=height,
        n_frames=n_frames, gt=table, gt_path=gt_path, video_file=video,
        attributes_path=_attributes_beside(video),
    )


def _attributes_beside(video: Path) -> Path | None:
    path = video.with_name(video.stem + ".attributes.json")
    return path if path.is_file() else None


# ------------------------------------------------------------------------------------------------- roots


def _read_name_list(path: Path, header: str | None = None) -> list[tuple[int, str]]:
    """(line number, sequence name) of a split list, without blank lines and the optional header line."""
    entries = [(no, line.strip()) for no, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    if header is not None and entries and entries[0][1] == header:
        entries = entries[1:]
    return entries


def _listed_sequences(list_path: Path, split_dir: Path, split: str, header: str | None,
                      notes: list[str]) -> list[MotSequence]:
    """Sequences named by a split list; test sequences without gt are skipped with a note."""
    sequences = []
    for line_no, name in _read_name_list(list_path, header):
        seq_dir = split_dir / name
        if not seq_dir.is_dir():
            raise DatasetNotFoundError(
                f"{list_path}:{line_no}: sequence {name} is listed but {seq_dir} is missing; "
                "unpack it or remove it from the list"
            )
        if not (seq_dir / "gt" / "gt.txt").is_file() and split == "test":
            notes.append(f"{seq_dir}: no gt/gt.txt (hidden test labels), skipped")
            continue
        sequences.append(read_sequence(seq_dir, split))
    return sequences


def _read_sportsmot(root: Path, notes: list[str]) -> list[MotSequence]:
    sequences = []
    for split in SPLIT_NAMES:
        list_path = root / "splits_txt" / f"{split}.txt"
        if list_path.is_file():
            sequences += _listed_sequences(list_path, root / "dataset" / split, split, None, notes)
    return sequences


def _read_dancetrack(root: Path, notes: list[str]) -> list[MotSequence]:
    sequences = []
    for split in SPLIT_NAMES:
        list_path = root / f"{split}_seqmap.txt"
        if list_path.is_file():
            sequences += _listed_sequences(list_path, root / split, split, "name", notes)
    return sequences


def _gt_digest(seq_dir: Path) -> str:
    return hashlib.sha256((seq_dir / "gt" / "gt.txt").read_bytes()).hexdigest()


def _read_motchallenge(root: Path, notes: list[str]) -> list[MotSequence]:
    """``train/`` and ``test/`` folders of sequences, no split lists: every annotated sequence is unsplit."""
    sequences = []
    seen_gt: dict[str, str] = {}
    for split_dir in (root / "train", root / "test"):
        if not split_dir.is_dir():
            continue
        for seq_dir in sorted(p for p in split_dir.iterdir() if (p / "seqinfo.ini").is_file()):
            if not (seq_dir / "gt" / "gt.txt").is_file():
                notes.append(f"{seq_dir}: no gt/gt.txt, skipped")
                continue
            digest = _gt_digest(seq_dir)
            if digest in seen_gt:
                notes.append(f"{seq_dir}: same ground truth as {seen_gt[digest]}, skipped")
                continue
            seen_gt[digest] = seq_dir.name
            sequences.append(read_sequence(seq_dir))
    return sequences


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and video_gt_path(p).is_file())


def detect_layout(path: Path) -> str | None:
    """The layout of ``path`` (sequence, sportsmot, dancetrack, motchallenge, videos), None if unrecognised."""
    if path.is_file():
        return "videos" if path.suffix.lower() in VIDEO_SUFFIXES else None
    if not path.is_dir():
        return None
    if (path / "seqinfo.ini").is_file():
        return "sequence"
    if (path / "dataset").is_dir() and (path / "splits_txt").is_dir():
        return "sportsmot"
    if any((path / f"{split}_seqmap.txt").is_file() for split in SPLIT_NAMES):
        return "dancetrack"
    if any((path / split).is_dir() and any((p / "seqinfo.ini").is_file() for p in (path / split).iterdir())
           for split in ("train", "test")):
        return "motchallenge"
    if _videos_in(path):
        return "videos"
    return None


def _resolve_root(path: Path) -> tuple[Path, str]:
    """The folder to read and its layout; also looks one level down (``sportsmot_publish/``, ``dancetrack/``)."""
    if path.name == "dataset" and detect_layout(path.parent) == "sportsmot":
        return path.parent, "sportsmot"
    layout = detect_layout(path)
    if layout is not None:
        return path, layout
    if path.is_dir():
        found = [(child, detect_layout(child)) for child in sorted(path.iterdir()) if child.is_dir()]
        found = [(child, layout) for child, layout in found if layout not in (None, "sequence")]
        if len(found) == 1:
            return found[0]
    raise DatasetNotFoundError(
        f"{path} is not MOT-annotated footage: give a sequence folder (img1/, gt/gt.txt, seqinfo.ini), a SportsMOT "
        "root (dataset/, splits_txt/), a DanceTrack root (*_seqmap.txt), a MOTChallenge root (train/, test/), or a "
        "video with <stem>.gt.txt beside it"
    )


def read_mot_root(path: str | os.PathLike[str]) -> MotSource:
    """Read every annotated sequence under ``path``, whose layout is detected; errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path} does not exist: give the folder of the MOT-annotated footage")
    root, layout = _resolve_root(path)
    notes: list[str] = []
    if layout == "sequence":
        sequences = [read_sequence(root)]
    elif layout == "sportsmot":
        sequences = _read_sportsmot(root, notes)
    elif layout == "dancetrack":
        sequences = _read_dancetrack(root, notes)
    elif layout == "motchallenge":
        sequences = _read_motchallenge(root, notes)
    else:
        sequences = [read_video(v) for v in ([root] if root.is_file() else _videos_in(root))]
    if not sequences:
        raise DatasetNotFoundError(f"{root} ({layout} layout) holds no sequence with ground truth; nothing to build")
    unsafe = [s.name for s in sequences if not _SAFE_NAME.fullmatch(s.name)]
    if unsafe:
        raise DatasetFormatError(
            f"{root}: sequence names {unsafe} hold characters other than letters, digits, '.', '_' and '-'; "
            "rename them (they become folder names and identity prefixes)"
        )
    names = [s.name for s in sequences]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DatasetFormatError(
            f"{root}: sequence names {duplicates} occur more than once; rename them so each is unique"
        )
    return MotSource(layout=layout, root=root, sequences=tuple(sequences), notes=tuple(notes))
