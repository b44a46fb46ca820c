"""Identity review commands: ``vreid review export`` (sheet of every identity) and ``vreid review apply``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

review_app = typer.Typer(
    help="Check a dataset's tracker identities by eye: export a review sheet, fill in merge / split / drop, apply it.",
    no_args_is_help=True,
)


@review_app.command("export")
def export(
    dataset_dir: Path = typer.Argument(..., help="A dataset directory made by `vreid build`."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the sheet (default: <DATASET_DIR>/review)."),
    frames_per_tracklet: int = typer.Option(6, "--frames-per-tracklet", help="Frames shown per tracklet."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Write one contact-sheet image per identity and review.csv with merge_into / split_at_frame / drop columns."""
    from builders.review import export_review
    from vreid_bench.cli import console

    sheet = export_review(dataset_dir, out, frames_per_tracklet=frames_per_tracklet, progress=progress)
    console.print(f"wrote {sheet.csv} ({len(sheet.images)} identities, one image each beside it). Fill in "
                  "merge_into (a pid of the same video), split_at_frame (frames, ';'-separated) or drop (yes), "
                  f"then run `vreid review apply {dataset_dir} {sheet.csv}`", highlight=False)


@review_app.command("apply")
def apply(
    dataset_dir: Path = typer.Argument(..., help="The dataset the sheet was exported from."),
    sheet: Path = typer.Argument(..., help="The filled-in review.csv."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Apply a review sheet: merge, split and drop identities, re-split affected videos, mark identities verified."""
    from builders.review import apply_review
    from vreid_bench.cli import console

    result = apply_review(dataset_dir, sheet, progress=progress)
    if result.edits == 0:
        console.print(f"no edits in {sheet}: identities of {result.path} marked verified", highlight=False)
        return
    console.print(f"applied {result.edits} edits ({result.merged} merges, {result.split_frames} split frames, "
                  f"{result.dropped} drops) to {len(result.videos)} videos; identities verified; fingerprint "
                  f"{result.fingerprint[:16]}", highlight=False)
    if result.identities_removed:
        console.print(f"note: {result.identities_removed} identities left too short or on one pseudo-camera by the "
                      "edits were removed by the recipe", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
