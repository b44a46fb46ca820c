"""Caption-guided Memory Refinement (CMR): identity prototypes refined by what captions say about them.

The identity memory holds one image prototype per training identity (the mean CLIP feature of its tracklets,
built once before training). On sports and dance footage teammates share a uniform, so image prototypes of
different identities sit close together; captions name what the pixels barely separate (hair, shoes, a
number, a pose). CMR lets the memory read each identity's caption embeddings by cross-attention, and clip
features are pulled towards their identity's refined prototype. Captions are needed only to build the text
memory before training; the refinement and its loss exist only in training, so inference stays visual.

The text memory keeps up to ``max_captions`` text prototypes per identity: the identity's distinct captions,
encoded by the frozen CLIP text encoder, split into that many contiguous groups and averaged per group, so every
caption contributes and the tensor shape is fixed (it lives in the state dict).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from vreid_bench.models.layers import QuickGELU
from vreid_bench.errors import DatasetNotFoundError

CaptionSource = Literal["dataset", "placeholder", "none"]
CAPTION_SOURCES: tuple[str, ...] = ("dataset", "placeholder", "none")
PLACEHOLDER_CAPTION = "A photo of a person."


class MissingCaptionsError(DatasetNotFoundError):
    """Caption-guided training was asked for, but some training identities have no caption."""


@dataclass(frozen=True)
class CMRConfig:
    """Size of the refinement decoder (TF-CLIP's sequence-specific prompt sizes: 2 layers, 8 heads at 512)."""

    dim: int
    heads: int
    depth: int = 2
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    max_captions: int = 8


def identity_captions(
    source: CaptionSource, captions: Mapping[int, Sequence[str]], num_ids: int
) -> dict[int, list[str]]:
    """The captions each training label is refined with, by caption source; {} for ``"none"``.

    ``"dataset"`` uses the dataset's captions and needs one for every identity; ``"placeholder"`` gives every
    identity the same uninformative sentence, so an ablation can separate what the captions say from the
    capacity the refinement adds.
    """
    if source == "none":
        return {}
    if source == "placeholder":
        return {label: [PLACEHOLDER_CAPTION] for label in range(num_ids)}
    if source != "dataset":
        raise ValueError(f"caption source {source!r} is not one of {CAPTION_SOURCES}")
    missing = [label for label in range(num_ids) if not any(text.strip() for text in captions.get(label, ()))]
    if missing:
        shown = ", ".join(str(label) for label in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise MissingCaptionsError(
            f"CG-CLIP's caption-guided memory needs captions, but {len(missing)} of {num_ids} training identities "
            f"have none (training labels {shown}); caption them with `vreid caption --dataset NAME_OR_DIR --captioner "
            "MODEL` (template for synthetic builds), or train without them: --set model.caption_source=none"
        )
    return {label: [text for text in captions[label] if text.strip()] for label in range(num_ids)}


def group_means(embeddings: Tensor, groups: int) -> Tensor:
    """Average ``embeddings`` (n, D) over ``groups`` contiguous, near-equal groups -> (groups, D)."""
    bounds = np.linspace(0, embeddings.shape[0], groups + 1).round().astype(int)
    return torch.stack([embeddings[start:stop].mean(dim=0) for start, stop in zip(bounds[:-1], bounds[1:])])


@torch.no_grad()
def build_text_memory(
    captions: Mapping[int, Sequence[str]],
    num_ids: int,
    max_captions: int,
    dim: int,
    encode: Callable[[list[str]], Tensor],
) -> tuple[Tensor, Tensor]:
    """Text prototypes per identity -> (memory (C, K, D), valid (C, K) bool); identities without text stay empty.

    ``encode`` maps a list of captions to their (n, D) text features; each distinct caption is encoded once.
    """
    distinct = list(dict.fromkeys(text for label in sorted(captions) for text in captions[label]))
    features = encode(distinct) if distinct else torch.zeros(0, dim)  # (n_distinct, D)
    row_of = {text: row for row, text in enumerate(distinct)}
    memory = torch.zeros(num_ids, max_captions, dim)
    valid = torch.zeros(num_ids, max_captions, dtype=torch.bool)
    for label, texts in captions.items():
        rows = list(dict.fromkeys(row_of[text] for text in texts))
        if not rows:
            continue
        groups = min(len(rows), max_captions)
        memory[label, :groups] = group_means(features[rows].float().cpu(), groups)
        valid[label, :groups] = True
    return memory, valid


class RefinementLayer(nn.Module):
    """One decoder layer: memory rows self-attend, then each row reads its own identity's text prototypes."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.self_norm = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), QuickGELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, memory: Tensor, text: Tensor, text_valid: Tensor) -> Tensor:
        """``memory`` (C, D), ``text`` (C, K, D) already normalised, ``text_valid`` (C, K) -> (C, D)."""
        rows = self.self_norm(memory).unsqueeze(0)  # (C, D) -> (1, C, D): one sequence of C identities
        memory = memory + self.self_attn(rows, rows, rows, need_weights=False)[0].squeeze(0)
        query = self.cross_norm(memory).unsqueeze(1)  # (C, D) -> (C, 1, D): each identity is its own batch item
        read = self.cross_attn(query, text, text, key_padding_mask=~text_valid, need_weights=False)[0]
        memory = memory + read.squeeze(1)  # (C, 1, D) -> (C, D)
        return memory + self.mlp(self.mlp_norm(memory))


class CaptionGuidedMemoryRefinement(nn.Module):
    """Refines image prototypes (C, D) with text prototypes (C, K, D): refined = image + decoder(image, text).

    The residual form is TF-CLIP's (its memory used for a sample is memory + prompt output), so an untrained
    refinement starts near the plain image memory.
    """

    def __init__(self, config: CMRConfig) -> None:
        super().__init__()
        self.config = config
        self.memory_in = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, config.dim))
        self.text_in = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, config.dim))
        self.layers = nn.ModuleList(
            RefinementLayer(config.dim, config.heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.memory_out = nn.Sequential(nn.LayerNorm(config.dim), nn.Linear(config.dim, config.dim))

    def forward(self, image_memory: Tensor, text_memory: Tensor, text_valid: Tensor) -> Tensor:
        """``image_memory`` (C, D), ``text_memory`` (C, K, D), ``text_valid`` (C, K) -> refined (C, D)."""
        if not bool(text_valid.any(dim=1).all()):
            raise ValueError("every identity needs at least one text prototype before refinement")
        hidden = self.memory_in(image_memory)
        text = self.text_in(text_memory)
        for layer in self.layers:
            hidden = layer(hidden, text, text_valid)
        return image_memory + self.memory_out(hidden)
