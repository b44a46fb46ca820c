"""Where everybody is in every frame: the camera, the play (sports) or choreography (dance), and the pan.

Everything here is planned before a single pixel is drawn, from one ``numpy.random.Generator``, so a frame
can be rendered from the plan alone and a video is a pure function of its seed.

Ground coordinates are metres: X runs left to right across the screen, Z away from the camera. The camera is
a pinhole looking along Z; its view is a window panned horizontally over a wider panorama, which is what a
broadcast camera following the play produces (the whole scene shifts together).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from builders.synth.figures import DANCE_MOVES, Pose, blend_poses, dance_pose, gait_pose

Kind = Literal["sports", "dance"]
STATURE = 1.8  # metres: the reference person that build scales apply to
MAX_PAN_SPEED = 0.6  # view widths per second
CAMERA_LAG = 0.45  # seconds: the camera trails the play like an operator does
BODY_HALF_WIDTH = 0.45  # metres to keep between a body's centre and the view edge when it should be in view
MOVE_BEATS = 4  # a dance move lasts this many beats
NOISE_PAD = 48  # the sensor-noise field is this much larger than a frame, so each frame takes a shifted window


@dataclass(frozen=True)
class Shot:
    """How people appear: depths where they stand, their stature and foot row there (fractions of the height)."""

    near_z: float
    far_z: float
    near_stature: float
    far_stature: float
    near_foot: float
    far_foot: float
    pan_span: float  # panorama width in view widths


SPORTS_SHOT = Shot(near_z=0.5, far_z=14.5, near_stature=0.36, far_stature=0.185, near_foot=0.965, far_foot=0.43,
                   pan_span=1.7)
DANCE_SHOT = Shot(near_z=1.0, far_z=6.0, near_stature=0.5, far_stature=0.34, near_foot=0.95, far_foot=0.68,
                  pan_span=1.35)


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera over a flat floor, in panorama pixels; depths may be numpy arrays."""

    focal: float  # pixels
    z0: float  # metres from the camera to depth Z = 0
    camera_height: float  # metres
    horizon: float  # panorama row of the horizon (above the image when negative)
    centre_x: float  # panorama column of X = 0

    @classmethod
    def fit(cls, shot: Shot, height: int, centre_x: float) -> CameraModel:
        """The camera that shows a reference person with the shot's statures at the shot's foot rows."""
        ratio = shot.near_stature / shot.far_stature
        z0 = (shot.far_z - ratio * shot.near_z) / (ratio - 1.0)
        near, far = shot.near_z + z0, shot.far_z + z0
        focal = shot.near_stature * height * near / STATURE
        camera_height = (shot.near_foot - shot.far_foot) * height / (focal * (1.0 / near - 1.0 / far))
        horizon = shot.near_foot * height - focal * camera_height / near
        return cls(focal, z0, camera_height, horizon, centre_x)

    def scale(self, z):
        """Pixels per metre at depth ``z``."""
        return self.focal / (z + self.z0)

    def to_panorama(self, x, z):
        """Panorama (column, row) of the ground point (x, z)."""
        return self.centre_x + self.scale(z) * x, self.horizon + self.scale(z) * self.camera_height

    def stature(self, z):
        """Pixel height of the reference person at depth ``z``."""
        return self.scale(z) * STATURE

    def depth_tilt(self, z):
        """Screen pixels a horizontal pixel of ground depth rises: the floor is seen at a slant."""
        return self.camera_height / (z + self.z0)

    def x_at(self, column, z):
        """Ground X shown at a panorama column, at depth ``z``."""
        return (column - self.centre_x) / self.scale(z)

    def z_at_row(self, row):
        """Depth of the floor seen at a panorama row (rows below the horizon only)."""
        return self.focal * self.camera_height / (row - self.horizon) - self.z0

    def row_above_ground(self, z, metres: float):
        """Panorama row of a point ``metres`` above the floor at depth ``z`` (boards, walls)."""
        return self.horizon + self.scale(z) * (self.camera_height - metres)


@dataclass(frozen=True)
class Panorama:
    """The panorama's size and the range the view's left edge may pan over."""

    width: int
    height: int
    view_width: int
    margin: int  # columns kept beyond the pan range on both sides, for the camera's motion blur

    @property
    def pan_min(self) -> float:
        return float(self.margin)

    @property
    def pan_max(self) -> float:
        return float(self.width - self.margin - self.view_width)


def panorama_for(shot: Shot, width: int, height: int, fps: int) -> Panorama:
    margin = int(math.ceil(MAX_PAN_SPEED * width / fps / 2)) + 2
    return Panorama(int(round(width * shot.pan_span)) + 2 * margin, height, width, margin)


@dataclass(frozen=True)
class DanceTimeline:
    """The choreography: one sequence of moves danced by all, each dancer a little early or late."""

    tempo: float  # beats per second
    moves: tuple[str, ...]  # move k is danced from beat k * MOVE_BEATS
    beat_offset: np.ndarray  # (N,) beats each dancer is ahead (+) or behind
    energy: np.ndarray  # (N,) amplitude of each dancer's moves
    facing: np.ndarray  # (N,) heading of each dancer when dancing in place


@dataclass(frozen=True)
class ScenePlan:
    kind: Kind
    fps: int
    camera: CameraModel
    panorama: Panorama
    pan: np.ndarray  # (F,) panorama column of the view's left edge
    ground: np.ndarray  # (F, N, 2) X, Z of every person, metres
    heading: np.ndarray  # (F, N) radians
    speed: np.ndarray  # (F, N) m/s
    phase: np.ndarray  # (F, N) gait phase, radians
    noise_offset: np.ndarray  # (F, 2) row, column of each frame's window into the noise field
    dance: DanceTimeline | None

    @property
    def frames(self) -> int:
        return int(self.pan.shape[0])

    def pose(self, frame: int, person: int) -> Pose:
        heading = float(self.heading[frame, person])
        speed = float(self.speed[frame, person])
        walk = gait_pose(float(self.phase[frame, person]), speed, heading)
        if self.dance is None:
            return walk
        return blend_poses(self._dance_pose(frame, person, heading), walk, min(1.0, max(0.0, (speed - 0.25) / 0.6)))

    def _dance_pose(self, frame: int, person: int, heading: float) -> Pose:
        timeline = self.dance
        assert timeline is not None
        beat = max(0.0, frame / self.fps * timeline.tempo + float(timeline.beat_offset[person]))
        index = min(int(beat // MOVE_BEATS), len(timeline.moves) - 1)
        in_move = beat - index * MOVE_BEATS
        energy = float(timeline.energy[person])
        pose = dance_pose(timeline.moves[index], in_move, heading, energy)
        if index > 0 and in_move < 0.5:  # ease out of the previous move over half a beat
            previous = dance_pose(timeline.moves[index - 1], in_move + MOVE_BEATS, heading, energy)
            pose = blend_poses(previous, pose, in_move / 0.5)
        return pose


def _eased_keyframes(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cosine-eased interpolation through keyframes: smooth starts and stops, like a play moving up court."""
    index = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    u = np.clip((t - times[index]) / (times[index + 1] - times[index]), 0.0, 1.0)
    ease = (1.0 - np.cos(np.pi * u)) / 2.0
    return values[index] + (values[index + 1] - values[index]) * ease


def _keyframe_times(duration: float, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    times = [0.0]
    while times[-1] <= duration:
        times.append(times[-1] + float(rng.uniform(low, high)))
    return np.asarray(times)


def _follow_camera(target: np.ndarray, panorama: Panorama, fps: int) -> np.ndarray:
    """Pan that trails ``target`` (F,) with a lag and a speed limit, kept inside the panorama."""
    pan = np.empty_like(target)
    pan[0] = np.clip(target[0], panorama.pan_min, panorama.pan_max)
    step_limit = MAX_PAN_SPEED * panorama.view_width / fps
    alpha = 1.0 - math.exp(-1.0 / (fps * CAMERA_LAG))
    for i in range(1, len(target)):
        step = np.clip((target[i] - pan[i - 1]) * alpha, -step_limit, step_limit)
        pan[i] = np.clip(pan[i - 1] + step, panorama.pan_min, panorama.pan_max)
    return pan


def _view_band(camera: CameraModel, panorama: Panorama, pan: float, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground X range at depths ``z`` where a whole body is inside the view panned to ``pan``."""
    left = camera.x_at(pan, z) + BODY_HALF_WIDTH
    right = camera.x_at(pan + panorama.view_width, z) - BODY_HALF_WIDTH
    return left, right


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class Motion:
    """Parameters of the target-following motion model."""

    gain: float  # 1/s: desired speed per metre of distance to the target
    acceleration: float  # m/s^2
    separation: float  # metres under which two people push apart
    turn_rate: float  # rad/s


def _simulate(targets: np.ndarray, start: np.ndarray, max_speed: np.ndarray, motion: Motion, fps: int,
              shot: Shot) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities (F, N, 2) of people chasing their targets (F, N, 2) without piling up."""
    frames, people = targets.shape[:2]
    dt = 1.0 / fps
    position = np.empty_like(targets)
    velocity = np.zeros_like(targets)
    position[0] = start
    current = np.zeros((people, 2))
    for i in range(1, frames):
        p = position[i - 1]
        desired = (targets[i] - p) * motion.gain
        norm = np.linalg.norm(desired, axis=1, keepdims=True)
        desired *= np.minimum(1.0, max_speed[:, None] / np.maximum(norm, 1e-9))
        offset = p[:, None, :] - p[None, :, :]  # (N, N, 2)
        distance = np.maximum(np.linalg.norm(offset, axis=2), 1e-6) + np.eye(people) * 1e9
        push = np.clip((motion.separation - distance) / motion.separation, 0.0, None) * 2.0
        desired += np.sum(offset / distance[..., None] * push[..., None], axis=1)
        change = desired - current
        change_norm = np.linalg.norm(change, axis=1, keepdims=True)
        current = current + change * np.minimum(1.0, motion.acceleration * dt / np.maximum(change_norm, 1e-9))
        step = p + current * dt
        step[:, 1] = np.clip(step[:, 1], shot.near_z - 0.3, shot.far_z + 0.3)
        position[i] = step
        velocity[i] = (step - p) * fps
    velocity[0] = velocity[1] if frames > 1 else 0.0
    return position, velocity


def _headings(velocity: np.ndarray, rest_heading: np.ndarray, turn_rate: float, fps: int) -> np.ndarray:
    """Face where you go when moving, ``rest_heading`` (F, N) when still; turn no faster than ``turn_rate``."""
    speed = np.linalg.norm(velocity, axis=2)
    moving = np.arctan2(velocity[..., 1], velocity[..., 0])
    weight = np.clip((speed - 0.4) / 0.8, 0.0, 1.0)
    wanted = rest_heading + _wrap(moving - rest_heading) * weight
    heading = np.empty_like(wanted)
    heading[0] = wanted[0]
    limit = turn_rate / fps
    for i in range(1, len(wanted)):
        heading[i] = heading[i - 1] + np.clip(_wrap(wanted[i] - heading[i - 1]), -limit, limit)
    return heading


def _gait_phase(speed: np.ndarray, start: np.ndarray, fps: int) -> np.ndarray:
    """Stride phase (F, N): cadence rises from about 1 stride/s walking to 1.6 sprinting."""
    cadence = 0.85 + 0.13 * np.minimum(speed, 6.0)
    return start[None, :] + np.cumsum(2 * np.pi * cadence / fps, axis=0)


def _excursions(frames: int, people: int, fps: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(person, first frame, last frame) of trips out of the view and back; none in clips under 4 s.

    At most a third of the people leave, each once, for at most a quarter of the clip (part of it spent
    walking out and back in view), so everybody stays in view for most of it and both halves of a clip keep
    tracklets of everybody.
    """
    duration = frames / fps
    if duration < 4.0:
        return []
    trips = []
    for person in rng.permutation(people)[: max(1, people // 3)]:
        if rng.random() < 0.6:
            length = min(rng.uniform(2.0, 3.0), duration / 4.0)
            start = rng.uniform(0.15, 0.85 - length / duration) * duration
            trips.append((int(person), int(start * fps), int((start + length) * fps)))
    return trips


def _leave_view(targets: np.ndarray, trips: list[tuple[int, int, int]], camera: CameraModel,
                panorama: Panorama, pan: np.ndarray) -> None:
    """Point the targets of people on a trip just past the nearer side of the view."""
    for person, first, last in trips:
        for i in range(first, min(last, len(pan))):
            z = targets[i, person, 1:2]
            left, right = _view_band(camera, panorama, pan[i], z)
            centre = (left + right) / 2
            outside = left - 3.0 if targets[i, person, 0] < centre[0] else right + 3.0
            targets[i, person, 0] = float(np.asarray(outside).ravel()[0])


def _piecewise(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    return values[np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(values) - 1)]


def plan_sports(people: int, frames: int, fps: int, width: int, height: int, occlusion: float,
                rng: np.random.Generator) -> ScenePlan:
    """A game: the play moves up and down the court, players keep loose positions around it and swap places.

    ``occlusion`` packs the players closer around the play (less spread, weaker personal space) and makes
    position swaps, hence crossings, more frequent.
    """
    shot = SPORTS_SHOT
    panorama = panorama_for(shot, width, height, fps)
    camera = CameraModel.fit(shot, height, panorama.width / 2)
    t = np.arange(frames) / fps
    duration = frames / fps
    z_mid = (shot.near_z + shot.far_z) / 2

    # The play: keyframes that the camera can centre on.
    reach = camera.x_at(np.array([panorama.pan_min + width / 2, panorama.pan_max + width / 2]), z_mid)
    play_times = _keyframe_times(duration, 2.0, 4.5, rng)
    play_x = _eased_keyframes(play_times, rng.uniform(reach[0] * 0.85, reach[1] * 0.85, len(play_times)), t)
    pan = _follow_camera(camera.to_panorama(play_x, z_mid)[0] - width / 2, panorama, fps)

    # Loose positions around the play, swapped now and then.
    spread = 4.2 - 3.0 * occlusion
    depth_half = (shot.far_z - shot.near_z) / 2 * (1.0 - 0.45 * occlusion)
    home = np.stack([np.clip(rng.normal(0.0, spread, people), -2.2 * spread, 2.2 * spread),
                     rng.uniform(z_mid - depth_half, z_mid + depth_half, people)], axis=1)
    swap_times = _keyframe_times(duration, 1.5, 3.5, rng)
    homes = [home]
    for _ in swap_times[1:]:
        home = home.copy()
        if rng.random() < 0.3 + 0.7 * occlusion:
            for _ in range(1 + int(round(occlusion * people / 4))):
                a, b = rng.choice(people, size=2, replace=False)
                home[[a, b]] = home[[b, a]]
        homes.append(home)
    home_track = _piecewise(swap_times, np.stack(homes), t)  # (F, N, 2)

    # Small individual repositioning on top.
    jitter = np.zeros((frames, people, 2))
    for person in range(people):
        times = _keyframe_times(duration, 1.0, 3.0, rng)
        values = rng.normal(0.0, [1.4, 1.0], size=(len(times), 2)) * (1.0 - 0.6 * occlusion)
        jitter[:, person] = _piecewise(times, values, t)

    targets = home_track + jitter
    targets[..., 0] += play_x[:, None]
    targets[..., 1] = np.clip(targets[..., 1], shot.near_z, shot.far_z)
    for i in range(frames):
        left, right = _view_band(camera, panorama, pan[i], targets[i, :, 1])
        targets[i, :, 0] = np.clip(targets[i, :, 0], left, np.maximum(left, right))
    _leave_view(targets, _excursions(frames, people, fps, rng), camera, panorama, pan)

    motion = Motion(gain=1.3, acceleration=8.0, separation=1.0 - 0.6 * occlusion, turn_rate=7.0)
    max_speed = rng.uniform(4.5, 7.0, people)
    position, velocity = _simulate(targets, targets[0], max_speed, motion, fps, shot)
    towards_play = np.arctan2(z_mid + 2.0 - position[..., 1], play_x[:, None] - position[..., 0])
    heading = _headings(velocity, towards_play, motion.turn_rate, fps)
    speed = np.linalg.norm(velocity, axis=2)
    return ScenePlan("sports", fps, camera, panorama, pan, position, heading, speed,
                     _gait_phase(speed, rng.uniform(0, 2 * np.pi, people), fps),
                     rng.integers(0, NOISE_PAD, size=(frames, 2)), None)


def _formation(people: int, occlusion: float, fit_width: float, shot: Shot, rng: np.random.Generator
               ) -> np.ndarray:
    """Slot offsets (N, 2) from the formation centre: staggered rows, fewer, tighter rows with ``occlusion``."""
    per_row_max = 4 + int(round(3 * occlusion))
    rows = min(3, math.ceil(people / per_row_max))
    per_row = [people // rows + (1 if r < people % rows else 0) for r in range(rows)]
    spacing = min(1.6 - 0.8 * occlusion, fit_width / max(per_row))
    row_gap = (shot.far_z - shot.near_z - 1.0) / 2 * (1.0 - 0.5 * occlusion)
    slots = []
    for row, count in enumerate(per_row):
        stagger = 0.5 * spacing if row % 2 else 0.0
        for k in range(count):
            slots.append(((k - (count - 1) / 2) * spacing + stagger, (row - (rows - 1) / 2) * row_gap))
    return np.asarray(slots)[rng.permutation(people)]


def plan_dance(people: int, frames: int, fps: int, width: int, height: int, occlusion: float,
               rng: np.random.Generator) -> ScenePlan:
    """A routine: dancers hold formation slots, dance the same moves, and change formation every few seconds.

    A formation change is a shuffle of slots, so dancers cross each other on the way; ``occlusion`` packs
    the slots closer and shuffles more of the dancers each time.
    """
    shot = DANCE_SHOT
    panorama = panorama_for(shot, width, height, fps)
    camera = CameraModel.fit(shot, height, panorama.width / 2)
    t = np.arange(frames) / fps
    duration = frames / fps
    z_mid = (shot.near_z + shot.far_z) / 2 - 0.3

    view_at_front = width / camera.scale(shot.near_z + 0.8)
    slots = _formation(people, occlusion, 0.8 * view_at_front - 2 * BODY_HALF_WIDTH, shot, rng)
    change_times = _keyframe_times(duration, 2.5, 4.5, rng)
    assignments = [np.arange(people)]
    for _ in change_times[1:]:
        order = assignments[-1].copy()
        movers = rng.choice(people, size=max(2, int(round(people * (0.4 + 0.6 * occlusion)))), replace=False)
        order[movers] = order[rng.permutation(movers)]
        assignments.append(order)
    slot_track = slots[_piecewise(change_times, np.stack(assignments), t)]  # (F, N, 2)

    centre_times = _keyframe_times(duration, 3.0, 6.0, rng)
    centre_x = _eased_keyframes(centre_times, rng.uniform(-1.2, 1.2, len(centre_times)), t)
    pan = _follow_camera(camera.to_panorama(centre_x, z_mid)[0] - width / 2, panorama, fps)
    targets = slot_track.copy()
    targets[..., 0] += centre_x[:, None]
    targets[..., 1] += z_mid
    _leave_view(targets, _excursions(frames, people, fps, rng), camera, panorama, pan)

    motion = Motion(gain=3.0, acceleration=6.0, separation=0.3, turn_rate=5.0)
    position, velocity = _simulate(targets, targets[0], np.full(people, 2.6), motion, fps, shot)
    facing = -np.pi / 2 + rng.uniform(-0.3, 0.3, people)
    heading = _headings(velocity, np.broadcast_to(facing, (frames, people)), motion.turn_rate, fps)
    speed = np.linalg.norm(velocity, axis=2)

    tempo = float(rng.uniform(1.7, 2.2))
    move_count = int(duration * tempo // MOVE_BEATS) + 2
    moves = [DANCE_MOVES[int(rng.integers(len(DANCE_MOVES)))]]
    while len(moves) < move_count:
        candidate = DANCE_MOVES[int(rng.integers(len(DANCE_MOVES)))]
        if candidate != moves[-1]:
            moves.append(candidate)
    timeline = DanceTimeline(tempo, tuple(moves), rng.normal(0.0, 0.08, people), rng.uniform(0.8, 1.1, people),
                             facing)
    return ScenePlan("dance", fps, camera, panorama, pan, position, heading, speed,
                     _gait_phase(speed, rng.uniform(0, 2 * np.pi, people), fps),
                     rng.integers(0, NOISE_PAD, size=(frames, 2)), timeline)


def plan_scene(kind: Kind, people: int, frames: int, fps: int, width: int, height: int, occlusion: float,
               rng: np.random.Generator) -> ScenePlan:
    planner = plan_sports if kind == "sports" else plan_dance
    return planner(people, frames, fps, width, height, occlusion, rng)
