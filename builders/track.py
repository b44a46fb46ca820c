"""Tracking raw footage with boxmot, and the build from it: ``vreid build {sports,dance} --videos ...``.

Trackers are created by name from boxmot's registry (``bytetrack`` by default; ``ocsort``, ``botsort``,
``deepocsort``, ``strongsort`` ...) with its per-tracker defaults, overridden by ``--tracker-opt key=value``.
Appearance trackers embed each box with a ReID model; its weights are given by path (``--reid-weights``) and never
downloaded behind the user's back.

Per video: probe, detect (YOLO or a ``det.txt``), track, and write the tracks to ``<out>/tracks/<video>.txt`` in
the MOT ground-truth format, with the signature of everything they depend on beside them. The tracks then
stand in for ground truth: ``build_from_source`` curates them with the recipe, marked ``identities_verified:
false`` until a review applies. A re-run reuses tracks whose signature matches, so an interrupted build of long
footage does not detect again. A video that cannot be read is listed in the manifest's ``failures``; the others
are built.

With ``--stride K`` the frame numbers stay those of the source, K apart, so the recipe's ``max_gap`` (missing
frames bridged within a run) is scaled to count sampled frames: ``K * (max_gap + 1) - 1`` source frames, the value
the manifest records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from builders.build import KINDS, BuildResult, _prepare_output, build_from_source
from builders.executor import check_executor, make_executor
from builders.detect import DetectionFile, DetectorConfig, YoloDetector, detection_files, resolve_weights
from builders.tracking_eval import ground_truth_path, read_ground_truth
from builders.mot import MotSequence, MotSource, TrackTable, make_track_table, read_gt
from builders.recipe import Recipe
from builders.video import DEFAULT_FRAME_RATE, Sampling, VideoInfo, VideoInput, VideoReadError, collect_videos, probe
from builders.video import read_frames
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, UnknownNameError
from vreid_bench.io import atomic_write_json, atomic_write_text

DEFAULT_TRACKER = "bytetrack"
TRACKS_DIR = "tracks"
TRACKS_FORMAT_VERSION = 1
FRAMES_PER_LOOKUP = 256  # frames per step when detections come from a file (progress granularity only)
APPEARANCE_SWITCH = "use_embeddings"  # boxmot's option that turns a tracker's appearance cue off
Frame = tuple[int, np.ndarray | None]  # (frame number, BGR image or None where nothing needs the pixels)
_NOT_OPTIONS = frozenset({"self", "args", "kwargs", "is_obb", "per_class", "class_ids", "class_names", "reid_model",
                          "reid_weights", "device", "half", "reid_preprocess"})


@dataclass(frozen=True)
class TrackerConfig:
    """A boxmot tracker by name, its option overrides, and ReID weights for the appearance trackers."""

    name: str = DEFAULT_TRACKER
    options: tuple[tuple[str, object], ...] = ()
    reid_weights: Path | None = None
    device: str = "cpu"  # where the ReID model of an appearance tracker runs

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name.strip().lower())
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))


@dataclass(frozen=True)
class FootageConfig:
    """How footage becomes tracks: the detector (or precomputed detections), the tracker, the frames read."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    detections: Path | None = None  # a det.txt or a folder of them; replaces the detector
    sampling: Sampling = field(default_factory=Sampling)
    frame_rate: float = DEFAULT_FRAME_RATE  # of folders of frames, which carry none

    def __post_init__(self) -> None:
        if self.frame_rate <= 0:
            raise ConfigError(f"--fps {self.frame_rate} is invalid; give the frame rate of the frame folders (> 0)")


# ----------------------------------------------------------------------------------------------- trackers


def _definitions() -> dict[str, object]:
    from boxmot.trackers.registry import TRACKER_DEFINITIONS
    from boxmot.trackers.specs import TrackerFamily

    return {name: d for name, d in TRACKER_DEFINITIONS.items() if d.capabilities.family is TrackerFamily.BOX}


def tracker_names() -> tuple[str, ...]:
    """boxmot's box trackers, the ones that work from detections."""
    return tuple(sorted(_definitions()))


def appearance_trackers() -> tuple[str, ...]:
    """Trackers that can match people by a ReID embedding (and then need ReID weights)."""
    return tuple(sorted(name for name, d in _definitions().items() if d.capabilities.accepts_embeddings))


def parse_tracker_options(pairs: Sequence[str]) -> tuple[tuple[str, object], ...]:
    """``key=value`` strings -> (key, value) pairs; values read as YAML scalars (0.5, 30, true, iou)."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tracker-opt {pair!r} is not key=value; write e.g. --tracker-opt track_buffer=60")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--tracker-opt {pair!r}: the value is not a number, true/false or a word; "
                              "quote it or fix it") from None
        options[key.strip()] = tuple(value) if isinstance(value, list) else value
    return tuple(sorted(options.items()))


def tracker_options(name: str) -> set[str]:
    """Options a tracker takes: its configuration's keys and its constructor's parameters."""
    from boxmot.trackers.config import load_tracker_defaults
    from boxmot.trackers.registry import get_tracker_class

    known = set(load_tracker_defaults(name))
    for klass in get_tracker_class(name).__mro__:
        if "__init__" in vars(klass):
            known |= set(inspect.signature(vars(klass)["__init__"]).parameters)
    return known - _NOT_OPTIONS


def _check_name(name: str) -> None:
    if name not in _definitions():
        raise UnknownNameError(f"unknown tracker {name!r}: use one of {', '.join(tracker_names())} (boxmot)")


def _attach_reid(tracker: object, config: TrackerConfig) -> None:
    """Give an appearance tracker its ReID model from a local file, or say how to supply one."""
    from boxmot.reid.core.formats import resolve_reid_format
    from boxmot.reid.specs import ReIDEncoderSpec

    if config.reid_weights is None:
        switch = (f", or turn appearance off with --tracker-opt {APPEARANCE_SWITCH}=false"
                  if APPEARANCE_SWITCH in tracker_options(config.name) else "")
        motion = ", ".join(n for n in tracker_names() if n not in appearance_trackers())
        raise ConfigError(f"--tracker {config.name} matches people by appearance and needs ReID weights: pass "
                          f"--reid-weights PATH (a boxmot ReID model such as osnet_x0_25_msmt17.pt){switch}, or use "
                          f"a motion-only tracker ({motion})")
    path = Path(config.reid_weights).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"--reid-weights {config.reid_weights}: no such file; give the path of a boxmot ReID model "
                          "(e.g. osnet_x0_25_msmt17.pt)")
    try:
        backend = resolve_reid_format(path).id
    except ValueError:
        raise ConfigError(f"--reid-weights {config.reid_weights}: not a ReID model format boxmot reads; give a "
                          ".pt, .onnx, .torchscript or exported model") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    tracker.configure_reid(ReIDEncoderSpec(backend=backend, artifact=str(path), artifact_sha256=digest,
                                           device=config.device))


def _quiet_boxmot() -> None:
    """boxmot logs every tracker's parameters at INFO, in between the build's progress bars."""
    from boxmot.utils import logger  # configures the logger on first import, so it comes first

    logger.setLevel(logging.WARNING)


def create_tracker(config: TrackerConfig, frame_rate: float):
    """A fresh boxmot tracker for one video; ``frame_rate`` (of the frames it sees) sizes its track buffers."""
    from boxmot.trackers.factory import create_tracker as boxmot_create
    from boxmot.trackers.specs import TrackerSpec

    _quiet_boxmot()
    _check_name(config.name)
    known = tracker_options(config.name)
    options = dict(config.options)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"--tracker-opt {unknown[0]}: {config.name} has no such option; it takes "
                          f"{', '.join(sorted(known))}")
    if "frame_rate" in known and "frame_rate" not in options:
        options["frame_rate"] = max(1, round(frame_rate))
    try:
        tracker = boxmot_create(TrackerSpec(config.name, options=tuple(sorted(options.items()))))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--tracker {config.name}: {str(exc).splitlines()[0]}; fix the --tracker-opt values") \
            from None
    if getattr(tracker, "generates_embeddings", False):
        _attach_reid(tracker, config)
    elif config.reid_weights is not None:
        raise ConfigError(f"--reid-weights is used only by appearance trackers ({', '.join(appearance_trackers())}) "
                          f"with appearance on, not by {config.name}; drop it or pick one of them")
    return tracker


def _needs_images(tracker: object) -> bool:
    requirements = tracker.requirements
    return bool(requirements.frame or requirements.embeddings)


def run_tracker(tracker: object, steps: Iterable[tuple[int, np.ndarray, np.ndarray | None]]) -> TrackTable:
    """Feed (frame, detections (N, 6), BGR image or None) in frame order; the tracks as a TrackTable."""
    frames, tracks, boxes = [], [], []
    for frame, detections, image in steps:
        out = tracker.update(detections, image)  # (M, 8) x1, y1, x2, y2, id, conf, cls, det_idx
        if len(out):
            frames.append(np.full(len(out), frame, dtype=np.int64))
            tracks.append(out[:, 4].astype(np.int64))
            boxes.append(np.concatenate([out[:, :2], out[:, 2:4] - out[:, :2]], axis=1))  # (M, 4) l, t, w, h
    if not frames:
        return make_track_table(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 4)))
    box = np.concatenate(boxes)
    keep = (box[:, 2] > 0) & (box[:, 3] > 0)  # a Kalman prediction can collapse a box
    return make_track_table(np.concatenate(frames)[keep], np.concatenate(tracks)[keep], box[keep])


# ------------------------------------------------------------------------------------------ one video


def _batches(items: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    while batch := list(islice(items, size)):
        yield batch


def track_video(video: VideoInput, info: VideoInfo, detections: YoloDetector | DetectionFile,
                config: FootageConfig, advance: Callable[[int], None] = lambda n: None) -> TrackTable:
    """Detect and track one video's sampled frames; images are decoded only when something needs them."""
    frame_numbers = config.sampling.frame_numbers(info.n_frames)
    tracker = create_tracker(config.tracker, info.frame_rate / config.sampling.stride)
    if _needs_images(tracker) or detections.needs_images:
        images: Iterator[Frame] = read_frames(video, frame_numbers)
    else:
        images = ((number, None) for number in frame_numbers.tolist())
    batch = config.detector.batch if detections.needs_images else FRAMES_PER_LOOKUP

    def steps() -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        for chunk in _batches(images, batch):
            numbers = [number for number, _ in chunk]
            pictures = [image for _, image in chunk]
            yield from zip(numbers, detections.detect(numbers, pictures), pictures)
            advance(len(chunk))

    return run_tracker(tracker, steps())


# ------------------------------------------------------------------------------------ tracks on disk


def _file_identity(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _source_identity(video: VideoInput, detections: Path | None, config: FootageConfig) -> dict[str, object]:
    """What a video's tracks depend on besides the tracker: the footage and the detections."""
    files = video.frame_files if video.is_frame_folder else (video.path,)
    footage = hashlib.sha256(json.dumps([_file_identity(f) for f in files]).encode()).hexdigest()
    if detections is not None:
        return {"footage": footage, "detections": hashlib.sha256(detections.read_bytes()).hexdigest()}
    weights = Path(config.detector.weights).expanduser()
    detector = {**dataclasses.asdict(config.detector), "weights_file": _file_identity(weights) if weights.is_file()
                else None}
    for unused in ("batch", "device"):  # do not change what is found
        detector.pop(unused)
    return {"footage": footage, "detector": detector}


def _tracks_signature(video: VideoInput, detections: Path | None, config: FootageConfig) -> str:
    tracker = config.tracker
    reid = _file_identity(Path(tracker.reid_weights)) if tracker.reid_weights is not None else None
    inputs = {"version": TRACKS_FORMAT_VERSION, "source": _source_identity(video, detections, config),
              "sampling": dataclasses.asdict(config.sampling), "frame_rate": config.frame_rate,
              "tracker": {"name": tracker.name, "options": [list(pair) for pair in tracker.options], "reid": reid}}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _tracks_text(table: TrackTable) -> str:
    """MOT ground-truth lines (frame, id, left, top, width, height, 1, -1, -1) in frame order."""
    order = np.lexsort((table.track, table.frame))
    return "".join(f"{f},{t},{l:.2f},{u:.2f},{w:.2f},{h:.2f},1,-1,-1\n"
                   for f, t, (l, u, w, h) in zip(table.frame[order].tolist(), table.track[order].tolist(),
                                                  table.box[order].tolist()))


def _cached(folder: Path, name: str, signature: str) -> tuple[TrackTable, VideoInfo] | None:
    try:
        record = json.loads((folder / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("signature") != signature or not (folder / f"{name}.txt").is_file():
        return None
    info = VideoInfo(**record["info"])
    return read_gt(folder / f"{name}.txt", info.n_frames)[0], info


def _store(folder: Path, name: str, signature: str, table: TrackTable, info: VideoInfo) -> TrackTable:
    """Write the tracks, then their record (its presence marks them complete); returns them as read back."""
    atomic_write_text(folder / f"{name}.txt", _tracks_text(table))
    atomic_write_json(folder / f"{name}.json", {"signature": signature, "info": dataclasses.asdict(info)})
    return read_gt(folder / f"{name}.txt", info.n_frames)[0]  # the same rounding whether fresh or reused


def _prune(folder: Path, keep: set[str]) -> None:
    """Tracks of videos no longer in the build are removed with their crops."""
    for path in folder.iterdir():
        leftover = path.name.startswith(".") and path.suffix == ".tmp"  # an interrupted atomic write
        if leftover or (path.suffix in (".txt", ".json") and path.stem not in keep):
            path.unlink()


# ------------------------------------------------------------------------------------------------ the build


def sampled_recipe(recipe: Recipe, sampling: Sampling) -> Recipe:
    """The recipe with ``max_gap`` counted in sampled frames (source frame numbers are ``stride`` apart)."""
    if sampling.stride == 1:
        return recipe
    return dataclasses.replace(recipe, max_gap=sampling.stride * (recipe.max_gap + 1) - 1)


def _sequence(video: VideoInput, info: VideoInfo, table: TrackTable, tracks_file: Path,
              sampling: Sampling) -> MotSequence:
    frame_files = ({n: video.frame_files[n - 1] for n in sampling.frame_numbers(info.n_frames).tolist()}
                   if video.is_frame_folder else {})
    return MotSequence(name=video.name, split=None, path=video.path, frame_rate=info.frame_rate, width=info.width,
                       height=info.height, n_frames=info.n_frames, gt=table, gt_path=tracks_file,
                       frame_files=frame_files, video_file=None if video.is_frame_folder else video.path)


class _Detections:
    """The detection source of each video; the YOLO model is loaded once, and only if some video needs it."""

    def __init__(self, config: FootageConfig, videos: Sequence[VideoInput]) -> None:
        self.config = config
        if config.detections is not None and str(config.detections) == PUBLIC_DETECTIONS:
            self.files: dict[str, Path] | None = public_detection_files(videos)
        else:
            self.files = (detection_files(config.detections, [v.name for v in videos])
                          if config.detections is not None else None)
        if self.files is None:
            resolve_weights(config.detector.weights)  # missing weights fail now, not after the first video
        self._yolo: YoloDetector | None = None

    def file_for(self, video: VideoInput) -> Path | None:
        return None if self.files is None else self.files[video.name]

    def source_for(self, video: VideoInput) -> YoloDetector | DetectionFile:
        if self.files is not None:
            return DetectionFile(self.files[video.name])
        if self._yolo is None:
            self._yolo = YoloDetector(self.config.detector)
        return self._yolo

    def describe(self) -> dict[str, object]:
        if self.files is not None:
            return {"detections": str(self.config.detections)}
        detector = self.config.detector
        return {"detector": detector.weights, "classes": list(detector.classes), "conf": detector.conf,
                "imgsz": detector.imgsz}


def _track_one(video: VideoInput, detections: _Detections, folder: Path, bar: Progress) -> tuple[TrackTable, VideoInfo]:
    """Tracks of one video, reused from ``folder`` when nothing they depend on has changed."""
    config = detections.config
    signature = _tracks_signature(video, detections.file_for(video), config)
    cached = _cached(folder, video.name, signature)
    if cached is not None:
        return cached
    info = probe(video, config.frame_rate)
    source = detections.source_for(video)
    if isinstance(source, DetectionFile) and source.last_frame() > info.n_frames:
        raise DatasetFormatError(f"{source.path}: detections reach frame {source.last_frame()} but {video.path} has "
                                 f"{info.n_frames} frames; give the detections of this video")
    task = bar.add_task(video.name, total=len(config.sampling.frame_numbers(info.n_frames)))
    table = track_video(video, info, source, config, lambda n: bar.advance(task, n))
    return _store(folder, video.name, signature, table, info), info


def _progress_bar(progress: bool) -> Progress:
    return Progress(TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not progress)


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _share_cores(workers: int) -> Callable[[], None]:
    """Worker initializer: the cores split between the workers, so parallel detectors do not oversubscribe."""
    return partial(_set_torch_threads, max(1, (os.cpu_count() or 1) // workers))


def _track_in_worker(video: VideoInput, footage: FootageConfig, folder: Path) -> tuple[TrackTable, VideoInfo]:
    """One video's tracks in a worker process or Ray task (its own detector; no progress bar)."""
    with _progress_bar(False) as bar:
        return _track_one(video, _Detections(footage, [video]), folder, bar)


def _track_all(inputs: Sequence[VideoInput], detections: _Detections, folder: Path, workers: int, executor: str,
               ray_address: str | None, progress: bool) -> dict[str, tuple[TrackTable, VideoInfo] | VideoReadError]:
    """Tracks of every video: here, one after the other, or one task per video when there are workers to share.

    A video that cannot be read gives its ``VideoReadError`` instead of tracks. Tracks of a video are the same
    whichever process makes them (the tracker is deterministic given the detections).
    """
    results: dict[str, tuple[TrackTable, VideoInfo] | VideoReadError] = {}
    parallel = len(inputs) > 1 and (workers > 1 or executor == "ray")
    with _progress_bar(progress) as bar:
        if not parallel:
            for video in inputs:
                try:
                    results[video.name] = _track_one(video, detections, folder, bar)
                except VideoReadError as exc:
                    results[video.name] = exc
            return results
        task = bar.add_task("tracking", total=len(inputs))
        with make_executor(executor, min(workers, len(inputs)), ray_address, initializer=_share_cores(workers),
                           fresh=True) as pool:
            futures = {video.name: pool.submit(_track_in_worker, video, detections.config, folder)
                       for video in inputs}
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except VideoReadError as exc:
                    results[name] = exc
                bar.advance(task)
    return results


def build_from_videos(kind: str, videos: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                      footage: FootageConfig = FootageConfig(), name: str | None = None, workers: int = 1,
                      recipe: Recipe = Recipe(), progress: bool = True, executor: str = "process",
                      ray_address: str | None = None, groups: Mapping[str, str] | None = None,
                      eval_tracking: bool = False) -> BuildResult:
    """Build (or resume) a dataset in ``out`` from raw footage: detect, track, then the MOT builder's recipe.

    ``eval_tracking`` scores the tracks against the footage's ground truth (:mod:`builders.tracking_eval`) and
    records the scores in the manifest; footage without ground truth is a one-line error.

    Inputs, detections and the tracker are checked before any video is processed; a video that cannot be read
    is listed in the manifest's ``failures`` and the others are built. With one worker, detection and tracking
    run in this process (torch uses every core); with more, or ``executor="ray"``, each video is detected and
    tracked as its own task (spawned processes sharing the cores, or Ray tasks), and the crops are then
    distributed as in ``build_dataset``. Output is identical whichever way it runs.
    """
    if kind not in KINDS:
        raise UnknownNameError(f"unknown footage kind {kind!r}: use one of {', '.join(KINDS)}")
    check_executor(executor, workers, ray_address)
    inputs = collect_videos(videos)
    truths = _ground_truths(inputs) if eval_tracking else {}
    detections = _Detections(footage, inputs)
    create_tracker(footage.tracker, DEFAULT_FRAME_RATE)  # a bad tracker setting fails now, not after detection
    out = Path(out)
    _prepare_output(out)
    folder = out / TRACKS_DIR
    folder.mkdir(exist_ok=True)
    tracked = _track_all(inputs, detections, folder, workers, executor, ray_address, progress)
    sequences, failures = [], []
    for video in inputs:
        result = tracked[video.name]
        if isinstance(result, VideoReadError):
            failures.append({"video": video.name, "path": str(video.path), "error": str(result)})
            continue
        table, info = result
        sequences.append(_sequence(video, info, table, folder / f"{video.name}.txt", footage.sampling))
    _prune(folder, {s.name for s in sequences})
    if not sequences:
        raise DatasetFormatError("no video could be read: " + "; ".join(f["error"] for f in failures))
    notes = tuple(f"{f['video']}: not built: {f['error']}" for f in failures)  # counted as skipped sequences
    source = MotSource(layout="raw-footage", root=Path(os.path.commonpath([str(v.path) for v in inputs])),
                       sequences=tuple(sequences), notes=notes)
    tracking = {**detections.describe(), "tracker": footage.tracker.name,
                "tracker_options": dict(footage.tracker.options),
                "reid_weights": None if footage.tracker.reid_weights is None else str(footage.tracker.reid_weights),
                "stride": footage.sampling.stride, "max_frames": footage.sampling.max_frames,
                "max_gap_sampled_frames": recipe.max_gap}
    ground_truth = {s.name: (read_ground_truth(truths[s.name]), _frames_read(s, footage.sampling))
                    for s in sequences if s.name in truths}
    return build_from_source(kind, source, out, name, workers, sampled_recipe(recipe, footage.sampling), progress,
                             identities_verified=False, executor=executor, ray_address=ray_address,
                             failures=failures, tracking=tracking, groups=groups,
                             ground_truth=ground_truth if eval_tracking else None)


PUBLIC_DETECTIONS = "public"  # --detections public: each MOT sequence's own det/det.txt


def public_detection_files(videos: Sequence[VideoInput]) -> dict[str, Path]:
    """Each input's public detections, ``<seq>/det/det.txt`` beside its frames (MOTChallenge, ``vreid synth``)."""
    found = {}
    for video in videos:
        sequence = video.path.parent if video.path.name == "img1" else video.path
        path = sequence / "det" / "det.txt"
        if not path.is_file():
            raise DatasetNotFoundError(f"--detections public: {video.name} has no {path}; give a MOT sequence with "
                                       "public detections (`vreid synth` writes them), or a det.txt file or folder")
        found[video.name] = path
    return found


def _frames_read(sequence: MotSequence, sampling: Sampling) -> np.ndarray:
    """The source frame numbers a build read of ``sequence``: the ones tracking is scored on."""
    if sequence.frame_files:
        return np.asarray(sorted(sequence.frame_files), dtype=np.int64)
    return sampling.frame_numbers(sequence.n_frames)


def _ground_truths(inputs: Sequence[VideoInput]) -> dict[str, Path]:
    """The ground truth of every input, for --eval-tracking: all of them need one."""
    found = {video.name: ground_truth_path(video.path) for video in inputs}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ConfigError(f"--eval-tracking needs ground truth, and {', '.join(missing[:3])} has none (a MOT "
                          "sequence's gt/gt.txt, or <video>.gt.txt beside a video file): leave out --eval-tracking "
                          "or give footage with ground truth (`vreid synth` writes it)")
    return {name: path for name, path in found.items() if path is not None}
