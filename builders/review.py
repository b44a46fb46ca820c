"""Identity review of a built dataset: ``vreid review export`` writes a sheet, ``vreid review apply`` applies it.

A tracker's identities are not ground truth: one person may be cut into several tracks (a fragment), one track
may jump from one person to another (an identity switch), and a track may follow no person at all. The review
sheet shows every identity (one contact-sheet image per track, its tracklets over time with frame numbers) and
a CSV with one row per identity and three columns for the reviewer:

- ``merge_into``: another pid of the same video, or of another video of the same group (clips of one match,
  which share players: the manifest's ``split.groups``); both become that identity. Within a video the merged
  tracks become one track and must not share a frame (a person fills one box per frame); chains (a -> b -> c)
  join all three, and a cycle is refused. Across videos each track keeps its crops and its own pid, and the
  manifest's ``identity_links`` says the source is the target's person; the loader gives both one identity. Such a
  merge is a step of its own: straight into the target, with no other merge into the source in the same sheet.
- ``split_at_frame``: one or more frame numbers separated by ``;``; from each of them on, the track is a new
  identity ``<video>:<track>s<k>``, while the part before the first keeps the pid.
- ``drop``: yes/1/true; the identity and its crops are removed.

One identity takes one kind of edit, and a merge target is neither dropped nor split: where a track needs two
kinds (split, then merge a part of it), apply the first, export again, and review the result.

Applying re-runs the recipe on every identity an edit touched, with the parameters in the manifest (runs,
pseudo-cameras and their gap, tracklet length; the boxes are gone, so box rules are not re-run), and
re-assigns query and gallery in the affected videos with the recipe's own ``plan_video``; an identity that
ends up too short, or on one camera in a test video, is removed by the same rules as in a build (and counted).
Identities no edit touches keep their tracklets, names and captions.

Every edit is checked before anything is written. The new state of each affected video is then staged beside
it (crops hard-linked, so nothing is copied), with the new ``tracklets.csv``, ``captions.jsonl`` and manifest,
and all of it replaces the old dataset as one :class:`vreid_bench.io.Transaction`: killed at any step, the
dataset loads with its old contents or its new ones, never a mix (the loader finishes a committed change).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from builders.build import RECORD_NAME, crops_digest, dataset_counts, fingerprint, tracklet_table
from builders.captions.recipe import evenly_spaced
from builders.contact_sheet import Font, SheetLayout, identity_colour, thumbnail
from builders.recipe import (
    RECIPE_NAME,
    CuratedTracklet,
    PlannedTracklet,
    Recipe,
    curate_track,
    plan_time_split,
    plan_video,
)
from vreid_bench.captions import CAPTIONS_FILE
from vreid_bench.datasets.toolkit import read_manifest
from vreid_bench.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from vreid_bench.io import Transaction, atomic_write_bytes, atomic_write_json, atomic_write_text, staged_directory

SHEET_NAME = "review.csv"
SHEET_COLUMNS = ("pid", "video", "track_id", "n_tracklets", "first_frame", "last_frame", "image", "merge_into",
                 "split_at_frame", "drop")
EDIT_COLUMNS = ("merge_into", "split_at_frame", "drop")
DROP_WORDS = ("yes", "1", "true")
KEEP_WORDS = ("", "no", "0", "false")
SPLIT_SEPARATOR = ";"
SPLIT_MARK = "s"  # <track>s<k> names the k-th new identity split off a track
DEFAULT_FRAMES_PER_TRACKLET = 6
REVIEW_LAYOUT = SheetLayout(label_width=220)


# ------------------------------------------------------------------------------------------ the dataset on disk


@dataclass(frozen=True)
class DiskTracklet:
    """A row of the dataset's table with its crops: ``frames`` (n,) int64 in time order, one crop path each."""

    tracklet_id: str
    pid: str
    camid: int
    split: str
    frames: np.ndarray
    crops: tuple[Path, ...]


@dataclass(frozen=True)
class Identity:
    """One identity (a track of one video) as the dataset holds it."""

    pid: str
    video: str
    track: str
    tracklets: tuple[DiskTracklet, ...]

    @property
    def frames(self) -> np.ndarray:
        """(n,) every frame with a crop, in time order."""
        return np.sort(np.concatenate([t.frames for t in self.tracklets]))

    @property
    def first_frame(self) -> int:
        return min(int(t.frames[0]) for t in self.tracklets)

    @property
    def last_frame(self) -> int:
        return max(int(t.frames[-1]) for t in self.tracklets)

    def crops_in_time_order(self) -> tuple[np.ndarray, list[Path]]:
        """(n,) frames and their crop paths, all tracklets together, sorted by frame."""
        frames = np.concatenate([t.frames for t in self.tracklets])
        crops = [crop for t in self.tracklets for crop in t.crops]
        order = np.argsort(frames, kind="stable")
        return frames[order], [crops[i] for i in order]


@dataclass(frozen=True)
class DatasetState:
    """What review needs of a built dataset: manifest, recipe, per-video records, identities in table order."""

    root: Path
    manifest: dict
    recipe: Recipe
    records: dict[str, dict]  # video -> its record.json, in the manifest's source order
    frame_rates: dict[str, float]
    identities: dict[str, Identity]  # pid -> identity

    def video_identities(self, video: str) -> list[Identity]:
        return [identity for identity in self.identities.values() if identity.video == video]

    def group_of(self, video: str) -> str:
        """The video's group (videos that may share people, kept on one side of the split), itself by default."""
        return str(((self.manifest.get("split") or {}).get("groups") or {}).get(video, video))


def _recipe_of(manifest: dict, path: Path) -> Recipe:
    recipe = manifest.get("recipe") or {}
    if recipe.get("name") != RECIPE_NAME:
        raise DatasetFormatError(f"{path}: recipe {recipe.get('name')!r} is not {RECIPE_NAME}, the recipe review "
                                 "re-runs; rebuild the dataset with this version of vreid")
    try:
        return Recipe(**recipe.get("params", {}))
    except TypeError as exc:
        raise DatasetFormatError(f"{path}: recipe parameters do not match {RECIPE_NAME} ({exc}); rebuild the "
                                 "dataset with this version of vreid") from None


def _read_record(root: Path, video: str) -> dict:
    path = root / "crops" / video / RECORD_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise DatasetFormatError(f"{path} is missing or unreadable: review works on datasets written by `vreid "
                                 "build`; run the build again to complete it") from None


def _frame_number(path: Path, table: Path, line: int) -> int:
    if not path.stem.isdigit():
        raise DatasetFormatError(f"{table}:{line}: crop {path} is not named by its frame number; rebuild the dataset")
    return int(path.stem)


def _disk_tracklet(root: Path, row: dict, table: Path, line: int) -> tuple[str, DiskTracklet]:
    """One table row -> (its track folder name, the tracklet with its crops listed from disk)."""
    directory = root / row["dir"]
    parts = Path(row["dir"]).parts
    if len(parts) != 4 or parts[0] != "crops" or parts[1] != row["video"] or row["pid"] != f"{parts[1]}:{parts[2]}":
        raise DatasetFormatError(f"{table}:{line}: dir {row['dir']!r} and pid {row['pid']!r} do not follow "
                                 "crops/<video>/<track>/<tracklet> with pid <video>:<track>; rebuild the dataset")
    if not directory.is_dir():
        raise DatasetNotFoundError(f"{table}:{line}: crop folder {directory} is missing; rebuild the dataset")
    crops = sorted((p for p in directory.iterdir() if p.suffix.lower() == ".jpg"),
                   key=lambda p: _frame_number(p, table, line))
    if len(crops) != int(row["n_frames"]):
        raise DatasetFormatError(f"{table}:{line}: {directory} holds {len(crops)} crops, n_frames says "
                                 f"{row['n_frames']}; rebuild the dataset")
    frames = np.array([_frame_number(p, table, line) for p in crops], dtype=np.int64)
    tracklet = DiskTracklet(str(row["tracklet_id"]), str(row["pid"]), int(row["camid"]), str(row["split"]), frames,
                            tuple(crops))
    return parts[2], tracklet


def read_dataset(dataset_dir: str | os.PathLike[str]) -> DatasetState:
    """Read a built dataset and check that its table is the one its per-video records describe."""
    root = Path(dataset_dir)
    manifest = read_manifest(root)
    recipe = _recipe_of(manifest, root / "manifest.json")
    sources = manifest.get("sources", [])
    records = {str(source["video"]): _read_record(root, str(source["video"])) for source in sources}
    table_path = root / "tracklets.csv"
    if not table_path.is_file() or table_path.read_text() != tracklet_table(list(records.values())):
        raise DatasetFormatError(f"{table_path} does not match the per-video records under crops/ (edited by hand, "
                                 "or an unfinished build); run the build again")
    tracks: dict[str, tuple[str, str, list[DiskTracklet]]] = {}
    rows = [row for record in records.values() for row in record["rows"]]
    for line, row in enumerate(rows, start=2):
        track, tracklet = _disk_tracklet(root, row, table_path, line)
        tracks.setdefault(tracklet.pid, (str(row["video"]), track, []))[2].append(tracklet)
    identities = {pid: Identity(pid, video, track, tuple(sorted(own, key=lambda t: int(t.frames[0]))))
                  for pid, (video, track, own) in tracks.items()}
    frame_rates = {str(source["video"]): float(source["fps"]) for source in sources}
    return DatasetState(root, manifest, recipe, records, frame_rates, identities)


# ---------------------------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ReviewSheet:
    """Where an exported sheet is: the CSV and one image per identity (paths in CSV order)."""

    csv: Path
    images: tuple[Path, ...]


def sheet_image_name(identity: Identity) -> str:
    """The image's path relative to the sheet folder, as the CSV's ``image`` column gives it."""
    return f"{identity.video}/{identity.track}.png"


def _label_frame(draw: ImageDraw.ImageDraw, frame: int, left: int, bottom: int, font: Font, height: int) -> None:
    """The frame number on a dark tab at the bottom left of a thumbnail, so split frames can be read off."""
    text = str(frame)
    draw.rectangle((left, bottom - height, left + int(draw.textlength(text, font=font)) + 4, bottom),
                   fill=(0, 0, 0))
    draw.text((left + 2, bottom - height + 1), text, fill=(255, 255, 255), font=font)


def _draw_tracklet(sheet: Image.Image, draw: ImageDraw.ImageDraw, top: int, pid: str, tracklet: DiskTracklet,
                   frames_per_tracklet: int, layout: SheetLayout, font: Font) -> None:
    line_height = layout.font_size + 4
    bottom = top + layout.thumb_height - 1
    draw.rectangle((layout.margin, top, layout.margin + layout.stripe_width - 1, bottom), fill=identity_colour(pid))
    shown = evenly_spaced(list(zip(tracklet.frames.tolist(), tracklet.crops)), frames_per_tracklet)
    for column in range(frames_per_tracklet):  # empty cells too, so short tracklets read as short
        left = layout.frame_left(column)
        draw.rectangle((left, top, left + layout.thumb_width - 1, bottom), fill=layout.cell_background)
        if column < len(shown):
            frame, crop = shown[column]
            thumb = thumbnail(str(crop), layout)
            sheet.paste(thumb, (left + (layout.thumb_width - thumb.width) // 2,
                                top + (layout.thumb_height - thumb.height) // 2))
            _label_frame(draw, frame, left, bottom, font, line_height)
    text_left = layout.frame_left(frames_per_tracklet)
    lines = (tracklet.tracklet_id, f"cam {tracklet.camid}   {tracklet.split}",
             f"frames {int(tracklet.frames[0])}-{int(tracklet.frames[-1])} ({len(tracklet.frames)})")
    for number, line in enumerate(lines):
        draw.text((text_left, top + number * line_height), line, fill=(0, 0, 0), font=font)


def render_track_sheet(identity: Identity, frames_per_tracklet: int = DEFAULT_FRAMES_PER_TRACKLET,
                       layout: SheetLayout = REVIEW_LAYOUT) -> Image.Image:
    """One identity: a title, then one row per tracklet in time order, a few labelled frames each."""
    font = ImageFont.load_default(size=layout.font_size)
    header = 2 * (layout.font_size + 4)
    width, body_height = layout.size(len(identity.tracklets), frames_per_tracklet)
    sheet = Image.new("RGB", (width, header + body_height), layout.background)
    draw = ImageDraw.Draw(sheet)
    title = (f"{identity.pid}   {len(identity.tracklets)} tracklets   frames {identity.first_frame}-"
             f"{identity.last_frame}")
    draw.text((layout.margin, layout.margin), title, fill=(0, 0, 0), font=font)
    for index, tracklet in enumerate(identity.tracklets):
        _draw_tracklet(sheet, draw, header + layout.row_top(index), identity.pid, tracklet, frames_per_tracklet,
                       layout, font)
    return sheet


def _sheet_has_edits(sheet: Path) -> bool:
    """Whether a sheet holds anything a reviewer wrote (so exporting over it would lose work)."""
    with sheet.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    return any((row.get(column) or "").strip().lower() not in KEEP_WORDS for row in rows for column in EDIT_COLUMNS)


def _check_sheet_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the review sheet")
    if not out.is_dir() or not any(out.iterdir()):
        return
    sheet = out / SHEET_NAME
    if not sheet.is_file():
        raise ConfigError(f"--out {out} is a non-empty folder without {SHEET_NAME}; give a new or empty folder")
    if _sheet_has_edits(sheet):
        raise ConfigError(f"{sheet} already holds review edits; apply it with `vreid review apply` or give "
                          "another --out")


def _sheet_row(identity: Identity) -> dict[str, object]:
    return {"pid": identity.pid, "video": identity.video, "track_id": identity.track,
            "n_tracklets": len(identity.tracklets), "first_frame": identity.first_frame,
            "last_frame": identity.last_frame, "image": sheet_image_name(identity), "merge_into": "",
            "split_at_frame": "", "drop": ""}


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled)


def export_review(dataset_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                  frames_per_tracklet: int = DEFAULT_FRAMES_PER_TRACKLET, progress: bool = False) -> ReviewSheet:
    """Write the review sheet of a dataset (default ``<dataset>/review``): images and ``review.csv``.

    The folder is written aside and moved into place whole, and a sheet that already holds edits is never
    overwritten.
    """
    if frames_per_tracklet < 1:
        raise ConfigError(f"--frames-per-tracklet {frames_per_tracklet} is invalid; use 1 or more")
    state = read_dataset(dataset_dir)
    target = Path(out) if out is not None else state.root / "review"
    _check_sheet_folder(target)
    identities = list(state.identities.values())
    with staged_directory(target) as stage, _progress(progress) as bar:
        task = bar.add_task("sheets", total=len(identities))
        for identity in identities:
            buffer = io.BytesIO()
            render_track_sheet(identity, frames_per_tracklet).save(buffer, format="PNG")
            atomic_write_bytes(stage / sheet_image_name(identity), buffer.getvalue())
            bar.advance(task)
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=SHEET_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_sheet_row(identity) for identity in identities)
        atomic_write_text(stage / SHEET_NAME, table.getvalue())
    return ReviewSheet(csv=target / SHEET_NAME,
                       images=tuple(target / sheet_image_name(identity) for identity in identities))


# ------------------------------------------------------------------------------------------ reading the edits


@dataclass(frozen=True)
class SheetEdit:
    """The edit on one line of the sheet (at most one kind per identity)."""

    line: int
    pid: str
    merge_into: str | None
    split_at: tuple[int, ...]
    drop: bool


@dataclass(frozen=True)
class ReviewEdits:
    """Every edit of a sheet, checked against the dataset; ``merge_target`` resolves chains to their end."""

    sheet: Path
    sheet_sha256: str
    edits: tuple[SheetEdit, ...]
    merge_target: dict[str, str]  # merges within a video
    links: dict[str, str] = dataclasses.field(default_factory=dict)  # merges across videos of a group

    @property
    def merged(self) -> int:
        return sum(edit.merge_into is not None for edit in self.edits)

    @property
    def split_frames(self) -> int:
        return sum(len(edit.split_at) for edit in self.edits)

    @property
    def dropped(self) -> int:
        return sum(edit.drop for edit in self.edits)

    @property
    def count(self) -> int:
        return self.merged + self.split_frames + self.dropped

    def touched(self) -> set[str]:
        """pids whose tracks change: edited rows and merge targets (merges across videos change no track)."""
        return {edit.pid for edit in self.edits if edit.pid not in self.links} | set(self.merge_target.values())


def _error(sheet: Path, line: int, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{sheet}:{line}: {problem}; {fix}")


def _parse_int(sheet: Path, line: int, column: str, value: str, fix: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _error(sheet, line, f"{column} {value!r} is not a frame number", fix) from None


def _parse_split(sheet: Path, line: int, value: str, identity: Identity) -> tuple[int, ...]:
    if not value:
        return ()
    fix = f"write frame numbers separated by '{SPLIT_SEPARATOR}', e.g. {identity.first_frame + 1}"
    parts = [part.strip() for part in value.split(SPLIT_SEPARATOR) if part.strip()]
    frames = [_parse_int(sheet, line, "split_at_frame", part, fix) for part in parts]
    if len(set(frames)) != len(frames):
        raise _error(sheet, line, f"split_at_frame {value!r} lists a frame twice", "give each frame once")
    frames.sort()
    first, last = identity.first_frame, identity.last_frame
    for frame in frames:
        if not first < frame <= last:
            raise _error(sheet, line, f"split frame {frame} is outside {identity.pid}, which spans frames "
                         f"{first}-{last}", f"give a frame in {first + 1}..{last}, the new identity's first")
    pieces = np.searchsorted(frames, identity.frames, side="right")  # (n,) piece index of every crop
    empty = sorted(set(range(len(frames) + 1)) - set(pieces.tolist()))
    if empty:
        raise _error(sheet, line, f"{identity.pid} has no crop between split frames {frames[empty[0] - 1]} and "
                     f"{frames[empty[0]]}", "remove one of them")
    return tuple(frames)


def _parse_drop(sheet: Path, line: int, value: str) -> bool:
    word = value.lower()
    if word not in DROP_WORDS + KEEP_WORDS:
        raise _error(sheet, line, f"drop {value!r} is not understood",
                     f"write {'/'.join(DROP_WORDS)} to drop the identity, or leave it empty")
    return word in DROP_WORDS


def _check_stale(sheet: Path, line: int, row: dict[str, str], identity: Identity) -> None:
    """A sheet from before another review or rebuild names identities whose frames moved: refuse it."""
    for column, actual in (("first_frame", identity.first_frame), ("last_frame", identity.last_frame)):
        value = (row.get(column) or "").strip()
        fix = "export a fresh sheet with `vreid review export` and review that one"
        if value and _parse_int(sheet, line, column, value, fix) != actual:
            raise _error(sheet, line, f"{identity.pid} spans frames {identity.first_frame}-{identity.last_frame} in "
                         f"the dataset but the sheet says {column} {value}: the sheet is out of date", fix)


def _parse_row(sheet: Path, line: int, row: dict[str, str], state: DatasetState) -> SheetEdit | None:
    values = {column: (row.get(column) or "").strip() for column in ("pid", *EDIT_COLUMNS)}
    pid = values["pid"]
    identity = state.identities.get(pid)
    if identity is None:
        raise _error(sheet, line, f"unknown pid {pid!r} (not in {state.root.name})",
                     "use the pids of a sheet exported from this dataset by `vreid review export`")
    _check_stale(sheet, line, row, identity)
    edit = SheetEdit(line, pid, values["merge_into"] or None, _parse_split(sheet, line, values["split_at_frame"],
                                                                          identity),
                     _parse_drop(sheet, line, values["drop"]))
    kinds = [name for name, given in (("merge_into", edit.merge_into), ("split_at_frame", edit.split_at),
                                      ("drop", edit.drop)) if given]
    if len(kinds) > 1:
        raise _error(sheet, line, f"{pid} has both {' and '.join(kinds)}",
                     "give one edit per identity; apply it, export again, and review the result")
    return edit if kinds else None


def _resolve_merges(sheet: Path, edits: dict[str, SheetEdit], state: DatasetState) -> dict[str, str]:
    """pid -> the identity it ends in, following chains; every target checked."""
    for edit in edits.values():
        if edit.merge_into is None:
            continue
        source = state.identities[edit.pid]
        target = state.identities.get(edit.merge_into)
        if target is None:
            raise _error(sheet, edit.line, f"merge_into {edit.merge_into!r} is not a pid of this dataset",
                         "give the pid of another identity of the same video")
        if target.pid == source.pid:
            raise _error(sheet, edit.line, f"{source.pid} is merged into itself", "give another pid, or leave it empty")
        if target.video != source.video and state.group_of(target.video) != state.group_of(source.video):
            raise _error(sheet, edit.line, f"merge_into {target.pid} is in video {target.video}, {source.pid} in "
                         f"{source.video}, of another group", "merge only identities of one video, or of videos of "
                         "one group (clips of one match, kept on one side of the split)")
        other = edits.get(target.pid)
        if other is not None and (other.drop or other.split_at):
            kind = "dropped" if other.drop else "split"
            raise _error(sheet, edit.line, f"merge target {target.pid} is {kind} on line {other.line}",
                         "merge into an identity that is kept whole; split first, export again, then merge")
    resolved: dict[str, str] = {}
    for pid, edit in edits.items():
        if edit.merge_into is None:
            continue
        chain = [pid]
        while (step := edits.get(chain[-1])) is not None and step.merge_into is not None:
            if step.merge_into in chain:
                cycle = " -> ".join([*chain[chain.index(step.merge_into):], step.merge_into])
                raise _error(sheet, edit.line, f"merge cycle {cycle}", "let one identity of the cycle keep its pid")
            chain.append(step.merge_into)
        resolved[pid] = chain[-1]
    return resolved


def _check_overlaps(sheet: Path, edits: dict[str, SheetEdit], merge_target: dict[str, str],
                    state: DatasetState) -> None:
    """Tracks merged into one identity must not share a frame: a person is one box per frame."""
    taken = {(target, state.identities[target].video): set(state.identities[target].frames.tolist())
             for target in set(merge_target.values())}
    for pid in sorted(merge_target, key=lambda p: edits[p].line):
        key = (merge_target[pid], state.identities[pid].video)  # frames only clash within one video
        frames = set(state.identities[pid].frames.tolist())
        shared = sorted(frames & taken.get(key, set()))
        if shared:
            raise _error(sheet, edits[pid].line, f"{pid} and the identity it merges into ({key[0]}) both have a crop "
                         f"at frame {shared[0]} of {key[1]}", "merge only tracks that do not overlap in time; drop "
                         "a duplicate")
        taken[key] = taken.get(key, set()) | frames


def _sheet_rows(data: bytes) -> tuple[tuple[str, ...], list[tuple[int, dict[str, str]]]]:
    """The header's fields and (line number, row) of every row; a byte-order mark, as spreadsheets write, is
    skipped. The whole file is parsed before any edit is looked at, so an unreadable file fails as a whole."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    rows = [(reader.line_num, row) for row in reader]
    return tuple(reader.fieldnames or ()), rows


def read_sheet(sheet: str | os.PathLike[str], state: DatasetState) -> ReviewEdits:
    """Parse and check every edit of a sheet against the dataset; the first problem raises, naming its line."""
    sheet = Path(sheet)
    if not sheet.is_file():
        raise DatasetNotFoundError(f"review sheet {sheet} does not exist; write one with `vreid review export`")
    data = sheet.read_bytes()
    try:
        fields, rows = _sheet_rows(data)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{sheet} is not a UTF-8 CSV file ({exc}); save it as CSV (UTF-8)") from None
    missing = [column for column in ("pid", *EDIT_COLUMNS) if column not in fields]
    if missing:
        raise _error(sheet, 1, f"missing columns {', '.join(missing)}",
                     f"keep the header written by `vreid review export` ({','.join(SHEET_COLUMNS)})")
    edits: dict[str, SheetEdit] = {}
    seen: dict[str, int] = {}
    for line, row in rows:
        pid = (row.get("pid") or "").strip()
        if not pid:
            if any((row.get(column) or "").strip() for column in EDIT_COLUMNS):
                raise _error(sheet, line, "an edit without a pid", "keep the pid column as exported")
            continue  # a blank row, as spreadsheets leave them
        if pid in seen:
            raise _error(sheet, line, f"{pid} is listed again (first on line {seen[pid]})", "keep one row per pid")
        seen[pid] = line
        edit = _parse_row(sheet, line, row, state)
        if edit is not None:
            edits[edit.pid] = edit
    merge_target = _resolve_merges(sheet, edits, state)
    links = _cross_video_links(sheet, edits, merge_target, state)
    merge_target = {pid: target for pid, target in merge_target.items() if pid not in links}
    _check_overlaps(sheet, edits, merge_target, state)
    return ReviewEdits(sheet, hashlib.sha256(data).hexdigest(), tuple(edits.values()), merge_target, links)


def _side(identity: Identity) -> str:
    return "train" if identity.tracklets[0].split == "train" else "test"


def _cross_video_links(sheet: Path, edits: dict[str, SheetEdit], merge_target: dict[str, str],
                       state: DatasetState) -> dict[str, str]:
    """The merges whose target is in another video: source pid -> target pid, each a step of its own."""
    links = {}
    for pid, target in merge_target.items():
        source = state.identities[pid]
        if state.identities[target].video == source.video:
            continue
        edit = edits[pid]
        if edit.merge_into != target or any(t == pid for p, t in merge_target.items() if p != pid):
            raise _error(sheet, edit.line, f"{pid} merges into {target} of another video through a chain, or other "
                         "identities merge into it", "merge across videos straight into the target, in a sheet of "
                         "its own; apply the other merges first")
        if _side(source) != _side(state.identities[target]):
            raise _error(sheet, edit.line, f"{pid} is a {_side(source)} identity and {target} a "
                         f"{_side(state.identities[target])} one", "merge only identities of one side of the split")
        links[pid] = target
    return links


# ------------------------------------------------------------------------------------------ the new identities


Piece = tuple[str, np.ndarray, list[Path]]  # (track, (n,) frames, crop paths) of an identity to re-curate


@dataclass(frozen=True)
class VideoReview:
    """An affected video's new plan; each planned tracklet's ``boxes`` holds, per frame, an index into ``crops``."""

    video: str
    tracklets: tuple[PlannedTracklet, ...]
    crops: tuple[Path, ...]
    counts: dict[str, int]


def _split_pieces(identity: Identity, frames_at: tuple[int, ...], used_tracks: set[str]) -> list[Piece]:
    """(track, frames, crops) of each piece; pieces after the first get the next free ``<track>s<k>``."""
    frames, crops = identity.crops_in_time_order()
    pieces = np.searchsorted(np.array(frames_at), frames, side="right")  # (n,) piece index of every crop
    result = []
    for index in range(len(frames_at) + 1):
        track = identity.track
        if index > 0:
            k = 1
            while f"{identity.track}{SPLIT_MARK}{k}" in used_tracks:
                k += 1
            track = f"{identity.track}{SPLIT_MARK}{k}"
            used_tracks.add(track)
        keep = np.flatnonzero(pieces == index)
        result.append((track, frames[keep], [crops[i] for i in keep]))
    return result


def _replacements(identities: list[Identity], edits: ReviewEdits) -> dict[str, list[Piece]]:
    """pid -> the pieces that replace it, for every identity the edits touch (none for a drop or a merged-away one).

    A split identity is replaced by its pieces (the new identities right after it); a merge target by the whole
    group, in its own place in the table.
    """
    by_pid = {edit.pid: edit for edit in edits.edits}
    members: dict[str, list[Identity]] = {}
    for identity in identities:
        members.setdefault(edits.merge_target.get(identity.pid, identity.pid), []).append(identity)
    targets = set(edits.merge_target.values())
    used_tracks = {identity.track for identity in identities}
    replaced: dict[str, list[Piece]] = {}
    for identity in identities:
        edit = by_pid.get(identity.pid)
        if identity.pid in targets:
            replaced[identity.pid] = [(identity.track, *_merge_crops(members[identity.pid]))]
        elif edit is not None and edit.split_at:
            replaced[identity.pid] = _split_pieces(identity, edit.split_at, used_tracks)
        elif edit is not None:
            replaced[identity.pid] = []  # dropped, or merged into another identity
    return replaced


def _merge_crops(group: list[Identity]) -> tuple[np.ndarray, list[Path]]:
    """(n,) frames and crop paths of a merge group in time order (the frames are disjoint, as checked)."""
    parts = [identity.crops_in_time_order() for identity in group]
    frames = np.concatenate([part[0] for part in parts])
    crops = [crop for part in parts for crop in part[1]]
    order = np.argsort(frames, kind="stable")
    return frames[order], [crops[i] for i in order]


def plan_review(state: DatasetState, edits: ReviewEdits, video: str) -> VideoReview:
    """Re-run the recipe on the identities the edits touch and re-assign query/gallery in ``video``.

    The recipe's functions carry a per-frame payload beside the frames (the boxes, in a build); here the boxes
    are gone, so the payload is each frame's index into this video's list of crop files. Identities no edit
    touches enter ``plan_video`` with their tracklets as they are, so they keep their names and roles.
    """
    identities = state.video_identities(video)
    replaced = _replacements(identities, edits)
    gap = state.recipe.segment_gap_frames(state.frame_rates[video])
    crops: list[Path] = []

    def indices(paths: Sequence[Path]) -> np.ndarray:
        crops.extend(paths)
        return np.arange(len(crops) - len(paths), len(crops))  # (n,)

    curated: dict[str, list[CuratedTracklet]] = {"train": [], "test": []}  # by the identity's side of the split
    for identity in identities:
        side = "train" if identity.tracklets[0].split == "train" else "test"
        if identity.pid not in replaced:
            curated[side] += [CuratedTracklet(identity.track, t.camid, t.frames, indices(t.crops))
                              for t in identity.tracklets]
            continue
        for track, frames, paths in replaced[identity.pid]:
            curated[side] += curate_track(track, frames, indices(paths), gap, state.recipe)
    record = state.records[video]
    if record["split"] == "time":  # a video split in time keeps each identity on its side
        plan = plan_time_split(video, curated["train"], curated["test"], dict(record["counts"]), state.recipe)
    else:
        plan = plan_video(video, record["split"], curated["train"] + curated["test"], dict(record["counts"]),
                          state.recipe)
    single_camera = int(record["counts"].get("test_identities_single_camera", 0))  # dropped by the build
    counts = {**plan.counts,
              "test_identities_single_camera": single_camera + plan.counts["test_identities_single_camera"]}
    return VideoReview(video, plan.tracklets, tuple(crops), counts)


# ----------------------------------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class ReviewResult:
    """What an applied review changed; ``identities_removed`` counts identities the recipe removed after the
    edits (a piece too short, or left on one camera in a test video)."""

    path: Path
    fingerprint: str
    previous_fingerprint: str | None
    edits: int
    merged: int
    split_frames: int
    dropped: int
    videos: tuple[str, ...]
    identities_removed: int
    counts: dict[str, int]


def _place_crop(source: Path, target: Path) -> None:
    """Hard-link a crop into the staged folder (the old folder is removed later); copy where links fail."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _stage_video(review: VideoReview, old_record: dict, stage: Path, entry: dict[str, object],
                 advance: Callable[[int], None]) -> dict:
    """Lay out the video's new crops in ``stage`` and write its record there, last; returns the record."""
    rows: list[dict[str, object]] = []
    written: list[tuple[str, str]] = []
    for t in review.tracklets:
        folder = f"{t.track}/{t.tracklet_id}"
        rows.append({"tracklet_id": t.tracklet_id, "pid": t.pid, "camid": t.camid, "split": t.split,
                     "video": review.video, "first_frame": int(t.frames[0]), "last_frame": int(t.frames[-1]),
                     "n_frames": len(t.frames), "dir": f"crops/{review.video}/{folder}"})
        for index in t.boxes.tolist():
            source = review.crops[index]
            relative = f"{folder}/{source.name}"
            _place_crop(source, stage / relative)
            written.append((relative, hashlib.sha256(source.read_bytes()).hexdigest()))
        advance(len(t.frames))
    record = {**old_record, "rows": rows, "crops": len(written), "crops_sha256": crops_digest(written),
              "counts": review.counts, "review": entry}
    atomic_write_json(stage / RECORD_NAME, record)
    return record


def _stage_videos(change: Transaction, state: DatasetState, reviews: dict[str, VideoReview],
                  entry: dict[str, object], progress: bool) -> dict[str, dict]:
    """Stage every affected video's new folder in ``change``; returns their records."""
    records: dict[str, dict] = {}
    with _progress(progress) as bar:
        task = bar.add_task("crops", total=sum(len(t.frames) for r in reviews.values() for t in r.tracklets))
        for video, review in reviews.items():
            stage = change.folder(state.root / "crops" / video)
            records[video] = _stage_video(review, state.records[video], stage, entry, lambda n: bar.advance(task, n))
    return records


def _stale_tracklet_ids(state: DatasetState, reviews: dict[str, VideoReview]) -> set[str]:
    """Old tracklet ids of the affected videos that do not survive as the same identity with the same frames."""
    old = {t.tracklet_id: (t.pid, t.frames.tolist()) for video in reviews
           for identity in state.video_identities(video) for t in identity.tracklets}
    new = {t.tracklet_id: (t.pid, t.frames.tolist()) for review in reviews.values() for t in review.tracklets}
    return {tracklet_id for tracklet_id, value in old.items() if new.get(tracklet_id) != value}


def _kept_captions(root: Path, stale: set[str]) -> str | None:
    """``captions.jsonl`` without the rows of tracklets whose frames changed (None without the file)."""
    path = root / CAPTIONS_FILE
    if not path.is_file():
        return None
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            tracklet_id = str(json.loads(line)["tracklet_id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            tracklet_id = None  # not ours to judge: the captions' own reader reports or repairs it
        if tracklet_id not in stale:
            kept.append(line)
    return "".join(kept)


def _check_not_applied(state: DatasetState, sheet: Path) -> None:
    """Applying a sheet twice would hit its own merged and dropped pids; say what happened instead."""
    if not sheet.is_file():
        return
    applied = state.manifest.get("review") or {}
    if applied.get("edits") and applied.get("sheet_sha256") == hashlib.sha256(sheet.read_bytes()).hexdigest():
        raise ConfigError(f"{sheet} was already applied to {state.root}; export a fresh sheet with `vreid review "
                          "export` to review the dataset again")


def apply_review(dataset_dir: str | os.PathLike[str], sheet: str | os.PathLike[str],
                 progress: bool = False) -> ReviewResult:
    """Check and apply a review sheet's edits, re-split the affected videos and mark identities verified.

    Every edit is checked before anything is written; a sheet without edits only marks the identities verified.
    """
    state = read_dataset(dataset_dir)
    _check_not_applied(state, Path(sheet))
    edits = read_sheet(sheet, state)
    videos = tuple(video for video in state.records
                   if any(state.identities[pid].video == video for pid in edits.touched()))
    reviews = {video: plan_review(state, edits, video) for video in videos}
    before = sum(len(state.video_identities(video)) for video in videos)
    after = len({t.pid for review in reviews.values() for t in review.tracklets})
    removed = before - (edits.merged - len(edits.links)) - edits.dropped + edits.split_frames - after
    previous = state.manifest.get("fingerprint")
    entry: dict[str, object] = {"sheet_sha256": edits.sheet_sha256, "edits": edits.count, "merged": edits.merged,
                                "split_frames": edits.split_frames, "dropped": edits.dropped, "videos": list(videos),
                                "identities_removed": removed, "previous_fingerprint": previous}
    digest, counts = previous, state.manifest.get("counts", {})
    links = {**state.manifest.get("identity_links", {}), **edits.links}
    with Transaction(state.root) as change:  # the old dataset or the new one, never a mix, even across a crash
        records = state.records
        if reviews:
            records = {**state.records, **_stage_videos(change, state, reviews, entry, progress)}
            table = tracklet_table(list(records.values()))
            atomic_write_text(change.file(state.root / "tracklets.csv"), table)
            captions = _kept_captions(state.root, _stale_tracklet_ids(state, reviews))
            if captions is not None:
                atomic_write_text(change.file(state.root / CAPTIONS_FILE), captions)
        if reviews or edits.links:
            table = tracklet_table(list(records.values()))
            digest = fingerprint(state.recipe, table, list(records.values()), links)
            counts = dataset_counts(list(records.values()), int(counts.get("sequences_skipped", 0)), links)
        manifest = {**state.manifest, "counts": counts, "fingerprint": digest, "identities_verified": True,
                    "review": entry}
        if links:
            manifest["identity_links"] = links
        atomic_write_json(change.file(state.root / "manifest.json"), manifest)
        change.commit()
    return ReviewResult(path=state.root, fingerprint=str(digest), previous_fingerprint=previous, edits=edits.count,
                        merged=edits.merged, split_frames=edits.split_frames, dropped=edits.dropped, videos=videos,
                        identities_removed=removed, counts=dict(counts))
