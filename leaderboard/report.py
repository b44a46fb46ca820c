"""The HTML report (every leaderboard with its CMC plot, in one self-contained file) and leaderboard files.

Plots are embedded as base64 PNG and the style sheet is inline, so the file can be mailed, attached to a CI run
or opened offline and shows the same thing everywhere; it loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

from leaderboard.collect import RunExtras
from leaderboard.plots import DEFAULT_MAX_RANK, cmc_png, efficiency_png, write_cmc_png
from leaderboard.tables import (
    Leaderboard,
    board_html,
    efficiency_html,
    efficiency_markdown,
    efficiency_rows,
    to_csv,
    to_latex,
    to_markdown,
)
from vreid_bench import __version__
from vreid_bench.errors import ConfigError
from vreid_bench.io import atomic_write_bytes, atomic_write_text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 96rem;
       padding: 0 1rem; color: #1d232a; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; }
p.meta, ul.notes, ul.problems { color: #57606a; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
caption { caption-side: top; text-align: left; color: #57606a; padding-bottom: 0.4rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #e5e9ed; text-align: right; }
th[scope=row], thead th:first-child { text-align: left; }
thead th { border-bottom: 2px solid #8c959f; }
td.best { background: #dafbe1; }
tr.failed th, tr.unfinished th { color: #cf222e; }
table.reported { font-style: italic; color: #57606a; }
table.reported caption { font-style: normal; }
table.reported td:nth-last-child(-n+2), table.reported thead th:nth-last-child(-n+2) { text-align: left; }
div.scroll { overflow-x: auto; }
td { white-space: nowrap; }
img.cmc { max-width: 40rem; width: 100%; border: 1px solid #e5e9ed; }
img.efficiency { max-width: 60rem; width: 100%; border: 1px solid #e5e9ed; }
img.audit { max-width: 64rem; width: 100%; border: 1px solid #e5e9ed; }
img.visrank { max-width: 100%; border: 1px solid #e5e9ed; }
tr.tied th::after { content: " ≈"; color: #57606a; }
h3 { font-size: 1rem; margin-top: 1.4rem; }
"""


def plot_title(board: Leaderboard) -> str:
    """The table's title and what tells it apart from same-named tables (fingerprint, protocol hash)."""
    group = board.group
    return (f"{board.title}\nfingerprint {(group.dataset_fingerprint or 'none')[:12]}, "
            f"protocol hash {group.protocol_family}")


def efficiency_points(board: Leaderboard) -> list[tuple[str, float, float | None, float | None]]:
    """(label, mAP, GFLOPs per clip, clips/s) of the board's finished rows, for the efficiency plot."""
    points = []
    for row, _ in efficiency_rows(board):
        mAP = row.value("mAP")
        if mAP is not None:
            points.append((row.label, mAP / 100, row.value("gflops_per_clip"), row.value("clips_per_s")))
    return points


def _png_tag(css: str, alt: str, png: bytes) -> str:
    return (f'<img class="{css}" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')


def board_section(board: Leaderboard, max_rank: int = DEFAULT_MAX_RANK) -> str:
    parts = [f'<section id="{html.escape(board.group.slug)}">', f"<h2>{html.escape(board.title)}</h2>",
             board_html(board)]
    if board.curves:
        parts.append(_png_tag("cmc", f"CMC curves, {board.title}", cmc_png(board.curves, plot_title(board), max_rank)))
    points = efficiency_points(board)
    if points:
        parts += [f"<h3>Efficiency: {html.escape(board.title)}</h3>", efficiency_html(board),
                  _png_tag("efficiency", f"mAP against cost, {board.title}",
                           efficiency_png(points, plot_title(board)))]
    parts.append("</section>")
    return "\n".join(parts)


def sensitivity_section(sensitivity: Sequence[tuple[str, dict]]) -> str:
    """One table per run of how much each evaluation choice moves its mAP, R1 and mINP."""
    if not sensitivity:
        return ""
    parts = ["<h2>Protocol sensitivity</h2>",
             '<p class="meta">Each run under its own protocol and under every protocol that changes one evaluation '
             "choice; differences in points (`vreid eval RUN --sensitivity`).</p>"]
    for run_dir, data in sensitivity:
        rows = []
        for row in data.get("rows", []):
            own = row.get("change") == "the run's own protocol"
            cells = [row.get("change", ""), *(f"{100 * row[key]:.1f}" for key in ("mAP", "R1", "mINP")),
                     *("" if own else f"{100 * row[key]:+.1f}" for key in ("delta_mAP", "delta_R1", "delta_mINP")),
                     str(row.get("queries", ""))]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("change", "mAP", "R1", "mINP", "Δ mAP", "Δ R1", "Δ mINP", "queries"))
        caption = f"{data.get('model', '')} on {data.get('dataset', '')} ({run_dir})"
        parts.append(f'<table class="sensitivity"><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr>'
                     f"</thead><tbody>{''.join(rows)}</tbody></table>")
    return "\n".join(parts)


def _pct(value: object) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}"  # type: ignore[arg-type]


def caption_audit_section(audits: Sequence[tuple[str, dict]]) -> str:
    """Per caption store the runs trained on: its audit's figures, attribute table and plot."""
    if not audits:
        return ""
    parts = ["<h2>Training captions</h2>",
             '<p class="meta">Audits of the caption stores the runs above trained on (`vreid caption audit`): '
             "confusers are other identities of the same video whose captions are as close as the identity's own; "
             "hallucination is the share of attribute statements the attribute sheets contradict.</p>"]
    for folder, audit in audits:
        summary, distinct = audit.get("summary", {}), audit.get("distinctiveness", {})
        facts = [("captioned tracklets", summary.get("captioned_tracklets")),
                 ("identities", summary.get("identities")),
                 ("words per caption (mean)", f"{summary.get('words_mean', 0):.1f}"),
                 ("shared with another identity", f"{_pct(summary.get('shared_share'))} %"),
                 ("identities with no confuser", f"{_pct(distinct.get('distinct_share'))} %"),
                 ("confusers per identity (mean)", f"{distinct.get('mean_confusers', 0):.2f}"),
                 ("statements against the identity's majority", audit.get("contradictions")),
                 ("similarity", audit.get("similarity"))]
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
        caption = f"{audit.get('dataset', '')}: {audit.get('selector', '')} captions of {audit.get('store', '')}"
        parts.append(f'<table class="audit"><caption>{html.escape(caption)}</caption><tbody>{rows}</tbody></table>')
        truth = audit.get("truth") or []
        if truth:
            head = "".join(f"<th>{h}</th>" for h in ("attribute", "statements", "precision", "recall",
                                                       "hallucination"))
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
                str(row["attribute"]), str(row["statements"]), _pct(row["precision"]), _pct(row["recall"]),
                _pct(row["hallucination"]))) + "</tr>" for row in truth)
            parts.append(f'<table class="audit"><caption>against the attribute sheets</caption><thead><tr>{head}'
                         f"</tr></thead><tbody>{body}</tbody></table>")
        png = Path(folder) / "audit.png"
        if png.is_file():
            parts.append(_png_tag("audit", f"caption audit of {audit.get('dataset', '')}", png.read_bytes()))
    return "\n".join(parts)


HARDEST_SHOWN = 3


def ranked_lists_section(ranked: Sequence[tuple[str, dict]]) -> str:
    """Each run's hardest queries (lowest AP) among the ranked lists ``vreid visrank`` drew for it."""
    if not ranked:
        return ""
    parts = ["<h2>Hardest queries</h2>",
             '<p class="meta">Per run, the queries with the lowest AP among those `vreid visrank` drew: the query, '
             "then its top gallery tracklets, green for a true match, red for a wrong one.</p>"]
    for folder, index in ranked:
        entries = sorted((e for e in index.get("queries", []) if e.get("ap") is not None), key=lambda e: e["ap"])
        shown = [e for e in entries if (Path(folder) / e["file"]).is_file()][:HARDEST_SHOWN]
        if not shown:
            continue
        parts.append(f"<h3>{html.escape(str(index.get('model', '')))} — {html.escape(str(index.get('protocol', '')))} "
                     f'<span class="meta">({html.escape(str(index.get("run_dir", folder)))})</span></h3>')
        for entry in shown:
            alt = (f"query {entry['query']}: AP {100 * entry['ap']:.1f} %, first true match at rank "
                   f"{entry['first_rank']}")
            parts.append(f'<p class="meta">{html.escape(alt)}</p>'
                         + _png_tag("visrank", alt, (Path(folder) / entry["file"]).read_bytes()))
    return "\n".join(parts)


def render_report(boards: Sequence[Leaderboard], title: str = "vreid leaderboard", sources: Sequence[str] = (),
                  problems: Sequence[str] = (), notes: Sequence[str] = (), max_rank: int = DEFAULT_MAX_RANK,
                  extras: RunExtras = RunExtras()) -> str:
    """The whole report as an HTML document; ``notes`` are lines shown under the title."""
    meta = f"{len(boards)} table{'s' if len(boards) != 1 else ''}"
    if sources:
        meta += " from " + ", ".join(sources)
    meta += (f"; made by vreid {__version__}. Results are ranked only within a table: one dataset fingerprint "
             "under one protocol hash.")
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="meta">{html.escape(meta)}</p>']
    body += [f'<p class="meta">{html.escape(note)}</p>' for note in notes]
    body += [board_section(board, max_rank) for board in boards]
    if extras.ranked_lists:
        body.append(ranked_lists_section(extras.ranked_lists))
    if extras.caption_audits:
        body.append(caption_audit_section(extras.caption_audits))
    if extras.sensitivity:
        body.append(sensitivity_section(extras.sensitivity))
    if problems:
        body.append('<h2>Not included</h2><ul class="problems">'
                    + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(path: str | os.PathLike[str], boards: Sequence[Leaderboard], title: str = "vreid leaderboard",
                 sources: Sequence[str] = (), problems: Sequence[str] = (), notes: Sequence[str] = (),
                 max_rank: int = DEFAULT_MAX_RANK, extras: RunExtras = RunExtras()) -> Path:
    path = Path(path)
    atomic_write_text(path, render_report(boards, title, sources, problems, notes, max_rank, extras))
    return path


FORMATS = ("md", "csv", "html", "latex")


def plot_folder(path: Path) -> Path:
    """Where the CMC PNGs of a leaderboard written to ``path`` go: ``<stem>-cmc/`` beside it."""
    return path.with_name(f"{path.stem}-cmc")


def write_efficiency(path: str | os.PathLike[str], boards: Sequence[Leaderboard]) -> tuple[Path, list[Path]]:
    """The efficiency tables as Markdown at ``path`` and one plot per table in ``<stem>-efficiency/``."""
    path = Path(path)
    folder = path.with_name(f"{path.stem}-efficiency")
    plots = []
    for board in boards:
        points = efficiency_points(board)
        if points:
            plot = folder / f"{board.group.slug}.png"
            atomic_write_bytes(plot, efficiency_png(points, plot_title(board)))
            plots.append(plot)
    atomic_write_text(path, "\n".join(efficiency_markdown(board) for board in boards))
    return path, plots


def write_cmc_plots(folder: Path, boards: Sequence[Leaderboard], max_rank: int = DEFAULT_MAX_RANK) -> dict[str, Path]:
    """One ``<group slug>.png`` per leaderboard that has curves; returns them by slug."""
    written = {}
    for board in boards:
        if board.curves:
            written[board.group.slug] = write_cmc_png(folder / f"{board.group.slug}.png", board.curves,
                                                      plot_title(board), max_rank)
    return written


def write_leaderboard(path: str | os.PathLike[str], boards: Sequence[Leaderboard], fmt: str,
                      sources: Sequence[str] = (), problems: Sequence[str] = (), notes: Sequence[str] = (),
                      max_rank: int = DEFAULT_MAX_RANK,
                      extras: RunExtras = RunExtras()) -> tuple[Path, dict[str, Path]]:
    """Write the leaderboards to ``path`` in ``fmt`` and their CMC PNGs beside it; returns both.

    The HTML format is the full report (plots embedded, ``notes`` under its title); Markdown links its plots
    by relative path.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown leaderboard format {fmt!r}: use one of {', '.join(FORMATS)}")
    path = Path(path)
    plots = write_cmc_plots(plot_folder(path), boards, max_rank)
    if fmt == "html":
        write_report(path, boards, sources=sources, problems=problems, notes=notes, max_rank=max_rank,
                     extras=extras)
    elif fmt == "md":
        links = {slug: png.relative_to(path.parent).as_posix() for slug, png in plots.items()}
        preface = "".join(f"> {note}\n" for note in notes) + ("\n" if notes else "")
        atomic_write_text(path, preface + to_markdown(boards, links))
    elif fmt == "csv":
        atomic_write_text(path, to_csv(boards))
    else:
        atomic_write_text(path, to_latex(boards))
    return path, plots
