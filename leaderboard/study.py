"""``vreid study captions``: how much does caption quality matter to CG-CLIP? The paper's stated limitation, measured.

On a build of synthetic footage (whose attribute sheets make exact captions possible), CG-CLIP is trained under
one recipe and protocol with

- template captions whose attributes are corrupted at each hallucination rate (``--rates``; 0 is exact), made by
  the template captioner (:mod:`builders.captions.template`) with one caption seed, and
- the ``placeholder`` caption source (one uninformative sentence for everyone: the refinement's capacity without
  caption content) and ``none`` (no caption-guided refinement), where asked,

for every seed. The study's captions go to their own caption store under ``<out>/captions/``, so the dataset's
own captions are untouched; runs go to ``<out>/runs/`` and are skipped or resumed as ``vreid compare`` does. The
table gives each condition's mAP and R1 with the 95 % paired-bootstrap intervals of the leaderboard
(:mod:`leaderboard.significance`) and its difference from the best condition; the plot draws mAP and R1 against
the hallucination rate, with the caption-free conditions as horizontal bands.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaderboard.significance import DEFAULT_RESAMPLES, DEFAULT_SEED, table_significance
from vreid_bench.errors import ConfigError
from vreid_bench.io import atomic_write_bytes, atomic_write_json, atomic_write_text

STUDY_MODEL = "cgclip"
CAPTION_FREE = ("placeholder", "none")
Announce = Callable[[str], None]


@dataclass(frozen=True)
class Condition:
    """One arm of the study: a hallucination rate (template captions) or a caption-free source."""

    name: str
    rate: float | None  # None for placeholder / none
    source: str  # the model's caption_source

    @property
    def sets(self) -> tuple[str, ...]:
        return () if self.source == "dataset" else (f"model.caption_source={self.source}",)


def conditions(rates: Sequence[float], sources: Sequence[str]) -> list[Condition]:
    if not rates and not sources:
        raise ConfigError("the study needs at least one hallucination rate (--rates) or caption source (--sources)")
    bad = [r for r in rates if not 0.0 <= r <= 1.0]
    if bad:
        raise ConfigError(f"--rates {bad[0]} is not a fraction; give rates between 0 and 1, e.g. 0,0.1,0.3,0.5")
    unknown = [s for s in sources if s not in CAPTION_FREE]
    if unknown:
        raise ConfigError(f"--sources {unknown[0]!r}: use {' and/or '.join(CAPTION_FREE)}")
    arms = [Condition(f"hallucination {rate:g}", rate, "dataset") for rate in sorted(set(rates))]
    return arms + [Condition(source, None, source) for source in dict.fromkeys(sources)]


@dataclass
class StudyRow:
    condition: Condition
    metrics: list[dict[str, Any]]  # one per seed
    caption_hallucination: float | None = None  # measured by the audit's reader, for template arms

    def mean(self, key: str) -> float | None:
        values = [m[key] if key != "R1" else m["cmc"][0] for m in self.metrics if m]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class StudyResult:
    rows: list[StudyRow]
    table: list[dict[str, Any]]
    folder: Path


def study_captions(dataset_dir: str | os.PathLike[str], out: str | os.PathLike[str], rates: Sequence[float],
                   sources: Sequence[str] = CAPTION_FREE, seeds: Sequence[int] = (0,), sets: Sequence[str] = (),
                   recipe_file: str | os.PathLike[str] | None = None, protocol_name: str | None = None,
                   caption_seed: int = 0, options: Any = None, progress: bool = True, model_factory: Any = None,
                   announce: Announce | None = None, resamples: int = DEFAULT_RESAMPLES) -> StudyResult:
    """Run the study (see the module docstring) and write ``study.json``, ``study.csv``, ``study.md``, ``study.png``."""
    from builders.captions import caption_dataset, caption_target, create_captioner
    from builders.captions.audit import audit_captions
    from leaderboard.compare import compare_models
    from vreid_bench.datasets import load
    from vreid_bench.protocol import get_protocol

    say = announce or (lambda line: None)
    arms = conditions(rates, sources)
    out = Path(out)
    captions_dir = out / "captions"
    rows = []
    for arm in arms:
        selector, measured = "none", None
        if arm.rate is not None:
            captioner = create_captioner("template", hallucination=arm.rate, seed=caption_seed)
            target = caption_target(dataset_dir, captions_dir=captions_dir)
            caption_dataset(target, captioner, progress=progress)
            selector = captioner.prompt_id
            audit = audit_captions(target.dataset, selector, captions_dir, similarity="tokens")
            overall = audit.overall_truth()
            measured = overall.hallucination if overall is not None else None
        dataset = load(dataset_dir, captions=selector, captions_dir=captions_dir)
        protocol = get_protocol(protocol_name or dataset.default_protocol)
        say(f"{arm.name}: training {STUDY_MODEL} with seeds {', '.join(map(str, seeds))}"
            + (f" (measured caption hallucination {100 * measured:.1f} %)" if measured is not None else ""))
        result = compare_models([STUDY_MODEL], dataset, protocol, out / "runs", recipe_file=recipe_file,
                                sets=[*sets, *arm.sets], seeds=seeds, options=options, progress=progress,
                                model_factory=model_factory, announce=say)
        if result.failed:
            raise ConfigError(f"{arm.name}: {result.failed[0].error}")
        rows.append(StudyRow(arm, [outcome.metrics for outcome in result.outcomes], measured))
    table = study_table(rows, resamples)
    folder = write_study(out, rows, table, Path(dataset_dir).name)
    return StudyResult(rows, table, folder)


def study_table(rows: Sequence[StudyRow], resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """One row per condition: mAP and R1 (means over seeds) with intervals and the difference from the best."""
    significance = table_significance([row.metrics for row in rows], resamples, seed)
    table = []
    for row, sig in zip(rows, significance.rows):
        table.append({
            "condition": row.condition.name, "rate": row.condition.rate, "caption_source": row.condition.source,
            "measured_hallucination": row.caption_hallucination, "seeds": len(row.metrics),
            "mAP": row.mean("mAP"), "mAP_low": sig.map_ci.low if sig.map_ci else None,
            "mAP_high": sig.map_ci.high if sig.map_ci else None,
            "R1": row.mean("R1"), "R1_low": sig.r1_ci.low if sig.r1_ci else None,
            "R1_high": sig.r1_ci.high if sig.r1_ci else None,
            "delta_mAP": sig.map_delta, "delta_mAP_low": sig.map_delta_ci.low if sig.map_delta_ci else None,
            "delta_mAP_high": sig.map_delta_ci.high if sig.map_delta_ci else None, "verdict": sig.verdict,
            "run_dirs": [m.get("run_dir") for m in row.metrics],
        })
    return table


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def study_markdown(table: Sequence[dict[str, Any]], dataset: str) -> str:
    lines = [f"### Caption quality study: {STUDY_MODEL} on {dataset}", "",
             "| condition | measured hallucination | seeds | mAP | mAP 95% CI | R1 | R1 95% CI "
             "| Δ mAP vs best (95% CI) | vs best |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table:
        delta = "-" if row["delta_mAP"] is None else (
            f"{_pct(row['delta_mAP'], True)} ({_pct(row['delta_mAP_low'], True)}, {_pct(row['delta_mAP_high'], True)})")
        lines.append(f"| {row['condition']} | {_pct(row['measured_hallucination'])} | {row['seeds']} | "
                     f"{_pct(row['mAP'])} | {_pct(row['mAP_low'])}–{_pct(row['mAP_high'])} | {_pct(row['R1'])} | "
                     f"{_pct(row['R1_low'])}–{_pct(row['R1_high'])} | {delta} | {row['verdict'] or '-'} |")
    return "\n".join(lines) + "\n"


def write_study(out: Path, rows: Sequence[StudyRow], table: Sequence[dict[str, Any]], dataset: str) -> Path:
    from leaderboard.plots import caption_study_png

    buffer = io.StringIO()
    columns = [key for key in table[0] if key != "run_dirs"]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    atomic_write_text(out / "study.csv", buffer.getvalue())
    atomic_write_text(out / "study.md", study_markdown(table, dataset))
    atomic_write_bytes(out / "study.png", caption_study_png(table, f"{STUDY_MODEL} on {dataset}: caption quality"))
    atomic_write_json(out / "study.json", {"model": STUDY_MODEL, "dataset": dataset, "rows": list(table)})
    return out
