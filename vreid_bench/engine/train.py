"""One training and evaluation loop for every model.

The loop knows nothing model-specific: the model maps clips to what its ``losses`` need, names its loss terms and
builds its pre-training state (``prepare``). How it trains is its recipe (:mod:`vreid_bench.recipe`): the clips,
augmentation and P×K batches, the optimiser and its parameter groups, the schedule, the precision. What the loop
owns is what makes two runs comparable and repeatable: a checkpoint after every epoch from which ``resume``
continues exactly as if never stopped, evaluation through the protocol, and a run directory the leaderboard reads.

Determinism: the model is built and prepared after seeding with the run's seed; each process then draws from
its own stream (seed + rank); every training sample's augmentation is drawn from a seed of its own (run seed,
epoch, place in the epoch: :class:`~vreid_bench.sampling.SeededSampler`), so data-loader workers persist across
epochs and their number changes nothing. The checkpoint stores every process's random state (torch, CUDA, NumPy,
Python), so a resumed run draws the same numbers as an uninterrupted one. On resume ``prepare`` does not run: its
results (memories, prototypes, learned prompts) are part of the model's state, which the checkpoint restores.

Under ``torchrun`` each process takes its share of every global P×K batch and DDP averages the gradients, so
with per-sample-mean losses a step equals the single-process step on the same global batch. Two things differ
by nature: batch-hard triplet mining sees only the process's share, and BatchNorm statistics are per process
unless converted to SyncBatchNorm (done on GPUs when ``sync_bn``; PyTorch's SyncBatchNorm has no CPU kernel).
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from vreid_bench.clips import TrainClips, erase_with_noise, normalize_clips, training_items
from vreid_bench.data import VideoReIDDataset
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.distributed import DistContext, distributed_context
from vreid_bench.engine.features import Features, autocast, extract_features, iter_tracklet_clips, progress_bar
from vreid_bench.engine.optim import lr_factor, make_optimizer
from vreid_bench.engine.saved import (
    SavedFeatures,
    features_file,
    load_features,
    query_digest,
    save_features,
    storable,
    tracklet_ids,
)
from vreid_bench.engine.rundir import (
    CHECKPOINT_FILE,
    LOG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    DatasetRecord,
    JsonLog,
    RunLog,
    RunRecord,
    git_revision,
    is_finished,
    read_metrics,
    read_run_config,
    run_dir_for,
    save_torch_atomic,
    weights_identity,
    write_metrics,
    write_run_config,
)
from vreid_bench.errors import ConfigError, DatasetFormatError, UnknownNameError
from vreid_bench.evaluation import evaluate_features
from vreid_bench.metrics import RankResult
from vreid_bench.models.base import ReIDModel, TrainingData
from vreid_bench.profiling import model_cost
from vreid_bench.protocol import Protocol, apply_protocol_overrides, get_protocol
from vreid_bench.recipe import InputSpec, Recipe
from vreid_bench.sampling import IdentityBatchSampler, SeededSampler

ModelFactory = Callable[..., ReIDModel]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]  # the content of metrics.json


def default_model_factory(name: str, **kwargs: Any) -> ReIDModel:
    from vreid_bench.models import create

    return create(name, **kwargs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """This process's random state, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_worker(worker_id: int) -> None:
    """DataLoader workers get torch seeds from the loader's generator; NumPy and Python follow them."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _loader_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_009 + rank


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a recipe's ``amp`` on ``device``; CPU always runs float32."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("amp=bf16 but this GPU has no bfloat16 support; use --set amp=fp16")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def dtype_name(dtype: torch.dtype | None) -> str:
    """The precision a forward ran in: ``float32`` outside autocast."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def stage_settings_for(model_name: str, recipe: Recipe) -> dict[str, object]:
    """The recipe's stage settings, checked against the model's stages (raw for models outside the registry)."""
    from vreid_bench.models import stage_settings

    try:
        return stage_settings(model_name, recipe.stages)
    except UnknownNameError:
        return dict(recipe.stages)


def build_training_data(dataset: VideoReIDDataset, spec: InputSpec, device: torch.device, workers: int,
                        stages: dict[str, object] | None = None, ctx: DistContext | None = None,
                        amp_dtype: torch.dtype | None = None) -> TrainingData:
    """What ``model.prepare`` sees: training tracklets, labels, captions per identity, a clip iterator over this
    process's share of the tracklets (every ``world_size``-th, from its rank), and how to join the shares."""
    labels = dataset.train_labels().tolist()
    captions: dict[int, list[str]] = {label: [] for label in range(dataset.num_train_pids)}
    for tracklet, label in zip(dataset.train, labels):
        if tracklet.caption:
            captions[label].append(tracklet.caption)
    rank, world = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    share = list(range(rank, len(dataset.train), world))
    return TrainingData(
        tracklets=list(dataset.train), labels=labels, num_ids=dataset.num_train_pids, num_cams=dataset.num_cams,
        captions=captions, iter_clips=partial(iter_tracklet_clips, dataset.train, labels, spec, device,
                                              workers=workers, indices=share),
        device=device, stages=dict(stages or {}), amp_dtype=amp_dtype,
        reduce_sum=ctx.sum_ if ctx is not None else (lambda tensor: tensor),
        gather_rows=ctx.gather_rows if ctx is not None else (lambda tensor: tensor), share_size=len(share),
    )


@dataclass
class _Trainer:
    """The state of one training run in one process."""

    model: ReIDModel
    network: nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    sampler: IdentityBatchSampler
    loader: DataLoader
    loader_generator: torch.Generator
    protocol: Protocol
    recipe: Recipe
    seed: int
    options: RunOptions
    ctx: DistContext
    amp_dtype: torch.dtype | None
    log: JsonLog
    global_step: int = 0

    def train_epoch(self, epoch: int, progress: Progress) -> dict[str, float]:
        """One epoch. Loss terms stay on the device and are read (one host sync, one all-reduce) every
        ``options.log_every`` steps and at the epoch's end: the step row of the log is their mean since the last."""
        self.sampler.set_epoch(epoch)
        self.loader_generator.manual_seed(_loader_seed(self.seed, epoch, self.ctx.rank))
        self.network.train()
        lr = self.optimizer.param_groups[0]["lr"]
        task = progress.add_task(f"epoch {epoch + 1}/{self.recipe.epochs}", total=len(self.loader), info="")
        names: list[str] = []
        epoch_sum: torch.Tensor | None = None
        window: torch.Tensor | None = None
        steps, in_window, epoch_start = 0, 0, time.perf_counter()
        window_start = epoch_start
        for clips, labels, camids, _, noise_boxes in self.loader:
            terms = self.train_step(clips, labels, camids, noise_boxes, epoch)
            names = list(terms)
            values = torch.stack(list(terms.values()))  # on the device: no sync
            window = values if window is None else window + values
            epoch_sum = values if epoch_sum is None else epoch_sum + values
            steps, in_window = steps + 1, in_window + 1
            self.global_step += 1
            last = steps == len(self.loader)
            if in_window == self.options.log_every or last:
                means = dict(zip(names, (self.ctx.mean(window) / in_window).tolist()))
                self._check_finite(means, epoch)
                if self.ctx.is_main:
                    self.log.write(event="step", epoch=epoch, step=self.global_step, lr=lr,
                                   seconds=round((time.perf_counter() - window_start) / in_window, 4), **means)
                progress.update(task, advance=in_window, info=f"loss {means['loss']:.4f}  lr {lr:.2e}")
                window, in_window, window_start = None, 0, time.perf_counter()
        self.scheduler.step()
        means = dict(zip(names, (self.ctx.mean(epoch_sum) / steps).tolist())) if epoch_sum is not None else {}
        if self.ctx.is_main:
            self.log.write(event="epoch", epoch=epoch, step=self.global_step, lr=lr, steps=steps,
                           seconds=round(time.perf_counter() - epoch_start, 3), **means)
        return means

    def train_step(self, clips: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor, noise_boxes: torch.Tensor,
                   epoch: int, mark: Callable[[str], None] | None = None) -> dict[str, torch.Tensor]:
        """One optimiser step; the loss terms as device tensors (reading them would wait for the GPU).

        ``mark(phase)`` is called after the input transfer, the forward pass, the backward pass and the optimiser
        step (``benchmarks/bench_train.py`` times the phases with it); nothing is called by default."""
        device = self.ctx.device
        inputs = normalize_clips(clips, self.recipe.input, device)  # (B, T, 3, H, W) uint8 -> normalised float
        if self.recipe.augment.erasing.fill == "noise":
            erase_with_noise(inputs, noise_boxes)
        labels, camids = labels.to(device), camids.to(device)
        if mark is not None:
            mark("input")
        with autocast(device, self.amp_dtype):
            outputs = self.network(inputs, camids, labels)
            terms = self.model.losses(outputs, labels)
        loss = torch.stack([t.float() for t in terms.values()]).sum()
        if mark is not None:
            mark("forward")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if mark is not None:
            mark("backward")
        if self.recipe.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if mark is not None:
            mark("optimizer")
        return {"loss": loss.detach(), **{name: t.detach().float() for name, t in terms.items()}}

    def _check_finite(self, means: dict[str, float], epoch: int) -> None:
        if not math.isfinite(means["loss"]):
            raise ConfigError(f"the loss became {means['loss']} in epoch {epoch + 1} (by step {self.global_step}); "
                              "lower optimizer.lr or set grad_clip")

    def state(self, epoch: int, elapsed_s: float) -> dict[str, Any]:
        """The resumable checkpoint after ``epoch``; every process's random state is gathered into it."""
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler_epoch": self.sampler.epoch,
            "global_step": self.global_step,
            "elapsed_s": elapsed_s,
            "world_size": self.ctx.world_size,
            "rng": self.ctx.gather_objects(capture_rng()),
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.sampler.set_epoch(checkpoint["sampler_epoch"])
        self.global_step = checkpoint["global_step"]
        states = checkpoint["rng"]
        if len(states) == self.ctx.world_size:
            restore_rng(states[self.ctx.rank])
        else:
            warnings.warn(f"the checkpoint was written by {len(states)} processes, this run has "
                          f"{self.ctx.world_size}: random streams restart, so the resumed run is not bit-identical",
                          stacklevel=2)
            seed_everything(_loader_seed(self.seed, checkpoint["epoch"] + 1, self.ctx.rank))


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    if is_finished(run_dir) and not resume:
        raise ConfigError(f"{run_dir} already holds a finished run ({METRICS_FILE}); re-evaluate it with "
                          f"`vreid eval {run_dir}`, or delete the folder to train again")
    if (run_dir / CHECKPOINT_FILE).exists() and not resume:
        raise ConfigError(f"{run_dir} holds an unfinished run; continue it with --resume, or delete the folder "
                          "to start over")


def _wrap(model: nn.Module, ctx: DistContext, recipe: Recipe) -> nn.Module:
    """The network the training step runs: the model, compiled where the recipe asks, under DDP with processes."""
    if recipe.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    if not ctx.distributed:
        return model
    if ctx.device.type == "cuda" and recipe.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # A static graph lets DDP skip parameters a model leaves unused in training (ablations switched off,
    # parameters trained only in ``prepare``) without tracing the graph at every step.
    return DistributedDataParallel(model, device_ids=device_ids, static_graph=True)


def _build_trainer(model: ReIDModel, model_name: str, dataset: VideoReIDDataset, protocol: Protocol,
                   recipe: Recipe, seed: int, options: RunOptions, ctx: DistContext, log: JsonLog) -> _Trainer:
    items, labels = training_items(dataset.train, dataset.train_labels().tolist(), recipe.sampler,
                                   recipe.input.seq_len)
    spec = recipe.sampler
    sampler = IdentityBatchSampler(labels, spec.ids_per_batch, spec.instances_per_id, seed=seed,
                                   num_replicas=ctx.world_size, rank=ctx.rank, epoch=spec.epoch)
    generator = torch.Generator()
    loader = DataLoader(
        TrainClips(items, labels, recipe), batch_size=spec.batch_size // ctx.world_size,
        sampler=SeededSampler(sampler, seed), num_workers=options.workers, generator=generator,
        worker_init_fn=_seed_worker, pin_memory=ctx.device.type == "cuda", drop_last=False,
        persistent_workers=options.workers > 0,  # augmentation is seeded per sample, not per worker start
        prefetch_factor=4 if options.workers > 0 else None,
    )
    optimizer = make_optimizer(model, recipe.optimizer, model_name, fused=ctx.device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, schedule=recipe.schedule, epochs=recipe.epochs))
    dtype = amp_dtype(recipe.amp, ctx.device)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=dtype == torch.float16)
    return _Trainer(model=model, network=_wrap(model, ctx, recipe), optimizer=optimizer, scheduler=scheduler,
                    scaler=scaler, sampler=sampler, loader=loader, loader_generator=generator, protocol=protocol,
                    recipe=recipe, seed=seed, options=options, ctx=ctx, amp_dtype=dtype, log=log)


def _create_model(factory: ModelFactory, name: str, dataset: VideoReIDDataset | None, recipe: Recipe,
                  pretrained: str | None, sizes: tuple[int, int] | None = None) -> ReIDModel:
    """Model ``name`` sized for ``dataset``'s training identities and cameras, or for ``sizes`` (ids, cameras)."""
    spec = recipe.input
    num_ids, num_cams = sizes if sizes is not None else (dataset.num_train_pids, dataset.num_cams)
    return factory(name, num_ids=num_ids, num_cams=num_cams, pretrained=pretrained,
                   image_size=(spec.height, spec.width), seq_len=spec.seq_len, **recipe.model)


def evaluate_model(model: nn.Module, dataset: VideoReIDDataset, protocol: Protocol, spec: InputSpec,
                   ctx: DistContext, batch_size: int, workers: int, amp_dtype: torch.dtype | None,
                   progress: Progress | None, camera_ids: bool = True) -> tuple[RankResult | None, Features]:
    """Query and gallery features (the model's input ``spec``, the protocol's test clips) and, on rank 0, their
    ranking metrics under ``protocol``, computed from the features as they are stored (:func:`storable`).

    ``camera_ids=False`` shows the model camera 0 for every tracklet (its camera embedding knows other cameras than
    these); ranking still uses the real cameras."""
    tracklets = [*dataset.query, *dataset.gallery]
    if not camera_ids:
        tracklets = [replace(t, camid=0) for t in tracklets]
    features = extract_features(model, tracklets, spec, protocol.test_sampling, ctx.device, ctx,
                                batch_size=batch_size, workers=workers, amp_dtype=amp_dtype, progress=progress)
    if not ctx.is_main:
        return None, features
    num_query = len(dataset.query)
    stored = storable(features.features).float()
    result = evaluate_features(stored[:num_query], stored[num_query:], dataset.query, dataset.gallery, protocol)
    return result, features


def save_run_features(path: Path, dataset: VideoReIDDataset, features: Features, sampling: str,
                      record: RunRecord) -> None:
    num_query = len(dataset.query)
    meta = {"model": record.model, "dataset": dataset.name, "dataset_fingerprint": dataset.fingerprint,
            "recipe_hash": record.recipe.hash(), "split": record.protocol.split}
    save_features(path, features.features[:num_query], features.features[num_query:], dataset.query,
                  dataset.gallery, sampling, meta)


def device_description(ctx: DistContext) -> str:
    if ctx.device.type == "cuda":
        name = f"cuda ({torch.cuda.get_device_name(ctx.device)})"
    else:
        name = f"cpu ({torch.get_num_threads()} threads)"
    return f"{name} ×{ctx.world_size}" if ctx.distributed else name


def rank_metrics(result: RankResult, query_ids: list[str]) -> dict[str, Any]:
    """The ranking numbers of metrics.json (fractions in [0, 1]), with every query's own AP and first-match rank
    (null and 0 for a query without a true match), which the leaderboard's intervals resample."""
    return {"mAP": result.mAP, "cmc": [float(x) for x in result.cmc], "mINP": result.mINP,
            "num_valid_queries": result.num_valid_queries, "num_skipped_queries": result.num_skipped_queries,
            "query_digest": query_digest(query_ids),
            "query_ap": [None if np.isnan(v) else round(float(v), 6) for v in result.query_ap],
            "query_first_rank": [int(v) for v in result.query_first_rank]}


def run_training(model_name: str, dataset: VideoReIDDataset, protocol: Protocol, recipe: Recipe,
                 out_dir: str | Path, seed: int = 0, pretrained: str | None = None,
                 options: RunOptions | None = None, resume: bool = False, progress: bool = True,
                 dataset_record: DatasetRecord | None = None, model_factory: ModelFactory | None = None) -> RunResult:
    """Train ``model_name`` on ``dataset`` as ``recipe`` says, evaluate it under ``protocol``, write its run dir.

    ``pretrained``: backbone weights (None: the model's usual ones). ``dataset_record`` says how to load the
    dataset again (default: its directory or registered name). ``resume`` continues from the run's checkpoint
    (a finished run is returned as it is; with no checkpoint the run starts from scratch). ``model_factory``
    replaces the model registry (tests, embedding applications).
    """
    options = options or RunOptions()
    protocol = protocol.with_split(dataset.notes.get("split"))
    if not dataset.train:
        raise DatasetFormatError(f"dataset {dataset.name!r} has no training tracklets; train on a dataset with a "
                                 "train split")
    record = RunRecord.create(model_name, dataset_record or DatasetRecord.of(dataset), protocol, recipe, seed,
                              pretrained)
    run_dir = run_dir_for(out_dir, record)
    _check_run_dir(run_dir, resume)
    if resume and is_finished(run_dir):
        return RunResult(run_dir=run_dir, metrics=read_metrics(run_dir) or {})
    start = time.perf_counter()
    checkpoint_path = run_dir / CHECKPOINT_FILE
    with distributed_context(options.device) as ctx:
        checkpoint = None
        if resume and checkpoint_path.is_file():
            checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        # The run directory is written only once the model is built and prepared, so a model that refuses the
        # dataset (missing captions, say) leaves nothing behind.
        model, prepare_s = _prepared_model(model_factory or default_model_factory, record, dataset, options, ctx,
                                           checkpoint["model"] if checkpoint is not None else None)
        log = RunLog(run_dir / LOG_FILE)
        if ctx.is_main:
            write_run_config(run_dir, record)
            resumed_at = checkpoint["epoch"] + 1 if checkpoint else 0
            log.truncate_to_epoch(resumed_at)
            if prepare_s is None:  # epoch = the first epoch run again, so a later resume drops this line too
                log.write(event="prepare", epoch=resumed_at, skipped="restored from the checkpoint")
            else:
                log.write(event="prepare", epoch=-1, seconds=round(prepare_s, 3))
        seed_everything(seed + ctx.rank)  # from here each process draws from its own stream
        trainer = _build_trainer(model, model_name, dataset, protocol, recipe, seed, options, ctx, log)
        first_epoch, elapsed_before = 0, 0.0
        if checkpoint is not None:
            trainer.load_state(checkpoint)
            first_epoch, elapsed_before = checkpoint["epoch"] + 1, checkpoint["elapsed_s"]
            del checkpoint
        if ctx.is_main:
            log.start(trainer.global_step + 1)  # the first step this process writes

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - start

        with progress_bar(progress and ctx.is_main) as bar:
            for epoch in range(first_epoch, recipe.epochs):
                trainer.train_epoch(epoch, bar)
                state = trainer.state(epoch, elapsed())
                if ctx.is_main:
                    save_torch_atomic(state, checkpoint_path)
                del state
                if options.eval_every and (epoch + 1) % options.eval_every == 0 and epoch + 1 < recipe.epochs:
                    _intermediate_eval(trainer, dataset, bar, epoch)
                if ctx.is_main:
                    log.flush()
            result, features = evaluate_model(trainer.model, dataset, protocol, recipe.input, ctx,
                                              options.eval_batch_size, options.workers, trainer.amp_dtype, bar)
        metrics: dict[str, Any] = {}
        if result is not None:  # rank 0
            save_run_features(run_dir / features_file(protocol.test_sampling, protocol.test_sampling), dataset,
                              features, protocol.test_sampling, record)
            metrics = _final_metrics(trainer.model, record, dataset, result, features, ctx, elapsed())
            # epoch = recipe.epochs: past every training epoch, so a resume's truncation drops it with the rest
            log.write(event="final", epoch=recipe.epochs, step=trainer.global_step, mAP=result.mAP,
                      R1=float(result.cmc[0]), mINP=result.mINP)
            log.close()
            _write_results(run_dir, trainer.model, metrics, keep_checkpoint=options.keep_checkpoint)
        metrics = ctx.broadcast_object(metrics)
    return RunResult(run_dir=run_dir, metrics=metrics)


def _prepared_model(factory: ModelFactory, record: RunRecord, dataset: VideoReIDDataset, options: RunOptions,
                    ctx: DistContext, restored: dict[str, Any] | None = None) -> tuple[ReIDModel, float | None]:
    """Build and prepare the model from the run's seed (the same in every process); and the seconds ``prepare``
    took. A resumed run's checkpoint already holds what ``prepare`` computed (memories, prototypes, CLIP-ReID's
    learned prompts), so ``restored`` (its model state) replaces the pass, and the seconds are None."""
    seed_everything(record.seed)
    model = _create_model(factory, record.model, dataset, record.recipe, record.pretrained).to(ctx.device)
    if restored is not None:
        model.load_state_dict(restored)
        return model, None
    start = time.perf_counter()
    stages = stage_settings_for(record.model, record.recipe)
    model.prepare(build_training_data(dataset, record.recipe.input, ctx.device, options.workers, stages, ctx,
                                      amp_dtype(record.recipe.amp, ctx.device)))
    return model, time.perf_counter() - start


def _final_metrics(model: ReIDModel, record: RunRecord, dataset: VideoReIDDataset, result: RankResult,
                   features: Features, ctx: DistContext, wall_s: float | None) -> dict[str, Any]:
    protocol, spec = record.protocol, record.recipe.input
    cost = model_cost(model, spec.seq_len, (spec.height, spec.width))
    return {
        "model": record.model, "dataset": record.dataset.name, "dataset_fingerprint": record.dataset.fingerprint,
        "benchmark": dataset.benchmark, "split": protocol.split, "num_splits": dataset.notes.get("num_splits"),
        "protocol": protocol.name, "protocol_hash": protocol.hash(), "protocol_family": protocol.family_hash(),
        "recipe": record.recipe.name, "recipe_hash": record.recipe.hash(), "captions": record.dataset.captions,
        "identities_verified": dataset.notes.get("identities_verified"),
        **rank_metrics(result, tracklet_ids(dataset.query, "query")),
        "params": cost.params, "training_params": cost.training_params, "gflops_per_clip": cost.gflops_per_clip,
        "clips_per_s": features.clips_per_s, "inference_dtype": dtype_name(amp_dtype(record.recipe.amp, ctx.device)),
        "seed": record.seed, "pretrained": record.pretrained, "weights": weights_identity(record.weights),
        "num_train_ids": dataset.num_train_pids, "num_cams": dataset.num_cams,
        "git_rev": git_revision(), "wall_s": wall_s,
        "epochs": record.recipe.epochs, "device": device_description(ctx),
    }


def _write_results(run_dir: Path, model: ReIDModel, metrics: dict[str, Any], keep_checkpoint: bool) -> None:
    """Final weights, then metrics.json (the mark of a finished run), then drop the resumable checkpoint."""
    save_torch_atomic(model.state_dict(), run_dir / WEIGHTS_FILE)
    write_metrics(run_dir / METRICS_FILE, metrics)
    if not keep_checkpoint:
        (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)


def _intermediate_eval(trainer: _Trainer, dataset: VideoReIDDataset, bar: Progress, epoch: int) -> None:
    result, _ = evaluate_model(trainer.model, dataset, trainer.protocol, trainer.recipe.input, trainer.ctx,
                               trainer.options.eval_batch_size, trainer.options.workers, trainer.amp_dtype, bar)
    if result is not None:
        trainer.log.write(event="eval", epoch=epoch, step=trainer.global_step, mAP=result.mAP,
                          R1=float(result.cmc[0]), mINP=result.mINP)


def _load_trained_model(factory: ModelFactory, record: RunRecord, dataset: VideoReIDDataset | None, weights: Path,
                        device: torch.device, sizes: tuple[int, int] | None = None) -> ReIDModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no pretrained weights on purpose: the run's weights replace them
        model = _create_model(factory, record.model, dataset, record.recipe, pretrained="none", sizes=sizes)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to(device)


def eval_run(run_dir: str | Path, protocol_name: str | None = None, protocol_overrides: dict[str, Any] | None = None,
             options: RunOptions | None = None, progress: bool = True,
             model_factory: ModelFactory | None = None) -> dict[str, Any]:
    """Evaluate a finished run again, under its own protocol or ``protocol_name`` (with overrides).

    The run's split is kept. Features saved under the protocol's test sampling are re-scored in seconds, without
    the model or the dataset's frames; otherwise they are extracted (and saved for the next time). Its own
    protocol rewrites ``metrics.json`` (training fields such as ``wall_s`` kept); another writes
    ``metrics-<protocol>.json`` beside it.
    """
    run_dir = Path(run_dir)
    record = read_run_config(run_dir)
    base = record.protocol if protocol_name is None else get_protocol(protocol_name)
    protocol = apply_protocol_overrides(base, protocol_overrides or {}).with_split(record.protocol.split)
    metrics = evaluate_run_under(run_dir, protocol, options, progress, model_factory)
    if metrics:  # rank 0
        _write_eval_metrics(run_dir, record, protocol, metrics)
    return metrics


def evaluate_run_under(run_dir: Path, protocol: Protocol, options: RunOptions | None = None, progress: bool = True,
                       model_factory: ModelFactory | None = None) -> dict[str, Any]:
    """A finished run's metrics under ``protocol``, from its saved features where they fit, else by extracting
    them (and saving them); nothing else is written."""
    record = read_run_config(run_dir)
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise ConfigError(f"{run_dir} has no {WEIGHTS_FILE}: the run did not finish; continue it with the same "
                          "`vreid run` command and --resume")
    start = time.perf_counter()
    trained = read_metrics(run_dir) or {}
    saved_path = run_dir / features_file(protocol.test_sampling, record.protocol.test_sampling)
    if saved_path.is_file():
        return _rescored_metrics(trained, saved_path, load_features(saved_path), protocol, start)
    options = options or RunOptions()
    dataset = record.dataset.load()
    with distributed_context(options.device) as ctx:
        model = _load_trained_model(model_factory or default_model_factory, record, dataset,
                                    run_dir / WEIGHTS_FILE, ctx.device)
        with progress_bar(progress and ctx.is_main) as bar:
            result, features = evaluate_model(model, dataset, protocol, record.recipe.input, ctx,
                                              options.eval_batch_size, options.workers,
                                              amp_dtype(record.recipe.amp, ctx.device), bar)
        metrics: dict[str, Any] = {}
        if result is not None:  # rank 0
            save_run_features(saved_path, dataset, features, protocol.test_sampling, record)
            metrics = {
                **_final_metrics(model, replace(record, protocol=protocol), dataset, result, features, ctx,
                                 wall_s=trained.get("wall_s")),
                "git_rev": trained.get("git_rev"), "device": trained.get("device"),
                "eval_device": device_description(ctx), "eval_git_rev": git_revision(),
                "eval_wall_s": time.perf_counter() - start,
            }
        metrics = ctx.broadcast_object(metrics)
    return metrics


def _rescored_metrics(trained: dict[str, Any], saved_path: Path, saved: SavedFeatures, protocol: Protocol, start: float,
                      **extra: Any) -> dict[str, Any]:
    """The run's metrics (``trained``) with the ranking of its saved features under ``protocol``; ``extra`` says
    what else differs from the training evaluation (another dataset's name, say)."""
    result = saved.evaluate(protocol)
    return {**{k: v for k, v in trained.items() if not k.startswith(("eval_", "rescored"))}, **extra,
            "split": protocol.split, "protocol": protocol.name, "protocol_hash": protocol.hash(),
            "protocol_family": protocol.family_hash(), **rank_metrics(result, [str(i) for i in saved.query_ids]),
            "rescored_from": saved_path.name, "eval_git_rev": git_revision(),
            "eval_wall_s": time.perf_counter() - start}


def cross_dataset_name(dataset: VideoReIDDataset) -> str:
    """How files of a run evaluated on another dataset are named: ``@<dataset>[-split<k>]``."""
    split = dataset.notes.get("split")
    return f"@{dataset.name}" + (f"-split{split}" if split is not None else "")


def _trained_sizes(run_dir: Path, record: RunRecord) -> tuple[int, int]:
    """(training identities, cameras) the run's model was built for: from its metrics, else its training data."""
    trained = read_metrics(run_dir) or {}
    if trained.get("num_train_ids") is not None and trained.get("num_cams") is not None:
        return int(trained["num_train_ids"]), int(trained["num_cams"])
    training = record.dataset.load()
    return training.num_train_pids, training.num_cams


def eval_on_dataset(run_dir: str | Path, dataset: VideoReIDDataset, protocol: Protocol,
                    options: RunOptions | None = None, progress: bool = True,
                    model_factory: ModelFactory | None = None) -> dict[str, Any]:
    """Evaluate a finished run on another dataset (cross-dataset) and write the results into the run directory.

    Features go to ``features@<dataset>-<sampling>.npz`` (re-scored in seconds under another protocol of the same
    dataset) and metrics to ``metrics@<dataset>-<protocol>.json``, which name the training dataset too. The model
    keeps the training set's heads; its camera embedding, which knows the training cameras only, is shown camera
    0 for every test tracklet.
    """
    run_dir = Path(run_dir)
    record = read_run_config(run_dir)
    if dataset.fingerprint and dataset.fingerprint == record.dataset.fingerprint:
        raise ConfigError(f"{run_dir} was trained on {dataset.name}: evaluate it with `vreid eval {run_dir}` "
                          "(--protocol P for another protocol)")
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise ConfigError(f"{run_dir} has no {WEIGHTS_FILE}: the run did not finish; continue it with the same "
                          "`vreid run` command and --resume")
    protocol = protocol.with_split(dataset.notes.get("split"))
    suffix = cross_dataset_name(dataset)
    saved_path = run_dir / f"features{suffix}-{protocol.test_sampling}.npz"
    start = time.perf_counter()
    trained = read_metrics(run_dir) or {}
    cross = {"dataset": dataset.name, "dataset_fingerprint": dataset.fingerprint,
             "train_dataset": record.dataset.name, "train_dataset_fingerprint": record.dataset.fingerprint,
             "camera_ids": "camera 0 for every tracklet (cross-dataset)"}
    if saved_path.is_file():
        saved = load_features(saved_path)
        if saved.meta.get("dataset_fingerprint") == dataset.fingerprint:
            metrics = _rescored_metrics(trained, saved_path, saved, protocol, start, benchmark=dataset.benchmark,
                                        num_splits=dataset.notes.get("num_splits"), **cross)
            write_metrics(run_dir / f"metrics{suffix}-{protocol.name}.json", metrics)
            return metrics
    options = options or RunOptions()
    sizes = _trained_sizes(run_dir, record)
    with distributed_context(options.device) as ctx:
        model = _load_trained_model(model_factory or default_model_factory, record, None, run_dir / WEIGHTS_FILE,
                                    ctx.device, sizes=sizes)
        with progress_bar(progress and ctx.is_main) as bar:
            result, features = evaluate_model(model, dataset, protocol, record.recipe.input, ctx,
                                              options.eval_batch_size, options.workers,
                                              amp_dtype(record.recipe.amp, ctx.device), bar, camera_ids=False)
        metrics: dict[str, Any] = {}
        if result is not None:  # rank 0
            save_run_features(saved_path, dataset, features, protocol.test_sampling, record)
            metrics = {
                **_final_metrics(model, replace(record, protocol=protocol), dataset, result, features, ctx,
                                 wall_s=trained.get("wall_s")),
                "num_train_ids": sizes[0], "num_cams": sizes[1], **cross,
                "git_rev": trained.get("git_rev"), "device": trained.get("device"),
                "eval_device": device_description(ctx), "eval_git_rev": git_revision(),
                "eval_wall_s": time.perf_counter() - start,
            }
            write_metrics(run_dir / f"metrics{suffix}-{protocol.name}.json", metrics)
        metrics = ctx.broadcast_object(metrics)
    return metrics


def _write_eval_metrics(run_dir: Path, record: RunRecord, protocol: Protocol, metrics: dict[str, Any]) -> None:
    own = protocol.hash() == record.protocol.hash()
    write_metrics(run_dir / (METRICS_FILE if own else f"metrics-{protocol.name}.json"), metrics)


def evaluate_checkpoint(weights: str | Path, dataset: VideoReIDDataset, protocol: Protocol,
                        model_name: str | None = None, recipe: Recipe | None = None,
                        options: RunOptions | None = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate a weights file without a run directory: vreid's own, or the authors' TF-CLIP / CLIP-ReID.

    The model is built from the file (:func:`vreid_bench.models.checkpoints.from_checkpoint`); its input is
    ``recipe``'s (default: the model's reference recipe). Returns the metrics, as a run's metrics.json holds them.
    """
    from vreid_bench.models.checkpoints import from_checkpoint

    options = options or RunOptions()
    loaded = from_checkpoint(weights, model_name, recipe=recipe)
    if dataset.num_cams > loaded.num_cams and loaded.num_cams > 0:
        raise ConfigError(f"{weights} embeds {loaded.num_cams} cameras but {dataset.name} has {dataset.num_cams}; "
                          "evaluate it on the dataset it was trained on")
    protocol = protocol.with_split(dataset.notes.get("split"))
    spec = loaded.recipe.input
    start = time.perf_counter()
    with distributed_context(options.device) as ctx:
        model = loaded.model.to(ctx.device)
        with progress_bar(progress and ctx.is_main) as bar:
            result, features = evaluate_model(model, dataset, protocol, spec, ctx, options.eval_batch_size,
                                              options.workers, amp_dtype(loaded.recipe.amp, ctx.device), bar)
        metrics: dict[str, Any] = {}
        if result is not None:
            cost = model_cost(model, spec.seq_len, (spec.height, spec.width))
            metrics = {
                "model": loaded.name, "weights": str(weights), "weights_format": loaded.format,
                "dataset": dataset.name, "dataset_fingerprint": dataset.fingerprint, "benchmark": dataset.benchmark,
                "split": protocol.split,
                "num_splits": dataset.notes.get("num_splits"), "protocol": protocol.name,
                "protocol_hash": protocol.hash(), "protocol_family": protocol.family_hash(),
                "recipe": loaded.recipe.name, "recipe_hash": loaded.recipe.hash(),
                **rank_metrics(result, tracklet_ids(dataset.query, "query")),
                "params": cost.params, "training_params": cost.training_params,
                "gflops_per_clip": cost.gflops_per_clip, "clips_per_s": features.clips_per_s,
                "inference_dtype": dtype_name(amp_dtype(loaded.recipe.amp, ctx.device)),
                "device": device_description(ctx), "eval_git_rev": git_revision(),
                "eval_wall_s": time.perf_counter() - start,
            }
        metrics = ctx.broadcast_object(metrics)
    return metrics
