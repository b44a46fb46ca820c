"""Building blocks shared by the CLIP-based models."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vreid_bench.errors import ConfigError

HEAD_WIDTH = 64  # channels per attention head, CLIP's and TF-CLIP's (768 → 12 heads, 512 → 8)


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x·σ(1.702x)``, the activation of the blocks TF-CLIP adds to CLIP."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def attention_heads(width: int) -> int:
    """Heads of ``HEAD_WIDTH`` channels, at least one (the tiny test backbone is narrower than one head)."""
    heads = max(1, width // HEAD_WIDTH)
    if width % heads:
        raise ConfigError(f"width {width} does not split into {heads} heads of {HEAD_WIDTH}: use a multiple of 64")
    return heads


def is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
