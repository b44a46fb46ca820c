"""Training and evaluation commands: ``vreid run``, ``vreid eval``, ``vreid models`` and ``vreid recipe show``.

``vreid run`` works unchanged under ``torchrun --nproc_per_node=N -m vreid_bench.cli run ...``: every process
trains its share of each batch and only rank 0 writes files and prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

if TYPE_CHECKING:
    from vreid_bench.data import VideoReIDDataset
    from vreid_bench.engine.config import RunOptions

RESULT_RANKS = (1, 5, 10, 20)
SPLIT_HELP = "Split of a dataset with several (iLIDS-VID, PRID-2011): a number, or all for each in turn."
CAPTIONS_HELP = ("Training captions of models that use them (CG-CLIP): current (the latest of each tracklet), a "
                 "captioner name, a prompt id, or none.")
CAPTIONS_DIR_HELP = "Folder of caption sidecars (default $VREID_DATA/captions)."
SET_HELP = ("key=value (repeatable): a recipe key (optimizer.lr, epochs, model.backbone, stages.prompts.epochs) "
            "or protocol.<key> for the evaluation.")


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def results_table(rows: list[dict[str, Any]], title: str) -> Table:
    """mAP, R1/R5/R10/R20, mINP and the query count of each result (one per split), in percent."""
    table = Table(title=title)
    with_split = any(row.get("split") is not None for row in rows)
    columns = ["protocol", *(["split"] if with_split else []), "mAP", *(f"R{k}" for k in RESULT_RANKS), "mINP",
               "queries"]
    for column in columns:
        table.add_column(column, justify="left" if column == "protocol" else "right")
    for metrics in rows:
        cmc = metrics.get("cmc") or []
        ranks = [_percent(cmc[k - 1]) if k <= len(cmc) else "-" for k in RESULT_RANKS]
        skipped = metrics.get("num_skipped_queries") or 0
        queries = str(metrics.get("num_valid_queries", "-")) + (f" ({skipped} skipped)" if skipped else "")
        split = [str(metrics.get("split"))] if with_split else []
        table.add_row(str(metrics.get("protocol")), *split, _percent(metrics.get("mAP")), *ranks,
                      _percent(metrics.get("mINP")), queries)
    return table


def _efficiency_line(metrics: dict[str, Any]) -> str:
    params = metrics.get("params")
    parts = [f"recipe {metrics['recipe']} ({metrics['recipe_hash']})" if metrics.get("recipe") else None,
             f"{params / 1e6:.1f} M parameters" if params else None,
             f"{metrics['gflops_per_clip']:.1f} GFLOPs per clip" if metrics.get("gflops_per_clip") else None,
             f"{metrics['clips_per_s']:.1f} clips/s" if metrics.get("clips_per_s") else None,
             f"trained in {metrics['wall_s'] / 60:.1f} min" if metrics.get("wall_s") else None]
    return ", ".join(p for p in parts if p)


def parse_split(text: str | None) -> int | str | None:
    """``--split``: None, a split number, or ``"all"``."""
    from vreid_bench.errors import ConfigError

    if text is None or text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--split {text!r}: give a split number (0..9 for iLIDS-VID) or all") from None


def datasets_for(name: str, root: str | None, split: int | str | None, captions: str = "current",
                 captions_dir: str | os.PathLike[str] | None = None) -> Iterator["VideoReIDDataset"]:
    """The dataset once, at one split, or at each of its splits in turn (``all``), with the chosen captions."""
    from functools import partial

    from vreid_bench.datasets import load as load_dataset
    from vreid_bench.errors import ConfigError

    load = partial(load_dataset, name, root=root, captions=captions, captions_dir=captions_dir)
    if split is None:
        yield load()
        return
    if split != "all":
        yield load(split=split)
        return
    first = load(split=0)
    count = first.notes.get("num_splits")
    if not count:
        raise ConfigError(f"dataset {first.name} has a single split: leave out --split")
    yield first
    for index in range(1, int(count)):
        yield load(split=index)


def run_options(device: str | None, workers: int | None, eval_every: int = 0,
                keep_checkpoint: bool = False) -> "RunOptions":
    from vreid_bench.engine.config import RunOptions

    changes: dict[str, Any] = {"eval_every": eval_every, "keep_checkpoint": keep_checkpoint}
    if device is not None:
        changes["device"] = device
    if workers is not None:
        changes["workers"] = workers
    return RunOptions(**changes)


def with_epochs(sets: list[str], epochs: int | None) -> list[str]:
    return [*sets, f"epochs={epochs}"] if epochs is not None else list(sets)


def protocol_from(name: str | None, default: str, sets: list[str]):
    """The chosen protocol (default: the dataset's) with the ``--set protocol.<key>`` changes applied."""
    from vreid_bench.protocol import apply_protocol_overrides, get_protocol
    from vreid_bench.recipe import parse_sets

    _, overrides = parse_sets(sets)
    return apply_protocol_overrides(get_protocol(name or default), overrides)


def recipe_sets(sets: list[str]) -> list[str]:
    return [item for item in sets if not item.strip().startswith("protocol.")]


def run(
    model: str = typer.Argument(..., help="Model name (`vreid models` lists them)."),
    dataset: str = typer.Option(..., "--dataset", help="A registered dataset name or a dataset directory."),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Train with this recipe file instead of the "
                                          "model's reference recipe."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Number of epochs (the recipe's epochs)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the run."),
    split: Optional[str] = typer.Option(None, "--split", help=SPLIT_HELP),
    captions: str = typer.Option("current", "--captions", help=CAPTIONS_HELP),
    captions_dir: Optional[Path] = typer.Option(None, "--captions-dir", help=CAPTIONS_DIR_HELP),
    protocol: Optional[str] = typer.Option(None, "--protocol",
                                           help="Evaluation protocol; default: the dataset's own."),
    pretrained: Optional[str] = typer.Option(
        None, "--pretrained", help="Backbone weights: a tag (openai), a local file, or none for random init."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loader processes."),
    eval_every: int = typer.Option(0, "--eval-every", help="Also evaluate every N epochs (0: only at the end)."),
    keep_checkpoint: bool = typer.Option(False, "--keep-checkpoint", help="Keep the resumable checkpoint."),
    out: Path = typer.Option(Path("runs"), "--out", help="Folder of run directories."),
    resume: bool = typer.Option(False, "--resume", help="Continue this configuration's unfinished run."),
) -> None:
    """Train a model on a dataset with its recipe and evaluate it; results go to a run directory under --out."""
    from vreid_bench.cli import console
    from vreid_bench.datasets import dataset_family, has_pseudo_cameras
    from vreid_bench.engine.train import run_training
    from vreid_bench.recipe import recipe_for

    all_sets = with_epochs(sets, epochs)
    chosen_split = parse_split(split)
    resolved = recipe_for(model, dataset_family(dataset), recipe, recipe_sets(all_sets),
                          pseudo_cameras=has_pseudo_cameras(dataset))
    options = run_options(device, workers, eval_every, keep_checkpoint)
    results = []
    for data in datasets_for(dataset, root, chosen_split, captions, captions_dir):
        chosen = protocol_from(protocol, data.default_protocol, all_sets)
        result = run_training(model, data, chosen, resolved, out, seed=seed, pretrained=pretrained,
                              options=options, resume=resume, progress=True)
        results.append(result)
    if _is_main_process():
        console.print(results_table([r.metrics for r in results], f"{model} on {results[0].metrics.get('dataset')}"))
        console.print(_efficiency_line(results[-1].metrics))
        for result in results:
            console.print(f"run directory: {result.run_dir}")


def evaluate(
    run_dir: Optional[Path] = typer.Argument(None, help="A run directory written by `vreid run` (or give --weights)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Evaluate under another protocol."),
    sets: list[str] = typer.Option([], "--set", help="protocol.<key>=value changes the protocol; with --weights "
                                   "also recipe keys (input.height ...)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A weights file to evaluate without a run "
                                           "directory: vreid's model.pt, or the authors' TF-CLIP / CLIP-ReID."),
    model: Optional[str] = typer.Option(None, "--model", help="With --weights: the model they belong to."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="With --weights: the dataset to evaluate on; with "
                                          "a run directory: another dataset (cross-dataset evaluation)."),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    split: Optional[str] = typer.Option(None, "--split", help=SPLIT_HELP),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="With --weights: the recipe whose input the "
                                          "weights expect (default: the model's reference recipe)."),
    out: Optional[Path] = typer.Option(None, "--out", help="With --weights: write the metrics to this JSON file."),
    sensitivity: bool = typer.Option(False, "--sensitivity", help="The run under every variant of one evaluation "
                                     "choice, with the difference each makes; written to RUN_DIR/sensitivity.json."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loader processes."),
) -> None:
    """Evaluate a finished run again (under its own protocol or another), or a weights file on a dataset."""
    from vreid_bench.cli import console
    from vreid_bench.engine.train import eval_run
    from vreid_bench.errors import ConfigError
    from vreid_bench.recipe import parse_sets

    options = run_options(device, workers)
    if weights is not None:
        if run_dir is not None:
            raise ConfigError("give a run directory or --weights, not both")
        if dataset is None:
            raise ConfigError("--weights needs --dataset: the dataset to evaluate the weights on")
        rows = _evaluate_weights(weights, model, dataset, root, parse_split(split), protocol, sets, recipe, options)
        if out is not None:
            from vreid_bench.io import atomic_write_json

            atomic_write_json(out, rows if len(rows) > 1 else rows[0])
        if _is_main_process():
            console.print(results_table(rows, f"{rows[0].get('model')} ({rows[0].get('weights_format')} weights) on "
                                        f"{rows[0].get('dataset')}"))
        return
    if run_dir is None:
        raise ConfigError("give a run directory (`vreid run` printed it), or --weights FILE --model M --dataset D")
    if dataset is not None:
        _evaluate_cross_dataset(run_dir, dataset, root, parse_split(split), protocol, sets, options)
        return
    if split is not None:
        raise ConfigError("a run is evaluated on the split it was trained on: leave out --split (or give --dataset "
                          "for another dataset)")
    recipe_keys = [item for item in sets if not item.startswith("protocol.")]
    if recipe_keys:
        raise ConfigError(f"--set {recipe_keys[0]}: a finished run keeps its recipe; only protocol.<key> applies")
    if sensitivity:
        if protocol is not None or sets:
            raise ConfigError("--sensitivity varies the run's own protocol: leave out --protocol and --set")
        from vreid_bench.engine.sensitivity import protocol_sensitivity

        rows = protocol_sensitivity(run_dir, options)
        if _is_main_process():
            console.print(sensitivity_table(rows, f"protocol sensitivity of {Path(run_dir).name}"))
            console.print(f"written to {run_dir / 'sensitivity.json'}", highlight=False)
        return
    _, overrides = parse_sets(sets)
    metrics = eval_run(run_dir, protocol_name=protocol, protocol_overrides=overrides, options=options)
    if _is_main_process():
        console.print(results_table([metrics], f"{metrics.get('model')} on {metrics.get('dataset')}"))


def _evaluate_cross_dataset(run_dir: Path, dataset: str, root: str | None, split: int | str | None,
                            protocol: str | None, sets: list[str], options: "RunOptions") -> None:
    """A run evaluated on another dataset (each split in turn with ``--split all``), results in its directory."""
    from vreid_bench.cli import console
    from vreid_bench.engine.train import eval_on_dataset
    from vreid_bench.errors import ConfigError

    recipe_keys = [item for item in sets if not item.startswith("protocol.")]
    if recipe_keys:
        raise ConfigError(f"--set {recipe_keys[0]}: a finished run keeps its recipe; only protocol.<key> applies")
    rows = []
    for data in datasets_for(dataset, root, split, captions="none"):
        rows.append(eval_on_dataset(run_dir, data, protocol_from(protocol, data.default_protocol, sets), options))
    if _is_main_process():
        console.print(results_table(rows, f"{rows[0].get('model')} trained on {rows[0].get('train_dataset')}, tested "
                                    f"on {rows[0].get('dataset')} (cross-dataset)"))
        console.print(f"written to {run_dir} (metrics@{rows[0].get('dataset')}-*.json)", highlight=False)


def sensitivity_table(rows: list[dict[str, Any]], title: str) -> Table:
    """One row per evaluation variant: mAP, R1, mINP and the difference each makes, in points."""
    table = Table(title=title)
    for column in ("change", "mAP", "Δ", "R1", "Δ ", "mINP", "Δ  ", "queries"):
        table.add_column(column, justify="left" if column == "change" else "right")
    for row in rows:
        own = row["change"] == "the run's own protocol"
        deltas = ["" if own else f"{100 * row[key]:+.1f}" for key in ("delta_mAP", "delta_R1", "delta_mINP")]
        table.add_row(row["change"], _percent(row["mAP"]), deltas[0], _percent(row["R1"]), deltas[1],
                      _percent(row["mINP"]), deltas[2], str(row["queries"]))
    return table


def _evaluate_weights(weights: Path, model: str | None, dataset: str, root: str | None, split: int | str | None,
                      protocol: str | None, sets: list[str], recipe_file: Path | None,
                      options: "RunOptions") -> list[dict[str, Any]]:
    from vreid_bench.datasets import dataset_family
    from vreid_bench.engine.train import evaluate_checkpoint
    from vreid_bench.models.checkpoints import detect_format, read_checkpoint
    from vreid_bench.recipe import recipe_for

    recipe = None
    keys = recipe_sets(sets)
    if recipe_file is not None or keys:
        name = model or detect_format(read_checkpoint(weights))
        if name in (None, "vreid"):
            from vreid_bench.errors import ConfigError

            raise ConfigError("--recipe and recipe --set keys need --model with --weights of the authors' code")
        recipe = recipe_for(name, dataset_family(dataset), recipe_file, keys)
    rows = []
    for data in datasets_for(dataset, root, split):
        chosen = protocol_from(protocol, data.default_protocol, sets)
        rows.append(evaluate_checkpoint(weights, data, chosen, model, recipe, options))
    return rows


def export(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    fmt: str = typer.Option("npz", "--format", help="npz (arrays with their labels) or csv (one row per tracklet)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: RUN_DIR/export.<format>)."),
) -> None:
    """Export a run's saved test features (query and gallery, with pids, cameras, videos, tracklet ids)."""
    from vreid_bench.cli import console
    from vreid_bench.engine.rundir import read_run_config
    from vreid_bench.engine.saved import FEATURES_FILE, export_features, load_features
    from vreid_bench.errors import ConfigError

    if fmt not in ("npz", "csv"):
        raise ConfigError(f"--format {fmt!r}: use npz or csv")
    read_run_config(run_dir)  # a folder that is no run directory says so
    saved = load_features(run_dir / FEATURES_FILE)
    path = export_features(saved, out or run_dir / f"export.{fmt}", fmt)
    console.print(f"wrote {path}: {len(saved.query)} query and {len(saved.gallery)} gallery features of "
                  f"dimension {saved.query.shape[1]} ({saved.sampling} test clips)", highlight=False)


def visrank(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    queries: int = typer.Option(10, "--queries", help="Number of queries drawn (0: all of them)."),
    worst: bool = typer.Option(False, "--worst", help="The queries with the lowest AP first."),
    top: int = typer.Option(10, "--top", help="Gallery tracklets shown per query."),
    frames: int = typer.Option(3, "--frames", help="Frames shown per tracklet."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Rank under another protocol."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the PNGs (default: "
                                       "RUN_DIR/visrank/<protocol>/)."),
) -> None:
    """Ranked-list pictures: each query, then its top gallery tracklets, green for a true match, red for a wrong one."""
    from leaderboard.visrank import VisrankLayout, write_visrank
    from vreid_bench.cli import console
    from vreid_bench.errors import ConfigError

    if frames < 1 or queries < 0:
        raise ConfigError("--frames must be at least 1 and --queries 0 (all) or more")
    written = write_visrank(run_dir, out, protocol, queries or None, worst, top, VisrankLayout(frames=frames))
    where = written[0].parent if written else out
    console.print(f"wrote {len(written)} ranked lists to {where} (index.json lists each query's AP and first "
                  "true-match rank)", highlight=False)


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
    console.print("Each model trains with its reference recipe: `vreid recipe show MODEL [--dataset D]`.")


recipe_app = typer.Typer(help="Training recipes: how each model is trained, with the source of every value.",
                         no_args_is_help=True)


@recipe_app.command("show")
def recipe_show(
    model: str = typer.Argument(..., help="Model name (`vreid models` lists them)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="A dataset name or directory: its section of "
                                          "the recipe applies (e.g. ilidsvid)."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Show this recipe file, resolved, instead."),
    sets: list[str] = typer.Option([], "--set", help="key=value changes (repeatable), as `vreid run` takes them."),
) -> None:
    """Print a model's resolved recipe as YAML, each value followed by its source."""
    import sys

    from vreid_bench.datasets import dataset_family, has_pseudo_cameras
    from vreid_bench.recipe import recipe_for, recipe_header

    family = dataset_family(dataset) if dataset else None
    resolved = recipe_for(model, family, recipe, sets, pseudo_cameras=bool(dataset) and has_pseudo_cameras(dataset))
    sys.stdout.write(resolved.to_yaml(recipe_header(resolved, model, family)))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("eval")(evaluate)
    app.command("export")(export)
    app.command("visrank")(visrank)
    app.command("models")(models)
    app.add_typer(recipe_app, name="recipe")
