"""Synthetic footage generation speed: wall seconds and frames per second, written to a scratch folder.

Prints one JSON object. Defaults are the toolkit's demo: 2 videos x 200 frames at 1280x720, one process per
available core (at most one per video).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from builders.synth import generate
from builders.synth.generator import available_cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("sports", "dance"), default="sports")
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        generate(args.kind, scratch, videos=args.videos, frames=args.frames, people=args.people, width=args.width,
                 height=args.height, workers=args.workers)
        seconds = time.perf_counter() - start
    total = args.videos * args.frames
    print(json.dumps({
        "benchmark": "synth",
        "kind": args.kind,
        "videos": args.videos,
        "frames_per_video": args.frames,
        "people": args.people,
        "size": [args.width, args.height],
        "workers": args.workers or min(args.videos, available_cores()),
        "seconds": round(seconds, 2),
        "frames_per_s": round(total / seconds, 1),
    }))


if __name__ == "__main__":
    main()
