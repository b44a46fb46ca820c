"""Every registered model, with its own reference recipe shrunk to test size, learns identities through the harness.

The synthetic set has identity signal only in a small torso patch, over a camera-coloured background, so an
untrained model ranks same-camera strangers first. The bar is the untrained model's mAP under the same protocol.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from recipes import tiny_recipe
from toolkit_fixture import write_identity_dataset
from vreid_bench.datasets import load
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.distributed import distributed_context
from vreid_bench.engine.features import extract_features
from vreid_bench.engine.train import run_training
from vreid_bench.evaluation import evaluate_features
from vreid_bench.models import create
from vreid_bench.protocol import get_protocol

H, W, T = 32, 16, 4
MODELS = {
    # model: (recipe changes beyond the test size, epochs)
    "cgclip": ((), 12),
    "tfclip": ((), 12),
    # CLIP-ReID's recipe pads 10 pixels of a 256×128 frame; scaled to the 32×16 test frame that is 1
    "clipreid": (("stages.prompts.epochs=5", "stages.prompts.batch_size=8", "augment.pad=1"), 12),
    "clip-tap": (("augment.pad=1",), 12),
    "resnet-tap": ((), 24),  # one group of K per identity per epoch (its recipe's sampler): fewer steps an epoch
}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = write_identity_dataset(tmp_path_factory.mktemp("data"), H, W)
    with (root / "captions.jsonl").open("w") as handle:  # CG-CLIP trains with a caption for every identity
        for line in (root / "tracklets.csv").read_text().splitlines()[1:]:
            tracklet_id, pid = line.split(",")[:2]
            handle.write(json.dumps({"tracklet_id": tracklet_id, "caption": f"the person called {pid}"}) + "\n")
    return root


def _untrained_map(name: str, recipe, dataset, protocol) -> float:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create(name, num_ids=dataset.num_train_pids, num_cams=dataset.num_cams, pretrained="none",
                       image_size=(H, W), seq_len=T, **recipe.model)
    with distributed_context("cpu") as ctx:
        feats = extract_features(model.eval(), [*dataset.query, *dataset.gallery], recipe.input, "dense", ctx.device,
                                 ctx).features
    nq = len(dataset.query)
    return evaluate_features(feats[:nq], feats[nq:], dataset.query, dataset.gallery, protocol).mAP


@pytest.mark.parametrize("name", list(MODELS))
def test_short_training_beats_the_untrained_model(name, dataset_dir, tmp_path):
    changes, epochs = MODELS[name]
    recipe = tiny_recipe(name, (H, W), T, *changes, ids=3, instances=4, epochs=epochs, lr=1e-3)
    dataset = load(dataset_dir)
    protocol = get_protocol("gallery-only")
    untrained = _untrained_map(name, recipe, dataset, protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_training(name, dataset, protocol, recipe, tmp_path, pretrained="none",
                              options=RunOptions(workers=0, device="cpu"), progress=False)
    losses = [json.loads(line)["loss"] for line in (result.run_dir / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]
    assert losses[-1] < losses[0]
    print(f"{name}: untrained mAP {untrained:.3f}, trained {result.metrics['mAP']:.3f}")
    assert result.metrics["mAP"] > untrained + 0.15, (untrained, result.metrics["mAP"])
