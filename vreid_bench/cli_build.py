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
    mot_root: Path = typer.Option(..., "--mot-root", help="MOT-annotated footage: a SportsMOT, DanceTrack or "
                                  "MOTChallenge root, one sequence folder, or a video with <stem>.gt.txt beside it."),
    out: Optional[Path] = typer.Option(None, "--out", help="Dataset folder (default: <data root>/sportsvreid or "
                                       "<data root>/dancevreid, where the names sports/dance find it)."),
    name: Optional[str] = typer.Option(None, "--name", help="Dataset name (default: the folder name)."),
    workers: int = typer.Option(1, "--workers", help="Processes cropping in parallel."),
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
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Build a video-ReID dataset from MOT-annotated footage (recipe vreid-build-1); re-running resumes."""
    import dataclasses

    from builders.build import build_dataset
    from builders.recipe import Recipe
    from vreid_bench.cli import console
    from vreid_bench.datasets import data_root, get_entry

    overrides = {"min_track_frames": min_track_frames, "min_box_height": min_box_height,
                 "border_margin": border_margin, "max_overlap": max_overlap, "max_gap": max_gap, "segments": segments,
                 "segment_gap_s": segment_gap, "jpeg_quality": jpeg_quality, "crop_margin": crop_margin,
                 "max_tracklet_frames": max_tracklet_frames, "unsplit_test_fraction": unsplit_test_fraction,
                 "seed": seed}
    recipe = dataclasses.replace(Recipe(), **{k: v for k, v in overrides.items() if v is not None})
    if crop_height is not None or crop_width is not None:
        default_height, default_width = recipe.crop_size
        recipe = dataclasses.replace(recipe, crop_size=(crop_height or default_height, crop_width or default_width))
    target = out if out is not None else data_root() / get_entry(kind.value).folder  # where `load(kind)` looks
    result = build_dataset(kind.value, mot_root, target, name=name, workers=workers, recipe=recipe, progress=progress)

    table = Table(title=f"{result.name}  (fingerprint {result.fingerprint[:16]})")
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in result.counts.items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"built {len(result.built)} videos, reused {len(result.reused)}; dataset: {result.path}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("build")(build)
