"""TF-CLIP (Yu et al., AAAI 2024): text-free CLIP for video ReID with an identity memory and a temporal module.

Video ReID has no text to align CLIP's image side with, so TF-CLIP uses identity prototypes as its "text":

- **CLIP-Memory** (:meth:`TFCLIP.prepare`): before training, the frozen encoder sees every training tracklet
  (every clip of the evaluation sampling, no camera term); a clip's feature is the frame mean of its projected
  class token, tracklet features are clip means and the memory row of an identity is the mean of its
  tracklets: ``(num_ids, embed_dim)``, built once, never refreshed (a buffer, so it is in the state dict).
- **Sequence-Specific Prompt** (training only): two transformer decoder layers (width ``embed_dim``, heads of
  64 channels, MLP 4×, dropout 0.1) in which the memory rows self-attend and then cross-attend to the clip's
  projected tokens averaged over time; the memory a sample is scored against is ``memory + SSP(memory, clip)``,
  the logits plain dot products with the clip's projected feature (no normalisation, no temperature).
- **Temporal Memory Diffusion**: one block (width of the encoder, heads of 64 channels) on the final-layer tokens
  after ``ln_post``, detached from the backbone. Per frame a message token ``Linear(mean of its tokens)``; the
  ``T`` messages attend to each other (pre-LN); each frame's message joins its tokens, which pass pre-LN
  self-attention and an MLP; the frame feature is the mean of its ``N + 1`` tokens, the video feature their
  mean over frames.
- **Heads and losses**: a BNNeck on the class token, the projected feature and the TMD video feature, and a
  frame-level BNNeck on TMD frame features. Loss ``0.25 × Σ ID + Σ triplet + memory CE + (1/T) × frame ID``;
  every ID term and the memory CE label-smoothed (ε 0.1), batch-hard triplets with margin 0.3.
- **Test feature**: the pre-BN class token, projected feature and TMD video feature concatenated
  (768 + 512 + 768 = 2,048 for ViT-B/16).

Module widths follow the backbone (``width``, ``embed_dim``), so the ``tiny`` test backbone builds the same
modules at test size. The frame-level head has its own batch norm and, as in the reference code, shares the video
head's classifier (``classifier_proj_temp`` scores both); ``frame_classifier=own`` gives it a classifier of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from vreid_bench.errors import ConfigError
from vreid_bench.models.base import ClipModelConfig, ReIDModel, TrainingData, clip_frames
from vreid_bench.models.clip_backbone import ClipBackbone
from vreid_bench.models.configs import default_pretrained
from vreid_bench.models.heads import BNNeck
from vreid_bench.models.layers import QuickGELU, attention_heads
from vreid_bench.models.losses import batch_hard_triplet, label_smoothed_cross_entropy
from vreid_bench.models.memory import clip_identity_memory


@dataclass
class TFCLIPConfig(ClipModelConfig):
    """TF-CLIP's settings; the defaults are the paper's.

    ``memory_batch_size``: clips per forward pass while the memory is built (no effect on the result).
    """

    ssp_layers: int = 2
    ssp_dropout: float = 0.1
    memory_loss_weight: float = 1.0
    memory_batch_size: int = 16
    frame_classifier: Literal["shared", "own"] = "shared"

    def __post_init__(self) -> None:
        for key in ("ssp_layers", "memory_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)}: use a positive integer")
        if not 0.0 <= self.ssp_dropout < 1.0:
            raise ConfigError(f"ssp_dropout={self.ssp_dropout}: use a probability in [0, 1)")


class PromptDecoderLayer(nn.Module):
    """SSP layer: memory rows self-attend, cross-attend to the clip's tokens, then an MLP (all pre-LN)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_drop = nn.Dropout(dropout)
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_drop = nn.Dropout(dropout)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), QuickGELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.mlp_drop = nn.Dropout(dropout)

    def forward(self, memory: Tensor, visual: Tensor) -> Tensor:
        """``memory`` (B, C, D), ``visual`` (B, N, D) -> (B, C, D)."""
        rows = self.self_norm(memory)
        memory = memory + self.self_drop(self.self_attn(rows, rows, rows, need_weights=False)[0])
        memory = memory + self.cross_drop(
            self.cross_attn(self.cross_norm(memory), visual, visual, need_weights=False)[0]
        )
        return memory + self.mlp_drop(self.mlp(self.mlp_norm(memory)))


class SequenceSpecificPrompt(nn.Module):
    """Adapts the identity memory to one clip: ``(B, C, D), (B, N, D) -> (B, C, D)``, added to the memory."""

    def __init__(self, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.visual_in = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.memory_in = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.layers = nn.ModuleList(PromptDecoderLayer(dim, attention_heads(dim), dropout) for _ in range(layers))
        self.memory_out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.apply(_init_linear)

    def forward(self, memory: Tensor, visual: Tensor) -> Tensor:
        visual = self.visual_in(visual)
        memory = self.memory_in(memory)
        for layer in self.layers:
            memory = layer(memory, visual)
        return self.memory_out(memory)


def _init_linear(module: nn.Module) -> None:
    """The reference's initialisation of its new linear layers: truncated normal std 0.02, zero bias."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class TemporalMemoryDiffusion(nn.Module):
    """Per-frame message tokens exchange information across time, then rejoin their frame's tokens.

    ``(B, T, N, W) -> (B, T, W)`` frame features.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        heads = attention_heads(width)
        self.message_fc = nn.Linear(width, width)
        self.message_norm = nn.LayerNorm(width)
        self.message_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.attn_norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), QuickGELU(), nn.Linear(4 * width, width))

    def forward(self, tokens: Tensor) -> Tensor:
        batch, frames, per_frame, width = tokens.shape
        messages = self.message_fc(tokens.mean(2))  # (B, T, N, W) -> (B, T, W)
        normed = self.message_norm(messages)
        messages = messages + self.message_attn(normed, normed, normed, need_weights=False)[0]
        x = torch.cat([tokens, messages.unsqueeze(2)], dim=2)  # (B, T, N + 1, W)
        x = x.reshape(batch * frames, per_frame + 1, width)
        normed = self.attn_norm(x)
        x = x + self.attn(normed, normed, normed, need_weights=False)[0]
        x = x + self.mlp(self.mlp_norm(x))
        return x.mean(1).view(batch, frames, width)  # (B*T, N + 1, W) -> (B, T, W)


class TFCLIP(ReIDModel):
    """TF-CLIP; see the module docstring. ``feature_dim`` = 2 × width + embed_dim (2,048 for ViT-B/16)."""

    def __init__(self, config: TFCLIPConfig, num_ids: int, num_cams: int, pretrained: str,
                 image_size: tuple[int, int]) -> None:
        super().__init__()
        self.config = config
        self.num_ids = num_ids
        self.backbone = ClipBackbone(config.backbone_config(image_size, text=False), num_cams, pretrained)
        width, embed_dim = self.backbone.width, self.backbone.embed_dim
        self.ssp = SequenceSpecificPrompt(embed_dim, config.ssp_layers, config.ssp_dropout)
        self.tmd = TemporalMemoryDiffusion(width)
        self.cls_neck = BNNeck(width, num_ids)
        self.proj_neck = BNNeck(embed_dim, num_ids)
        self.video_neck = BNNeck(width, num_ids)
        self.frame_neck = BNNeck(width, num_ids)
        if config.frame_classifier == "shared":
            self.frame_neck.classifier = self.video_neck.classifier  # one module: its parameter is trained once
        self.register_buffer("memory", torch.zeros(num_ids, embed_dim))
        self.register_buffer("memory_built", torch.tensor(False))
        self.feature_dim = 2 * width + embed_dim

    def forward(self, clips: Tensor, camids: Tensor, labels: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        batch, length = clips.shape[:2]
        frames, frame_camids = clip_frames(clips, camids)
        out = self.backbone.forward_tokens(frames, frame_camids)
        cls = out.cls.view(batch, length, -1).mean(1)  # (B*T, W) -> (B, W)
        projected = out.projected.view(batch, length, -1).mean(1)  # (B*T, E) -> (B, E)
        tokens = out.tokens.detach().view(batch, length, *out.tokens.shape[1:])  # (B, T, N, W)
        frame_features = self.tmd(tokens)  # (B, T, W)
        video = frame_features.mean(1)  # (B, W)
        if not self.training:
            return torch.cat([cls, projected, video], dim=1)  # (B, 2W + E)
        if not bool(self.memory_built):
            raise RuntimeError("TF-CLIP's memory is not built: call prepare(data) before training")
        visual = self.backbone.project(out.tokens).view(batch, length, out.tokens.shape[1], -1).mean(1)  # (B, N, E)
        memory = self.memory.unsqueeze(0).expand(batch, -1, -1)  # (C, E) -> (B, C, E)
        memory = memory + self.ssp(memory, visual)
        return {
            "cls_feature": cls,
            "proj_feature": projected,
            "video_feature": video,
            "cls_logits": self.cls_neck(cls).logits,
            "proj_logits": self.proj_neck(projected).logits,
            "video_logits": self.video_neck(video).logits,
            "frame_logits": self.frame_neck(frame_features.flatten(0, 1)).logits,  # (B*T, num_ids)
            "memory_logits": torch.einsum("be,bce->bc", projected, memory),  # (B, num_ids)
        }

    def losses(self, outputs: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        c = self.config
        names = ("cls", "proj", "video")
        id_loss = sum(label_smoothed_cross_entropy(outputs[f"{n}_logits"], labels, c.label_smoothing) for n in names)
        triplet = sum(batch_hard_triplet(outputs[f"{n}_feature"], labels, c.triplet_margin) for n in names)
        length = outputs["frame_logits"].shape[0] // labels.shape[0]
        frame_loss = label_smoothed_cross_entropy(outputs["frame_logits"], labels.repeat_interleave(length),
                                                  c.label_smoothing)
        memory_loss = label_smoothed_cross_entropy(outputs["memory_logits"], labels, c.label_smoothing)
        return {
            "id": c.id_loss_weight * id_loss,
            "triplet": c.triplet_loss_weight * triplet,
            "memory": c.memory_loss_weight * memory_loss,
            "frame": frame_loss / length,
        }

    def prepare(self, data: TrainingData) -> None:
        """Build the CLIP-Memory with the encoder as it is now; a model that has one keeps it."""
        if data.num_ids != self.num_ids:
            raise ConfigError(f"the training data has {data.num_ids} identities but the model was built for "
                              f"{self.num_ids}: build it with num_ids={data.num_ids}")
        if bool(self.memory_built):
            return
        self.memory.copy_(clip_identity_memory(self.backbone, data, self.config.memory_batch_size))
        self.memory_built.fill_(True)


def create(config: TFCLIPConfig, *, num_ids: int, num_cams: int, pretrained: str | None,
           image_size: tuple[int, int], seq_len: int) -> TFCLIP:
    """Registry factory; ``seq_len`` is not needed (TMD takes clips of any length)."""
    weights = default_pretrained(config.backbone) if pretrained is None else pretrained
    return TFCLIP(config, num_ids=num_ids, num_cams=num_cams, pretrained=weights, image_size=image_size)
