"""Tracklet features: test clips through the model, clip features averaged per tracklet.

The clips are cut as the protocol's ``test_sampling`` says, at the model's own input (its recipe's size, clip
length, resize filter and normalisation).

Clips of all tracklets are flattened into fixed-size batches (``EvalClips``), so a long tracklet never makes one
huge batch; each clip feature is added to its tracklet's row with ``index_add_`` and divided by the clip count.
Under DDP each process takes every ``world_size``-th clip and the sums are added over processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ContextManager

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import DataLoader, Subset

from vreid_bench.clips import EvalClips, normalize_clips
from vreid_bench.data import Tracklet
from vreid_bench.engine.distributed import DistContext
from vreid_bench.recipe import InputSpec


@dataclass(frozen=True)
class Features:
    features: torch.Tensor  # (num_tracklets, D) float32 on CPU
    num_clips: int  # clips through the model, all processes together
    forward_s: float  # seconds in the model's forward passes (the slowest process), decoding excluded

    @property
    def clips_per_s(self) -> float:
        return self.num_clips / self.forward_s if self.forward_s > 0 else float("nan")


def progress_bar(enabled: bool = True) -> Progress:
    """The bar every long step of a run shows (a no-op when disabled, e.g. on ranks other than 0)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    disable=not enabled)


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager[object]:
    """Mixed precision on CUDA when a dtype is given; CPU always runs in float32."""
    if dtype is None or device.type != "cuda":
        return nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def _loader(dataset: torch.utils.data.Dataset, batch_size: int, workers: int) -> DataLoader:
    # A generator of its own, so that extraction never draws from (and shifts) the training random stream.
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(0))


def extract_features(model: nn.Module, tracklets: Sequence[Tracklet], spec: InputSpec, sampling: str,
                     device: torch.device, ctx: DistContext, batch_size: int = 32, workers: int = 0,
                     amp_dtype: torch.dtype | None = None, progress: Progress | None = None) -> Features:
    """Mean clip feature of every tracklet under ``sampling`` (a protocol's ``test_sampling``), model in eval mode."""
    clips = EvalClips(tracklets, spec, sampling)
    share = Subset(clips, range(ctx.rank, len(clips), ctx.world_size))
    loader = _loader(share, batch_size, workers)
    dim = int(model.feature_dim)
    sums = torch.zeros(len(tracklets), dim, dtype=torch.float32, device=device)
    counts = torch.zeros(len(tracklets), dtype=torch.float32, device=device)
    forward_s = 0.0
    task = progress.add_task("features", total=len(loader), info="") if progress is not None else None
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for batch, owners, camids in loader:
            inputs = normalize_clips(batch, spec, device)  # (B, T, 3, H, W) uint8 -> normalised float
            owners = owners.to(device)
            start = time.perf_counter()
            with autocast(device, amp_dtype):
                feats = model(inputs, camids.to(device))  # (B, D)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            forward_s += time.perf_counter() - start
            sums.index_add_(0, owners, feats.float())
            counts.index_add_(0, owners, torch.ones_like(owners, dtype=torch.float32))
            if task is not None:
                progress.advance(task)
    model.train(was_training)
    ctx.sum_(sums)
    ctx.sum_(counts)
    return Features(features=(sums / counts[:, None]).cpu(), num_clips=len(clips),
                    forward_s=ctx.max(forward_s))


def iter_tracklet_clips(tracklets: Sequence[Tracklet], labels: Sequence[int], spec: InputSpec,
                        device: torch.device, batch_size: int, workers: int = 0,
                        indices: Sequence[int] | None = None
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Every training tracklet's dense clips, no augmentation: what a model's ``prepare`` builds memories from
    (TF-CLIP builds its CLIP-Memory from dense clips). The evaluation protocol has no say in training.
    ``indices``: only these tracklets (a DDP process's share); the yielded tracklet index is into ``tracklets``.

    Yields ``(clips (B, T, 3, H, W) normalised float on device, labels (B,), camids (B,), tracklet index (B,))``.
    """
    label_of = torch.as_tensor(list(labels), dtype=torch.long)
    chosen = list(range(len(tracklets))) if indices is None else list(indices)
    global_index = torch.as_tensor(chosen, dtype=torch.long)
    share = [tracklets[i] for i in chosen]
    for batch, owners, camids in _loader(EvalClips(share, spec, "dense"), batch_size, workers):
        owners = global_index[owners]  # back to indices into ``tracklets``
        yield (normalize_clips(batch, spec, device), label_of[owners].to(device), camids.to(device),
               owners.to(device))
