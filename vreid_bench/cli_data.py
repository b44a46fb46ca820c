"""Dataset commands: ``vreid datasets`` and ``vreid info``."""

from __future__ import annotations

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
    captions = dataset.captions
    if captions is None:
        console.print("training captions: none (`vreid caption --dataset ...` makes them)", highlight=False)
    else:
        console.print(f"training captions: {captions.count} of {len(dataset.train)} tracklets, from "
                      f"{', '.join(captions.sources)} in {captions.store}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("datasets")(datasets)
    app.command("info")(info)
