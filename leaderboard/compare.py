"""``vreid compare``: several models, one dataset, one evaluation protocol.

By default each model trains with its own reference recipe (each method as its authors trained it) and all are
evaluated under the same protocol; ``--recipe FILE`` trains every model with one shared recipe instead. ``--set``
changes apply to every model: ``model.<key>`` and ``stages.<name>`` to the models that have them
(``model.backbone=tiny`` to all, ``stages.prompts.epochs=10`` to CLIP-ReID alone), so each run directory records
exactly what its model used and is the same folder ``vreid run`` with those settings writes: a finished run is
found and skipped whichever command made it, an unfinished one is resumed from its checkpoint. A model that fails
is reported and the others still run.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from leaderboard.collect import FAILED, frame_from_rows, metrics_row, pending_row
from vreid_bench.data import VideoReIDDataset
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.rundir import CHECKPOINT_FILE, DatasetRecord, RunRecord, is_finished, read_metrics, run_dir_for
from vreid_bench.engine.train import ModelFactory, run_training
from vreid_bench.errors import ConfigError, VreidError, user_message
from vreid_bench.models import get_model_entry
from vreid_bench.protocol import Protocol
from vreid_bench.recipe import check_shared_keys, recipe_for

Status = Literal["trained", "resumed", "skipped", "failed"]
Announce = Callable[[str], None]


@dataclass(frozen=True)
class PlannedRun:
    """One model's run: its full record, its folder, and what has to happen to it."""

    model: str
    record: RunRecord
    run_dir: Path

    @property
    def action(self) -> Status:
        if is_finished(self.run_dir):
            return "skipped"
        return "resumed" if (self.run_dir / CHECKPOINT_FILE).is_file() else "trained"


@dataclass(frozen=True)
class ModelOutcome:
    model: str
    status: Status
    run_dir: Path
    record: RunRecord
    metrics: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None  # of a failure, for --debug


@dataclass(frozen=True)
class CompareResult:
    outcomes: tuple[ModelOutcome, ...]

    @property
    def failed(self) -> list[ModelOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    def frame(self) -> pd.DataFrame:
        """The results of this comparison only (failed models as rows without numbers), for its table."""
        rows = []
        for outcome in self.outcomes:
            if outcome.metrics:
                rows.append(metrics_row(outcome.metrics, outcome.run_dir))
            else:
                rows.append(pending_row(outcome.record, outcome.run_dir, FAILED, note=outcome.error or "failed"))
        return frame_from_rows(rows)


def canonical_models(models: Sequence[str]) -> list[str]:
    """Registry names of ``models`` in order, without repeats; an unknown name raises before anything runs."""
    names: list[str] = []
    for model in models:
        name = get_model_entry(model.strip()).name
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError("no models to compare: give --models, e.g. --models cgclip,tfclip")
    return names


def plan_runs(models: Sequence[str], dataset: VideoReIDDataset, protocol: Protocol, out_dir: str | os.PathLike[str],
              recipe_file: str | os.PathLike[str] | None = None, sets: Sequence[str] = (),
              seeds: Sequence[int] = (0,), pretrained: str | None = None,
              dataset_record: DatasetRecord | None = None) -> list[PlannedRun]:
    """Each model's (and seed's) record and run folder, computed as :func:`run_training` does."""
    names = canonical_models(models)
    check_shared_keys(names, dataset.family, recipe_file, sets)
    record_of_dataset = dataset_record or DatasetRecord.of(dataset)
    split_protocol = protocol.with_split(dataset.notes.get("split"))
    plans = []
    for name in names:
        recipe = recipe_for(name, dataset.family, recipe_file, sets, shared=True,
                            pseudo_cameras=bool(dataset.notes.get("pseudo_cameras")))
        for seed in seeds:
            record = RunRecord.create(name, record_of_dataset, split_protocol, recipe, seed, pretrained)
            plans.append(PlannedRun(name, record, run_dir_for(out_dir, record)))
    return plans


def _describe(exc: BaseException) -> str:
    text = user_message(exc) or type(exc).__name__
    return text if isinstance(exc, VreidError) else f"{type(exc).__name__}: {text}"


def compare_models(models: Sequence[str], dataset: VideoReIDDataset, protocol: Protocol,
                   out_dir: str | os.PathLike[str], recipe_file: str | os.PathLike[str] | None = None,
                   sets: Sequence[str] = (), seeds: Sequence[int] = (0,), pretrained: str | None = None,
                   options: RunOptions | None = None, dataset_record: DatasetRecord | None = None,
                   progress: bool = True, model_factory: ModelFactory | None = None,
                   announce: Announce | None = None) -> CompareResult:
    """Train and evaluate each model (and seed) in turn; see the module docstring.

    ``announce`` receives one line per run saying what happens to it (skipped, resumed, trained, failed).
    ``model_factory`` replaces the model registry, as in ``run_training``.
    """
    say = announce or (lambda line: None)
    plans = plan_runs(models, dataset, protocol, out_dir, recipe_file, sets, seeds, pretrained, dataset_record)
    outcomes = []
    for index, plan in enumerate(plans, 1):
        seed = f" seed {plan.record.seed}" if len(seeds) > 1 else ""
        split = f" split {plan.record.protocol.split}" if plan.record.protocol.split is not None else ""
        prefix = f"[{index}/{len(plans)}] {plan.model}{seed}{split}"
        action = plan.action
        if action == "skipped":
            say(f"{prefix}: skipped, a finished run with this configuration exists in {plan.run_dir}")
            outcomes.append(ModelOutcome(plan.model, "skipped", plan.run_dir, plan.record, read_metrics(plan.run_dir)))
            continue
        doing = "resuming its unfinished run" if action == "resumed" else "training"
        say(f"{prefix}: {doing} with recipe {plan.record.recipe.name} ({plan.record.recipe.hash()}) in "
            f"{plan.run_dir}")
        try:
            result = run_training(plan.model, dataset, protocol, plan.record.recipe, out_dir, seed=plan.record.seed,
                                  pretrained=pretrained, options=options, resume=True, progress=progress,
                                  dataset_record=plan.record.dataset, model_factory=model_factory)
        except Exception as exc:  # a failing model must not stop the others; the table shows it as failed
            say(f"{prefix}: failed: {_describe(exc)}")
            outcomes.append(ModelOutcome(plan.model, "failed", plan.run_dir, plan.record, error=_describe(exc),
                                         traceback=traceback.format_exc()))
            continue
        outcomes.append(ModelOutcome(plan.model, action, result.run_dir, plan.record, result.metrics))
    return CompareResult(tuple(outcomes))
