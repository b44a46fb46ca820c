"""Leaderboard tables in Markdown, CSV, HTML, LaTeX and on the console: best marked, ties with the best marked.

One table per :class:`~leaderboard.collect.ResultGroup`, one row per model, recipe and starting weights. A row
aggregates that configuration's results over seeds and, for datasets with several splits (iLIDS-VID, PRID-2011),
over splits: the mean, and the sample standard deviation where there are several (``81.2 ± 0.4``), with the number
of results in ``runs``. A row of a split dataset is averaged only over a complete set of splits (for every seed);
an incomplete one is listed with the missing splits and no numbers.

Every table carries a paired bootstrap over its queries (:mod:`leaderboard.significance`): a 95 % interval for each
row's mAP and R1 and for its difference to the best row, and a verdict: ``best``, ``tied`` (the mAP difference from
the best is within noise) or ``below``. That is the default view: a margin is shown with its uncertainty.

Numbers are rounded once (percent to one decimal; params, GFLOPs and clips/s to three significant figures) and the
best of each accuracy column is found on the rounded means, so two entries that print the same are both marked.
Costs (inference params, training-only params, GFLOPs per clip, clips/s with the device) are shown, not ranked;
``efficiency_rows`` ranks them. Unfinished, failed and incomplete rows are listed under the ranked rows without
numbers; published numbers sit in their own block and are never ranked.

How each format marks the best: bold in Markdown (``**45.1**``), HTML (``<strong>`` in a ``td class="best"``),
LaTeX (``\\textbf``) and the console; CSV has a ``best`` column naming the columns in which that row is best
(``mAP;R1``), a ``verdict`` column and the interval bounds.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from leaderboard.collect import FINISHED, GROUP_KEYS, RANKS, ResultGroup, result_groups
from leaderboard.significance import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Interval,
    RowSignificance,
    TableSignificance,
    table_significance,
)

Kind = Literal["percent", "millions", "number", "integer"]
MISSING = "-"
INCOMPLETE = "incomplete"
ROW_KEYS = ("model", "recipe_hash", "captions", "weights")  # one row per configuration; seeds and splits aggregate
REPORTED_TITLE = "Reported in papers (reference only: other data, weights and evaluation code; never ranked)"
BEST_NOTE = ("Best of each accuracy column in bold (higher is better); costs are shown, not ranked "
             "(`vreid leaderboard --efficiency` ranks them).")


@dataclass(frozen=True)
class Column:
    """One numeric column: where its value is, how it prints, and which direction is better (None: not ranked)."""

    key: str
    header: str
    csv_name: str
    kind: Kind
    better: Literal["higher", "lower"] | None = None
    console_header: str | None = None  # a header broken over lines, so the table fits an 80-column terminal

    def rounded(self, raw: Any) -> float | None:
        """The value as printed, as a number: what the best is decided on."""
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return None
        value = float(raw)
        if self.kind == "percent":
            return round(100 * value, 1)
        if self.kind == "millions":
            return significant(value / 1e6)
        if self.kind == "integer":
            return float(round(value))
        return significant(value)

    def text(self, raw: Any, std: float | None = None) -> str:
        value = self.rounded(raw)
        if value is None:
            return MISSING
        return self.display(value) + (f" ± {100 * std:.1f}" if std is not None and self.kind == "percent" else "")

    def display(self, value: float) -> str:
        """A value already rounded (:meth:`rounded`) as it prints."""
        if self.kind == "percent":
            return f"{value:.1f}"
        if self.kind == "integer":
            return str(int(value))
        return plain_number(value)


ACCURACY: tuple[Column, ...] = (
    Column("mAP", "mAP", "mAP", "percent", "higher"),
    *(Column(f"R{k}", f"R{k}", f"R{k}", "percent", "higher") for k in RANKS),
    Column("mINP", "mINP", "mINP", "percent", "higher"),
)
COSTS: tuple[Column, ...] = (
    Column("params", "params (M)", "params_M", "millions", None, "params\n(M)"),
    Column("training_params", "train-only params (M)", "training_params_M", "millions", None, "train\nonly (M)"),
    Column("gflops_per_clip", "GFLOPs/clip", "GFLOPs_per_clip", "number", None, "GFLOPs\n/clip"),
    Column("clips_per_s", "clips/s", "clips_per_s", "number", None, "clips\n/s"),
    Column("epochs", "epochs", "epochs", "integer"),
)
COLUMNS: tuple[Column, ...] = (*ACCURACY, *COSTS)
REPORTED_COLUMNS: tuple[Column, ...] = ACCURACY[:2]  # papers give mAP and R1 at most


def significant(value: float, digits: int = 3) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def plain_number(value: float, digits: int = 3) -> str:
    """``value`` (already rounded to ``digits`` significant figures) without an exponent: 0.0926, 86.2, 1230."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def interval_text(interval: Interval | None) -> str:
    return MISSING if interval is None else f"{100 * interval.low:.1f}–{100 * interval.high:.1f}"


def delta_text(delta: float | None, interval: Interval | None) -> str:
    if delta is None or interval is None:
        return MISSING
    return f"{100 * delta:+.1f} ({100 * interval.low:+.1f}, {100 * interval.high:+.1f})"


@dataclass(frozen=True)
class TableRow:
    """One printed row: rounded values per column, their text, which are the column's best, and its intervals."""

    label: str
    model: str
    status: str
    values: tuple[float | None, ...]
    texts: tuple[str, ...]
    best: tuple[bool, ...]
    reference: str
    note: str
    run_dir: str | None
    cmc: tuple[float, ...]
    recipe: str = ""  # name and hash of the recipe the row's runs trained with
    runs: int = 1  # results aggregated: seeds × splits
    stds: tuple[float | None, ...] = ()
    device: str = ""  # where clips/s was measured, with the inference precision
    significance: RowSignificance = field(default_factory=RowSignificance)

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    def best_columns(self, columns: Sequence[Column]) -> list[str]:
        return [column.csv_name for column, best in zip(columns, self.best) if best]

    def value(self, key: str) -> float | None:
        return self.values[[c.key for c in COLUMNS].index(key)] if len(self.values) == len(COLUMNS) else None


@dataclass(frozen=True)
class Leaderboard:
    """The table of one group: ranked rows (then unfinished/failed ones), published reference rows, intervals."""

    group: ResultGroup
    measured: tuple[TableRow, ...]
    reported: tuple[TableRow, ...]
    significance: TableSignificance | None = None

    @property
    def title(self) -> str:
        return self.group.title

    @property
    def caption(self) -> str:
        return self.group.caption

    @property
    def intervals(self) -> str:
        """How many queries the table rests on and how its intervals were made."""
        return self.significance.description if self.significance is not None else ""

    @property
    def curves(self) -> dict[str, list[float]]:
        """CMC curve per ranked row, by label (for the plots)."""
        return {row.label: list(row.cmc) for row in self.measured if row.finished and row.cmc}

    @property
    def notes(self) -> list[str]:
        """One line per measured row that carries a note (why a run has no numbers, for one), then the table's."""
        notes = [f"{row.label}: {row.note}" for row in self.measured if row.note]
        if self.significance is not None and self.significance.note and self.significance.queries:
            notes.append(self.significance.note)
        return notes


def _row(record: dict[str, Any], columns: Sequence[Column]) -> TableRow:
    """One row from one result (reported rows, and single results)."""
    return _aggregate([record], columns, None)


def _recipe_text(record: dict[str, Any]) -> str:
    name, digest = record.get("recipe"), record.get("recipe_hash")
    text = f"{name} {str(digest)[:8]}" if name and digest else (name or "")
    return f"{text}, captions {record['captions']}" if record.get("captions") else text


def _device_text(record: dict[str, Any]) -> str:
    device, dtype = record.get("device") or "", record.get("inference_dtype")
    return f"{device}, {dtype}" if device and dtype else device


def _missing_splits(records: Sequence[dict[str, Any]], num_splits: int) -> dict[int, list[int]]:
    """Per seed, the splits 0..num_splits-1 without a finished result."""
    done: dict[int, set[int]] = {}
    for record in records:
        if record.get("split") is not None:
            done.setdefault(int(record.get("seed") or 0), set()).add(int(record["split"]))
    return {seed: sorted(set(range(num_splits)) - splits) for seed, splits in done.items()
            if set(range(num_splits)) - splits}


def _aggregate(records: Sequence[dict[str, Any]], columns: Sequence[Column], num_splits: int | None) -> TableRow:
    """One row from the results of one configuration: means (and stds) over its finished seeds and splits."""
    first = records[0]
    finished = [r for r in records if r["status"] == FINISHED]
    notes = list(dict.fromkeys(r["note"] for r in records if r.get("note")))
    status = FINISHED if finished else first["status"]
    if finished and num_splits:
        missing = _missing_splits(finished, num_splits)
        if missing:
            status = INCOMPLETE
            shown = "; ".join(f"seed {seed}: {', '.join(map(str, splits))}" for seed, splits in sorted(missing.items()))
            notes = [f"not averaged: splits missing ({shown}) of {num_splits}; the mean ± std needs every split "
                     "(`vreid compare --split all` trains them)"]
    if finished and status == FINISHED and len(finished) < len(records):
        others = [r for r in records if r["status"] != FINISHED]
        states = ", ".join(sorted({r["status"] for r in others}))
        notes = [f"{len(others)} of {len(records)} runs not finished ({states}) and left out of the mean"
                 f"{': ' + notes[0] if notes else ''}"]
    ranked = status == FINISHED
    values, stds, texts = [], [], []
    for column in columns:
        raw = [r.get(column.key) for r in finished if r.get(column.key) is not None]
        mean = sum(float(v) for v in raw) / len(raw) if ranked and raw else None
        spread = _sample_std([float(v) for v in raw]) if ranked and len(raw) > 1 and column.kind == "percent" else None
        values.append(column.rounded(mean))
        stds.append(spread)
        texts.append(MISSING if mean is None else column.text(mean, spread))
    label = first["label"] if ranked else f"{first['label']} ({status})"
    curves = [r.get("cmc") or () for r in finished]
    depth = min((len(c) for c in curves), default=0)
    cmc = tuple(sum(c[k] for c in curves) / len(curves) for k in range(depth)) if ranked and depth else ()
    devices = sorted({_device_text(r) for r in finished if r.get("device")})
    return TableRow(label=label, model=first["model"], status=status, values=tuple(values), texts=tuple(texts),
                    best=(False,) * len(columns), reference=first.get("reference") or "", note="; ".join(notes),
                    run_dir=first.get("run_dir") if len(records) == 1 else None, cmc=cmc,
                    recipe=_recipe_text(first), runs=len(finished), stds=tuple(stds), device="; ".join(devices))


def _sample_std(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def mark_best(rows: Sequence[TableRow], columns: Sequence[Column]) -> list[TableRow]:
    """The rows with ``best`` set where a ranked row's value equals its column's best (ties all marked)."""
    bests: list[float | None] = []
    for index, column in enumerate(columns):
        values = [row.values[index] for row in rows if row.finished and row.values[index] is not None]
        if column.better is None or not values:
            bests.append(None)
        else:
            bests.append(max(values) if column.better == "higher" else min(values))
    marked = []
    for row in rows:
        flags = tuple(row.finished and best is not None and value == best for value, best in zip(row.values, bests))
        marked.append(replace(row, best=flags))
    return marked


def _sort_key(row: TableRow) -> tuple[Any, ...]:
    mAP, rank1 = row.values[0], row.values[1]
    return (not row.finished, -(mAP if mAP is not None else -1.0), -(rank1 if rank1 is not None else -1.0), row.label)


def configurations(group: ResultGroup) -> list[list[dict[str, Any]]]:
    """The group's measured results, one list per configuration (:data:`ROW_KEYS`), in a fixed order."""
    by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for record in sorted(group.measured.to_dict("records"),
                         key=lambda r: (str(r.get("run_dir")), str(r.get("split")), str(r.get("seed")))):
        by_key.setdefault(tuple(str(record.get(k)) for k in ROW_KEYS), []).append(record)
    return list(by_key.values())


def build_leaderboard(group: ResultGroup, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Leaderboard:
    configs = configurations(group)
    rows = [_aggregate(records, COLUMNS, group.num_splits) for records in configs]
    finished = [[r for r in records if r["status"] == FINISHED] if row.finished else []
                for records, row in zip(configs, rows)]
    significance = table_significance(finished, resamples, seed)
    rows = [replace(row, significance=sig) for row, sig in zip(rows, significance.rows)]
    measured = sorted(rows, key=_sort_key)
    reported = [_row(r, REPORTED_COLUMNS) for r in group.reported.to_dict("records")]
    return Leaderboard(group, tuple(mark_best(measured, COLUMNS)), tuple(reported), significance)


def build_leaderboards(frame: pd.DataFrame, resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> list[Leaderboard]:
    """One leaderboard per group of ``frame`` that has measured rows."""
    return [build_leaderboard(group, resamples, seed) for group in result_groups(frame) if not group.measured.empty]


# ------------------------------------------------------------------------------------------- display columns


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


Getter = Callable[[TableRow], Cell]


def _metric(key: str) -> Getter:
    index = [c.key for c in COLUMNS].index(key)
    return lambda row: Cell(row.texts[index], row.best[index])


# The accuracy table's columns in every format but the console's: header and how a row fills it.
DISPLAY: tuple[tuple[str, Getter], ...] = (
    ("model", lambda row: Cell(row.label)),
    ("recipe", lambda row: Cell(row.recipe)),
    ("runs", lambda row: Cell(str(row.runs))),
    ("vs best", lambda row: Cell(row.significance.verdict)),
    ("mAP", _metric("mAP")),
    ("mAP 95% CI", lambda row: Cell(interval_text(row.significance.map_ci))),
    ("Δ mAP vs best (95% CI)", lambda row: Cell(delta_text(row.significance.map_delta, row.significance.map_delta_ci))),
    ("R1", _metric("R1")),
    ("R1 95% CI", lambda row: Cell(interval_text(row.significance.r1_ci))),
    ("Δ R1 vs best (95% CI)", lambda row: Cell(delta_text(row.significance.r1_delta, row.significance.r1_delta_ci))),
    *((f"R{k}", _metric(f"R{k}")) for k in RANKS[1:]),
    ("mINP", _metric("mINP")),
    *((column.header, _metric(column.key)) for column in COSTS[:-1]),
    ("device", lambda row: Cell(row.device)),
    ("epochs", _metric("epochs")),
)
HEADERS = tuple(header for header, _ in DISPLAY)


def row_cells(row: TableRow) -> list[Cell]:
    return [getter(row) for _, getter in DISPLAY]


def _caption(board: Leaderboard) -> str:
    parts = [board.caption, board.intervals, BEST_NOTE]
    return ". ".join(part.rstrip(".") for part in parts if part) + "."


# ------------------------------------------------------------------------------------------------ Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _md_value(cell: Cell) -> str:
    return f"**{cell.text}**" if cell.best else cell.text


def board_markdown(board: Leaderboard, plot: str | None = None) -> str:
    """One leaderboard as Markdown; ``plot`` is the relative path of its CMC PNG, if one was written."""
    lines = [f"### {board.title}", "", _caption(board), ""]
    lines += _md_table(HEADERS, [[_md_value(cell) for cell in row_cells(row)] for row in board.measured])
    if board.reported:
        lines += ["", f"{REPORTED_TITLE}:", ""]
        lines += _md_table(["model", *(c.header for c in REPORTED_COLUMNS), "reported in", "note"],
                           [[row.label, *row.texts, row.reference, row.note] for row in board.reported])
    if board.notes:
        lines += [""] + [f"- {note}" for note in board.notes]
    if plot:
        lines += ["", f"![CMC curves, {board.title}]({plot})"]
    return "\n".join(lines) + "\n"


def to_markdown(boards: Sequence[Leaderboard], plots: dict[str, str] | None = None) -> str:
    """Every leaderboard as Markdown; ``plots`` maps a group's slug to the relative path of its CMC PNG."""
    plots = plots or {}
    return "\n".join(board_markdown(board, plots.get(board.group.slug)) for board in boards)


# ----------------------------------------------------------------------------------------------------- CSV

STD_COLUMNS = tuple(c for c in COLUMNS if c.kind == "percent")
CSV_HEADER = (*GROUP_KEYS, "model", "label", "source", "status", "recipe", "runs", *(c.csv_name for c in COLUMNS),
              *(f"{c.csv_name}_std" for c in STD_COLUMNS), "mAP_ci_low", "mAP_ci_high", "mAP_delta",
              "mAP_delta_ci_low", "mAP_delta_ci_high", "R1_ci_low", "R1_ci_high", "R1_delta", "R1_delta_ci_low",
              "R1_delta_ci_high", "verdict", "queries", "device", "best", "reference", "note", "run_dir")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _bounds(interval: Interval | None) -> list[str]:
    return ["", ""] if interval is None else [_percent(interval.low), _percent(interval.high)]


def to_csv(boards: Sequence[Leaderboard]) -> str:
    """All leaderboards in one CSV (the group columns tell the tables apart); see the module docstring."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for board in boards:
        key = [getattr(board.group, name) for name in GROUP_KEYS]
        queries = board.significance.queries if board.significance is not None and board.significance.queries else ""
        for row in board.measured:
            sig = row.significance
            values = ["" if v is None else column.display(v) for column, v in zip(COLUMNS, row.values)]
            stds = [f"{100 * row.stds[COLUMNS.index(c)]:.2f}" if row.stds and row.stds[COLUMNS.index(c)] is not None
                    else "" for c in STD_COLUMNS]
            intervals = [*_bounds(sig.map_ci), _percent(sig.map_delta), *_bounds(sig.map_delta_ci), *_bounds(sig.r1_ci),
                         _percent(sig.r1_delta), *_bounds(sig.r1_delta_ci)]
            writer.writerow([*key, row.model, row.label, "measured", row.status, row.recipe, row.runs, *values, *stds,
                             *intervals, sig.verdict, queries, row.device, ";".join(row.best_columns(COLUMNS)),
                             row.reference, row.note, row.run_dir or ""])
        for row in board.reported:
            values = ["" if v is None else t for v, t in zip(row.values, row.texts)]
            values += [""] * (len(COLUMNS) - len(REPORTED_COLUMNS))
            writer.writerow([*key, row.model, row.label, "reported", row.status, "", "", *values,
                             *[""] * (len(STD_COLUMNS) + 10), "", "", "", "", row.reference, row.note, ""])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------- HTML


def _html_row(cells: Sequence[Cell], css: str) -> str:
    tds = []
    for index, cell in enumerate(cells):
        text = html.escape(cell.text)
        if index == 0:
            tds.append(f'<th scope="row">{text}</th>')
        elif cell.best:
            tds.append(f'<td class="best"><strong>{text}</strong></td>')
        else:
            tds.append(f"<td>{text}</td>")
    return f'<tr class="{css}">' + "".join(tds) + "</tr>"


def _html_table(css: str, caption: str, headers: Sequence[str], rows: Sequence[str]) -> str:
    """A table in a horizontally scrolling box: a wide leaderboard never breaks the page."""
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    return (f'<div class="scroll"><table class="{css}"><caption>{html.escape(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _row_class(row: TableRow) -> str:
    if not row.finished:
        return row.status
    return "ranked" + (f" {row.significance.verdict}" if row.significance.verdict else "")


def board_html(board: Leaderboard) -> str:
    """The measured table and, apart, the reported one, as an HTML fragment (the report adds page and plot)."""
    measured = [_html_row(row_cells(row), _row_class(row)) for row in board.measured]
    parts = [_html_table("measured", _caption(board), HEADERS, measured)]
    if board.reported:
        reported = [_html_row([Cell(row.label), *(Cell(t) for t in row.texts), Cell(row.reference), Cell(row.note)],
                              "reported") for row in board.reported]
        parts.append(_html_table("reported", REPORTED_TITLE,
                                 ["model", *(c.header for c in REPORTED_COLUMNS), "reported in", "note"], reported))
    if board.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in board.notes) + "</ul>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _latex_value(cell: Cell) -> str:
    text = "--" if cell.text == MISSING else latex_escape(cell.text)
    return rf"\textbf{{{text}}}" if cell.best else text


def board_latex(board: Leaderboard) -> str:
    """A booktabs table; reported numbers follow the measured rows in their own italic, unranked block."""
    width = len(HEADERS)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(_caption(board))}}}",
             r"\begin{tabular}{lll" + "r" * (width - 3) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in HEADERS) + r" \\", r"\midrule"]
    for row in board.measured:
        lines.append(" & ".join(_latex_value(cell) for cell in row_cells(row)) + r" \\")
    if board.reported:
        lines += [r"\midrule", rf"\multicolumn{{{width}}}{{l}}{{\textit{{{latex_escape(REPORTED_TITLE)}}}}} \\"]
        for row in board.reported:
            label = f"{row.label} ({row.reference}" + (f"; {row.note})" if row.note else ")")
            cells = {"model": rf"\textit{{{latex_escape(label)}}}", "mAP": row.texts[0], "R1": row.texts[1]}
            lines.append(" & ".join(_latex_value(Cell(cells[h])) if h in cells and h != "model" else cells.get(h, "--")
                                    for h in HEADERS) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_latex(boards: Sequence[Leaderboard]) -> str:
    """Every leaderboard as a LaTeX table (needs ``\\usepackage{booktabs}``)."""
    return "\n".join(board_latex(board) for board in boards)


# -------------------------------------------------------------------------------------------------- console

CONSOLE_ACCURACY = ("mAP", "R1", "R5", "R10", "R20", "mINP")


def board_rich(board: Leaderboard) -> list[Table]:
    """The leaderboard for an 80-column terminal: an accuracy table (best bold, the verdict and the mAP and R1
    intervals beside them) and, apart, the costs; recipes, query counts and reported sources in the captions."""
    caption = _caption(board)
    recipes = [f"{row.label}: {row.recipe}" for row in board.measured if row.recipe]
    if recipes:
        caption += f" Recipes: {'; '.join(recipes)}."
    if board.reported:
        sources = "; ".join(f"{row.label}: {row.reference}" + (f" ({row.note})" if row.note else "")
                            for row in board.reported)
        caption += f" {REPORTED_TITLE}: {sources}."
    accuracy = Table(title=board.title, caption=caption, caption_justify="left", box=box.SIMPLE_HEAD,
                     pad_edge=False, padding=(0, 0, 0, 1))
    longest_word = max((len(word) for row in board.measured for word in row.label.split()), default=5)
    accuracy.add_column("model", min_width=longest_word)  # a status such as "(failed)" wraps under the name
    aggregated = any(row.runs > 1 for row in board.measured)  # the column only where a row averages several runs
    if aggregated:
        accuracy.add_column("runs", justify="right")
    accuracy.add_column("vs\nbest")
    for key in CONSOLE_ACCURACY:
        accuracy.add_column(key, justify="right")
        if key in ("mAP", "R1"):
            accuracy.add_column("95%\nCI", justify="right")
    for row in board.measured:
        cells = []
        for key in CONSOLE_ACCURACY:
            cell = _metric(key)(row)
            cells.append(Text(cell.text, style="bold" if cell.best else ""))
            if key == "mAP":
                cells.append(Text(interval_text(row.significance.map_ci), style="dim"))
            elif key == "R1":
                cells.append(Text(interval_text(row.significance.r1_ci), style="dim"))
        runs = [str(row.runs)] if aggregated else []
        verdict = Text(row.significance.verdict, style="bold" if row.significance.verdict == "best" else "")
        accuracy.add_row(Text(row.label, style="" if row.finished else "red"), *runs, verdict, *cells)
    if board.reported:
        accuracy.add_section()
        for row in board.reported:
            filler = [""] if aggregated else []
            texts = dict(zip(("mAP", "R1"), row.texts))
            cells = []
            for key in CONSOLE_ACCURACY:
                cells.append(texts.get(key, MISSING))
                if key in ("mAP", "R1"):
                    cells.append("")
            accuracy.add_row(f"{row.label} (reported)", *filler, "", *cells, style="dim italic")
    costs = Table(title=f"{board.title}: costs (not ranked)", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 0, 0, 1))
    costs.add_column("model")
    for column in COSTS:
        costs.add_column(column.console_header or column.header, justify="right")
    costs.add_column("device")
    for row in board.measured:
        costs.add_row(row.label, *(_metric(column.key)(row).text for column in COSTS), row.device)
    return [accuracy, costs]


# ------------------------------------------------------------------------------------------------ efficiency

EFFICIENCY: tuple[Column, ...] = (
    Column("params", "params (M)", "params_M", "millions", "lower"),
    Column("training_params", "train-only params (M)", "training_params_M", "millions", None),
    Column("gflops_per_clip", "GFLOPs/clip", "GFLOPs_per_clip", "number", "lower"),
    Column("clips_per_s", "clips/s", "clips_per_s", "number", "higher"),
)


def efficiency_rows(board: Leaderboard) -> list[tuple[TableRow, list[Cell]]]:
    """The finished rows with their costs ranked (fewest inference params and GFLOPs, most clips/s); the
    training-only parameters are shown beside, not ranked."""
    rows = [row for row in board.measured if row.finished]
    cells: list[list[Cell]] = [[] for _ in rows]
    for column in EFFICIENCY:
        values = [row.value(column.key) for row in rows]
        present = [v for v in values if v is not None]
        best = None if column.better is None or not present else (
            max(present) if column.better == "higher" else min(present))
        for index, (row, value) in enumerate(zip(rows, values)):
            text = MISSING if value is None else column.display(value)
            cells[index].append(Cell(text, best is not None and value == best))
    return list(zip(rows, cells))


EFFICIENCY_HEADERS = ("model", "mAP", *(c.header for c in EFFICIENCY), "device")


def efficiency_markdown(board: Leaderboard) -> str:
    lines = [f"### {board.title}: efficiency", "",
             f"{board.caption}. Inference costs ranked: fewest parameters and GFLOPs per clip, most clips/s (on the "
             "run's device and precision); training-only parameters shown beside.", ""]
    lines += _md_table(EFFICIENCY_HEADERS, [[row.label, _metric("mAP")(row).text, *(_md_value(c) for c in cells),
                                             row.device] for row, cells in efficiency_rows(board)])
    return "\n".join(lines) + "\n"


def efficiency_html(board: Leaderboard) -> str:
    rows = [_html_row([Cell(row.label), Cell(_metric("mAP")(row).text), *cells, Cell(row.device)], "ranked")
            for row, cells in efficiency_rows(board)]
    return _html_table("efficiency", f"{board.caption}. Inference costs ranked; training-only parameters beside.",
                       EFFICIENCY_HEADERS, rows)


def efficiency_rich(board: Leaderboard) -> Table:
    table = Table(title=f"{board.title}: efficiency", caption="Inference costs ranked (bold: best); training-only "
                  "parameters shown, not ranked.", caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 0, 0, 1))
    for header in EFFICIENCY_HEADERS:
        table.add_column(header, justify="left" if header in ("model", "device") else "right", overflow="fold")
    for row, cells in efficiency_rows(board):
        table.add_row(row.label, _metric("mAP")(row).text,
                      *(Text(c.text, style="bold" if c.best else "") for c in cells), row.device)
    return table
