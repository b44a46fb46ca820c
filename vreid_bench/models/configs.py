"""Backbone architectures as data: the CLIP ViTs come from open_clip's own model configs, the tiny ones are
defined here so that tests build a 2-layer, 64-wide model through exactly the same code as ViT-B/16.

Architecture and weights are kept apart: nothing here loads weights; ``default_pretrained`` only names the
weights a real run starts from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vreid_bench.errors import ConfigError, UnknownNameError

TINY = "tiny"


@dataclass(frozen=True)
class VisionTowerConfig:
    """A ViT image tower: ``patch_size`` pixels square patches, ``width``-wide tokens."""

    width: int
    layers: int
    heads: int
    patch_size: int
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class TextTowerConfig:
    """A causal text transformer over CLIP's BPE vocabulary (49,408 tokens, so the real tokenizer works)."""

    width: int
    layers: int
    heads: int
    context_length: int = 77
    vocab_size: int = 49408


@dataclass(frozen=True)
class ClipArchitecture:
    """One CLIP model: both towers and the joint embedding width.

    ``quick_gelu``: OpenAI's CLIP weights (the ``openai`` tag, ``ViT-B-16.pt``) were trained with QuickGELU,
    which every CLIP ReID method starts from; a model built with plain GELU silently degrades them.
    """

    name: str
    embed_dim: int
    vision: VisionTowerConfig
    text: TextTowerConfig
    quick_gelu: bool = True

    def open_clip_kwargs(self, image_size: tuple[int, int], quick_gelu: bool) -> dict[str, object]:
        """Keyword arguments of ``open_clip.CLIP`` for this architecture at ``image_size`` (H, W)."""
        vision = asdict(self.vision)
        heads = vision.pop("heads")
        vision["head_width"] = self.vision.width // heads  # open_clip derives heads as width // head_width
        vision["image_size"] = tuple(image_size)
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": vision,
            "text_cfg": asdict(self.text),
            "quick_gelu": quick_gelu,
        }


TINY_CLIP = ClipArchitecture(
    name=TINY,
    embed_dim=32,
    vision=VisionTowerConfig(width=64, layers=2, heads=2, patch_size=16),
    text=TextTowerConfig(width=64, layers=2, heads=2),
)


def clip_architecture(name: str) -> ClipArchitecture:
    """``"tiny"``, or any open_clip ViT model name (``ViT-B-16``, ``ViT-B-32``, ``ViT-L-14`` ...).

    Activations are QuickGELU unless open_clip's config says otherwise, because the weights these models
    start from (OpenAI's) were trained with it; a tag trained without it is caught when it is loaded.
    """
    if name == TINY:
        return TINY_CLIP
    import open_clip

    config = open_clip.get_model_config(name)
    if config is None:
        raise UnknownNameError(
            f"unknown CLIP backbone {name!r}: use 'ViT-B-16' (the default), 'tiny' (tests), or another open_clip "
            "ViT name (`python -c 'import open_clip; print(open_clip.list_models())'` lists them)"
        )
    vision, text = config["vision_cfg"], config["text_cfg"]
    unsupported = [key for key in ("timm_model_name", "attentional_pool") if vision.get(key)]
    unsupported += [key for key in ("hf_model_name", "embed_cls") if text.get(key)]
    if isinstance(vision.get("layers"), (list, tuple)) or unsupported or config.get("custom_text"):
        raise ConfigError(
            f"CLIP backbone {name!r} is not a plain ViT with a class token (it uses "
            f"{', '.join(unsupported) or 'a ResNet or custom text tower'}): use a ViT such as 'ViT-B-16'"
        )
    width = vision["width"]
    return ClipArchitecture(
        name=name,
        embed_dim=config["embed_dim"],
        vision=VisionTowerConfig(
            width=width,
            layers=vision["layers"],
            heads=width // vision.get("head_width", 64),
            patch_size=vision["patch_size"],
            mlp_ratio=vision.get("mlp_ratio", 4.0),
        ),
        text=TextTowerConfig(
            width=text["width"],
            layers=text["layers"],
            heads=text["heads"],
            context_length=text.get("context_length", 77),
            vocab_size=text.get("vocab_size", 49408),
        ),
        quick_gelu=config.get("quick_gelu", True),
    )


@dataclass(frozen=True)
class ResNetArchitecture:
    """A torchvision ResNet trunk: ``block`` is ``"bottleneck"`` or ``"basic"``, one count per stage."""

    name: str
    block: str
    layers: tuple[int, int, int, int]
    feature_dim: int


RESNET50 = ResNetArchitecture(name="resnet50", block="bottleneck", layers=(3, 4, 6, 3), feature_dim=2048)
TINY_RESNET = ResNetArchitecture(name=TINY, block="basic", layers=(1, 1, 1, 1), feature_dim=512)


def resnet_architecture(name: str) -> ResNetArchitecture:
    for architecture in (RESNET50, TINY_RESNET):
        if name == architecture.name:
            return architecture
    raise UnknownNameError(f"unknown ResNet backbone {name!r}: use 'resnet50' (the default) or 'tiny' (tests)")


def default_pretrained(backbone: str) -> str:
    """The weights a run starts from when none are named: OpenAI CLIP for CLIP ViTs, ImageNet for ResNet-50.

    Tiny backbones exist for tests and have no published weights, so they start from random initialisation.
    """
    if backbone == TINY:
        return "none"
    if backbone == RESNET50.name:
        return "imagenet"
    return "openai"
