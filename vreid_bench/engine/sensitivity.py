"""How much do the evaluation choices themselves move a run's numbers?

``protocol_sensitivity`` scores one finished run under its own protocol and under every variant that changes one
evaluation choice: the gallery with / without the queries, the plain / trapezoid AP, the video scope on / off (where
the tracklets have videos), re-ranking on / off, and dense / restricted-random test clips (which needs the model:
the features are extracted once and saved). Each row gives mAP, R1 and mINP with their difference to the run's own
protocol; the table is written to the run directory as ``sensitivity.json``, which the HTML report shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.rundir import SENSITIVITY_FILE, read_run_config
from vreid_bench.engine.saved import FEATURES_FILE, load_features
from vreid_bench.engine.train import ModelFactory, evaluate_run_under
from vreid_bench.io import atomic_write_json
from vreid_bench.protocol import Protocol

FLIPS: dict[str, tuple[str, str]] = {
    "gallery": ("gallery", "query+gallery"),
    "ap": ("plain", "trapezoid"),
    "gallery_scope": ("all", "video"),
    "rerank": (False, True),  # type: ignore[dict-item]
    "test_sampling": ("dense", "restricted_random"),
}
LABELS = {"gallery": "gallery", "ap": "AP", "gallery_scope": "scope", "rerank": "re-ranking",
          "test_sampling": "test clips"}


@dataclass(frozen=True)
class Variant:
    """One evaluation: which setting it changes (None for the run's own protocol) and its numbers."""

    change: str | None
    protocol: Protocol
    mAP: float
    rank1: float
    mINP: float
    queries: int

    def as_dict(self, own: "Variant") -> dict[str, Any]:
        return {"change": self.change or "the run's own protocol", "protocol": self.protocol.name,
                "protocol_hash": self.protocol.hash(), "mAP": self.mAP, "R1": self.rank1, "mINP": self.mINP,
                "delta_mAP": self.mAP - own.mAP, "delta_R1": self.rank1 - own.rank1,
                "delta_mINP": self.mINP - own.mINP, "queries": self.queries}


def variants_of(protocol: Protocol, has_videos: bool) -> list[tuple[str, Protocol]]:
    """Every protocol that changes exactly one evaluation choice of ``protocol``."""
    out = []
    for key, (first, second) in FLIPS.items():
        if key == "gallery_scope" and not has_videos:
            continue
        current = getattr(protocol, key)
        other = second if current == first else first
        name = f"{protocol.name}-{key}-{str(other).lower()}"
        change = f"{LABELS[key]}: {current} → {other}"
        out.append((change, dataclasses.replace(protocol, name=name, **{key: other})))
    return out


def protocol_sensitivity(run_dir: str | Path, options: RunOptions | None = None, progress: bool = True,
                         model_factory: ModelFactory | None = None) -> list[dict[str, Any]]:
    """The run's numbers under its own protocol and each one-choice variant; also written to ``sensitivity.json``."""
    run_dir = Path(run_dir)
    record = read_run_config(run_dir)
    own = evaluate_run_under(run_dir, record.protocol, options, progress, model_factory)  # saves features if missing
    videos = load_features(run_dir / FEATURES_FILE).query_labels.videos
    has_videos = len(videos) > 0 and all(videos)
    results = [Variant(None, record.protocol, own["mAP"], own["cmc"][0], own["mINP"], own["num_valid_queries"])]
    for change, protocol in variants_of(record.protocol, has_videos):
        metrics = evaluate_run_under(run_dir, protocol, options, progress, model_factory)
        results.append(Variant(change, protocol, metrics["mAP"], metrics["cmc"][0], metrics["mINP"],
                               metrics["num_valid_queries"]))
    rows = [variant.as_dict(results[0]) for variant in results]
    atomic_write_json(run_dir / SENSITIVITY_FILE, {"model": record.model, "dataset": record.dataset.name,
                                                   "recipe_hash": record.recipe.hash(), "rows": rows})
    return rows
