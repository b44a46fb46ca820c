"""The passes before training (TF-CLIP's memory, CG-CLIP's prototypes, CLIP-ReID's stage-1 features): sharded over
DDP processes with the same result as one process, and never repeated on resume."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from recipes import tiny_recipe
from toolkit_fixture import write_identity_dataset
from vreid_bench.datasets import load
from vreid_bench.engine import train as train_module
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.distributed import distributed_context
from vreid_bench.engine.train import build_training_data, run_training
from vreid_bench.models import create
from vreid_bench.protocol import get_protocol

H, W, T = 32, 16, 2
OPTIONS = RunOptions(workers=0, device="cpu")
EXTRA = {"clipreid": ("stages.prompts.epochs=2",), "cgclip": ("model.caption_source=placeholder",)}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return write_identity_dataset(tmp_path_factory.mktemp("data"), H, W, train_ids=5, per_camera=3, frames=5)


def prepared_state(model_name: str, dataset_dir: str, ctx_device: str = "cpu") -> dict[str, torch.Tensor]:
    """The model's state after ``prepare`` in this process (one of several under DDP)."""
    dataset = load(dataset_dir)
    recipe = tiny_recipe(model_name, (H, W), T, *EXTRA.get(model_name, ()))
    with distributed_context(ctx_device) as ctx:
        torch.manual_seed(0)
        model = create(model_name, num_ids=dataset.num_train_pids, num_cams=dataset.num_cams, pretrained="none",
                       image_size=(H, W), seq_len=T, **recipe.model)
        stages = train_module.stage_settings_for(model_name, recipe)
        model.prepare(build_training_data(dataset, recipe.input, ctx.device, 0, stages, ctx))
        return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int, port: int, model_name: str, dataset_dir: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    state = prepared_state(model_name, dataset_dir)
    if rank == 0:
        torch.save(state, out)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BUFFERS = {"tfclip": ("memory",), "cgclip": ("image_memory", "text_memory"), "clipreid": ("text_features",)}


@pytest.mark.parametrize("model_name", ["tfclip", "cgclip", "clipreid"])
def test_two_gloo_processes_compute_the_pass_of_one(model_name, dataset_dir, tmp_path):
    single = prepared_state(model_name, str(dataset_dir))
    mp.set_forkserver_preload(["torch._dynamo", _worker.__module__])
    out = tmp_path / "rank0.pt"
    mp.start_processes(_worker, args=(2, _free_port(), model_name, str(dataset_dir), str(out)), nprocs=2,
                       start_method="forkserver")
    sharded = torch.load(out, weights_only=True)
    for name in BUFFERS[model_name]:
        assert torch.allclose(single[name], sharded[name], atol=1e-5), name


def test_a_resumed_run_skips_the_pass_and_ends_like_an_uninterrupted_one(dataset_dir, tmp_path, monkeypatch):
    recipe = tiny_recipe("tfclip", (H, W), T, "augment.erasing.p=0", epochs=2)
    protocol = get_protocol("gallery-only")
    straight = run_training("tfclip", load(dataset_dir), protocol, recipe, tmp_path / "a", pretrained="none",
                            options=OPTIONS, progress=False)

    original = train_module.save_torch_atomic
    saves = []

    def crash_at_second_checkpoint(obj, path):
        if path.name == "checkpoint.pt":
            saves.append(path)
            if len(saves) == 2:
                raise KeyboardInterrupt
        original(obj, path)

    monkeypatch.setattr(train_module, "save_torch_atomic", crash_at_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_training("tfclip", load(dataset_dir), protocol, recipe, tmp_path / "b", pretrained="none",
                     options=OPTIONS, progress=False)
    monkeypatch.setattr(train_module, "save_torch_atomic", original)

    import baselines.tfclip as tfclip_module

    passes = []
    monkeypatch.setattr(tfclip_module.TFCLIP, "prepare", lambda self, data: passes.append(data))
    resumed = run_training("tfclip", load(dataset_dir), protocol, recipe, tmp_path / "b", pretrained="none",
                           options=OPTIONS, resume=True, progress=False)
    assert passes == []  # the memory came from the checkpoint, not from a pass
    log = [json.loads(line) for line in (resumed.run_dir / "log.jsonl").read_text().splitlines()]
    prepares = [line for line in log if line["event"] == "prepare"]
    assert prepares[0]["epoch"] == -1 and prepares[-1] == {"event": "prepare", "epoch": 1,
                                                           "skipped": "restored from the checkpoint"}
    assert resumed.metrics["mAP"] == straight.metrics["mAP"]
    a = torch.load(straight.run_dir / "model.pt", weights_only=True)
    b = torch.load(resumed.run_dir / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
