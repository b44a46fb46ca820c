"""Frames from a plan: background window, shadows, people in depth order, motion blur and sensor noise.

People are drawn one by one into small RGBA patches at twice the resolution (anti-aliased edges once
reduced), smeared along their own screen motion, and pasted far to near, so nearer people occlude farther
ones. The background is smeared along the camera's pan. Blur length is the motion during the
exposure, ``blur`` being the exposure as a fraction of the frame interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from builders.synth.attributes import Identity
from builders.synth.figures import Ellipse, Label, Polygon, Segment, Shape, figure_shapes, shape_bounds
from builders.synth.scene import NOISE_PAD, ScenePlan

SUPERSAMPLE = 2
SHADOW_DARKNESS = 0.38
Box = tuple[int, int, int, int]  # left, top, width, height in whole pixels, inside the image


def directional_blur(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Average of ``image`` (H, W, C) shifted along the motion (dx, dy) pixels, centred; edges repeat.

    Shifts are whole pixels, one per pixel of motion, which is what a box filter along the path gives.
    """
    length = math.hypot(dx, dy)
    if length < 1.0:
        return image
    samples = int(math.ceil(length)) + 1
    pad_x, pad_y = int(math.ceil(abs(dx) / 2)) + 1, int(math.ceil(abs(dy) / 2)) + 1
    padded = np.pad(image, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    total = np.zeros(image.shape, dtype=np.float32)
    for k in range(samples):
        t = k / (samples - 1) - 0.5
        ox, oy = int(round(t * dx)), int(round(t * dy))
        total += padded[pad_y + oy:pad_y + oy + height, pad_x + ox:pad_x + ox + width]
    return total / samples


def clip_box(bounds: tuple[float, float, float, float], width: int, height: int) -> Box | None:
    """Whole-pixel box of float bounds, clipped to the image; None when nothing of it is inside."""
    left, top = max(0, math.floor(bounds[0])), max(0, math.floor(bounds[1]))
    right, bottom = min(width, math.ceil(bounds[2])), min(height, math.ceil(bounds[3]))
    if right - left < 1 or bottom - top < 1:
        return None
    return left, top, right - left, bottom - top


@dataclass
class _FontCache:
    """Jersey-number fonts by pixel size: loading a FreeType face per figure per frame would dominate."""

    fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = field(default_factory=dict)

    def get(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        if size not in self.fonts:
            self.fonts[size] = ImageFont.load_default(size=size)
        return self.fonts[size]


def _raster(shapes: list[Shape], origin: tuple[int, int], size: tuple[int, int], fonts: _FontCache
            ) -> Image.Image:
    """The shapes as a premultiplied ("RGBa") patch of ``size`` at ``origin``, anti-aliased by supersampling."""
    s = SUPERSAMPLE
    canvas = Image.new("RGBA", (size[0] * s, size[1] * s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)

    def at(p: tuple[float, float]) -> tuple[float, float]:
        return (p[0] - origin[0]) * s, (p[1] - origin[1]) * s

    for shape in shapes:
        if isinstance(shape, Segment):
            a, b = at(shape.start), at(shape.end)
            w = shape.width * s
            draw.line([a, b], fill=shape.colour, width=max(1, int(round(w))))
            r = w / 2
            if r >= 1.0:
                for cx, cy in (a, b):
                    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=shape.colour)
        elif isinstance(shape, Polygon):
            draw.polygon([at(p) for p in shape.points], fill=shape.colour, outline=shape.outline, width=s)
        elif isinstance(shape, Ellipse):
            cx, cy = at(shape.centre)
            rx, ry = shape.rx * s, shape.ry * s
            if rx >= 0.5 and ry >= 0.5:
                draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=shape.colour)
        elif isinstance(shape, Label):
            size_px = int(round(shape.size * s))
            if size_px >= 6:
                draw.text(at(shape.centre), shape.text, fill=shape.colour, font=fonts.get(size_px), anchor="mm",
                          stroke_width=max(1, size_px // 12), stroke_fill=shape.stroke)
    # Every drawn pixel is opaque and every other one is zero, so the canvas bytes are also its premultiplied
    # form, whose block average is the anti-aliased patch (colour times coverage, and coverage).
    return Image.frombytes("RGBa", canvas.size, canvas.tobytes()).reduce(s)


def _smear(patch: Image.Image, dx: float, dy: float) -> Image.Image:
    """A premultiplied patch blurred along its motion (dx, dy) pixels."""
    blurred = directional_blur(np.asarray(patch, dtype=np.float32), dx, dy)  # (h, w, 4)
    return Image.frombytes("RGBa", patch.size, np.clip(blurred + 0.5, 0, 255).astype(np.uint8).tobytes())


def _shadow(canvas: Image.Image, centre: tuple[float, float], rx: float, ry: float) -> None:
    """Darken a soft ellipse of floor under a person."""
    x0, y0 = int(centre[0] - rx), int(centre[1] - ry)
    xs = (np.arange(x0, int(centre[0] + rx) + 1) + 0.5 - centre[0]) / rx
    ys = (np.arange(y0, int(centre[1] + ry) + 1) + 0.5 - centre[1]) / ry
    falloff = np.clip(1.0 - (ys[:, None] ** 2 + xs[None, :] ** 2), 0.0, 1.0)  # (h, w)
    mask = Image.fromarray((255.0 * SHADOW_DARKNESS * falloff + 0.5).astype(np.uint8))
    canvas.paste((0, 0, 0), (x0, y0, x0 + mask.width, y0 + mask.height), mask)


@dataclass(frozen=True)
class Person:
    """One person in one frame, on screen."""

    track_id: int
    shapes: list[Shape]
    bounds: tuple[float, float, float, float]
    ground: tuple[float, float]  # screen point under the feet
    stature: float  # pixels
    motion: tuple[float, float]  # screen pixels per frame


@dataclass
class FrameRenderer:
    """Renders frame ``i`` of a plan; deterministic, and independent of which frames were rendered before."""

    plan: ScenePlan
    identities: list[Identity]
    background: np.ndarray  # (H, panorama width, 3) uint8
    noise: np.ndarray  # (H + NOISE_PAD, W + NOISE_PAD, 3) int16, see noise_field
    exposure: float  # fraction of the frame interval the shutter is open
    fonts: _FontCache = field(default_factory=_FontCache)

    @property
    def size(self) -> tuple[int, int]:
        return self.plan.panorama.view_width, self.plan.panorama.height

    def _screen_ground(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Screen points (N, 2) under everybody's feet, and their depths (N,)."""
        x, z = self.plan.ground[frame, :, 0], self.plan.ground[frame, :, 1]
        column, row = self.plan.camera.to_panorama(x, z)
        return np.stack([column - round(self.plan.pan[frame]), row], axis=1), z

    def people(self, frame: int) -> list[Person]:
        """Everybody whose figure reaches into the frame, farthest first."""
        width, height = self.size
        ground, depth = self._screen_ground(frame)
        neighbour = frame - 1 if frame > 0 else min(frame + 1, self.plan.frames - 1)
        other, _ = self._screen_ground(neighbour)
        motion = (ground - other) if frame > 0 else (other - ground)
        camera = self.plan.camera
        people = []
        for n, identity in enumerate(self.identities):
            stature = float(camera.stature(depth[n]))
            shapes = figure_shapes(identity, self.plan.pose(frame, n), (float(ground[n, 0]), float(ground[n, 1])),
                                   stature, float(camera.depth_tilt(depth[n])))
            bounds = shape_bounds(shapes)
            if clip_box(bounds, width, height) is None:
                continue
            people.append(Person(identity.track_id, shapes, bounds, (float(ground[n, 0]), float(ground[n, 1])),
                                 stature, (float(motion[n, 0]), float(motion[n, 1]))))
        people.sort(key=lambda p: (p.ground[1], p.track_id))
        return people

    def _background(self, frame: int) -> Image.Image:
        width, height = self.size
        pan = int(round(self.plan.pan[frame]))
        neighbour = frame - 1 if frame > 0 else min(frame + 1, self.plan.frames - 1)
        smear = abs(self.plan.pan[frame] - self.plan.pan[neighbour]) * self.exposure
        margin = self.plan.panorama.margin
        window = self.background[:, pan - margin:pan + width + margin]
        if smear < 1.0:
            return Image.fromarray(np.ascontiguousarray(window[:, margin:margin + width]))
        blurred = directional_blur(window, smear, 0.0)[:, margin:margin + width]
        return Image.fromarray((blurred + 0.5).astype(np.uint8))

    def render(self, frame: int) -> tuple[np.ndarray, dict[int, Box]]:
        """The frame (H, W, 3) uint8 and the box of every person in it, by track id."""
        width, height = self.size
        canvas = self._background(frame)
        people = self.people(frame)
        for person in people:
            _shadow(canvas, person.ground, person.stature * 0.17, max(2.0, person.stature * 0.045))
        boxes: dict[int, Box] = {}
        for person in people:
            dx, dy = person.motion[0] * self.exposure, person.motion[1] * self.exposure
            pad_x, pad_y = int(math.ceil(abs(dx) / 2)) + 2, int(math.ceil(abs(dy) / 2)) + 2
            left, top, right, bottom = person.bounds
            origin = (math.floor(left) - pad_x, math.floor(top) - pad_y)
            size = (math.ceil(right) + pad_x - origin[0], math.ceil(bottom) + pad_y - origin[1])
            patch = _raster(person.shapes, origin, size, self.fonts)
            if math.hypot(dx, dy) >= 1.0:
                patch = _smear(patch, dx, dy)
            straight = patch.convert("RGBA")
            canvas.paste(straight, origin, straight)  # far to near: nearer people cover farther ones
            box = clip_box(person.bounds, width, height)
            assert box is not None  # people() keeps only people inside the frame
            boxes[person.track_id] = box
        image = np.asarray(canvas, dtype=np.int16)
        row, column = (int(v) for v in self.plan.noise_offset[frame])
        image += self.noise[row:row + height, column:column + width]
        return np.clip(image, 0, 255, out=image).astype(np.uint8), boxes


def noise_field(width: int, height: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise (H + pad, W + pad, 3) int16, mostly luminance with a little chroma; each frame adds a window
    of it at its own offset."""
    shape = (height + NOISE_PAD, width + NOISE_PAD)
    noise = rng.standard_normal((*shape, 3), dtype=np.float32) * np.float32(sigma * 0.35)
    noise += rng.standard_normal((*shape, 1), dtype=np.float32) * np.float32(sigma)
    return np.round(noise).astype(np.int16)
