"""Run directories -> one pandas DataFrame of results, grouped into comparable tables.

The leaderboard reads only what a run leaves behind (``config.yaml`` and ``metrics*.json``), so results from
other machines or older checkouts can be compared as long as their files are there. Every ``metrics*.json`` in
a run directory is one result: ``metrics.json`` under the run's own protocol, ``metrics-<protocol>.json`` from
``vreid eval --protocol`` under another, ``metrics@<dataset>-<protocol>.json`` from ``vreid eval RUN --dataset
OTHER`` on another dataset. A run directory with ``config.yaml`` and no ``metrics.json`` is an unfinished (or
failed) run and is listed as such, never ranked.

Results are only ever ranked together inside one group of :data:`GROUP_KEYS`: models trained on the same dataset
content and tested on the same dataset content (fingerprints) under the same protocol; a group whose training
and test datasets differ is a cross-dataset table. The group's protocol key is its family hash (the protocol hash
without the split), so the 10 splits of iLIDS-VID form one table; each result keeps its split, seed and recipe,
and the table aggregates them (:mod:`leaderboard.tables`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from leaderboard.reported import ReportedResult, reported_for
from leaderboard.visrank import read_visrank
from vreid_bench.engine.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    SENSITIVITY_FILE,
    RunRecord,
    read_run_config,
    weights_identity,
)
from vreid_bench.errors import DatasetNotFoundError, VreidError

GROUP_KEYS = ("train_dataset", "train_dataset_fingerprint", "dataset", "dataset_fingerprint", "protocol",
              "protocol_family")
RANKS = (1, 5, 10, 20)
REQUIRED_METRICS = ("model", "dataset", "protocol", "protocol_hash", "mAP", "cmc")

MEASURED = "measured"
REPORTED = "reported"
FINISHED = "finished"
UNFINISHED = "unfinished"
FAILED = "failed"

COLUMNS = (
    *GROUP_KEYS, "protocol_hash", "benchmark", "model", "label", "source", "status", "recipe", "recipe_hash",
    "captions", "pretrained", "weights", "identities_verified", "split", "num_splits", "seed", "mAP",
    *(f"R{k}" for k in RANKS), "mINP", "params", "training_params",
    "gflops_per_clip", "clips_per_s", "epochs", "num_valid_queries", "num_skipped_queries", "cmc", "query_ap",
    "query_first_rank", "query_digest", "wall_s", "device", "inference_dtype", "git_rev", "run_dir", "reference",
    "note",
)


@dataclass(frozen=True)
class RunExtras:
    """What a report shows beside its tables: the protocol sensitivity of runs that have one (``vreid eval RUN
    --sensitivity``, by run directory), the audits of the captions runs trained on (``vreid caption audit``, by
    audit folder) and the ranked lists drawn for runs (``vreid visrank``)."""

    sensitivity: tuple[tuple[str, dict[str, Any]], ...] = ()
    caption_audits: tuple[tuple[str, dict[str, Any]], ...] = ()
    ranked_lists: tuple[tuple[str, dict[str, Any]], ...] = ()  # (visrank folder, its index.json), ``vreid visrank``


@dataclass(frozen=True)
class RunCollection:
    """The results found, one row each, the files that could not be read (with the reason), and the extras."""

    frame: pd.DataFrame
    problems: tuple[str, ...] = ()
    extras: RunExtras = RunExtras()


@dataclass(frozen=True)
class ResultGroup:
    """Results that may be ranked together: trained on one dataset fingerprint, tested on one dataset fingerprint
    under one protocol hash."""

    train_dataset: str
    train_dataset_fingerprint: str
    dataset: str
    dataset_fingerprint: str
    protocol: str
    protocol_family: str
    rows: pd.DataFrame

    @property
    def cross_dataset(self) -> bool:
        return self.train_dataset_fingerprint != self.dataset_fingerprint

    @property
    def measured(self) -> pd.DataFrame:
        return self.rows[self.rows["source"] == MEASURED]

    @property
    def reported(self) -> pd.DataFrame:
        return self.rows[self.rows["source"] == REPORTED]

    @property
    def title(self) -> str:
        flag = " (tracker identities, not reviewed)" if self.tracker_identities else ""
        if self.cross_dataset:
            return (f"cross-dataset: trained on {self.train_dataset}, tested on {self.dataset} — {self.protocol}"
                    f"{flag}")
        return f"{self.dataset} — {self.protocol}{flag}"

    @property
    def num_splits(self) -> int | None:
        """How many splits the dataset has (None for a dataset with one)."""
        values = [int(v) for v in self.rows["num_splits"].dropna()] if "num_splits" in self.rows else []
        return max(values) if values else None

    @property
    def tracker_identities(self) -> bool:
        """The test dataset's identities are a tracker's, never reviewed (a built dataset's manifest says so)."""
        values = self.rows["identities_verified"] if "identities_verified" in self.rows else []
        return any(value is not None and not pd.isna(value) and not bool(value) for value in values)

    @property
    def caption(self) -> str:
        """What makes the table's results comparable, so two tables are never mistaken for one."""
        fingerprint = self.dataset_fingerprint[:12] if self.dataset_fingerprint else "none recorded"
        splits = f", mean ± std over its {self.num_splits} splits" if self.num_splits else ""
        splits += "; tracker identities, not reviewed" if self.tracker_identities else ""
        trained = (f"trained on {self.train_dataset} (fingerprint {self.train_dataset_fingerprint[:12]}), tested on "
                   if self.cross_dataset else "")
        return (f"{trained}dataset {self.dataset} (fingerprint {fingerprint}), protocol {self.protocol} "
                f"(hash {self.protocol_family}){splits}")

    @property
    def slug(self) -> str:
        """A file-name-safe name, unique per group (the hashes tell same-named groups apart)."""
        parts = [self.dataset, self.protocol, self.protocol_family[:8], (self.dataset_fingerprint or "none")[:8]]
        if self.cross_dataset:
            parts = [f"from-{self.train_dataset}", (self.train_dataset_fingerprint or "none")[:8], *parts]
        return "-".join("".join(c if c.isalnum() or c in "-_." else "_" for c in part) for part in parts)


def find_run_dirs(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every folder under ``roots`` (or a root itself) that holds a run's ``config.yaml`` or ``metrics.json``."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if not root.is_dir():
            raise DatasetNotFoundError(f"runs folder {root} does not exist; give the --out folder of `vreid run` "
                                       "or `vreid compare`")
        for marker in (CONFIG_FILE, METRICS_FILE):
            found.update(path.parent for path in root.rglob(marker) if not path.parent.name.startswith("."))
    return sorted(found)


def _percent_ranks(cmc: Sequence[float]) -> dict[str, float | None]:
    return {f"R{k}": float(cmc[k - 1]) if k <= len(cmc) else None for k in RANKS}


def metrics_row(metrics: dict[str, Any], run_dir: Path | None) -> dict[str, Any]:
    """One result row from the content of a ``metrics*.json`` (metric values stay fractions in [0, 1])."""
    missing = [key for key in REQUIRED_METRICS if key not in metrics]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    cmc = [float(x) for x in metrics["cmc"]]
    fingerprint = str(metrics.get("dataset_fingerprint") or "")
    return {
        "train_dataset": str(metrics.get("train_dataset") or metrics["dataset"]),
        "train_dataset_fingerprint": str(metrics.get("train_dataset_fingerprint") or fingerprint),
        "dataset": str(metrics["dataset"]),
        "dataset_fingerprint": fingerprint,
        "protocol": str(metrics["protocol"]),
        "protocol_family": str(metrics.get("protocol_family") or metrics["protocol_hash"]),
        "protocol_hash": str(metrics["protocol_hash"]),
        "benchmark": metrics.get("benchmark"),
        "model": str(metrics["model"]),
        "source": MEASURED,
        "status": FINISHED,
        "recipe": metrics.get("recipe"),
        "recipe_hash": metrics.get("recipe_hash"),
        "captions": captions_label(metrics.get("captions")),
        "captions_info": metrics.get("captions"),
        "identities_verified": metrics.get("identities_verified"),
        "pretrained": metrics.get("pretrained"),
        "weights": metrics.get("weights") or metrics.get("pretrained"),
        "split": metrics.get("split"),
        "num_splits": metrics.get("num_splits"),
        "mAP": float(metrics["mAP"]),
        **_percent_ranks(cmc),
        "mINP": _optional_float(metrics.get("mINP")),
        "params": _optional_float(metrics.get("params")),
        "training_params": _optional_float(metrics.get("training_params")),
        "gflops_per_clip": _optional_float(metrics.get("gflops_per_clip")),
        "clips_per_s": _optional_float(metrics.get("clips_per_s")),
        "epochs": metrics.get("epochs"),
        "seed": metrics.get("seed", 0),
        "num_valid_queries": metrics.get("num_valid_queries"),
        "num_skipped_queries": metrics.get("num_skipped_queries"),
        "cmc": cmc,
        "query_ap": metrics.get("query_ap"),
        "query_first_rank": metrics.get("query_first_rank"),
        "query_digest": metrics.get("query_digest"),
        "wall_s": _optional_float(metrics.get("wall_s")),
        "device": metrics.get("device"),
        "inference_dtype": metrics.get("inference_dtype"),
        "git_rev": metrics.get("git_rev"),
        "run_dir": str(run_dir) if run_dir is not None else None,
    }


def captions_label(captions: dict[str, Any] | None) -> str | None:
    """The training captions of a run in a table cell: their source and content hash (None without any)."""
    if not captions:
        return None
    sources = captions.get("sources") or {}
    source = next(iter(sources)) if len(sources) == 1 else "mixed"
    return f"{source} {str(captions.get('sha256', ''))[:8]}"


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


UNFINISHED_NOTE = ("no metrics.json: still training, stopped or failed; the same `vreid run --resume` or "
                   "`vreid compare` command continues it")


def pending_row(record: RunRecord, run_dir: Path, status: str = UNFINISHED,
                note: str = UNFINISHED_NOTE) -> dict[str, Any]:
    """A run without results (unfinished, or failed in ``vreid compare``), placed in its group by its config."""
    return {
        "train_dataset": record.dataset.name,
        "train_dataset_fingerprint": record.dataset.fingerprint or "",
        "dataset": record.dataset.name,
        "dataset_fingerprint": record.dataset.fingerprint or "",
        "protocol": record.protocol.name,
        "protocol_family": record.protocol.family_hash(),
        "protocol_hash": record.protocol.hash(),
        "model": record.model,
        "source": MEASURED,
        "status": status,
        "recipe": record.recipe.name,
        "recipe_hash": record.recipe.hash(),
        "captions": captions_label(record.dataset.captions),
        "identities_verified": record.dataset.identities_verified,
        "pretrained": record.pretrained,
        "weights": weights_identity(record.weights) or record.pretrained,
        "split": record.protocol.split,
        "num_splits": record.dataset.options.get("num_splits"),
        "epochs": record.recipe.epochs,
        "seed": record.seed,
        "cmc": [],
        "run_dir": str(run_dir),
        "note": note,
    }


def read_run(run_dir: Path) -> list[dict[str, Any]]:
    """The result rows of one run directory: one per metrics file, or one unfinished row.

    Raises ``ValueError`` or :class:`VreidError` for unreadable files; :func:`collect_runs` turns those into
    problems so that one broken folder does not hide every other result.
    """
    metric_files = sorted(run_dir.glob("metrics*.json"))
    if metric_files:
        rows = []
        for path in metric_files:
            try:
                rows.append(metrics_row(json.loads(path.read_text()), run_dir))
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: {exc}") from None
        return rows
    return [pending_row(read_run_config(run_dir), run_dir)]


def frame_from_rows(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> a DataFrame with every column of :data:`COLUMNS` (absent values as None) and labels set."""
    frame = pd.DataFrame([{column: row.get(column) for column in COLUMNS} for row in rows], columns=list(COLUMNS))
    frame = frame.astype(object).where(frame.notna(), None)
    frame["note"] = frame["note"].fillna("")
    frame["label"] = _labels(frame)
    return frame


def _labels(frame: pd.DataFrame) -> list[str]:
    """The model name, plus the recipe (and the captions) where one table holds a model trained with several."""
    if frame.empty:
        return []
    groups = frame.groupby([*GROUP_KEYS, "source", "model"], dropna=False)
    recipes = groups["recipe_hash"].transform("nunique")
    captions = groups["captions"].transform(lambda values: values.fillna("none").nunique())
    labels = []
    for (_, row), recipe_count, caption_count in zip(frame.iterrows(), recipes, captions):
        label = row["label"] if row["source"] == REPORTED else row["model"]
        if recipe_count > 1 and row["recipe_hash"]:
            label = f"{label} ({row['recipe']} {str(row['recipe_hash'])[:8]})"
        if caption_count > 1:
            label = f"{label} [captions {row['captions'] or 'none'}]"
        labels.append(label)
    return labels


def collect_runs(roots: Iterable[str | os.PathLike[str]]) -> RunCollection:
    """Every result under ``roots``; raises when there is none at all, since an empty table helps nobody."""
    roots = list(roots)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    sensitivity: list[tuple[str, dict[str, Any]]] = []
    ranked: list[tuple[str, dict[str, Any]]] = []
    for run_dir in find_run_dirs(roots):
        ranked.extend((str(folder), index) for folder, index in read_visrank(run_dir))
        try:
            rows.extend(read_run(run_dir))
        except (ValueError, VreidError) as exc:
            problems.append(f"{run_dir}: skipped ({exc})")
        table = run_dir / SENSITIVITY_FILE
        if table.is_file():
            try:
                sensitivity.append((str(run_dir), json.loads(table.read_text())))
            except json.JSONDecodeError as exc:
                problems.append(f"{table}: skipped ({exc})")
    if not rows:
        where = ", ".join(str(root) for root in roots)
        raise DatasetNotFoundError(f"no run results under {where}; train some with `vreid run` or "
                                   "`vreid compare`, or give the folder they wrote to")
    return RunCollection(frame_from_rows(rows), tuple(problems),
                         RunExtras(tuple(sensitivity), caption_audits(row.get("captions_info") for row in rows),
                                   tuple(ranked)))


def caption_audits(captions: Iterable[dict[str, Any] | None]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The audits written beside the caption stores runs trained on (``<store folder>/caption-audit/``), given
    the ``captions`` records of those runs' metrics."""
    from builders.captions.audit import AUDIT_FOLDER, read_audit

    found: dict[str, dict[str, Any]] = {}
    for record in captions:
        store = (record or {}).get("store")
        folder = str(Path(store).parent / AUDIT_FOLDER) if store else None
        if folder and folder not in found:
            audit = read_audit(folder)
            if audit is not None:
                found[folder] = audit
    return tuple(found.items())


def reported_rows(benchmark: str | None, dataset: str, fingerprint: str, protocol: str,
                  protocol_family: str) -> list[dict[str, Any]]:
    """Published numbers on ``benchmark``, placed beside one measured (in-dataset) group (metrics as fractions)."""
    return [_reported_row(result, dataset, fingerprint, protocol, protocol_family)
            for result in reported_for(benchmark)]


def _reported_row(result: ReportedResult, dataset: str, fingerprint: str, protocol: str,
                  protocol_family: str) -> dict[str, Any]:
    def fraction(value: float | None) -> float | None:
        return None if value is None else value / 100

    return {"train_dataset": dataset, "train_dataset_fingerprint": fingerprint,
            "dataset": dataset, "dataset_fingerprint": fingerprint, "protocol": protocol,
            "protocol_family": protocol_family, "model": result.model, "label": result.display_name,
            "source": REPORTED, "status": FINISHED, "mAP": fraction(result.mAP), "R1": fraction(result.rank1),
            "cmc": [], "reference": result.source, "note": result.note, "benchmark": result.benchmark}


def with_reported(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the published numbers of the benchmark each group's dataset is (never of a dataset that
    is no such benchmark, synthetic footage above all), as rows whose source is ``reported``."""
    measured = frame[frame["source"] == MEASURED]
    extra = []
    for key, rows in measured.groupby(list(GROUP_KEYS), sort=True):
        _, train_fingerprint, dataset, fingerprint, protocol, family = key
        benchmarks = {b for b in rows["benchmark"] if b}
        if len(benchmarks) == 1 and train_fingerprint == fingerprint:  # papers report in-dataset results only
            extra += reported_rows(benchmarks.pop(), dataset, fingerprint, protocol, family)
    if not extra:
        return frame
    return frame_from_rows([*frame.to_dict("records"), *extra])


def result_groups(frame: pd.DataFrame) -> list[ResultGroup]:
    """One :class:`ResultGroup` per :data:`GROUP_KEYS` value, in-dataset tables first, each kind in sorted order."""
    groups = [ResultGroup(*key, rows.reset_index(drop=True))
              for key, rows in frame.groupby(list(GROUP_KEYS), sort=True)]
    return sorted(groups, key=lambda group: group.cross_dataset)
