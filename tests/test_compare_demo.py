"""``vreid compare`` (own recipes, shared recipe, skip, resume, failures, per-model settings) and ``vreid demo`` end
to end at a small size.

Comparisons train a small pooling model through a counting factory, so that "skipped" can be checked as "the
model was never built"; the demo runs the real tiny CG-CLIP and ResNet-TAP on real synthetic footage.
"""

from __future__ import annotations

import csv
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
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.rundir import CHECKPOINT_FILE, RunRecord, run_dir_for
from vreid_bench.errors import ConfigError, UnknownNameError, VreidError
from vreid_bench.models.base import ReIDModel, TrainingData
from vreid_bench.protocol import get_protocol
from vreid_bench.recipe import recipe_for

# Test size for every model's recipe: small frames and clips, P×K = 2×2, a flat learning rate.
SMALL_SETS = ("input.height=32", "input.width=16", "input.seq_len=4", "sampler.ids_per_batch=2",
              "sampler.instances_per_id=2", "schedule.warmup_epochs=0", "schedule.milestones=[]", "epochs=1")
OPTIONS = RunOptions(workers=0, device="cpu", eval_batch_size=16)
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


def compare(dataset_dir: Path, out: Path, factory: CountingFactory, sets: tuple[str, ...] = (),
            models: list[str] = MODELS, lines: list[str] | None = None, options: RunOptions = OPTIONS, **kwargs):
    dataset = load(dataset_dir)
    return compare_models(models, dataset, get_protocol(dataset.default_protocol), out, sets=[*SMALL_SETS, *sets],
                          options=options, progress=False, model_factory=factory,
                          announce=(lines.append if lines is not None else None), **kwargs)


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
    own = recipe_for("clip-tap", dataset.family, sets=SMALL_SETS)
    expected = run_dir_for(tmp_path, RunRecord("clip-tap", second.outcomes[0].record.dataset,
                                               second.outcomes[0].record.protocol, own))
    assert second.outcomes[0].run_dir == expected and dataset.name in expected.parts
    # One protocol for all; each model its own recipe.
    records = [o.record for o in second.outcomes]
    assert len({r.protocol.hash() for r in records}) == 1 and records[0].recipe == own


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
    sets, options = ("epochs=2",), dataclasses.replace(OPTIONS, keep_checkpoint=True)
    crashing = CountingFactory(failures={"clip-tap": {"fail_from_epoch": 2}})
    result = compare(dataset_dir, tmp_path, crashing, sets, models=["clip-tap"], options=options)
    [outcome] = result.outcomes
    assert outcome.status == "failed" and outcome.error == "RuntimeError: simulated crash in epoch 2"
    checkpoint = torch.load(outcome.run_dir / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 0  # the first epoch finished and was saved
    healthy = CountingFactory()
    lines: list[str] = []
    [resumed] = compare(dataset_dir, tmp_path, healthy, sets, models=["clip-tap"], lines=lines,
                        options=options).outcomes
    assert resumed.status == "resumed" and resumed.run_dir == outcome.run_dir
    assert "resuming its unfinished run" in lines[0] and healthy.calls == ["clip-tap"]
    epochs = [json.loads(line)["epoch"] for line in (resumed.run_dir / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]
    assert epochs == [0, 1] and resumed.metrics["epochs"] == 2


def test_each_model_trains_with_its_own_recipe_unless_one_is_shared(dataset_dir, tmp_path):
    dataset = load(dataset_dir)
    protocol = get_protocol(dataset.default_protocol)
    own = {p.model: p.record.recipe for p in plan_runs(MODELS, dataset, protocol, tmp_path, sets=SMALL_SETS)}
    # As their recipes say: CLIP-ReID's solver and timm erasing for clip-tap, Gao & Nevatia's for resnet-tap.
    assert (own["clip-tap"].optimizer.lr, own["resnet-tap"].optimizer.lr) == (5e-6, 3e-4)
    assert (own["clip-tap"].augment.erasing.fill, own["resnet-tap"].augment.erasing.p) == ("noise", 0.0)
    assert (own["clip-tap"].input.mean, own["resnet-tap"].sampler.epoch) == ((0.5, 0.5, 0.5), "identities")
    assert own["clip-tap"].hash() != own["resnet-tap"].hash()
    shared_file = tmp_path / "shared.yaml"
    shared_file.write_text("name: shared\nbase: tfclip\nmodel:\n  camera_embedding: true\n")
    shared = {p.model: p.record.recipe for p in plan_runs(MODELS, dataset, protocol, tmp_path, shared_file,
                                                        sets=SMALL_SETS)}
    def training(recipe):  # everything but the model's own options, which differ between models by nature
        return {k: v for k, v in recipe.to_dict().items() if k != "model"}

    assert training(shared["clip-tap"]) == training(shared["resnet-tap"]) and shared["clip-tap"].name == "shared"
    assert shared["clip-tap"].optimizer.lr == 5e-6 and shared["resnet-tap"].augment.erasing.fill == "random_colour"
    # Each model keeps its own options (resnet-tap its ResNet-50, not the base's ViT); the shared file's own model
    # keys reach the models that have them.
    assert shared["resnet-tap"].model == own["resnet-tap"].model
    assert shared["clip-tap"].model == {**own["clip-tap"].model, "camera_embedding": True}
    with pytest.raises(ConfigError, match="model.ssp_layers belongs to none of clip-tap, resnet-tap"):
        plan_runs(MODELS, dataset, protocol, tmp_path, sets=["model.ssp_layers=1"])
    shared_file.write_text("name: shared\nbase: tfclip\nmodel:\n  ssp_layers: 1\n")
    with pytest.raises(ConfigError, match="model.ssp_layers belongs to none"):
        plan_runs(MODELS, dataset, protocol, tmp_path, shared_file, sets=SMALL_SETS)


def test_compare_trains_again_when_the_weights_file_changes_at_the_same_path(dataset_dir, tmp_path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"first weights")
    factory = CountingFactory()
    first = compare(dataset_dir, tmp_path / "runs", factory, models=["clip-tap"], pretrained=str(weights))
    again = compare(dataset_dir, tmp_path / "runs", factory, models=["clip-tap"], pretrained=str(weights))
    assert [o.status for o in first.outcomes + again.outcomes] == ["trained", "skipped"]
    recorded = first.outcomes[0].record.weights
    assert recorded["size"] == len(b"first weights") and len(recorded["sha256"]) == 64
    weights.write_bytes(b"other weights, same path")
    changed = compare(dataset_dir, tmp_path / "runs", factory, models=["clip-tap"], pretrained=str(weights))
    assert changed.outcomes[0].status == "trained" and changed.outcomes[0].run_dir != first.outcomes[0].run_dir
    assert factory.calls == ["clip-tap", "clip-tap"]


def test_model_settings_go_to_the_models_that_have_them(dataset_dir, tmp_path):
    dataset = load(dataset_dir)
    protocol = get_protocol(dataset.default_protocol)
    sets = [*SMALL_SETS, "model.backbone=tiny", "stages.prompts.epochs=3"]
    plans = plan_runs(["CLIP-ReID", "clip-tap", "clipreid"], dataset, protocol, tmp_path, sets=sets)
    assert [p.model for p in plans] == ["clipreid", "clip-tap"]  # registry names, repeats dropped
    assert plans[0].record.recipe.stages["prompts"]["epochs"] == 3 and plans[1].record.recipe.stages == {}
    assert plans[0].record.recipe.model["backbone"] == plans[1].record.recipe.model["backbone"] == "tiny"
    assert plans[0].record.recipe.epochs == plans[1].record.recipe.epochs == 1
    with pytest.raises(ConfigError, match="model.nope belongs to none of clipreid, clip-tap"):
        plan_runs(["clipreid", "clip-tap"], dataset, protocol, tmp_path, sets=["model.nope=1"])
    seeded = plan_runs(["clip-tap"], dataset, protocol, tmp_path, sets=SMALL_SETS, seeds=(0, 1, 2))
    assert [p.record.seed for p in seeded] == [0, 1, 2] and len({p.run_dir for p in seeded}) == 3
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
            "--epochs", "1", "--device", "cpu", "--workers", "0", *[f"--set={item}" for item in SMALL_SETS],
            "--set", "protocol.rerank=true"]
    assert vreid(args) == 0
    out = capsys.readouterr().out
    assert "fixture-sports — video-scope-custom" in out and "clip-tap" in out and "resnet-tap" in out
    assert factory.calls == MODELS
    assert vreid(args) == 0
    assert capsys.readouterr().out.count("skipped, a finished run") == 2 and factory.calls == MODELS

    # A failure: the other model's result is still shown, and the command's exit status says something failed.
    # (Run through click directly: the status of a command that completes is not what `main` returns.)
    factory.failures["resnet-tap"] = {"fail_in_prepare": "no captions"}
    app = typer.Typer()
    cli_compare.register(app)
    result = CliRunner().invoke(app, [*args, "--seeds", "1"])
    assert result.exit_code == 1
    assert "resnet-tap (failed)" in result.stdout and "1 run(s) failed: resnet-tap" in result.stdout
    assert "clip-tap" in result.stdout and factory.calls == [*MODELS, "clip-tap", "resnet-tap"]


def test_cli_compare_over_all_ten_splits_makes_one_table_of_means(vreid, tmp_path, monkeypatch, capsys):
    from layouts import write_ilidsvid
    from leaderboard.collect import collect_runs

    layout = write_ilidsvid(tmp_path / "data", images=True)
    factory = CountingFactory()
    monkeypatch.setattr(train_module, "default_model_factory", factory)
    args = ["compare", "--dataset", "ilidsvid", "--root", str(layout.dataset_dir), "--models", ",".join(MODELS),
            "--out", str(tmp_path / "runs"), "--device", "cpu", "--workers", "0",
            *[f"--set={item}" for item in SMALL_SETS]]
    assert vreid([*args, "--split", "12"]) == 2
    err = capsys.readouterr().err.strip()
    assert "split=12 is out of range; use an integer 0..9" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    assert vreid([*args, "--split", "all"]) == 0
    out = capsys.readouterr().out
    assert len(factory.calls) == 20 and out.count("training with recipe") == 20  # 10 splits × 2 models
    runs = sorted((tmp_path / "runs" / "ilidsvid").iterdir())
    assert len(runs) == 20
    splits = sorted(json.loads((run / "metrics.json").read_text())["split"] for run in runs)
    assert splits == sorted(list(range(10)) * 2)
    [board] = build_leaderboards(collect_runs([tmp_path / "runs"]).frame)
    assert "mean ± std over its 10 splits" in board.caption and "gallery-only" in board.title
    assert [(row.label, row.runs, row.finished) for row in board.measured] in (
        [("clip-tap", 10, True), ("resnet-tap", 10, True)], [("resnet-tap", 10, True), ("clip-tap", 10, True)])
    assert all("±" in row.texts[0] for row in board.measured)
    # A missing split is named, and that model is not averaged over the splits it has.
    missing = [run for run in runs if run.name.startswith("resnet-tap")
               and json.loads((run / "metrics.json").read_text())["split"] == 4]
    (missing[0] / "metrics.json").unlink()
    (missing[0] / "config.yaml").unlink()
    [board] = build_leaderboards(collect_runs([tmp_path / "runs"]).frame)
    row = next(r for r in board.measured if r.model == "resnet-tap")
    assert row.status == "incomplete" and "splits missing (seed 0: 4) of 10" in row.note and row.texts[0] == "-"


def test_demo_end_to_end_at_a_reduced_size(tmp_path):
    config = DemoConfig(out=tmp_path / "demo", models=("cgclip", "clip-tap"), epochs=1, videos=2, frames=60,
                        people=4, fps=10, synth_workers=1, build_workers=1, progress=False,
                        sets=(*DEMO_SETS, "input.height=64", "input.width=32", "input.seq_len=4",
                              "sampler.ids_per_batch=4"))
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
    assert "pipeline demonstration, not a ranking" in report and "paired bootstrap over queries" in report
    markdown, table = config.leaderboard_paths
    text = markdown.read_text()
    assert text.startswith("> A pipeline demonstration") and "| vs best |" in text and "95% CI" in text
    rows = list(csv.DictReader(table.open()))
    assert {r["model"] for r in rows} == {"cgclip", "clip-tap"}
    assert {r["verdict"] for r in rows} <= {"best", "tied", "below"} and "best" in {r["verdict"] for r in rows}
    assert all(r["mAP_ci_low"] and r["queries"] for r in rows)

    again = run_demo(config)
    assert [o.status for o in again.compare.outcomes] == ["skipped", "skipped"]
    details = {stage.name: stage.detail for stage in again.stages}
    assert "built 0 videos, reused 2" in details["2/5 dataset"]
    assert details["3/5 captions"].startswith("captioned 0")
