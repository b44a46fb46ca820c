"""A contact sheet of a dataset: one row of frames per tracklet, with its identity, camera, split and caption.

It is how a person checks a built dataset at a glance: are the crops centred, do the two pseudo-cameras of one
identity show the same person, does the caption say what the frames show. Rows are chosen so that identities
appear with tracklets from different cameras, one under the other, and each identity gets its own colour
stripe, so the cross-camera pairs a model must match are visible side by side.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from builders.captions.base import evenly_spaced
from vreid_bench.captions import current_captions
from vreid_bench.datasets import toolkit
from vreid_bench.errors import ConfigError
from vreid_bench.io import atomic_write_bytes

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class SheetLayout:
    """Sizes in pixels. Thumbnails keep the 2:1 person-crop shape of the protocol's 256x128 input."""

    thumb_height: int = 128
    thumb_width: int = 64
    gap: int = 4
    margin: int = 8
    stripe_width: int = 6
    label_width: int = 360
    font_size: int = 12
    background: tuple[int, int, int] = (255, 255, 255)
    cell_background: tuple[int, int, int] = (225, 225, 225)

    def size(self, rows: int, frames_per_row: int) -> tuple[int, int]:
        """(width, height) of a sheet with ``rows`` rows."""
        width = (2 * self.margin + self.stripe_width + self.gap + frames_per_row * (self.thumb_width + self.gap)
                 + self.label_width)
        height = 2 * self.margin + rows * self.thumb_height + (rows - 1) * self.gap
        return width, height

    def row_top(self, row: int) -> int:
        return self.margin + row * (self.thumb_height + self.gap)

    def frame_left(self, column: int) -> int:
        return self.margin + self.stripe_width + self.gap + column * (self.thumb_width + self.gap)


@dataclass(frozen=True)
class SheetRow:
    """One tracklet as the sheet shows it."""

    tracklet_id: str
    pid: str
    camid: int
    split: str
    frames: tuple[str, ...]
    caption: str | None


@dataclass(frozen=True)
class ContactSheet:
    path: Path
    rows: tuple[SheetRow, ...]
    size: tuple[int, int]


def dataset_rows(dataset_dir: Path, split: str | None) -> list[SheetRow]:
    """Every tracklet of the dataset (or of one split), with its identity's name rather than its number."""
    dataset = toolkit.load(dataset_dir)
    captions = current_captions(dataset)
    splits = {"train": dataset.train, "query": dataset.query, "gallery": dataset.gallery}
    return [
        SheetRow(tracklet_id=str(t.tracklet_id), pid=dataset.pid_names[t.pid], camid=t.camid, split=name,
                 frames=t.frames, caption=captions.get(str(t.tracklet_id)))
        for name, tracklets in splits.items() if split in (None, name)
        for t in tracklets
    ]


def cross_camera_pair(group: Sequence[SheetRow]) -> list[SheetRow]:
    """Two tracklets of one identity, from two different cameras where it has them."""
    first = group[0]
    other = next((r for r in group[1:] if r.camid != first.camid), group[1] if len(group) > 1 else None)
    return [first] if other is None else [first, other]


def choose_rows(rows: Sequence[SheetRow], n: int, seed: int) -> list[SheetRow]:
    """``n`` rows, identities seen by several cameras first, each as a cross-camera pair; seeded, so repeatable."""
    groups: dict[str, list[SheetRow]] = {}
    for row in sorted(rows, key=lambda r: (r.pid, r.camid, r.tracklet_id)):
        groups.setdefault(row.pid, []).append(row)
    rng = random.Random(seed)
    pids = sorted(groups)
    rng.shuffle(pids)
    pids.sort(key=lambda pid: len({r.camid for r in groups[pid]}) < 2)  # stable: keeps the shuffle within each
    chosen = [row for pid in pids for row in cross_camera_pair(groups[pid])]
    picked = {row.tracklet_id for row in chosen}
    rest = [row for row in rows if row.tracklet_id not in picked]
    rng.shuffle(rest)
    return (chosen + rest)[:n]


def identity_colour(pid: str) -> tuple[int, int, int]:
    """A stable, fairly saturated colour per identity name."""
    digest = hashlib.sha256(pid.encode("utf-8")).digest()
    red, green, blue = (60 + byte % 160 for byte in digest[:3])
    return red, green, blue


def wrap_text(text: str, font: Font, width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    """Greedy word wrap by rendered width; a word wider than the column is cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if draw.textlength(candidate, font=font) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while draw.textlength(word, font=font) > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and draw.textlength(word[:cut], font=font) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def label_lines(row: SheetRow, font: Font, width: int, max_lines: int, draw: ImageDraw.ImageDraw) -> list[str]:
    header = [f"{row.pid}   cam {row.camid}   {row.split}", row.tracklet_id]
    missing = ("(no caption: run `vreid caption`)" if row.split == "train"
               else "(test tracklet: captions are for training)")
    caption = wrap_text(row.caption or missing, font, width, draw)
    lines = header + caption
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(".,;: ") + " …"
    return lines


def thumbnail(path: str, layout: SheetLayout) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.contain(image.convert("RGB"), (layout.thumb_width, layout.thumb_height))


def draw_row(sheet: Image.Image, draw: ImageDraw.ImageDraw, index: int, row: SheetRow, frames_per_row: int,
             layout: SheetLayout, font: Font) -> None:
    top = layout.row_top(index)
    draw.rectangle((layout.margin, top, layout.margin + layout.stripe_width - 1, top + layout.thumb_height - 1),
                   fill=identity_colour(row.pid))
    for column in range(frames_per_row):  # empty cells too, so short tracklets read as short
        left = layout.frame_left(column)
        draw.rectangle((left, top, left + layout.thumb_width - 1, top + layout.thumb_height - 1),
                       fill=layout.cell_background)
    for column, frame in enumerate(evenly_spaced(row.frames, frames_per_row)):
        left = layout.frame_left(column)
        thumb = thumbnail(frame, layout)
        sheet.paste(thumb, (left + (layout.thumb_width - thumb.width) // 2,
                            top + (layout.thumb_height - thumb.height) // 2))
    text_left = layout.frame_left(frames_per_row)
    line_height = layout.font_size + 4
    max_lines = max(1, layout.thumb_height // line_height)
    for number, line in enumerate(label_lines(row, font, layout.label_width - layout.gap, max_lines, draw)):
        colour = (0, 0, 0) if number == 0 else (60, 60, 60)
        draw.text((text_left, top + number * line_height), line, fill=colour, font=font)


def render_contact_sheet(dataset_dir: str | os.PathLike[str], out_png: str | os.PathLike[str], n: int = 8,
                         frames_per_row: int = 8, split: str | None = None, seed: int = 0,
                         layout: SheetLayout = SheetLayout()) -> ContactSheet:
    """Draw ``n`` tracklets (fewer if the dataset has fewer) and write the PNG atomically."""
    if n < 1 or frames_per_row < 1:
        raise ConfigError(f"contact sheet needs n >= 1 and frames_per_row >= 1, got n={n}, "
                          f"frames_per_row={frames_per_row}")
    if split is not None and split not in toolkit.SPLITS:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(toolkit.SPLITS)}")
    root = Path(dataset_dir)
    candidates = dataset_rows(root, split)
    if not candidates:
        raise ConfigError(f"{root} has no {split} tracklets; choose another --split")
    rows = choose_rows(candidates, n, seed)

    size = layout.size(len(rows), frames_per_row)
    sheet = Image.new("RGB", size, layout.background)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=layout.font_size)
    for index, row in enumerate(rows):
        draw_row(sheet, draw, index, row, frames_per_row, layout, font)

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(out_png, buffer.getvalue())
    return ContactSheet(path=Path(out_png), rows=tuple(rows), size=size)
