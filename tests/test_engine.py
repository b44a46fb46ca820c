"""The harness on a tiny synthetic dataset: learning, resume, DDP, run directories, configuration, CLI.

The synthetic set has identity signal in a small torso patch and a camera-coloured background over most of the
frame: an untrained model ranks same-camera strangers first; a trained one learns to look at the patch.
The test model has no BatchNorm, so that DDP and one process see the same computation (PyTorch's SyncBatchNorm
has no CPU kernel); its only loss is cross-entropy, a per-sample mean.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
import yaml
from torch import nn

from vreid_bench.clips import EvalClips, normalize_clips
from vreid_bench.cli import main
from vreid_bench.datasets import load
from vreid_bench.engine import train as train_module
from vreid_bench.engine.config import TrainConfig, apply_protocol_overrides, config_from_dict, load_config
from vreid_bench.engine.distributed import distributed_context
from vreid_bench.engine.features import extract_features
from vreid_bench.engine.rundir import DatasetRecord, RunRecord, run_dir_for
from vreid_bench.engine.train import build_training_data, eval_run, lr_factor, run_training
from vreid_bench.errors import ConfigError, VreidError
from vreid_bench.evaluation import evaluate_features
from vreid_bench.models.base import ReIDModel, TrainingData
from vreid_bench.protocol import get_protocol

from toolkit_fixture import write_identity_dataset

H, W, T = 32, 16, 4
SMALL_PROTOCOL = {"height": H, "width": W, "seq_len": T, "num_ids_per_batch": 3, "num_tracklets_per_id": 4}
METRICS_KEYS = {"model", "dataset", "dataset_fingerprint", "protocol", "protocol_hash", "mAP", "cmc", "mINP",
                "num_valid_queries", "num_skipped_queries", "params", "gflops_per_clip", "clips_per_s", "seed",
                "git_rev", "wall_s", "epochs", "device"}


class TinyReID(ReIDModel):
    """Frames average-pooled to 8×4 cells, one linear embedding, temporal mean; CE on a linear classifier."""

    def __init__(self, num_ids: int, image_size: tuple[int, int], dim: int = 16, dropout: float = 0.0,
                 prepare_error: str | None = None) -> None:
        super().__init__()
        cells = 3 * (image_size[0] // 4) * (image_size[1] // 4)
        self.embed = nn.Linear(cells, dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_ids)
        self.feature_dim = dim
        self.prepare_error = prepare_error

    def forward(self, clips, camids, labels=None):
        batch, length = clips.shape[:2]
        cells = F.avg_pool2d(clips.flatten(0, 1), 4).flatten(1)  # (B*T, 3, H, W) -> (B*T, 3*H/4*W/4)
        feats = self.embed(cells).view(batch, length, -1).mean(1)  # (B, T, D) -> (B, D)
        if not self.training:
            return feats
        return {"logits": self.classifier(self.dropout(feats))}

    def losses(self, outputs, labels):
        return {"id": F.cross_entropy(outputs["logits"], labels)}

    def prepare(self, data: TrainingData) -> None:
        if self.prepare_error:
            raise VreidError(self.prepare_error)


def tiny_factory(name, *, num_ids, num_cams, pretrained, image_size, seq_len, **overrides):
    return TinyReID(num_ids, image_size, **overrides)


def small_config(**changes) -> TrainConfig:
    base = {"epochs": 2, "lr": 1e-2, "warmup_epochs": 0, "milestones": [], "workers": 0, "device": "cpu",
            "eval_batch_size": 16, "protocol": dict(SMALL_PROTOCOL)}
    return config_from_dict({**base, **changes})


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return write_identity_dataset(tmp_path_factory.mktemp("data"), H, W)


@pytest.fixture(scope="module")
def trained(dataset_dir, tmp_path_factory):
    """One short training run, shared by the tests that read its results."""
    config = small_config(epochs=10, lr=3e-2)
    result = run_training("tiny", load(dataset_dir), get_protocol("vreid-p1"), config,
                          tmp_path_factory.mktemp("runs"), progress=False, model_factory=tiny_factory)
    return config, result


def _epoch_losses(run_dir: Path) -> list[float]:
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [line["loss"] for line in lines if line["event"] == "epoch"]


def _untrained_map(dataset_dir: Path, config: TrainConfig) -> float:
    dataset = load(dataset_dir)
    protocol = apply_protocol_overrides(get_protocol("vreid-p1"), config.protocol)
    torch.manual_seed(config.seed)
    model = TinyReID(dataset.num_train_pids, (H, W))
    with distributed_context("cpu") as ctx:
        feats = extract_features(model, [*dataset.query, *dataset.gallery], protocol, ctx.device, ctx).features
    nq = len(dataset.query)
    return evaluate_features(feats[:nq], feats[nq:], dataset.query, dataset.gallery, protocol).mAP


def test_training_lowers_the_loss_and_beats_the_untrained_model(trained, dataset_dir):
    config, result = trained
    losses = _epoch_losses(result.run_dir)
    assert len(losses) == config.epochs
    assert losses[-1] < 0.5 * losses[0]
    untrained = _untrained_map(dataset_dir, config)
    assert result.metrics["mAP"] > untrained + 0.25, (untrained, result.metrics["mAP"])
    assert result.metrics["num_valid_queries"] == 6 and result.metrics["num_skipped_queries"] == 0


def test_run_directory_holds_config_metrics_weights_and_log(trained, dataset_dir):
    config, result = trained
    run_dir = result.run_dir
    assert run_dir.parent.name == "synthetic" and run_dir.name.startswith("tiny-vreid-p1-custom-")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert METRICS_KEYS <= set(metrics) and metrics == result.metrics
    assert metrics["protocol_hash"] == apply_protocol_overrides(get_protocol("vreid-p1"), SMALL_PROTOCOL).hash()
    assert metrics["params"] == 96 * 16 + 16 + 16 * 6 + 6
    assert metrics["gflops_per_clip"] == pytest.approx(2 * T * 96 * 16 / 1e9)
    assert len(metrics["cmc"]) == 50 and metrics["epochs"] == 10 and metrics["dataset_fingerprint"] == "synthetic-0"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"] == "tiny" and saved["seed"] == 0 and saved["protocol"]["height"] == H
    assert saved["dataset"]["source"] == str(dataset_dir.resolve())
    assert (run_dir / "model.pt").is_file() and not (run_dir / "checkpoint.pt").exists()
    steps = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert {"epoch", "step", "loss", "id", "lr", "seconds"} <= set(steps[0])
    assert run_dir == run_dir_for(run_dir.parent.parent, RunRecord(
        "tiny", DatasetRecord.of(load(dataset_dir)), apply_protocol_overrides(get_protocol("vreid-p1"),
                                                                              SMALL_PROTOCOL), config))


def test_a_finished_run_is_not_trained_again(trained, dataset_dir):
    config, result = trained
    out = result.run_dir.parent.parent
    with pytest.raises(ConfigError, match="already holds a finished run"):
        run_training("tiny", load(dataset_dir), get_protocol("vreid-p1"), config, out, progress=False,
                     model_factory=tiny_factory)
    again = run_training("tiny", load(dataset_dir), get_protocol("vreid-p1"), config, out, resume=True,
                         progress=False, model_factory=tiny_factory)
    assert again.metrics == result.metrics


def test_a_model_that_refuses_the_dataset_leaves_no_run_directory(dataset_dir, tmp_path):
    def refusing(name, **kwargs):
        return tiny_factory(name, **kwargs, prepare_error="this model needs captions")

    with pytest.raises(VreidError, match="needs captions"):
        run_training("tiny", load(dataset_dir), get_protocol("vreid-p1"), small_config(), tmp_path, progress=False,
                     model_factory=refusing)
    assert not any(tmp_path.rglob("*"))


def test_eval_run_reproduces_the_metrics_and_writes_other_protocols_beside(trained):
    _, result = trained
    metrics = eval_run(result.run_dir, progress=False, model_factory=tiny_factory)
    assert metrics["mAP"] == pytest.approx(result.metrics["mAP"], abs=1e-6)
    other = eval_run(result.run_dir, "tfclip-mars", progress=False, model_factory=tiny_factory)
    path = result.run_dir / "metrics-tfclip-mars-custom.json"
    assert json.loads(path.read_text())["protocol_hash"] == other["protocol_hash"] != metrics["protocol_hash"]
    assert other["num_valid_queries"] == 6


def test_resume_continues_exactly_as_an_uninterrupted_run(dataset_dir, tmp_path, monkeypatch):
    config = small_config(workers=1, eval_every=1, model={"dropout": 0.3},
                          protocol={**SMALL_PROTOCOL, "flip_p": 0.5, "erasing_p": 0.5})
    protocol = get_protocol("vreid-p1")
    straight = run_training("tiny", load(dataset_dir), protocol, config, tmp_path / "a", progress=False,
                            model_factory=tiny_factory)

    saves = []
    original = train_module.save_torch_atomic

    def crash_at_second_checkpoint(obj, path):
        if path.name == "checkpoint.pt":
            saves.append(path)
            if len(saves) == 2:
                raise KeyboardInterrupt("killed while writing the epoch-2 checkpoint")
        original(obj, path)

    monkeypatch.setattr(train_module, "save_torch_atomic", crash_at_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_training("tiny", load(dataset_dir), protocol, config, tmp_path / "b", progress=False,
                     model_factory=tiny_factory)
    monkeypatch.setattr(train_module, "save_torch_atomic", original)
    interrupted_dir = saves[0].parent
    assert not (interrupted_dir / "metrics.json").exists()
    with pytest.raises(ConfigError, match="--resume"):
        run_training("tiny", load(dataset_dir), protocol, config, tmp_path / "b", progress=False,
                     model_factory=tiny_factory)
    resumed = run_training("tiny", load(dataset_dir), protocol, config, tmp_path / "b", resume=True,
                           progress=False, model_factory=tiny_factory)

    def log_without_times(run_dir):
        lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        return [{k: v for k, v in line.items() if k != "seconds"} for line in lines]

    log = log_without_times(resumed.run_dir)
    assert log == log_without_times(straight.run_dir)
    assert [line["epoch"] for line in log if line["event"] == "eval"] == [0]  # evaluation did not shift the streams
    weights_a = torch.load(straight.run_dir / "model.pt", weights_only=True)
    weights_b = torch.load(resumed.run_dir / "model.pt", weights_only=True)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert resumed.metrics["mAP"] == straight.metrics["mAP"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_training_with_mixed_precision(dataset_dir, tmp_path, amp):
    config = small_config(epochs=10, lr=3e-2, device="cuda", amp=amp, grad_clip=5.0, keep_checkpoint=True)
    result = run_training("tiny", load(dataset_dir), get_protocol("vreid-p1"), config, tmp_path, progress=False,
                          model_factory=tiny_factory)
    losses = _epoch_losses(result.run_dir)
    assert losses[-1] < 0.5 * losses[0] and result.metrics["device"].startswith("cuda")
    assert result.metrics["mAP"] > 0.5
    checkpoint = torch.load(result.run_dir / "checkpoint.pt", weights_only=True)
    assert ("scale" in checkpoint["scaler"]) == (amp == "fp16")  # loss scaling only for float16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, dataset_dir: str, out: str, config: TrainConfig) -> None:
    import os

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    run_training("tiny", load(dataset_dir), get_protocol("vreid-p1"), config, out, progress=False,
                 model_factory=tiny_factory)


def test_two_gloo_processes_train_like_one_process_on_the_same_global_batch(dataset_dir, tmp_path):
    # No randomness in the data (evenly spaced frames, no augmentation), so both see the same global batches.
    config = small_config(protocol={**SMALL_PROTOCOL, "train_sampling": "evenly", "flip_p": 0.0, "erasing_p": 0.0})
    single = run_training("tiny", load(dataset_dir), get_protocol("vreid-p1"), config, tmp_path / "one",
                          progress=False, model_factory=tiny_factory)
    # Forked from a fresh server (a process that has run autograd on a GPU machine cannot fork), which imports
    # the heavy modules once for both children.
    mp.set_forkserver_preload(["torch._dynamo", _ddp_worker.__module__])
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(dataset_dir), str(tmp_path / "two"), config),
                       nprocs=2, start_method="forkserver")
    ddp_dir = tmp_path / "two" / single.run_dir.relative_to(tmp_path / "one")
    assert np.allclose(_epoch_losses(ddp_dir), _epoch_losses(single.run_dir), rtol=1e-5, atol=1e-6)
    one = torch.load(single.run_dir / "model.pt", weights_only=True)
    two = torch.load(ddp_dir / "model.pt", weights_only=True)
    assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)
    ddp_metrics = json.loads((ddp_dir / "metrics.json").read_text())
    assert ddp_metrics["mAP"] == pytest.approx(single.metrics["mAP"], abs=1e-6) and "×2" in ddp_metrics["device"]


def test_features_are_the_mean_of_each_tracklets_dense_clip_features(dataset_dir):
    dataset = load(dataset_dir)
    protocol = apply_protocol_overrides(get_protocol("vreid-p1"), {**SMALL_PROTOCOL, "seq_len": 3})
    torch.manual_seed(0)
    model = TinyReID(dataset.num_train_pids, (H, W)).eval()
    tracklets = dataset.query[:2] + dataset.gallery[:3]
    with distributed_context("cpu") as ctx:
        result = extract_features(model, tracklets, protocol, ctx.device, ctx, batch_size=4)
    for i, tracklet in enumerate(tracklets):
        clips = EvalClips([tracklet], protocol)
        one = torch.stack([clips[j][0] for j in range(len(clips))])  # 8 frames -> 3 clips of 3, last padded
        with torch.no_grad():
            expected = model(normalize_clips(one, protocol), torch.zeros(len(one), dtype=torch.long)).mean(0)
        assert torch.allclose(result.features[i], expected, atol=1e-6)
    assert result.num_clips == 5 * 3 and result.clips_per_s > 0


def test_prepare_sees_labels_captions_and_every_training_clip(dataset_dir):
    dataset = load(dataset_dir)
    protocol = apply_protocol_overrides(get_protocol("vreid-p1"), SMALL_PROTOCOL)
    data = build_training_data(dataset, protocol, torch.device("cpu"), workers=0)
    assert data.num_ids == 6 and data.num_cams == 2 and len(data.tracklets) == len(data.labels) == 24
    assert sorted(data.captions) == list(range(6)) and data.captions[0] == ["person v0:0"] * 3
    seen = []
    for clips, labels, camids, index in data.iter_clips(5):
        assert clips.shape[1:] == (T, 3, H, W) and clips.dtype == torch.float32
        assert labels.tolist() == [data.labels[i] for i in index.tolist()]
        seen.extend(index.tolist())
    assert sorted(seen) == sorted(list(range(24)) * 2)  # 8 frames = 2 dense clips of 4


def test_warmup_then_steps_and_cosine():
    config = TrainConfig(epochs=80, warmup_epochs=10, warmup_factor=0.1, milestones=(30, 50, 70))
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(5, config) == pytest.approx(0.55)
    assert [lr_factor(e, config) for e in (10, 29, 30, 50, 79)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])
    cosine = TrainConfig(epochs=20, warmup_epochs=0, scheduler="cosine")
    assert lr_factor(0, cosine) == 1 and lr_factor(10, cosine) == pytest.approx(0.5)


def test_config_file_sets_and_coercion(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 12\nmilestones: [4, 8]\nmodel:\n  dropout: 0.1\n")
    config = load_config(path, ["lr=5e-6", "grad_clip=none", "amp=off", "model.dim=32", "protocol.seq_len=4",
                                "milestones=3,6", "pretrained=none"])
    assert (config.epochs, config.lr, config.grad_clip, config.amp) == (12, 5e-6, None, "off")
    assert config.milestones == (3, 6) and config.pretrained == "none"
    assert config.model == {"dropout": 0.1, "dim": 32} and config.protocol == {"seq_len": 4}
    assert load_config(sets=["grad_clip=1.5", "sync_bn=false"]).grad_clip == 1.5


@pytest.mark.parametrize("sets, message", [
    (["learning_rate=1"], "unknown config key 'learning_rate': valid keys are seed, epochs"),
    (["epochs=ten"], "epochs must be a number"),
    (["epochs=2.5"], "epochs must be an integer"),
    (["amp=fp8"], "amp must be one of bf16, fp16, off"),
    (["epochs"], "--set takes key=value"),
    (["optim.lr=1"], "unknown config key 'optim.lr'"),
    (["milestones=5,3"], "milestones must be increasing"),
])
def test_config_errors_name_the_value_and_the_fix(sets, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config(sets=sets)


def test_protocol_keys_are_checked_and_a_changed_protocol_is_renamed():
    with pytest.raises(ConfigError, match="unknown protocol key 'size'.*seq_len"):
        apply_protocol_overrides(get_protocol("vreid-p1"), {"size": 3})
    same = apply_protocol_overrides(get_protocol("vreid-p1"), {"seq_len": 8})
    assert same == get_protocol("vreid-p1")
    changed = apply_protocol_overrides(get_protocol("vreid-p1"), {"seq_len": "4"})
    assert changed.name == "vreid-p1-custom" and changed.seq_len == 4


def test_run_directory_depends_on_results_not_on_runtime_settings(dataset_dir):
    dataset = DatasetRecord.of(load(dataset_dir))
    protocol = get_protocol("vreid-p1")

    def folder(config):
        return run_dir_for("runs", RunRecord("tiny", dataset, protocol, config))

    assert folder(TrainConfig()) == folder(TrainConfig(workers=0, eval_every=5, device="cpu"))
    assert folder(TrainConfig()) != folder(TrainConfig(seed=1))
    assert folder(TrainConfig()) != folder(TrainConfig(model={"dim": 8}))
    assert folder(TrainConfig()).parts[:2] == ("runs", "synthetic")


def test_cli_run_then_eval_on_a_toolkit_dataset(tmp_path, monkeypatch, capsys):
    from toolkit_fixture import make_toolkit_dataset

    root = make_toolkit_dataset(tmp_path / "data", videos=2, ids_per_video=3, cameras=2, frames=6)
    monkeypatch.setattr(train_module, "default_model_factory", tiny_factory)
    sets = ["--set", f"protocol.height={H}", "--set", f"protocol.width={W}", "--set", f"protocol.seq_len={T}",
            "--set", "protocol.num_ids_per_batch=2", "--set", "protocol.num_tracklets_per_id=2",
            "--set", "workers=0", "--set", "warmup_epochs=0"]
    code = main(["run", "tiny", "--dataset", str(root), "--epochs", "2", "--device", "cpu",
                 "--out", str(tmp_path / "runs"), *sets])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "mAP" in out and "R20" in out and "vreid-p1-video-custom" in out
    [run_dir] = (tmp_path / "runs" / "fixture-sports").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["num_valid_queries"] == 3
    assert main(["eval", str(run_dir), "--protocol", "vreid-p1", "--device", "cpu"]) == 0
    assert (run_dir / "metrics-vreid-p1-custom.json").is_file()


def test_cli_prints_a_models_prepare_error_as_one_line(dataset_dir, tmp_path, monkeypatch, capsys):
    message = "dataset synthetic has no captions: make them with `vreid caption DATASET_DIR --captioner template`"
    monkeypatch.setattr(train_module, "default_model_factory",
                        lambda name, **kwargs: tiny_factory(name, **kwargs, prepare_error=message))
    code = main(["run", "tiny", "--dataset", str(dataset_dir), "--epochs", "1", "--device", "cpu",
                 "--out", str(tmp_path / "runs"), "--set", "workers=0",
                 *[f"--set=protocol.{k}={v}" for k, v in SMALL_PROTOCOL.items()]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "vreid caption DATASET_DIR --captioner template" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_config_error_is_one_line(dataset_dir, capsys):
    assert main(["run", "tiny", "--dataset", str(dataset_dir), "--set", "nope=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'nope'" in err and len(err.strip().splitlines()) == 1


def test_models_command_lists_the_registry(capsys):
    from vreid_bench.models import list_models

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for info in list_models():
        assert info.name in out
