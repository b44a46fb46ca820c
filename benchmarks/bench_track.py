"""Frames per second of raw-footage builds on this machine's CPU; prints JSON.

Footage: one 1280x720 H.264 MP4 at 25 fps of synthetic sports footage (``builders.synth``, 10 players),
encoded here with PyAV, with detections made from its ground truth (every box, score 0.9) in MOTChallenge
``det.txt`` form.

Figures, each the best of ``--repeats`` runs:

- ``decode``: frames/s of OpenCV (``VideoCapture.read``) and of PyAV (frame-threaded, to BGR) on the MP4, and
  of ``builders.video.read_frames``, which uses the faster of the two (OpenCV).
- ``track_crop_from_detections``: ``build_from_videos`` from the det.txt with ByteTrack, end to end (tracks,
  curation, crops written), on a fresh output folder each run; ``track_only`` is the tracking pass alone.
- ``detect_track_crop``: a yolo11n-sized detector at imgsz 640 on every frame (decode + YOLO + ByteTrack), plus
  the curation and crops of the same footage. The detector is built from ``yolo11n.yaml`` with RANDOM weights: it
  costs what yolo11n costs per frame, but finds nobody, so its tracking pass crops nothing; the total therefore
  adds the measured track + crop time of the precomputed detections (same footage, same people) to the measured
  detection pass. ``detect_pass_random_weights`` is that detection pass alone.

    python benchmarks/bench_track.py [--frames 100] [--repeats 3] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS = 1280, 720, 25
DETECTOR = "yolo11n.yaml"


def make_footage(workdir: Path, frames: int, people: int) -> tuple[Path, Path]:
    """An H.264 MP4 of synthetic footage and a det.txt of its ground-truth boxes."""
    import av
    import cv2

    from builders.synth import generate

    sequence = generate("sports", workdir / "synth", videos=1, frames=frames, people=people, width=WIDTH,
                        height=HEIGHT, fps=FPS, seed=0).sequences[0].path
    video = workdir / "match.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in range(1, frames + 1):
            image = cv2.imread(str(sequence / "img1" / f"{frame:06d}.jpg"))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    gt = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    detections = workdir / "match.txt"
    detections.write_text("".join(f"{int(f)},-1,{l:.2f},{t:.2f},{w:.2f},{h:.2f},0.9\n"
                                  for f, _, l, t, w, h, *_ in gt))
    return video, detections


def best_of(repeats: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeats))


def decode_opencv(video: Path) -> float:
    import cv2

    start = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    while capture.read()[0]:
        pass
    capture.release()
    return time.perf_counter() - start


def decode_pyav(video: Path) -> float:
    """PyAV with frame threading, to BGR: the alternative decoder."""
    import av

    start = time.perf_counter()
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
    return time.perf_counter() - start


def decode_read_frames(video: Path) -> float:
    """The toolkit's own reader (OpenCV), as the detection pass uses it."""
    from builders.video import Sampling, VideoInput, probe, read_frames

    clip = VideoInput("match", video)
    numbers = Sampling().frame_numbers(probe(clip).n_frames)
    start = time.perf_counter()
    for _ in read_frames(clip, numbers):
        pass
    return time.perf_counter() - start


def timed_build(video: Path, out: Path, footage) -> tuple[float, dict[str, int]]:
    from builders.recipe import Recipe
    from builders.track import build_from_videos

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    # One video: a test-only build, so every curated track is cropped (a time split would drop the cut's gap).
    result = build_from_videos("sports", [video], out, footage, recipe=Recipe(few_videos="test"), progress=False)
    return time.perf_counter() - start, result.counts


def timed_tracking(video: Path, footage, source) -> float:
    from builders.track import track_video
    from builders.video import VideoInput, probe

    clip = VideoInput("match", video)
    start = time.perf_counter()
    track_video(clip, probe(clip, footage.frame_rate), source, footage)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")

    import torch

    from builders.detect import DetectionFile, DetectorConfig, YoloDetector
    from builders.track import FootageConfig

    workdir = Path(tempfile.mkdtemp(prefix="bench_track_"))
    try:
        video, det_file = make_footage(workdir, args.frames, args.people)
        decoders = {"opencv": decode_opencv, "pyav_threaded": decode_pyav, "read_frames": decode_read_frames}
        decode = {name: best_of(args.repeats, lambda fn=fn: fn(video)) for name, fn in decoders.items()}

        from_detections = FootageConfig(detections=det_file)
        build_seconds, counts = min((timed_build(video, workdir / "out", from_detections)
                                     for _ in range(args.repeats)), key=lambda pair: pair[0])
        track_only = best_of(args.repeats, lambda: timed_tracking(video, from_detections, DetectionFile(det_file)))

        detector_config = DetectorConfig(DETECTOR, imgsz=640, batch=args.batch, device="cpu")
        with_detector = FootageConfig(detector=detector_config)
        detector = YoloDetector(detector_config)
        detector.detect([1], [np.zeros((HEIGHT, WIDTH, 3), np.uint8)])  # warm-up
        detect_pass = best_of(args.repeats, lambda: timed_tracking(video, with_detector, detector))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def fps(seconds: float) -> float:
        return round(args.frames / seconds, 1)

    crop_stage = build_seconds - track_only
    report = {
        "footage": {"frames": args.frames, "size": [WIDTH, HEIGHT], "people": args.people, "codec": "h264",
                    "boxes": counts["boxes"], "crops": counts["crops"]},
        "machine": {"cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "decode_fps": {name: fps(seconds) for name, seconds in decode.items()},
        "track_crop_from_detections": {"fps": fps(build_seconds), "seconds": round(build_seconds, 2),
                                       "track_only_fps": fps(track_only)},
        "detect_track_crop": {
            "fps": fps(detect_pass + crop_stage),
            "detector": f"{DETECTOR} (random weights: yolo11n's cost, no detections; see the docstring)",
            "imgsz": 640, "batch": args.batch,
            "detect_pass_random_weights_fps": fps(detect_pass),
            "detect_ms_per_frame": round(1000 * detect_pass / args.frames, 1),
            "crop_and_curation_seconds_added": round(crop_stage, 2),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
