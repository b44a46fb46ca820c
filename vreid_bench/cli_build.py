"""Dataset-building commands: ``vreid synth`` (synthetic footage) and ``vreid build`` (footage -> dataset)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table


class FootageKind(str, Enum):
    sports = "sports"
    dance = "dance"


class ExecutorKind(str, Enum):
    process = "process"
    ray = "ray"


RECIPE_DEFAULT = "default: the recipe's"


def synth(
    kind: FootageKind = typer.Argument(..., help="Footage to imitate: sports (SportsMOT layout) or dance "
                                       "(DanceTrack layout)."),
    out: Path = typer.Option(..., "--out", help="Folder to write the footage into."),
    videos: int = typer.Option(2, "--videos", help="Number of videos."),
    frames: int = typer.Option(200, "--frames", help="Frames per video."),
    people: int = typer.Option(10, "--people", help="People per video."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same footage."),
    width: int = typer.Option(1280, "--width", help="Frame width in pixels."),
    height: int = typer.Option(720, "--height", help="Frame height in pixels."),
    fps: int = typer.Option(25, "--fps", help="Frame rate."),
    similarity: float = typer.Option(0.5, "--similarity", help="How alike people look, 0..1."),
    occlusion: float = typer.Option(0.5, "--occlusion", help="How often people occlude each other, 0..1."),
    blur: float = typer.Option(0.5, "--blur", help="Motion blur strength, 0..1."),
) -> None:
    """Make synthetic MOT-annotated footage with known identities and attributes, to try `vreid build` on."""
    from builders.synth import generate
    from vreid_bench.cli import console

    generate(kind.value, out, videos=videos, frames=frames, people=people, seed=seed, width=width, height=height,
             fps=fps, similarity=similarity, occlusion=occlusion, blur=blur, progress=True)
    console.print(f"synthetic {kind.value} footage written to {out}; build a dataset from it with "
                  f"`vreid build {kind.value} --mot-root {out}`")


def build(
    kind: FootageKind = typer.Argument(..., help="sports or dance: names the dataset and its registry folder."),
    more_videos: Optional[list[str]] = typer.Argument(
        None, metavar="PATH", show_default=False, help="More raw footage after --videos, so that a shell "
        "pattern works: --videos clips/*.mp4."),
    mot_root: Optional[Path] = typer.Option(
        None, "--mot-root", help="MOT-annotated footage: a SportsMOT, DanceTrack or MOTChallenge root, one sequence "
        "folder, or a video with <stem>.gt.txt beside it."),
    videos: Optional[list[str]] = typer.Option(
        None, "--videos", help="Raw footage, detected and tracked here: video files (mp4, avi, mkv ...), patterns "
        "('clips/*.mp4'), folders of videos, folders of frames. Identities come from the tracker, unverified until "
        "`vreid review` applies."),
    detector: Optional[str] = typer.Option(
        None, "--detector", help="YOLO weights: a name ultralytics downloads when online (default yolo11n.pt) or a "
        "local .pt path; a .yaml architecture runs with random weights (tests, timing)."),
    detections: Optional[Path] = typer.Option(
        None, "--detections", help="Precomputed detections instead of a detector: a MOTChallenge det.txt (one video), "
        "or a folder with <video>/det/det.txt or <video>.txt per video; scores in [0, 1]."),
    classes: str = typer.Option("0", "--classes", help="Detector classes kept, comma-separated (0: person)."),
    conf: float = typer.Option(0.25, "--conf", help="Lowest detection score kept."),
    imgsz: int = typer.Option(640, "--imgsz", help="Detector input size, px (a multiple of 32)."),
    batch: int = typer.Option(8, "--batch", help="Frames per detector forward pass."),
    device: Optional[str] = typer.Option(
        None, "--device", help="Detector device: cpu, 0, cuda:0 ... (default: a GPU when there is one)."),
    tracker: str = typer.Option("bytetrack", "--tracker", help="boxmot tracker: bytetrack, ocsort, botsort, "
                                "deepocsort, strongsort, boosttrack, hybridsort, occluboost, sfsort."),
    tracker_opt: Optional[list[str]] = typer.Option(
        None, "--tracker-opt", help="Tracker option as key=value, repeatable (e.g. track_buffer=60)."),
    reid_weights: Optional[Path] = typer.Option(
        None, "--reid-weights", help="ReID model file for appearance trackers (botsort, deepocsort, strongsort ...), "
        "e.g. osnet_x0_25_msmt17.pt."),
    stride: int = typer.Option(1, "--stride", help="Read every K-th frame of raw footage."),
    max_frames: Optional[int] = typer.Option(
        None, "--max-frames", help="Read at most N frames of each video (after --stride)."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate of folders of frames, which carry none."),
    out: Optional[Path] = typer.Option(None, "--out", help="Dataset folder (default: <data root>/sportsvreid or "
                                       "<data root>/dancevreid, where the names sports/dance find it)."),
    name: Optional[str] = typer.Option(None, "--name", help="Dataset name (default: the folder name)."),
    workers: int = typer.Option(1, "--workers", help="Processes working in parallel: raw footage is detected and "
                                "tracked one video per process, then crops are cut in parallel (with --executor ray: "
                                "the CPUs of a local Ray instance the build starts; a cluster uses all of its CPUs)."),
    executor: ExecutorKind = typer.Option(
        ExecutorKind.process, "--executor", help="process: a process pool on this machine. ray: one task per chunk "
        "on a Ray cluster (needs the ray package), the same output; across machines every node must see the "
        "footage and --out at the same paths (a shared filesystem) and have vreid installed."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster to join, host:port of its head (default: RAY_ADDRESS, else a "
        "cluster started on this machine with `ray start --head`, else a local instance of --workers CPUs)."),
    min_track_frames: Optional[int] = typer.Option(
        None, "--min-track-frames", help=f"Shortest tracklet kept ({RECIPE_DEFAULT})."),
    min_box_height: Optional[float] = typer.Option(
        None, "--min-box-height", help=f"Lowest box kept, px ({RECIPE_DEFAULT})."),
    border_margin: Optional[int] = typer.Option(
        None, "--border-margin", help=f"Boxes this close to the border are dropped, px ({RECIPE_DEFAULT})."),
    max_overlap: Optional[float] = typer.Option(
        None, "--max-overlap", help=f"Boxes covered beyond this fraction are dropped ({RECIPE_DEFAULT})."),
    max_gap: Optional[int] = typer.Option(
        None, "--max-gap", help=f"Tracks split where more frames are missing ({RECIPE_DEFAULT})."),
    segments: Optional[int] = typer.Option(None, "--segments", help=f"Pseudo-cameras per identity ({RECIPE_DEFAULT})."),
    segment_gap: Optional[float] = typer.Option(
        None, "--segment-gap", help=f"Seconds dropped between pseudo-cameras ({RECIPE_DEFAULT})."),
    crop_margin: Optional[float] = typer.Option(
        None, "--crop-margin", help=f"Margin around each box, fraction of its size ({RECIPE_DEFAULT})."),
    crop_height: Optional[int] = typer.Option(None, "--crop-height", help=f"Crop height, px ({RECIPE_DEFAULT})."),
    crop_width: Optional[int] = typer.Option(None, "--crop-width", help=f"Crop width, px ({RECIPE_DEFAULT})."),
    jpeg_quality: Optional[int] = typer.Option(
        None, "--jpeg-quality", help=f"JPEG quality of the crops ({RECIPE_DEFAULT})."),
    max_tracklet_frames: Optional[int] = typer.Option(
        None, "--max-tracklet-frames", help="Cut longer tracklets into consecutive parts (default: no cap)."),
    unsplit_test_fraction: Optional[float] = typer.Option(
        None, "--unsplit-test-fraction", help="Share of videos sent to test where the source has no split lists "
        f"({RECIPE_DEFAULT})."),
    seed: Optional[int] = typer.Option(
        None, "--seed", help=f"Seed of the query choice and of unsplit videos' split ({RECIPE_DEFAULT})."),
    groups: Optional[Path] = typer.Option(
        None, "--groups", help="CSV video,group: videos that may share people stay on one side of the split "
        "(default: SportsMOT clips by their match, other videos each on their own)."),
    few_videos: Optional[str] = typer.Option(
        None, "--few-videos", help="Too few videos or groups for a train and a test side: time (split each video "
        "in time), test (a test-only dataset) or refuse (default: time)."),
    time_split_at: Optional[float] = typer.Option(
        None, "--time-split-at", help=f"Fraction of a video before a time split's cut ({RECIPE_DEFAULT})."),
    time_split_gap: Optional[float] = typer.Option(
        None, "--time-split-gap", help=f"Seconds between a time split's two parts ({RECIPE_DEFAULT})."),
    eval_tracking: bool = typer.Option(
        False, "--eval-tracking", help="With --videos: score the detector + tracker against the footage's ground "
        "truth (TrackEval HOTA, MOTA, IDF1) and the built identities' purity; recorded in the manifest."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Build a video-ReID dataset from MOT-annotated or raw footage (recipe vreid-build-1); re-running resumes."""
    import dataclasses

    from builders.build import build_dataset
    from builders.groups import read_groups
    from vreid_bench.errors import ConfigError
    from builders.track import build_from_videos
    from builders.recipe import Recipe
    from vreid_bench.cli import console
    from vreid_bench.datasets import data_root, get_entry

    overrides = {"min_track_frames": min_track_frames, "min_box_height": min_box_height,
                 "border_margin": border_margin, "max_overlap": max_overlap, "max_gap": max_gap, "segments": segments,
                 "segment_gap_s": segment_gap, "jpeg_quality": jpeg_quality, "crop_margin": crop_margin,
                 "max_tracklet_frames": max_tracklet_frames, "unsplit_test_fraction": unsplit_test_fraction,
                 "seed": seed, "few_videos": few_videos, "time_split_at": time_split_at,
                 "time_split_gap_s": time_split_gap}
    recipe = dataclasses.replace(Recipe(), **{k: v for k, v in overrides.items() if v is not None})
    if crop_height is not None or crop_width is not None:
        default_height, default_width = recipe.crop_size
        recipe = dataclasses.replace(recipe, crop_size=(crop_height or default_height, crop_width or default_width))
    target = out if out is not None else data_root() / get_entry(kind.value).folder  # where `load(kind)` looks
    footage = _raw_footage(mot_root, videos, more_videos)
    if footage:
        config = _footage_config(detector, detections, classes, conf, imgsz, batch, device, tracker, tracker_opt,
                                 reid_weights, stride, max_frames, fps)
        result = build_from_videos(kind.value, footage, target, config, name=name, workers=workers, recipe=recipe,
                                   progress=progress, executor=executor.value, ray_address=ray_address,
                                   groups=read_groups(groups) if groups is not None else None,
                                   eval_tracking=eval_tracking)
    else:
        if eval_tracking:
            raise ConfigError("--eval-tracking scores tracker output: build raw footage with --videos (a --mot-root "
                              "build uses the ground truth itself)")
        result = build_dataset(kind.value, mot_root, target, name=name, workers=workers, recipe=recipe,
                               progress=progress, executor=executor.value, ray_address=ray_address, groups=groups)

    table = Table(title=f"{result.name}  (fingerprint {result.fingerprint[:16]})")
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in result.counts.items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    if result.evaluation is not None:
        console.print(tracking_table(result.evaluation))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"built {len(result.built)} videos, reused {len(result.reused)}; dataset: {result.path}",
                  highlight=False)


def tracking_table(evaluation: dict) -> Table:
    """TrackEval's scores and the built identities' purity, per video and over all of them."""
    tracking, identities = evaluation["tracking"], evaluation["identities"]
    table = Table(title="tracking against the ground truth (TrackEval; identities after curation)")
    columns = ("video", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "purity", "completeness", "fragments")
    for column in columns:
        table.add_column(column, justify="left" if column == "video" else "right")

    def cells(scores: dict, quality: dict) -> list[str]:
        percent = [f"{100 * scores[k]:.1f}" for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1")]
        share = [f"{100 * quality[k]:.1f}" if quality.get(k) is not None else "-" for k in ("purity", "completeness")]
        fragments = quality.get("fragments_per_person")
        return [*percent, str(scores["IDSW"]), *share, "-" if fragments is None else f"{fragments:.2f}"]

    for video, scores in tracking["per_video"].items():
        table.add_row(video, *cells(scores, identities["per_video"].get(video, {})))
    table.add_row("all", *cells(tracking["combined"], identities["combined"]))
    return table


def _raw_footage(mot_root: Optional[Path], videos: Optional[list[str]], more: Optional[list[str]]) -> list[str]:
    """The --videos paths (with the ones a shell pattern spread after it), or [] for a --mot-root build."""
    from vreid_bench.errors import ConfigError

    footage = [*(videos or []), *(more or [])]
    if mot_root is not None and footage:
        raise ConfigError("--mot-root and --videos both given; build annotated footage (--mot-root) or raw footage "
                          "(--videos), one at a time")
    if mot_root is None and not videos:
        if more:
            raise ConfigError(f"unexpected path {more[0]}: footage paths follow --videos (or use --mot-root DIR)")
        raise ConfigError("no footage given; pass --mot-root DIR (annotated) or --videos PATH... (raw)")
    return footage


def _footage_config(detector: Optional[str], detections: Optional[Path], classes: str, conf: float, imgsz: int,
                    batch: int, device: Optional[str], tracker: str, tracker_opt: Optional[list[str]],
                    reid_weights: Optional[Path], stride: int, max_frames: Optional[int], fps: float):
    """The raw-footage options as a ``builders.track.FootageConfig``, each checked with a one-line message."""
    from builders.detect import DEFAULT_DETECTOR, DetectorConfig
    from builders.track import FootageConfig, TrackerConfig, parse_tracker_options
    from builders.video import Sampling
    from vreid_bench.errors import ConfigError

    if detector is not None and detections is not None:
        raise ConfigError("--detector and --detections both given; detect with a model or read detections, not both")
    try:
        class_ids = tuple(int(part) for part in classes.split(","))
    except ValueError:
        raise ConfigError(f"--classes {classes!r} is not a comma-separated list of class ids; e.g. 0 or 0,1") from None
    return FootageConfig(
        tracker=TrackerConfig(tracker, parse_tracker_options(tracker_opt or []), reid_weights),
        detector=DetectorConfig(detector or DEFAULT_DETECTOR, class_ids, conf, imgsz, batch, device),
        detections=detections, sampling=Sampling(stride, max_frames), frame_rate=fps)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("build")(build)
