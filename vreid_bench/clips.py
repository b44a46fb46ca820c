"""Clips from tracklets: decoding, the recipe's augmentation, and the torch Datasets of training and evaluation.

Datasets yield ``uint8`` clips ``(T, 3, H, W)``: a quarter of the bytes of float clips to move between processes and
to the GPU; :func:`normalize_clips` turns a batch into the model's input on its device. Geometric augmentation
(translation, flip, pad + crop) is drawn once per clip or for each frame, as the recipe says; random erasing is
drawn for each frame. Erasing with noise happens after normalisation (:func:`erase_with_noise`), where timm draws
its noise, so a training item also carries its erasing boxes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vreid_bench.data import Tracklet
from vreid_bench.errors import DatasetFormatError
from vreid_bench.recipe import ErasingSpec, InputSpec, Recipe, SamplerSpec
from vreid_bench.sampling import (
    consecutive_random_indices,
    dense_clip_indices,
    evenly_spaced_indices,
    restricted_first_indices,
    restricted_random_indices,
    restricted_random_padded_indices,
    sliding_windows,
)

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def load_frame(path: str, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """Decode one image to ``(H, W, 3)`` uint8 RGB at ``height`` × ``width``; a broken file is one clear error."""
    try:
        with Image.open(path) as img:
            if img.format == "JPEG" and (img.width > 2 * width or img.height > 2 * height):
                img.draft("RGB", (2 * width, 2 * height))  # DCT-domain downscale: much cheaper decode of big crops
            if img.mode != "RGB":
                img = img.convert("RGB")
            if img.size != (width, height):
                img = img.resize((width, height), FILTERS[interpolation])
            return np.asarray(img)
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for missing, truncated or corrupt images
        raise DatasetFormatError(f"cannot read frame {path} ({type(exc).__name__}: {exc}); replace or remove the "
                                 "file (`vreid check DATASET` lists every unreadable frame)") from None


def load_clip(frames: Sequence[str], indices: np.ndarray, height: int, width: int,
              interpolation: str = "bilinear") -> np.ndarray:
    """``(T, H, W, 3)`` uint8; a frame repeated in ``indices`` is decoded once."""
    unique, inverse = np.unique(indices, return_inverse=True)
    decoded = np.stack([load_frame(frames[i], height, width, interpolation) for i in unique])
    return decoded[inverse.reshape(-1)]


def normalize_clips(clips: torch.Tensor, spec: InputSpec, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(..., 3, H, W)`` uint8 → normalised float on ``device``."""
    clips = clips.to(device, non_blocking=True)
    mean = torch.tensor(spec.mean, device=clips.device, dtype=dtype).view(3, 1, 1) * 255
    std = torch.tensor(spec.std, device=clips.device, dtype=dtype).view(3, 1, 1) * 255
    return (clips.to(dtype) - mean) / std


def erase_with_noise(inputs: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Fill each frame's box ``[top, left, height, width]`` (height 0: none) of normalised ``inputs``
    ``(B, T, 3, H, W)`` with standard normal noise, in place (timm's ``RandomErasing(mode='pixel')``)."""
    boxes = boxes.to(inputs.device)
    height, width = inputs.shape[-2:]
    rows = torch.arange(height, device=inputs.device).view(1, 1, height, 1)
    cols = torch.arange(width, device=inputs.device).view(1, 1, 1, width)
    top, left, h, w = (boxes[..., i].view(*boxes.shape[:2], 1, 1) for i in range(4))
    mask = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)  # (B, T, H, W)
    noise = torch.randn_like(inputs)
    return torch.where(mask.unsqueeze(2), noise, inputs, out=inputs)


def _to_tensor(clip: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2)))  # (T, H, W, 3) -> (T, 3, H, W)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * torch.rand(()).item()


def erasing_box(height: int, width: int, spec: ErasingSpec) -> tuple[int, int, int, int] | None:
    """One random-erasing box ``(top, left, h, w)`` in a ``height`` × ``width`` frame, or None after
    ``spec.attempts`` tries that did not fit."""
    for _ in range(spec.attempts):
        target = _uniform(*spec.area) * height * width
        if spec.aspect_sampling == "log_uniform":
            aspect = math.exp(_uniform(math.log(spec.aspect[0]), math.log(spec.aspect[1])))
        else:
            aspect = _uniform(*spec.aspect)
        h = int(round(math.sqrt(target * aspect)))
        w = int(round(math.sqrt(target / aspect)))
        if 0 < h < height and 0 < w < width:
            top = int(torch.randint(0, height - h + 1, (1,)))
            left = int(torch.randint(0, width - w + 1, (1,)))
            return top, left, h, w
    return None


def mean_colour(spec: InputSpec) -> tuple[int, int, int]:
    """The normalisation mean as a pixel value: what "erase to the mean" paints (about zero once normalised)."""
    return tuple(int(round(255 * m)) for m in spec.mean)  # type: ignore[return-value]


def training_items(tracklets: Sequence[Tracklet], labels: Sequence[int], sampler: SamplerSpec,
                   seq_len: int) -> tuple[list[Tracklet], list[int]]:
    """The training samples and their labels: the tracklets themselves, or with ``sliding_window`` sampling every
    window of every tracklet as a tracklet of its own."""
    if sampler.frames != "sliding_window":
        return list(tracklets), list(labels)
    items, item_labels = [], []
    for tracklet, label in zip(tracklets, labels):
        for start, stop in sliding_windows(len(tracklet), seq_len, sampler.window_stride):
            items.append(Tracklet(frames=tracklet.frames[start:stop], pid=tracklet.pid, camid=tracklet.camid,
                                  video=tracklet.video, caption=tracklet.caption, tracklet_id=tracklet.tracklet_id))
            item_labels.append(label)
    return items, item_labels


def train_indices(n: int, seq_len: int, frames: str) -> np.ndarray:
    """Frame indices of one training clip under the recipe's ``sampler.frames``."""
    if frames == "restricted_random":
        return restricted_random_indices(n, seq_len)
    if frames == "restricted_random_padded":
        return restricted_random_padded_indices(n, seq_len)
    if frames == "consecutive_random":
        return consecutive_random_indices(n, seq_len)
    if frames == "evenly":
        return evenly_spaced_indices(n, seq_len)
    # sliding_window: the window's frames in order, the last repeated to fill the clip
    return np.minimum(np.arange(seq_len, dtype=np.int64), n - 1)


class TrainClips(Dataset):
    """Training clips: one clip per item per visit, sampled and augmented afresh each time.

    Yields ``(clip uint8 (T, 3, H, W), label, camid, index, noise boxes (T, 4))``; the boxes are where
    :func:`erase_with_noise` fills noise (all zero unless the recipe erases with noise).
    """

    def __init__(self, tracklets: Sequence[Tracklet], labels: Sequence[int], recipe: Recipe) -> None:
        if len(tracklets) != len(labels):
            raise ValueError(f"{len(tracklets)} tracklets but {len(labels)} labels")
        self.tracklets, self.labels = list(tracklets), list(labels)
        self.input, self.augment, self.sampler = recipe.input, recipe.augment, recipe.sampler

    def __len__(self) -> int:
        return len(self.tracklets)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int, int, int, torch.Tensor]:
        """``item``: a tracklet index (drawing from torch's generator), or ``(index, seed)`` from a
        :class:`~vreid_bench.sampling.SeededSampler` (drawing from ``seed`` alone, the process's generator left as
        it was)."""
        if isinstance(item, tuple):
            index, seed = item
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self._sample(index)
        return self._sample(item)

    def _sample(self, index: int) -> tuple[torch.Tensor, int, int, int, torch.Tensor]:
        spec, tracklet = self.input, self.tracklets[index]
        indices = train_indices(len(tracklet.frames), spec.seq_len, self.sampler.frames)
        frames = self._geometry(tracklet.frames, indices)  # (T, 3, H, W) uint8
        boxes = self._erase(frames)
        return frames, int(self.labels[index]), tracklet.camid, index, boxes

    def _geometry(self, paths: Sequence[str], indices: np.ndarray) -> torch.Tensor:
        """Decode, then translate / flip / pad + crop, drawn once per clip or for each frame."""
        if self.augment.per == "clip":
            return self._transform(paths, indices)
        return torch.cat([self._transform(paths, indices[t:t + 1]) for t in range(len(indices))])

    def _transform(self, paths: Sequence[str], indices: np.ndarray) -> torch.Tensor:
        aug, spec = self.augment, self.input
        height, width = spec.height, spec.width
        translate = aug.translate_p > 0 and torch.rand(()).item() < aug.translate_p
        if translate:
            big_h, big_w = int(round(height * aug.translate_scale)), int(round(width * aug.translate_scale))
            clip = _to_tensor(load_clip(paths, indices, big_h, big_w, spec.train_resize))
            top = int(round(_uniform(0, big_h - height)))
            left = int(round(_uniform(0, big_w - width)))
            clip = clip[..., top:top + height, left:left + width]
        else:
            clip = _to_tensor(load_clip(paths, indices, height, width, spec.train_resize))
        if torch.rand(()).item() < aug.flip_p:
            clip = clip.flip(-1)
        if aug.pad:
            padded = torch.nn.functional.pad(clip, (aug.pad, aug.pad, aug.pad, aug.pad))  # zeros: black, as T.Pad
            top = int(torch.randint(0, 2 * aug.pad + 1, (1,)))
            left = int(torch.randint(0, 2 * aug.pad + 1, (1,)))
            clip = padded[..., top:top + height, left:left + width]
        return clip.contiguous()

    def _erase(self, clip: torch.Tensor) -> torch.Tensor:
        """Per-frame random erasing in place (colour fills); returns the noise boxes for the device."""
        spec = self.augment.erasing
        boxes = torch.zeros(len(clip), 4, dtype=torch.int64)
        if spec.p <= 0:
            return boxes
        _, _, height, width = clip.shape
        for t, frame in enumerate(clip):
            if torch.rand(()).item() >= spec.p:
                continue
            box = erasing_box(height, width, spec)
            if box is None:
                continue
            top, left, h, w = box
            if spec.fill == "noise":
                boxes[t] = torch.tensor(box)
                continue
            colour = mean_colour(self.input) if spec.fill == "mean" else torch.randint(0, 256, (3,)).tolist()
            frame[:, top:top + h, left:left + w] = torch.tensor(colour, dtype=clip.dtype).view(3, 1, 1)
        return boxes


def eval_clip_indices(n: int, seq_len: int, sampling: str) -> np.ndarray:
    """``(num_clips, seq_len)`` frame indices of one tracklet's test clips under a protocol's ``test_sampling``."""
    if sampling == "dense":
        return dense_clip_indices(n, seq_len)
    if sampling == "restricted_random":
        return restricted_first_indices(n, seq_len)[None]
    return evenly_spaced_indices(n, seq_len)[None]


class EvalClips(Dataset):
    """Evaluation clips, flattened over tracklets so that batches have a fixed size.

    Dense sampling gives every tracklet all its consecutive clips; features are averaged per tracklet by the
    caller using the yielded tracklet index. Yields ``(clip uint8 (T, 3, H, W), tracklet index, camid)``.
    """

    def __init__(self, tracklets: Sequence[Tracklet], spec: InputSpec, sampling: str = "dense") -> None:
        self.tracklets, self.spec = list(tracklets), spec
        owners, clips = [], []
        for owner, tracklet in enumerate(self.tracklets):
            for indices in eval_clip_indices(len(tracklet.frames), spec.seq_len, sampling):
                owners.append(owner)
                clips.append(indices)
        self.owner = np.asarray(owners, dtype=np.int64)
        self.indices = np.stack(clips) if clips else np.zeros((0, spec.seq_len), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        owner = int(self.owner[index])
        tracklet = self.tracklets[owner]
        spec = self.spec
        clip = load_clip(tracklet.frames, self.indices[index], spec.height, spec.width, spec.test_resize)
        return _to_tensor(clip), owner, tracklet.camid
