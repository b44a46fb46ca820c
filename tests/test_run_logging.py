"""Training curves: scalars.csv a spreadsheet opens, and TensorBoard event files holding the same values."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tiny_reid import tiny_factory
from toolkit_fixture import write_identity_dataset
from vreid_bench.datasets import load
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.train import run_training
from vreid_bench.protocol import get_protocol
from vreid_bench.recipe import resolve

SETS = ["input.height=32", "input.width=16", "input.seq_len=4", "sampler.ids_per_batch=3", "sampler.instances_per_id=4",
        "epochs=2", "schedule.warmup_epochs=0", "schedule.milestones=[]"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("logging")
    dataset = load(write_identity_dataset(root / "data", 32, 16))
    result = run_training("tiny", dataset, get_protocol("gallery-only"), resolve(None, sets=SETS), root / "runs",
                          options=RunOptions(workers=0, device="cpu", eval_every=1), progress=False,
                          model_factory=tiny_factory)
    return result.run_dir


def log_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_scalars_csv_has_a_row_per_step_with_every_loss_term(run_dir: Path) -> None:
    with (run_dir / "scalars.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = [r for r in log_records(run_dir) if r["event"] == "step"]
    step_rows = [r for r in rows if r["event"] == "step"]
    assert len(step_rows) == len(steps) > 0
    assert [int(r["step"]) for r in step_rows] == [s["step"] for s in steps]
    for row, record in zip(step_rows, steps):
        assert float(row["loss"]) == pytest.approx(record["loss"]) and float(row["id"]) == pytest.approx(record["id"])
        assert float(row["lr"]) == pytest.approx(record["lr"]) and int(row["epoch"]) == record["epoch"]
    evals = [r for r in rows if r["event"] == "eval"]
    final = [r for r in rows if r["event"] == "final"]
    assert len(evals) == 1 and len(final) == 1  # after epoch 1 (eval_every=1), and at the end
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert float(final[0]["mAP"]) == pytest.approx(metrics["mAP"]) and float(final[0]["R1"]) == pytest.approx(
        metrics["cmc"][0])


def test_tensorboard_events_hold_the_same_values(run_dir: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/id", "train/lr", "epoch/loss", "eval/mAP", "eval/R1"} <= tags
    steps = [r for r in log_records(run_dir) if r["event"] == "step"]
    logged = [(e.step, e.value) for e in events.Scalars("train/loss")]
    assert [s for s, _ in logged] == [r["step"] for r in steps]
    assert [v for _, v in logged] == pytest.approx([r["loss"] for r in steps], rel=1e-6)
    final = json.loads((run_dir / "metrics.json").read_text())
    assert events.Scalars("eval/mAP")[-1].value == pytest.approx(final["mAP"], rel=1e-6)
