"""Raw footage for ``vreid build --videos``: video files, globs, folders of videos and folders of frames.

Video files are decoded with OpenCV. ``benchmarks/bench_track.py`` measures it against PyAV (frame-threaded, to
BGR) on 720p H.264, and OpenCV was the faster in every run (213 against 147, 197 against 193 frames/s on 2 shared
cores); it is also the crop stage's decoder (``builders/crops.py``), so a box found on frame n is cut from the
same image, upright by the same display rotation, without two decoders having to agree.

Sampling keeps the source's frame numbers: ``stride`` K reads frames 1, 1+K, 1+2K ..., and ``max_frames`` N stops
after N sampled frames, so frame numbers in a dataset always point into the original footage.

A video that cannot be opened, holds fewer frames than its header declares (a truncated download), or fails to
decode raises :class:`VideoReadError`; the build lists it among the manifest's failures and goes on with the
others.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builders.mot import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

DEFAULT_FRAME_RATE = 25.0  # folders of frames carry no rate; --fps overrides it
MOT_IMAGE_DIR = "img1"  # a MOT sequence folder keeps its frames here
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PATTERN = re.compile(r"[*?[]")  # what makes a --videos value a glob pattern
_DIGITS = re.compile(r"(\d+)")


class VideoReadError(DatasetFormatError):
    """One input cannot be read; the build records it as a failure and builds the other videos."""


@dataclass(frozen=True)
class Sampling:
    """Which frames are read: every ``stride``-th from frame 1, at most ``max_frames`` of them."""

    stride: int = 1
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ConfigError(f"--stride {self.stride} is invalid; use 1 (every frame) or more")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"--max-frames {self.max_frames} is invalid; use 1 or more, or leave it out")

    def frame_numbers(self, n_frames: int) -> np.ndarray:
        """(n,) the 1-based frame numbers read from footage of ``n_frames`` frames."""
        numbers = np.arange(1, n_frames + 1, self.stride, dtype=np.int64)
        return numbers if self.max_frames is None else numbers[: self.max_frames]


@dataclass(frozen=True)
class VideoInput:
    """One piece of footage: a video file, or a folder of frames (``frame_files`` in frame order)."""

    name: str  # letters, digits, '.', '_' and '-': it becomes a folder name and the prefix of identities
    path: Path
    frame_files: tuple[Path, ...] = ()

    @property
    def is_frame_folder(self) -> bool:
        return bool(self.frame_files)


@dataclass(frozen=True)
class VideoInfo:
    """Geometry of a piece of footage, upright, and how many frames it really holds."""

    frame_rate: float
    width: int
    height: int
    n_frames: int


# --------------------------------------------------------------------------------------------- finding inputs


def _natural_key(path: Path) -> list[object]:
    """Sort key that puts frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(path.name)]


def _visible(folder: Path) -> Iterator[Path]:
    """Entries of ``folder`` except hidden ones (``._frame.jpg`` resource forks, staging folders)."""
    return (p for p in folder.iterdir() if not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted((p for p in _visible(folder) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=_natural_key)


def _safe_name(text: str) -> str:
    """A folder-safe video name: runs of other characters become '_', and it never starts with a dot."""
    name = _UNSAFE.sub("_", text).strip("_") or "video"
    return "_" + name[1:] if name.startswith(".") else name


def _frame_folder(folder: Path) -> VideoInput | None:
    """``folder`` as footage if it holds frames itself or in ``img1/`` (a MOT sequence without ground truth)."""
    for frames_dir in (folder, folder / MOT_IMAGE_DIR):
        if frames_dir.is_dir():
            images = _images_in(frames_dir)
            if images:
                name = folder.parent.name if folder.name == MOT_IMAGE_DIR else folder.name
                return VideoInput(_safe_name(name), folder, tuple(images))
    return None


def _is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _inputs_at(path: Path, explicit: bool) -> list[VideoInput]:
    """The footage at one path: a video file, a frame folder, or a folder of videos and frame folders."""
    if path.is_file():
        if _is_video_file(path):
            return [VideoInput(_safe_name(path.stem), path)]
        if explicit:
            raise DatasetFormatError(f"--videos {path}: not a video file (suffix {path.suffix or 'none'!r}); give "
                                     f"files ending in {', '.join(VIDEO_SUFFIXES)}, or folders of frames")
        return []
    if not path.is_dir():
        return []
    folder = _frame_folder(path)
    if folder is not None:
        return [folder]
    found = []
    for child in sorted(_visible(path), key=_natural_key):
        if _is_video_file(child):
            found.append(VideoInput(_safe_name(child.stem), child))
        elif child.is_dir() and (inner := _frame_folder(child)) is not None:
            found.append(inner)
    if not found and explicit:
        raise DatasetNotFoundError(f"--videos {path}: holds no video file ({', '.join(VIDEO_SUFFIXES)}) and no "
                                   "frames; give video files, folders of videos, or folders of frames")
    return found


def _expand(spec: str) -> list[tuple[Path, bool]]:
    """(path, given explicitly) for one --videos value; patterns expand, in sorted order."""
    if _PATTERN.search(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise DatasetNotFoundError(f"--videos {spec}: no file matches this pattern; check the path")
        return [(Path(match), False) for match in matches]
    if not Path(spec).exists():
        raise DatasetNotFoundError(f"--videos {spec}: no such file or folder; give video files, folders of videos, "
                                   "or folders of frames")
    return [(Path(spec), True)]


def collect_videos(specs: Sequence[str | os.PathLike[str]]) -> list[VideoInput]:
    """Every piece of footage named by ``specs`` (files, patterns, folders), each once, with unique names."""
    inputs: list[VideoInput] = []
    seen: set[Path] = set()
    for spec in specs:
        for path, explicit in _expand(str(spec)):
            for video in _inputs_at(path, explicit):
                if video.path.resolve() not in seen:
                    seen.add(video.path.resolve())
                    inputs.append(video)
    if not inputs:
        raise DatasetNotFoundError(f"--videos {' '.join(map(str, specs))}: no video file or folder of frames found")
    by_name: dict[str, Path] = {}
    for video in inputs:
        other = by_name.setdefault(video.name, video.path)
        if other != video.path:
            raise DatasetFormatError(f"--videos: {other} and {video.path} are both named {video.name!r}; rename one "
                                     "(names become folder names and identity prefixes)")
    return inputs


# ------------------------------------------------------------------------------------------------- decoding


def _open_capture(path: Path):
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"{path}: cannot be opened as a video; the file is damaged, truncated or not a video: "
                             "re-download or re-encode it")
    return capture


def _truncation_tolerance(declared: int) -> int:
    """Frames a header may promise beyond what decodes without the file being damaged (estimated counts)."""
    return 1 + declared // 100


def _count_frames(capture) -> int:
    """Frames left in ``capture``, decoded without colour conversion."""
    count = 0
    while capture.grab():
        count += 1
    return count


def _last_frame_present(capture, declared: int) -> bool:
    """Whether the frame the header promises last decodes; a seek decodes only from the keyframe before it."""
    import cv2

    return capture.set(cv2.CAP_PROP_POS_FRAMES, declared - 1) and capture.grab()


def _probe_file(path: Path) -> VideoInfo:
    """Rate and length from the header, checked by decoding its last frame (or every frame where it fails)."""
    import cv2

    capture = _open_capture(path)
    try:
        ok, first = capture.read()
        if not ok:
            raise VideoReadError(f"{path}: its first frame cannot be decoded; re-download or re-encode the video")
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        rate = float(capture.get(cv2.CAP_PROP_FPS))
        n_frames = declared if declared > 0 and _last_frame_present(capture, declared) else None
        if n_frames is None:
            capture.release()
            capture = _open_capture(path)
            n_frames = _count_frames(capture)
    finally:
        capture.release()
    if declared > 0 and n_frames + _truncation_tolerance(declared) <= declared:
        raise VideoReadError(f"{path}: truncated: {n_frames} of the {declared} frames its header declares decode; "
                             "re-download or re-encode the file")
    height, width = first.shape[:2]  # upright: OpenCV applies the display rotation of phone footage
    return VideoInfo(frame_rate=rate if rate > 0 else DEFAULT_FRAME_RATE, width=width, height=height,
                     n_frames=n_frames)


def decode_video_file(path: Path, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Decode in order, converting only the wanted frames to BGR; stops after the last wanted one."""
    wanted_set = set(wanted.tolist())
    last = int(wanted.max())
    capture = _open_capture(path)
    try:
        for number in range(1, last + 1):
            if not capture.grab():
                raise VideoReadError(f"{path}: ends after frame {number - 1}, before frame {last}; the file is "
                                     "truncated or damaged: re-download or re-encode it")
            if number in wanted_set:
                ok, image = capture.retrieve()
                if not ok:
                    raise VideoReadError(f"{path}: frame {number} cannot be decoded; re-encode the video")
                yield number, image
    finally:
        capture.release()


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # the crop stage reads frames with the same call
    if image is None:
        raise VideoReadError(f"{path}: cannot be decoded as an image; replace or remove the frame")
    return image


def probe(video: VideoInput, frame_rate: float = DEFAULT_FRAME_RATE) -> VideoInfo:
    """Geometry and length of ``video``; ``frame_rate`` applies to folders of frames, which carry none."""
    if video.is_frame_folder:
        height, width = _read_image(video.frame_files[0]).shape[:2]
        return VideoInfo(frame_rate=frame_rate, width=width, height=height, n_frames=len(video.frame_files))
    return _probe_file(video.path)


def read_frames(video: VideoInput, frame_numbers: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame number, BGR image (H, W, 3) uint8) for increasing 1-based ``frame_numbers``."""
    if len(frame_numbers) == 0:
        return
    if video.is_frame_folder:
        for number in frame_numbers.tolist():
            yield number, _read_image(video.frame_files[number - 1])
        return
    yield from decode_video_file(video.path, frame_numbers)
