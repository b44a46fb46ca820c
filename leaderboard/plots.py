"""CMC curves as PNG, drawn with matplotlib's Agg canvas.

Figures are built from :class:`matplotlib.figure.Figure` directly rather than through ``pyplot``, so no global
figure registry or backend switch is involved and plotting works the same in a CLI, a test or a server.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vreid_bench.io import atomic_write_bytes

DEFAULT_MAX_RANK = 20
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def cmc_png(curves: Mapping[str, Sequence[float]], title: str, max_rank: int = DEFAULT_MAX_RANK,
            dpi: int = 110) -> bytes:
    """PNG bytes of one CMC plot: matching rate (%) against rank 1..``max_rank``, one line per label.

    ``curves`` hold fractions (CMC[k-1] = share of queries with a true match in the top k); curves shorter than
    ``max_rank`` are drawn as far as they go.
    """
    figure = Figure(figsize=(6.4, 4.0), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, (label, cmc) in enumerate(curves.items()):
        ranks = list(range(1, min(max_rank, len(cmc)) + 1))
        values = [100 * float(v) for v in cmc[: len(ranks)]]
        axes.plot(ranks, values, marker=MARKERS[index % len(MARKERS)], markersize=4, linewidth=1.5,
                  label=f"{label} (R1 {values[0]:.1f})" if values else label)
    axes.set_xlim(1, max_rank)
    axes.set_ylim(0, 102)
    axes.set_xticks(_rank_ticks(max_rank))
    axes.set_xlabel("rank")
    axes.set_ylabel("matching rate (%)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    if curves:
        axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _rank_ticks(max_rank: int) -> list[int]:
    step = 1 if max_rank <= 10 else 5 if max_rank <= 50 else 10
    return sorted({1, *range(step, max_rank + 1, step)})


def write_cmc_png(path: str | os.PathLike[str], curves: Mapping[str, Sequence[float]], title: str,
                  max_rank: int = DEFAULT_MAX_RANK) -> Path:
    path = Path(path)
    atomic_write_bytes(path, cmc_png(curves, title, max_rank))
    return path


def efficiency_png(points: Sequence[tuple[str, float, float | None, float | None]], title: str,
                   dpi: int = 110) -> bytes:
    """PNG bytes of mAP (%) against GFLOPs per clip and against clips/s, one marker per model.

    ``points``: (label, mAP as a fraction, GFLOPs per clip, clips/s); a missing cost leaves that panel's point out.
    """
    figure = Figure(figsize=(9.6, 4.0), dpi=dpi)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2)
    for axes, position, xlabel in ((panels[0], 2, "GFLOPs per clip (inference, log scale)"),
                                   (panels[1], 3, "clips/s (inference, log scale)")):
        shown = [(p[0], 100 * p[1], p[position]) for p in points if p[position]]
        for index, (label, mAP, cost) in enumerate(shown):
            axes.scatter([cost], [mAP], marker=MARKERS[index % len(MARKERS)], s=40, label=label)
            axes.annotate(label, (cost, mAP), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if shown:
            axes.set_xscale("log")
        axes.set_xlabel(xlabel)
        axes.set_ylabel("mAP (%)")
        axes.grid(True, alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def caption_audit_png(audit: Mapping[str, object], confusers: Sequence[int], title: str, dpi: int = 110) -> bytes:
    """PNG bytes of a caption audit: identities by number of confusers, then per attribute either precision,
    recall and hallucination rate against the truth, or the share of statements against the identity's majority."""
    figure = Figure(figsize=(10.4, 4.0), dpi=dpi)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    if confusers:
        top = max(confusers)
        left.hist(confusers, bins=[b - 0.5 for b in range(top + 2)], color="#4c72b0", rwidth=0.85)
        left.set_xticks(list(range(0, top + 1, max(1, (top + 1) // 10))))
    left.set_xlabel("other identities as close as its own captions (confusers)")
    left.set_ylabel("identities")
    left.set_title("distinctiveness", fontsize=9)
    left.grid(True, axis="y", alpha=0.3)

    truth = [row for row in audit.get("truth", []) if row["attribute"] != "all"]  # type: ignore[union-attr]
    if truth:
        names = [row["attribute"] for row in truth]
        positions = range(len(names))
        for offset, key, colour in ((-0.27, "precision", "#55a868"), (0.0, "recall", "#8172b2"),
                                    (0.27, "hallucination", "#c44e52")):
            values = [100 * (row[key] or 0.0) for row in truth]
            right.bar([p + offset for p in positions], values, width=0.26, label=key, color=colour)
        right.set_xticks(list(positions))
        right.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        right.set_ylabel("% of statements (recall: of attributes)")
        right.set_title("against the attribute sheets", fontsize=9)
        right.legend(fontsize=8, loc="upper center", ncol=3)
    else:
        checked = audit.get("consistency", {})  # type: ignore[assignment]
        names = list(checked)
        values = [100 * checked[n]["against"] / checked[n]["checked"] for n in names]  # type: ignore[index]
        right.bar(range(len(names)), values, color="#c44e52")
        right.set_xticks(list(range(len(names))))
        right.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        right.set_ylabel("% of statements against the majority")
        right.set_title("consistency within each identity (no truth)", fontsize=9)
    right.set_ylim(0, 118)  # room above 100 % for the legend
    right.set_yticks(range(0, 101, 20))
    right.grid(True, axis="y", alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def caption_study_png(table: Sequence[Mapping[str, object]], title: str, dpi: int = 110) -> bytes:
    """PNG bytes of the caption study: mAP and R1 (%) against the hallucination rate of the training captions,
    95 % intervals as error bars; conditions without caption content (placeholder, none) as horizontal bands."""
    figure = Figure(figsize=(9.6, 4.0), dpi=dpi)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2)
    rated = sorted((row for row in table if row.get("rate") is not None), key=lambda row: float(row["rate"]))
    free = [row for row in table if row.get("rate") is None]
    for axes, key in zip(panels, ("mAP", "R1")):
        def pct(row: Mapping[str, object], suffix: str = "") -> float:
            value = row.get(f"{key}{suffix}")
            return 100 * float(value) if value is not None else float("nan")

        if rated:
            xs = [100 * float(row["rate"]) for row in rated]
            ys = [pct(row) for row in rated]
            below = [y - pct(row, "_low") for y, row in zip(ys, rated)]
            above = [pct(row, "_high") - y for y, row in zip(ys, rated)]
            axes.errorbar(xs, ys, yerr=[below, above], marker="o", capsize=4, linewidth=1.5,
                          label="template captions")
        for index, row in enumerate(free):
            colour = ("#c44e52", "#8c8c8c", "#55a868")[index % 3]
            axes.axhline(pct(row), color=colour, linestyle="--", linewidth=1.2, label=str(row["condition"]))
            axes.axhspan(pct(row, "_low"), pct(row, "_high"), color=colour, alpha=0.12)
        axes.set_xlabel("attributes made wrong in the training captions (%)")
        axes.set_ylabel(f"{key} (%)")
        axes.set_ylim(0, 102)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8, loc="lower left")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
