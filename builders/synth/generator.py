"""``generate``: synthetic sports or dance footage with exact ground truth, in SportsMOT or DanceTrack layout.

Each sequence is a unit of work: planned and rendered from its own seed (so its bytes do not depend on how
many processes ran or in what order), staged in a hidden sibling folder and renamed into place when complete.
A re-run with the same arguments finds complete sequences by the parameters they record and skips them; the
split lists are written last.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue as queue_module
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from builders.synth.attributes import dance_identities, sports_identities
from builders.synth.backgrounds import background_for
from builders.synth.render import FrameRenderer, noise_field
from builders.synth.scene import plan_scene
from builders.synth.writer import (
    IMAGE_DIR, Layout, Split, read_params, remove_stale_stages, write_annotations, write_split_lists,
)
from vreid_bench.errors import ConfigError
from vreid_bench.io import staged_directory

GENERATOR_NAME = "vreid-synth"
GENERATOR_VERSION = 2  # 2: public detections (det/det.txt); one match per clip in sports names
JPEG_QUALITY = 90
KIND_CODES = MappingProxyType({"sports": 1, "dance": 2})
MAX_PEOPLE = 40
MAX_VIDEOS = 9999
MIN_SIDE, MAX_SIDE = 64, 8192


@dataclass(frozen=True)
class SynthSequence:
    name: str
    split: Split
    path: Path
    num_frames: int
    num_identities: int  # identities with at least one box in gt.txt


@dataclass(frozen=True)
class SynthResult:
    root: Path
    sequences: list[SynthSequence]


@dataclass(frozen=True)
class SynthConfig:
    """Validated arguments of :func:`generate`, minus where to write and how to show progress."""

    kind: Literal["sports", "dance"]
    videos: int
    frames: int
    people: int
    seed: int
    width: int
    height: int
    fps: int
    similarity: float
    occlusion: float
    blur: float

    def params(self, index: int) -> dict[str, object]:
        """What one sequence's bytes depend on; recorded in it so that a re-run can recognise it."""
        params = asdict(self)
        del params["videos"]
        return {**params, "index": index}


@dataclass(frozen=True)
class SequenceJob:
    config: SynthConfig
    index: int
    name: str
    split: Split
    path: Path


def _whole(name: str, value: object, low: int, high: int, why: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name}={value!r} is not a whole number; pass an integer from {low} to {high}")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range ({why}); pass an integer from {low} to {high}")
    return int(value)


def _fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(value)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name}={value!r} is not a fraction; pass a number from 0.0 to 1.0")
    return float(value)


def make_config(kind: str, videos: int, frames: int, people: int, seed: int, width: int, height: int, fps: int,
                similarity: float, occlusion: float, blur: float) -> SynthConfig:
    """Check every argument, raising :class:`ConfigError` with the bad value and the fix."""
    if not isinstance(kind, str) or kind not in KIND_CODES:
        raise ConfigError(f"unknown footage kind {kind!r}; use 'sports' or 'dance'")
    least = 4 if kind == "sports" else 2
    why = "sports footage needs at least 2 players per team" if kind == "sports" else "a dance needs 2 dancers"
    return SynthConfig(
        kind=kind,  # type: ignore[arg-type]
        videos=_whole("videos", videos, 1, MAX_VIDEOS, "at least one video"),
        frames=_whole("frames", frames, 1, 1_000_000, "at least one frame"),
        people=_whole("people", people, least, MAX_PEOPLE, f"{why}, and at most {MAX_PEOPLE} people are drawn"),
        seed=_whole("seed", seed, 0, 2**63 - 1, "seeds are non-negative"),
        width=_whole("width", width, MIN_SIDE, MAX_SIDE, "image width in pixels"),
        height=_whole("height", height, MIN_SIDE, MAX_SIDE, "image height in pixels"),
        fps=_whole("fps", fps, 1, 240, "frames per second"),
        similarity=_fraction("similarity", similarity),
        occlusion=_fraction("occlusion", occlusion),
        blur=_fraction("blur", blur),
    )


def plan_jobs(config: SynthConfig, root: Path) -> list[SequenceJob]:
    """The first ceil(videos / 2) sequences are train, the rest val."""
    layout = Layout(config.kind)
    train = math.ceil(config.videos / 2)
    jobs = []
    for index in range(config.videos):
        split: Split = "train" if index < train else "val"
        name = layout.sequence_name(config.seed, index)
        jobs.append(SequenceJob(config, index, name, split, layout.sequence_dir(root, split, name)))
    return jobs


def _count_identities(gt_text: str) -> int:
    return len({line.split(",")[1] for line in gt_text.splitlines() if line})


def finished(job: SequenceJob) -> SynthSequence | None:
    """The sequence already on disk, when it was written by a run with the same parameters."""
    if read_params(job.path) != job.config.params(job.index):
        return None
    gt = job.path / "gt" / "gt.txt"
    if not gt.is_file():
        return None
    return SynthSequence(job.name, job.split, job.path, job.config.frames, _count_identities(gt.read_text()))


def render_sequence(job: SequenceJob, on_frame: Callable[[], None] | None = None) -> SynthSequence:
    """Plan, render and write one sequence; it appears under its final name only once complete."""
    config = job.config
    streams = np.random.SeedSequence(entropy=config.seed, spawn_key=(KIND_CODES[config.kind], job.index)).spawn(5)
    identity_rng, plan_rng, background_rng, noise_rng = (np.random.default_rng(s) for s in streams[:4])
    make_identities = sports_identities if config.kind == "sports" else dance_identities
    identities = make_identities(config.people, config.similarity, identity_rng)
    plan = plan_scene(config.kind, config.people, config.frames, config.fps, config.width, config.height,
                      config.occlusion, plan_rng)
    background = background_for(config.kind, plan.camera, plan.panorama, background_rng)
    noise = noise_field(config.width, config.height, 1.0 + 3.0 * config.blur, noise_rng)
    renderer = FrameRenderer(plan, identities, background.image, noise, exposure=config.blur)
    layout = Layout(config.kind)
    remove_stale_stages(job.path)
    with staged_directory(job.path) as stage:
        (stage / IMAGE_DIR).mkdir()
        rows = []
        for frame in range(config.frames):
            image, boxes = renderer.render(frame)
            Image.fromarray(image).save(stage / IMAGE_DIR / layout.frame_name(frame + 1), quality=JPEG_QUALITY)
            rows += [(frame + 1, track_id, *box) for track_id, box in boxes.items()]
            if on_frame is not None:
                on_frame()
        attributes = {
            "video": job.name,
            "kind": config.kind,
            "seed": config.seed,
            "setting": background.setting,
            "difficulty": {"similarity": config.similarity, "occlusion": config.occlusion, "blur": config.blur},
            "identities": {str(identity.track_id): identity.sheet() for identity in identities},
            "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION, "params": config.params(job.index)},
        }
        write_annotations(stage, job.name, config.fps, config.frames, config.width, config.height, rows, attributes,
                          detection_seed=int(streams[4].generate_state(1)[0]))  # a stream of its own
    return SynthSequence(job.name, job.split, job.path, config.frames, len({row[1] for row in rows}))


def _render_in_worker(job: SequenceJob, frames_done: queue_module.Queue | None) -> SynthSequence:
    return render_sequence(job, (lambda: frames_done.put(1)) if frames_done is not None else None)


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                    TimeRemainingColumn())


def _run_serial(jobs: list[SequenceJob], progress: bool, label: str) -> list[SynthSequence]:
    if not progress:
        return [render_sequence(job) for job in jobs]
    with _progress_bar() as bar:
        task = bar.add_task(label, total=sum(job.config.frames for job in jobs))
        return [render_sequence(job, lambda: bar.advance(task)) for job in jobs]


def _run_parallel(jobs: list[SequenceJob], workers: int, progress: bool, label: str) -> list[SynthSequence]:
    """One process per sequence at a time; spawned, so a parent holding threads (torch) cannot deadlock them."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        if not progress:
            return [future.result() for future in [pool.submit(_render_in_worker, job, None) for job in jobs]]
        with context.Manager() as manager, _progress_bar() as bar:
            frames_done = manager.Queue()
            task = bar.add_task(label, total=sum(job.config.frames for job in jobs))
            futures: list[Future[SynthSequence]] = [pool.submit(_render_in_worker, job, frames_done) for job in jobs]
            while not all(future.done() for future in futures):
                try:
                    bar.advance(task, frames_done.get(timeout=0.2))
                except queue_module.Empty:
                    pass
            results = [future.result() for future in futures]
            while not frames_done.empty():
                bar.advance(task, frames_done.get())
            return results


def generate(kind: Literal["sports", "dance"], out: str | Path, videos: int = 2, frames: int = 200,
             people: int = 10, seed: int = 0, width: int = 1280, height: int = 720, fps: int = 25,
             similarity: float = 0.5, occlusion: float = 0.5, blur: float = 0.5,
             progress: bool = False, *, workers: int | None = None) -> SynthResult:
    """Write ``videos`` synthetic sequences of ``kind`` footage under ``out`` in the source's public layout.

    ``similarity`` (0..1) makes identities look more alike, ``occlusion`` packs people closer and makes them
    cross more, ``blur`` lengthens the exposure (motion blur) and raises sensor noise. ``workers`` processes
    render sequences in parallel (default: one per available core, at most one per sequence); the output is
    the same whatever their number.
    """
    config = make_config(kind, videos, frames, people, seed, width, height, fps, similarity, occlusion, blur)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"output {root} is a file; pass a folder to write the synthetic dataset into")
    if workers is not None:
        workers = _whole("workers", workers, 1, 1024, "number of processes")
    jobs = plan_jobs(config, root)
    done = {job.index: finished(job) for job in jobs}
    pending = [job for job in jobs if done[job.index] is None]
    count = min(len(pending), workers or available_cores())
    label = f"synth {config.kind}"
    rendered = _run_parallel(pending, count, progress, label) if count > 1 else _run_serial(pending, progress, label)
    for job, sequence in zip(pending, rendered):
        done[job.index] = sequence
    sequences = [done[job.index] for job in jobs]
    assert all(sequence is not None for sequence in sequences)
    names: dict[Split, list[str]] = {"train": [], "val": []}
    for sequence in sequences:
        names[sequence.split].append(sequence.name)
    write_split_lists(Layout(config.kind), root, names)
    return SynthResult(root, sequences)  # type: ignore[arg-type]
