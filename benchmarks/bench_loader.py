"""Clips per second from the training and evaluation Datasets through a DataLoader, on JPEG crops.

Prints one JSON object. Crops are 256×128 JPEGs (quality 95), as the builders write them; training clips follow a
model's reference recipe (``--recipe``, TF-CLIP's by default: its sampler and augmentation).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vreid_bench.clips import EvalClips, TrainClips
from vreid_bench.data import Tracklet
from vreid_bench.recipe import reference_recipe
from vreid_bench.sampling import IdentityBatchSampler


def make_tracklets(root: Path, num_tracklets: int, frames: int, seed: int = 0) -> list[Tracklet]:
    rng = np.random.default_rng(seed)
    tracklets = []
    for t in range(num_tracklets):
        folder = root / f"{t:04d}"
        folder.mkdir(parents=True)
        base = rng.integers(0, 256, (256, 128, 3), dtype=np.uint8)
        paths = []
        for f in range(frames):
            noisy = np.clip(base.astype(np.int16) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
            path = folder / f"{f:06d}.jpg"
            Image.fromarray(noisy).save(path, quality=95)
            paths.append(str(path))
        tracklets.append(Tracklet(frames=tuple(paths), pid=t // 4, camid=t % 2))
    return tracklets


def clips_per_second(loader: DataLoader, batches: int) -> float:
    """Clips per second over ``batches`` batches, epoch after epoch (a large batch makes short epochs)."""
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start, clips = time.perf_counter(), 0
    for _ in range(batches):
        try:
            clip = next(iterator)[0]
        except StopIteration:
            iterator = iter(loader)
            clip = next(iterator)[0]
        clips += clip.shape[0]
    return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracklets", type=int, default=128)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--recipe", default="tfclip", help="the model whose reference recipe the clips follow")
    args = parser.parse_args()
    torch.set_num_threads(1)
    recipe = reference_recipe(args.recipe)
    spec = recipe.input
    with tempfile.TemporaryDirectory() as tmp:
        tracklets = make_tracklets(Path(tmp), args.tracklets, args.frames)
        pids = [t.pid for t in tracklets]
        train = TrainClips(tracklets, pids, recipe)
        sampler = IdentityBatchSampler(pids, recipe.sampler.ids_per_batch, recipe.sampler.instances_per_id,
                                       epoch=recipe.sampler.epoch)
        batch = recipe.sampler.batch_size
        common = dict(num_workers=args.workers, persistent_workers=False, prefetch_factor=4)
        train_loader = DataLoader(train, batch_size=batch, sampler=sampler, drop_last=True, **common)
        eval_loader = DataLoader(EvalClips(tracklets, spec, "dense"), batch_size=batch, shuffle=False, **common)
        train_rate = clips_per_second(train_loader, args.batches)
        eval_rate = clips_per_second(eval_loader, args.batches)
    print(json.dumps({
        "benchmark": "loader",
        "recipe": f"{recipe.name} {recipe.hash()}",
        "crop": [spec.height, spec.width],
        "seq_len": spec.seq_len,
        "workers": args.workers,
        "batch": batch,
        "train_clips_per_s": round(train_rate, 1),
        "train_frames_per_s": round(train_rate * spec.seq_len, 1),
        "eval_clips_per_s": round(eval_rate, 1),
        "eval_frames_per_s": round(eval_rate * spec.seq_len, 1),
    }))


if __name__ == "__main__":
    main()
