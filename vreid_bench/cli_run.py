"""Training and evaluation commands: ``vreid run``, ``vreid eval`` and ``vreid models``.

``vreid run`` works unchanged under ``torchrun --nproc_per_node=N -m vreid_bench.cli run ...``: every process
trains its share of each batch and only rank 0 writes files and prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

RESULT_RANKS = (1, 5, 10, 20)


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def results_table(metrics: dict[str, Any], title: str) -> Table:
    """mAP, R1/R5/R10/R20, mINP and the query count of one result, in percent."""
    table = Table(title=title)
    for column in ("protocol", "mAP", *(f"R{k}" for k in RESULT_RANKS), "mINP", "queries"):
        table.add_column(column, justify="left" if column == "protocol" else "right")
    cmc = metrics.get("cmc") or []
    ranks = [_percent(cmc[k - 1]) if k <= len(cmc) else "-" for k in RESULT_RANKS]
    skipped = metrics.get("num_skipped_queries") or 0
    queries = str(metrics.get("num_valid_queries", "-")) + (f" ({skipped} skipped)" if skipped else "")
    table.add_row(str(metrics.get("protocol")), _percent(metrics.get("mAP")), *ranks,
                  _percent(metrics.get("mINP")), queries)
    return table


def _efficiency_line(metrics: dict[str, Any]) -> str:
    params = metrics.get("params")
    parts = [f"{params / 1e6:.1f} M parameters" if params else None,
             f"{metrics['gflops_per_clip']:.1f} GFLOPs per clip" if metrics.get("gflops_per_clip") else None,
             f"{metrics['clips_per_s']:.1f} clips/s" if metrics.get("clips_per_s") else None,
             f"trained in {metrics['wall_s'] / 60:.1f} min" if metrics.get("wall_s") else None]
    return ", ".join(p for p in parts if p)


def run(
    model: str = typer.Argument(..., help="Model name (`vreid models` lists them)."),
    dataset: str = typer.Option(..., "--dataset", help="A registered dataset name or a dataset directory."),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of training settings."),
    sets: list[str] = typer.Option(
        [], "--set", help="key=value (repeatable); model.<key> sets the model, protocol.<key> the protocol."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Number of epochs (overrides the config)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    out: Path = typer.Option(Path("runs"), "--out", help="Folder of run directories."),
    protocol: Optional[str] = typer.Option(None, "--protocol",
                                           help="Evaluation protocol; default: the dataset's own."),
    pretrained: Optional[str] = typer.Option(
        None, "--pretrained", help="Backbone weights: a tag (openai), a local file, or none for random init."),
    resume: bool = typer.Option(False, "--resume", help="Continue this configuration's unfinished run."),
) -> None:
    """Train a model on a dataset and evaluate it; results go to a run directory under --out."""
    from vreid_bench.cli import console
    from vreid_bench.datasets import load
    from vreid_bench.engine.config import config_from_dict, load_config
    from vreid_bench.engine.train import run_training
    from vreid_bench.protocol import get_protocol

    flags = {"epochs": epochs, "device": device, "pretrained": pretrained}
    train_config = config_from_dict({k: v for k, v in flags.items() if v is not None}, load_config(config, sets))
    data = load(dataset, root=root)
    chosen = get_protocol(protocol or data.default_protocol)
    result = run_training(model, data, chosen, train_config, out, resume=resume, progress=True)
    if _is_main_process():
        console.print(results_table(result.metrics, f"{model} on {data.name}"))
        console.print(_efficiency_line(result.metrics))
        console.print(f"run directory: {result.run_dir}")


def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `vreid run`."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Evaluate under another protocol."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Evaluate a finished run again, under its own protocol or another one."""
    from vreid_bench.cli import console
    from vreid_bench.engine.train import eval_run

    metrics = eval_run(run_dir, protocol_name=protocol, device=device)
    if _is_main_process():
        console.print(results_table(metrics, f"{metrics.get('model')} on {metrics.get('dataset')}"))


def models() -> None:
    """List the models and their settings (set them with --set model.<key>=value)."""
    from vreid_bench.cli import console
    from vreid_bench.models import list_models

    table = Table(title="Models")
    table.add_column("name", no_wrap=True)
    table.add_column("about", overflow="fold")
    table.add_column("settings (defaults)", overflow="fold")
    for info in list_models():
        settings = info.error or ", ".join(f"{f.name}={f.default}" for f in info.fields)
        table.add_row(info.name, info.summary, settings)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("eval")(evaluate)
    app.command("models")(models)
