"""The harness on a tiny synthetic dataset: learning, resume, DDP, run directories, configuration, CLI.

The synthetic set has identity signal in a small torso patch and a camera-coloured background over most of the
frame: an untrained model ranks same-camera strangers first; a trained one learns to look at the patch.
The test model has no BatchNorm, so that DDP and one process see the same computation (PyTorch's SyncBatchNorm
has no CPU kernel); its only loss is cross-entropy, a per-sample mean.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml

from dataclasses import replace

from vreid_bench.clips import EvalClips, normalize_clips
from vreid_bench.cli import main
from vreid_bench.datasets import load
from vreid_bench.engine import train as train_module
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.distributed import distributed_context
from vreid_bench.engine.features import extract_features
from vreid_bench.engine.optim import lr_factor
from vreid_bench.engine.rundir import DatasetRecord, RunRecord, run_dir_for
from vreid_bench.engine.train import build_training_data, eval_run, run_training
from vreid_bench.errors import ConfigError, VreidError
from vreid_bench.evaluation import evaluate_features
from vreid_bench.protocol import apply_protocol_overrides, get_protocol
from vreid_bench.recipe import Recipe, ScheduleSpec, resolve

from tiny_reid import TinyReID, tiny_factory
from toolkit_fixture import write_identity_dataset

H, W, T = 32, 16, 4
SMALL_SETS = (f"input.height={H}", f"input.width={W}", f"input.seq_len={T}", "sampler.ids_per_batch=3",
              "sampler.instances_per_id=4", "schedule.warmup_epochs=0", "schedule.milestones=[]",
              "augment.erasing.p=0")
OPTIONS = RunOptions(workers=0, device="cpu", eval_batch_size=16)
METRICS_KEYS = {"model", "dataset", "dataset_fingerprint", "protocol", "protocol_hash", "mAP", "cmc", "mINP",
                "num_valid_queries", "num_skipped_queries", "params", "training_params", "gflops_per_clip",
                "clips_per_s", "inference_dtype", "seed", "git_rev", "wall_s", "epochs", "device", "recipe",
                "recipe_hash", "split", "query_ap", "query_first_rank", "query_digest", "weights"}


def small_recipe(*sets: str, epochs: int = 2, lr: float = 1e-2) -> Recipe:
    return resolve(None, sets=[*SMALL_SETS, f"epochs={epochs}", f"optimizer.lr={lr}", *sets])


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return write_identity_dataset(tmp_path_factory.mktemp("data"), H, W)


@pytest.fixture(scope="module")
def trained(dataset_dir, tmp_path_factory):
    """One short training run, shared by the tests that read its results."""
    recipe = small_recipe(epochs=10, lr=3e-2)
    result = run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), recipe,
                          tmp_path_factory.mktemp("runs"), options=OPTIONS, progress=False, model_factory=tiny_factory)
    return recipe, result


def _epoch_losses(run_dir: Path) -> list[float]:
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [line["loss"] for line in lines if line["event"] == "epoch"]


def _untrained_map(dataset_dir: Path, recipe: Recipe) -> float:
    dataset = load(dataset_dir)
    protocol = get_protocol("gallery-only")
    torch.manual_seed(0)
    model = TinyReID(dataset.num_train_pids, (H, W))
    with distributed_context("cpu") as ctx:
        feats = extract_features(model, [*dataset.query, *dataset.gallery], recipe.input, "dense", ctx.device,
                                 ctx).features
    nq = len(dataset.query)
    return evaluate_features(feats[:nq], feats[nq:], dataset.query, dataset.gallery, protocol).mAP


def test_training_lowers_the_loss_and_beats_the_untrained_model(trained, dataset_dir):
    recipe, result = trained
    losses = _epoch_losses(result.run_dir)
    assert len(losses) == recipe.epochs
    assert losses[-1] < 0.5 * losses[0]
    untrained = _untrained_map(dataset_dir, recipe)
    assert result.metrics["mAP"] > untrained + 0.25, (untrained, result.metrics["mAP"])
    assert result.metrics["num_valid_queries"] == 6 and result.metrics["num_skipped_queries"] == 0


def test_run_directory_holds_config_metrics_weights_and_log(trained, dataset_dir):
    recipe, result = trained
    run_dir = result.run_dir
    assert run_dir.parent.name == "synthetic" and run_dir.name.startswith("tiny-gallery-only-")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert METRICS_KEYS <= set(metrics) and metrics == result.metrics
    assert metrics["protocol_hash"] == get_protocol("gallery-only").hash()
    assert metrics["recipe_hash"] == recipe.hash() and metrics["split"] is None
    assert metrics["params"] == 96 * 16 + 16  # the embedding the test feature comes from
    assert metrics["training_params"] == 16 * 6 + 6  # the classifier trains it and is never asked at inference
    assert metrics["inference_dtype"] == "float32" and len(metrics["query_ap"]) == 6
    assert metrics["gflops_per_clip"] == pytest.approx(2 * T * 96 * 16 / 1e9)
    assert len(metrics["cmc"]) == 50 and metrics["epochs"] == 10 and metrics["dataset_fingerprint"] == "synthetic-0"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"] == "tiny" and saved["seed"] == 0 and saved["recipe"]["input"]["height"] == H
    assert saved["recipe_hash"] == recipe.hash() and saved["protocol"]["name"] == "gallery-only"
    assert saved["dataset"]["source"] == str(dataset_dir.resolve())
    shown = (run_dir / "recipe.yaml").read_text()
    assert f"height: {H}" in shown and "# --set" in shown and recipe.hash() in shown
    assert (run_dir / "model.pt").is_file() and not (run_dir / "checkpoint.pt").exists()
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "prepare" and lines[0]["seconds"] >= 0  # the pass before training, timed
    steps = [line for line in lines if line["event"] == "step"]
    assert {"epoch", "step", "loss", "id", "lr", "seconds"} <= set(steps[0])
    assert run_dir == run_dir_for(run_dir.parent.parent, RunRecord.create(
        "tiny", DatasetRecord.of(load(dataset_dir)), get_protocol("gallery-only"), recipe))
    assert saved["dataset"]["captions"] is None  # the tiny model trains on no captions, so none are recorded


def test_a_finished_run_is_not_trained_again(trained, dataset_dir):
    recipe, result = trained
    out = result.run_dir.parent.parent
    with pytest.raises(ConfigError, match="already holds a finished run"):
        run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), recipe, out, options=OPTIONS,
                     progress=False, model_factory=tiny_factory)
    again = run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), recipe, out, options=OPTIONS,
                         resume=True, progress=False, model_factory=tiny_factory)
    assert again.metrics == result.metrics


def test_a_model_that_refuses_the_dataset_leaves_no_run_directory(dataset_dir, tmp_path):
    def refusing(name, **kwargs):
        return tiny_factory(name, **kwargs, prepare_error="this model needs captions")

    with pytest.raises(VreidError, match="needs captions"):
        run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), small_recipe(), tmp_path,
                     options=OPTIONS, progress=False, model_factory=refusing)
    assert not any(tmp_path.rglob("*"))


def test_eval_run_reproduces_the_metrics_and_writes_other_protocols_beside(trained):
    _, result = trained
    metrics = eval_run(result.run_dir, options=OPTIONS, progress=False, model_factory=tiny_factory)
    assert metrics["mAP"] == pytest.approx(result.metrics["mAP"], abs=1e-6)
    other = eval_run(result.run_dir, "all-tracklets", options=OPTIONS, progress=False, model_factory=tiny_factory)
    path = result.run_dir / "metrics-all-tracklets.json"
    assert json.loads(path.read_text())["protocol_hash"] == other["protocol_hash"] != metrics["protocol_hash"]
    assert other["num_valid_queries"] == 6


def test_saved_features_rescore_any_protocol_as_a_full_extraction_does(trained, dataset_dir, monkeypatch, tmp_path):
    from vreid_bench.engine.saved import load_features

    _, result = trained
    saved = load_features(result.run_dir / "features.npz")
    assert saved.query.dtype == np.float16 and len(saved.query) == 6 and saved.sampling == "dense"
    assert [str(i) for i in saved.query_ids] == [t.tracklet_id for t in load(dataset_dir).query]
    # Re-scoring needs neither the model nor the frames.
    monkeypatch.setattr(train_module, "default_model_factory", lambda *a, **k: pytest.fail("model built"))
    rescored = eval_run(result.run_dir, "all-tracklets", {"ap": "trapezoid"}, options=OPTIONS, progress=False)
    assert rescored["rescored_from"] == "features.npz" and rescored["protocol"] == "all-tracklets-custom"
    monkeypatch.undo()
    # A full re-extraction gives the same numbers.
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(result.run_dir, copy)
    (copy / "features.npz").unlink()
    extracted = eval_run(copy, "all-tracklets", {"ap": "trapezoid"}, options=OPTIONS, progress=False,
                         model_factory=tiny_factory)
    assert "rescored_from" not in extracted and (copy / "features.npz").is_file()  # saved for the next time
    for key in ("mAP", "cmc", "mINP", "query_ap", "query_first_rank", "num_valid_queries"):
        assert extracted[key] == rescored[key], key
    # The run's own protocol re-scored from its features reproduces its metrics exactly.
    own = eval_run(result.run_dir, options=OPTIONS, progress=False)
    assert own["mAP"] == result.metrics["mAP"] and own["cmc"] == result.metrics["cmc"]


def test_sensitivity_scores_every_one_choice_variant_as_a_direct_computation(trained, dataset_dir, tmp_path, capsys):
    import shutil

    from vreid_bench.engine.saved import load_features, storable
    from vreid_bench.engine.sensitivity import protocol_sensitivity, variants_of

    recipe, result = trained
    run = tmp_path / "run"
    shutil.copytree(result.run_dir, run)
    before = sorted(run.glob("metrics*.json"))
    rows = protocol_sensitivity(run, options=OPTIONS, progress=False, model_factory=tiny_factory)
    base = get_protocol("gallery-only")
    assert [row["change"] for row in rows] == [
        "the run's own protocol", "gallery: gallery → query+gallery", "AP: plain → trapezoid", "scope: all → video",
        "re-ranking: False → True", "test clips: dense → restricted_random"]
    assert rows[0]["mAP"] == result.metrics["mAP"] and rows[0]["delta_mAP"] == 0
    saved = load_features(run / "features.npz")
    dataset = load(dataset_dir)
    model = TinyReID(dataset.num_train_pids, (H, W))
    model.load_state_dict(torch.load(run / "model.pt", weights_only=True))
    for row, (change, protocol) in zip(rows[1:], variants_of(base, has_videos=True)):
        if protocol.test_sampling == "dense":
            direct = saved.evaluate(protocol)
        else:  # extract the restricted-random clips' features here, as stored
            with distributed_context("cpu") as ctx:
                feats = extract_features(model, [*dataset.query, *dataset.gallery], recipe.input,
                                         protocol.test_sampling, ctx.device, ctx).features
            stored = storable(feats).float()
            direct = evaluate_features(stored[:6], stored[6:], dataset.query, dataset.gallery, protocol)
        assert row["mAP"] == pytest.approx(direct.mAP, abs=1e-9), change
        assert row["R1"] == pytest.approx(float(direct.cmc[0]), abs=1e-9), change
        assert row["delta_mAP"] == pytest.approx(direct.mAP - rows[0]["mAP"], abs=1e-9), change
    assert (run / "features-restricted_random.npz").is_file() and (run / "sensitivity.json").is_file()
    assert sorted(run.glob("metrics*.json")) == before  # variants leave no result files behind
    assert main(["eval", str(run), "--sensitivity", "--device", "cpu", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "protocol sensitivity of run" in out and "re-ranking" in out and "trapezoid" in out


def test_export_hands_the_features_to_other_tools(trained, tmp_path, capsys):
    import csv as csv_module

    _, result = trained
    assert main(["export", str(result.run_dir), "--format", "csv", "--out", str(tmp_path / "f.csv")]) == 0
    rows = list(csv_module.reader((tmp_path / "f.csv").open()))
    assert rows[0][:5] == ["side", "tracklet_id", "pid", "camid", "video"] and len(rows[0]) == 5 + 16
    assert [r[0] for r in rows[1:]].count("query") == 6 and len(rows) == 1 + 6 + 18
    assert main(["export", str(result.run_dir), "--out", str(tmp_path / "f.npz")]) == 0
    with np.load(tmp_path / "f.npz") as data:
        assert data["query"].dtype == np.float32 and data["gallery"].shape == (18, 16)
        assert [str(p) for p in data["query_pids"]] == [r[2] for r in rows[1:7]]
        assert float(data["query"][0, 0]) == pytest.approx(float(rows[1][5]), rel=1e-5)
    assert main(["export", str(result.run_dir), "--format", "xls"]) == 2
    assert "use npz or csv" in capsys.readouterr().err


def test_resume_continues_exactly_as_an_uninterrupted_run(dataset_dir, tmp_path, monkeypatch):
    recipe = small_recipe("model.dropout=0.3", "augment.flip_p=0.5", "augment.erasing.p=0.5")
    options = replace(OPTIONS, workers=1, eval_every=1)
    protocol = get_protocol("gallery-only")
    straight = run_training("tiny", load(dataset_dir), protocol, recipe, tmp_path / "a", options=options,
                            progress=False, model_factory=tiny_factory)

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
        run_training("tiny", load(dataset_dir), protocol, recipe, tmp_path / "b", options=options, progress=False,
                     model_factory=tiny_factory)
    monkeypatch.setattr(train_module, "save_torch_atomic", original)
    interrupted_dir = saves[0].parent
    assert not (interrupted_dir / "metrics.json").exists()
    with pytest.raises(ConfigError, match="--resume"):
        run_training("tiny", load(dataset_dir), protocol, recipe, tmp_path / "b", options=options, progress=False,
                     model_factory=tiny_factory)
    resumed = run_training("tiny", load(dataset_dir), protocol, recipe, tmp_path / "b", options=options,
                           resume=True, progress=False, model_factory=tiny_factory)

    def log_without_times(run_dir):
        lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        return [{k: v for k, v in line.items() if k != "seconds"} for line in lines if line["event"] != "prepare"]

    log = log_without_times(resumed.run_dir)
    assert log == log_without_times(straight.run_dir)
    assert [line["epoch"] for line in log if line["event"] == "eval"] == [0]  # evaluation did not shift the streams
    weights_a = torch.load(straight.run_dir / "model.pt", weights_only=True)
    weights_b = torch.load(resumed.run_dir / "model.pt", weights_only=True)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert resumed.metrics["mAP"] == straight.metrics["mAP"]

    # The curves of the resumed run are the straight run's: every step once, with the same values.
    def without_times(text: str) -> list[dict[str, str]]:
        rows = list(csv.DictReader(io.StringIO(text)))
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert without_times((resumed.run_dir / "scalars.csv").read_text()) == without_times(
        (straight.run_dir / "scalars.csv").read_text())
    if importlib.util.find_spec("tensorboard") is not None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        curves = []
        for run_dir in (straight.run_dir, resumed.run_dir):
            events = EventAccumulator(str(run_dir / "tensorboard"))
            events.Reload()
            curves.append([(e.step, round(e.value, 6)) for e in events.Scalars("train/loss")])
        assert curves[1] == curves[0] and len({step for step, _ in curves[1]}) == len(curves[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_training_with_mixed_precision(dataset_dir, tmp_path, amp):
    recipe = small_recipe(f"amp={amp}", "grad_clip=5.0", epochs=10, lr=3e-2)
    options = replace(OPTIONS, device="cuda", keep_checkpoint=True)
    result = run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), recipe, tmp_path, options=options,
                          progress=False, model_factory=tiny_factory)
    losses = _epoch_losses(result.run_dir)
    assert losses[-1] < 0.5 * losses[0] and result.metrics["device"].startswith("cuda")
    assert result.metrics["mAP"] > 0.5
    checkpoint = torch.load(result.run_dir / "checkpoint.pt", weights_only=True)
    assert ("scale" in checkpoint["scaler"]) == (amp == "fp16")  # loss scaling only for float16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, dataset_dir: str, out: str, recipe: Recipe) -> None:
    import os

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), recipe, out, options=OPTIONS,
                 progress=False, model_factory=tiny_factory)


def test_two_gloo_processes_train_like_one_process_on_the_same_global_batch(dataset_dir, tmp_path):
    # No randomness in the data (evenly spaced frames, no augmentation), so both see the same global batches.
    recipe = small_recipe("sampler.frames=evenly", "augment.flip_p=0", "augment.erasing.p=0")
    single = run_training("tiny", load(dataset_dir), get_protocol("gallery-only"), recipe, tmp_path / "one",
                          options=OPTIONS, progress=False, model_factory=tiny_factory)
    # Forked from a fresh server (a process that has run autograd on a GPU machine cannot fork), which imports
    # the heavy modules once for both children.
    mp.set_forkserver_preload(["torch._dynamo", _ddp_worker.__module__])
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(dataset_dir), str(tmp_path / "two"), recipe),
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
    spec = small_recipe("input.seq_len=3").input
    torch.manual_seed(0)
    model = TinyReID(dataset.num_train_pids, (H, W)).eval()
    tracklets = dataset.query[:2] + dataset.gallery[:3]
    with distributed_context("cpu") as ctx:
        result = extract_features(model, tracklets, spec, "dense", ctx.device, ctx, batch_size=4)
    for i, tracklet in enumerate(tracklets):
        clips = EvalClips([tracklet], spec, "dense")
        one = torch.stack([clips[j][0] for j in range(len(clips))])  # 8 frames -> 3 clips of 3, last padded
        with torch.no_grad():
            expected = model(normalize_clips(one, spec), torch.zeros(len(one), dtype=torch.long)).mean(0)
        assert torch.allclose(result.features[i], expected, atol=1e-6)
    assert result.num_clips == 5 * 3 and result.clips_per_s > 0


def test_prepare_sees_labels_captions_and_every_training_clip(dataset_dir):
    dataset = load(dataset_dir)
    data = build_training_data(dataset, small_recipe().input, torch.device("cpu"), workers=0)
    assert data.num_ids == 6 and data.num_cams == 2 and len(data.tracklets) == len(data.labels) == 24
    assert sorted(data.captions) == list(range(6)) and data.captions[0] == ["person v0:0"] * 3
    seen = []
    for clips, labels, camids, index in data.iter_clips(5):
        assert clips.shape[1:] == (T, 3, H, W) and clips.dtype == torch.float32
        assert labels.tolist() == [data.labels[i] for i in index.tolist()]
        seen.extend(index.tolist())
    assert sorted(seen) == sorted(list(range(24)) * 2)  # 8 frames = 2 dense clips of 4


def test_warmup_then_steps_and_cosine():
    step = ScheduleSpec(warmup_epochs=10, warmup_factor=0.1, milestones=(30, 50, 70))
    assert lr_factor(0, step, 80) == pytest.approx(0.1)
    assert lr_factor(5, step, 80) == pytest.approx(0.55)
    assert [lr_factor(e, step, 80) for e in (10, 29, 30, 50, 79)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])
    cosine = ScheduleSpec(kind="cosine")
    assert lr_factor(0, cosine, 20) == 1 and lr_factor(10, cosine, 20) == pytest.approx(0.5)
    # CLIP-ReID steps its scheduler before each epoch: its first epoch trains at the factor of the second.
    early = ScheduleSpec(warmup_epochs=10, warmup_factor=0.1, milestones=(30, 50), offset=1)
    assert lr_factor(0, early, 60) == pytest.approx(0.19) and lr_factor(29, early, 60) == pytest.approx(0.1)


def test_protocol_keys_are_checked_and_a_changed_protocol_is_renamed():
    with pytest.raises(ConfigError, match="unknown protocol key 'size'.*ap"):
        apply_protocol_overrides(get_protocol("gallery-only"), {"size": 3})
    same = apply_protocol_overrides(get_protocol("gallery-only"), {"ap": "plain"})
    assert same == get_protocol("gallery-only")
    changed = apply_protocol_overrides(get_protocol("gallery-only"), {"rerank": "true"})
    assert changed.name == "gallery-only-custom" and changed.rerank is True


def test_run_directory_depends_on_results_not_on_runtime_settings(dataset_dir):
    dataset = DatasetRecord.of(load(dataset_dir))
    protocol = get_protocol("gallery-only")

    def folder(recipe: Recipe, seed: int = 0, pretrained: str | None = None):
        return run_dir_for("runs", RunRecord("tiny", dataset, protocol, recipe, seed, pretrained))

    base = small_recipe()
    assert folder(base) == folder(replace(base, name="renamed"))  # the recipe's name is not its content
    assert folder(base) != folder(base, seed=1)
    assert folder(base) != folder(base, pretrained="none")
    assert folder(base) != folder(small_recipe("model.dim=8"))
    assert folder(base) != folder(small_recipe("optimizer.lr=1e-3"))
    assert folder(base).parts[:2] == ("runs", "synthetic")


def test_cli_run_then_eval_on_a_toolkit_dataset(tmp_path, monkeypatch, capsys):
    from toolkit_fixture import make_toolkit_dataset

    root = make_toolkit_dataset(tmp_path / "data", videos=2, ids_per_video=3, cameras=2, frames=6)
    sets = [f"input.height={H}", f"input.width={W}", f"input.seq_len={T}", "sampler.ids_per_batch=2",
            "sampler.instances_per_id=2", "schedule.warmup_epochs=0", "protocol.rerank=true"]
    code = main(["run", "tiny", "--dataset", str(root), "--epochs", "2", "--device", "cpu", "--workers", "0",
                 "--out", str(tmp_path / "runs"), *[f"--set={item}" for item in sets]])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "mAP" in out and "R20" in out and "video-scope-custom" in out and "recipe tiny" in out
    [run_dir] = (tmp_path / "runs" / "fixture-sports").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["num_valid_queries"] == 3
    assert main(["eval", str(run_dir), "--protocol", "gallery-only", "--device", "cpu", "--workers", "0"]) == 0
    assert (run_dir / "metrics-gallery-only.json").is_file()
    assert main(["eval", str(run_dir), "--set", "optimizer.lr=1"]) == 2
    assert "keeps its recipe" in capsys.readouterr().err


def test_cli_prints_a_models_prepare_error_as_one_line(dataset_dir, tmp_path, monkeypatch, capsys):
    message = "dataset synthetic has no captions: make them with `vreid caption DATASET_DIR --captioner template`"
    monkeypatch.setattr(train_module, "default_model_factory",
                        lambda name, **kwargs: tiny_factory(name, **kwargs, prepare_error=message))
    code = main(["run", "tiny", "--dataset", str(dataset_dir), "--epochs", "1", "--device", "cpu",
                 "--out", str(tmp_path / "runs"), "--workers", "0", *[f"--set={item}" for item in SMALL_SETS]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "vreid caption DATASET_DIR --captioner template" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("item, message", [
    ("nope=1", "unknown recipe key 'nope': valid keys are name, epochs"),
    ("optimizer.lrr=1", "unknown recipe key 'optimizer.lrr': optimizer has name, lr"),
    ("epochs=ten", "epochs='ten': give an integer"),
    ("epochs=2.5", "epochs=2.5: give an integer"),
    ("amp=fp8", "amp='fp8': use one of bf16, fp16, off"),
    ("epochs", "--set takes key=value"),
    ("schedule.milestones=[5, 3]", "schedule.milestones=[5, 3] must be increasing"),
    ("model.nope=1", "model.nope is not a setting of model tiny"),
    ("augment.erasing.p=2", "augment.erasing.p=2.0 must be a probability"),
])
def test_cli_recipe_errors_are_one_line_and_write_nothing(dataset_dir, tmp_path, capsys, item, message):
    assert main(["run", "tiny", "--dataset", str(dataset_dir), "--out", str(tmp_path), "--set", item]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_models_command_lists_the_registry(capsys):
    from vreid_bench.models import list_models

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for info in list_models():
        assert info.name in out
