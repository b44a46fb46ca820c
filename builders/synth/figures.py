"""Articulated people: a pose (joint angles) and a look become a list of flat shapes in screen pixels.

The body is a 3D stick skeleton in units of stature (head top = 1.0 above the soles), posed by a few angles
per limb and projected with the heading of the body and the foreshortening of the ground at its depth. The
shapes are the single source of truth for both the drawing and the ground-truth box, so a box always spans
exactly what is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from types import MappingProxyType

from builders.synth.attributes import RGB, Identity

Point = tuple[float, float]
Vec3 = tuple[float, float, float]  # (forward, left, down) in the body frame, units of stature

TORSO = 0.315  # pelvis to neck
SHOULDER_DROP = 0.025  # shoulders sit this far below the neck
SHOULDER_HALF = 0.118
HIP_HALF = 0.082
THIGH, SHIN = 0.245, 0.228
UPPER_ARM, FOREARM = 0.172, 0.158
NECK = 0.06
HEAD_RX, HEAD_RY = 0.054, 0.064
THIGH_W, SHIN_W = 0.076, 0.055
UPPER_ARM_W, FOREARM_W = 0.05, 0.041
NECK_W, HAND_R, SHOE_W = 0.044, 0.023, 0.04
HEEL, TOE = (-0.028, 0.0, 0.018), (0.082, 0.0, 0.024)  # shoe ends relative to the ankle
SOCK_COVER = MappingProxyType({"ankle": 0.12, "crew": 0.34, "knee-high": 0.82})  # of the shin, from the ankle
NUMBER_MIN_FACING = 0.45  # |depth component of the heading| above which front or back of the torso faces the camera


@dataclass(frozen=True)
class Limb:
    """Angles of a two-segment limb, in radians."""

    swing: float = 0.0  # upper segment forward (+) or back (-) of hanging straight down
    bend: float = 0.0  # knee or elbow flexion: the shin folds back, the forearm forward
    spread: float = 0.0  # outward from the body in the frontal plane (pi raises an arm overhead)


@dataclass(frozen=True)
class Pose:
    heading: float  # ground direction the body faces: 0 = screen right, pi/2 = away from the camera
    lean: float = 0.0  # torso forward lean
    left_leg: Limb = Limb()
    right_leg: Limb = Limb()
    left_arm: Limb = Limb()
    right_arm: Limb = Limb()
    lift: float = 0.0  # soles above the ground (jumps, flight phase of a run), in statures
    sway: float = 0.0  # pelvis shift toward the body's left, in statures


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _lerp_angle(a: float, b: float, t: float) -> float:
    delta = (b - a + math.pi) % (2 * math.pi) - math.pi
    return a + delta * t


def blend_poses(a: Pose, b: Pose, t: float) -> Pose:
    """Pose ``t`` of the way from ``a`` to ``b`` (headings along the shorter arc)."""
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    limbs = {
        name: Limb(*(_lerp(getattr(getattr(a, name), f.name), getattr(getattr(b, name), f.name), t)
                     for f in fields(Limb)))
        for name in ("left_leg", "right_leg", "left_arm", "right_arm")
    }
    return Pose(heading=_lerp_angle(a.heading, b.heading, t), lean=_lerp(a.lean, b.lean, t),
                lift=_lerp(a.lift, b.lift, t), sway=_lerp(a.sway, b.sway, t), **limbs)


@dataclass(frozen=True)
class Segment:
    """A thick line with round caps."""

    start: Point
    end: Point
    width: float
    colour: RGB


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    colour: RGB
    outline: RGB | None = None


@dataclass(frozen=True)
class Ellipse:
    centre: Point
    rx: float
    ry: float
    colour: RGB


@dataclass(frozen=True)
class Label:
    """Text centred on a point (a jersey number); always inside the torso it is printed on."""

    centre: Point
    text: str
    size: float
    colour: RGB
    stroke: RGB


Shape = Segment | Polygon | Ellipse | Label


def shape_bounds(shapes: list[Shape]) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of everything drawn, labels excepted (they lie inside the torso)."""
    xs: list[float] = []
    ys: list[float] = []
    for shape in shapes:
        if isinstance(shape, Segment):
            r = shape.width / 2
            for x, y in (shape.start, shape.end):
                xs += [x - r, x + r]
                ys += [y - r, y + r]
        elif isinstance(shape, Polygon):
            xs += [p[0] for p in shape.points]
            ys += [p[1] for p in shape.points]
        elif isinstance(shape, Ellipse):
            xs += [shape.centre[0] - shape.rx, shape.centre[0] + shape.rx]
            ys += [shape.centre[1] - shape.ry, shape.centre[1] + shape.ry]
    return min(xs), min(ys), max(xs), max(ys)


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(min(255, int(c * factor)) for c in colour)  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _add(a: Vec3, b: Vec3, scale: float = 1.0) -> Vec3:
    return a[0] + b[0] * scale, a[1] + b[1] * scale, a[2] + b[2] * scale


def _direction(swing: float, spread: float, side: float) -> Vec3:
    """Unit vector of a segment hanging down, swung forward by ``swing`` and out to ``side`` by ``spread``."""
    return (math.sin(swing) * math.cos(spread), side * math.sin(spread), math.cos(swing) * math.cos(spread))


def _convex_hull(points: list[Point]) -> tuple[Point, ...]:
    """Monotone-chain hull; the torso is a box seen from any side, so its outline is a hull."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return tuple(pts)

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    upper: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return tuple(lower[:-1] + upper[:-1])


@dataclass(frozen=True)
class Projection:
    """Body frame -> screen pixels for one person in one frame.

    ``height`` is the stature in pixels, ``depth_tilt`` how many pixels up the screen one pixel of ground
    depth moves (the camera looks down at the floor), ``pelvis`` the screen point of the pelvis.
    """

    pelvis: Point
    height: float
    depth_tilt: float
    heading: float

    def __call__(self, p: Vec3) -> Point:
        fx, fz = math.cos(self.heading), math.sin(self.heading)
        sx, sz = -fz, fx  # the body's left, on the ground
        f, s, d = p
        return (self.pelvis[0] + self.height * (f * fx + s * sx),
                self.pelvis[1] + self.height * (d - self.depth_tilt * (f * fz + s * sz)))


@dataclass(frozen=True)
class Skeleton:
    """Joint positions in the body frame (pelvis at the origin)."""

    neck: Vec3
    head: Vec3
    chest: Vec3
    shoulders: dict[str, Vec3]
    elbows: dict[str, Vec3]
    wrists: dict[str, Vec3]
    hips: dict[str, Vec3]
    knees: dict[str, Vec3]
    ankles: dict[str, Vec3]
    up: Vec3  # torso axis


SIDES = (("left", 1.0), ("right", -1.0))  # the body's own sides, and their sign along its left axis


def skeleton(pose: Pose, width_scale: float) -> Skeleton:
    up = (math.sin(pose.lean), 0.0, -math.cos(pose.lean))
    pelvis = (0.0, pose.sway, 0.0)
    neck = _add(pelvis, up, TORSO)
    shoulders, elbows, wrists, hips, knees, ankles = {}, {}, {}, {}, {}, {}
    for name, side in SIDES:
        arm: Limb = getattr(pose, f"{name}_arm")
        leg: Limb = getattr(pose, f"{name}_leg")
        shoulders[name] = _add(_add(neck, up, -SHOULDER_DROP), (0.0, side * SHOULDER_HALF * width_scale, 0.0))
        elbows[name] = _add(shoulders[name], _direction(arm.swing, arm.spread, side), UPPER_ARM)
        wrists[name] = _add(elbows[name], _direction(arm.swing + arm.bend, arm.spread, side), FOREARM)
        hips[name] = _add(pelvis, (0.0, side * HIP_HALF * width_scale, 0.0))
        knees[name] = _add(hips[name], _direction(leg.swing, leg.spread, side), THIGH)
        ankles[name] = _add(knees[name], _direction(leg.swing - leg.bend, leg.spread, side), SHIN)
    head = _add(neck, up, NECK + HEAD_RY * 0.85)
    chest = _add(pelvis, up, TORSO * 0.68)
    return Skeleton(neck, head, chest, shoulders, elbows, wrists, hips, knees, ankles, up)


def place(pose: Pose, width_scale: float, ground: Point, height: float, depth_tilt: float
          ) -> tuple[Skeleton, Projection]:
    """Skeleton and the projection that stands its lower sole on ``ground`` (raised by ``pose.lift``)."""
    bones = skeleton(pose, width_scale)
    probe = Projection((0.0, 0.0), height, depth_tilt, pose.heading)
    sole = max(probe(_add(bones.ankles[name], end))[1] for name, _ in SIDES for end in (HEEL, TOE))
    sole += SHOE_W * width_scale * height / 2
    pelvis = (ground[0], ground[1] - sole - pose.lift * height)
    return bones, Projection(pelvis, height, depth_tilt, pose.heading)


def _point_on(a: Vec3, b: Vec3, t: float) -> Vec3:
    return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t


@dataclass(frozen=True)
class _Painter:
    """Collects the shapes of one person; widths are given in statures."""

    project: Projection
    width_scale: float

    def segment(self, shapes: list[Shape], a: Vec3, b: Vec3, width: float, colour: RGB,
                t0: float = 0.0, t1: float = 1.0) -> None:
        start, end = self.project(_point_on(a, b, t0)), self.project(_point_on(a, b, t1))
        shapes.append(Segment(start, end, width * self.width_scale * self.project.height, colour))

    def ellipse(self, shapes: list[Shape], centre: Vec3, rx: float, ry: float, colour: RGB) -> None:
        h = self.project.height
        shapes.append(Ellipse(self.project(centre), rx * h, ry * h, colour))

    def box(self, shapes: list[Shape], top: Vec3, bottom: Vec3, half_top: float, half_bottom: float,
            colour: RGB) -> None:
        """A torso-like block seen from the current angle: the hull of its eight corners."""
        corners = [
            self.project(_add(centre, (f, s * half * self.width_scale, 0.0)))
            for centre, half in ((top, half_top), (bottom, half_bottom))
            for f in (-0.055, 0.055) for s in (-1.0, 1.0)
        ]
        shapes.append(Polygon(_convex_hull(corners), colour, _shade(colour, 0.62)))


def _leg(paint: _Painter, shapes: list[Shape], bones: Skeleton, name: str, identity: Identity,
         shade: float) -> None:
    look, outfit = identity.look, identity.outfit
    hip, knee, ankle = bones.hips[name], bones.knees[name], bones.ankles[name]
    skin = _shade(look.skin.rgb, shade)
    bottom = _shade(outfit.bottom.rgb, shade)
    paint.segment(shapes, hip, knee, THIGH_W, skin)
    paint.segment(shapes, knee, ankle, SHIN_W, skin)
    paint.segment(shapes, ankle, knee, SHIN_W * 1.08, _shade(look.socks.rgb, shade), 0.0,
                  SOCK_COVER[look.sock_length])
    if outfit.legs == "capri":
        paint.segment(shapes, hip, knee, THIGH_W * 1.12, bottom)
        paint.segment(shapes, knee, ankle, SHIN_W * 1.12, bottom, 0.0, 0.5)
    else:
        paint.segment(shapes, hip, knee, THIGH_W * 1.28, bottom, 0.0, 0.52)
    for accessory in look.accessories:
        if accessory.kind == "knee sleeve" and accessory.side == name:
            colour = _shade(accessory.colour.rgb, shade)
            paint.segment(shapes, hip, knee, THIGH_W * 1.18, colour, 0.8, 1.0)
            paint.segment(shapes, knee, ankle, SHIN_W * 1.3, colour, 0.0, 0.28)
    heel, toe = _add(ankle, HEEL), _add(ankle, TOE)
    paint.segment(shapes, heel, toe, SHOE_W, _shade(look.shoes.rgb, shade))


def _arm(paint: _Painter, shapes: list[Shape], bones: Skeleton, name: str, identity: Identity,
         shade: float) -> None:
    look, outfit = identity.look, identity.outfit
    shoulder, elbow, wrist = bones.shoulders[name], bones.elbows[name], bones.wrists[name]
    skin = _shade(look.skin.rgb, shade)
    paint.segment(shapes, shoulder, elbow, UPPER_ARM_W, skin)
    paint.segment(shapes, elbow, wrist, FOREARM_W, skin)
    paint.ellipse(shapes, _point_on(elbow, wrist, 1.12), HAND_R * paint.width_scale,
                  HAND_R * paint.width_scale, skin)
    if outfit.sleeves == "short":
        paint.segment(shapes, shoulder, elbow, UPPER_ARM_W * 1.32, _shade(outfit.top.rgb, shade), 0.0, 0.45)
    for accessory in look.accessories:
        if accessory.side != name:
            continue
        colour = _shade(accessory.colour.rgb, shade)
        if accessory.kind == "wristband":
            paint.segment(shapes, elbow, wrist, FOREARM_W * 1.45, colour, 0.72, 0.93)
        elif accessory.kind == "arm sleeve":
            paint.segment(shapes, shoulder, elbow, UPPER_ARM_W * 1.08, colour, 0.46 if outfit.sleeves == "short"
                          else 0.1, 1.0)
            paint.segment(shapes, elbow, wrist, FOREARM_W * 1.08, colour, 0.0, 0.9)


def _hair_behind(paint: _Painter, shapes: list[Shape], bones: Skeleton, identity: Identity) -> None:
    """Hair that hangs behind the head: long hair, a ponytail, a bun."""
    look = identity.look
    colour = look.hair_colour.rgb
    head, up = bones.head, bones.up
    if look.hair_style == "long":
        top = _add(head, (-0.03, 0.0, 0.0))
        bottom = _add(_add(head, up, -0.16), (-0.045, 0.0, 0.0))
        paint.box(shapes, top, bottom, HEAD_RX * 0.95, HEAD_RX * 1.15, colour)
    elif look.hair_style == "ponytail":
        paint.ellipse(shapes, _add(_add(head, up, -0.035), (-HEAD_RX * 1.15, 0.0, 0.0)), 0.022, 0.05, colour)
    elif look.hair_style == "bun":
        paint.ellipse(shapes, _add(_add(head, up, 0.05), (-0.03, 0.0, 0.0)), 0.026, 0.024, colour)


def _head(paint: _Painter, shapes: list[Shape], bones: Skeleton, identity: Identity) -> None:
    look = identity.look
    h = paint.project.height
    skin = look.skin.rgb
    paint.segment(shapes, bones.neck, _add(bones.neck, bones.up, NECK + 0.02), NECK_W, skin)
    centre = paint.project(bones.head)
    rx, ry = HEAD_RX * h, HEAD_RY * h
    shapes.append(Ellipse(centre, rx, ry, skin))
    heading = paint.project.heading
    facing_side, facing_away = math.cos(heading), math.sin(heading)
    if look.hair_style != "shaved":
        shapes.append(_hair_cap(centre, rx, ry, look.hair_style, look.hair_colour.rgb, skin, facing_side,
                                facing_away))
    if facing_away < 0.35:  # some of the face shows: skin over the lower front of the cap
        show = min(1.0, (0.35 - facing_away) / 0.6)
        shapes.append(Ellipse((centre[0] + 0.22 * rx * facing_side, centre[1] + 0.24 * ry),
                              rx * 0.72 * show, ry * 0.7, skin))
    for accessory in look.accessories:
        if accessory.kind == "headband":
            y = centre[1] - 0.3 * ry
            half = rx * 0.97
            shapes.append(Segment((centre[0] - half, y), (centre[0] + half, y), 0.016 * h, accessory.colour.rgb))


def _hair_cap(centre: Point, rx: float, ry: float, style: str, colour: RGB, skin: RGB, facing_side: float,
              facing_away: float) -> Polygon:
    """The hair on the skull: an arc of the head outline, wider toward the back of the head."""
    volume = {"curly": 1.16, "buzzed": 1.0}.get(style, 1.07)
    if style == "buzzed":
        colour = _mix(colour, skin, 0.45)
    middle = -math.pi / 2 - 0.7 * facing_side
    half = math.radians(100 + 65 * max(facing_away, 0.0) + 25 * abs(facing_side))
    points = []
    steps = 18
    for i in range(steps + 1):
        theta = middle - half + 2 * half * i / steps
        r = volume + (0.07 * math.sin(9 * theta) if style == "curly" else 0.0)
        points.append((centre[0] + rx * r * math.cos(theta), centre[1] + ry * r * math.sin(theta)))
    return Polygon(tuple(points), colour)


def figure_shapes(identity: Identity, pose: Pose, ground: Point, height: float, depth_tilt: float
                  ) -> list[Shape]:
    """Everything drawn for one person, back to front.

    ``ground`` is the screen point under the person, ``height`` the stature in pixels (before the build's
    own scale), ``depth_tilt`` the ground foreshortening at the person's depth (see :class:`Projection`).
    """
    look, outfit = identity.look, identity.outfit
    width_scale = look.build.width_scale
    bones, project = place(pose, width_scale, ground, height * look.build.height_scale, depth_tilt)
    paint = _Painter(project, width_scale)
    left_is_far = math.cos(pose.heading) > 0  # the body's left points away from the camera
    far, near = ("left", "right") if left_is_far else ("right", "left")
    facing_away = math.sin(pose.heading)
    shapes: list[Shape] = []
    if facing_away <= 0:
        _hair_behind(paint, shapes, bones, identity)
    _arm(paint, shapes, bones, far, identity, 0.8)
    _leg(paint, shapes, bones, far, identity, 0.8)
    pelvis = (0.0, pose.sway, 0.0)
    paint.box(shapes, _add(pelvis, bones.up, 0.04), _add(pelvis, bones.up, -0.07), 0.098, 0.104,
              outfit.bottom.rgb)
    shoulder_top = _add(bones.neck, bones.up, -SHOULDER_DROP)
    paint.box(shapes, shoulder_top, _add(pelvis, bones.up, 0.02), SHOULDER_HALF + 0.012, 0.097, outfit.top.rgb)
    if identity.number is not None and abs(facing_away) > NUMBER_MIN_FACING:
        size = (0.082 if facing_away < 0 else 0.105) * project.height
        shapes.append(Label(project(bones.chest), str(identity.number), size, outfit.number_colour,
                            _shade(outfit.top.rgb, 0.6)))
    _leg(paint, shapes, bones, near, identity, 1.0)
    _arm(paint, shapes, bones, near, identity, 1.0)
    if facing_away > 0:
        _hair_behind(paint, shapes, bones, identity)
    _head(paint, shapes, bones, identity)
    return shapes


def gait_pose(phase: float, speed: float, heading: float) -> Pose:
    """Walking, jogging or sprinting at ``speed`` m/s, ``phase`` radians into the stride.

    Amplitudes grow with speed: a near-still player stands in a slightly crouched ready stance, a sprinter
    swings the thighs about 40 degrees, bends the elbows to a right angle and leans forward.
    """
    run = min(max(speed / 6.0, 0.0), 1.0)
    still = max(0.0, 1.0 - speed)  # 1 when standing: knees bent in a ready stance
    swing = 0.06 + 0.62 * run
    s, c = math.sin(phase), math.cos(phase)
    base_bend = 0.1 + 0.25 * still
    legs = []
    arms = []
    for sign in (1.0, -1.0):  # left, right: half a stride apart
        swing_flex = (0.35 + 1.25 * run) * max(0.0, sign * c) * min(1.0, speed)  # knee folds as the leg swings through
        legs.append(Limb(swing=sign * swing * s + base_bend / 2, bend=base_bend + swing_flex,
                         spread=0.03 + 0.05 * still))
        arms.append(Limb(swing=-0.85 * sign * swing * s + 0.15 * run, bend=0.25 + 1.2 * run, spread=0.1))
    lift = 0.025 * run * max(0.0, math.sin(2 * phase))
    return Pose(heading, lean=0.04 + 0.2 * run, left_leg=legs[0], right_leg=legs[1], left_arm=arms[0],
                right_arm=arms[1], lift=lift)


DANCE_MOVES = ("sway", "arms_up", "kick", "spin", "jump", "squat", "wave")


def dance_pose(move: str, beat: float, heading: float, energy: float = 1.0) -> Pose:
    """One of :data:`DANCE_MOVES`, ``beat`` in beats since the move began (a move repeats every two beats)."""
    t = 2 * math.pi * (beat / 2.0)
    s = math.sin(t)
    bounce = 0.25 + 0.25 * abs(math.sin(t))
    e = energy
    match move:
        case "sway":
            return Pose(heading, sway=0.035 * e * s, left_leg=Limb(0.0, 0.15, 0.1 + 0.06 * s),
                        right_leg=Limb(0.0, 0.15, 0.1 - 0.06 * s), left_arm=Limb(0.2, 0.6, 0.7 + 0.35 * e * s),
                        right_arm=Limb(0.2, 0.6, 0.7 - 0.35 * e * s))
        case "arms_up":
            arms = Limb(0.1, 0.25 + 0.2 * s, 2.55 + 0.25 * e * s)
            legs = Limb(0.2 * bounce, 0.5 * bounce * e, 0.12)
            return Pose(heading, left_leg=legs, right_leg=legs, left_arm=arms, right_arm=arms)
        case "kick":
            kick_left, kick_right = max(0.0, s), max(0.0, -s)
            return Pose(heading, lean=-0.05, left_leg=Limb(1.1 * e * kick_left, 0.3 * (1 - kick_left), 0.05),
                        right_leg=Limb(1.1 * e * kick_right, 0.3 * (1 - kick_right), 0.05),
                        left_arm=Limb(0.0, 0.2, 1.45), right_arm=Limb(0.0, 0.2, 1.45))
        case "spin":
            return Pose(heading + 2 * math.pi * (beat / 2.0), left_leg=Limb(0.0, 0.1, 0.04),
                        right_leg=Limb(0.0, 0.1, 0.04), left_arm=Limb(0.0, 0.3, 1.35), right_arm=Limb(0.0, 0.3, 1.35))
        case "jump":
            air = max(0.0, s)
            legs = Limb(0.3 * air, 0.2 + 0.9 * air, 0.1)
            arms = Limb(0.0, 0.2, 0.6 + 2.0 * air * e)
            return Pose(heading, lift=0.11 * e * air, left_leg=legs, right_leg=legs, left_arm=arms, right_arm=arms)
        case "squat":
            depth = 0.5 + 0.5 * s
            legs = Limb(0.5 + 0.6 * depth * e, 0.4 + 1.3 * depth * e, 0.22)
            arms = Limb(1.3 * depth + 0.2, 0.3, 0.15)
            return Pose(heading, lean=0.25 * depth, left_leg=legs, right_leg=legs, left_arm=arms, right_arm=arms)
        case "wave":
            return Pose(heading, sway=0.02 * s, left_leg=Limb(0.0, 0.15, 0.14), right_leg=Limb(0.0, 0.15, 0.1),
                        left_arm=Limb(0.0, 0.4 + 0.3 * math.sin(2 * t), 2.5), right_arm=Limb(-0.2, 1.9, 0.55))
    raise ValueError(f"unknown dance move {move!r}; expected one of {DANCE_MOVES}")
