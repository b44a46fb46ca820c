"""The hot path of a build: decode each frame once, crop every box of it, resize, JPEG-encode, write.

OpenCV does the decoding, resizing and encoding: on 720p frames with 6-10 crops of 256x128 it measured 1.3-1.7x
faster than Pillow (Pillow's upscaling resize costs as much as the decode; ``benchmarks/bench_build.py`` reports
both). ``Image.draft``'s idea is kept where it pays: a frame whose crops all shrink by 2x or more is decoded at
reduced scale in the DCT (``IMREAD_REDUCED_COLOR_*``), which roughly halves the decoding cost of 1080p footage
with large people; crops that grow (most sports footage) need the full-resolution decode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builders.video import decode_video_file
from vreid_bench.errors import DatasetFormatError

DECODE_SCALES = (8, 4, 2)


@dataclass(frozen=True)
class FrameCrops:
    """The crops of one frame: ``regions`` (k, 4) float x0, y0, x1, y1 in source pixels, one output path each."""

    frame: int
    image: Path | None  # None when the frames come from a video file
    regions: np.ndarray
    outputs: tuple[str, ...]  # relative to the chunk's output folder


@dataclass(frozen=True)
class CropChunk:
    """A run of frames of one video, cropped by one worker into ``out_dir``."""

    video: str
    frames: tuple[FrameCrops, ...]
    out_dir: Path
    crop_size: tuple[int, int]  # (height, width)
    jpeg_quality: int
    video_file: Path | None = None

    @property
    def n_crops(self) -> int:
        return sum(len(f.outputs) for f in self.frames)


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk wrote: (relative path, sha256 of the bytes) per crop."""

    video: str
    crops: tuple[tuple[str, str], ...]


def crop_regions(boxes: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """(n, 4) left, top, w, h -> (n, 4) x0, y0, x1, y1 grown by ``margin`` of the box size, clipped to the frame."""
    grow = boxes[:, 2:] * margin  # (n, 2)
    x0y0 = boxes[:, :2] - grow
    x1y1 = boxes[:, :2] + boxes[:, 2:] + grow
    regions = np.concatenate([x0y0, x1y1], axis=1)
    return np.clip(regions, 0, [width, height, width, height])


def decode_scale(regions: np.ndarray, crop_size: tuple[int, int]) -> int:
    """Largest DCT reduction (1, 2, 4, 8) after which every region is still at least the crop size."""
    smallest_h = float((regions[:, 3] - regions[:, 1]).min())
    smallest_w = float((regions[:, 2] - regions[:, 0]).min())
    for scale in DECODE_SCALES:
        if smallest_h / scale >= crop_size[0] and smallest_w / scale >= crop_size[1]:
            return scale
    return 1


def _read_image(path: Path, scale: int) -> np.ndarray:
    import cv2

    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetFormatError(f"{path}: cannot be read ({exc.strerror}); restore the frame file") from None
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        # OpenCV decodes a cut-off JPEG into a half-grey image with only a warning: refuse it here
        raise DatasetFormatError(f"{path}: truncated JPEG (no end-of-image marker); replace the frame file")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags[scale])
    if image is None:
        raise DatasetFormatError(f"{path}: cannot be decoded as an image; replace the frame file")
    return image


def encode_crops(image: np.ndarray, regions: np.ndarray, scale: int, crop_size: tuple[int, int],
                 quality: int) -> list[bytes]:
    """Crop (k, 4) source-pixel regions from a BGR image decoded at 1/``scale``; JPEG bytes per crop."""
    import cv2

    height, width = image.shape[:2]
    scaled = regions / scale
    x0 = np.clip(np.floor(scaled[:, 0]), 0, width - 1).astype(int)
    y0 = np.clip(np.floor(scaled[:, 1]), 0, height - 1).astype(int)
    x1 = np.maximum(np.clip(np.ceil(scaled[:, 2]), 0, width).astype(int), x0 + 1)
    y1 = np.maximum(np.clip(np.ceil(scaled[:, 3]), 0, height).astype(int), y0 + 1)
    out_h, out_w = crop_size
    encoded = []
    for a, b, c, d in zip(x0, y0, x1, y1):
        patch = image[b:d, a:c]  # (h, w, 3) view
        shrink = (d - b) >= out_h and (c - a) >= out_w
        patch = cv2.resize(patch, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        ok, data = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV failed to encode a JPEG crop")
        encoded.append(data.tobytes())
    return encoded


def _frames_with_images(chunk: CropChunk):
    """Yield (FrameCrops, image, scale) in the chunk's order, each frame decoded once."""
    if chunk.video_file is not None:
        by_frame = {f.frame: f for f in chunk.frames}
        for frame, image in decode_video_file(chunk.video_file, np.array(sorted(by_frame))):
            yield by_frame[frame], image, 1
        return
    for item in chunk.frames:
        scale = decode_scale(item.regions, chunk.crop_size)
        yield item, _read_image(item.image, scale), scale


def run_chunk(chunk: CropChunk) -> ChunkResult:
    """Write the chunk's crops under ``chunk.out_dir`` and return their content hashes."""
    made: set[Path] = set()
    written = []
    for item, image, scale in _frames_with_images(chunk):
        for rel, data in zip(item.outputs, encode_crops(image, item.regions, scale, chunk.crop_size,
                                                        chunk.jpeg_quality)):
            path = chunk.out_dir / rel
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(data)
            written.append((rel, hashlib.sha256(data).hexdigest()))
    return ChunkResult(video=chunk.video, crops=tuple(written))


def limit_threads() -> None:
    """One OpenCV thread: in the parent before a forked pool, or in each Ray task, so workers share the cores."""
    import cv2

    cv2.setNumThreads(1)
