"""Leaderboards from hand-written run directories: every format's content, best marks, groups, reported rows.

The fixture runs have known values chosen to exercise the rules: ties that only appear after rounding (both
marked), lower-is-better columns, an unfinished run, a run evaluated again under a second protocol, a run on
another build of the same dataset, and published numbers that are higher than every measured one.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from PIL import Image

from leaderboard.collect import collect_runs, result_groups, with_reported
from leaderboard.plots import cmc_png
from leaderboard.report import render_report, write_leaderboard
from leaderboard.reported import reported_for
from leaderboard.tables import build_leaderboards, to_csv, to_latex, to_markdown
from vreid_bench.engine.rundir import DatasetRecord, RunRecord
from vreid_bench.protocol import get_protocol
from vreid_bench.recipe import reference_recipe

FP_A = "a" * 64
FP_C = "c" * 64
HASH_A = get_protocol("video-scope").family_hash()  # the unfinished run's real config.yaml lands in group A
HASH_B = "bbbb33334444"


def cmc_from(ranks: dict[int, float]) -> list[float]:
    """A 50-long non-decreasing CMC through the given (rank -> value) points."""
    cmc, value = [], 0.0
    for k in range(1, 51):
        value = max(value, max((v for r, v in ranks.items() if r <= k), default=0.0))
        cmc.append(value)
    return cmc


RECIPE_HASHES = {"cgclip": "c9c9c9c9aaaa", "tfclip": "7f7f7f7fbbbb", "clip-tap": "ca7aca7acccc"}


def write_run(root: Path, model: str, *, dataset: str = "sportsvreid", fingerprint: str = FP_A,
              protocol: str = "video-scope", protocol_hash: str = HASH_A, mAP: float, ranks: dict[int, float],
              mINP: float, params: float, gflops: float, clips_per_s: float, epochs: int = 60,
              folder: str | None = None, metrics_file: str = "metrics.json", seed: int = 0,
              recipe: tuple[str, str] | None = None, split: int | None = None, num_splits: int | None = None,
              benchmark: str | None = "sportsvreid") -> Path:
    run_dir = root / dataset / (folder or f"{model}-{protocol}-{protocol_hash[:8]}")
    run_dir.mkdir(parents=True, exist_ok=True)
    name, digest = recipe or (model, RECIPE_HASHES.get(model, "0" * 12))
    metrics = {"model": model, "dataset": dataset, "dataset_fingerprint": fingerprint, "protocol": protocol,
               "protocol_hash": protocol_hash, "mAP": mAP, "cmc": cmc_from(ranks), "mINP": mINP,
               "num_valid_queries": 100, "num_skipped_queries": 2, "params": params, "gflops_per_clip": gflops,
               "clips_per_s": clips_per_s, "seed": seed, "git_rev": "abc", "wall_s": 60.0, "epochs": epochs,
               "device": "cpu (2 threads)", "recipe": name, "recipe_hash": digest, "split": split,
               "num_splits": num_splits, "benchmark": benchmark}
    (run_dir / metrics_file).write_text(json.dumps(metrics))
    if not (run_dir / "config.yaml").exists():
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": model, "note": "hand-written fixture"}))
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    # Group A: sportsvreid (fingerprint A) under video-scope.
    cgclip = write_run(root, "cgclip", mAP=0.7771, ranks={1: 0.904, 5: 0.95, 10: 0.97, 20: 0.99}, mINP=0.41,
                       params=91.2e6, gflops=190.4, clips_per_s=3.1)
    write_run(root, "tfclip", mAP=0.7730, ranks={1: 0.911, 5: 0.95, 10: 0.96, 20: 0.99}, mINP=0.4304,
              params=107.0e6, gflops=197.2, clips_per_s=2.9)
    write_run(root, "clip-tap", mAP=0.651, ranks={1: 0.80, 5: 0.90, 10: 0.94, 20: 0.98}, mINP=0.4296,
              params=86.2e6, gflops=181.0, clips_per_s=3.4)
    # An unfinished run: a real config.yaml, no metrics.json.
    record = RunRecord("resnet-tap", DatasetRecord("sportsvreid", "/data/sportsvreid", fingerprint=FP_A),
                       get_protocol("video-scope"), reference_recipe("resnet-tap", sets=["epochs=60"]))
    unfinished = root / "sportsvreid" / "resnet-tap-unfinished"
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text(yaml.safe_dump(record.to_dict(), sort_keys=False))
    # Group B: cgclip's run evaluated again under another protocol (vreid eval --protocol).
    write_run(root, "cgclip", protocol="video-scope-custom", protocol_hash=HASH_B, mAP=0.50,
              ranks={1: 0.60}, mINP=0.2, params=91.2e6, gflops=190.4, clips_per_s=3.0,
              folder=cgclip.name, metrics_file="metrics-video-scope-custom.json")
    # Group C: another build of sportsvreid (fingerprint C), same protocol as A.
    write_run(root, "tfclip", fingerprint=FP_C, mAP=0.60, ranks={1: 0.70}, mINP=0.3, params=107.0e6,
              gflops=197.2, clips_per_s=2.0, folder="tfclip-other-build")
    # A broken result file: reported as a problem, the rest still shown.
    broken = root / "sportsvreid" / "broken-run"
    broken.mkdir()
    (broken / "metrics.json").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def boards(runs):
    return build_leaderboards(collect_runs([runs]).frame)


def board_of(boards, fingerprint: str, protocol_hash: str):
    [board] = [b for b in boards
               if b.group.dataset_fingerprint == fingerprint and b.group.protocol_family == protocol_hash]
    return board


# ---------------------------------------------------------------------------------------------- parsers


def md_tables(section: str) -> list[list[list[str]]]:
    """The pipe tables of a Markdown section, each as rows of cells (header and separator dropped)."""
    tables, current = [], []
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif current:
            tables.append(current[2:])
            current = []
    return tables


def md_sections(text: str) -> dict[str, str]:
    """Markdown sections keyed by their caption line (which names fingerprint and protocol hash)."""
    sections = {}
    for part in text.split("### ")[1:]:
        caption = part.splitlines()[2]
        sections[caption] = part
    return sections


class HtmlTables(HTMLParser):
    """Tables of an HTML document: class, caption and rows of (text, marked best) cells; and image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self._cell: dict | None = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(attrs[key])
        if tag in ("script", "link"):
            self.external.append(tag)
        if tag == "table":
            self.tables.append({"class": attrs.get("class"), "caption": "", "rows": []})
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append({"class": attrs.get("class"), "cells": []})
        elif tag in ("td", "th") and self.tables and self.tables[-1]["rows"]:
            self._cell = {"text": "", "best": attrs.get("class") == "best", "strong": False}
        elif tag == "strong" and self._cell is not None:
            self._cell["strong"] = True
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1]["cells"].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._in_caption:
            self.tables[-1]["caption"] += data
        elif self._cell is not None:
            self._cell["text"] += data


def parse_html(text: str) -> HtmlTables:
    parser = HtmlTables()
    parser.feed(text)
    return parser


def latex_tables(text: str) -> list[dict]:
    """Each LaTeX table's caption and body rows (cells split on &), reported rows apart."""
    tables = []
    for chunk in text.split(r"\begin{table}")[1:]:
        caption = re.search(r"\\caption\{(.*)\}\n", chunk).group(1)
        body = chunk.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
        measured, _, reported = body.partition(r"\midrule")
        def rows(block):
            return [[c.strip() for c in line.rstrip(" \\").split(" & ")] for line in block.strip().splitlines()
                    if line.strip().endswith(r"\\") and r"\multicolumn" not in line]
        tables.append({"caption": caption, "measured": rows(measured), "reported": rows(reported)})
    return tables


# ------------------------------------------------------------------------------------------------- tests

UNFINISHED_RECIPE = f"resnet-tap {reference_recipe('resnet-tap', sets=['epochs=60']).hash()[:8]}"
CPU = "cpu (2 threads)"
EXPECTED_A = [  # the DISPLAY columns: model, recipe, runs, vs best, mAP, its CI and delta, R1, its CI and delta,
    # R5, R10, R20, mINP, params (M), train-only params (M), GFLOPs/clip, clips/s, device, epochs. The fixture runs
    # carry no per-query results, so no intervals and no verdict.
    ["cgclip", "cgclip c9c9c9c9", "1", "", "77.7", "-", "-", "90.4", "-", "-", "95.0", "97.0", "99.0", "41.0",
     "91.2", "-", "190", "3.10", CPU, "60"],
    ["tfclip", "tfclip 7f7f7f7f", "1", "", "77.3", "-", "-", "91.1", "-", "-", "95.0", "96.0", "99.0", "43.0",
     "107", "-", "197", "2.90", CPU, "60"],
    ["clip-tap", "clip-tap ca7aca7a", "1", "", "65.1", "-", "-", "80.0", "-", "-", "90.0", "94.0", "98.0", "43.0",
     "86.2", "-", "181", "3.40", CPU, "60"],
    ["resnet-tap (unfinished)", UNFINISHED_RECIPE, "0", "", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
     "-", "-", "-", "", "-"],
]
BEST_A = {  # (row, column index in EXPECTED_A) that must be marked; ties after rounding are all marked; costs never
    (0, 4), (1, 7), (0, 10), (1, 10), (0, 11), (0, 12), (1, 12), (1, 13), (2, 13),
}


def test_runs_are_grouped_by_fingerprint_and_protocol_hash(runs):
    collection = collect_runs([runs])
    groups = {(g.dataset_fingerprint, g.protocol_family): sorted(g.rows["label"])
              for g in result_groups(collection.frame)}
    assert groups == {
        (FP_A, HASH_A): ["cgclip", "clip-tap", "resnet-tap", "tfclip"],
        (FP_A, HASH_B): ["cgclip"],
        (FP_C, HASH_A): ["tfclip"],
    }
    [problem] = collection.problems
    assert "broken-run" in problem and "skipped" in problem


def test_markdown_rows_values_and_best_marks(boards):
    sections = md_sections(to_markdown(boards))
    [section_a] = [s for caption, s in sections.items() if f"fingerprint {FP_A[:12]}" in caption and HASH_A in caption]
    [table] = md_tables(section_a)
    assert [[cell.strip("*") for cell in row] for row in table] == EXPECTED_A
    marked = {(r, c) for r, row in enumerate(table) for c, cell in enumerate(row) if re.fullmatch(r"\*\*.+\*\*", cell)}
    assert marked == BEST_A
    assert "resnet-tap (unfinished): no metrics.json" in section_a


def test_csv_values_best_column_and_sources(boards):
    rows = list(csv.DictReader(io.StringIO(to_csv(boards))))
    group_a = [r for r in rows if r["dataset_fingerprint"] == FP_A and r["protocol_family"] == HASH_A]
    assert [r["label"] for r in group_a] == [row[0] for row in EXPECTED_A]
    by_model = {r["model"]: r for r in group_a}
    assert float(by_model["cgclip"]["mAP"]) == 77.7 and float(by_model["tfclip"]["R1"]) == 91.1
    assert float(by_model["clip-tap"]["params_M"]) == 86.2 and by_model["resnet-tap"]["mAP"] == ""
    assert by_model["cgclip"]["best"].split(";") == ["mAP", "R5", "R10", "R20"]
    assert by_model["tfclip"]["best"].split(";") == ["R1", "R5", "R20", "mINP"]
    assert by_model["clip-tap"]["best"].split(";") == ["mINP"]  # costs are shown, not ranked
    assert by_model["resnet-tap"]["best"] == "" and by_model["resnet-tap"]["status"] == "unfinished"
    assert {r["source"] for r in rows} == {"measured"}


def test_latex_rows_bold_marks_and_escaping(boards):
    tables = latex_tables(to_latex(boards))
    [table] = [t for t in tables if FP_A[:12] in t["caption"] and HASH_A in t["caption"]]
    cells = [[re.sub(r"\\textbf\{(.*)\}", r"\1", c) for c in row] for row in table["measured"]]
    assert cells == [[c if c != "-" else "--" for c in row] for row in EXPECTED_A]
    marked = {(r, c) for r, row in enumerate(table["measured"]) for c, cell in enumerate(row)
              if cell.startswith(r"\textbf{")}
    assert marked == BEST_A
    assert r"video-scope" in table["caption"] and "_" not in table["caption"].replace(r"\_", "")


def test_html_report_tables_marks_and_embedded_plots(boards):
    parsed = parse_html(render_report(boards, sources=["runs"]))
    measured = [t for t in parsed.tables if t["class"] == "measured"]
    assert len(measured) == 3 and not [t for t in parsed.tables if t["class"] == "reported"]
    [table] = [t for t in measured if FP_A[:12] in t["caption"] and HASH_A in t["caption"]]
    body = table["rows"][1:]
    assert [[c["text"] for c in row["cells"]] for row in body] == EXPECTED_A
    marked = {(r, c) for r, row in enumerate(body) for c, cell in enumerate(row["cells"]) if cell["best"]}
    assert marked == BEST_A
    assert all(cell["strong"] == cell["best"] for row in body for cell in row["cells"])
    assert body[-1]["class"] == "unfinished"
    assert parsed.external == []  # self-contained: nothing loaded from elsewhere
    assert len(parsed.images) == 6  # per table, its CMC curves and its mAP-against-cost plot
    assert len([t for t in parsed.tables if t["class"] == "efficiency"]) == 3
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.format == "PNG" and image.width > 400


def test_different_protocols_and_builds_are_never_ranked_together(boards):
    assert len(boards) == 3
    other_build = board_of(boards, FP_C, HASH_A)
    [row] = other_build.measured
    assert row.label == "tfclip" and row.texts[0] == "60.0"
    assert row.best[0]  # best of its own table, although below group A's best
    other_protocol = board_of(boards, FP_A, HASH_B)
    assert [r.label for r in other_protocol.measured] == ["cgclip"]
    assert HASH_B in other_protocol.caption and FP_A[:12] in other_protocol.caption
    captions = [b.caption for b in boards]
    assert len(set(captions)) == 3


def test_reported_rows_are_marked_apart_and_never_best(runs):
    boards = build_leaderboards(with_reported(collect_runs([runs]).frame))
    board = board_of(boards, FP_C, HASH_A)  # measured mAP 60.0, below the published 77.7
    abstract = "CG-CLIP (Hamano et al., arXiv:2604.07740), abstract"
    assert [(r.label, r.texts, r.reference) for r in board.reported] == [
        ("CG-CLIP", ("77.7", "90.4"), abstract), ("TF-CLIP", ("77.3", "89.7"), abstract)]
    assert all(not any(r.best) for r in board.reported)
    assert board.measured[0].best[0]

    section = [s for c, s in md_sections(to_markdown(boards)).items() if FP_C[:12] in c][0]
    measured, reported = md_tables(section)
    assert [row[0] for row in measured] == ["tfclip"]
    assert reported == [
        ["CG-CLIP", "77.7", "90.4", abstract, "on the authors' hand-checked SportsVReID"],
        ["TF-CLIP", "77.3", "89.7", abstract, "derived: CG-CLIP's 77.7 / 90.4 minus the +0.4 / +0.7 it reports over "
         "TF-CLIP"]]
    assert "Reported in papers" in section and "never ranked" in section

    rows = list(csv.DictReader(io.StringIO(to_csv(boards))))
    reported_rows = [r for r in rows if r["source"] == "reported"]
    assert len(reported_rows) == 2 * 3  # beside each of the three sportsvreid tables
    assert all(r["best"] == "" for r in reported_rows)

    parsed = parse_html(render_report(boards))
    tables = [t for t in parsed.tables if t["class"] == "reported"]
    assert len(tables) == 3 and all("never ranked" in t["caption"] for t in tables)
    assert not any(c["best"] or c["strong"] for t in tables for row in t["rows"] for c in row["cells"])

    [latex] = [t for t in latex_tables(to_latex(boards)) if FP_C[:12] in t["caption"]]
    assert all(not any(c.startswith(r"\textbf") for c in row) for row in latex["reported"])
    assert latex["reported"][0][0].startswith(r"\textit{CG-CLIP (CG-CLIP (Hamano et al.")


def test_reported_rows_never_attach_to_a_build_of_synthetic_footage(tmp_path):
    write_run(tmp_path, "cgclip", mAP=0.5, ranks={1: 0.5}, mINP=0.1, params=1e6, gflops=1.0, clips_per_s=1.0,
              benchmark=None)  # named like the benchmark, but its manifest says it is no build of SportsMOT
    [board] = build_leaderboards(with_reported(collect_runs([tmp_path]).frame))
    assert board.title.startswith("sportsvreid") and board.reported == ()


def test_a_build_knows_whether_it_re_creates_a_benchmark():
    from builders.build import benchmark_of

    assert benchmark_of("sports", "sportsmot", "real") == "sportsvreid"
    assert benchmark_of("dance", "dancetrack", "real") == "dancevreid"
    assert benchmark_of("sports", "sportsmot", "synthetic") is None  # vreid synth writes the SportsMOT layout too
    assert benchmark_of("sports", "motchallenge", "real") is None and benchmark_of("dance", "sportsmot", "real") is None


def test_reported_numbers_are_matched_by_benchmark():
    assert [(r.display_name, r.mAP, r.rank1) for r in reported_for("mars")] == [("CG-CLIP", 89.8, 92.5),
                                                                               ("TF-CLIP", 89.4, 93.0)]
    assert [(r.display_name, r.rank1) for r in reported_for("dancevreid")] == [("CG-CLIP", 95.7), ("TF-CLIP", 90.5)]
    dance_tfclip = reported_for("dancevreid")[1]
    assert dance_tfclip.derived and "derived" in dance_tfclip.note and "abstract" in dance_tfclip.source
    assert [(r.mAP, r.rank1, r.source) for r in reported_for("lsvid")] == [(83.8, 90.4, "TF-CLIP (Yu et al., AAAI 2024), "
                                                                            "Table 1")]
    assert [(r.mAP, r.rank1) for r in reported_for("ilidsvid")] == [(None, 94.5)]
    assert reported_for(None) == [] and reported_for("prid2011") == []


def test_runs_of_one_model_with_other_recipes_are_told_apart(tmp_path):
    for folder, mAP, recipe in (("cgclip-a", 0.5, ("cgclip", "1111111199aa")),
                                ("cgclip-b", 0.6, ("shared", "2222222299bb"))):
        write_run(tmp_path, "cgclip", mAP=mAP, ranks={1: mAP}, mINP=0.1, params=1e6, gflops=1.0, clips_per_s=1.0,
                  folder=folder, recipe=recipe)
    [board] = build_leaderboards(collect_runs([tmp_path]).frame)
    assert [(r.label, r.recipe) for r in board.measured] == [("cgclip (shared 22222222)", "shared 22222222"),
                                                            ("cgclip (cgclip 11111111)", "cgclip 11111111")]


def test_seeds_of_one_configuration_make_one_row_with_mean_and_std(tmp_path):
    for seed, mAP in ((0, 0.50), (1, 0.60), (2, 0.70)):
        write_run(tmp_path, "cgclip", mAP=mAP, ranks={1: mAP + 0.1}, mINP=0.1, params=1e6, gflops=1.0,
                  clips_per_s=1.0, folder=f"cgclip-s{seed}", seed=seed)
    [board] = build_leaderboards(collect_runs([tmp_path]).frame)
    [row] = board.measured
    assert row.runs == 3 and row.texts[:2] == ("60.0 ± 10.0", "70.0 ± 10.0") and row.values[0] == 60.0
    [csv_row] = [r for r in csv.DictReader(io.StringIO(to_csv([board])))]
    assert (csv_row["mAP"], csv_row["mAP_std"], csv_row["runs"]) == ("60.0", "10.00", "3")


def test_a_split_dataset_is_averaged_over_a_complete_set_of_splits_only(tmp_path):
    family = get_protocol("gallery-only").family_hash()
    for split in range(10):
        for model, base in (("tfclip", 0.80), ("cgclip", 0.85)):
            if model == "cgclip" and split in (3, 7):
                continue  # two splits of cgclip never trained
            protocol_hash = get_protocol("gallery-only").with_split(split).hash()
            run = write_run(tmp_path, model, dataset="ilidsvid", fingerprint="i" * 64, protocol="gallery-only",
                            protocol_hash=protocol_hash, mAP=base + split / 100, ranks={1: base}, mINP=0.5,
                            params=1e6, gflops=1.0, clips_per_s=1.0, folder=f"{model}-{split}", split=split,
                            num_splits=10)
            metrics = json.loads((run / "metrics.json").read_text())
            (run / "metrics.json").write_text(json.dumps({**metrics, "protocol_family": family}))
    [board] = build_leaderboards(collect_runs([tmp_path]).frame)
    assert "mean ± std over its 10 splits" in board.caption
    tfclip, cgclip = board.measured
    assert (tfclip.label, tfclip.runs, tfclip.finished) == ("tfclip", 10, True)
    assert tfclip.texts[0] == "84.5 ± 3.0" and tfclip.best[0]
    assert (cgclip.label, cgclip.status, cgclip.texts[0]) == ("cgclip (incomplete)", "incomplete", "-")
    assert "splits missing (seed 0: 3, 7) of 10" in cgclip.note and not any(cgclip.best)
    assert "cgclip (incomplete): not averaged: splits missing (seed 0: 3, 7)" in to_markdown([board])


def test_written_files_and_plots(boards, tmp_path):
    path, plots = write_leaderboard(tmp_path / "board.md", boards, "md")
    assert sorted(p.name for p in (tmp_path / "board-cmc").iterdir()) == sorted(p.name for p in plots.values())
    assert len(plots) == 3
    text = path.read_text()
    for png in plots.values():
        assert f"](board-cmc/{png.name})" in text
        assert Image.open(png).format == "PNG"
    for fmt, check in (("csv", lambda t: t.startswith("train_dataset,")), ("latex", lambda t: r"\begin{tabular}" in t),
                       ("html", lambda t: t.startswith("<!DOCTYPE html>"))):
        out, _ = write_leaderboard(tmp_path / f"board.{fmt}", boards, fmt)
        assert check(out.read_text())


def test_cmc_plot_is_a_png_of_the_requested_size():
    png = cmc_png({"a": [0.5, 0.7, 0.9], "b": [0.2] * 50}, "title", max_rank=20, dpi=100)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (640, 400)


@pytest.fixture
def vreid(monkeypatch):
    """``vreid.cli.main`` with the comparison commands registered (undone after the test)."""
    from vreid_bench import cli, cli_compare

    commands = list(cli.app.registered_commands)
    monkeypatch.setattr(cli.app, "registered_commands", commands)
    if not any(c.name == "leaderboard" for c in commands):
        cli_compare.register(cli.app)
    return cli.main


def test_cli_leaderboard_prints_tables_and_writes_the_report(vreid, runs, capsys):
    assert vreid(["leaderboard", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "sportsvreid — video-scope" in out and "77.7" in out and "resnet-tap (unfinished)" in out
    report = runs / "leaderboard.html"
    assert report.is_file() and f"HTML report: {report}" in out.replace("\n", "")
    assert len([t for t in parse_html(report.read_text()).tables if t["class"] == "measured"]) == 3


def test_cli_leaderboard_writes_each_format(vreid, runs, tmp_path, capsys):
    out = tmp_path / "board.csv"
    assert vreid(["leaderboard", str(runs), "--format", "csv", "--out", str(out), "--reported"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["source"] for r in rows} == {"measured", "reported"}
    assert len(list((tmp_path / "board-cmc").glob("*.png"))) == 3
    assert vreid(["leaderboard", str(runs), "--format", "latex"]) == 0
    assert capsys.readouterr().out.count(r"\begin{table}") == 3


def test_cli_leaderboard_without_results_is_one_line(vreid, tmp_path, capsys):
    assert vreid(["leaderboard", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert vreid(["leaderboard", str(tmp_path / "empty")]) == 2
    assert "no run results" in capsys.readouterr().err
