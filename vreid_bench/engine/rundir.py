"""The run directory: everything a run leaves behind, and where it goes.

Layout::

    <out>/<dataset name>/<model>-<protocol name>-<identity hash>/
      config.yaml      model, seed, pretrained weights, dataset {name, source, root, fingerprint, options,
                       captions (store, selector, count, sha256, sources: where the model trains on them)},
                       protocol, recipe (every value), recipe name and hash
      recipe.yaml      the resolved recipe with each value's source, as `vreid recipe show` prints it
      log.jsonl        one JSON object per training step, epoch and intermediate evaluation
      scalars.csv      a row per step and evaluation: epoch, step, lr, every loss term, eval metrics
      tensorboard/     the same as TensorBoard event files (with the [tensorboard] extra installed)
      checkpoint.pt    resumable state, rewritten atomically after each epoch (removed at the end unless kept)
      model.pt         final weights (state dict), what ``vreid eval`` loads
      features.npz     the test features the metrics were computed from (``vreid_bench.engine.saved``)
      metrics.json     written last: a run without it did not finish; every query's AP and first-match rank in it
      metrics-<protocol>.json, features-<sampling>.npz, sensitivity.json   from later ``vreid eval`` calls

The folder name is a function of what decides the result (model, recipe hash, seed, weights, protocol hash,
dataset fingerprint and options), so ``vreid compare`` can find a finished run and skip it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml

from vreid_bench.data import VideoReIDDataset
from vreid_bench.errors import ConfigError, DatasetNotFoundError
from vreid_bench.io import atomic_write, atomic_write_json, atomic_write_text
from vreid_bench.protocol import Protocol
from vreid_bench.recipe import Recipe

CONFIG_FILE = "config.yaml"
RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.json"
LOG_FILE = "log.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "model.pt"
SENSITIVITY_FILE = "sensitivity.json"


@dataclass(frozen=True)
class DatasetRecord:
    """Which dataset a run used and how to load it again."""

    name: str
    source: str  # registered name or dataset directory, as given to ``vreid_bench.datasets.load``
    root: str | None = None
    fingerprint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # loader options, e.g. the split of iLIDS-VID
    captions: dict[str, Any] | None = None  # CaptionSet.to_dict() of the training captions, where the model uses them
    identities_verified: bool | None = None  # False: a build's tracker identities, never reviewed

    @classmethod
    def of(cls, dataset: VideoReIDDataset, source: str | None = None, root: str | None = None) -> "DatasetRecord":
        """Without ``source``, a dataset with a manifest is found again by its directory, others by name."""
        if source is None:
            has_manifest = dataset.root is not None and (Path(dataset.root) / "manifest.json").is_file()
            source = str(Path(dataset.root).resolve()) if has_manifest else dataset.name
            root = root if root is not None else dataset.root
        root = str(Path(root).resolve()) if root is not None else None
        options = {"split": dataset.notes["split"]} if "split" in dataset.notes else {}
        captions = dataset.captions.to_dict() if dataset.captions is not None else None
        verified = dataset.notes.get("identities_verified")
        return cls(name=dataset.name, source=source, root=root, fingerprint=dataset.fingerprint, options=options,
                   captions=captions, identities_verified=None if verified is None else bool(verified))

    def without_captions(self) -> "DatasetRecord":
        return replace(self, captions=None) if self.captions is not None else self

    def load(self) -> VideoReIDDataset:
        """The dataset again, for evaluation: without captions, which no model reads at inference."""
        from vreid_bench.datasets import load

        dataset = load(self.source, root=self.root, captions="none", **self.options)
        if self.fingerprint and dataset.fingerprint and dataset.fingerprint != self.fingerprint:
            raise DatasetNotFoundError(
                f"dataset {self.name!r} at {self.source} has changed since this run (fingerprint "
                f"{dataset.fingerprint[:12]}, the run used {self.fingerprint[:12]}); restore that version or "
                "train again"
            )
        return dataset


_WEIGHT_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, so a file is read once


def describe_weights(pretrained: str | None) -> dict[str, Any] | None:
    """What starting weights are: a local file by its size and content hash (so a different file at the same path
    is a different run), a tag or ``none`` by name; None for the model's usual weights."""
    if pretrained is None:
        return None
    path = Path(pretrained)
    if not path.is_file():
        return {"name": pretrained}
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _WEIGHT_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _WEIGHT_HASHES[key] = digest.hexdigest()
    return {"name": pretrained, "size": stat.st_size, "sha256": _WEIGHT_HASHES[key]}


def weights_identity(weights: dict[str, Any] | None) -> str | None:
    """The part of the weights that decides a result: the content hash of a file, else the name."""
    if weights is None:
        return None
    return weights.get("sha256") or weights.get("name")


@dataclass(frozen=True)
class RunRecord:
    """What ``config.yaml`` holds: enough to name, repeat and re-evaluate the run."""

    model: str
    dataset: DatasetRecord
    protocol: Protocol
    recipe: Recipe
    seed: int = 0
    pretrained: str | None = None  # backbone weights: None for the model's usual ones, a tag, a file, or "none"
    weights: dict[str, Any] | None = None  # describe_weights(pretrained), recorded when the run was planned

    @classmethod
    def create(cls, model: str, dataset: DatasetRecord, protocol: Protocol, recipe: Recipe, seed: int = 0,
               pretrained: str | None = None) -> "RunRecord":
        """A record whose weights are described now (a local file read and hashed); the dataset's captions are
        kept only where the model trains on them, so they name (and re-run) only the runs they change."""
        from vreid_bench.models import uses_dataset_captions

        if not uses_dataset_captions(model, recipe.model):
            dataset = dataset.without_captions()
        return cls(model, dataset, protocol, recipe, seed, pretrained, describe_weights(pretrained))

    def identity_hash(self) -> str:
        """Short hash of everything that decides the result; names the run directory."""
        payload = {
            "model": self.model,
            "recipe": self.recipe.hash(),
            "seed": self.seed,
            "weights": weights_identity(self.weights) if self.weights else self.pretrained,
            "protocol": self.protocol.hash(),
            "dataset": [self.dataset.fingerprint or self.dataset.name, self.dataset.options],
        }
        if self.dataset.captions:
            payload["captions"] = self.dataset.captions["sha256"]
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "seed": self.seed,
            "pretrained": self.pretrained,
            "weights": self.weights,
            "dataset": {"name": self.dataset.name, "source": self.dataset.source, "root": self.dataset.root,
                        "fingerprint": self.dataset.fingerprint, "options": self.dataset.options,
                        "captions": self.dataset.captions, "identities_verified": self.dataset.identities_verified},
            "protocol": self.protocol.to_dict(),
            "recipe_name": self.recipe.name,
            "recipe_hash": self.recipe.hash(),
            "recipe": self.recipe.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        recipe = Recipe.from_dict(data["recipe"])
        stored = data.get("recipe_hash")
        if stored and stored != recipe.hash():
            raise ConfigError(f"the recipe in this run's {CONFIG_FILE} hashes to {recipe.hash()}, not the "
                              f"{stored} it was trained with: the file was edited; restore it or train again")
        return cls(model=str(data["model"]), dataset=DatasetRecord(**data["dataset"]),
                   protocol=Protocol.from_dict(data["protocol"]), recipe=recipe, seed=int(data.get("seed", 0)),
                   pretrained=data.get("pretrained"), weights=data.get("weights"))


def run_dir_for(out: str | os.PathLike[str], record: RunRecord) -> Path:
    """``<out>/<dataset>/<model>-<protocol>-<hash>``: the same configuration always lands in the same folder."""
    safe_dataset = record.dataset.name.replace(os.sep, "_")
    return Path(out) / safe_dataset / f"{record.model}-{record.protocol.name}-{record.identity_hash()}"


def write_run_config(run_dir: Path, record: RunRecord) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(record.to_dict(), sort_keys=False))
    header = f"the recipe {record.model} trained with in this run (hash {record.recipe.hash()})"
    atomic_write_text(run_dir / RECIPE_FILE, record.recipe.to_yaml(header))


def read_run_config(run_dir: str | os.PathLike[str]) -> RunRecord:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise DatasetNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); give the folder "
                                   "`vreid run` printed")
    try:
        return RunRecord.from_dict(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid run config ({type(exc).__name__}: {exc}); a run directory "
                          "written by an older vreid must be trained again") from None


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    atomic_write_json(path, metrics)


def read_metrics(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(run_dir) / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def is_finished(run_dir: str | os.PathLike[str]) -> bool:
    return (Path(run_dir) / METRICS_FILE).is_file()


def save_torch_atomic(obj: object, path: Path) -> None:
    """``torch.save`` through :func:`vreid_bench.io.atomic_write`: a crash never leaves half a checkpoint."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


class JsonLog:
    """Append-only JSON-lines log, flushed per line so that a crash loses at most the line being written."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **record: Any) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def flush(self) -> None:
        """Nothing to do: every line is written at once (the run log's derived files are written here)."""

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with self.path.open() as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def truncate_to_epoch(self, epoch: int) -> None:
        """Drop the lines of epochs from ``epoch`` on: those a resumed run writes again."""
        kept = [r for r in self.records() if r.get("epoch", -1) < epoch]
        atomic_write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


SCALARS_FILE = "scalars.csv"
TENSORBOARD_FOLDER = "tensorboard"
SCALAR_EVENTS = ("step", "eval")  # the log's events that are rows of scalars.csv
LEADING_COLUMNS = ("event", "epoch", "step", "lr", "seconds")


class RunLog(JsonLog):
    """The training log: ``log.jsonl``, with ``scalars.csv`` (a row per step and per evaluation: epoch, step,
    lr, every loss term, eval metrics), rewritten from it at each epoch's end, and TensorBoard event files in
    ``tensorboard/`` where the ``[tensorboard]`` extra is installed (``tensorboard --logdir RUNS_DIR``).

    TensorBoard scalars are named ``train/<term>`` (each step), ``epoch/<term>`` (epoch means) and ``eval/<metric>``.
    A resumed run purges the events from its first step again, so the curves show one value per step.
    """

    def __init__(self, path: Path, tensorboard: bool = True) -> None:
        super().__init__(path)
        self._tensorboard = tensorboard
        self._writer: Any = None

    def start(self, first_step: int) -> None:
        """Open the TensorBoard writer (when available) for a run starting, or resuming, at ``first_step``."""
        if not self._tensorboard:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the [tensorboard] extra is not installed: scalars.csv alone
            return
        # A resumed run drops the events an interrupted one wrote from its first step on, so each step shows once.
        self._writer = SummaryWriter(str(self.path.parent / TENSORBOARD_FOLDER),
                                     purge_step=first_step if first_step > 1 else None)

    def write(self, **record: Any) -> None:
        super().write(**record)
        if self._writer is None:
            return
        prefix = {"step": "train", "epoch": "epoch", "eval": "eval", "final": "eval"}.get(str(record.get("event")))
        if prefix is None:
            return
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key not in ("event", "epoch", "step", "steps") and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                self._writer.add_scalar(f"{prefix}/{key}", float(value), step)

    def flush(self) -> None:
        """Rewrite ``scalars.csv`` from the log and flush the TensorBoard events."""
        rows = [r for r in self.records() if r.get("event") in SCALAR_EVENTS or r.get("event") == "final"]
        extra = sorted({key for row in rows for key in row} - set(LEADING_COLUMNS))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*LEADING_COLUMNS, *extra], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path.parent / SCALARS_FILE, buffer.getvalue())
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def git_revision() -> str | None:
    """The toolkit's commit (``-dirty`` with uncommitted changes), or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    dirty = status.returncode == 0 and bool(status.stdout.strip())
    return rev.stdout.strip() + ("-dirty" if dirty else "")
