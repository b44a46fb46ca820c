"""How a run executes, apart from what it computes.

What a run computes is decided by its recipe (:mod:`vreid_bench.recipe`), its seed, its starting weights, the
dataset and the evaluation protocol; :class:`RunOptions` holds the rest (processes, evaluation cadence, device),
which is left out of the run's identity: changing it never makes a new run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from vreid_bench.errors import ConfigError


def default_workers() -> int:
    """Data-loader processes: at most the core count, and at most 4."""
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class RunOptions:
    """``workers``: data-loader processes. ``eval_every``: also evaluate every N epochs (0: only at the end).
    ``eval_batch_size``: clips per forward pass while extracting features. ``keep_checkpoint``: keep the
    resumable checkpoint (optimizer state: twice the model) once the run has finished. ``log_every``: read the
    loss terms (a host sync) and write a log row every N steps, the mean of those steps."""

    workers: int = field(default_factory=default_workers)
    eval_every: int = 0
    eval_batch_size: int = 32
    device: Literal["auto", "cpu", "cuda"] = "auto"
    keep_checkpoint: bool = False
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.workers < 0 or self.eval_every < 0:
            raise ConfigError(f"workers={self.workers} and eval_every={self.eval_every} must be >= 0")
        if self.log_every < 1:
            raise ConfigError(f"log_every={self.log_every} must be >= 1")
        if self.eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size={self.eval_batch_size} must be >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device={self.device!r}: use auto, cpu or cuda")
