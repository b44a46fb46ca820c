"""Build a toolkit dataset directory from annotated footage: ``vreid build {sports,dance} --mot-root DIR``.

Each video is a unit of work. Its crops are written into a staged folder beside ``crops/<video>`` (frames are
cut into chunks so that several workers share even a single long video), its record (tracklet rows, content
hash of the crops, the signature of its inputs) is written last inside it, and the folder is renamed into place
only when complete. A re-run skips every video whose record matches its signature, removes leftover staged
folders, and rewrites the table and the manifest, which comes last: a dataset without ``manifest.json`` is
incomplete to the loader. The fingerprint hashes the recipe, the table and the crop bytes (through the
per-video hashes), so an interrupted and resumed build reaches the fingerprint of an uninterrupted one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from builders.crops import ChunkResult, CropChunk, FrameCrops, crop_regions, limit_threads, run_chunk
from builders.executor import check_executor, make_executor
from builders.mot import MotSequence, MotSource, TrackTable, read_mot_root
from builders.groups import read_groups, video_groups
from builders.recipe import (
    RECIPE_NAME,
    Recipe,
    VideoPlan,
    assign_splits,
    curate,
    curate_in_time,
    plan_time_split,
    plan_video,
)
from vreid_bench.datasets.toolkit import FORMAT_VERSION, TRACKLET_COLUMNS, linked
from vreid_bench.errors import ConfigError, UnknownNameError
from vreid_bench.io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    recover,
    restore_aside,
    staged_directory,
)

KINDS = ("sports", "dance")
CHUNK_FRAMES = 32
RECORD_NAME = "record.json"
DEFAULT_PROTOCOL = "video-scope"
RECREATION_NOTE = (
    f"Built by the vreid recipe {RECIPE_NAME} as a reproducible re-creation from the public sources; it is not the "
    "SportsVReID/DanceVReID dataset of the CG-CLIP paper, whose authors checked theirs by hand."
)
LICENCE_NOTES = MappingProxyType({
    "sportsmot": "Source in SportsMOT's layout: SportsMOT itself is CC BY-NC 4.0 (non-commercial use, with "
                 "attribution) and that licence applies to crops of it; footage made by `vreid synth` carries no "
                 "third-party terms.",
    "dancetrack": "Source in DanceTrack's layout: DanceTrack's annotations are CC BY 4.0 and its videos are for "
                  "non-commercial research only, and those terms apply to crops of it; footage made by "
                  "`vreid synth` carries no third-party terms.",
})
GENERIC_LICENCE = "The licence of the source footage applies to these crops."


@dataclass(frozen=True)
class BuildResult:
    """Where the dataset is, its fingerprint and counts, and which videos this run built or found complete."""

    path: Path
    name: str
    fingerprint: str
    counts: dict[str, int]
    built: tuple[str, ...]
    reused: tuple[str, ...]
    notes: tuple[str, ...]
    evaluation: dict[str, Any] | None = None  # tracking scores against ground truth (--eval-tracking)


@dataclass(frozen=True)
class VideoUnit:
    """One video's work: its plan, the chunks of crops still to write, and the signature of its inputs."""

    sequence: MotSequence
    plan: VideoPlan
    final_dir: Path
    signature: str
    rows: tuple[dict[str, object], ...]
    chunks: tuple[CropChunk, ...]

    @property
    def video(self) -> str:
        return self.plan.video

    @property
    def n_crops(self) -> int:
        return sum(chunk.n_crops for chunk in self.chunks)


# ------------------------------------------------------------------------------------------------ planning


def _signature(sequence: MotSequence, split: str, recipe: Recipe) -> str:
    """Hash of everything a video's output depends on; a finished video is reused only when it matches."""
    inputs = {"recipe": RECIPE_NAME, "params": recipe.params(), "video": sequence.name, "split": split,
              "size": [sequence.width, sequence.height], "fps": sequence.frame_rate, "frames": sequence.n_frames,
              "gt": sequence.gt.digest()}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _frame_digits(sequence: MotSequence) -> int:
    return max(6, len(str(sequence.n_frames)))


def _unit(sequence: MotSequence, split: str, recipe: Recipe, video_dir: Path) -> VideoUnit:
    """Curate and split one video (``time``: split in time), and lay out its crops as frame-ordered chunks."""
    if split == "time":
        train, test, counts = curate_in_time(sequence.gt, sequence.width, sequence.height, sequence.frame_rate,
                                             recipe)
        plan = plan_time_split(sequence.name, train, test, counts, recipe)
    else:
        tracklets, counts = curate(sequence.gt, sequence.width, sequence.height, sequence.frame_rate, recipe)
        plan = plan_video(sequence.name, split, tracklets, counts, recipe)
    digits = _frame_digits(sequence)
    rows = []
    frames, regions, outputs = [], [], []
    for t in plan.tracklets:
        folder = f"{t.track}/{t.tracklet_id}"
        rows.append({"tracklet_id": t.tracklet_id, "pid": t.pid, "camid": t.camid, "split": t.split,
                     "video": plan.video, "first_frame": int(t.frames[0]), "last_frame": int(t.frames[-1]),
                     "n_frames": len(t.frames), "dir": f"crops/{plan.video}/{folder}"})
        frames.append(t.frames)
        regions.append(crop_regions(t.boxes, recipe.crop_margin, sequence.width, sequence.height))
        outputs += [f"{folder}/{frame:0{digits}d}.jpg" for frame in t.frames.tolist()]
    chunks: tuple[CropChunk, ...] = ()
    if rows:
        all_frames = np.concatenate(frames)  # (M,)
        all_regions = np.concatenate(regions)  # (M, 4)
        order = np.argsort(all_frames, kind="stable")
        per_frame = _group_by_frame(sequence, all_frames[order], all_regions[order], [outputs[i] for i in order])
        step = len(per_frame) if sequence.video_file is not None else CHUNK_FRAMES
        chunks = tuple(CropChunk(plan.video, tuple(per_frame[i:i + step]), video_dir, recipe.crop_size,
                                 recipe.jpeg_quality, sequence.video_file) for i in range(0, len(per_frame), step))
    return VideoUnit(sequence, plan, video_dir, _signature(sequence, split, recipe), tuple(rows), chunks)


def _group_by_frame(sequence: MotSequence, frames: np.ndarray, regions: np.ndarray,
                    outputs: list[str]) -> list[FrameCrops]:
    """Frame-sorted crops -> one FrameCrops per frame (so each frame is decoded once)."""
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
    ends = np.r_[starts[1:], len(frames)]
    return [FrameCrops(frame=int(frames[a]),
                       image=None if sequence.video_file is not None else sequence.frame_path(int(frames[a])),
                       regions=regions[a:b], outputs=tuple(outputs[a:b]))
            for a, b in zip(starts, ends)]


# ---------------------------------------------------------------------------------------- output folder


def _prepare_output(out: Path) -> None:
    """Make ``out`` ready for a (resumed) build: refuse foreign folders, mark incomplete, drop leftovers."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the dataset")
    if out.is_dir() and any(out.iterdir()) and not any((out / n).exists() for n in ("manifest.json", "crops")):
        raise ConfigError(f"--out {out} is a non-empty folder that is not a vreid dataset; give a new or empty folder")
    recover(out)  # a review apply a crash interrupted is finished first
    (out / "crops").mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    for aside in (out / "crops").glob(".*.aside"):  # a video swap killed between its renames: the old copy back
        restore_aside(aside.with_name(aside.name[1:-len(".aside")]))
    for leftover in (out / "crops").glob(".*.partial"):
        shutil.rmtree(leftover, ignore_errors=True)
    for folder in (out, out / "attributes"):
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)


def _remove_stale(out: Path, videos: set[str]) -> list[str]:
    """Delete videos of an earlier build that are not part of this one; returns their names."""
    stale = sorted(p.name for p in (out / "crops").iterdir() if p.is_dir() and p.name not in videos)
    for video in stale:
        shutil.rmtree(out / "crops" / video)
        (out / "attributes" / f"{video}.json").unlink(missing_ok=True)
    return stale


def _read_record(video_dir: Path) -> dict | None:
    path = video_dir / RECORD_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def crops_digest(crops: list[tuple[str, str]]) -> str:
    lines = "".join(f"{rel} {digest}\n" for rel, digest in sorted(crops))
    return hashlib.sha256(lines.encode()).hexdigest()


def _record(unit: VideoUnit, crops: list[tuple[str, str]]) -> dict[str, object]:
    return {"video": unit.video, "split": unit.plan.split, "signature": unit.signature, "rows": list(unit.rows),
            "crops": len(crops), "crops_sha256": crops_digest(crops), "counts": unit.plan.counts}


# ---------------------------------------------------------------------------------------------- execution


def _completed(futures: set[Future[ChunkResult]]) -> Iterator[ChunkResult]:
    pending = futures
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield future.result()


class _Stages:
    """Staged folders of the videos in progress: committed one by one, all removed if the build fails."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[AbstractContextManager[Path], Path]] = {}

    def open(self, video: str, final: Path) -> Path:
        context = staged_directory(final)
        self._open[video] = (context, context.__enter__())
        return self._open[video][1]

    def commit(self, video: str) -> None:
        context, _ = self._open.pop(video)
        context.__exit__(None, None, None)

    def abort_all(self) -> None:
        error = sys.exc_info()
        while self._open:
            _, (context, _) = self._open.popitem()
            context.__exit__(*error)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled)


def _run_units(units: list[VideoUnit], workers: int, progress: bool, executor: str = "process",
               ray_address: str | None = None) -> dict[str, dict]:
    """Write every unit's crops; each video moves into place with its record as soon as its last chunk is done.

    Chunks run in this process (the process executor with one worker), in a forked pool, or as Ray tasks. Each
    task writes its crops into the staged folder itself and returns only their hashes: every executor writes the
    same bytes through the same code, and a Ray build across machines needs ``out`` on a filesystem all nodes share.
    """
    stages = _Stages()
    by_video = {unit.video: unit for unit in units}
    remaining = {unit.video: len(unit.chunks) for unit in units}
    crops: dict[str, list[tuple[str, str]]] = {unit.video: [] for unit in units}
    records: dict[str, dict] = {}

    def finish(unit: VideoUnit) -> None:
        records[unit.video] = _record(unit, crops[unit.video])
        atomic_write_json(staged[unit.video] / RECORD_NAME, records[unit.video])  # last inside the folder
        stages.commit(unit.video)

    try:
        with ExitStack() as stack:
            staged = {unit.video: stages.open(unit.video, unit.final_dir) for unit in units}
            jobs = [replace(chunk, out_dir=staged[unit.video]) for unit in units for chunk in unit.chunks]
            if executor == "process" and workers == 1:
                results: Iterator[ChunkResult] = map(run_chunk, jobs)
            else:  # entered before the progress bar starts its thread, which forked workers must not inherit
                pool = stack.enter_context(make_executor(executor, workers, ray_address, initializer=limit_threads))
                results = _completed({pool.submit(run_chunk, job) for job in jobs})
            bar = stack.enter_context(_progress(progress))
            video_task = bar.add_task("videos", total=len(units))
            crop_task = bar.add_task("crops", total=sum(unit.n_crops for unit in units))
            for unit in units:
                if not unit.chunks:
                    finish(unit)
                    bar.advance(video_task)
            for result in results:
                crops[result.video] += result.crops
                bar.advance(crop_task, len(result.crops))
                remaining[result.video] -= 1
                if remaining[result.video] == 0:
                    finish(by_video[result.video])
                    bar.advance(video_task)
    except BaseException:
        stages.abort_all()  # after the pool has stopped, so no worker writes into a removed folder
        raise
    return records


# ----------------------------------------------------------------------------------------------- dataset


def tracklet_table(records: list[dict]) -> str:
    """tracklets.csv text: the rows of every video, in source order."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TRACKLET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerows(record["rows"])
    return buffer.getvalue()


def fingerprint(recipe: Recipe, table: str, records: list[dict], links: Mapping[str, str] | None = None) -> str:
    """sha256 over the recipe, the tracklet table, each video's crop hash and the identity links across videos
    (a review's): equal for equal content."""
    sha = hashlib.sha256()
    sha.update(json.dumps({"name": RECIPE_NAME, "params": recipe.params()}, sort_keys=True).encode())
    sha.update(table.encode())
    for record in records:
        sha.update(f"{record['video']} {record['crops_sha256']}\n".encode())
    if links:
        sha.update(json.dumps(dict(links), sort_keys=True).encode())
    return sha.hexdigest()


def dataset_counts(records: list[dict], n_skipped: int, links: Mapping[str, str] | None = None) -> dict[str, int]:
    rows = [row for record in records for row in record["rows"]]
    links = links or {}
    counts = {
        "videos": len(records),
        "videos_train": sum(r["split"] == "train" for r in records),
        "videos_test": sum(r["split"] == "test" for r in records),
        "videos_split_in_time": sum(r["split"] == "time" for r in records),
        "identities_train": len({linked(row["pid"], links) for row in rows if row["split"] == "train"}),
        "identities_test": len({linked(row["pid"], links) for row in rows if row["split"] != "train"}),
        "tracklets_train": sum(row["split"] == "train" for row in rows),
        "tracklets_query": sum(row["split"] == "query" for row in rows),
        "tracklets_gallery": sum(row["split"] == "gallery" for row in rows),
        "crops": sum(int(r["crops"]) for r in records),
        "sequences_skipped": n_skipped,
    }
    for key in ("boxes", "boxes_small", "boxes_border", "boxes_overlapped", "tracks", "tracks_kept",
                "test_identities_single_camera"):
        counts[key] = sum(int(r["counts"].get(key, 0)) for r in records)
    return counts


def _source_entry(sequence: MotSequence, split: str) -> dict[str, object]:
    return {"video": sequence.name, "split": split, "source_split": sequence.split, "path": str(sequence.path),
            "frames": sequence.n_frames, "fps": sequence.frame_rate, "size": [sequence.width, sequence.height]}


# The published benchmark a build re-creates, by its kind and its source's layout: reported numbers sit beside it.
BENCHMARKS = {("sports", "sportsmot"): "sportsvreid", ("dance", "dancetrack"): "dancevreid"}


def footage_kind(sequences: Sequence[MotSequence]) -> str:
    """``synthetic`` when every sequence was rendered by ``vreid synth`` (its attribute sheet names the
    generator), else ``real``."""
    def rendered(sequence: MotSequence) -> bool:
        if sequence.attributes_path is None:
            return False
        try:
            return "generator" in json.loads(sequence.attributes_path.read_text())
        except (OSError, ValueError):
            return False

    return "synthetic" if sequences and all(rendered(s) for s in sequences) else "real"


def benchmark_of(kind: str, layout: str, footage: str) -> str | None:
    """``sportsvreid`` for real SportsMOT footage built as sports, ``dancevreid`` for real DanceTrack as dance;
    None otherwise (synthetic footage, other sources): the papers' numbers are never matched to those."""
    return BENCHMARKS.get((kind, layout)) if footage == "real" else None


def _copy_attributes(out: Path, sequences: tuple[MotSequence, ...]) -> None:
    """Known per-identity attributes (synthetic footage has them) go beside the crops for the captioner."""
    for sequence in sequences:
        if sequence.attributes_path is not None:
            atomic_write_bytes(out / "attributes" / f"{sequence.name}.json", sequence.attributes_path.read_bytes())


def _evaluate(source: MotSource, units: Sequence[VideoUnit],
              ground_truth: Mapping[str, tuple[TrackTable, np.ndarray]]) -> dict[str, Any]:
    """TrackEval scores of the source's tracks and the purity of the built identities, per video and overall."""
    from builders.tracking_eval import evaluate_tracking, identity_counts, identity_quality

    by_name = {sequence.name: sequence for sequence in source.sequences}
    scored = {video: (by_name[video].gt, truth, frames) for video, (truth, frames) in ground_truth.items()}
    counts = {unit.video: identity_counts(list(unit.plan.tracklets), ground_truth[unit.video][0])
              for unit in units if unit.video in ground_truth}
    return {"tracking": evaluate_tracking(scored),
            "identities": {"combined": identity_quality(list(counts.values())),
                           "per_video": {video: identity_quality([c]) for video, c in counts.items()}}}


def _check_time_split(units: Sequence[VideoUnit]) -> None:
    """A time split must leave training and test identities; say what to do where it cannot."""
    rows = [row for unit in units for row in unit.rows]
    if not any(row["split"] == "train" for row in rows) or not any(row["split"] != "train" for row in rows):
        missing = "training" if not any(row["split"] == "train" for row in rows) else "test"
        raise ConfigError(f"split in time, this footage leaves no {missing} identities (the same people are there "
                          "before and after the cut): add videos of other matches or scenes, move the cut "
                          "(--time-split-at), or build a test-only dataset (--few-videos test)")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownNameError(f"unknown footage kind {kind!r}: use one of {', '.join(KINDS)}")


def build_dataset(kind: str, mot_root: str | os.PathLike[str], out: str | os.PathLike[str], name: str | None = None,
                  workers: int = 1, recipe: Recipe = Recipe(), progress: bool = True, executor: str = "process",
                  ray_address: str | None = None, groups: str | os.PathLike[str] | None = None) -> BuildResult:
    """Build (or resume building) a dataset in ``out`` from MOT-annotated footage under ``mot_root``.

    Every input is read and checked before anything is written, so a malformed source writes nothing.
    ``executor`` is "process" (``workers`` processes on this machine) or "ray" (tasks on a Ray cluster, see
    ``builders.executor.make_executor``); both give the same dataset and fingerprint.
    """
    _check_kind(kind)
    check_executor(executor, workers, ray_address)
    return build_from_source(kind, read_mot_root(mot_root), out, name, workers, recipe, progress,
                             executor=executor, ray_address=ray_address,
                             groups=read_groups(groups) if groups is not None else None)


def build_from_source(kind: str, source: MotSource, out: str | os.PathLike[str], name: str | None = None,
                      workers: int = 1, recipe: Recipe = Recipe(), progress: bool = True,
                      identities_verified: bool = True, executor: str = "process",
                      ray_address: str | None = None, failures: Sequence[Mapping[str, str]] = (),
                      tracking: Mapping[str, object] | None = None,
                      groups: Mapping[str, str] | None = None,
                      ground_truth: Mapping[str, tuple[TrackTable, np.ndarray]] | None = None) -> BuildResult:
    """Build from sequences already read (ground truth, or tracker output with ``identities_verified=False``).

    ``failures`` (video, path, error) are inputs that could not be read, recorded in the manifest; ``tracking``
    describes how tracker output was made (detector, tracker, sampling) and is recorded beside them. ``groups``
    (video -> group, a ``--groups`` file) keeps videos that share people on one side of the split.
    ``ground_truth`` (video -> (true tracks, frames read)) scores the source's tracks and the built identities
    against the truth (:mod:`builders.tracking_eval`); the scores go into the manifest's ``tracking``.
    """
    out = Path(out)
    names = [s.name for s in source.sequences]
    split_plan = assign_splits([(s.name, s.split) for s in source.sequences], recipe,
                               video_groups(names, source.layout, groups))
    splits = split_plan.splits
    units = [_unit(s, splits[s.name], recipe, out / "crops" / s.name) for s in source.sequences]
    if split_plan.by == "time":
        _check_time_split(units)
    evaluation = _evaluate(source, units, ground_truth) if ground_truth else None
    _prepare_output(out)
    stale = _remove_stale(out, {unit.video for unit in units})
    records = {unit.video: record for unit in units
               if (record := _read_record(unit.final_dir)) is not None and record.get("signature") == unit.signature}
    todo = [unit for unit in units if unit.video not in records]
    built = {unit.video for unit in todo}
    records.update(_run_units(todo, workers, progress, executor, ray_address))
    _copy_attributes(out, source.sequences)

    ordered = [records[unit.video] for unit in units]
    table = tracklet_table(ordered)
    atomic_write_text(out / "tracklets.csv", table)
    digest = fingerprint(recipe, table, ordered)
    counts = dataset_counts(ordered, len(source.notes))
    notes = tuple(source.notes) + tuple(f"{video}: not in this build, removed" for video in stale)
    if split_plan.moved:
        notes += (f"{len(split_plan.moved)} clip(s) moved to their group's split so that no group spans train and "
                  f"test: {', '.join(split_plan.moved)}",)
    if split_plan.by == "time":
        notes += (f"too few videos or groups for a train and a test side: each of the {len(units)} video(s) is "
                  "split in time (training identities first, test identities after a gap)",)
    footage = footage_kind(source.sequences)
    manifest = {
        "name": name or out.resolve().name,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "footage": footage,
        "benchmark": benchmark_of(kind, source.layout, footage),
        "recipe": {"name": RECIPE_NAME, "params": recipe.params()},
        "sources": [_source_entry(unit.sequence, unit.plan.split) for unit in units],
        "source_layout": source.layout,
        "licence": f"{LICENCE_NOTES.get(source.layout, GENERIC_LICENCE)} {RECREATION_NOTE}",
        "counts": counts,
        "fingerprint": digest,
        "default_protocol": DEFAULT_PROTOCOL,
        "split": split_plan.record(),
        "pseudo_cameras": True,  # cameras are time segments of one footage (recipe rule 3), not camera views
        "identities_verified": identities_verified,
        "failures": [dict(failure) for failure in failures],
        "notes": list(notes),
    }
    if tracking is not None:
        manifest["tracking"] = dict(tracking)
    if evaluation is not None:
        manifest.setdefault("tracking", {})["evaluation"] = evaluation
    atomic_write_json(out / "manifest.json", manifest)  # last: its presence marks the dataset complete
    return BuildResult(path=out, name=manifest["name"], fingerprint=digest, counts=counts,
                       built=tuple(unit.video for unit in todo),
                       reused=tuple(unit.video for unit in units if unit.video not in built), notes=notes,
                       evaluation=evaluation)
