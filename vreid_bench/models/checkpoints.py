"""Trained weights into an eval-ready model: vreid's own runs, and checkpoints of the authors' released code.

:func:`from_checkpoint` recognises a file by its keys:

- ``vreid``: a run's ``model.pt`` or ``checkpoint.pt`` (the run's ``config.yaml`` beside it says which model);
- ``tfclip``: a state dict saved by TF-CLIP's code (github.com/AsuradaYuci/TF-CLIP: ``TMD.resblocks.0.*``,
  ``SSP.*``, ``image_encoder.*``, ``cv_embed``);
- ``clipreid``: a state dict saved by CLIP-ReID's code (github.com/Syliz517/CLIP-ReID: ``prompt_learner.cls_ctx``,
  ``text_encoder.*``, ``image_encoder.*``).

Identities and cameras are read from tensor shapes, the input size from the positional embedding and the
reference recipe. The key maps below are how a user checks that vreid's TF-CLIP is the authors' TF-CLIP: the same
weights give the same test features. Memories and text features live outside the authors' models (TF-CLIP's
CLIP-Memory, CLIP-ReID's cached text features) and are not needed at inference, so the loaded model is for
evaluation; training it further starts by building them again.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vreid_bench.errors import ConfigError
from vreid_bench.models.base import ReIDModel

FORMATS = ("vreid", "tfclip", "clipreid")
FORMAT_NOTES = {
    "vreid": "a vreid run's model.pt or checkpoint.pt (with the run's config.yaml beside it)",
    "tfclip": "a TF-CLIP state dict (AsuradaYuci/TF-CLIP: TMD.*, SSP.*, image_encoder.*)",
    "clipreid": "a CLIP-ReID state dict (Syliz517/CLIP-ReID: prompt_learner.*, text_encoder.*, image_encoder.*)",
}

# TF-CLIP's names -> vreid's (model/make_model_clipreid.py of the reference).
TFCLIP_NECKS = {"bottleneck": "cls_neck.bn", "bottleneck_proj": "proj_neck.bn",
                "bottleneck_proj_temp2": "video_neck.bn", "bottleneck_proj_temp": "frame_neck.bn",
                "classifier2": "cls_neck.classifier",
                "classifier_proj": "proj_neck.classifier", "classifier_proj_temp": "video_neck.classifier"}
TFCLIP_TMD = {"message_fc": "message_fc", "message_ln": "message_norm", "message_attn": "message_attn", "attn": "attn",
              "ln_1": "attn_norm", "ln_2": "mlp_norm", "mlp.c_fc": "mlp.0", "mlp.c_proj": "mlp.2"}
TFCLIP_SSP = {"memory_proj": "visual_in", "text_proj": "memory_in", "out_proj": "memory_out"}
TFCLIP_UNUSED = ("classifier_proj_temp2.", "SSP.alpha", "SSP.norm.")
TFCLIP_KNOWN = ("image_encoder.", "cv_embed", "TMD.resblocks.0.", "SSP.", *(f"{k}." for k in TFCLIP_NECKS),
                *TFCLIP_UNUSED)
CLIPREID_NECKS = {"bottleneck": "cls_neck.bn", "bottleneck_proj": "proj_neck.bn", "classifier": "cls_neck.classifier",
                  "classifier_proj": "proj_neck.classifier"}
CLIPREID_KNOWN = ("image_encoder.", "cv_embed", "text_encoder.", "prompt_learner.", *(f"{k}." for k in CLIPREID_NECKS))


def _check_keys(state: dict[str, Tensor], known: tuple[str, ...], fmt: str) -> None:
    """Every key of an authors' checkpoint is one the map knows: a variant of their model is refused, not half read."""
    unknown = [key for key in state if not key.startswith(known) and key not in known]
    if unknown:
        raise ConfigError(f"this {fmt} checkpoint has keys vreid does not map ({', '.join(unknown[:3])}): it is "
                          f"a variant of the released model; only the released {fmt} architecture loads")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What a file held: the model built from it, its format, and the recipe its input follows."""

    model: ReIDModel
    name: str
    format: str
    num_ids: int
    num_cams: int
    recipe: Any  # vreid_bench.recipe.Recipe


def detect_format(state: dict[str, Any]) -> str | None:
    """``vreid``, ``tfclip``, ``clipreid`` or None, from the keys of a (prefix-stripped) state dict."""
    keys = set(state)
    if "TMD.resblocks.0.message_fc.weight" in keys and any(k.startswith("image_encoder.") for k in keys):
        return "tfclip"
    if "prompt_learner.cls_ctx" in keys and any(k.startswith("image_encoder.") for k in keys):
        return "clipreid"
    if any(k.startswith(("backbone.", "trunk.")) for k in keys):
        return "vreid"
    return None


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A state dict from ``path``: ``state_dict`` / ``model`` wrappers and DDP's ``module.`` prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist; give the path of a weights file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file: the user gave the wrong path
        raise ConfigError(f"could not read {path} as a torch checkpoint ({type(exc).__name__}); give a state dict "
                          "saved with torch.save") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict) or not any(isinstance(v, Tensor) for v in loaded.values()):
        raise ConfigError(f"{path} holds no state dict; known formats: {_known()}")
    return {key.removeprefix("module."): value for key, value in loaded.items() if isinstance(value, Tensor)}


def _known() -> str:
    return "; ".join(f"{name} ({note})" for name, note in FORMAT_NOTES.items())


def from_checkpoint(path: str | os.PathLike[str], name: str | None = None, device: str | torch.device = "cpu",
                    recipe: Any = None) -> LoadedCheckpoint:
    """An eval-ready model from ``path``; ``name`` (``tfclip``, ``clipreid`` ...) must agree with the file.

    ``recipe``: the recipe whose input (size, clip length) the model is built for; default the model's reference
    recipe (or the run's own, for a vreid run).
    """
    from vreid_bench.models import get_model_entry

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    state = read_checkpoint(path)
    fmt = detect_format(state)
    if fmt is None:
        raise ConfigError(f"{path} is a checkpoint of no known format (first keys: {', '.join(list(state)[:3])}); "
                          f"known formats: {_known()}")
    wanted = get_model_entry(name).name if name is not None else None
    if fmt == "vreid":
        return _from_vreid_run(path, state, wanted, device)
    if wanted is not None and wanted != fmt:
        raise ConfigError(f"{path} is a {fmt} checkpoint ({FORMAT_NOTES[fmt]}), not one of model {wanted}; "
                          f"evaluate it with --model {fmt}")
    return _from_authors(AUTHORS_FORMATS[fmt], state, device, recipe)


def _from_vreid_run(path: Path, state: dict[str, Tensor], wanted: str | None,
                    device: str | torch.device) -> LoadedCheckpoint:
    from vreid_bench.engine.rundir import CONFIG_FILE, read_run_config
    from vreid_bench.models import create

    if not (path.parent / CONFIG_FILE).is_file():
        raise ConfigError(f"{path} holds vreid weights but no {CONFIG_FILE} is beside it: give the run directory "
                          "`vreid run` wrote (its config says which model and settings they belong to)")
    record = read_run_config(path.parent)
    if wanted is not None and wanted != record.model:
        raise ConfigError(f"{path} holds weights of model {record.model}, not {wanted}; use --model {record.model}")
    num_ids, num_cams = _vreid_counts(state)
    spec = record.recipe.input
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random initialisation on purpose: the weights replace it
        model = create(record.model, num_ids=num_ids, num_cams=num_cams, pretrained="none",
                       image_size=(spec.height, spec.width), seq_len=spec.seq_len, **record.recipe.model)
    _load_into(model, state, path, record.model)
    return LoadedCheckpoint(model.to(device).eval(), record.model, "vreid", num_ids, num_cams, record.recipe)


def _vreid_counts(state: dict[str, Tensor]) -> tuple[int, int]:
    classifiers = [v for k, v in state.items() if k.endswith("classifier.weight") or k == "neck.weight"]
    if not classifiers:
        raise ConfigError("the checkpoint has no identity classifier; it is not a trained vreid model")
    camera = state.get("backbone.camera_embedding")
    return int(classifiers[0].shape[0]), int(camera.shape[0]) if camera is not None else 0


def _load_into(model: ReIDModel, state: dict[str, Tensor], path: Path, name: str) -> None:
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and expected[k].shape != v.shape]
    missing = [k for k in expected if k not in state]
    if wrong or missing:
        key = (wrong or missing)[0]
        what = (f"{key} has shape {tuple(state[key].shape)}, the model expects {tuple(expected[key].shape)}" if wrong
                else f"{key} is missing")
        raise ConfigError(f"{path} does not fit model {name} ({what}); give a checkpoint of this model, built for "
                          "the same backbone and input size")
    model.load_state_dict({k: v for k, v in state.items() if k in expected})


def _image_size(positions: Tensor, patch: int, recipe: Any, name: str) -> tuple[int, int]:
    """The input (H, W) of a checkpoint: the recipe's size, which must give its number of patches."""
    tokens = positions.shape[0] - 1
    size = (recipe.input.height, recipe.input.width)
    if (size[0] // patch) * (size[1] // patch) != tokens:
        raise ConfigError(f"the checkpoint's positional embedding has {tokens} patches, but {name}'s recipe input "
                          f"{size[0]}×{size[1]} gives {(size[0] // patch) * (size[1] // patch)}; pass the recipe "
                          f"it was trained with (e.g. --set input.height=... input.width=...)")
    return size


def _visual(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"backbone.visual.{k.removeprefix('image_encoder.')}": v for k, v in state.items()
            if k.startswith("image_encoder.")}


def _backbone(visual: dict[str, Tensor], fmt: str) -> tuple[str, int]:
    """The backbone name (``ViT-B-16``, or ``tiny`` for tests) and patch size of an image encoder's weights."""
    from vreid_bench.models.configs import TINY_CLIP

    width = visual["backbone.visual.conv1.weight"].shape[0]
    patch = visual["backbone.visual.conv1.weight"].shape[-1]
    layers = 1 + max(int(k.split(".")[4]) for k in visual if k.startswith("backbone.visual.transformer.resblocks."))
    known = {(768, 16, 12): "ViT-B-16", (TINY_CLIP.vision.width, TINY_CLIP.vision.patch_size, TINY_CLIP.vision.layers):
             TINY_CLIP.name}
    if (width, patch, layers) not in known:
        raise ConfigError(f"this {fmt} checkpoint's image encoder is {layers} layers of width {width} with "
                          f"{patch}-pixel patches; vreid maps the authors' ViT-B/16 (12 × 768, patch 16)")
    return known[(width, patch, layers)], patch


def _build(name: str, num_ids: int, num_cams: int, size: tuple[int, int], recipe: Any, **changes: Any) -> ReIDModel:
    from vreid_bench.models import create

    options = {**recipe.model, **changes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random initialisation on purpose: the checkpoint replaces it
        return create(name, num_ids=num_ids, num_cams=num_cams, pretrained="none", image_size=size,
                      seq_len=recipe.input.seq_len, **options)


def _neck(state: dict[str, Tensor], names: dict[str, str]) -> dict[str, Tensor]:
    mapped = {}
    for theirs, ours in names.items():
        for key, value in state.items():
            if key.startswith(theirs + "."):
                mapped[ours + key[len(theirs):]] = value
    return mapped


def tfclip_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """TF-CLIP's state dict in vreid's ``tfclip`` key layout (see the module docstring)."""
    mapped = _visual(state)
    if "cv_embed" in state:
        mapped["backbone.camera_embedding"] = state["cv_embed"]
    mapped.update(_neck(state, TFCLIP_NECKS))
    mapped.update({k.replace("video_neck.classifier", "frame_neck.classifier"): v for k, v in mapped.items()
                   if k.startswith("video_neck.classifier")})  # one classifier scores videos and frames
    for theirs, ours in TFCLIP_TMD.items():
        for suffix in ("weight", "bias", "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"):
            key = f"TMD.resblocks.0.{theirs}.{suffix}"
            if key in state:
                mapped[f"tmd.{ours}.{suffix}"] = state[key]
    for theirs, ours in TFCLIP_SSP.items():
        for key, value in state.items():
            if key.startswith(f"SSP.{theirs}."):
                mapped[f"ssp.{ours}." + key[len(f"SSP.{theirs}."):]] = value
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("SSP.decoder.")})
    for i in layers:
        ours, theirs = f"ssp.layers.{i}", f"SSP.decoder.{i}"
        for norm, name in (("norm1", "self_norm"), ("norm2", "cross_norm"), ("norm3", "mlp_norm")):
            mapped[f"{ours}.{name}.weight"] = state[f"{theirs}.{norm}.weight"]
            mapped[f"{ours}.{name}.bias"] = state[f"{theirs}.{norm}.bias"]
        for attn in ("self_attn", "cross_attn"):
            q, k, v = (state[f"{theirs}.{attn}.{p}_proj.weight"] for p in "qkv")
            mapped[f"{ours}.{attn}.in_proj_weight"] = torch.cat([q, k, v])
            mapped[f"{ours}.{attn}.in_proj_bias"] = torch.zeros(3 * q.shape[0], dtype=q.dtype)  # bias-free q/k/v
            mapped[f"{ours}.{attn}.out_proj.weight"] = state[f"{theirs}.{attn}.proj.weight"]
            mapped[f"{ours}.{attn}.out_proj.bias"] = state[f"{theirs}.{attn}.proj.bias"]
        for index in (0, 3):
            for part in ("weight", "bias"):
                mapped[f"{ours}.mlp.{index}.{part}"] = state[f"{theirs}.mlp.{index}.{part}"]
    return mapped


def clipreid_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """CLIP-ReID's state dict in vreid's ``clipreid`` key layout (the text tower's token embedding excepted)."""
    mapped = _visual(state)
    if "cv_embed" in state:
        mapped["backbone.camera_embedding"] = state["cv_embed"]
    mapped.update(_neck(state, CLIPREID_NECKS))
    for key, value in state.items():
        if key.startswith("text_encoder."):
            mapped["backbone.text." + key.removeprefix("text_encoder.")] = value
    mapped["prompts.context"] = state["prompt_learner.cls_ctx"]
    return mapped


@dataclass(frozen=True)
class AuthorsFormat:
    """How one authors' checkpoint maps onto a vreid model: its known keys, the key map, the classifier whose rows
    count the identities, the vreid tensors their model keeps elsewhere, and the model options its shapes fix."""

    model: str
    label: str
    known: tuple[str, ...]
    to_vreid: Callable[[dict[str, Tensor]], dict[str, Tensor]]
    classifier: str
    kept_outside: tuple[str, ...]
    options: Callable[[dict[str, Tensor]], dict[str, Any]]


AUTHORS_FORMATS = {
    # TF-CLIP keeps its CLIP-Memory outside the model.
    "tfclip": AuthorsFormat("tfclip", "TF-CLIP", TFCLIP_KNOWN, tfclip_state_dict, "classifier2.weight",
                            ("memory", "memory_built"),
                            lambda state: {"frame_classifier": "shared", "ssp_layers": max(1, len(
                                {k.split(".")[2] for k in state if k.startswith("SSP.decoder.")}))}),
    # CLIP-ReID's prompt learner copies the token embedding from CLIP at start-up and computes the text features at
    # the start of stage 2; neither takes part in the test feature.
    "clipreid": AuthorsFormat("clipreid", "CLIP-ReID", CLIPREID_KNOWN, clipreid_state_dict, "classifier.weight",
                              ("backbone.text.token_embedding.weight", "text_features", "prompts_learned"),
                              lambda state: {}),
}


def _from_authors(fmt: AuthorsFormat, state: dict[str, Tensor], device: str | torch.device,
                  recipe: Any) -> LoadedCheckpoint:
    from vreid_bench.recipe import reference_recipe

    recipe = recipe or reference_recipe(fmt.model)
    _check_keys(state, fmt.known, fmt.label)
    mapped = fmt.to_vreid(state)
    backbone, patch = _backbone(mapped, fmt.label)
    size = _image_size(mapped["backbone.visual.positional_embedding"], patch, recipe, fmt.model)
    num_ids = int(state[fmt.classifier].shape[0])
    num_cams = int(state["cv_embed"].shape[0]) if "cv_embed" in state else 0
    model = _build(fmt.model, num_ids, num_cams, size, recipe, backbone=backbone, camera_embedding=num_cams > 0,
                   **fmt.options(state))
    ours = model.state_dict()
    for key in fmt.kept_outside:
        mapped.setdefault(key, ours[key])
    _load_into(model, mapped, Path(f"{fmt.label} checkpoint"), fmt.model)
    return LoadedCheckpoint(model.to(device).eval(), fmt.model, fmt.model, num_ids, num_cams, recipe)


__all__ = ["FORMATS", "LoadedCheckpoint", "clipreid_state_dict", "detect_format", "from_checkpoint",
           "read_checkpoint", "tfclip_state_dict"]
