"""Temporal average pooling baselines: an image encoder per frame, features averaged over the clip.

``clip-tap`` is the CLIP-ReID image side without its text stage: what a video CLIP model earns from CLIP
alone. ``resnet-tap`` is the temporal pooling baseline of Gao & Nevatia ("Revisiting Temporal Modeling for
Video-based Person ReID", 2018): ImageNet ResNet-50 per frame, average pooling over space and time, a linear
classifier; the reference point every temporal method claims to beat. ``neck=bnneck, last_stride=1`` makes it the
strong baseline of Luo et al. (2019) averaged over frames.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from vreid_bench.errors import ConfigError
from vreid_bench.models.base import ClipModelConfig, ReIDModel, clip_frames
from vreid_bench.models.clip_backbone import ClipBackbone, read_state_dict
from vreid_bench.models.configs import ResNetArchitecture, default_pretrained, resnet_architecture
from vreid_bench.models.heads import BNNeck
from vreid_bench.models.losses import batch_hard_triplet, label_smoothed_cross_entropy


@dataclass
class ClipTapConfig(ClipModelConfig):
    """Loss weights as CLIP-ReID's stage 2 sets them (the shared CLIP defaults), without its image-to-text term."""


@dataclass
class ResNetTapConfig:
    """``backbone``: ``"resnet50"`` or ``"tiny"`` (a one-block-per-stage ResNet for tests).
    ``last_stride`` 1 doubles the final feature map (16×8 at 256×128), the strong baseline's trick; 2 is
    torchvision's (Gao & Nevatia's temporal pooling). ``neck``: ``linear`` scores the pooled feature with a linear
    classifier with bias (Gao & Nevatia), ``bnneck`` puts a BNNeck in between (Luo et al.'s strong baseline); the
    test feature is the pooled one either way."""

    backbone: str = "resnet50"
    last_stride: int = 2
    neck: Literal["linear", "bnneck"] = "linear"
    id_loss_weight: float = 1.0
    triplet_loss_weight: float = 1.0
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3

    def __post_init__(self) -> None:
        if self.last_stride not in (1, 2):
            raise ConfigError(f"last_stride={self.last_stride}: use 1 (the strong baseline) or 2 (torchvision's)")


def _id_and_triplet(features: list[Tensor], logits: list[Tensor], labels: Tensor, id_weight: float,
                    triplet_weight: float, smoothing: float, margin: float) -> dict[str, Tensor]:
    """Label-smoothed ID loss on every classifier, batch-hard triplet on every pre-BN feature, each summed."""
    id_loss = sum(label_smoothed_cross_entropy(scores, labels, smoothing) for scores in logits)
    triplet = sum(batch_hard_triplet(feature, labels, margin) for feature in features)
    return {"id": id_weight * id_loss, "triplet": triplet_weight * triplet}


class ClipTap(ReIDModel):
    """CLIP's image encoder on every frame (camera embedding on), class token and projected feature averaged
    over time, a BNNeck on each. Test feature: both pre-BN features concatenated (768 + 512 for ViT-B/16)."""

    def __init__(self, config: ClipTapConfig, num_ids: int, num_cams: int, pretrained: str,
                 image_size: tuple[int, int]) -> None:
        super().__init__()
        self.config = config
        self.backbone = ClipBackbone(config.backbone_config(image_size, text=False), num_cams, pretrained)
        self.cls_neck = BNNeck(self.backbone.width, num_ids)
        self.proj_neck = BNNeck(self.backbone.embed_dim, num_ids)
        self.feature_dim = self.backbone.width + self.backbone.embed_dim

    def forward(self, clips: Tensor, camids: Tensor, labels: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        batch, length = clips.shape[:2]
        frames, frame_camids = clip_frames(clips, camids)
        tokens = self.backbone.forward_tokens(frames, frame_camids)
        cls = tokens.cls.view(batch, length, -1).mean(1)  # (B*T, width) -> (B, width)
        projected = tokens.projected.view(batch, length, -1).mean(1)  # (B*T, embed_dim) -> (B, embed_dim)
        if not self.training:
            return torch.cat([cls, projected], dim=1)  # (B, width + embed_dim)
        return {
            "cls_feature": cls,
            "proj_feature": projected,
            "cls_logits": self.cls_neck(cls).logits,
            "proj_logits": self.proj_neck(projected).logits,
        }

    def losses(self, outputs: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        c = self.config
        return _id_and_triplet(
            [outputs["cls_feature"], outputs["proj_feature"]], [outputs["cls_logits"], outputs["proj_logits"]],
            labels, c.id_loss_weight, c.triplet_loss_weight, c.label_smoothing, c.triplet_margin,
        )


class ResNetTap(ReIDModel):
    """torchvision ResNet per frame, global average pooling, temporal average, then the neck; 2,048-d for
    ResNet-50. The test feature is the pooled one (before any BN), as for the CLIP baselines."""

    def __init__(self, config: ResNetTapConfig, num_ids: int, pretrained: str) -> None:
        super().__init__()
        self.config = config
        architecture = resnet_architecture(config.backbone)
        self.trunk = build_resnet(architecture, pretrained, config.last_stride)
        self.neck: nn.Module = (BNNeck(architecture.feature_dim, num_ids) if config.neck == "bnneck"
                                else nn.Linear(architecture.feature_dim, num_ids))
        self.feature_dim = architecture.feature_dim

    def forward(self, clips: Tensor, camids: Tensor, labels: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        batch, length = clips.shape[:2]
        frames = clips.reshape(batch * length, *clips.shape[2:])  # (B*T, 3, H, W)
        feature = self.trunk(frames).view(batch, length, -1).mean(1)  # (B*T, D) -> (B, D)
        if not self.training:
            return feature
        scores = self.neck(feature)
        return {"feature": feature, "logits": scores.logits if isinstance(self.neck, BNNeck) else scores}

    def losses(self, outputs: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        c = self.config
        return _id_and_triplet([outputs["feature"]], [outputs["logits"]], labels, c.id_loss_weight,
                               c.triplet_loss_weight, c.label_smoothing, c.triplet_margin)


def build_resnet(architecture: ResNetArchitecture, pretrained: str, last_stride: int = 1) -> nn.Module:
    """A torchvision ResNet whose forward gives globally average-pooled features ``(N, feature_dim)``.

    ``pretrained``: ``"imagenet"`` (torchvision's original ImageNet weights, those the strong baseline used;
    downloaded by torchvision), a local state-dict file, or ``"none"``.
    """
    from torchvision.models import resnet

    block = resnet.Bottleneck if architecture.block == "bottleneck" else resnet.BasicBlock
    model = resnet.ResNet(block, list(architecture.layers))
    if pretrained == "none":
        warnings.warn(f"ResNet backbone {architecture.name} starts from random initialisation (pretrained='none')",
                      stacklevel=2)
    else:
        _load_resnet_weights(model, architecture, pretrained)
    if last_stride == 1:
        for module in model.layer4[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                module.stride = (1, 1)
    model.fc = nn.Identity()
    return model


def _load_resnet_weights(model: nn.Module, architecture: ResNetArchitecture, pretrained: str) -> None:
    if os.path.isfile(pretrained):
        state = read_state_dict(pretrained)
    elif pretrained == "imagenet" and architecture.name == "resnet50":
        import torch
        from torchvision.models import ResNet50_Weights

        from vreid_bench.net import require_download

        url = ResNet50_Weights.IMAGENET1K_V1.url
        if not os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))):
            require_download(url, "the ImageNet ResNet-50 weights", "pass a local file with "
                             "pretrained=/path/to/resnet50.pth (--pretrained), or pretrained='none' for random "
                             "initialisation")
        try:
            state = ResNet50_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as exc:  # every download failure reads the same to a user
            raise ConfigError(
                f"could not download the ImageNet ResNet-50 weights ({type(exc).__name__}; offline?): pass a local "
                "file with pretrained=/path/to/resnet50.pth, or pretrained='none' for random initialisation"
            ) from exc
    else:
        raise ConfigError(
            f"pretrained={pretrained!r} is neither 'imagenet' (ResNet-50 only) nor an existing file: give one of "
            "those, or 'none' for random initialisation"
        )
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    result = model.load_state_dict(state, strict=False)
    missing = [key for key in result.missing_keys if not key.startswith("fc.")]
    if missing or result.unexpected_keys:
        problem = f"missing {missing[:3]}" if missing else f"unexpected {result.unexpected_keys[:3]}"
        raise ConfigError(
            f"weights {pretrained} do not fit ResNet backbone {architecture.name} ({problem}): give a torchvision "
            "ResNet state dict of this architecture, or pretrained='none'"
        )


def create_clip_tap(config: ClipTapConfig, *, num_ids: int, num_cams: int, pretrained: str | None,
                    image_size: tuple[int, int], seq_len: int) -> ClipTap:
    weights = default_pretrained(config.backbone) if pretrained is None else pretrained
    return ClipTap(config, num_ids=num_ids, num_cams=num_cams, pretrained=weights, image_size=image_size)


def create_resnet_tap(config: ResNetTapConfig, *, num_ids: int, num_cams: int, pretrained: str | None,
                      image_size: tuple[int, int], seq_len: int) -> ResNetTap:
    weights = default_pretrained(config.backbone) if pretrained is None else pretrained
    return ResNetTap(config, num_ids=num_ids, pretrained=weights)
