"""CLIP-ReID (Li et al., 2023): learned identity prompts, then image-encoder fine-tuning; video by temporal average.

CLIP-ReID has no text labels to align with, so it learns one: every training identity gets its own context
vectors in the prompt "A photo of a X X X X person." (each X is a learnable token embedding between the frozen
prefix and suffix embeddings; the end-of-text token through CLIP's frozen text encoder and projection gives the
identity's text feature).

- **Stage 1** (:meth:`CLIPReID.prepare`, the recipe's ``stages.prompts``): the image encoder is frozen and its
  features computed once; only the context vectors learn, by supervised contrastive losses image→text plus
  text→image (raw features, temperature 1), 120 epochs of Adam at 3.5e-4 with weight decay 1e-4, batch 64, linear
  warm-up from 1e-5 over 5 epochs then cosine to 1e-6. The text features of all identities are then frozen and
  cached in a buffer, so a resumed or re-evaluated model has them from its state dict.
- **Stage 2** (the harness's loop, the rest of the recipe): the image encoder is fine-tuned with
  ``0.25 × (ID(BN(class 768)) + ID(BN(projected 512)))`` + batch-hard triplet (margin 0.3) on the penultimate
  layer's class token, the final class token and the projected feature, summed, + the label-smoothed
  cross-entropy of ``projected · text_featuresᵀ``. ID losses are label-smoothed (ε 0.1).
- **Test feature**: the pre-BN class token and projected feature concatenated (768 + 512 = 1,280 for ViT-B/16),
  as CLIP-ReID's ``NECK_FEAT: before``; text is not used at inference.

Video adaptation (CLIP-ReID is image-based): every frame goes through the image encoder and each feature is
averaged over the clip's frames before the heads and losses. Stage 1's image features are one per training clip
(every clip of the evaluation sampling), the frame mean of the frozen encoder's projected class token. As in the
reference, stage 1 features are computed without the camera embedding, which is added in stage 2 and at test
time. The camera embedding is off, as in the reference's person setting (``SIE_CAMERA: False``);
``camera_embedding=true`` gives its "CLIP-ReID+SIE" variant (the reference then scales it by ``SIE_COE`` 3.0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, ContextManager, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vreid_bench.engine.features import progress_bar
from vreid_bench.errors import ConfigError
from vreid_bench.models.base import ClipModelConfig, ReIDModel, TrainingData, clip_frames
from vreid_bench.models.clip_backbone import ClipBackbone, ClipTokens, tokenize
from vreid_bench.models.configs import default_pretrained
from vreid_bench.models.heads import BNNeck
from vreid_bench.models.layers import is_main_process
from vreid_bench.models.losses import batch_hard_triplet, label_smoothed_cross_entropy, supervised_contrastive

PLACEHOLDER = "X"
CONTEXT_INIT_STD = 0.02


@dataclass(frozen=True)
class PromptStage:
    """Stage 1, the prompt stage (``SOLVER.STAGE1`` of the reference): ``epochs`` of Adam over the frozen image
    features in batches of ``batch_size``, lr linear from ``warmup_lr`` over ``warmup_epochs`` then cosine from
    ``lr`` down to ``min_lr``; ``amp`` runs the text encoder under autocast on GPUs (the reference: fp16 with a
    gradient scaler)."""

    epochs: int = 120
    batch_size: int = 64
    lr: float = 3.5e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    warmup_lr: float = 1e-5
    min_lr: float = 1e-6
    amp: Literal["fp16", "bf16", "off"] = "fp16"

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"stages.prompts.epochs={self.epochs}: give 0 or more prompt-learning epochs")
        if self.batch_size < 1:
            raise ConfigError(f"stages.prompts.batch_size={self.batch_size}: give at least 1 (the reference uses 64)")
        if self.warmup_epochs < 0:
            raise ConfigError(f"stages.prompts.warmup_epochs={self.warmup_epochs}: give 0 or more epochs")


@dataclass
class CLIPReIDConfig(ClipModelConfig):
    """CLIP-ReID's settings (``configs/person/vit_clipreid.yml`` of the reference code).

    ``prompt``: the template; each ``X`` word becomes one learnable context vector per identity. The prompt
    stage's training settings are the recipe's ``stages.prompts`` (:class:`PromptStage`).
    """

    STAGES: ClassVar[dict[str, type]] = {"prompts": PromptStage}

    camera_embedding: bool = False
    prompt: str = "A photo of a X X X X person."
    i2t_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing={self.label_smoothing}: give a value in [0, 1), e.g. 0.1")


def stage1_learning_rate(epoch: int, stage: PromptStage) -> float:
    """Learning rate of stage-1 epoch ``epoch`` (1-based), as the reference's timm cosine scheduler gives it:
    linear from ``warmup_lr`` while ``epoch < warmup``, then cosine from ``lr`` over all ``epochs`` (the warm-up
    epochs included) down to ``min_lr``."""
    s = stage
    if epoch < s.warmup_epochs:
        return s.warmup_lr + epoch * (s.lr - s.warmup_lr) / s.warmup_epochs
    if epoch >= s.epochs:
        return s.min_lr
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * epoch / s.epochs))


class IdentityPrompts(nn.Module):
    """Per-identity context vectors spliced into the token embeddings of a prompt template.

    The template's prefix and suffix embeddings are read from the (frozen) token embedding at every call rather
    than stored, so they always match the text encoder's current weights. Prompts stop at the end-of-text token:
    CLIP's text encoder is causal, so the padding after it cannot change the feature pooled there, and the
    encoder does a sixth of the work (12 of 77 positions for the default template).
    """

    def __init__(self, template_ids: Tensor, num_ids: int, embed_width: int) -> None:
        super().__init__()
        start, end = placeholder_span(template_ids)
        self.start, self.end = start, end
        self.eot_position = int(template_ids.argmax(dim=-1))
        # (1, L) -> (1, eot + 1): the template up to its end-of-text token.
        self.register_buffer("template_ids", template_ids[:, : self.eot_position + 1].clone(), persistent=False)
        context = torch.empty(num_ids, end - start, embed_width)
        nn.init.normal_(context, std=CONTEXT_INIT_STD)
        # Trainable only inside stage 1; frozen otherwise, so stage 2's optimizer and DDP never see it.
        self.context = nn.Parameter(context, requires_grad=False)  # (num_ids, n_ctx, width)

    def forward(self, labels: Tensor, token_embedding: nn.Embedding) -> Tensor:
        """``(B,)`` labels → ``(B, eot + 1, width)`` prompt embeddings: prefix, the identities' context, suffix."""
        template = token_embedding(self.template_ids)  # (1, eot + 1, width)
        batch = labels.shape[0]
        prefix = template[:, : self.start].expand(batch, -1, -1)  # (B, start, width)
        suffix = template[:, self.end :].expand(batch, -1, -1)  # (B, eot + 1 - end, width)
        context = self.context[labels].to(template.dtype)  # (B, n_ctx, width)
        return torch.cat([prefix, context, suffix], dim=1)


def placeholder_span(template_ids: Tensor) -> tuple[int, int]:
    """``[start, end)`` of the run of placeholder tokens in a tokenized template ``(1, L)``."""
    placeholder_id = int(tokenize([PLACEHOLDER])[0, 1])
    positions = (template_ids[0] == placeholder_id).nonzero().flatten().tolist()
    if not positions or positions != list(range(positions[0], positions[-1] + 1)):
        raise ConfigError(
            f"the prompt's {PLACEHOLDER!r} words must be consecutive (found at token positions {positions}): write it "
            "like 'A photo of a X X X X person.'"
        )
    return positions[0], positions[-1] + 1


@contextmanager
def penultimate_class_token(backbone: ClipBackbone) -> Iterator[list[Tensor]]:
    """Collect the class token entering the image encoder's last block (CLIP-ReID's ``x11[:, 0]``), ``(N, width)``,
    for each forward pass run inside the context; the hook is removed on exit."""
    transformer = backbone.visual.transformer
    batch_first = getattr(transformer, "batch_first", False)
    captured: list[Tensor] = []

    def capture(_module: nn.Module, args: tuple[Tensor, ...]) -> None:
        tokens = args[0]  # (N, L, width) batch-first, else (L, N, width)
        captured.append(tokens[:, 0] if batch_first else tokens[0])

    handle = transformer.resblocks[-1].register_forward_pre_hook(capture)
    try:
        yield captured
    finally:
        handle.remove()


class CLIPReID(ReIDModel):
    """CLIP-ReID's two stages on video clips; see the module docstring for the recipe."""

    def __init__(self, config: CLIPReIDConfig, num_ids: int, num_cams: int, pretrained: str,
                 image_size: tuple[int, int]) -> None:
        super().__init__()
        self.config = config
        self.num_ids = num_ids
        self.backbone = ClipBackbone(config.backbone_config(image_size, text=True), num_cams, pretrained)
        text = self.backbone.text
        assert text is not None  # built with text=True
        text.requires_grad_(False)  # CLIP-ReID never trains the text encoder
        self.prompts = IdentityPrompts(self.backbone.tokenize([config.prompt]), num_ids,
                                       text.token_embedding.embedding_dim)
        self.cls_neck = BNNeck(self.backbone.width, num_ids)
        self.proj_neck = BNNeck(self.backbone.embed_dim, num_ids)
        self.register_buffer("text_features", torch.zeros(num_ids, self.backbone.embed_dim))
        self.register_buffer("prompts_learned", torch.tensor(False))
        self.feature_dim = self.backbone.width + self.backbone.embed_dim

    # --------------------------------------------------------------------------------------------- stage 2
    def forward(self, clips: Tensor, camids: Tensor, labels: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        batch, length = clips.shape[:2]
        frames, frame_camids = clip_frames(clips, camids)  # (B*T, 3, H, W), (B*T,)
        if not self.training:
            tokens = self.backbone.forward_tokens(frames, frame_camids)
            cls, projected = _frame_mean(tokens, batch, length)
            return torch.cat([cls, projected], dim=1)  # (B, width + embed_dim)
        if not bool(self.prompts_learned):
            raise RuntimeError("CLIP-ReID's text features are not learned yet: call prepare(data) before training")
        with penultimate_class_token(self.backbone) as captured:
            tokens = self.backbone.forward_tokens(frames, frame_camids)
        cls, projected = _frame_mean(tokens, batch, length)
        penultimate = captured[0].reshape(batch, length, -1).mean(1)  # (B*T, width) -> (B, width)
        return {
            "penultimate_feature": penultimate,
            "cls_feature": cls,
            "proj_feature": projected,
            "cls_logits": self.cls_neck(cls).logits,
            "proj_logits": self.proj_neck(projected).logits,
            "i2t_logits": projected @ self.text_features.t().to(projected.dtype),  # (B, num_ids)
        }

    def losses(self, outputs: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        c = self.config
        identity = sum(label_smoothed_cross_entropy(outputs[key], labels, c.label_smoothing)
                       for key in ("cls_logits", "proj_logits"))
        triplet = sum(batch_hard_triplet(outputs[key], labels, c.triplet_margin)
                      for key in ("penultimate_feature", "cls_feature", "proj_feature"))
        image_to_text = label_smoothed_cross_entropy(outputs["i2t_logits"], labels, c.label_smoothing)
        return {
            "id": c.id_loss_weight * identity,
            "triplet": c.triplet_loss_weight * triplet,
            "i2t": c.i2t_loss_weight * image_to_text,
        }

    # --------------------------------------------------------------------------------------------- stage 1
    def prepare(self, data: TrainingData) -> None:
        """Stage 1: learn the identity prompts against frozen image features, then cache the text features."""
        if data.num_ids != self.num_ids:
            raise ConfigError(f"the training data has {data.num_ids} identities but the model was built for "
                              f"{self.num_ids}: build it with num_ids={data.num_ids}")
        stage = data.stages.get("prompts", PromptStage())
        if not isinstance(stage, PromptStage):
            raise ConfigError("CLIP-ReID's prompt stage settings must be a PromptStage (the recipe's stages.prompts)")
        features, labels = self.frozen_image_features(data, stage)
        self.learn_prompts(features, labels, stage)
        self.cache_text_features(stage)
        self.drop_text_tower()
        if dist.is_available() and dist.is_initialized():
            # One set of prompts for every process, whatever tiny differences their arithmetic had.
            dist.broadcast(self.prompts.context.data, src=0)
            dist.broadcast(self.text_features, src=0)

    @torch.no_grad()
    def frozen_image_features(self, data: TrainingData, stage: PromptStage) -> tuple[Tensor, Tensor]:
        """One feature per training clip from the frozen encoder: ``(N, embed_dim)`` and labels ``(N,)``.

        Under DDP each process encodes its share of the tracklets; the rows are joined and put back in tracklet
        order (each tracklet's clips in order), so every process holds what one process would have computed.
        """
        was_training = self.backbone.training
        self.backbone.eval()
        features, labels, owners = [], [], []
        for clips, clip_labels, _camids, clip_owners in data.iter_clips(stage.batch_size):
            batch, length = clips.shape[:2]
            with _autocast(stage, clips.device):
                tokens = self.backbone.forward_tokens(clips.flatten(0, 1))  # no camera term, as the reference
            features.append(tokens.projected.float().view(batch, length, -1).mean(1))  # (B*T, E) -> (B, E)
            labels.append(clip_labels)
            owners.append(clip_owners)
        self.backbone.train(was_training)
        device = next(self.backbone.parameters()).device
        mine = (torch.cat(features) if features else torch.zeros(0, self.backbone.embed_dim, device=device),
                torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long, device=device),
                torch.cat(owners) if owners else torch.zeros(0, dtype=torch.long, device=device))
        all_features, all_labels, all_owners = (data.gather_rows(part) for part in mine)
        if not len(all_labels):
            raise ConfigError("stage 1 of CLIP-ReID found no training clips: train on a dataset with a train split")
        order = torch.sort(all_owners, stable=True).indices  # tracklet order, each tracklet's clips in order
        return all_features[order], all_labels[order]

    def text_features_of(self, labels: Tensor) -> Tensor:
        """``(B,)`` labels → ``(B, embed_dim)`` text features of their current prompts."""
        text = self.backbone.text
        if text is None:
            raise RuntimeError("CLIP-ReID's text tower was dropped after stage 1; its text features are cached in "
                               "text_features")
        embeddings = self.prompts(labels, text.token_embedding)  # (B, L, text width)
        eot = torch.full_like(labels, self.prompts.eot_position)
        return self.backbone.encode_text_embeddings(embeddings, eot)

    def learn_prompts(self, features: Tensor, labels: Tensor, stage: PromptStage = PromptStage()) -> list[float]:
        """Train only the context vectors with i2t + t2i supervised contrastive losses; the mean loss per epoch."""
        context = self.prompts.context
        context.requires_grad_(True)
        optimizer = torch.optim.Adam([context], lr=stage.lr, weight_decay=stage.weight_decay)
        scaler = torch.amp.GradScaler(features.device.type,
                                      enabled=stage.amp == "fp16" and features.device.type == "cuda")
        epoch_losses: list[float] = []
        with progress_bar(is_main_process()) as bar:
            task = bar.add_task("CLIP-ReID stage 1 (prompts)", total=stage.epochs, info="")
            for epoch in range(1, stage.epochs + 1):
                for group in optimizer.param_groups:
                    group["lr"] = stage1_learning_rate(epoch, stage)
                epoch_losses.append(self._prompt_epoch(optimizer, scaler, features, labels, stage))
                bar.update(task, advance=1, info=f"loss {epoch_losses[-1]:.4f}")
        context.requires_grad_(False)
        return epoch_losses

    def _prompt_epoch(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, features: Tensor,
                      labels: Tensor, stage: PromptStage) -> float:
        order = torch.randperm(len(labels)).to(labels.device)
        total, batches = torch.zeros((), device=features.device), 0  # summed on the device: no sync per step
        for batch_indices in order.split(stage.batch_size):
            image_features, batch_labels = features[batch_indices], labels[batch_indices]
            with _autocast(stage, features.device):
                text_features = self.text_features_of(batch_labels).float()
            loss = (supervised_contrastive(image_features, text_features, batch_labels, batch_labels)
                    + supervised_contrastive(text_features, image_features, batch_labels, batch_labels))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total, batches = total + loss.detach(), batches + 1
        return float(total) / batches

    def drop_text_tower(self) -> None:
        """Free the text tower once the text features are cached: stage 2 and inference never use it."""
        self.backbone.text = None

    def external_training_parameters(self) -> int:
        """The text tower stage 1 trains the prompts through, once dropped."""
        if self.backbone.text is not None:
            return 0
        from vreid_bench.models.clip_backbone import text_tower_parameters

        return text_tower_parameters(self.config.backbone)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """A state saved after stage 1 has no text tower: drop this model's before loading it."""
        if self.backbone.text is not None and not any(key.startswith("backbone.text.") for key in state_dict):
            self.drop_text_tower()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @torch.no_grad()
    def cache_text_features(self, stage: PromptStage = PromptStage()) -> None:
        """Freeze every identity's text feature into the ``text_features`` buffer (stage 2 and the state dict)."""
        device = self.text_features.device
        labels = torch.arange(self.num_ids, device=device)
        with _autocast(stage, device):
            rows = [self.text_features_of(chunk).float() for chunk in labels.split(stage.batch_size)]
        self.text_features.copy_(torch.cat(rows))  # (num_ids, embed_dim)
        self.prompts_learned.fill_(True)


def _autocast(stage: PromptStage, device: torch.device) -> ContextManager[object]:
    """The prompt stage's mixed precision on GPUs (the reference: fp16 autocast); CPU runs in float32."""
    if stage.amp == "off" or device.type != "cuda":
        return nullcontext()
    if stage.amp == "bf16" and not torch.cuda.is_bf16_supported():
        return nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.float16 if stage.amp == "fp16" else torch.bfloat16)


def _frame_mean(tokens: ClipTokens, batch: int, length: int) -> tuple[Tensor, Tensor]:
    """Class token ``(B*T, width) -> (B, width)`` and projected feature ``(B*T, E) -> (B, E)``, averaged over time."""
    return tokens.cls.view(batch, length, -1).mean(1), tokens.projected.view(batch, length, -1).mean(1)



def create(config: CLIPReIDConfig, *, num_ids: int, num_cams: int, pretrained: str | None,
           image_size: tuple[int, int], seq_len: int) -> CLIPReID:
    """Registry factory; ``seq_len`` is not needed (frames are averaged, whatever their number)."""
    weights = default_pretrained(config.backbone) if pretrained is None else pretrained
    return CLIPReID(config, num_ids=num_ids, num_cams=num_cams, pretrained=weights, image_size=image_size)
