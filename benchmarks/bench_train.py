"""Training and inference throughput near the hardware limit; prints one JSON object.

For each training model (default ``tfclip`` and ``cgclip``) and each batch shape (P identities × K tracklets,
default 4×4 and 8×8): the real training step of ``vreid run`` (the run's trainer, recipe, data loader and mixed
precision) on a temporary dataset of random JPEG crops, after warm-up steps:

- training clips/s over the timed steps, with no synchronisation added;
- the step split into data (waiting for the loader), input transfer, forward, backward and optimiser, from a
  second pass that synchronises the device at each phase boundary (which costs a little itself);
- peak GPU memory; the loader alone (clips/s with the recipe's workers, no model), which must stay at least 2×
  the training rate for data never to be the bottleneck;
- MFU = training FLOPs per clip (3 × the forward FLOPs of :func:`vreid_bench.profiling.clip_flops`, forward +
  backward) × clips/s ÷ the device's peak dense bf16 FLOP/s (:data:`PEAK_TFLOPS` by device name, or
  ``--peak-tflops``; none on a CPU unless given).

Also the inference clips/s of every model (``--inference``, default all registered ones), and with
``--processes N`` the training rate under N DDP processes (NCCL on GPUs, gloo on CPUs) next to one.
``--tiny`` is a CPU check of the whole script in seconds: tiny backbones, 64×32 crops, T=4, a few steps.
``--compile`` measures the recipe's ``compile: true`` (torch.compile) beside the default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp
from PIL import Image

from vreid_bench.io import atomic_write_json

# Peak dense bf16 tensor FLOP/s (no sparsity), from the vendors' data sheets, by a substring of the device name.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 125.0,
               "RTX 4090": 165.0, "RTX 3090": 71.0, "V100": 125.0, "T4": 65.0}
DEFAULT_MODELS = ("tfclip", "cgclip")
INFERENCE_MODELS = ("cgclip", "tfclip", "clipreid", "clip-tap", "resnet-tap")


def write_dataset(root: Path, identities: int, tracklets: int, frames: int, size: tuple[int, int],
                  seed: int = 0) -> Path:
    """A toolkit dataset of random JPEG crops: ``identities`` × ``tracklets`` (2 cameras) for training, a few for
    test."""
    rng = np.random.default_rng(seed)
    rows = []
    height, width = size
    for pid in range(identities + 2):
        split_of = "train" if pid < identities else None
        for k in range(tracklets if split_of else 2):
            tracklet_id = f"p{pid}k{k}"
            folder = Path("crops") / "v0" / str(pid) / tracklet_id
            (root / folder).mkdir(parents=True)
            base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for f in range(frames):
                noisy = np.clip(base.astype(int) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(noisy).save(root / folder / f"{f:06d}.jpg", quality=90)
            split = split_of or ("query" if k == 0 else "gallery")
            rows.append(f"{tracklet_id},v0:{pid},{k % 2},{split},v0,0,{frames - 1},{frames},{folder.as_posix()}")
    (root / "tracklets.csv").write_text("tracklet_id,pid,camid,split,video,first_frame,last_frame,n_frames,dir\n"
                                        + "\n".join(rows) + "\n")
    manifest = {"name": "bench", "format_version": 1, "kind": "sports", "default_protocol": "gallery-only",
                "pseudo_cameras": False, "identities_verified": True}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_TFLOPS.items() if key in name), None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def recipe_for_bench(model: str, args: argparse.Namespace, ids: int, instances: int, compile_: bool = False):
    from vreid_bench.recipe import recipe_for

    sets = [f"input.height={args.image_size[0]}", f"input.width={args.image_size[1]}", f"input.seq_len={args.seq_len}",
            f"sampler.ids_per_batch={ids}", f"sampler.instances_per_id={instances}", f"model.backbone={args.backbone}",
            "epochs=1000", f"compile={'true' if compile_ else 'false'}"]
    if args.amp:
        sets.append(f"amp={args.amp}")
    if model == "cgclip":
        sets.append("model.caption_source=placeholder")  # the timed step is the same; the data has no captions
    return recipe_for(model, "mars", sets=sets)


def measure_training(model_name: str, args: argparse.Namespace, dataset_dir: Path, ids: int, instances: int,
                     compile_: bool = False) -> dict[str, Any]:
    """The timed training of one model and batch shape in this process (one DDP process of several, or alone)."""
    from vreid_bench.datasets import load
    from vreid_bench.engine.config import RunOptions
    from vreid_bench.engine.distributed import distributed_context
    from vreid_bench.engine.rundir import RunLog
    from vreid_bench.engine.train import _build_trainer, amp_dtype, build_training_data, seed_everything
    from vreid_bench.models import create
    from vreid_bench.profiling import clip_flops
    from vreid_bench.protocol import get_protocol

    dataset = load(dataset_dir)
    recipe = recipe_for_bench(model_name, args, ids, instances, compile_)
    options = RunOptions(workers=args.workers, device=args.device, log_every=10_000)
    with distributed_context(args.device) as ctx, warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")  # random initialisation is the point here
        seed_everything(0)
        size = (recipe.input.height, recipe.input.width)
        model = create(model_name, num_ids=dataset.num_train_pids, num_cams=dataset.num_cams, pretrained="none",
                       image_size=size, seq_len=recipe.input.seq_len, **recipe.model).to(ctx.device)
        start = time.perf_counter()
        model.prepare(build_training_data(dataset, recipe.input, ctx.device, args.workers, {}, ctx,
                                          amp_dtype(recipe.amp, ctx.device)))
        prepare_s = time.perf_counter() - start
        trainer = _build_trainer(model, model_name, dataset, get_protocol("gallery-only"), recipe, 0, options, ctx,
                                 RunLog(Path(tmp) / "log.jsonl", tensorboard=False))
        trainer.network.train()
        batches = iter(trainer.loader)
        clips_per_step = recipe.sampler.batch_size // ctx.world_size

        def next_batch():
            nonlocal batches
            try:
                return next(batches)
            except StopIteration:
                trainer.sampler.set_epoch(trainer.sampler.epoch + 1)
                batches = iter(trainer.loader)
                return next(batches)

        for _ in range(args.warmup):
            clips, labels, camids, _, boxes = next_batch()
            trainer.train_step(clips, labels, camids, boxes, 0)
        _sync(ctx.device)
        if ctx.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ctx.device)
        start = time.perf_counter()
        for _ in range(args.steps):
            clips, labels, camids, _, boxes = next_batch()
            trainer.train_step(clips, labels, camids, boxes, 0)
        _sync(ctx.device)
        seconds = time.perf_counter() - start
        phases = {"data": 0.0, "input": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        for _ in range(args.steps):
            began = time.perf_counter()
            clips, labels, camids, _, boxes = next_batch()
            phases["data"] += time.perf_counter() - began
            last = [time.perf_counter()]

            def mark(phase: str) -> None:
                _sync(ctx.device)
                now = time.perf_counter()
                phases[phase] += now - last[0]
                last[0] = now

            trainer.train_step(clips, labels, camids, boxes, 0, mark=mark)
        loader_batches = args.steps + 4 * max(args.workers, 1)  # beyond what the workers had prefetched
        trainer.sampler.set_epoch(trainer.sampler.epoch + 1)
        batches = iter(trainer.loader)  # a fresh epoch: its first batches are loaded while timed
        loader_start = time.perf_counter()
        for _ in range(loader_batches):
            next_batch()
        loader_s = time.perf_counter() - loader_start
        flops = 3 * clip_flops(model, recipe.input.seq_len, size).total  # forward + backward ≈ 3 × forward
        clips_per_s = clips_per_step * args.steps / seconds * ctx.world_size
        row: dict[str, Any] = {
            "batch": f"{ids}x{instances}", "clips_per_step": clips_per_step * ctx.world_size,
            "processes": ctx.world_size, "compile": compile_, "amp": recipe.amp,
            "train_clips_per_s": round(clips_per_s, 2), "step_s": round(seconds / args.steps, 4),
            "phases_ms": {k: round(1000 * v / args.steps, 2) for k, v in phases.items()},
            "loader_clips_per_s": round(clips_per_step * loader_batches / loader_s * ctx.world_size, 2),
            "prepare_s": round(prepare_s, 2), "train_gflops_per_clip": round(flops / 1e9, 2),
        }
        row["loader_over_training"] = round(row["loader_clips_per_s"] / clips_per_s, 2)
        if ctx.device.type == "cuda":
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**30, 2)
        peak = peak_tflops(ctx.device, args.peak_tflops)
        if peak is not None:
            row["mfu"] = round(flops * clips_per_s / ctx.world_size / (peak * 1e12), 4)  # per device
        return row if ctx.is_main else {}


def measure_inference(model_name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Eval-forward clips/s of one model on random clips at the benchmark's size, after a warm-up batch."""
    from vreid_bench.engine.distributed import resolve_device
    from vreid_bench.engine.features import autocast
    from vreid_bench.engine.train import amp_dtype
    from vreid_bench.models import create
    from vreid_bench.recipe import reference_recipe

    device = resolve_device(args.device)
    recipe = reference_recipe(model_name)
    backbone = "resnet50" if model_name == "resnet-tap" and args.backbone != "tiny" else args.backbone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create(model_name, num_ids=625, num_cams=6, pretrained="none", image_size=tuple(args.image_size),
                       seq_len=args.seq_len, **{**recipe.model, "backbone": backbone}).to(device).eval()
    dtype = amp_dtype(args.amp or recipe.amp, device)
    clips = torch.randn(args.eval_batch, args.seq_len, 3, *args.image_size, device=device)
    camids = torch.zeros(args.eval_batch, dtype=torch.long, device=device)
    with torch.inference_mode(), autocast(device, dtype):
        model(clips, camids)
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            model(clips, camids)
        _sync(device)
    return {"clips_per_s": round(args.eval_batch * args.steps / (time.perf_counter() - start), 2),
            "batch": args.eval_batch, "dtype": str(dtype).removeprefix("torch.") if dtype else "float32"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, model: str, args: argparse.Namespace, dataset_dir: str,
                ids: int, instances: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    sys.stdout = sys.stderr  # the parent prints the one JSON object on stdout
    torch.set_num_threads(max(1, args.threads // world))
    row = measure_training(model, args, Path(dataset_dir), ids, instances)
    if rank == 0:
        atomic_write_json(out, row)


def measure_processes(model: str, args: argparse.Namespace, dataset_dir: Path, ids: int, instances: int,
                      processes: int, scratch: Path) -> dict[str, Any]:
    out = scratch / f"ddp-{model}-{processes}.json"
    mp.start_processes(_ddp_worker, args=(processes, _free_port(), model, args, str(dataset_dir), ids, instances,
                                          str(out)), nprocs=processes, start_method="spawn")
    return json.loads(out.read_text())


def parse_batches(texts: list[str]) -> list[tuple[int, int]]:
    shapes = []
    for text in texts:
        ids, _, instances = text.partition("x")
        shapes.append((int(ids), int(instances)))
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--inference", nargs="*", default=None, help="models for inference clips/s (default all)")
    parser.add_argument("--batches", nargs="+", default=["4x4", "8x8"], help="P×K batch shapes")
    parser.add_argument("--backbone", default="ViT-B-16")
    parser.add_argument("--image-size", nargs=2, type=int, default=[256, 128], metavar=("H", "W"))
    parser.add_argument("--seq-len", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (each measurement)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="data-loader workers (the recipes' default 4)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default=None, help="bf16, fp16 or off (default: the recipe's)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak dense bf16 TFLOP/s")
    parser.add_argument("--processes", type=int, default=1, help="also measure training under N DDP processes")
    parser.add_argument("--compile", action="store_true", help="also measure with the recipe's compile: true")
    parser.add_argument("--eval-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tiny", action="store_true", help="a CPU check in seconds: tiny models, 64x32, T=4")
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args()
    if args.tiny:
        args.backbone, args.image_size, args.seq_len = "tiny", [64, 32], 4
        args.steps, args.warmup, args.workers, args.eval_batch = min(args.steps, 4), 1, min(args.workers, 1), 4
        args.device = "cpu" if args.device == "auto" else args.device
        args.batches = args.batches if args.batches != ["4x4", "8x8"] else ["2x2", "4x2"]
    torch.set_num_threads(args.threads)
    shapes = parse_batches(args.batches)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch_name, contextlib.redirect_stdout(sys.stderr):  # bars, not JSON
        scratch = Path(scratch_name)
        largest = max(ids * instances for ids, instances in shapes)
        identities = max(16, 2 * max(ids for ids, _ in shapes))
        tracklets = max(4, 2 * max(instances for _, instances in shapes))
        dataset_dir = write_dataset(scratch / "data", identities, tracklets, max(args.seq_len * 2, 16),
                                    tuple(args.image_size))
        training: dict[str, list[dict[str, Any]]] = {}
        for model in args.models:
            rows = []
            for ids, instances in shapes:
                rows.append(measure_training(model, args, dataset_dir, ids, instances))
                if args.compile:
                    rows.append(measure_training(model, args, dataset_dir, ids, instances, compile_=True))
                if args.processes > 1:
                    rows.append(measure_processes(model, args, dataset_dir, ids, instances, args.processes, scratch))
            training[model] = rows
        inference = {model: measure_inference(model, args)
                     for model in (INFERENCE_MODELS if args.inference is None else args.inference)}
    from vreid_bench.engine.distributed import resolve_device

    device = resolve_device(args.device)
    report = {
        "benchmark": "train",
        "backbone": args.backbone, "image_size": args.image_size, "seq_len": args.seq_len,
        "steps": args.steps, "warmup": args.warmup, "workers": args.workers, "largest_batch": largest,
        "device": (f"cuda ({torch.cuda.get_device_name(device)}) ×{torch.cuda.device_count()}"
                   if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}), "
                   f"{args.threads} threads"),
        "peak_tflops": peak_tflops(device, args.peak_tflops),
        "load_average_1min": round(os.getloadavg()[0], 2), "torch": torch.__version__,
        "training": training, "inference": inference, "wall_s": round(time.perf_counter() - started, 1),
    }
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
