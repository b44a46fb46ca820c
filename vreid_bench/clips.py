"""Clips from tracklets: decoding, sequence-consistent augmentation, and the torch Datasets of the protocol.

Datasets yield ``uint8`` clips ``(T, 3, H, W)``: a quarter of the bytes of float clips to move between
processes and to the GPU; :func:`normalize_clips` turns a batch into the model's input on its device.
Augmentation is sequence-consistent: one flip decision per clip, random erasing drawn per frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vreid_bench.data import Tracklet
from vreid_bench.protocol import Protocol
from vreid_bench.sampling import (
    dense_clip_indices,
    evenly_spaced_indices,
    restricted_first_indices,
    restricted_random_indices,
)


def load_frame(path: str, height: int, width: int) -> np.ndarray:
    """Decode one image to ``(H, W, 3)`` uint8 RGB at the protocol size."""
    with Image.open(path) as img:
        if img.format == "JPEG" and (img.width > 2 * width or img.height > 2 * height):
            img.draft("RGB", (2 * width, 2 * height))  # DCT-domain downscale: much cheaper decode of big crops
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (width, height):
            img = img.resize((width, height), Image.BILINEAR)
        return np.asarray(img)


def load_clip(frames: Sequence[str], indices: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(T, H, W, 3)`` uint8; a frame repeated in ``indices`` is decoded once."""
    unique, inverse = np.unique(indices, return_inverse=True)
    decoded = np.stack([load_frame(frames[i], height, width) for i in unique])
    return decoded[inverse]


def random_erase_(clip: torch.Tensor, p: float, generator: torch.Generator | None = None,
                  fill: Sequence[int] = (124, 116, 104), area: tuple[float, float] = (0.02, 0.4),
                  min_aspect: float = 0.3, attempts: int = 100) -> torch.Tensor:
    """Per-frame random erasing (Zhong et al., 2020) in place on ``(T, 3, H, W)`` uint8.

    The erased box takes the ImageNet mean colour, which is zero after normalisation.
    """
    _, _, height, width = clip.shape
    fill_tensor = torch.tensor(fill, dtype=clip.dtype).view(3, 1, 1)
    for frame in clip:
        if torch.rand((), generator=generator).item() >= p:
            continue
        for _ in range(attempts):
            target = (area[0] + (area[1] - area[0]) * torch.rand((), generator=generator).item()) * height * width
            log_r = math.log(min_aspect) + (-2 * math.log(min_aspect)) * torch.rand((), generator=generator).item()
            aspect = math.exp(log_r)
            h = int(round(math.sqrt(target * aspect)))
            w = int(round(math.sqrt(target / aspect)))
            if 0 < h < height and 0 < w < width:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                frame[:, top:top + h, left:left + w] = fill_tensor
                break
    return clip


def normalize_clips(clips: torch.Tensor, protocol: Protocol, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(..., 3, H, W)`` uint8 → normalised float on ``device``."""
    clips = clips.to(device, non_blocking=True)
    mean = torch.tensor(protocol.mean, device=clips.device, dtype=dtype).view(3, 1, 1) * 255
    std = torch.tensor(protocol.std, device=clips.device, dtype=dtype).view(3, 1, 1) * 255
    return (clips.to(dtype) - mean) / std


def _to_tensor(clip: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2)))  # (T, H, W, 3) -> (T, 3, H, W)


class TrainClips(Dataset):
    """Training clips: one clip per tracklet per visit, sampled and augmented afresh each time.

    Yields ``(clip uint8 (T, 3, H, W), label, camid, index)``; ``label`` is the training identity label.
    """

    def __init__(self, tracklets: Sequence[Tracklet], labels: Sequence[int], protocol: Protocol) -> None:
        if len(tracklets) != len(labels):
            raise ValueError(f"{len(tracklets)} tracklets but {len(labels)} labels")
        self.tracklets, self.labels, self.protocol = list(tracklets), list(labels), protocol

    def __len__(self) -> int:
        return len(self.tracklets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int]:
        p, tracklet = self.protocol, self.tracklets[index]
        n = len(tracklet.frames)
        if p.train_sampling == "restricted_random":
            indices = restricted_random_indices(n, p.seq_len)
        else:
            indices = evenly_spaced_indices(n, p.seq_len)
        clip = _to_tensor(load_clip(tracklet.frames, indices, p.height, p.width))
        if torch.rand(()).item() < p.flip_p:
            clip = clip.flip(-1)
        if p.erasing_p > 0:
            clip = random_erase_(clip.contiguous(), p.erasing_p)
        return clip, int(self.labels[index]), tracklet.camid, index


class EvalClips(Dataset):
    """Evaluation clips, flattened over tracklets so that batches have a fixed size.

    Dense sampling gives every tracklet all its consecutive clips; features are averaged per tracklet by the
    caller using the yielded tracklet index. Yields ``(clip uint8 (T, 3, H, W), tracklet index, camid)``.
    """

    def __init__(self, tracklets: Sequence[Tracklet], protocol: Protocol) -> None:
        self.tracklets, self.protocol = list(tracklets), protocol
        owners, clips = [], []
        for owner, tracklet in enumerate(self.tracklets):
            for indices in self._clip_indices(len(tracklet.frames)):
                owners.append(owner)
                clips.append(indices)
        self.owner = np.asarray(owners, dtype=np.int64)
        self.indices = np.stack(clips) if clips else np.zeros((0, protocol.seq_len), dtype=np.int64)

    def _clip_indices(self, n: int) -> np.ndarray:
        p = self.protocol
        if p.test_sampling == "dense":
            return dense_clip_indices(n, p.seq_len)
        if p.test_sampling == "restricted_random":
            return restricted_first_indices(n, p.seq_len)[None]
        return evenly_spaced_indices(n, p.seq_len)[None]

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        owner = int(self.owner[index])
        tracklet = self.tracklets[owner]
        clip = load_clip(tracklet.frames, self.indices[index], self.protocol.height, self.protocol.width)
        return _to_tensor(clip), owner, tracklet.camid
