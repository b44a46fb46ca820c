"""CLIP image and text encoders (open_clip) adapted to person re-identification.

What changes from plain CLIP, following TF-CLIP and CLIP-ReID:

- any input size: the patch grid follows ``image_size`` (256×128 with 16-pixel patches → 16×8 patches + the
  class token = 129 tokens), and weights trained on another grid (CLIP's 14×14 at 224) have their positional
  embedding interpolated on load, the class position kept as is;
- a learnable camera embedding (``num_cams × width``, truncated normal std 0.02, times ``camera_scale``) is
  added to the class token only, at training and at test time (``x[:, 0] += cv_embed`` in both reference
  implementations; the patch tokens never see it);
- the image encoder returns every final-layer token after ``ln_post``, not just the pooled feature, because
  temporal modules (TF-CLIP's TMD, CG-CLIP's TFE) work on patch tokens;
- the text side is exposed piece by piece so that learnable context vectors (CLIP-ReID's prompts) can be fed
  as embeddings instead of token ids.

Weights: an open_clip tag (``"openai"``, the default for real runs; downloaded by open_clip), a local file
(an open_clip or OpenAI ``ViT-B-16.pt`` checkpoint, or a saved ``ClipBackbone`` state dict), or ``"none"``
for random initialisation, with a warning.
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vreid_bench.errors import ConfigError
from vreid_bench.models.configs import TINY, ClipArchitecture, clip_architecture

INTERPOLATION_MODES = ("bicubic", "bilinear")
# Entries an OpenAI TorchScript archive carries beside the weights.
_NON_WEIGHT_KEYS = ("input_resolution", "context_length", "vocab_size")
# Parameters of open_clip's CLIP that no ReID model uses: never required from a checkpoint.
_UNUSED_CLIP_KEYS = ("logit_scale", "logit_bias")


@dataclass(frozen=True)
class ClipBackboneConfig:
    """Architecture of a :class:`ClipBackbone`; weights are chosen apart, by ``pretrained``.

    ``name``: ``"ViT-B-16"`` or another open_clip ViT, or ``"tiny"`` (2 layers, width 64) for tests.
    ``image_size``: input (H, W); a multiple of the patch size.
    ``text``: build the text tower (CLIP-ReID and CG-CLIP need it; TAP and TF-CLIP do not).
    ``quick_gelu``: activation of both towers; ``None`` takes the architecture's (QuickGELU, as OpenAI trained).
    ``pos_embed_interpolation``: how a positional-embedding grid is resized on load: ``"bilinear"`` as TF-CLIP's
    and CLIP-ReID's ``build_model`` do it, by default (the weights every CLIP ReID reference trains from);
    ``"bicubic"`` as open_clip (``create_model(..., force_image_size=...)``) does it.
    """

    name: str = "ViT-B-16"
    image_size: tuple[int, int] = (256, 128)
    camera_embedding: bool = True
    camera_scale: float = 1.0
    text: bool = True
    quick_gelu: bool | None = None
    pos_embed_interpolation: str = "bilinear"


class ClipTokens(NamedTuple):
    """Final-layer outputs of the image encoder for N images."""

    cls: Tensor  # (N, width): class token after ln_post
    projected: Tensor  # (N, embed_dim): cls @ proj, the CLIP image feature
    tokens: Tensor  # (N, 1 + P, width): all tokens after ln_post, class token first


def tokenize(texts: list[str], context_length: int = 77) -> Tensor:
    """CLIP's BPE tokenizer (its vocabulary ships with open_clip, so this works offline): ``(N, context_length)``
    long, start token first, end-of-text token (the largest id) last, zero padded, truncated to fit."""
    import open_clip

    return open_clip.tokenize(texts, context_length=context_length)


def resize_positional_embedding(positional_embedding: Tensor, new_grid: tuple[int, int],
                                old_grid: tuple[int, int] | None = None, mode: str = "bilinear") -> Tensor:
    """``(1 + h*w, D) -> (1 + new_h*new_w, D)``: the patch part resampled on its 2-D grid, the class row kept.

    ``mode``: ``"bicubic"`` resizes exactly as open_clip does when it loads weights at another size
    (antialiased bicubic); ``"bilinear"`` as TF-CLIP's and CLIP-ReID's code does (plain bilinear).
    ``old_grid`` defaults to a square grid, as every published CLIP checkpoint has.
    """
    if mode not in INTERPOLATION_MODES:
        raise ConfigError(f"pos_embed_interpolation={mode!r} is not supported: use one of {INTERPOLATION_MODES}")
    class_position, patch_positions = positional_embedding[:1], positional_embedding[1:]
    num_patches, dim = patch_positions.shape
    if old_grid is None:
        side = math.isqrt(num_patches)
        if side * side != num_patches:
            raise ConfigError(
                f"cannot tell the patch grid of a positional embedding with {num_patches} patch positions: load "
                "these weights at the image size they were trained at"
            )
        old_grid = (side, side)
    grid = patch_positions.reshape(1, old_grid[0], old_grid[1], dim).permute(0, 3, 1, 2)  # (1, D, h, w)
    # Each mode as its source resizes: open_clip antialiased bicubic, TF-CLIP and CLIP-ReID plain bilinear.
    grid = F.interpolate(grid.float(), size=tuple(new_grid), mode=mode, align_corners=False,
                         antialias=mode == "bicubic")  # (1, D, nh, nw)
    grid = grid.permute(0, 2, 3, 1).reshape(new_grid[0] * new_grid[1], dim).to(positional_embedding.dtype)
    return torch.cat([class_position, grid], dim=0)


def _run_transformer(transformer: nn.Module, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """``(N, L, D) -> (N, L, D)`` through an open_clip Transformer; before open_clip 2.26 it took ``(L, N, D)``."""
    if getattr(transformer, "batch_first", False):
        return transformer(x, attn_mask=attn_mask)
    return transformer(x.transpose(0, 1), attn_mask=attn_mask).transpose(0, 1)


class ClipTextEncoder(nn.Module):
    """CLIP's text tower, with attribute names as in open_clip's ``CLIP`` so checkpoints map one to one."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.token_embedding: nn.Embedding = clip.token_embedding
        self.positional_embedding: nn.Parameter = clip.positional_embedding
        self.transformer: nn.Module = clip.transformer
        self.ln_final: nn.Module = clip.ln_final
        self.text_projection: nn.Parameter | nn.Linear = clip.text_projection
        self.register_buffer("attn_mask", clip.attn_mask.clone(), persistent=False)

    @property
    def context_length(self) -> int:
        return self.positional_embedding.shape[0]

    def forward(self, token_ids: Tensor) -> Tensor:
        """``(N, L)`` token ids → ``(N, embed_dim)``, pooled at the end-of-text token (the largest id)."""
        return self.encode_embeddings(self.token_embedding(token_ids), token_ids.argmax(dim=-1))

    def encode_embeddings(self, embeddings: Tensor, eot_positions: Tensor) -> Tensor:
        """``(N, L, width)`` token embeddings → ``(N, embed_dim)``, pooled at ``eot_positions`` ``(N,)``.

        The entry point for learnable prompts: replace some rows of ``token_embedding(ids)`` and pass the result.
        """
        length = embeddings.shape[1]
        x = embeddings + self.positional_embedding[:length].to(embeddings.dtype)
        mask = self.attn_mask[:length, :length] if self.attn_mask is not None else None
        x = _run_transformer(self.transformer, x, attn_mask=mask)
        x = self.ln_final(x)  # (N, L, width)
        pooled = x[torch.arange(x.shape[0], device=x.device), eot_positions]  # (N, width)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(pooled)
        return pooled @ self.text_projection  # (N, embed_dim)


class ClipBackbone(nn.Module):
    """CLIP image encoder returning all tokens, with a camera embedding, plus (optionally) the text encoder.

    ``visual`` is open_clip's ``VisionTransformer`` (``conv1``, ``class_embedding``, ``positional_embedding``,
    ``ln_pre``, ``transformer``, ``ln_post``, ``proj``); ``text`` is a :class:`ClipTextEncoder` or ``None``.
    """

    def __init__(self, config: ClipBackboneConfig, num_cams: int = 0, pretrained: str = "openai") -> None:
        super().__init__()
        import open_clip

        architecture = clip_architecture(config.name)
        _check_config(config, architecture, num_cams)
        quick_gelu = architecture.quick_gelu if config.quick_gelu is None else config.quick_gelu
        # Weights are found (or fail to download) before the model is allocated, so a bad name fails fast.
        checkpoint = None if pretrained == "none" else _checkpoint_path(pretrained, architecture, quick_gelu)
        self.config = config
        clip = open_clip.CLIP(**architecture.open_clip_kwargs(config.image_size, quick_gelu))
        self.visual: nn.Module = clip.visual
        self.text: ClipTextEncoder | None = ClipTextEncoder(clip) if config.text else None
        self.camera_embedding: nn.Parameter | None = None
        if config.camera_embedding and num_cams > 0:
            self.camera_embedding = nn.Parameter(torch.zeros(num_cams, self.width))
            nn.init.trunc_normal_(self.camera_embedding, std=0.02)
        if checkpoint is None:
            warnings.warn(
                f"CLIP backbone {config.name} starts from random initialisation (pretrained='none'): results will "
                "be far below published ones", stacklevel=2,
            )
        else:
            self._load_state(clip, read_state_dict(checkpoint), source=str(pretrained))

    # ----------------------------------------------------------------------------------------------- sizes
    @property
    def width(self) -> int:
        """Token width of the image encoder (768 for ViT-B/16)."""
        return self.visual.conv1.out_channels

    @property
    def embed_dim(self) -> int:
        """Width of the joint image-text space (512 for ViT-B/16)."""
        return self.visual.proj.shape[1]

    @property
    def patch_size(self) -> int:
        return self.visual.conv1.kernel_size[0]

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, columns): (16, 8) at 256×128."""
        return tuple(self.visual.grid_size)

    @property
    def num_tokens(self) -> int:
        """Class token + patches: 129 at 256×128."""
        return self.grid[0] * self.grid[1] + 1

    @property
    def num_cams(self) -> int:
        return 0 if self.camera_embedding is None else self.camera_embedding.shape[0]

    @property
    def context_length(self) -> int:
        return self._text_tower().context_length

    # ----------------------------------------------------------------------------------------------- image
    def forward(self, images: Tensor, camids: Tensor | None = None) -> ClipTokens:
        return self.forward_tokens(images, camids)

    def forward_tokens(self, images: Tensor, camids: Tensor | None = None) -> ClipTokens:
        """``images (N, 3, H, W)`` normalised, ``camids (N,)`` or ``None`` (no camera term) → :class:`ClipTokens`."""
        visual = self.visual
        self._check_images(images)
        x = visual.conv1(images)  # (N, width, gh, gw)
        x = x.flatten(2).transpose(1, 2)  # (N, P, width)
        positions = visual.positional_embedding.to(x.dtype)  # (1 + P, width)
        class_token = (visual.class_embedding.to(x.dtype) + positions[0]).expand(x.shape[0], 1, -1)  # (N, 1, width)
        if camids is not None and self.camera_embedding is not None:
            class_token = class_token + self.camera_term(camids).to(x.dtype).unsqueeze(1)
        x = torch.cat([class_token, x + positions[1:]], dim=1)  # (N, 1 + P, width)
        x = visual.ln_pre(x)
        x = _run_transformer(visual.transformer, x)
        tokens = visual.ln_post(x)  # (N, 1 + P, width)
        cls = tokens[:, 0]
        return ClipTokens(cls=cls, projected=cls @ visual.proj, tokens=tokens)

    def camera_term(self, camids: Tensor) -> Tensor:
        """``(N,)`` camera ids → ``(N, width)``, the scaled embedding added to the class token."""
        if self.camera_embedding is None:
            raise ConfigError("this backbone has no camera embedding: build it with camera_embedding=True, num_cams>0")
        if camids.numel() and camids.device.type == "cpu":  # on a GPU this check would wait for it every step;
            low, high = torch.stack([camids.min(), camids.max()]).tolist()  # there, models are sized by the data
            if low < 0 or high >= self.num_cams:
                raise ConfigError(
                    f"camera id {low if low < 0 else high} is outside 0..{self.num_cams - 1}: build the model "
                    "with num_cams=dataset.num_cams"
                )
        return self.config.camera_scale * self.camera_embedding[camids]

    def project(self, features: Tensor) -> Tensor:
        """``(..., width) -> (..., embed_dim)`` with the image projection (TF-CLIP projects every token)."""
        return features @ self.visual.proj

    # ------------------------------------------------------------------------------------------------ text
    def tokenize(self, texts: list[str]) -> Tensor:
        return tokenize(texts, self.context_length)

    def encode_text(self, token_ids: Tensor) -> Tensor:
        """``(N, L)`` token ids → ``(N, embed_dim)``."""
        return self._text_tower()(token_ids)

    def encode_text_embeddings(self, embeddings: Tensor, eot_positions: Tensor) -> Tensor:
        """``(N, L, text width)`` embeddings, ``(N,)`` end-of-text positions → ``(N, embed_dim)``."""
        return self._text_tower().encode_embeddings(embeddings, eot_positions)

    # ----------------------------------------------------------------------------------------- internals
    def _text_tower(self) -> ClipTextEncoder:
        if self.text is None:
            raise ConfigError(
                f"CLIP backbone {self.config.name} was built without its text tower: build it with text=True"
            )
        return self.text

    def _check_images(self, images: Tensor) -> None:
        expected = tuple(self.config.image_size)
        if images.dim() != 4 or tuple(images.shape[-2:]) != expected:
            raise ConfigError(
                f"images of shape {tuple(images.shape)} do not fit a backbone built for (N, 3, {expected[0]}, "
                f"{expected[1]}): build the model with image_size equal to the protocol's input size"
            )

    def _load_state(self, clip: nn.Module, state: dict[str, Tensor], source: str) -> None:
        """Load a checkpoint in open_clip's key layout or in this module's own (``text.*``, ``camera_embedding``)."""
        state = dict(state)
        camera = state.pop("camera_embedding", None)
        state = {key.removeprefix("text."): value for key, value in state.items()}
        positions = state.get("visual.positional_embedding")
        if positions is not None and positions.shape[0] != self.num_tokens:
            state["visual.positional_embedding"] = resize_positional_embedding(
                positions, self.grid, mode=self.config.pos_embed_interpolation
            )
        expected = clip.state_dict()
        mismatched = [key for key, value in expected.items() if key in state and state[key].shape != value.shape]
        result = clip.load_state_dict({k: v for k, v in state.items() if k not in mismatched}, strict=False)
        text_keys = {name for name in expected if not name.startswith("visual.")}
        optional = set(_UNUSED_CLIP_KEYS) | (text_keys if self.text is None else set())
        missing = [key for key in result.missing_keys if key not in optional and key not in mismatched]
        problems = [(mismatched, "wrong shape"), (missing, "missing"), (result.unexpected_keys, "unexpected")]
        for keys, kind in problems:
            if keys:
                raise ConfigError(
                    f"weights {source} do not fit CLIP backbone {self.config.name} ({kind}: {', '.join(keys[:3])}): "
                    "give a checkpoint of this architecture, or pretrained='none'"
                )
        if camera is not None and self.camera_embedding is not None:
            if camera.shape != self.camera_embedding.shape:
                raise ConfigError(
                    f"weights {source} hold a camera embedding for {camera.shape[0]} cameras, this model has "
                    f"{self.num_cams}: build it with num_cams={camera.shape[0]}, or load weights without one"
                )
            with torch.no_grad():
                self.camera_embedding.copy_(camera)


def _check_config(config: ClipBackboneConfig, architecture: ClipArchitecture, num_cams: int) -> None:
    patch = architecture.vision.patch_size
    height, width = config.image_size
    if height % patch or width % patch or height <= 0 or width <= 0:
        raise ConfigError(
            f"image_size={tuple(config.image_size)} is not a multiple of the {patch}-pixel patch of "
            f"{config.name}: use e.g. (256, 128)"
        )
    if num_cams < 0:
        raise ConfigError(f"num_cams={num_cams} is negative: give the dataset's camera count (0 for none)")
    if config.pos_embed_interpolation not in INTERPOLATION_MODES:
        raise ConfigError(
            f"pos_embed_interpolation={config.pos_embed_interpolation!r} is not supported: use one of "
            f"{INTERPOLATION_MODES}"
        )


def _checkpoint_path(pretrained: str, architecture: ClipArchitecture, quick_gelu: bool) -> str:
    """A local file as given, or an open_clip tag downloaded (or found in its cache) by open_clip."""
    if os.path.isfile(pretrained):
        return pretrained
    import open_clip

    name = architecture.name
    tags = [] if name == TINY else list(open_clip.list_pretrained_tags_by_model(name))
    if pretrained not in tags:
        raise ConfigError(
            f"pretrained={pretrained!r} is neither a weights tag of {name} ({', '.join(tags) or 'it has none'}) "
            "nor an existing file: give a tag, a checkpoint path, or 'none' for random initialisation"
        )
    tag_config = open_clip.get_pretrained_cfg(name, pretrained)
    if bool(tag_config.get("quick_gelu", False)) != quick_gelu:
        raise ConfigError(
            f"the {pretrained!r} weights of {name} were trained with quick_gelu={not quick_gelu}: set "
            f"quick_gelu={not quick_gelu}"
        )
    cached = cached_clip_weights(name, pretrained)
    if cached is not None:
        return cached
    from vreid_bench.net import hub_endpoint, require_download

    hub = bool(tag_config.get("hf_hub"))
    require_download(hub_endpoint() if hub else str(tag_config.get("url", "")), f"the {pretrained!r} weights of {name}",
                     f"pass a local file with pretrained=/path/to/{name}.pt (--pretrained), or pretrained='none' for "
                     "random initialisation", hub=hub)
    try:
        path = open_clip.download_pretrained(tag_config)
    except Exception as exc:  # every download failure (DNS, HTTP, hub offline mode) reads the same to a user
        raise ConfigError(_offline_message(name, pretrained, type(exc).__name__)) from exc
    if not path:
        raise ConfigError(_offline_message(name, pretrained, "no download source"))
    return path


def cached_clip_weights(name: str = "ViT-B-16", tag: str = "openai") -> str | None:
    """The local file of open_clip's ``tag`` weights of ``name`` if an earlier download left it in a cache (the
    Hugging Face hub's, or open_clip's own for URL downloads); no network is used."""
    try:
        import open_clip

        tag_config = open_clip.get_pretrained_cfg(name, tag) or {}
    except Exception:  # an unknown architecture or tag: nothing is cached
        return None
    hub = str(tag_config.get("hf_hub", "")).strip("/")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(hub, filename)
            if isinstance(found, str):
                return found
    url = str(tag_config.get("url", ""))
    local = Path("~/.cache/clip").expanduser() / os.path.basename(url) if url else None
    return str(local) if local is not None and local.is_file() else None


def _offline_message(name: str, tag: str, reason: str) -> str:
    return (
        f"could not download the {tag!r} weights of {name} ({reason}; offline?): pass a local file with "
        f"pretrained=/path/to/{name}.pt, or pretrained='none' for random initialisation"
    )


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Weights from an open_clip checkpoint, an OpenAI TorchScript archive (``ViT-B-16.pt``), a safetensors
    file or a plain state dict; ``state_dict`` wrappers and DDP's ``module.`` prefixes removed."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(str(path), device="cpu")
        elif _is_torchscript_archive(path):
            loaded = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable file of any kind: the user gave the wrong path
        raise ConfigError(
            f"could not read weights from {path} ({type(exc).__name__}): give a checkpoint file (a state dict)"
        ) from exc
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded:
        raise ConfigError(f"{path} holds no state dict: give a checkpoint file of the backbone's weights")
    return {
        key.removeprefix("module."): value
        for key, value in loaded.items()
        if key not in _NON_WEIGHT_KEYS and isinstance(value, Tensor)
    }


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def text_tower_parameters(name: str) -> int:
    """Parameters of the text tower of CLIP architecture ``name``, counted without allocating it."""
    import open_clip

    architecture = clip_architecture(name)
    with torch.device("meta"):
        clip = open_clip.CLIP(**architecture.open_clip_kwargs((224, 224), architecture.quick_gelu))
    tower = ClipTextEncoder(clip)
    return sum(p.numel() for p in tower.parameters())


def create_clip_backbone(name: str = "ViT-B-16", image_size: tuple[int, int] = (256, 128), num_cams: int = 0,
                         pretrained: str = "openai", **config_fields: object) -> ClipBackbone:
    """A :class:`ClipBackbone` by architecture name; ``config_fields`` set other :class:`ClipBackboneConfig` fields."""
    config = ClipBackboneConfig(name=name, image_size=tuple(image_size), **config_fields)  # type: ignore[arg-type]
    return ClipBackbone(config, num_cams=num_cams, pretrained=pretrained)
