"""``vreid compare`` (skip, resume, failures, per-model settings) and ``vreid demo`` end to end at a small size.

Comparisons train a small pooling model through a counting factory, so that "skipped" can be checked as "the
model was never built"; the demo runs the real tiny CG-CLIP and ResNet-TAP on real synthetic footage.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import typer
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from leaderboard.compare import compare_models, plan_runs
from leaderboard.demo import DEMO_SETS, DemoConfig, run_demo
from leaderboard.tables import build_leaderboards
from toolkit_fixture import make_toolkit_dataset
from vreid_bench import cli_compare
from vreid_bench.datasets import load
from vreid_bench.engine import train as train_module
from vreid_bench.engine.config import TrainConfig, config_from_dict
from vreid_bench.engine.rundir import CHECKPOINT_FILE, RunRecord, run_dir_for
from vreid_bench.errors import ConfigError, UnknownNameError, VreidError
from vreid_bench.models.base import ReIDModel, TrainingData
from vreid_bench.protocol import get_protocol

SMALL_PROTOCOL = {"height": 32, "width": 16, "seq_len": 4, "num_ids_per_batch": 2, "num_tracklets_per_id": 2}
MODELS = ["clip-tap", "resnet-tap"]


class PooledReID(ReIDModel):
    """Frames average-pooled to 4×4-pixel cells, one linear embedding, temporal mean; CE on a classifier.

    ``fail_in_prepare`` raises a user error before training; ``fail_from_epoch`` raises in the first training
    step of that epoch (counted by ``train()`` calls), after the checkpoints of the earlier epochs.
    """

    def __init__(self, num_ids: int, image_size: tuple[int, int], fail_in_prepare: str | None = None,
                 fail_from_epoch: int | None = None) -> None:
        super().__init__()
        self.embed = nn.Linear(3 * (image_size[0] // 4) * (image_size[1] // 4), 16)
        self.classifier = nn.Linear(16, num_ids)
        self.feature_dim = 16
        self.fail_in_prepare = fail_in_prepare
        self.fail_from_epoch = fail_from_epoch
        self.epochs_started = 0

    def train(self, mode: bool = True) -> PooledReID:
        self.epochs_started += int(mode)
        return super().train(mode)

    def forward(self, clips, camids, labels=None):
        if self.training and self.fail_from_epoch is not None and self.epochs_started >= self.fail_from_epoch:
            raise RuntimeError(f"simulated crash in epoch {self.fail_from_epoch}")
        batch, length = clips.shape[:2]
        cells = F.avg_pool2d(clips.flatten(0, 1), 4).flatten(1)  # (B*T, 3, H, W) -> (B*T, 3*H/4*W/4)
        features = self.embed(cells).view(batch, length, -1).mean(1)  # (B, T, D) -> (B, D)
        return {"logits": self.classifier(features)} if self.training else features

    def losses(self, outputs, labels):
        return {"id": F.cross_entropy(outputs["logits"], labels)}

    def prepare(self, data: TrainingData) -> None:
        if self.fail_in_prepare:
            raise VreidError(self.fail_in_prepare)


@dataclasses.dataclass
class CountingFactory:
    """Builds :class:`PooledReID` for any model name and records each call; ``failures`` per model name."""

    failures: dict[str, dict] = dataclasses.field(default_factory=dict)
    calls: list[str] = dataclasses.field(default_factory=list)

    def __call__(self, name, *, num_ids, num_cams, pretrained, image_size, seq_len, **overrides):
        self.calls.append(name)
        return PooledReID(num_ids, image_size, **self.failures.get(name, {}))


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return make_toolkit_dataset(tmp_path_factory.mktemp("data"), videos=2, ids_per_video=3, cameras=2, frames=6)


def small_config(**changes) -> TrainConfig:
    base = {"epochs": 1, "lr": 1e-2, "warmup_epochs": 0, "milestones": [], "workers": 0, "device": "cpu",
            "eval_batch_size": 16, "protocol": dict(SMALL_PROTOCOL)}
    return config_from_dict({**base, **changes})


def compare(dataset_dir: Path, out: Path, factory: CountingFactory, config: TrainConfig | None = None,
            models: list[str] = MODELS, lines: list[str] | None = None):
    dataset = load(dataset_dir)
    return compare_models(models, dataset, get_protocol(dataset.default_protocol), config or small_config(), out,
                          progress=False, model_factory=factory,
                          announce=(lines.append if lines is not None else None))


def test_compare_trains_every_model_once_then_skips_finished_runs(dataset_dir, tmp_path):
    factory = CountingFactory()
    first = compare(dataset_dir, tmp_path, factory)
    assert [o.status for o in first.outcomes] == ["trained", "trained"] and factory.calls == MODELS
    metrics_files = [o.run_dir / "metrics.json" for o in first.outcomes]
    stamps = [path.stat().st_mtime_ns for path in metrics_files]
    lines: list[str] = []
    second = compare(dataset_dir, tmp_path, factory, lines=lines)
    assert [o.status for o in second.outcomes] == ["skipped", "skipped"]
    assert factory.calls == MODELS  # no model was built again
    assert [path.stat().st_mtime_ns for path in metrics_files] == stamps
    assert [o.metrics for o in second.outcomes] == [o.metrics for o in first.outcomes]
    assert all("skipped, a finished run with this configuration exists" in line for line in lines)
    # The folders are those `vreid run` writes for the same settings, so either command finds the other's runs.
    dataset = load(dataset_dir)
    expected = run_dir_for(tmp_path, RunRecord("clip-tap", second.outcomes[0].record.dataset,
                                               second.outcomes[0].record.protocol, small_config()))
    assert second.outcomes[0].run_dir == expected and dataset.name in expected.parts
    # Only the model differs: one protocol, one training configuration.
    records = [o.record for o in second.outcomes]
    assert len({r.protocol.hash() for r in records}) == 1 and records[0].config == records[1].config


def test_a_failing_model_is_reported_and_the_others_still_run(dataset_dir, tmp_path):
    message = "clip-tap needs captions: run `vreid caption DATASET_DIR --captioner template`"
    factory = CountingFactory(failures={"clip-tap": {"fail_in_prepare": message}})
    lines: list[str] = []
    result = compare(dataset_dir, tmp_path, factory, lines=lines)
    assert [(o.model, o.status) for o in result.outcomes] == [("clip-tap", "failed"), ("resnet-tap", "trained")]
    assert result.outcomes[0].error == message and "VreidError" in result.outcomes[0].traceback
    assert any(line.endswith(f"clip-tap: failed: {message}") for line in lines)
    [board] = build_leaderboards(result.frame())
    assert [(r.label, r.status) for r in board.measured] == [("resnet-tap", "finished"),
                                                             ("clip-tap (failed)", "failed")]
    assert board.measured[0].best[0] and not any(board.measured[1].best)
    assert board.notes == [f"clip-tap (failed): {message}"]


def test_an_interrupted_model_is_resumed_from_its_checkpoint(dataset_dir, tmp_path):
    config = small_config(epochs=2, keep_checkpoint=True)
    crashing = CountingFactory(failures={"clip-tap": {"fail_from_epoch": 2}})
    result = compare(dataset_dir, tmp_path, crashing, config, models=["clip-tap"])
    [outcome] = result.outcomes
    assert outcome.status == "failed" and outcome.error == "RuntimeError: simulated crash in epoch 2"
    checkpoint = torch.load(outcome.run_dir / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 0  # the first epoch finished and was saved
    healthy = CountingFactory()
    lines: list[str] = []
    [resumed] = compare(dataset_dir, tmp_path, healthy, config, models=["clip-tap"], lines=lines).outcomes
    assert resumed.status == "resumed" and resumed.run_dir == outcome.run_dir
    assert "resuming its unfinished run" in lines[0] and healthy.calls == ["clip-tap"]
    epochs = [json.loads(line)["epoch"] for line in (resumed.run_dir / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]
    assert epochs == [0, 1] and resumed.metrics["epochs"] == 2


def test_model_settings_go_to_the_models_that_have_them(dataset_dir, tmp_path):
    dataset = load(dataset_dir)
    protocol = get_protocol(dataset.default_protocol)
    config = small_config(model={"backbone": "tiny", "stage1_epochs": 3})
    plans = plan_runs(["CLIP-ReID", "clip-tap", "clipreid"], dataset, protocol, config, tmp_path)
    assert [p.model for p in plans] == ["clipreid", "clip-tap"]  # registry names, repeats dropped
    assert plans[0].record.config.model == {"backbone": "tiny", "stage1_epochs": 3}
    assert plans[1].record.config.model == {"backbone": "tiny"}
    assert plans[0].record.config.epochs == plans[1].record.config.epochs == 1
    with pytest.raises(ConfigError, match="model setting nope belong to none of clipreid, clip-tap"):
        plan_runs(["clipreid", "clip-tap"], dataset, protocol, small_config(model={"nope": 1}), tmp_path)
    factory = CountingFactory()
    with pytest.raises(UnknownNameError, match="unknown model 'vit-tap'"):
        compare(dataset_dir, tmp_path, factory, models=["clip-tap", "vit-tap"])
    assert factory.calls == []  # nothing trained before the name was checked


@pytest.fixture
def vreid(monkeypatch):
    """``vreid.cli.main`` with the comparison commands registered (undone after the test)."""
    from vreid_bench import cli

    commands = list(cli.app.registered_commands)
    monkeypatch.setattr(cli.app, "registered_commands", commands)
    if not any(c.name == "compare" for c in commands):
        cli_compare.register(cli.app)
    return cli.main


def test_cli_compare_prints_the_table_and_skips_on_the_second_run(vreid, dataset_dir, tmp_path, monkeypatch,
                                                                   capsys):
    factory = CountingFactory()
    monkeypatch.setattr(train_module, "default_model_factory", factory)
    args = ["compare", "--dataset", str(dataset_dir), "--models", ",".join(MODELS), "--out", str(tmp_path),
            "--epochs", "1", "--device", "cpu", "--set", "workers=0", "--set", "warmup_epochs=0",
            *[f"--set=protocol.{key}={value}" for key, value in SMALL_PROTOCOL.items()]]
    assert vreid(args) == 0
    out = capsys.readouterr().out
    assert "fixture-sports — vreid-p1-video-custom" in out and "clip-tap" in out and "resnet-tap" in out
    assert factory.calls == MODELS
    assert vreid(args) == 0
    assert capsys.readouterr().out.count("skipped, a finished run") == 2 and factory.calls == MODELS

    # A failure: the other model's result is still shown, and the command's exit status says something failed.
    # (Run through click directly: the status of a command that completes is not what `main` returns.)
    factory.failures["resnet-tap"] = {"fail_in_prepare": "no captions"}
    app = typer.Typer()
    cli_compare.register(app)
    result = CliRunner().invoke(app, [*args, "--set", "seed=1"])
    assert result.exit_code == 1
    assert "resnet-tap (failed)" in result.stdout and "1 model(s) failed: resnet-tap" in result.stdout
    assert "clip-tap" in result.stdout and factory.calls == [*MODELS, "clip-tap", "resnet-tap"]


def test_demo_end_to_end_at_a_reduced_size(tmp_path):
    config = DemoConfig(out=tmp_path / "demo", models=("cgclip", "clip-tap"), epochs=1, videos=2, frames=60,
                        people=4, fps=10, synth_workers=1, build_workers=1, progress=False,
                        sets=(*DEMO_SETS, "protocol.height=64", "protocol.width=32", "protocol.seq_len=4",
                              "eval_batch_size=64"))
    lines: list[str] = []
    result = run_demo(config, announce=lines.append)
    assert [o.status for o in result.compare.outcomes] == ["trained", "trained"]
    assert (result.dataset_dir / "manifest.json").is_file() and (result.dataset_dir / "captions.jsonl").is_file()
    assert [stage.name[:3] for stage in result.stages] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    [board] = result.boards
    assert sorted(r.label for r in board.measured) == ["cgclip", "clip-tap"]
    assert all(r.finished for r in board.measured)
    assert 0 < result.chance.mAP < 1
    report = result.report_path.read_text()
    assert report.startswith("<!DOCTYPE html>") and "data:image/png;base64," in report and "chance level" in report

    again = run_demo(config)
    assert [o.status for o in again.compare.outcomes] == ["skipped", "skipped"]
    details = {stage.name: stage.detail for stage in again.stages}
    assert "built 0 videos, reused 2" in details["2/5 dataset"]
    assert details["3/5 captions"].startswith("captioned 0")
