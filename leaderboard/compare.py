"""``vreid compare``: several models, one dataset, one protocol, one training configuration.

Only the model differs between the runs. ``model.<key>`` settings go to every model whose config has that key
(``model.backbone=tiny`` to all of them, ``model.stage1_epochs=10`` to CLIP-ReID alone), so each run directory
records exactly the settings its model used and is the same folder ``vreid run`` with those settings writes:
a finished run is found and skipped whichever command made it, an unfinished one is resumed from its checkpoint.
A model that fails is reported and the others still run.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from leaderboard.collect import FAILED, frame_from_rows, metrics_row, pending_row
from vreid_bench.data import VideoReIDDataset
from vreid_bench.engine.config import TrainConfig, apply_protocol_overrides
from vreid_bench.engine.rundir import CHECKPOINT_FILE, DatasetRecord, RunRecord, is_finished, read_metrics, run_dir_for
from vreid_bench.engine.train import ModelFactory, run_training
from vreid_bench.errors import ConfigError, VreidError
from vreid_bench.models import config_class, get_model_entry
from vreid_bench.protocol import Protocol

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


def model_settings(model: str) -> set[str]:
    return {field.name for field in dataclasses.fields(config_class(model))}


def overrides_for(model: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The ``model.<key>`` settings that ``model``'s config has."""
    known = model_settings(model)
    return {key: value for key, value in overrides.items() if key in known}


def check_overrides(models: Sequence[str], overrides: dict[str, Any]) -> None:
    """Reject a ``model.<key>`` that none of the models has: it is a typo, not a setting for another run."""
    known = set().union(*(model_settings(model) for model in models))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"model setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} belong to none of "
                          f"{', '.join(models)}; `vreid models` lists each model's settings")


def plan_runs(models: Sequence[str], dataset: VideoReIDDataset, protocol: Protocol, config: TrainConfig,
              out_dir: str | os.PathLike[str], dataset_record: DatasetRecord | None = None) -> list[PlannedRun]:
    """Each model's record and run folder, computed as :func:`~vreid_bench.engine.train.run_training` does."""
    names = canonical_models(models)
    check_overrides(names, config.model)
    record_of_dataset = dataset_record or DatasetRecord.of(dataset)
    effective_protocol = apply_protocol_overrides(protocol, config.protocol)
    plans = []
    for name in names:
        model_config = dataclasses.replace(config, model=overrides_for(name, config.model))
        record = RunRecord(model=name, dataset=record_of_dataset, protocol=effective_protocol, config=model_config)
        plans.append(PlannedRun(name, record, run_dir_for(out_dir, record)))
    return plans


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, VreidError) else f"{type(exc).__name__}: {text}"


def compare_models(models: Sequence[str], dataset: VideoReIDDataset, protocol: Protocol, config: TrainConfig,
                   out_dir: str | os.PathLike[str], dataset_record: DatasetRecord | None = None,
                   progress: bool = True, model_factory: ModelFactory | None = None,
                   announce: Announce | None = None) -> CompareResult:
    """Train and evaluate each model in turn under ``protocol`` and ``config``; see the module docstring.

    ``announce`` receives one line per model saying what happens to it (skipped, resumed, trained, failed).
    ``model_factory`` replaces the model registry, as in ``run_training``.
    """
    say = announce or (lambda line: None)
    plans = plan_runs(models, dataset, protocol, config, out_dir, dataset_record)
    outcomes = []
    for index, plan in enumerate(plans, 1):
        prefix = f"[{index}/{len(plans)}] {plan.model}"
        action = plan.action
        if action == "skipped":
            say(f"{prefix}: skipped, a finished run with this configuration exists in {plan.run_dir}")
            outcomes.append(ModelOutcome(plan.model, "skipped", plan.run_dir, plan.record, read_metrics(plan.run_dir)))
            continue
        doing = "resuming its unfinished run" if action == "resumed" else "training"
        say(f"{prefix}: {doing} in {plan.run_dir}")
        try:
            result = run_training(plan.model, dataset, protocol, plan.record.config, out_dir, resume=True,
                                  progress=progress, dataset_record=plan.record.dataset, model_factory=model_factory)
        except Exception as exc:  # a failing model must not stop the others; the table shows it as failed
            say(f"{prefix}: failed: {_describe(exc)}")
            outcomes.append(ModelOutcome(plan.model, "failed", plan.run_dir, plan.record, error=_describe(exc),
                                         traceback=traceback.format_exc()))
            continue
        outcomes.append(ModelOutcome(plan.model, action, result.run_dir, plan.record, result.metrics))
    return CompareResult(tuple(outcomes))
