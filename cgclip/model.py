"""CG-CLIP: CLIP for video ReID with Caption-guided Memory Refinement (CMR) and Token-based Feature Extraction (TFE).

Our implementation of the paper's description (its full text is not available to us). The parts it states:
learnable tokens gather spatiotemporal features by cross-attention at lower cost than per-frame temporal
modules (TFE, :mod:`cgclip.tfe`); captions refine identity prototypes, image and text prototypes fused by
cross-attention, features learned contrastively against the prototypes (CMR, :mod:`cgclip.cmr`); captions are
used in training only.

Where the paper is silent we follow TF-CLIP (:mod:`baselines.tfclip`). Every such choice, and the setting of
:class:`CGCLIPConfig` that changes it:

- **Backbone and heads** as TF-CLIP: CLIP ViT with the camera embedding on the class token; a BNNeck on the
  time-averaged class token, the time-averaged projected feature and the TFE video feature.
- **Test feature**: the pre-BN features concatenated, ``width + embed_dim + width`` (2,048 for ViT-B/16), or
  ``width + embed_dim`` (1,280) with ``tfe=False``.
- **TFE input**: all final-layer tokens (class and patches) after ``ln_post``, detached from the backbone as
  TF-CLIP's temporal module reads them (``tfe_detach``), plus a learnable temporal position embedding per frame
  (trunc-normal std 0.02, linearly resampled for clips of another length).
- **TFE blocks**: ``tfe_depth`` = 2 pre-LN blocks of cross-attention and a 4× QuickGELU MLP, heads of 64
  channels (CLIP's); ``tfe_tokens`` = 8 query tokens; the video feature is the mean of their outputs (TF-CLIP
  averages its temporal module's tokens the same way).
- **TFE off** (``tfe=False``): the video is the temporal average of frame class tokens (and of projected
  features), with no third branch.
- **Image prototypes**: TF-CLIP's CLIP-Memory: the frozen encoder before training, no camera term, frame mean of
  the projected class token per clip, averaged per tracklet then per identity; never refreshed.
- **Text prototypes**: the frozen CLIP text encoder of the same weights (built only while the model is
  prepared, so it is neither trained nor counted in the model's parameters); up to ``cmr_max_captions`` = 8
  group means of an identity's distinct caption embeddings.
- **Refinement**: sized like TF-CLIP's sequence-specific prompt: ``cmr_depth`` = 2 layers at ``embed_dim``,
  heads of 64 channels, MLP 4×, ``cmr_dropout`` = 0.1; memory rows self-attend, then each cross-attends to its
  own identity's text prototypes; refined memory = image memory + refinement (TF-CLIP's residual form).
- **Contrastive loss**: TF-CLIP's memory loss: logits are dot products of the clip's projected feature with
  every refined prototype (no normalisation, no temperature), label-smoothed cross-entropy, weight
  ``cmr_loss_weight`` = 1.
- **Loss weights** as TF-CLIP: ``0.25 × Σ ID (ε 0.1) + Σ batch-hard triplet (margin 0.3) + CMR``.
- **Caption source** (``caption_source``): ``"dataset"`` (the dataset's captions; every training identity needs
  one), ``"placeholder"`` (one uninformative sentence for everyone: the refinement's capacity without caption
  content) or ``"none"`` (the contrastive loss against the unrefined image memory). ``cmr=False`` removes the
  memory and its loss altogether.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from cgclip.cmr import (
    CAPTION_SOURCES,
    CaptionGuidedMemoryRefinement,
    CaptionSource,
    CMRConfig,
    build_text_memory,
    identity_captions,
)
from cgclip.tfe import TFEConfig, TokenFeatureExtractor
from vreid_bench.engine.features import progress_bar
from vreid_bench.errors import ConfigError
from vreid_bench.models.base import ClipModelConfig, ReIDModel, TrainingData, clip_frames
from vreid_bench.models.clip_backbone import ClipBackbone
from vreid_bench.models.configs import default_pretrained
from vreid_bench.models.heads import BNNeck
from vreid_bench.models.layers import attention_heads, is_main_process
from vreid_bench.models.losses import batch_hard_triplet, label_smoothed_cross_entropy
from vreid_bench.models.memory import clip_identity_memory

TEXT_BATCH_SIZE = 64  # captions per text-encoder pass while the text memory is built


@dataclass
class CGCLIPConfig(ClipModelConfig):
    """CG-CLIP's settings; the module docstring says what each default follows.

    Ablation switches: ``cmr``, ``tfe``, ``tfe_tokens``, ``caption_source``. ``memory_batch_size``: clips per
    forward pass while the image memory is built (no effect on the result).
    """

    tfe: bool = True
    tfe_tokens: int = 8
    tfe_depth: int = 2
    tfe_detach: bool = True
    cmr: bool = True
    caption_source: CaptionSource = "dataset"
    cmr_depth: int = 2
    cmr_dropout: float = 0.1
    cmr_max_captions: int = 8
    cmr_loss_weight: float = 1.0
    memory_batch_size: int = 16

    def __post_init__(self) -> None:
        for key in ("tfe_tokens", "tfe_depth", "cmr_depth", "cmr_max_captions", "memory_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)}: use a positive integer")
        if self.caption_source not in CAPTION_SOURCES:
            raise ConfigError(f"caption_source={self.caption_source!r}: use one of {', '.join(CAPTION_SOURCES)}")
        if not 0.0 <= self.cmr_dropout < 1.0:
            raise ConfigError(f"cmr_dropout={self.cmr_dropout}: use a probability in [0, 1)")

    @property
    def refines_memory(self) -> bool:
        return self.cmr and self.caption_source != "none"

    @property
    def uses_dataset_captions(self) -> bool:
        """The dataset's captions decide the result (a run records which ones)."""
        return self.cmr and self.caption_source == "dataset"


class CGCLIP(ReIDModel):
    """CG-CLIP; see the module docstring. ``feature_dim`` = 2 × width + embed_dim with TFE, else width + embed_dim."""

    def __init__(self, config: CGCLIPConfig, num_ids: int, num_cams: int, pretrained: str,
                 image_size: tuple[int, int], seq_len: int) -> None:
        super().__init__()
        self.config = config
        self.num_ids = num_ids
        self.pretrained = pretrained
        self.image_size = tuple(image_size)
        # The text tower encodes the captions once, in ``prepare``, and is dropped then: no second CLIP is loaded.
        encodes_text = config.cmr and config.caption_source != "none"
        self.backbone = ClipBackbone(config.backbone_config(image_size, text=encodes_text), num_cams, pretrained)
        width, embed_dim = self.backbone.width, self.backbone.embed_dim
        self.cls_neck = BNNeck(width, num_ids)
        self.proj_neck = BNNeck(embed_dim, num_ids)
        self.tfe: TokenFeatureExtractor | None = None
        self.video_neck: BNNeck | None = None
        if config.tfe:
            self.tfe = TokenFeatureExtractor(TFEConfig(
                width=width, heads=attention_heads(width), num_tokens=config.tfe_tokens, depth=config.tfe_depth,
                seq_len=seq_len,
            ))
            self.video_neck = BNNeck(width, num_ids)
        self.cmr: CaptionGuidedMemoryRefinement | None = None
        if config.cmr:
            self.register_buffer("image_memory", torch.zeros(num_ids, embed_dim))
            self.register_buffer("memory_built", torch.tensor(False))
        if config.refines_memory:
            self.cmr = CaptionGuidedMemoryRefinement(CMRConfig(
                dim=embed_dim, heads=attention_heads(embed_dim), depth=config.cmr_depth,
                dropout=config.cmr_dropout, max_captions=config.cmr_max_captions,
            ))
            self.register_buffer("text_memory", torch.zeros(num_ids, config.cmr_max_captions, embed_dim))
            self.register_buffer("text_valid", torch.zeros(num_ids, config.cmr_max_captions, dtype=torch.bool))
        self.feature_dim = width + embed_dim + (width if config.tfe else 0)

    def forward(self, clips: Tensor, camids: Tensor, labels: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        batch, length = clips.shape[:2]
        frames, frame_camids = clip_frames(clips, camids)
        out = self.backbone.forward_tokens(frames, frame_camids)
        cls = out.cls.view(batch, length, -1).mean(1)  # (B*T, W) -> (B, W)
        projected = out.projected.view(batch, length, -1).mean(1)  # (B*T, E) -> (B, E)
        features = {"cls": cls, "proj": projected}
        if self.tfe is not None:
            tokens = out.tokens.detach() if self.config.tfe_detach else out.tokens
            features["video"] = self.tfe(tokens.view(batch, length, *tokens.shape[1:]))  # (B, T, N, W) -> (B, W)
        if not self.training:
            return torch.cat(list(features.values()), dim=1)  # (B, feature_dim)
        necks = {"cls": self.cls_neck, "proj": self.proj_neck, "video": self.video_neck}
        outputs = {f"{name}_feature": feature for name, feature in features.items()}
        outputs |= {f"{name}_logits": necks[name](feature).logits for name, feature in features.items()}
        if self.config.cmr:
            outputs["memory_logits"] = projected @ self.prototypes().t()  # (B, E) x (E, C) -> (B, C)
        return outputs

    def prototypes(self) -> Tensor:
        """The identity memory the contrastive loss pulls features to: ``(num_ids, embed_dim)``."""
        if not bool(self.memory_built):
            raise RuntimeError("CG-CLIP's identity memory is not built: call prepare(data) before training")
        if self.cmr is None:
            return self.image_memory
        return self.cmr(self.image_memory, self.text_memory, self.text_valid)

    def losses(self, outputs: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        c = self.config
        names = [key.removesuffix("_feature") for key in outputs if key.endswith("_feature")]
        id_loss = sum(label_smoothed_cross_entropy(outputs[f"{n}_logits"], labels, c.label_smoothing) for n in names)
        triplet = sum(batch_hard_triplet(outputs[f"{n}_feature"], labels, c.triplet_margin) for n in names)
        terms = {"id": c.id_loss_weight * id_loss, "triplet": c.triplet_loss_weight * triplet}
        if "memory_logits" in outputs:
            terms["cmr"] = c.cmr_loss_weight * label_smoothed_cross_entropy(
                outputs["memory_logits"], labels, c.label_smoothing
            )
        return terms

    def prepare(self, data: TrainingData) -> None:
        """Build the image and text memories once (captions are checked first, before any encoder pass)."""
        if data.num_ids != self.num_ids:
            raise ConfigError(f"the training data has {data.num_ids} identities but the model was built for "
                              f"{self.num_ids}: build it with num_ids={data.num_ids}")
        if not self.config.cmr or bool(self.memory_built):
            return
        captions = identity_captions(self.config.caption_source, data.captions, self.num_ids)
        self.image_memory.copy_(clip_identity_memory(self.backbone, data, self.config.memory_batch_size))
        if self.cmr is not None:
            memory, valid = build_text_memory(captions, self.num_ids, self.config.cmr_max_captions,
                                              self.backbone.embed_dim, self._caption_encoder(data.device))
            self.text_memory.copy_(memory)
            self.text_valid.copy_(valid)
        self.memory_built.fill_(True)
        self.backbone.text = None  # the captions are encoded: training and inference never use the tower again

    def external_training_parameters(self) -> int:
        """The CLIP text tower that encoded the captions for CMR, once dropped (0 while it is still attached,
        where it counts among the model's own parameters)."""
        if self.cmr is None or self.config.caption_source == "none" or self.backbone.text is not None:
            return 0
        from vreid_bench.models.clip_backbone import text_tower_parameters

        return text_tower_parameters(self.config.backbone)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """A state saved after ``prepare`` has no text tower: drop this model's before loading it."""
        if self.backbone.text is not None and not any(key.startswith("backbone.text.") for key in state_dict):
            self.backbone.text = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _caption_encoder(self, device: torch.device) -> Callable[[list[str]], Tensor]:
        """A function from captions to ``(n, embed_dim)`` CLIP text features, from the backbone's text tower (the
        pretrained one: ``prepare`` runs before any training step)."""
        tower = self.backbone
        if tower.text is None:
            raise ConfigError("CG-CLIP's text tower was dropped after its captions were encoded; build the model "
                              "again to encode captions")

        @torch.no_grad()
        def encode(texts: list[str]) -> Tensor:
            chunks = [texts[start:start + TEXT_BATCH_SIZE] for start in range(0, len(texts), TEXT_BATCH_SIZE)]
            features = []
            with progress_bar(is_main_process()) as bar:
                task = bar.add_task("caption memory (captions)", total=len(texts), info="")
                for chunk in chunks:
                    features.append(tower.encode_text(tower.tokenize(chunk).to(device)).float())  # (n, E)
                    bar.update(task, advance=len(chunk))
            return torch.cat(features)

        return encode


def create(config: CGCLIPConfig, *, num_ids: int, num_cams: int, pretrained: str | None,
           image_size: tuple[int, int], seq_len: int) -> CGCLIP:
    """Registry factory; ``seq_len`` sizes TFE's temporal position embedding."""
    weights = default_pretrained(config.backbone) if pretrained is None else pretrained
    return CGCLIP(config, num_ids=num_ids, num_cams=num_cams, pretrained=weights, image_size=image_size,
                  seq_len=seq_len)
