"""``benchmarks/bench_train.py --tiny``: the training benchmark runs on a CPU and reports what it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


def test_the_tiny_training_benchmark_reports_throughput_phases_and_the_loader(tmp_path):
    out = tmp_path / "train.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--models", "tfclip", "--batches", "2x2",
                           "--inference", "clip-tap", "--peak-tflops", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == json.loads(out.read_text())  # stdout holds the JSON alone
    report = json.loads(out.read_text())
    (row,) = report["training"]["tfclip"]
    assert row["batch"] == "2x2" and row["train_clips_per_s"] > 0 and row["loader_clips_per_s"] > 0
    assert set(row["phases_ms"]) == {"data", "input", "forward", "backward", "optimizer"}
    assert 0 < row["mfu"] < 1 and row["train_gflops_per_clip"] > 0
    assert report["inference"]["clip-tap"]["clips_per_s"] > 0 and report["wall_s"] < 60
