"""Dataset commands: ``vreid datasets``, ``vreid info`` and ``vreid check``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table


def datasets() -> None:
    """List the registered datasets."""
    from vreid_bench.cli import console
    from vreid_bench.datasets import DATASETS, data_root

    table = Table(title=f"Registered datasets (data root: {data_root()})")
    table.add_column("name", no_wrap=True)
    for column in ("aliases", "folder", "about", "options"):
        table.add_column(column, overflow="fold")
    for entry in DATASETS.entries():
        table.add_row(entry.name, ", ".join(entry.aliases), entry.folder, entry.summary, entry.options)
    console.print(table)
    console.print("A dataset directory made by `vreid build` is loaded by its path as well.")


def info(
    name_or_path: str = typer.Argument(..., help="A registered dataset name or a dataset directory."),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    split: Optional[int] = typer.Option(None, "--split", help="Split index for datasets with several (0..9)."),
) -> None:
    """Show a dataset's statistics."""
    from vreid_bench.cli import console
    from vreid_bench.datasets import load

    options = {} if split is None else {"split": split}
    dataset = load(name_or_path, root=root, **options)
    table = Table(title=f"{dataset.name}" + (f"  (fingerprint {dataset.fingerprint})" if dataset.fingerprint else ""))
    for column in ("split", "identities", "tracklets", "cameras", "frames min", "frames mean", "frames max"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split_name, s in dataset.stats().items():
        table.add_row(split_name, str(s.identities), str(s.tracklets), str(s.cameras), str(s.frames_min),
                      f"{s.frames_mean:.1f}", str(s.frames_max))
    console.print(table)
    console.print(f"default protocol: {dataset.default_protocol}")
    if dataset.notes.get("identities_verified") is False:
        console.print("identities: tracker identities, not reviewed (a fragment or an identity switch is not ground "
                      "truth: `vreid review export` to check them)", highlight=False)
    if dataset.notes.get("pseudo_cameras"):
        console.print("cameras: pseudo-cameras (time segments of each video); CLIP models train without a camera "
                      "embedding here", highlight=False)
    captions = dataset.captions
    if captions is None:
        console.print("training captions: none (`vreid caption --dataset ...` makes them)", highlight=False)
    else:
        console.print(f"training captions: {captions.count} of {len(dataset.train)} tracklets, from "
                      f"{', '.join(captions.sources)} in {captions.store}", highlight=False)


SHOWN_PROBLEMS = 10


def check(
    name_or_path: str = typer.Argument(..., help="A registered dataset name or a dataset directory."),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    split: Optional[int] = typer.Option(None, "--split", help="Split index for datasets with several (0..9)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Threads decoding frames (default: one per core)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full report to this JSON file."),
) -> None:
    """Decode every frame and report unreadable files, empty or one-frame tracklets, duplicate frames and
    identities seen by one camera only; exit status 1 when there is a problem."""
    from vreid_bench.check import check_dataset
    from vreid_bench.cli import console
    from vreid_bench.io import atomic_write_json

    options = {} if split is None else {"split": split}
    report = check_dataset(name_or_path, root=root, workers=workers, **options)
    table = Table(title=f"{report.dataset}: {report.frames_checked} frames decoded")
    for column in ("split", "identities", "tracklets", "cameras", "frames min", "frames mean", "frames max"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split_name, s in report.stats.items():
        table.add_row(split_name, str(s.identities), str(s.tracklets), str(s.cameras), str(s.frames_min),
                      f"{s.frames_mean:.1f}", str(s.frames_max))
    console.print(table)
    sections = (
        ("unreadable frames", [f"{path}: {reason}" for path, reason in report.unreadable]),
        ("empty or one-frame tracklets", [f"{t}: {n} frame(s)" for t, n in report.short_tracklets]),
        ("tracklets whose folder disagrees with tracklets.csv",
         [f"{t}: table {a}, on disk {b}" for t, a, b in report.count_mismatches]),
        ("duplicate frames within a tracklet", [f"{t}: {p} = {q}" for t, p, q in report.duplicates_within]),
        ("duplicate frames across tracklets", [f"{t}: {p} = {u}: {q}" for t, p, u, q in report.duplicates_across]),
        ("test identities seen by one camera only (no true match)", report.single_camera.get("test", [])),
    )
    for title, lines in sections:
        if not lines:
            continue
        console.print(f"{title}: {len(lines)}", highlight=False, markup=False)
        for line in lines[:SHOWN_PROBLEMS]:
            console.print(f"  {line}", highlight=False, markup=False)
        if len(lines) > SHOWN_PROBLEMS:
            console.print(f"  ... and {len(lines) - SHOWN_PROBLEMS} more (--json FILE lists them all)",
                          highlight=False, markup=False)
    single_train = report.single_camera.get("train", [])
    if single_train:
        console.print(f"note: {len(single_train)} training identities are seen by one camera only (they train the "
                      "classifier but give no cross-camera pair)", highlight=False, markup=False)
    if json_out is not None:
        atomic_write_json(json_out, report.to_dict())
    console.print("no problems found" if not report.problems else f"{report.problems} problem(s) found",
                  highlight=False, markup=False)
    if report.problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("datasets")(datasets)
    app.command("info")(info)
    app.command("check")(check)
