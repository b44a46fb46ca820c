"""Comparison commands: ``vreid compare``, ``vreid leaderboard`` and ``vreid demo``."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from vreid_bench.cli_run import CAPTIONS_DIR_HELP, CAPTIONS_HELP

if TYPE_CHECKING:
    from leaderboard.compare import CompareResult
    from leaderboard.tables import Leaderboard

ALL_MODELS = "cgclip,tfclip,clipreid,clip-tap,resnet-tap"
REPORT_NAME = "leaderboard.html"


class LeaderboardFormat(str, Enum):
    md = "md"
    csv = "csv"
    html = "html"
    latex = "latex"


def _split_models(models: str) -> list[str]:
    return [name.strip() for name in models.split(",") if name.strip()]


def _debug(context: typer.Context) -> bool:
    """Whether ``vreid --debug`` was given (the root command's option)."""
    return bool(context.find_root().params.get("debug"))


def _print_boards(boards: list[Leaderboard]) -> None:
    from leaderboard.tables import board_rich
    from vreid_bench.cli import console

    for board in boards:
        for table in board_rich(board):
            console.print(table)
        for note in board.notes:
            console.print(f"  {note}", highlight=False, markup=False)


def _print_tracebacks(result: CompareResult, context: typer.Context) -> None:
    """Under ``vreid --debug``, the full traceback of each model that failed."""
    from vreid_bench.cli import err_console

    if not _debug(context):
        return
    for outcome in result.failed:
        if outcome.traceback:
            err_console.print(outcome.traceback, highlight=False, markup=False)


def parse_seeds(text: str) -> list[int]:
    from vreid_bench.errors import ConfigError

    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: give comma-separated integers, e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: give one or more distinct integers, e.g. --seeds 0,1,2")
    return seeds


def compare(
    context: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="A registered dataset name or a dataset directory."),
    models: str = typer.Option(ALL_MODELS, "--models", help="Comma-separated model names (`vreid models`)."),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    protocol: Optional[str] = typer.Option(None, "--protocol",
                                           help="Evaluation protocol; default: the dataset's own."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Train every model with this one shared recipe "
                                          "(default: each model with its own reference recipe)."),
    sets: list[str] = typer.Option(
        [], "--set", help="key=value (repeatable), applied to every model's recipe: model.<key> and stages.<name> "
        "to the models that have them; protocol.<key> changes the protocol."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Number of epochs for every model."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds: one run per model and seed."),
    split: Optional[str] = typer.Option(None, "--split", help="Split of a dataset with several (iLIDS-VID, "
                                        "PRID-2011): a number, or all for each in turn."),
    captions: str = typer.Option("current", "--captions", help=CAPTIONS_HELP),
    captions_dir: Optional[Path] = typer.Option(None, "--captions-dir", help=CAPTIONS_DIR_HELP),
    out: Path = typer.Option(Path("runs"), "--out", help="Folder of run directories."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loader processes."),
    pretrained: Optional[str] = typer.Option(
        None, "--pretrained", help="Backbone weights: a tag (openai), a local file, or none for random init."),
) -> None:
    """Train and evaluate several models under one protocol, each with its own recipe; print the table.

    Finished runs are skipped, unfinished ones resumed; a failing model is reported and the others still run.
    """
    import pandas as pd

    from leaderboard.collect import frame_from_rows
    from leaderboard.compare import compare_models
    from leaderboard.tables import build_leaderboards
    from vreid_bench.cli import console
    from vreid_bench.cli_run import datasets_for, parse_split, protocol_from, recipe_sets, run_options, with_epochs

    all_sets = with_epochs(sets, epochs)
    options = run_options(device, workers)
    chosen_seeds = parse_seeds(seeds)
    results = []
    for data in datasets_for(dataset, root, parse_split(split), captions, captions_dir):
        chosen = protocol_from(protocol, data.default_protocol, all_sets)
        results.append(compare_models(_split_models(models), data, chosen, out, recipe_file=recipe,
                                      sets=recipe_sets(all_sets), seeds=chosen_seeds, pretrained=pretrained,
                                      options=options, progress=True,
                                      announce=lambda line: console.print(line, highlight=False, markup=False)))
    frame = pd.concat([result.frame() for result in results], ignore_index=True)
    _print_boards(build_leaderboards(frame_from_rows(frame.to_dict("records"))))
    failed = [outcome for result in results for outcome in result.failed]
    for result in results:
        _print_tracebacks(result, context)
    console.print(f"all results and the HTML report: `vreid leaderboard {out}`", highlight=False, markup=False)
    if failed:
        names = ", ".join(sorted({outcome.model for outcome in failed}))
        console.print(f"{len(failed)} run(s) failed: {names} (`vreid --debug compare ...` shows the tracebacks)",
                      highlight=False, markup=False)
        raise typer.Exit(1)


def leaderboard(
    runs_dirs: Optional[list[Path]] = typer.Argument(None, help="Folders of run directories (default: runs)."),
    fmt: LeaderboardFormat = typer.Option(LeaderboardFormat.md, "--format", help="Output format."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the leaderboard here (CMC plots go to "
                                       "<name>-cmc/ beside it); default: print it and write the HTML report "
                                       f"to RUNS_DIR/{REPORT_NAME}."),
    reported: bool = typer.Option(False, "--reported", help="Add the published CG-CLIP and TF-CLIP numbers as "
                                  "reference rows (never ranked)."),
    max_rank: int = typer.Option(20, "--max-rank", help="Last rank of the CMC plots."),
    efficiency: bool = typer.Option(False, "--efficiency", help="Also the efficiency tables, costs ranked, and "
                                    "plots of mAP against GFLOPs/clip and clips/s."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples of the intervals (at least 1000)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
) -> None:
    """Leaderboards of finished runs: one table per dataset and protocol, best marked, ties with the best marked."""
    from leaderboard.collect import collect_runs, with_reported
    from leaderboard.report import write_efficiency, write_leaderboard
    from leaderboard.tables import build_leaderboards, efficiency_rich, to_csv, to_latex
    from vreid_bench.cli import console, err_console
    from vreid_bench.errors import ConfigError

    if max_rank < 1:
        raise ConfigError(f"--max-rank {max_rank} is invalid; give 1 or more (20 and 50 are usual)")
    if resamples < 1000:
        raise ConfigError(f"--resamples {resamples} is too few for a 95 % interval; give 1000 or more")
    roots = runs_dirs or [Path("runs")]
    collection = collect_runs(roots)
    frame = with_reported(collection.frame) if reported else collection.frame
    boards = build_leaderboards(frame, resamples, seed)
    if efficiency:
        target = (out.parent if out is not None else roots[0]) / "efficiency.md"
        path, plots = write_efficiency(target, boards)
        for board in boards:
            console.print(efficiency_rich(board))
        console.print(f"efficiency tables: {path}; plots: {', '.join(str(p) for p in plots) or 'none'}",
                      highlight=False, markup=False)
    sources = [str(root) for root in roots]
    for problem in collection.problems:
        err_console.print(f"note: {problem}", highlight=False, markup=False)
    if out is not None:
        path, plots = write_leaderboard(out, boards, fmt.value, sources, collection.problems, max_rank=max_rank,
                                        extras=collection.extras)
        console.print(f"wrote {path} ({len(boards)} tables; {len(plots)} CMC plots in {path.stem}-cmc/)",
                      highlight=False, markup=False)
        return
    if fmt is LeaderboardFormat.md:
        _print_boards(boards)
    elif fmt is LeaderboardFormat.csv:
        sys.stdout.write(to_csv(boards))
    elif fmt is LeaderboardFormat.latex:
        sys.stdout.write(to_latex(boards))
    report, _ = write_leaderboard(roots[0] / REPORT_NAME, boards, "html", sources, collection.problems,
                                  max_rank=max_rank, extras=collection.extras)
    console.print(f"HTML report: {report}", highlight=False, markup=False)


def demo(
    context: typer.Context,
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for footage, dataset, runs and report."),
    models: str = typer.Option(ALL_MODELS, "--models", help="Comma-separated model names."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs per model (default: the "
                                         "demo's)."),
    videos: Optional[int] = typer.Option(None, "--videos", help="Synthetic videos, half for training."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Frames per video."),
) -> None:
    """Synthetic sports footage -> dataset -> captions -> CG-CLIP against the baselines (tiny models) -> report.

    Every stage skips what an earlier run already did, so running it again is fast.
    """
    import dataclasses

    from leaderboard.demo import DemoConfig, run_demo
    from vreid_bench.cli import console

    changes = {"epochs": epochs, "videos": videos, "frames": frames}
    config = dataclasses.replace(DemoConfig(out=out, models=tuple(_split_models(models))),
                                 **{k: v for k, v in changes.items() if v is not None})
    from leaderboard.demo import demonstration_note

    result = run_demo(config, announce=lambda line: console.print(line, highlight=False, markup=False))
    _print_boards(result.boards)
    _print_tracebacks(result.compare, context)
    total = sum(stage.seconds for stage in result.stages)
    console.print(demonstration_note(result.boards), highlight=False, markup=False)
    console.print(f"chance level (random features): mAP {100 * result.chance.mAP:.1f}, "
                  f"R1 {100 * result.chance.rank1:.1f}; demo took {total / 60:.1f} min", highlight=False)
    markdown, table = config.leaderboard_paths
    console.print(f"HTML report: {result.report_path}; leaderboard: {markdown}, {table}", highlight=False,
                  markup=False)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
    app.command("leaderboard")(leaderboard)
    app.command("demo")(demo)
