"""Identity review: the exported sheet, merge / split / drop applied and re-split, bad edits refused untouched.

The footage is made so that the tracker's identities are wrong in known ways, while every frame is drawn with
the colour of the true person: in the test video, person 1 is cut into tracks 1 and 4 (a fragment), track 2
follows person 2 and then person 3 (an identity switch at frame 61), and track 5 is a person to leave out. The
crops' colours are the reference a reviewed dataset is checked against.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from test_build import check_dataset
from test_mot_readers import COLOURS, gt_text, walkers, write_sequence
from typer.testing import CliRunner

import builders.review as review_module
from builders.build import build_from_source
from builders.mot import read_mot_root
from builders.recipe import Recipe
from builders.review import REVIEW_LAYOUT, SHEET_COLUMNS, apply_review, export_review
from vreid_bench import cli, cli_review
from vreid_bench.datasets import load
from vreid_bench.errors import ConfigError, DatasetNotFoundError
from vreid_bench.io import recover

TRAIN, TEST = "v_a_c001", "v_b_c002"
FRAMES = 120  # at 10 fps: a 1 s pseudo-camera gap is 10 frames
RECIPE = Recipe(crop_size=(64, 32))
# Sheet lines (the header is line 1), in table order.
LINE = {f"{TRAIN}:1": 2, f"{TRAIN}:2": 3, f"{TEST}:1": 4, f"{TEST}:2": 5, f"{TEST}:4": 6, f"{TEST}:5": 7,
        f"{TEST}:6": 8}
EDITS = {f"{TEST}:4": {"merge_into": f"{TEST}:1"}, f"{TEST}:2": {"split_at_frame": "61"}, f"{TEST}:5": {"drop": "yes"}}


def walking(slot: int, label: int, frames: range) -> list[tuple[int, int, float, float, float, float]]:
    """Boxes of someone walking in place at horizontal ``slot``, as ground-truth rows labelled ``label``."""
    return [(f, label, float(12 + slot * 50 + f % 5), float(40 + f % 7), 30.0, 80.0) for f in frames]


def write_footage(root: Path) -> Path:
    """A SportsMOT-layout root: a clean training video and a test video whose tracker identities need review."""
    (root / "splits_txt").mkdir(parents=True)
    (root / "splits_txt" / "train.txt").write_text(f"{TRAIN}\n")
    (root / "splits_txt" / "val.txt").write_text(f"{TEST}\n")
    write_sequence(root / "dataset" / "train" / TRAIN, walkers(2, 60), 60)
    people = (walking(0, 1, range(1, 121)) + walking(1, 2, range(1, 61)) + walking(1, 3, range(61, 121))
              + walking(2, 4, range(1, 61)) + walking(3, 5, range(1, 121)))
    tracks = (walking(0, 1, range(1, 61)) + walking(0, 4, range(61, 121)) + walking(1, 2, range(1, 121))
              + walking(2, 5, range(1, 61)) + walking(3, 6, range(1, 121)))
    write_sequence(root / "dataset" / "val" / TEST, people, FRAMES, gt=gt_text(tracks))
    return root


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return write_footage(tmp_path_factory.mktemp("footage") / "sportsmot")


@pytest.fixture(scope="module")
def built(source, tmp_path_factory) -> Path:
    """The tracker-built dataset, never modified: each test reviews its own copy."""
    out = tmp_path_factory.mktemp("built") / "ds"
    build_from_source("sports", read_mot_root(source), out, recipe=RECIPE, progress=False, identities_verified=False)
    return out


@pytest.fixture(scope="module")
def blank_sheet(built, tmp_path_factory) -> list[dict[str, str]]:
    """The rows of the exported sheet, edit columns empty."""
    sheet = export_review(built, tmp_path_factory.mktemp("sheet") / "review")
    return read_rows(sheet.csv)


@pytest.fixture
def dataset(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "ds"))


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_sheet(path: Path, rows: list[dict[str, str]], edits: dict[str, dict[str, str]],
                extra: tuple[dict[str, str], ...] = ()) -> Path:
    """The blank sheet with ``edits`` (pid -> column -> value) filled in and ``extra`` rows appended."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SHEET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{**row, **edits.get(row["pid"], {})} for row in rows] + list(extra))
    path.write_text(buffer.getvalue())
    return path


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file of the dataset, by relative path: equal snapshots mean nothing changed."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def person_of(crop: str) -> int:
    """The true person a crop shows: the drawing colour nearest to its centre pixel."""
    with Image.open(crop) as image:
        pixel = np.asarray(image.convert("RGB"))[32, 16].astype(int)
    return int(np.argmin([np.abs(pixel - np.array(c)).sum() for c in COLOURS]))


def identities(dataset) -> dict[str, list]:
    """Identity name -> its tracklets (all splits), in time order."""
    by_name = defaultdict(list)
    for t in dataset.train + dataset.query + dataset.gallery:
        by_name[dataset.pid_names[t.pid]].append(t)
    return {name: sorted(ts, key=lambda t: t.frames[0]) for name, ts in by_name.items()}


def frame_of(path: str) -> int:
    return int(Path(path).stem)


# ---------------------------------------------------------------------------------------------------- export


def test_export_writes_one_row_and_one_image_per_identity(built, tmp_path):
    sheet = export_review(built, tmp_path / "review", frames_per_tracklet=4)
    rows = read_rows(sheet.csv)
    by_name = identities(load(built))
    assert [row["pid"] for row in rows] == list(LINE)
    assert sorted(by_name) == sorted(LINE)
    for row in rows:
        own = by_name[row["pid"]]
        video, track = row["pid"].split(":")
        assert (row["video"], row["track_id"], row["image"]) == (video, track, f"{video}/{track}.png")
        assert int(row["n_tracklets"]) == len(own)
        assert (int(row["first_frame"]), int(row["last_frame"])) == (frame_of(own[0].frames[0]),
                                                                      frame_of(own[-1].frames[-1]))
        assert row["merge_into"] == row["split_at_frame"] == row["drop"] == ""
        with Image.open(tmp_path / "review" / row["image"]) as image:
            assert image.format == "PNG"
            pixels = np.asarray(image.convert("RGB")).astype(float)
        width, body = REVIEW_LAYOUT.size(len(own), 4)
        assert pixels.shape[1] == width and pixels.shape[0] > body
        top = pixels.shape[0] - body + REVIEW_LAYOUT.row_top(0)  # the first tracklet's first frame
        left = REVIEW_LAYOUT.frame_left(0)
        with Image.open(own[0].frames[0]) as crop:
            expected = np.asarray(crop.convert("RGB").resize((64, 128))).astype(float)
        shown = pixels[top:top + 96, left:left + 64]  # above the frame-number tab
        assert np.abs(shown - expected[:96]).mean() < 8
    assert sheet.images == tuple(tmp_path / "review" / row["image"] for row in rows)


def test_export_defaults_into_the_dataset_and_never_overwrites_a_sheet_with_edits(dataset, blank_sheet):
    sheet = export_review(dataset)
    assert sheet.csv == dataset / "review" / "review.csv" and read_rows(sheet.csv) == blank_sheet
    assert export_review(dataset).csv == sheet.csv  # an untouched sheet is simply replaced
    write_sheet(sheet.csv, blank_sheet, EDITS)
    with pytest.raises(ConfigError, match="already holds review edits"):
        export_review(dataset)
    assert read_rows(sheet.csv)[LINE[f"{TEST}:5"] - 2]["drop"] == "yes"


# ------------------------------------------------------------------------------------------------------ apply


def test_merge_split_and_drop_give_pure_identities_resplit_by_the_recipe(dataset, blank_sheet, tmp_path):
    before = load(dataset)
    mixed = identities(before)[f"{TEST}:2"]
    assert {person_of(f) for t in mixed for f in t.frames} == {2, 3}  # the switch the review fixes
    captions = [{"tracklet_id": t.tracklet_id, "caption": f"caption of {t.tracklet_id}", "captioner": "template",
                 "prompt_id": "p", "reviewed": False} for t in before.train + before.query + before.gallery]
    (dataset / "captions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in captions))
    train_files = {k: v for k, v in snapshot(dataset).items() if k.startswith(f"crops/{TRAIN}/")}

    result = apply_review(dataset, write_sheet(tmp_path / "sheet.csv", blank_sheet, EDITS))

    assert (result.edits, result.merged, result.split_frames, result.dropped) == (3, 1, 1, 1)
    assert result.videos == (TEST,) and result.identities_removed == 0
    after = load(dataset)
    check_dataset(after)  # one query per test identity, each with a true match on another pseudo-camera
    spans = {name: [(frame_of(t.frames[0]), frame_of(t.frames[-1]), t.camid) for t in ts]
             for name, ts in identities(after).items()}
    # Worked out by hand from the recipe: merged crops 1-25, 36-60, 61-85, 96-120 span 1..120, so the cameras
    # are frames 1-55 and 66-120 around a 10-frame gap; the split pieces (crops 1-55 and 66-120) each get
    # cameras of 22-23 frames around their own gap.
    assert spans == {
        f"{TRAIN}:1": [(1, 25, 0), (36, 60, 1)], f"{TRAIN}:2": [(1, 25, 0), (36, 60, 1)],
        f"{TEST}:1": [(1, 25, 0), (36, 55, 0), (66, 85, 1), (96, 120, 1)],
        f"{TEST}:2": [(1, 23, 0), (34, 55, 1)], f"{TEST}:2s1": [(66, 88, 0), (99, 120, 1)],
        f"{TEST}:6": [(1, 55, 0), (66, 120, 1)],
    }
    truth = {f"{TEST}:1": 1, f"{TEST}:2": 2, f"{TEST}:2s1": 3, f"{TEST}:6": 5}
    for name, person in truth.items():
        assert {person_of(f) for t in identities(after)[name] for f in t.frames} == {person}, name

    assert sorted(p.name for p in (dataset / "crops" / TEST).iterdir()) == ["1", "2", "2s1", "6", "record.json"]
    assert not list((dataset / "crops").glob(".*"))
    assert {k: v for k, v in snapshot(dataset).items() if k.startswith(f"crops/{TRAIN}/")} == train_files

    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["identities_verified"] is True
    assert manifest["fingerprint"] == after.fingerprint == result.fingerprint != before.fingerprint
    assert manifest["review"]["previous_fingerprint"] == before.fingerprint
    assert manifest["review"]["sheet_sha256"] == hashlib.sha256((tmp_path / "sheet.csv").read_bytes()).hexdigest()
    assert manifest["review"]["edits"] == 3
    counts = manifest["counts"]
    assert (counts["identities_test"], counts["tracklets_query"], counts["tracklets_gallery"]) == (4, 4, 6)
    assert counts["crops"] == sum(len(t) for t in after.train + after.query + after.gallery)

    kept = {row["tracklet_id"] for row in map(json.loads, (dataset / "captions.jsonl").read_text().splitlines())}
    # Captions stay where the same identity keeps the same crops under the same id: track 6, the training video,
    # and the merged identity's first tracklet (frames 1-25 before and after); the others are captioned anew.
    untouched = {t.tracklet_id for t in before.train + before.query + before.gallery
                 if t.tracklet_id.startswith((f"{TRAIN}_", f"{TEST}_6_", f"{TEST}_1_000"))}
    assert kept == untouched
    assert all(t.caption for t in after.train if t.tracklet_id in untouched)  # only training tracklets carry one


def test_the_build_resumes_on_a_reviewed_dataset_without_undoing_it(dataset, blank_sheet, source, tmp_path):
    result = apply_review(dataset, write_sheet(tmp_path / "sheet.csv", blank_sheet, EDITS))
    again = build_from_source("sports", read_mot_root(source), dataset, recipe=RECIPE, progress=False,
                              identities_verified=False)
    assert again.built == () and again.fingerprint == result.fingerprint


def test_split_pieces_too_short_for_two_cameras_are_removed_and_counted(dataset, blank_sheet, tmp_path):
    sheet = write_sheet(tmp_path / "sheet.csv", blank_sheet, {f"{TEST}:2": {"split_at_frame": "100; 61"}})
    result = apply_review(dataset, sheet)
    # Pieces: crops 1-55 (two cameras), 66-99 and 100-120 (each too short to cut: one camera, so no query match).
    assert (result.split_frames, result.identities_removed) == (2, 2)
    names = set(identities(load(dataset)))
    assert f"{TEST}:2" in names and not {f"{TEST}:2s1", f"{TEST}:2s2"} & names
    assert result.counts["test_identities_single_camera"] == 2
    check_dataset(load(dataset))


def test_a_sheet_saved_by_a_spreadsheet_is_read(dataset, blank_sheet, tmp_path):
    """Byte-order mark, CRLF line ends, a blank row, upper case and a trailing separator are all accepted."""
    edits = {f"{TEST}:4": {"merge_into": f"{TEST}:1"}, f"{TEST}:2": {"split_at_frame": " 61; "},
             f"{TEST}:5": {"drop": "YES"}}
    text = write_sheet(tmp_path / "plain.csv", blank_sheet, edits).read_text().splitlines()
    sheet = tmp_path / "saved.csv"
    sheet.write_bytes(("\ufeff" + "\r\n".join(text[:3] + [",,,,,,,,,"] + text[3:]) + "\r\n").encode("utf-8"))
    result = apply_review(dataset, sheet)
    assert (result.merged, result.split_frames, result.dropped) == (1, 1, 1)
    assert sorted(identities(load(dataset))) == sorted([f"{TRAIN}:1", f"{TRAIN}:2", f"{TEST}:1", f"{TEST}:2",
                                                        f"{TEST}:2s1", f"{TEST}:6"])


def test_an_empty_sheet_only_marks_identities_verified(dataset, blank_sheet, tmp_path):
    before = snapshot(dataset)
    fingerprint = json.loads((dataset / "manifest.json").read_text())["fingerprint"]
    result = apply_review(dataset, write_sheet(tmp_path / "sheet.csv", blank_sheet, {}))
    assert result.edits == 0 and result.videos == () and result.fingerprint == fingerprint
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["identities_verified"] is True and manifest["review"]["edits"] == 0
    assert manifest["fingerprint"] == fingerprint
    assert {k: v for k, v in snapshot(dataset).items() if k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"}
    assert load(dataset).notes["identities_verified"] is True


BAD_EDITS = [
    ({f"{TEST}:4": {"merge_into": f"{TRAIN}:1"}}, f"{TEST}:4", r"is in video v_a_c001.*of another group; merge only identities of one video, or of videos of one group"),
    ({f"{TEST}:1": {"merge_into": f"{TEST}:4"}, f"{TEST}:4": {"merge_into": f"{TEST}:1"}}, f"{TEST}:1",
     r"merge cycle v_b_c002:1 -> v_b_c002:4 -> v_b_c002:1"),
    ({f"{TEST}:6": {"merge_into": f"{TEST}:1"}}, f"{TEST}:6", r"both have a crop at frame 1 of v_b_c002;.*do not overlap"),
    ({f"{TEST}:1": {"merge_into": f"{TEST}:4"}, f"{TEST}:5": {"merge_into": f"{TEST}:1"}}, f"{TEST}:5",
     r"v_b_c002:5 and the identity it merges into \(v_b_c002:4\) both have a crop at frame 1"),  # via the chain
    ({f"{TEST}:4": {"merge_into": f"{TEST}:9"}}, f"{TEST}:4", r"merge_into 'v_b_c002:9' is not a pid"),
    ({f"{TEST}:4": {"merge_into": f"{TEST}:4"}}, f"{TEST}:4", r"merged into itself"),
    ({f"{TEST}:4": {"merge_into": f"{TEST}:1"}, f"{TEST}:1": {"drop": "yes"}}, f"{TEST}:4",
     r"merge target v_b_c002:1 is dropped on line 4"),
    ({f"{TEST}:2": {"split_at_frame": "121"}}, f"{TEST}:2", r"split frame 121 is outside v_b_c002:2.*frames 1-120"),
    ({f"{TEST}:2": {"split_at_frame": "1"}}, f"{TEST}:2", r"split frame 1 is outside.*give a frame in 2\.\.120"),
    ({f"{TEST}:2": {"split_at_frame": "sixty"}}, f"{TEST}:2", r"split_at_frame 'sixty' is not a frame number"),
    ({f"{TEST}:2": {"split_at_frame": "57;60"}}, f"{TEST}:2", r"no crop between split frames 57 and 60"),
    ({f"{TEST}:5": {"drop": "maybe"}}, f"{TEST}:5", r"drop 'maybe' is not understood"),
    ({f"{TEST}:5": {"drop": "yes", "split_at_frame": "30"}}, f"{TEST}:5", r"both split_at_frame and drop"),
    ({f"{TEST}:5": {"first_frame": "7"}}, f"{TEST}:5", r"sheet is out of date"),
]


BAD_EDIT_IDS = ["merge-across-videos", "merge-cycle", "merge-overlap", "merge-chain-overlap", "merge-unknown",
                "merge-self", "merge-into-dropped", "split-after-last", "split-at-first", "split-not-a-number",
                "split-empty-piece", "drop-word", "two-kinds", "stale-sheet"]


@pytest.mark.parametrize(("edits", "pid", "message"), BAD_EDITS, ids=BAD_EDIT_IDS)
def test_a_bad_edit_names_its_line_and_changes_nothing(dataset, blank_sheet, tmp_path, edits, pid, message):
    sheet = write_sheet(tmp_path / "sheet.csv", blank_sheet, edits)
    before = snapshot(dataset)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(sheet))}:{LINE[pid]}: .*{message}") as error:
        apply_review(dataset, sheet)
    assert "\n" not in str(error.value)
    assert snapshot(dataset) == before


def test_unknown_pids_and_unreadable_sheets_are_refused(dataset, blank_sheet, tmp_path):
    stranger = {**blank_sheet[0], "pid": f"{TEST}:99", "drop": "yes"}
    sheet = write_sheet(tmp_path / "sheet.csv", blank_sheet, {}, extra=(stranger,))
    with pytest.raises(ConfigError, match=rf"^{sheet}:9: unknown pid 'v_b_c002:99'.*vreid review export"):
        apply_review(dataset, sheet)
    (tmp_path / "cut.csv").write_text("pid,video\nv_b_c002:1,v_b_c002\n")
    with pytest.raises(ConfigError, match=r"cut.csv:1: missing columns merge_into, split_at_frame, drop"):
        apply_review(dataset, tmp_path / "cut.csv")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        apply_review(dataset, tmp_path / "none.csv")
    (tmp_path / "latin1.csv").write_bytes("pid,merge_into,split_at_frame,drop\nJosé,,,\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.csv is not a UTF-8 CSV file .*save it as CSV \(UTF-8\)"):
        apply_review(dataset, tmp_path / "latin1.csv")


def test_a_sheet_applied_twice_is_refused(dataset, blank_sheet, tmp_path):
    sheet = write_sheet(tmp_path / "sheet.csv", blank_sheet, EDITS)
    apply_review(dataset, sheet)
    after = snapshot(dataset)
    with pytest.raises(ConfigError, match="was already applied"):
        apply_review(dataset, sheet)
    assert snapshot(dataset) == after


def test_a_failure_while_staging_leaves_the_dataset_as_it_was(dataset, blank_sheet, tmp_path, monkeypatch):
    real_place = review_module._place_crop
    placed = []

    def fail_midway(source: Path, target: Path) -> None:
        if len(placed) == 100:
            raise KeyboardInterrupt
        placed.append(target)
        real_place(source, target)

    monkeypatch.setattr(review_module, "_place_crop", fail_midway)
    before = snapshot(dataset)
    with pytest.raises(KeyboardInterrupt):
        apply_review(dataset, write_sheet(tmp_path / "sheet.csv", blank_sheet, EDITS))
    assert snapshot(dataset) == before and not list((dataset / "crops").glob(".*"))


def _apply_and_die_at(step: int, dataset: Path, sheet: Path) -> None:
    """In a forked child: apply the sheet, and kill the process (no clean-up of any kind) after step ``step``."""
    from vreid_bench import io as vreid_io

    seen = []

    def die(name: str) -> None:
        seen.append(name)
        if len(seen) == step:
            os._exit(9)

    vreid_io._after_step = die
    apply_review(dataset, sheet)
    os._exit(0)  # the apply finished before reaching that step


def test_killed_at_any_step_the_dataset_loads_with_the_old_or_the_new_contents(dataset, blank_sheet, tmp_path):
    sheet = write_sheet(tmp_path / "sheet.csv", blank_sheet, EDITS)
    fresh = tmp_path / "fresh"
    shutil.copytree(dataset, fresh)
    apply_review(fresh, sheet)
    old, new = snapshot(dataset), snapshot(fresh)
    context = multiprocessing.get_context("fork")
    outcomes = []
    for step in range(1, 60):
        copy = tmp_path / f"kill-{step}"
        shutil.copytree(dataset, copy)
        child = context.Process(target=_apply_and_die_at, args=(step, copy, sheet))
        child.start()
        child.join(60)
        loaded = load(copy)  # finishes a committed change first
        state = {path: digest for path, digest in snapshot(copy).items() if ".staged" not in path}
        assert state in (old, new), f"killed after step {step}: neither the old nor the new dataset"
        recover(copy)  # what the next writer does first: the staged copies of an uncommitted change go
        assert not [p for p in copy.rglob("*") if p.name.endswith((".staged", ".aside"))]
        assert len(loaded.train) + len(loaded.query) + len(loaded.gallery) > 0
        outcomes.append("new" if state == new else "old")
        if child.exitcode == 0:
            break
    assert outcomes[-1] == "new" and "old" in outcomes and len(outcomes) > 5  # kills came before and after commit


# -------------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_app(monkeypatch) -> typer.Typer:
    """The real ``vreid`` entry point with only the review commands registered."""
    app = typer.Typer(pretty_exceptions_enable=False)
    app.callback()(lambda: None)
    cli_review.register(app)
    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_register_all", lambda: None)
    return app


def test_cli_export_then_apply(cli_app, dataset, tmp_path):
    exported = CliRunner().invoke(cli_app, ["review", "export", str(dataset), "--out", str(tmp_path / "sheet"),
                                            "--no-progress"])
    assert exported.exit_code == 0, exported.output
    assert "7 identities" in " ".join(exported.output.split())  # the console wraps long paths
    sheet = write_sheet(tmp_path / "sheet" / "review.csv", read_rows(tmp_path / "sheet" / "review.csv"), EDITS)
    applied = CliRunner().invoke(cli_app, ["review", "apply", str(dataset), str(sheet), "--no-progress"])
    assert applied.exit_code == 0, applied.output
    assert "applied 3 edits (1 merges, 1 split frames, 1 drops) to 1 videos" in " ".join(applied.output.split())
    assert load(dataset).notes["identities_verified"] is True


def test_cli_bad_sheet_exits_2_with_one_line(cli_app, dataset, blank_sheet, tmp_path, capsys):
    sheet = write_sheet(tmp_path / "sheet.csv", blank_sheet, {f"{TEST}:5": {"drop": "maybe"}})
    code = cli.main(["review", "apply", str(dataset), str(sheet), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and f"sheet.csv:{LINE[f'{TEST}:5']}: drop 'maybe'" in err


def test_the_same_player_in_two_clips_of_one_match_becomes_one_identity(tmp_path):
    from test_mot_readers import write_sportsmot

    source = write_sportsmot(tmp_path / "src", {"train": ["v_m1_c001", "v_m1_c002"], "val": ["v_m2_c001"]},
                             people=2, frames=60)
    out = tmp_path / "ds"
    build_from_source("sports", read_mot_root(source), out, recipe=RECIPE, progress=False)
    before = load(out)
    assert len(before.train_pids) == 4  # two players in each clip of match m1
    sheet = export_review(out, tmp_path / "sheet")
    write_sheet(sheet.csv, read_rows(sheet.csv), {"v_m1_c002:1": {"merge_into": "v_m1_c001:1"}})
    result = apply_review(out, sheet.csv)
    assert (result.merged, result.videos, result.identities_removed) == (1, (), 0)  # the manifest links the two
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["identity_links"] == {"v_m1_c002:1": "v_m1_c001:1"}
    assert manifest["counts"]["identities_train"] == 3 and result.fingerprint != result.previous_fingerprint
    after = load(out)
    names = {after.pid_names[t.pid] for t in after.train}
    assert names == {"v_m1_c001:1", "v_m1_c001:2", "v_m1_c002:2"}
    merged = [t for t in after.train if after.pid_names[t.pid] == "v_m1_c001:1"]
    assert {t.video for t in merged} == {"v_m1_c001", "v_m1_c002"}  # one identity, seen in both clips
    assert sum(len(t) for t in merged) == sum(len(t) for t in before.train
                                              if before.pid_names[t.pid] in ("v_m1_c001:1", "v_m1_c002:1"))

    other = tmp_path / "sheet2"
    sheet = export_review(out, other)
    write_sheet(sheet.csv, read_rows(sheet.csv), {"v_m2_c001:1": {"merge_into": "v_m1_c001:2"}})
    with pytest.raises(ConfigError, match="of another group"):
        apply_review(out, sheet.csv)
