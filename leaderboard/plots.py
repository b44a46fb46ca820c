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
