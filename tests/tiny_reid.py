"""The harness tests' model, registered as ``tiny``: frames average-pooled to 8×4 cells, one linear embedding,
temporal mean; cross-entropy on a linear classifier. No BatchNorm, so DDP and one process compute the same."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from vreid_bench.errors import VreidError
from vreid_bench.models import MODELS, register_model
from vreid_bench.models.base import ReIDModel, TrainingData


class TinyReID(ReIDModel):
    """Frames average-pooled to 8×4 cells, one linear embedding, temporal mean; CE on a linear classifier."""

    def __init__(self, num_ids: int, image_size: tuple[int, int], dim: int = 16, dropout: float = 0.0,
                 prepare_error: str | None = None) -> None:
        super().__init__()
        cells = 3 * (image_size[0] // 4) * (image_size[1] // 4)
        self.embed = nn.Linear(cells, dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_ids)
        self.feature_dim = dim
        self.prepare_error = prepare_error

    def forward(self, clips, camids, labels=None):
        batch, length = clips.shape[:2]
        cells = F.avg_pool2d(clips.flatten(0, 1), 4).flatten(1)  # (B*T, 3, H, W) -> (B*T, 3*H/4*W/4)
        feats = self.embed(cells).view(batch, length, -1).mean(1)  # (B, T, D) -> (B, D)
        if not self.training:
            return feats
        return {"logits": self.classifier(self.dropout(feats))}

    def losses(self, outputs, labels):
        return {"id": F.cross_entropy(outputs["logits"], labels)}

    def prepare(self, data: TrainingData) -> None:
        if self.prepare_error:
            raise VreidError(self.prepare_error)


def tiny_factory(name, *, num_ids, num_cams, pretrained, image_size, seq_len, **overrides):
    return TinyReID(num_ids, image_size, **overrides)


@dataclass
class TinyConfig:
    dim: int = 16
    dropout: float = 0.0


def _registered_factory(config, *, num_ids, num_cams, pretrained, image_size, seq_len):
    return TinyReID(num_ids, image_size, dim=config.dim, dropout=config.dropout)


if "tiny" not in [name.lower() for name in MODELS.names()]:
    register_model("tiny", _registered_factory, TinyConfig, "the harness tests' model")
