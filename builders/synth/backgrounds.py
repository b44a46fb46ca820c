"""The world behind the people, drawn once per video as a panorama the camera pans over.

Sports: a court (hardwood, indoor hall or grass) with its lines in perspective, advertising boards and a crowd.
Dance: a stage floor with spotlights in front of a curtained back wall. Textures are computed per row and
column from the camera model, so planks and mowing stripes converge like the real thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from builders.synth.scene import CameraModel, Kind, Panorama

CourtStyle = Literal["hardwood", "hall", "grass"]
COURT_STYLES: tuple[CourtStyle, ...] = ("hardwood", "hall", "grass")
BOARDS_Z = 16.5  # depth of the advertising boards behind the far sideline
BOARDS_HEIGHT = 0.9
WALL_Z = 7.5  # depth of the stage's back wall
SETTINGS = MappingProxyType({
    "hardwood": "a hardwood basketball court",
    "hall": "an indoor volleyball court",
    "grass": "a grass football pitch",
})
Polyline = list[tuple[float, float]]


@dataclass(frozen=True)
class Background:
    image: np.ndarray  # (H, panorama width, 3) uint8
    setting: str  # a phrase for captions: "a hardwood basketball court"


def _floor_grid(camera: CameraModel, panorama: Panorama, top: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground X and Z (H, W) of every floor pixel below row ``top`` (0 elsewhere), and the mask of those pixels."""
    rows = np.arange(panorama.height, dtype=np.float64)[:, None] + 0.5
    cols = np.arange(panorama.width, dtype=np.float64)[None, :] + 0.5
    on_floor = rows > max(top, camera.horizon + 1.0)  # (H, 1)
    z = np.where(on_floor, camera.z_at_row(np.maximum(rows, camera.horizon + 1.0)), 0.0)
    x = np.where(on_floor, camera.x_at(cols, z), 0.0)  # (H, W)
    return x, np.broadcast_to(z, x.shape), np.broadcast_to(on_floor, x.shape)


def _value_per_index(index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random value in [-1, 1] for each distinct integer in ``index`` (a plank, a board), as an array like it."""
    lowest = int(index.min())
    table = rng.uniform(-1.0, 1.0, int(index.max()) - lowest + 1)
    return table[(index - lowest).astype(np.int64)]


def _gaussian(offset: np.ndarray) -> np.ndarray:
    """exp(-offset^2), with the far tail cut to zero: denormal floats would make it many times slower."""
    return np.exp(-np.minimum(offset * offset, 40.0))


def _floor_texture(style: CourtStyle, x: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float floor colour before lines."""
    if style == "hardwood":
        base = np.array([198.0, 150.0, 98.0]) * rng.uniform(0.9, 1.05)
        plank = np.floor(z / 0.18)
        joint = np.floor((x + _value_per_index(plank, rng) * 1.2) / 2.4)  # plank ends, staggered row by row
        tone = 1.0 + 0.05 * _value_per_index(plank, rng) + 0.035 * _value_per_index(joint * 7 + plank, rng)
        shade = tone[..., None] * base
    elif style == "hall":
        outside = np.array([214.0, 120.0, 60.0]) if rng.random() < 0.5 else np.array([60.0, 130.0, 90.0])
        inside = np.array([40.0, 92.0, 168.0])
        in_court = (np.abs(x) <= 9.0) & (z >= 3.0) & (z <= 12.0)
        shade = np.where(in_court[..., None], inside, outside)
    else:
        base = np.array([58.0, 128.0, 52.0]) * rng.uniform(0.9, 1.1)
        stripe = np.floor((x + 100.0) / 3.5) % 2
        shade = (1.0 + 0.07 * (stripe * 2 - 1))[..., None] * base
    lights = rng.uniform(-18.0, 18.0, 4)
    sheen = sum(_gaussian((x - lx) / 2.5) for lx in lights) * (12.0 if style != "grass" else 3.0)
    return shade + sheen[..., None]


def _court_lines(style: CourtStyle) -> list[Polyline]:
    """Court markings as ground polylines (X, Z), metres."""
    def rect(x0: float, z0: float, x1: float, z1: float) -> Polyline:
        return [(x0, z0), (x1, z0), (x1, z1), (x0, z1), (x0, z0)]

    def arc(cx: float, cz: float, r: float, a0: float, a1: float, steps: int = 48) -> Polyline:
        angles = np.linspace(a0, a1, steps)
        return [(cx + r * np.cos(a), cz + r * np.sin(a)) for a in angles]

    if style == "hardwood":
        lines = [rect(-14.0, 0.0, 14.0, 15.0), [(0.0, 0.0), (0.0, 15.0)], arc(0.0, 7.5, 1.8, 0, 2 * np.pi)]
        for side in (-1.0, 1.0):
            lines.append(rect(side * 14.0, 5.05, side * 8.2, 9.95))
            lines.append(arc(side * 8.2, 7.5, 1.8, 0, 2 * np.pi))
            corner = np.arcsin(6.6 / 6.75)
            start, end = (np.pi - corner, np.pi + corner) if side > 0 else (-corner, corner)
            three = arc(side * 12.4, 7.5, 6.75, start, end)
            lines.append([(side * 14.0, three[0][1])] + three + [(side * 14.0, three[-1][1])])
        return lines
    if style == "hall":
        return [rect(-9.0, 3.0, 9.0, 12.0), [(0.0, 3.0), (0.0, 12.0)], [(-3.0, 3.0), (-3.0, 12.0)],
                [(3.0, 3.0), (3.0, 12.0)]]
    return [[(-60.0, 0.0), (60.0, 0.0)], [(-60.0, 15.5), (60.0, 15.5)], [(0.0, 0.0), (0.0, 15.5)],
            arc(0.0, 7.75, 6.0, 0, 2 * np.pi, 72)]


def _draw_lines(image: Image.Image, camera: CameraModel, lines: list[Polyline], colour: tuple[int, int, int],
                width_m: float) -> None:
    draw = ImageDraw.Draw(image)
    for line in lines:
        dense: Polyline = []
        for (xa, za), (xb, zb) in zip(line[:-1], line[1:]):
            pieces = max(1, int(np.hypot(xb - xa, zb - za) / 0.5))
            dense += [(xa + (xb - xa) * k / pieces, za + (zb - za) * k / pieces) for k in range(pieces)]
        dense.append(line[-1])
        for (xa, za), (xb, zb) in zip(dense[:-1], dense[1:]):
            pa, pb = camera.to_panorama(xa, za), camera.to_panorama(xb, zb)
            width = max(1, int(round(width_m * camera.scale((za + zb) / 2))))
            draw.line([pa, pb], fill=colour, width=width)


def _crowd(height: int, width: int, spectator: float, rng: np.random.Generator) -> np.ndarray:
    """(height, width, 3) stands full of seated spectators ``spectator`` pixels tall: a head over shoulders.

    Each spectator is one cell of a grid, drawn at once for all cells by tiling a head mask and a body mask
    over the grid.
    """
    cell_h = max(4, int(round(spectator)))
    cell_w = max(3, int(round(spectator * 0.62)))
    rows, cols = height // cell_h + 1, width // cell_w + 2
    clothes = rng.uniform(20, 170, size=(rows, cols, 3)) * rng.uniform(0.45, 1.0, size=(rows, cols, 1))
    skin = np.array([[226, 186, 150], [198, 150, 110], [128, 84, 55], [88, 57, 38]], dtype=np.float64)
    faces = skin[rng.integers(len(skin), size=(rows, cols))] * 0.8
    seat = np.array([38, 38, 46], dtype=np.uint8)
    y = (np.arange(cell_h) + 0.5) / cell_h
    x = (np.arange(cell_w) + 0.5) / cell_w
    head = ((x[None, :] - 0.5) / 0.2) ** 2 + ((y[:, None] - 0.3) / 0.17) ** 2 <= 1.0  # (cell_h, cell_w)
    body = (np.abs(x[None, :] - 0.5) <= 0.42) & (y[:, None] >= 0.5)

    def per_cell(colours: np.ndarray) -> np.ndarray:  # (rows, cols, 3) -> (rows * cell_h, cols * cell_w, 3)
        return np.repeat(np.repeat(colours.astype(np.uint8), cell_h, axis=0), cell_w, axis=1)

    crowd = np.where(np.tile(head, (rows, cols))[..., None], per_cell(faces),
                     np.where(np.tile(body, (rows, cols))[..., None], per_cell(clothes), seat))
    shift = rng.integers(cell_w, size=rows)  # spectators of successive rows do not line up
    crowd = np.concatenate([np.roll(crowd[r * cell_h:(r + 1) * cell_h], -int(shift[r]), axis=1)
                            for r in range(rows)])
    return crowd[:height, :width] * 0.8


def _boards(image: np.ndarray, camera: CameraModel, panorama: Panorama, rng: np.random.Generator) -> None:
    """Advertising boards along the far side, in blocks of bright colours."""
    bottom = int(round(camera.row_above_ground(BOARDS_Z, 0.0)))
    top = int(round(camera.row_above_ground(BOARDS_Z, BOARDS_HEIGHT)))
    column = 0
    while column < panorama.width:
        span = int(rng.uniform(3.0, 7.0) * camera.scale(BOARDS_Z))
        colour = rng.choice([[200, 30, 40], [20, 60, 170], [240, 240, 240], [250, 200, 20], [20, 20, 24],
                             [0, 140, 90]])
        image[max(top, 0):max(bottom, 0), column:column + span] = colour
        stripe_top = top + (bottom - top) // 3
        image[max(stripe_top, 0):max(stripe_top + max(1, (bottom - top) // 4), 0),
              column + span // 5:column + span - span // 5] = 255 - np.asarray(colour)
        column += span


def court_panorama(camera: CameraModel, panorama: Panorama, rng: np.random.Generator) -> Background:
    style: CourtStyle = COURT_STYLES[int(rng.integers(len(COURT_STYLES)))]
    boards_bottom = camera.row_above_ground(BOARDS_Z, 0.0)
    x, z, floor = _floor_grid(camera, panorama, boards_bottom)
    spectator = 0.55 * camera.stature(BOARDS_Z + 4.0)  # seated, a few rows behind the boards
    stands = _crowd(panorama.height, panorama.width, spectator, rng)
    image = np.where(floor[..., None], _floor_texture(style, x, z, rng), stands)
    image = np.clip(image, 0, 255).astype(np.uint8)
    _boards(image, camera, panorama, rng)
    pil = Image.fromarray(image)
    colour = (245, 245, 240) if style != "hall" else (250, 250, 250)
    _draw_lines(pil, camera, _court_lines(style), colour, 0.07)
    return Background(np.asarray(pil).copy(), SETTINGS[style])


WALL_COLOURS = MappingProxyType({
    "black": (22, 22, 26), "navy": (22, 28, 70), "purple": (60, 24, 80), "dark red": (80, 18, 24),
})


def stage_panorama(camera: CameraModel, panorama: Panorama, rng: np.random.Generator) -> Background:
    wall_name = list(WALL_COLOURS)[int(rng.integers(len(WALL_COLOURS)))]
    wall_row = camera.row_above_ground(WALL_Z, 0.0)
    x, z, floor = _floor_grid(camera, panorama, wall_row)
    cols = np.arange(panorama.width, dtype=np.float64)
    rows = np.arange(panorama.height, dtype=np.float64)
    fold = 0.78 + 0.22 * np.sin(cols / (0.35 * camera.scale(WALL_Z)) * 2 * np.pi) ** 2
    wall = np.asarray(WALL_COLOURS[wall_name], dtype=np.float64) * fold[None, :, None]
    wall = np.broadcast_to(wall, (panorama.height, panorama.width, 3)).copy()
    for _ in range(4):  # coloured light pools on the wall
        cx, cy = rng.uniform(0, panorama.width), rng.uniform(0, wall_row)
        radius = rng.uniform(0.1, 0.25) * panorama.height
        glow = np.outer(_gaussian((rows - cy) / radius), _gaussian((cols - cx) / radius))  # separable
        wall += glow[..., None] * rng.uniform(20, 90, 3)
    base = rng.uniform(38, 62)
    tone = base * (1.0 + 0.06 * _value_per_index(np.floor(x / 0.6), rng))
    stage = np.repeat(tone[..., None], 3, axis=2) * np.array([1.0, 0.97, 0.93])
    for _ in range(3):  # spotlights on the floor
        lx, lz = rng.uniform(-4.0, 4.0), rng.uniform(1.5, 5.5)
        spot = _gaussian(np.hypot((x - lx) / 1.3, (z - lz) / 1.0))
        stage += spot[..., None] * rng.uniform(40, 90) * np.array([1.0, 0.95, 0.85])
    image = np.where(floor[..., None], stage, wall)
    return Background(np.clip(image, 0, 255).astype(np.uint8),
                      f"a stage with a {wall_name} back wall")


def background_for(kind: Kind, camera: CameraModel, panorama: Panorama, rng: np.random.Generator) -> Background:
    return (court_panorama if kind == "sports" else stage_panorama)(camera, panorama, rng)
