"""Weights of the authors' released code load into vreid's models and give the same test features.

The checkpoints are written here in the authors' key layout (TF-CLIP's ``model/make_model_clipreid.py``,
CLIP-ReID's ``model/make_model_clipreid.py``), from a vreid model with random weights, so the test needs no
download; the tiny backbone goes through the same code as ViT-B/16. (Against the authors' own model code on the same
random ViT-B/16 weights, the features agree to float32 rounding: see the project's issue notes.)
"""

from __future__ import annotations

import warnings

import pytest
import torch

from vreid_bench.errors import ConfigError
from vreid_bench.models import create
from vreid_bench.models.checkpoints import detect_format, from_checkpoint

SIZE = (256, 128)  # the reference recipes' input: 16 × 8 patches, as the authors' positional embedding holds
NUM_IDS, NUM_CAMS = 5, 3

pytestmark = pytest.mark.filterwarnings("ignore:.*random initialisation:UserWarning")


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Every weight and BN statistic away from its initial value, so a misplaced tensor shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith("running_var"):
                    tensor.copy_(torch.rand_like(tensor) + 0.5)
                else:
                    tensor.add_(0.05 * torch.randn_like(tensor))
    return model.eval()


def _ours(name: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return _randomised(create(name, num_ids=NUM_IDS, num_cams=NUM_CAMS, pretrained="none", image_size=SIZE,
                              seq_len=8, backbone="tiny", **options))


def tfclip_layout(model) -> dict[str, torch.Tensor]:
    """vreid's tfclip weights under the names TF-CLIP's build_transformer gives them."""
    state = model.state_dict()
    out = {f"image_encoder.{k.removeprefix('backbone.visual.')}": v for k, v in state.items()
           if k.startswith("backbone.visual.")}
    out["cv_embed"] = state["backbone.camera_embedding"]
    necks = {"bottleneck": "cls_neck.bn", "bottleneck_proj": "proj_neck.bn", "bottleneck_proj_temp2": "video_neck.bn",
             "bottleneck_proj_temp": "frame_neck.bn"}
    for theirs, ours in necks.items():
        for part in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            out[f"{theirs}.{part}"] = state[f"{ours}.{part}"]
    out["classifier2.weight"] = state["cls_neck.classifier.weight"]
    out["classifier_proj.weight"] = state["proj_neck.classifier.weight"]
    out["classifier_proj_temp.weight"] = state["video_neck.classifier.weight"]
    out["classifier_proj_temp2.weight"] = torch.randn_like(state["video_neck.classifier.weight"])  # unused by them
    tmd = {"message_fc": "message_fc", "message_ln": "message_norm", "ln_1": "attn_norm", "ln_2": "mlp_norm",
           "mlp.c_fc": "mlp.0", "mlp.c_proj": "mlp.2"}
    for theirs, ours in tmd.items():
        for part in ("weight", "bias"):
            out[f"TMD.resblocks.0.{theirs}.{part}"] = state[f"tmd.{ours}.{part}"]
    for attn in ("message_attn", "attn"):
        for part in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"):
            out[f"TMD.resblocks.0.{attn}.{part}"] = state[f"tmd.{attn}.{part}"]
    for theirs, ours in (("memory_proj", "visual_in"), ("text_proj", "memory_in"), ("out_proj", "memory_out")):
        for key, value in state.items():
            if key.startswith(f"ssp.{ours}."):
                out[f"SSP.{theirs}." + key.removeprefix(f"ssp.{ours}.")] = value
    out["SSP.alpha"] = torch.ones(state["ssp.memory_in.1.weight"].shape[0])
    for key in ("SSP.norm.weight", "SSP.norm.bias"):
        out[key] = torch.ones(state["ssp.memory_in.1.weight"].shape[0])
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("ssp.layers.")})
    for i in layers:
        ours, theirs = f"ssp.layers.{i}", f"SSP.decoder.{i}"
        for norm, name in (("norm1", "self_norm"), ("norm2", "cross_norm"), ("norm3", "mlp_norm")):
            out[f"{theirs}.{norm}.weight"] = state[f"{ours}.{name}.weight"]
            out[f"{theirs}.{norm}.bias"] = state[f"{ours}.{name}.bias"]
        for attn in ("self_attn", "cross_attn"):
            q, k, v = state[f"{ours}.{attn}.in_proj_weight"].chunk(3)
            out.update({f"{theirs}.{attn}.q_proj.weight": q, f"{theirs}.{attn}.k_proj.weight": k,
                        f"{theirs}.{attn}.v_proj.weight": v,
                        f"{theirs}.{attn}.proj.weight": state[f"{ours}.{attn}.out_proj.weight"],
                        f"{theirs}.{attn}.proj.bias": state[f"{ours}.{attn}.out_proj.bias"]})
        for index in (0, 3):
            for part in ("weight", "bias"):
                out[f"{theirs}.mlp.{index}.{part}"] = state[f"{ours}.mlp.{index}.{part}"]
    return out


def clipreid_layout(model, camera: bool) -> dict[str, torch.Tensor]:
    """vreid's clipreid weights under the names CLIP-ReID's build_transformer gives them."""
    state = model.state_dict()
    out = {f"image_encoder.{k.removeprefix('backbone.visual.')}": v for k, v in state.items()
           if k.startswith("backbone.visual.")}
    if camera:
        out["cv_embed"] = state["backbone.camera_embedding"]
    out.update({f"text_encoder.{k.removeprefix('backbone.text.')}": v for k, v in state.items()
                if k.startswith("backbone.text.") and "token_embedding" not in k})
    out["prompt_learner.cls_ctx"] = state["prompts.context"]
    out["prompt_learner.token_prefix"] = torch.zeros(NUM_IDS, 1, 64)
    out["prompt_learner.token_suffix"] = torch.zeros(NUM_IDS, 72, 64)
    for theirs, ours in (("bottleneck", "cls_neck.bn"), ("bottleneck_proj", "proj_neck.bn")):
        for part in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            out[f"{theirs}.{part}"] = state[f"{ours}.{part}"]
    out["classifier.weight"] = state["cls_neck.classifier.weight"]
    out["classifier_proj.weight"] = state["proj_neck.classifier.weight"]
    return out


def _clips(seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 8, 3, *SIZE, generator=generator), torch.tensor([0, 2])


def test_an_authors_tfclip_checkpoint_gives_our_features(tmp_path):
    ours = _ours("tfclip")
    path = tmp_path / "tfclip_best.pth"
    torch.save({f"module.{k}": v for k, v in tfclip_layout(ours).items()}, path)  # as saved from DDP
    loaded = from_checkpoint(path)
    assert (loaded.name, loaded.format, loaded.num_ids, loaded.num_cams) == ("tfclip", "tfclip", NUM_IDS, NUM_CAMS)
    clips, camids = _clips()
    with torch.no_grad():
        assert torch.equal(loaded.model(clips, camids), ours(clips, camids))
    # The q/k/v of their bias-free decoder attention are joined into one projection.
    layer = loaded.model.ssp.layers[0].cross_attn
    assert torch.equal(layer.in_proj_weight, ours.ssp.layers[0].cross_attn.in_proj_weight)
    assert not layer.in_proj_bias.any()
    assert loaded.model.frame_neck.classifier is loaded.model.video_neck.classifier  # classifier_proj_temp, shared


@pytest.mark.parametrize("camera", [False, True])
def test_an_authors_clipreid_checkpoint_gives_our_features(tmp_path, camera):
    ours = _ours("clipreid", camera_embedding=camera, camera_scale=3.0)
    path = tmp_path / "ViT-B-16_60.pth"
    torch.save(clipreid_layout(ours, camera), path)
    loaded = from_checkpoint(path, "CLIP-ReID")
    assert (loaded.name, loaded.num_cams) == ("clipreid", NUM_CAMS if camera else 0)
    clips, camids = _clips()
    with torch.no_grad():
        assert torch.equal(loaded.model(clips, camids), ours(clips, camids))


def test_a_vreid_run_directory_loads_by_its_config(tmp_path):
    from recipes import tiny_recipe
    from toolkit_fixture import make_toolkit_dataset
    from vreid_bench.datasets import load
    from vreid_bench.engine.config import RunOptions
    from vreid_bench.engine.train import evaluate_checkpoint, run_training
    from vreid_bench.protocol import get_protocol

    dataset = load(make_toolkit_dataset(tmp_path / "data", crop_size=(32, 16)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_training("tfclip", dataset, get_protocol("video-scope"), tiny_recipe("tfclip", (32, 16), 2),
                              tmp_path / "runs", pretrained="none", options=RunOptions(workers=0, device="cpu"),
                              progress=False)
    loaded = from_checkpoint(result.run_dir)
    assert loaded.format == "vreid" and loaded.name == "tfclip" and loaded.recipe.input.height == 32
    again = evaluate_checkpoint(result.run_dir / "model.pt", dataset, get_protocol("video-scope"),
                                options=RunOptions(workers=0, device="cpu"), progress=False)
    assert again["mAP"] == pytest.approx(result.metrics["mAP"], abs=1e-6) and again["weights_format"] == "vreid"


def test_checkpoint_errors_name_the_problem_and_the_known_formats(tmp_path):
    unknown = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}, unknown)
    with pytest.raises(ConfigError, match="no known format.*tfclip \\(a TF-CLIP state dict.*clipreid"):
        from_checkpoint(unknown)
    state = tfclip_layout(_ours("tfclip"))
    assert detect_format(state) == "tfclip"
    path = tmp_path / "tfclip.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError, match="is a tfclip checkpoint.*not one of model clipreid"):
        from_checkpoint(path, "clipreid")
    wrong = dict(state, **{"classifier_proj.weight": torch.zeros(NUM_IDS + 2, 32)})
    torch.save(wrong, path)
    with pytest.raises(ConfigError, match="does not fit model tfclip.*proj_neck.classifier.weight has shape"):
        from_checkpoint(path)
    torch.save({**state, "SAT.blocks.0.weight": torch.zeros(3)}, path)
    with pytest.raises(ConfigError, match="keys vreid does not map \\(SAT.blocks.0.weight\\)"):
        from_checkpoint(path)
    torch.save(state, path)
    with pytest.raises(ConfigError, match="positional embedding has 128 patches.*224×112 gives 98"):
        from_checkpoint(path, recipe=_recipe_at(224, 112))
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="could not read"):
        from_checkpoint(tmp_path / "notes.txt")


def _recipe_at(height: int, width: int):
    from vreid_bench.recipe import reference_recipe

    return reference_recipe("tfclip", sets=[f"input.height={height}", f"input.width={width}"])


def test_cli_evaluates_an_authors_checkpoint_without_a_run_directory(tmp_path, capsys):
    from toolkit_fixture import make_toolkit_dataset
    from vreid_bench.cli import main

    root = make_toolkit_dataset(tmp_path / "data", videos=2, ids_per_video=3, cameras=2, frames=4)
    torch.manual_seed(0)
    ours = _randomised(create("tfclip", num_ids=NUM_IDS, num_cams=2, pretrained="none", image_size=SIZE, seq_len=8,
                              backbone="tiny"))
    path = tmp_path / "tfclip.pth"
    torch.save(tfclip_layout(ours), path)
    out = tmp_path / "metrics.json"
    code = main(["eval", "--weights", str(path), "--model", "tfclip", "--dataset", str(root), "--device", "cpu",
                 "--workers", "0", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "tfclip (tfclip weights)" in printed and "mAP" in printed
    import json

    metrics = json.loads(out.read_text())
    assert metrics["weights_format"] == "tfclip" and metrics["protocol"] == "video-scope" and 0 <= metrics["mAP"] <= 1
    assert main(["eval", "--weights", str(path)]) == 2
    assert "--weights needs --dataset" in capsys.readouterr().err
