"""Public detections of synthetic footage: what a person detector would give, written as ``det/det.txt``.

MOTChallenge ships "public detections" beside its ground truth so that trackers can be compared on the same
boxes, apart from any detector. ``vreid synth`` does the same: every sequence gets ``det/det.txt`` made from its
ground truth by a fixed, seeded noise model of a good detector:

- a box is missed with probability 0.05 plus 0.6 times the share of it another person covers (occlusion);
- kept boxes are jittered (Gaussian, 3 % of their width and height on each edge), and scored in [0.6, 1.0),
  lower the more they are covered;
- false positives: on average 0.3 per frame, 20-60 px wide and twice as tall, scored in [0.3, 0.8).

``vreid build sports --videos F/dataset/*/* --detections public`` tracks from them, so a tracker comparison
on synthetic footage needs no detector weights and is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MISS_BASE, MISS_PER_COVER = 0.05, 0.6
JITTER = 0.03
FALSE_POSITIVES_PER_FRAME = 0.3

Row = tuple[int, int, int, int, int, int]  # frame, id, left, top, width, height


def covered_share(box: np.ndarray, others: np.ndarray) -> float:
    """The largest share of ``box``'s area one of ``others`` covers ((4,) and (n, 4) left, top, w, h)."""
    if not len(others):
        return 0.0
    w = np.clip(np.minimum(box[0] + box[2], others[:, 0] + others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    h = np.clip(np.minimum(box[1] + box[3], others[:, 1] + others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    return float((w * h).max() / max(box[2] * box[3], 1.0))


def public_detections(rows: Sequence[Row], width: int, height: int, seed: int) -> str:
    """det.txt text (``frame,-1,left,top,width,height,score``) for ground-truth ``rows``."""
    rng = np.random.default_rng(seed)
    by_frame: dict[int, list[Row]] = {}
    for row in rows:
        by_frame.setdefault(int(row[0]), []).append(row)
    lines = []
    for frame in sorted(by_frame):
        boxes = np.array([row[2:6] for row in by_frame[frame]], dtype=float)  # (n, 4)
        for index, box in enumerate(boxes):
            cover = covered_share(box, np.delete(boxes, index, axis=0))
            if rng.random() < MISS_BASE + MISS_PER_COVER * cover:
                continue
            noisy = box + rng.normal(0.0, JITTER, 4) * np.array([box[2], box[3], box[2], box[3]])
            score = rng.uniform(0.6, 1.0) * (1.0 - 0.4 * cover)
            lines.append((frame, *noisy, score))
        for _ in range(rng.poisson(FALSE_POSITIVES_PER_FRAME)):
            w = rng.uniform(20, 60)
            h = 2 * w
            lines.append((frame, rng.uniform(0, max(width - w, 1)), rng.uniform(0, max(height - h, 1)), w, h,
                          rng.uniform(0.3, 0.8)))
    return "".join(f"{f},-1,{l:.2f},{t:.2f},{w:.2f},{h:.2f},{c:.3f}\n" for f, l, t, w, h, c in lines)
