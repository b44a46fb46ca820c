"""Crops per second of ``build_dataset`` beside this machine's ceiling, measured in the same run; prints JSON.

Footage: one 1280x720 sequence of 500 frames with about 10 people (``builders.synth`` when it is there, else
people drawn as textured boxes on a noisy background here). One sequence is split into frame chunks that the
build's workers share, so ``workers=2`` parallelises it without a second video.

Ceiling: the same crops (same frames and regions as the build) done by bare decode + crop + resize + JPEG encode,
no bookkeeping, hashing or file writes, with one process per core. Pillow doing the same work on one core is
reported too (on the first fifth of the frames), as the figure OpenCV was chosen over. Each figure is the best of
``--repeats`` interleaved runs. Crops per CPU second are reported beside crops per second: on cores shared with
other work the wall-clock figures drop with the load, the CPU-second ones much less.

    python benchmarks/bench_build.py [--frames 500] [--people 10] [--repeats 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from builders.build import build_dataset
from builders.crops import crop_regions, decode_scale, encode_crops, limit_threads
from builders.mot import read_mot_root
from builders.recipe import Recipe, curate

WIDTH, HEIGHT, FPS = 1280, 720, 25


def draw_footage(root: Path, frames: int, people: int, seed: int) -> Path:
    """A SportsMOT-layout train sequence: people as textured boxes walking over a noisy gradient."""
    rng = np.random.default_rng(seed)
    seq = root / "dataset" / "train" / "v_bench_c001"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    (root / "splits_txt").mkdir(parents=True)
    (root / "splits_txt" / "train.txt").write_text("v_bench_c001\n")
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=v_bench_c001\nimDir=img1\nframeRate={FPS}\n"
                                     f"seqLength={frames}\nimWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n")
    background = np.linspace(60, 170, WIDTH)[None, :, None] + rng.normal(0, 6, (HEIGHT, WIDTH, 3))
    start = rng.uniform([40, 120], [WIDTH - 160, HEIGHT - 330], (people, 2))
    velocity = rng.uniform(-2, 2, (people, 2))
    heights = rng.uniform(140, 260, people)
    textures = [rng.integers(0, 255, (8, 4, 3), dtype=np.uint8) for _ in range(people)]
    lines = []
    for frame in range(1, frames + 1):
        image = Image.fromarray(np.clip(background + rng.normal(0, 2, background.shape), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for person in range(people):
            x, y = start[person] + velocity[person] * frame
            x, y = float(np.clip(x, 10, WIDTH - 130)), float(np.clip(y, 10, HEIGHT - 270))
            h = float(heights[person])
            w = h * 0.4
            image.paste(Image.fromarray(textures[person]).resize((int(w), int(h)), Image.NEAREST), (int(x), int(y)))
            draw.rectangle([x, y, x + w, y + h], outline=(0, 0, 0))
            lines.append(f"{frame},{person + 1},{x:.1f},{y:.1f},{w:.1f},{h:.1f},1,1,1\n")
        image.save(seq / "img1" / f"{frame:06d}.jpg", quality=92)
    (seq / "gt" / "gt.txt").write_text("".join(lines))
    return root


def make_footage(root: Path, frames: int, people: int) -> tuple[Path, str]:
    try:
        from builders.synth import generate
    except ImportError:
        return draw_footage(root, frames, people, seed=0), "drawn boxes (builders.synth not available)"
    generate("sports", root, videos=1, frames=frames, people=people, seed=0, width=WIDTH, height=HEIGHT, fps=FPS)
    return root, "builders.synth"


def crop_jobs(root: Path, recipe: Recipe) -> list[tuple[str, np.ndarray]]:
    """(frame path, (k, 4) regions) for every frame the build crops, from the same curation."""
    jobs = []
    for sequence in read_mot_root(root).sequences:
        tracklets, _ = curate(sequence.gt, sequence.width, sequence.height, sequence.frame_rate, recipe)
        frames = np.concatenate([t.frames for t in tracklets])
        regions = np.concatenate([crop_regions(t.boxes, recipe.crop_margin, sequence.width, sequence.height)
                                  for t in tracklets])
        for frame in np.unique(frames):
            jobs.append((str(sequence.frame_path(int(frame))), regions[frames == frame]))
    return jobs


def opencv_work(jobs: list[tuple[str, np.ndarray]], crop_size: tuple[int, int], quality: int) -> tuple[int, float]:
    """Bare decode + crop + resize + encode of the jobs; returns (crops, CPU seconds used)."""
    import cv2

    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}
    cpu = time.process_time()
    done = 0
    for path, regions in jobs:
        scale = decode_scale(regions, crop_size)
        done += len(encode_crops(cv2.imread(path, flags[scale]), regions, scale, crop_size, quality))
    return done, time.process_time() - cpu


def pillow_work(jobs: list[tuple[str, np.ndarray]], crop_size: tuple[int, int], quality: int) -> tuple[int, float]:
    """The same work with Pillow (decode, crop, bilinear resize, encode); returns (crops, CPU seconds)."""
    cpu = time.process_time()
    done = 0
    for path, regions in jobs:
        with Image.open(path) as image:
            image.load()
            for x0, y0, x1, y1 in regions.round().astype(int).tolist():
                crop = image.crop((x0, y0, x1, y1)).resize((crop_size[1], crop_size[0]), Image.BILINEAR)
                crop.save(io.BytesIO(), "JPEG", quality=quality)
                done += 1
    return done, time.process_time() - cpu


@dataclass(frozen=True)
class Rate:
    """Crops per wall-clock second, and per CPU second (which other load on shared cores does not lower)."""

    crops: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.crops / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.crops / self.cpu_s


def ceiling(pool, processes: int, jobs, recipe: Recipe) -> Rate:
    """Bare OpenCV work, frames dealt to ``processes`` processes of an already started pool."""
    slices = [jobs[i::processes] for i in range(processes)]
    start = time.perf_counter()
    results = pool.starmap(opencv_work, [(s, recipe.crop_size, recipe.jpeg_quality) for s in slices])
    wall = time.perf_counter() - start
    return Rate(sum(r[0] for r in results), wall, sum(r[1] for r in results))


def _cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (a build's pool is reaped when the build ends)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_build(root: Path, workers: int, recipe: Recipe) -> tuple[Rate, str]:
    out = Path(tempfile.mkdtemp(prefix="bench_build_"))
    try:
        cpu, start = _cpu_seconds(), time.perf_counter()
        result = build_dataset("sports", root, out / "ds", workers=workers, recipe=recipe, progress=False)
        rate = Rate(result.counts["crops"], time.perf_counter() - start, _cpu_seconds() - cpu)
        return rate, result.fingerprint
    finally:
        shutil.rmtree(out, ignore_errors=True)


def pillow_rate(jobs, recipe: Recipe) -> Rate:
    """Pillow on a fifth of the frames, in this process: the figure OpenCV is compared with."""
    start = time.perf_counter()
    crops, cpu = pillow_work(jobs[: max(1, len(jobs) // 5)], recipe.crop_size, recipe.jpeg_quality)
    return Rate(crops, time.perf_counter() - start, cpu)


def report(args: argparse.Namespace, origin: str, cores: int, frames_cropped: int, best: dict[str, Rate],
           fingerprints: set[str]) -> dict[str, object]:
    many = f"ceiling_{cores}_processes"
    return {
        "footage": {"origin": origin, "videos": 1, "frames": args.frames, "people": args.people,
                    "size": [WIDTH, HEIGHT], "frames_cropped": frames_cropped,
                    "crops": best["build_workers_1"].crops},
        "cores": cores,
        "crops_per_s": {key: round(rate.per_s, 1) for key, rate in best.items()},
        "crops_per_cpu_s": {key: round(rate.per_cpu_s, 1) for key, rate in best.items()},
        "build_fraction_of_ceiling": {
            "workers_1": round(best["build_workers_1"].per_s / best["ceiling_1_process"].per_s, 3),
            "workers_2": round(best["build_workers_2"].per_s / best[many].per_s, 3),
        },
        "build_cpu_efficiency_vs_ceiling": {
            "workers_1": round(best["build_workers_1"].per_cpu_s / best["ceiling_1_process"].per_cpu_s, 3),
            "workers_2": round(best["build_workers_2"].per_cpu_s / best[many].per_cpu_s, 3),
        },
        "same_fingerprint_for_all_builds": len(fingerprints) == 1,
        "parallelism": "one sequence split into frame chunks shared by the workers",
        "repeats": args.repeats,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }


def best_of(best: dict[str, Rate], key: str, rate: Rate) -> None:
    if key not in best or rate.per_s > best[key].per_s:
        best[key] = rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    recipe = Recipe(few_videos="test")  # one video: a test-only build crops every curated track
    workdir = Path(tempfile.mkdtemp(prefix="bench_footage_"))
    best: dict[str, Rate] = {}
    fingerprints: set[str] = set()
    try:
        root, origin = make_footage(workdir / "footage", args.frames, args.people)
        jobs = crop_jobs(root, recipe)
        with get_context("spawn").Pool(cores, initializer=limit_threads) as pool:
            pool.starmap(opencv_work, [(jobs[:2], recipe.crop_size, recipe.jpeg_quality)] * cores)  # warm up
            for _ in range(args.repeats):
                best_of(best, "ceiling_1_process", ceiling(pool, 1, jobs, recipe))
                best_of(best, f"ceiling_{cores}_processes", ceiling(pool, cores, jobs, recipe))
                for workers in (1, 2):
                    rate, fingerprint = timed_build(root, workers, recipe)
                    fingerprints.add(fingerprint)
                    best_of(best, f"build_workers_{workers}", rate)
        best_of(best, "pillow_1_process", pillow_rate(jobs, recipe))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report(args, origin, cores, len(jobs), best, fingerprints), indent=2))


if __name__ == "__main__":
    main()
