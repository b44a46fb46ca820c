"""How good were the tracks a raw build was made from? TrackEval's scores, and the built identities' purity.

``vreid build ... --videos ... --eval-tracking`` scores the detector + tracker against the footage's ground truth
wherever it has one: a MOT sequence folder's ``gt/gt.txt``, or ``<video>.gt.txt`` beside a video file. Synthetic
footage from ``vreid synth`` always has one, which makes a build of it the way to choose a tracker, a detector or a
threshold by evidence.

- **Tracking**, over the frames the build read (``--stride``, ``--max-frames``), with the official metric code of
  TrackEval (PyPI ``trackeval``): HOTA (and its DetA, AssA), CLEAR's MOTA and ID switches, IDF1. A track box
  matches a ground-truth box at IoU >= 0.5, as in MOTChallenge. Ground-truth rows marked ignore (7th column 0)
  are left out.
- **Built identities** (what ReID trains and tests on, after the recipe's curation): each tracklet frame takes
  the ground-truth person its box overlaps most (IoU >= 0.5; none otherwise). *Purity* is the share of frames
  showing the built identity's majority person. *Completeness* is, for each person, the share of its built
  frames held by the one built identity holding most of them. Both are weighted by frames. *Fragments* is the
  mean number of built identities whose majority person a person is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from builders.mot import TrackTable, make_track_table
from builders.recipe import PlannedTracklet
from vreid_bench.errors import ConfigError

MATCH_IOU = 0.5
REPORTED = (("HOTA", "HOTA"), ("DetA", "HOTA"), ("AssA", "HOTA"), ("MOTA", "CLEAR"), ("IDSW", "CLEAR"),
            ("IDF1", "Identity"))


def ground_truth_path(footage: Path) -> Path | None:
    """The ground truth beside raw footage: ``<seq>/gt/gt.txt`` of a MOT sequence (given as its folder or its
    ``img1/``), or ``<stem>.gt.txt`` beside a video file; None without one."""
    if footage.is_file():
        candidate = footage.with_name(f"{footage.stem}.gt.txt")
        return candidate if candidate.is_file() else None
    sequence = footage.parent if footage.name == "img1" else footage
    candidate = sequence / "gt" / "gt.txt"
    return candidate if candidate.is_file() else None


def read_ground_truth(path: Path) -> TrackTable:
    """MOT ground truth (frame, id, left, top, width, height[, flag, ...]); rows flagged 0 (ignore) left out."""
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise ConfigError(f"{path}: not MOT ground truth ({exc}); expected frame,id,left,top,width,height,..."
                          ) from None
    if rows.size and rows.shape[1] >= 7:
        rows = rows[rows[:, 6] != 0]
    if not rows.size:
        return make_track_table(np.zeros(0), np.zeros(0), np.zeros((0, 4)))
    return make_track_table(rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2:6])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) x (m, 4) left, top, width, height -> (n, m) intersection over union."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    bottom = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _by_frame(table: TrackTable, frames: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each kept frame's (track ids, boxes), in the table's row order: one sort, not one scan per frame."""
    rows = np.flatnonzero(np.isin(table.frame, frames))
    rows = rows[np.argsort(table.frame[rows], kind="stable")]
    found, starts = np.unique(table.frame[rows], return_index=True)
    return {int(frame): (table.track[part], table.box[part])
            for frame, part in zip(found, np.split(rows, starts[1:]))}


def trackeval_data(tracks: TrackTable, truth: TrackTable, frames: np.ndarray) -> dict[str, Any]:
    """TrackEval's per-sequence input: ids numbered from 0, and per frame the IoU of every gt-track box pair."""
    frames = np.asarray(sorted(set(int(f) for f in frames)), dtype=np.int64)
    gt_by, tr_by = _by_frame(truth, frames), _by_frame(tracks, frames)
    gt_ids = {int(i): k for k, i in enumerate(np.unique(truth.track[np.isin(truth.frame, frames)]))}
    tr_ids = {int(i): k for k, i in enumerate(np.unique(tracks.track[np.isin(tracks.frame, frames)]))}
    empty = (np.zeros(0, dtype=np.int64), np.zeros((0, 4)))
    data: dict[str, Any] = {"num_timesteps": len(frames), "gt_ids": [], "tracker_ids": [], "similarity_scores": [],
                            "num_gt_ids": len(gt_ids), "num_tracker_ids": len(tr_ids)}
    for frame in frames.tolist():
        g_ids, g_boxes = gt_by.get(frame, empty)
        t_ids, t_boxes = tr_by.get(frame, empty)
        data["gt_ids"].append(np.array([gt_ids[int(i)] for i in g_ids], dtype=int))
        data["tracker_ids"].append(np.array([tr_ids[int(i)] for i in t_ids], dtype=int))
        data["similarity_scores"].append(box_iou(np.asarray(g_boxes), np.asarray(t_boxes)))
    data["num_gt_dets"] = int(sum(len(ids) for ids in data["gt_ids"]))
    data["num_tracker_dets"] = int(sum(len(ids) for ids in data["tracker_ids"]))
    return data


def _metrics() -> list[Any]:
    try:
        from trackeval.metrics import CLEAR, HOTA, Identity
    except ImportError:
        raise ConfigError("--eval-tracking needs TrackEval: pip install 'trackeval>=1.3,<2'") from None
    config = {"PRINT_CONFIG": False, "THRESHOLD": MATCH_IOU}
    return [HOTA(), CLEAR(config), Identity(config)]


def _summary(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    out = {}
    for name, metric in REPORTED:
        value = results[metric][name]
        out[name] = round(float(np.mean(value)), 4) if name != "IDSW" else int(value)
    return out


def evaluate_tracking(sequences: Mapping[str, tuple[TrackTable, TrackTable, np.ndarray]]) -> dict[str, Any]:
    """TrackEval scores per video and combined: ``sequences`` maps a video to (tracks, ground truth, frames)."""
    metrics = _metrics()
    per_video: dict[str, dict[str, Any]] = {}
    for video, (tracks, truth, frames) in sequences.items():
        data = trackeval_data(tracks, truth, frames)
        per_video[video] = {type(m).__name__: m.eval_sequence(data) for m in metrics}
    combined = {type(m).__name__: m.combine_sequences({v: r[type(m).__name__] for v, r in per_video.items()})
                for m in metrics}
    return {"combined": _summary(combined), "per_video": {v: _summary(r) for v, r in per_video.items()},
            "iou_threshold": MATCH_IOU, "code": "TrackEval (pip trackeval)"}


def _majority_person(tracklet: PlannedTracklet, truth: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> list[int]:
    """The ground-truth person each frame's box shows (-1 where none overlaps at IoU >= 0.5)."""
    people = []
    for frame, box in zip(tracklet.frames.tolist(), np.asarray(tracklet.boxes, dtype=float)):
        ids, boxes = truth.get(int(frame), (np.zeros(0, dtype=np.int64), np.zeros((0, 4))))
        overlap = box_iou(box[None, :], np.asarray(boxes))[0] if len(ids) else np.zeros(0)
        people.append(int(ids[int(overlap.argmax())]) if len(ids) and overlap.max() >= MATCH_IOU else -1)
    return people


def identity_counts(tracklets: Sequence[PlannedTracklet], truth: TrackTable) -> dict[str, Any]:
    """One video's built identities against its ground truth: the counts :func:`identity_quality` sums."""
    frames = np.unique(np.concatenate([t.frames for t in tracklets])) if tracklets else np.zeros(0, dtype=np.int64)
    by_frame = _by_frame(truth, frames)
    frames_of: dict[str, list[int]] = {}
    for tracklet in tracklets:
        frames_of.setdefault(tracklet.pid, []).extend(_majority_person(tracklet, by_frame))
    pure = total = 0
    held: dict[int, Counter[str]] = {}
    majority: list[int] = []
    for pid, people in frames_of.items():
        person, count = Counter(people).most_common(1)[0]
        pure += count if person != -1 else 0
        total += len(people)
        majority.append(person)
        for p in people:
            if p != -1:
                held.setdefault(p, Counter())[pid] += 1
    return {"pure": pure, "frames": total, "complete": sum(max(c.values()) for c in held.values()),
            "shown": sum(sum(c.values()) for c in held.values()),
            "fragments": list(Counter(p for p in majority if p != -1).values()), "identities": len(frames_of),
            "people": len(held)}


def identity_quality(counts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Purity, completeness and fragments (module docstring) over the videos' :func:`identity_counts`."""
    frames = sum(c["frames"] for c in counts)
    shown = sum(c["shown"] for c in counts)
    fragments = [f for c in counts for f in c["fragments"]]
    return {"purity": round(sum(c["pure"] for c in counts) / frames, 4) if frames else None,
            "completeness": round(sum(c["complete"] for c in counts) / shown, 4) if shown else None,
            "fragments_per_person": round(float(np.mean(fragments)), 3) if fragments else None,
            "identities": sum(c["identities"] for c in counts), "people": sum(c["people"] for c in counts),
            "frames": frames}
