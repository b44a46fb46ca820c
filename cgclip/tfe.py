"""Token-based Feature Extraction (TFE): a few learnable tokens gather a clip's spatiotemporal evidence.

A per-frame temporal module (TF-CLIP's Temporal Memory Diffusion) runs self-attention and an MLP over every
frame's 130 tokens, so its cost is a sizeable fraction of the backbone's. TFE instead lets ``L`` learnable query
tokens cross-attend over all ``T x N`` frame tokens at once: the attention costs ``L*T*N`` instead of
``(T*N)**2``, and the only per-token work is the key/value projection of each block. The ``L`` outputs are
averaged into one video feature.

The choices the paper leaves open (which tokens, the temporal embedding, block layout, pooling) are listed
in :mod:`cgclip.model`'s docstring with the settings that change them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vreid_bench.models.layers import QuickGELU


@dataclass(frozen=True)
class TFEConfig:
    """Size of a Token-based Feature Extraction module.

    ``width`` is the frame tokens' width (768 for ViT-B/16); ``heads`` must divide it. ``seq_len`` sizes the
    temporal position embedding (interpolated for other clip lengths).
    """

    width: int
    heads: int
    num_tokens: int = 8
    depth: int = 2
    seq_len: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.0


class CrossAttentionBlock(nn.Module):
    """Queries attend to a (much longer) token sequence, then pass an MLP; both pre-LN and residual."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.query_norm = nn.LayerNorm(width)
        self.token_norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), QuickGELU(), nn.Dropout(dropout), nn.Linear(hidden, width)
        )

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """``queries`` (B, L, W), ``tokens`` (B, M, W) -> (B, L, W)."""
        tokens = self.token_norm(tokens)
        queries = queries + self.attn(self.query_norm(queries), tokens, tokens, need_weights=False)[0]
        return queries + self.mlp(self.mlp_norm(queries))


class TokenFeatureExtractor(nn.Module):
    """``L`` learnable tokens read all frame tokens of a clip by cross-attention; their mean is the feature."""

    def __init__(self, config: TFEConfig) -> None:
        super().__init__()
        if config.num_tokens < 1:
            raise ValueError(f"TFE needs at least one query token, got num_tokens={config.num_tokens}")
        self.config = config
        self.queries = nn.Parameter(torch.empty(config.num_tokens, config.width))
        self.temporal_embedding = nn.Parameter(torch.empty(config.seq_len, config.width))
        nn.init.trunc_normal_(self.queries, std=0.02)
        nn.init.trunc_normal_(self.temporal_embedding, std=0.02)
        self.blocks = nn.ModuleList(
            CrossAttentionBlock(config.width, config.heads, config.mlp_ratio, config.dropout)
            for _ in range(config.depth)
        )

    @property
    def feature_dim(self) -> int:
        return self.config.width

    def temporal_positions(self, num_frames: int) -> Tensor:
        """One embedding per frame: the learned table, linearly resampled when the clip length differs."""
        table = self.temporal_embedding
        if num_frames == table.shape[0]:
            return table
        # (T0, W) -> (1, W, T0) -> (1, W, T) -> (T, W)
        resampled = F.interpolate(table.t().unsqueeze(0), size=num_frames, mode="linear", align_corners=True)
        return resampled.squeeze(0).t()

    def forward(self, frame_tokens: Tensor) -> Tensor:
        """``frame_tokens`` (B, T, N, W) -> video feature (B, W)."""
        batch, frames, per_frame, width = frame_tokens.shape
        tokens = frame_tokens + self.temporal_positions(frames)[None, :, None, :]
        tokens = tokens.reshape(batch, frames * per_frame, width)  # (B, T, N, W) -> (B, T*N, W)
        # A copy, not an expanded view: a view of a parameter made under no_grad still claims to require grad,
        # which breaks module hooks (FLOP counting) that follow tensors through the blocks.
        queries = self.queries.unsqueeze(0).repeat(batch, 1, 1)  # (L, W) -> (B, L, W)
        for block in self.blocks:
            queries = block(queries, tokens)
        return queries.mean(dim=1)  # (B, L, W) -> (B, W)
