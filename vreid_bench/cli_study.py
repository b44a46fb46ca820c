"""Studies: ``vreid study captions`` (CG-CLIP against the quality of its training captions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vreid_bench.errors import ConfigError

study_app = typer.Typer(help="Controlled studies of what a result depends on.", no_args_is_help=True)


def parse_fractions(text: str, option: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give comma-separated fractions, e.g. {option} 0,0.1,0.3,0.5") from None


@study_app.command("captions")
def captions(
    dataset: Path = typer.Option(..., "--dataset", help="A build of synthetic footage (`vreid synth` then `vreid "
                                 "build`): its attribute sheets make exact captions possible."),
    rates: str = typer.Option("0,0.1,0.3,0.5", "--rates", help="Hallucination rates of the template captions."),
    sources: str = typer.Option("placeholder,none", "--sources", help="Caption-free conditions to add: "
                                "placeholder, none (empty for neither)."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated training seeds of every condition."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Recipe file (default: CG-CLIP's reference)."),
    sets: list[str] = typer.Option([], "--set", help="key=value recipe changes shared by every condition."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Number of epochs (the recipe's)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Evaluation protocol; default: the dataset's."),
    caption_seed: int = typer.Option(0, "--caption-seed", help="Seed of the template captions' corruptions."),
    out: Path = typer.Option(Path("study-captions"), "--out", help="Folder for captions, runs, table and plot."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loader processes."),
) -> None:
    """CG-CLIP trained on captions with a known share of wrong attributes, and without caption content; a table
    with 95 % intervals and a plot of mAP and R1 against the hallucination rate."""
    from rich.markdown import Markdown

    from leaderboard.study import study_captions
    from vreid_bench.cli import console
    from vreid_bench.cli_compare import parse_seeds
    from vreid_bench.cli_run import run_options, with_epochs

    result = study_captions(
        dataset, out, parse_fractions(rates, "--rates"), [s.strip() for s in sources.split(",") if s.strip()],
        parse_seeds(seeds), with_epochs(sets, epochs), recipe, protocol, caption_seed, run_options(device, workers),
        announce=lambda line: console.print(line, highlight=False, markup=False))
    console.print(Markdown((result.folder / "study.md").read_text()))
    console.print(f"study written to {result.folder} (study.md, study.csv, study.json, study.png; runs in "
                  f"{result.folder / 'runs'})", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
