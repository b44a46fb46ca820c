"""Person detections for raw footage: an ultralytics YOLO detector, or precomputed MOTChallenge ``det.txt`` files.

Both give, per frame, an (N, 6) float32 array ``x1, y1, x2, y2, conf, cls`` in source pixels with conf in [0, 1]:
the row format boxmot's trackers take.

Weights are named (``yolo11n.pt``: ultralytics downloads it when online) or given by path. They are resolved
here rather than inside ultralytics so that, offline, a missing file is one line saying how to supply it instead
of a failed download. A ``.yaml`` architecture (``yolo11n.yaml``) builds a randomly initialised detector: it finds
nobody, but runs at the real model's speed, which is what tests and timing need.

ultralytics sets torch's CPU thread count (to cores - 1) when it picks a device, and turns OpenCV's threading
off when imported; both are process-wide, so every call into it restores them afterwards for the rest of the
build (crops, ReID, captioning).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

DEFAULT_DETECTOR = "yolo11n.pt"
PERSON_CLASS = 0  # COCO's "person", the class of every ultralytics detection model trained on COCO
ARCHITECTURE_SUFFIXES = (".yaml", ".yml")
DET_FIELDS_MIN = 6
DET_FORMAT = "frame,id,left,top,width,height[,conf[,x,y,z]]"


@dataclass(frozen=True)
class DetectorConfig:
    """The YOLO detector: weights by name or path, kept classes, score threshold, input size, frames per batch."""

    weights: str = DEFAULT_DETECTOR
    classes: tuple[int, ...] = (PERSON_CLASS,)
    conf: float = 0.25
    imgsz: int = 640
    batch: int = 8
    device: str | None = None  # None: ultralytics picks (a GPU when there is one)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        checks = (
            (bool(self.weights.strip()), "--detector", self.weights, "give a weights name (yolo11n.pt) or a path"),
            (len(self.classes) > 0 and min(self.classes) >= 0, "--classes", ",".join(map(str, self.classes)),
             "give class ids >= 0, e.g. 0 (person)"),
            (0.0 <= self.conf <= 1.0, "--conf", self.conf, "use a score in [0, 1]"),
            (self.imgsz >= 32 and self.imgsz % 32 == 0, "--imgsz", self.imgsz, "use a multiple of 32, e.g. 640"),
            (self.batch >= 1, "--batch", self.batch, "use 1 or more frames"),
        )
        for ok, option, value, fix in checks:
            if not ok:
                raise ConfigError(f"{option} {value!r} is invalid; {fix}")


# ----------------------------------------------------------------------------------------------- threads


@contextmanager
def preserved_threads() -> Iterator[None]:
    """Undo the thread-count changes ultralytics makes to torch and OpenCV inside the block."""
    import cv2
    import torch

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)


# ----------------------------------------------------------------------------------------------- weights


def resolve_weights(weights: str) -> str:
    """What to hand to ``YOLO()``: a local file, an architecture file, or a name ultralytics may download."""
    with preserved_threads():  # importing ultralytics turns OpenCV's threading off
        from ultralytics.utils import SETTINGS, is_online

    path = Path(weights).expanduser()
    if path.is_file():
        return str(path)
    if path.suffix.lower() in ARCHITECTURE_SUFFIXES:
        return weights  # a model definition shipped with ultralytics (yolo11n.yaml): random weights, no download
    if path.parent != Path("."):
        raise ConfigError(f"--detector {weights}: no such file; give the path of a YOLO weights file (.pt) or a "
                          "name such as yolo11n.pt")
    stored = Path(SETTINGS["weights_dir"]) / path.name
    if stored.is_file():
        return str(stored)
    if not is_online():  # also False when YOLO_OFFLINE=1
        raise ConfigError(f"--detector {weights}: the weights are not on this machine and ultralytics cannot download "
                          f"them offline; fetch {path.name} where there is network and pass --detector "
                          f"/path/to/{path.name}, or copy it into {stored.parent}")
    return weights


def load_yolo(config: DetectorConfig):
    """An ultralytics YOLO model for ``config`` (downloading named weights when online)."""
    with preserved_threads():
        from ultralytics import YOLO

        source = resolve_weights(config.weights)
        try:
            return YOLO(source)
        except Exception as exc:  # ultralytics raises bare exceptions for bad files and failed downloads
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise ConfigError(f"--detector {config.weights}: cannot be loaded ({first_line}); give a YOLO weights "
                              "file (.pt) by path, or a name ultralytics knows such as yolo11n.pt") from None


class YoloDetector:
    """Batched YOLO inference on BGR frames; keeps only ``config.classes``."""

    needs_images = True

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.model = load_yolo(config)

    def detect(self, frames: Sequence[int], images: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """One (N, 6) float32 array per image; batches of ``config.batch`` images per forward pass."""
        found: list[np.ndarray] = []
        for start in range(0, len(images), self.config.batch):
            batch = list(images[start:start + self.config.batch])
            with preserved_threads():
                results = self.model.predict(batch, classes=list(self.config.classes), conf=self.config.conf,
                                             imgsz=self.config.imgsz, device=self.config.device, verbose=False)
            for result in results:
                boxes = result.boxes
                rows = np.concatenate([boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy()[:, None],
                                       boxes.cls.cpu().numpy()[:, None]], axis=1)  # (N, 4 + 1 + 1)
                found.append(rows.astype(np.float32, copy=False))
        return found


# ---------------------------------------------------------------------------------- precomputed detections


def _det_error(path: Path, line_no: int, problem: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}:{line_no}: {problem}; fix or remove the line (format: {DET_FORMAT})")


def _parse_det_line(path: Path, line_no: int, line: str) -> tuple[int, float, float, float, float, float]:
    fields = line.strip().split(",")
    if len(fields) < DET_FIELDS_MIN:
        raise _det_error(path, line_no, f"expected at least {DET_FIELDS_MIN} comma-separated fields, "
                         f"found {len(fields)}")
    try:
        values = [float(text) for text in fields[:7]]
    except ValueError:
        raise _det_error(path, line_no, "a field is not a number") from None
    frame, _, left, top, width, height = values[:6]
    conf = values[6] if len(values) > 6 else 1.0
    if not all(np.isfinite(values)):
        raise _det_error(path, line_no, "a field is not finite")
    if not frame.is_integer() or frame < 1:
        raise _det_error(path, line_no, f"frame {fields[0].strip()!r} is not a frame number (1, 2, ...)")
    if width <= 0 or height <= 0:
        raise _det_error(path, line_no, f"box size {width:g}x{height:g} is not positive")
    if not 0.0 <= conf <= 1.0:
        raise _det_error(path, line_no, f"score {conf:g} is outside [0, 1], which the trackers need; rescale the "
                         "scores to [0, 1]")
    return int(frame), left, top, width, height, conf


def read_detections(path: str | os.PathLike[str]) -> dict[int, np.ndarray]:
    """A MOTChallenge ``det.txt`` as frame -> (N, 6) float32 ``x1, y1, x2, y2, conf, cls`` (cls 0: person)."""
    path = Path(path)
    rows: dict[int, list[tuple[float, ...]]] = {}
    with path.open() as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                frame, left, top, width, height, conf = _parse_det_line(path, line_no, line)
                rows.setdefault(frame, []).append((left, top, left + width, top + height, conf, PERSON_CLASS))
    return {frame: np.array(boxes, dtype=np.float32).reshape(-1, 6) for frame, boxes in rows.items()}


class DetectionFile:
    """Precomputed detections of one video: no images needed."""

    needs_images = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.by_frame = read_detections(self.path)

    def detect(self, frames: Sequence[int], images: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        empty = np.empty((0, 6), dtype=np.float32)
        return [self.by_frame.get(frame, empty) for frame in frames]

    def last_frame(self) -> int:
        return max(self.by_frame, default=0)


def detection_files(source: str | os.PathLike[str], videos: Sequence[str]) -> dict[str, Path]:
    """The det.txt of each named video: ``source`` is one file (one video) or a folder of per-video files.

    In a folder, a video's detections are ``<video>/det/det.txt`` (the MOTChallenge layout) or ``<video>.txt``.
    """
    source = Path(source)
    if source.is_file():
        if len(videos) != 1:
            raise ConfigError(f"--detections {source} is one file but {len(videos)} videos are given; give a folder "
                              "holding <video>/det/det.txt or <video>.txt for each video")
        return {videos[0]: source}
    if not source.is_dir():
        raise DatasetNotFoundError(f"--detections {source}: no such file or folder; give a det.txt or a folder of them")
    found = {}
    for video in videos:
        candidates = (source / video / "det" / "det.txt", source / f"{video}.txt")
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise DatasetNotFoundError(f"--detections {source}: no detections for video {video}; add "
                                       f"{candidates[0]} or {candidates[1]}")
        found[video] = path
    return found
