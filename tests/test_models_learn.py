"""Every registered model, in its tiny configuration, learns identities through the real harness.

The synthetic set has identity signal only in a small torso patch, over a camera-coloured background, so an
untrained model ranks same-camera strangers first. The bar is the untrained model's mAP under the same protocol.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from toolkit_fixture import write_identity_dataset
from vreid_bench.datasets import load
from vreid_bench.engine.config import apply_protocol_overrides, config_from_dict
from vreid_bench.engine.distributed import distributed_context
from vreid_bench.engine.features import extract_features
from vreid_bench.engine.train import run_training
from vreid_bench.evaluation import evaluate_features
from vreid_bench.models import create
from vreid_bench.protocol import get_protocol

H, W, T = 32, 16, 4
PROTOCOL = {"height": H, "width": W, "seq_len": T, "num_ids_per_batch": 3, "num_tracklets_per_id": 4}
MODELS = {
    # model: (overrides, epochs, lr)
    "cgclip": ({"backbone": "tiny"}, 12, 1e-3),
    "tfclip": ({"backbone": "tiny"}, 12, 1e-3),
    "clipreid": ({"backbone": "tiny", "stage1_epochs": 5, "stage1_batch_size": 8}, 12, 1e-3),
    "clip-tap": ({"backbone": "tiny"}, 12, 1e-3),
    "resnet-tap": ({"backbone": "tiny"}, 12, 1e-3),
}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = write_identity_dataset(tmp_path_factory.mktemp("data"), H, W)
    with (root / "captions.jsonl").open("w") as handle:  # CG-CLIP trains with a caption for every identity
        for line in (root / "tracklets.csv").read_text().splitlines()[1:]:
            tracklet_id, pid = line.split(",")[:2]
            handle.write(json.dumps({"tracklet_id": tracklet_id, "caption": f"the person called {pid}"}) + "\n")
    return root


def _untrained_map(name: str, overrides: dict, dataset, protocol) -> float:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create(name, num_ids=dataset.num_train_pids, num_cams=dataset.num_cams, pretrained="none",
                       image_size=(H, W), seq_len=T, **overrides)
    with distributed_context("cpu") as ctx:
        feats = extract_features(model.eval(), [*dataset.query, *dataset.gallery], protocol, ctx.device, ctx).features
    nq = len(dataset.query)
    return evaluate_features(feats[:nq], feats[nq:], dataset.query, dataset.gallery, protocol).mAP


@pytest.mark.parametrize("name", list(MODELS))
def test_short_training_beats_the_untrained_model(name, dataset_dir, tmp_path):
    overrides, epochs, lr = MODELS[name]
    config = config_from_dict({"epochs": epochs, "lr": lr, "warmup_epochs": 0, "milestones": [], "workers": 0,
                               "device": "cpu", "pretrained": "none", "model": overrides, "protocol": PROTOCOL})
    dataset = load(dataset_dir)
    protocol = apply_protocol_overrides(get_protocol("vreid-p1"), PROTOCOL)
    untrained = _untrained_map(name, overrides, dataset, protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_training(name, dataset, get_protocol("vreid-p1"), config, tmp_path, progress=False)
    losses = [json.loads(line)["loss"] for line in (result.run_dir / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]
    assert losses[-1] < losses[0]
    print(f"{name}: untrained mAP {untrained:.3f}, trained {result.metrics['mAP']:.3f}")
    assert result.metrics["mAP"] > untrained + 0.15, (untrained, result.metrics["mAP"])
