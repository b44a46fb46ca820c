"""Captions per second of a model captioner, by batch size; prints one JSON object.

``--model DIR`` times a downloaded image-text-to-text model (for Phi-4-multimodal: ``hf download
microsoft/Phi-4-multimodal-instruct --local-dir DIR``, then ``--model DIR --trust-remote-code``); without it, the
tiny randomly initialised LLaVA of the test suite is built offline and timed, which measures vreid's own
overhead (prompting, image loading, batching, decoding) rather than any real model's speed. Requests are
synthetic tracklets of ``--frames`` 128×64 crops; each batch size is timed over ``--tracklets`` tracklets after
one untimed warm-up batch, with greedy decoding of exactly the recipe's ``max_new_tokens`` at most.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from builders.captions import CaptionRequest, create_captioner  # noqa: E402
from vreid_bench.io import atomic_write_json  # noqa: E402


def synthetic_requests(folder: Path, count: int, frames: int, seed: int = 0) -> list[CaptionRequest]:
    rng = np.random.default_rng(seed)
    requests = []
    for index in range(count):
        paths = []
        for frame in range(frames):
            path = folder / f"t{index:04d}_{frame}.jpg"
            Image.fromarray(rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)).save(path)
            paths.append(str(path))
        requests.append(CaptionRequest(f"t{index}", "bench", str(index), tuple(paths)))
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local model folder (default: the tiny test LLaVA, built offline)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 8, 16])
    parser.add_argument("--tracklets", type=int, default=32, help="tracklets timed per batch size")
    parser.add_argument("--frames", type=int, default=4, help="frames per tracklet (the default recipe's 4)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the recipe's (64)")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            from tiny_llava import build_tiny_llava

            model = str(build_tiny_llava(Path(scratch) / "tiny-llava"))
        options: dict[str, object] = {"device": args.device, "dtype": args.dtype, "frames": args.frames}
        if args.max_new_tokens is not None:
            options["max_new_tokens"] = args.max_new_tokens
        if args.trust_remote_code:
            options["trust_remote_code"] = True
        captioner = create_captioner(model, **options)
        start = time.perf_counter()
        captioner.load()
        load_s = time.perf_counter() - start
        folder = Path(scratch) / "frames"
        folder.mkdir()
        requests = synthetic_requests(folder, args.tracklets, args.frames)
        results = []
        for batch_size in args.batch_sizes:
            captioner.caption_batch(requests[:batch_size])  # warm-up
            if captioner.settings.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            words = 0
            for begin in range(0, len(requests), batch_size):
                words += sum(len(text.split()) for text in captioner.caption_batch(requests[begin:begin + batch_size]))
            if captioner.settings.device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            results.append({"batch_size": batch_size, "captions_per_s": round(len(requests) / seconds, 3),
                            "seconds_per_1000_tracklets": round(1000 * seconds / len(requests), 1),
                            "mean_words": round(words / len(requests), 1)})
    device = captioner.settings.device
    report = {
        "benchmark": "captions",
        "model": args.model or "tiny random LLaVA (tests/tiny_llava.py): vreid's overhead, not a real model",
        "recipe": captioner.recipe.id,
        "max_new_tokens": captioner.recipe.max_new_tokens,
        "frames_per_tracklet": args.frames,
        "device": (f"cuda ({torch.cuda.get_device_name(0)})" if device.startswith("cuda")
                   else f"cpu ({platform.processor() or platform.machine()}), {args.threads} threads"),
        "dtype": captioner.settings.dtype,
        "load_s": round(load_s, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "results": results,
    }
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
