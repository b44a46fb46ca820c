"""The contact sheet: layout, which tracklets it shows, and ``vreid show``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from builders.captions import caption_dataset, caption_target, create_captioner
from builders.contact_sheet import render_contact_sheet
from toolkit_fixture import make_toolkit_dataset
from vreid_bench import cli_caption
from vreid_bench.errors import ConfigError, DatasetNotFoundError

# The default layout, spelled out: 8 px margins, a 6 px identity stripe, 64x128 thumbnails 4 px apart, a 360 px
# label column.
MARGIN, STRIPE, GAP, THUMB_W, THUMB_H, LABEL_W = 8, 6, 4, 64, 128, 360


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    dataset_dir = make_toolkit_dataset(tmp_path, crop_size=(128, 64))
    caption_dataset(caption_target(dataset_dir, include_test=True), create_captioner("template"), progress=False)
    return dataset_dir


def cell(sheet: np.ndarray, row: int, column: int) -> np.ndarray:
    top = MARGIN + row * (THUMB_H + GAP)
    left = MARGIN + STRIPE + GAP + column * (THUMB_W + GAP)
    return sheet[top:top + THUMB_H, left:left + THUMB_W].astype(float)


def test_sheet_has_one_row_per_tracklet_showing_its_frames(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    result = render_contact_sheet(dataset, out, n=6, frames_per_row=4)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (2 * MARGIN + STRIPE + GAP + 4 * (THUMB_W + GAP) + LABEL_W,
                              2 * MARGIN + 6 * THUMB_H + 5 * GAP)
        pixels = np.asarray(image.convert("RGB"))
    assert len(result.rows) == 6 and result.size == (pixels.shape[1], pixels.shape[0])

    for index, row in enumerate(result.rows):
        frames = sorted((dataset / "crops").rglob(f"{row.tracklet_id}/*.jpg"))
        for column, frame in ((0, frames[0]), (3, frames[-1])):
            with Image.open(frame) as crop:
                expected = np.asarray(crop.convert("RGB")).astype(float)
            assert np.abs(cell(pixels, index, column) - expected).mean() < 3.0
        label = pixels[MARGIN + index * (THUMB_H + GAP):MARGIN + index * (THUMB_H + GAP) + THUMB_H, -LABEL_W:]
        assert (label < 128).any(), "every row has a label"
        assert row.caption and row.split in ("train", "query", "gallery")


def test_rows_pair_each_identity_across_cameras(dataset: Path, tmp_path: Path) -> None:
    result = render_contact_sheet(dataset, tmp_path / "sheet.png", n=8)
    rows = result.rows
    assert len({r.tracklet_id for r in rows}) == 8
    for first, second in zip(rows[::2], rows[1::2]):
        assert first.pid == second.pid and first.camid != second.camid


def test_same_seed_same_sheet(dataset: Path, tmp_path: Path) -> None:
    a = render_contact_sheet(dataset, tmp_path / "a.png", n=4, seed=5)
    b = render_contact_sheet(dataset, tmp_path / "b.png", n=4, seed=5)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert a.rows == b.rows
    choices = {tuple(r.tracklet_id for r in render_contact_sheet(dataset, tmp_path / "c.png", n=4, seed=s).rows)
               for s in range(5)}
    assert len(choices) > 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["a.png", "b.png", "c.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_split_filter_and_fewer_tracklets_than_asked(dataset: Path, tmp_path: Path) -> None:
    result = render_contact_sheet(dataset, tmp_path / "q.png", n=8, split="query")
    assert [r.split for r in result.rows] == ["query"] * 3
    with Image.open(tmp_path / "q.png") as image:
        assert image.size[1] == 2 * MARGIN + 3 * THUMB_H + 2 * GAP
    with pytest.raises(ConfigError, match="unknown split 'test'"):
        render_contact_sheet(dataset, tmp_path / "x.png", split="test")


def test_uncaptioned_short_tracklets_still_render(tmp_path: Path) -> None:
    dataset_dir = make_toolkit_dataset(tmp_path, frames=2)
    result = render_contact_sheet(dataset_dir, tmp_path / "s.png", n=2, frames_per_row=5)
    assert all(r.caption is None for r in result.rows)
    with Image.open(tmp_path / "s.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    empty = cell(pixels, 0, 4)
    assert np.ptp(empty) == 0, "cells past the last frame are left blank"


def cli_app() -> typer.Typer:
    app = typer.Typer()
    cli_caption.register(app)
    return app


def test_cli_show(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(cli_app(), ["show", str(dataset), "--out", str(out), "--n", "3",
                                            "--split", "gallery"])
    assert result.exit_code == 0, result.output
    assert "3 tracklets" in result.output and out.is_file()

    missing = CliRunner().invoke(cli_app(), ["show", str(tmp_path / "nowhere"), "--out", str(out)])
    assert isinstance(missing.exception, DatasetNotFoundError)
