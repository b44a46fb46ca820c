"""Leaderboard tables in Markdown, CSV, HTML, LaTeX and on the console, with the best of each column marked.

One table per :class:`~leaderboard.collect.ResultGroup`, one row per model, recipe and starting weights. A row
aggregates that configuration's results over seeds and, for datasets with several splits (iLIDS-VID, PRID-2011),
over splits: the mean, and the sample standard deviation where there are several (``81.2 ± 0.4``), with the number
of results in ``runs``. A row of a split dataset is averaged only over a complete set of splits (for every seed);
an incomplete one is listed with the missing splits and no numbers.

Numbers are rounded once (percent to one decimal; params, GFLOPs and clips/s to three significant figures) and the
best is found on the rounded means, so two entries that print the same are both marked. Higher is better except
for params and GFLOPs per clip; ``epochs`` is the training budget, shown for context and never marked.
Unfinished, failed and incomplete rows are listed under the ranked rows without numbers; published numbers sit in
their own block and are never ranked.

How each format marks the best: bold in Markdown (``**45.1**``), HTML (``<strong>`` in a ``td class="best"``),
LaTeX (``\\textbf``) and the console; CSV has a ``best`` column naming, separated by ``;``, the columns in which
that row is best (e.g. ``mAP;R1;params_M``), and a ``source`` column, ``measured`` or ``reported``.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from leaderboard.collect import FINISHED, GROUP_KEYS, RANKS, ResultGroup, result_groups

Kind = Literal["percent", "millions", "number", "integer"]
MISSING = "-"
INCOMPLETE = "incomplete"
ROW_KEYS = ("model", "recipe_hash", "pretrained")  # one table row per configuration; seeds and splits aggregate
REPORTED_TITLE = "Reported in papers (reference only: other data, weights and evaluation code; never ranked)"
BEST_NOTE = "Best of each column in bold (higher is better; lower for params and GFLOPs/clip; epochs not ranked)."


@dataclass(frozen=True)
class Column:
    """One numeric column: where its value is, how it prints, and which direction is better."""

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


COLUMNS: tuple[Column, ...] = (
    Column("mAP", "mAP", "mAP", "percent", "higher"),
    *(Column(f"R{k}", f"R{k}", f"R{k}", "percent", "higher") for k in RANKS),
    Column("mINP", "mINP", "mINP", "percent", "higher"),
    Column("params", "params (M)", "params_M", "millions", "lower", "params\n(M)"),
    Column("gflops_per_clip", "GFLOPs/clip", "GFLOPs_per_clip", "number", "lower", "GFLOPs\n/clip"),
    Column("clips_per_s", "clips/s", "clips_per_s", "number", "higher", "clips\n/s"),
    Column("epochs", "epochs", "epochs", "integer"),
)
REPORTED_COLUMNS: tuple[Column, ...] = COLUMNS[:2]  # papers give mAP and R1 at most


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


@dataclass(frozen=True)
class TableRow:
    """One printed row: rounded values per column, their text, and which of them are the column's best."""

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

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    def best_columns(self, columns: Sequence[Column]) -> list[str]:
        return [column.csv_name for column, best in zip(columns, self.best) if best]


@dataclass(frozen=True)
class Leaderboard:
    """The table of one group: ranked rows (then unfinished/failed ones) and the published reference rows."""

    group: ResultGroup
    measured: tuple[TableRow, ...]
    reported: tuple[TableRow, ...]

    @property
    def title(self) -> str:
        return self.group.title

    @property
    def caption(self) -> str:
        return self.group.caption

    @property
    def curves(self) -> dict[str, list[float]]:
        """CMC curve per ranked row, by label (for the plots)."""
        return {row.label: list(row.cmc) for row in self.measured if row.finished and row.cmc}

    @property
    def notes(self) -> list[str]:
        """One line per measured row that carries a note (why a run has no numbers, for one)."""
        return [f"{row.label}: {row.note}" for row in self.measured if row.note]


def _row(record: dict[str, Any], columns: Sequence[Column]) -> TableRow:
    """One row from one result (reported rows, and single results)."""
    return _aggregate([record], columns, None)


def _recipe_text(record: dict[str, Any]) -> str:
    name, digest = record.get("recipe"), record.get("recipe_hash")
    return f"{name} {str(digest)[:8]}" if name and digest else (name or "")


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
        notes = [f"{len(others)} of {len(records)} runs not finished ({', '.join(sorted({r['status'] for r in others}))})"
                 f" and left out of the mean{': ' + notes[0] if notes else ''}"]
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
    return TableRow(label=label, model=first["model"], status=status, values=tuple(values), texts=tuple(texts),
                    best=(False,) * len(columns), reference=first.get("reference") or "", note="; ".join(notes),
                    run_dir=first.get("run_dir") if len(records) == 1 else None, cmc=cmc,
                    recipe=_recipe_text(first), runs=len(finished), stds=tuple(stds))


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


def build_leaderboard(group: ResultGroup) -> Leaderboard:
    rows = [_aggregate(records, COLUMNS, group.num_splits) for records in configurations(group)]
    measured = sorted(rows, key=_sort_key)
    reported = [_row(r, REPORTED_COLUMNS) for r in group.reported.to_dict("records")]
    return Leaderboard(group, tuple(mark_best(measured, COLUMNS)), tuple(reported))


def build_leaderboards(frame: pd.DataFrame) -> list[Leaderboard]:
    """One leaderboard per group of ``frame`` that has measured rows."""
    return [build_leaderboard(group) for group in result_groups(frame) if not group.measured.empty]


# ------------------------------------------------------------------------------------------------ Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _md_value(text: str, best: bool) -> str:
    return f"**{text}**" if best else text


def board_markdown(board: Leaderboard, plot: str | None = None) -> str:
    """One leaderboard as Markdown; ``plot`` is the relative path of its CMC PNG, if one was written."""
    lines = [f"### {board.title}", "", f"{board.caption}. {BEST_NOTE}", ""]
    lines += _md_table(["model", "recipe", "runs", *(c.header for c in COLUMNS)],
                       [[row.label, row.recipe, str(row.runs), *(_md_value(t, b) for t, b in zip(row.texts, row.best))]
                        for row in board.measured])
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
              *(f"{c.csv_name}_std" for c in STD_COLUMNS), "best", "reference", "note", "run_dir")


def to_csv(boards: Sequence[Leaderboard]) -> str:
    """All leaderboards in one CSV (the group columns tell the tables apart); see the module docstring."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for board in boards:
        key = [board.group.dataset, board.group.dataset_fingerprint, board.group.protocol, board.group.protocol_family]
        for row in board.measured:
            values = ["" if v is None else column.display(v) for column, v in zip(COLUMNS, row.values)]
            stds = [f"{100 * row.stds[COLUMNS.index(c)]:.2f}" if row.stds and row.stds[COLUMNS.index(c)] is not None
                    else "" for c in STD_COLUMNS]
            writer.writerow([*key, row.model, row.label, "measured", row.status, row.recipe, row.runs, *values, *stds,
                             ";".join(row.best_columns(COLUMNS)), row.reference, row.note, row.run_dir or ""])
        for row in board.reported:
            values = ["" if v is None else t for v, t in zip(row.values, row.texts)]
            values += [""] * (len(COLUMNS) - len(REPORTED_COLUMNS))
            writer.writerow([*key, row.model, row.label, "reported", row.status, "", "", *values,
                             *[""] * len(STD_COLUMNS), "", row.reference, row.note, ""])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------- HTML


def _html_row(cells: Sequence[str], best: Sequence[bool], css: str) -> str:
    tds = []
    for index, (cell, is_best) in enumerate(zip(cells, best)):
        text = html.escape(cell)
        if index == 0:
            tds.append(f'<th scope="row">{text}</th>')
        elif is_best:
            tds.append(f'<td class="best"><strong>{text}</strong></td>')
        else:
            tds.append(f"<td>{text}</td>")
    return f'<tr class="{css}">' + "".join(tds) + "</tr>"


def _html_table(css: str, caption: str, headers: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    return (f'<table class="{css}"><caption>{html.escape(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def board_html(board: Leaderboard) -> str:
    """The measured table and, apart, the reported one, as an HTML fragment (the report adds page and plot)."""
    measured = [_html_row([row.label, row.recipe, str(row.runs), *row.texts], [False, False, False, *row.best],
                          "ranked" if row.finished else row.status) for row in board.measured]
    parts = [_html_table("measured", f"{board.caption}. {BEST_NOTE}",
                         ["model", "recipe", "runs", *(c.header for c in COLUMNS)], measured)]
    if board.reported:
        reported = [_html_row([row.label, *row.texts, row.reference, row.note], [False] * (len(row.texts) + 3),
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


def _latex_value(text: str, best: bool) -> str:
    text = "--" if text == MISSING else latex_escape(text)
    return rf"\textbf{{{text}}}" if best else text


def board_latex(board: Leaderboard) -> str:
    """A booktabs table; reported numbers follow the measured rows in their own italic, unranked block."""
    width = 3 + len(COLUMNS)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(board.caption)}. "
             rf"{latex_escape(BEST_NOTE)}}}", r"\begin{tabular}{llr" + "r" * len(COLUMNS) + "}", r"\toprule",
             " & ".join(["model", "recipe", "runs", *(latex_escape(c.header) for c in COLUMNS)]) + r" \\",
             r"\midrule"]
    for row in board.measured:
        cells = [latex_escape(row.label), latex_escape(row.recipe), str(row.runs),
                 *(_latex_value(t, b) for t, b in zip(row.texts, row.best))]
        lines.append(" & ".join(cells) + r" \\")
    if board.reported:
        lines += [r"\midrule", rf"\multicolumn{{{width}}}{{l}}{{\textit{{{latex_escape(REPORTED_TITLE)}}}}} \\"]
        for row in board.reported:
            label = f"{row.label} ({row.reference}" + (f"; {row.note})" if row.note else ")")
            cells = [rf"\textit{{{latex_escape(label)}}}", "", "", *(_latex_value(t, False) for t in row.texts)]
            cells += ["--"] * (len(COLUMNS) - len(REPORTED_COLUMNS))
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_latex(boards: Sequence[Leaderboard]) -> str:
    """Every leaderboard as a LaTeX table (needs ``\\usepackage{booktabs}``)."""
    return "\n".join(board_latex(board) for board in boards)


# -------------------------------------------------------------------------------------------------- console


def board_rich(board: Leaderboard) -> Table:
    """The leaderboard as a rich table: best values bold, reported rows dim and italic after a rule.

    Laid out to fit an 80-column terminal: one space between columns, two-line headers, each row's recipe and the
    sources of reported rows in the caption rather than in columns.
    """
    caption = f"{board.caption}. {BEST_NOTE}"
    recipes = [f"{row.label}: {row.recipe}" for row in board.measured if row.recipe]
    if recipes:
        caption += f" Recipes: {'; '.join(recipes)}."
    if board.reported:
        sources = "; ".join(f"{row.label}: {row.reference}" + (f" ({row.note})" if row.note else "")
                            for row in board.reported)
        caption += f" {REPORTED_TITLE}: {sources}."
    table = Table(title=board.title, caption=caption, caption_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 0, 0, 1))
    longest_word = max((len(word) for row in board.measured for word in row.label.split()), default=5)
    table.add_column("model", min_width=longest_word)  # a status such as "(failed)" wraps under the name
    aggregated = any(row.runs > 1 for row in board.measured)  # the column only where a row averages several runs
    if aggregated:
        table.add_column("runs", justify="right")
    for index, column in enumerate(COLUMNS):
        widest = max((len(row.texts[index]) for row in board.measured), default=1)
        table.add_column(column.console_header or column.header, justify="right", min_width=widest)
    for row in board.measured:
        cells = [Text(t, style="bold" if b else "") for t, b in zip(row.texts, row.best)]
        runs = [str(row.runs)] if aggregated else []
        table.add_row(Text(row.label, style="" if row.finished else "red"), *runs, *cells)
    if board.reported:
        table.add_section()
        for row in board.reported:
            cells = [*([""] if aggregated else []), *row.texts, *([MISSING] * (len(COLUMNS) - len(REPORTED_COLUMNS)))]
            table.add_row(f"{row.label} (reported)", *cells, style="dim italic")
    return table
