"""The one interface every model implements, so the training harness knows nothing model-specific."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import ClassVar, ContextManager

import torch
from torch import Tensor, nn

from vreid_bench.data import Tracklet
from vreid_bench.models.clip_backbone import ClipBackboneConfig


@dataclass
class TrainingData:
    """What the harness hands a model before training (:meth:`ReIDModel.prepare`).

    ``labels[i]`` is the training label (0..num_ids-1) of ``tracklets[i]``; ``captions`` maps a training label
    to the captions of that identity's tracklets (empty when the dataset has none). ``iter_clips(batch_size)``
    yields ``(clips (B, T, 3, H, W) normalised float on the model's device, labels (B,), camids (B,),
    tracklet_index (B,))`` over every training tracklet, dense clips and no augmentation: what TF-CLIP's memory,
    CLIP-ReID's stage 1 and CG-CLIP's prototypes are computed from. ``stages`` holds the recipe's settings of the
    model's extra stages by name (CLIP-ReID's ``prompts``), already checked against the model's stage classes.

    Under DDP, ``iter_clips`` yields only this process's share of the tracklets (``tracklet_index`` stays the
    index into ``tracklets``): a pass sums its per-tracklet results with ``reduce_sum`` (in place, over processes)
    or joins per-clip rows with ``gather_rows``, as feature extraction does. ``amp_dtype`` is the run's mixed
    precision (None: float32), under which such passes run (:meth:`autocast`).
    """

    tracklets: list[Tracklet]
    labels: list[int]
    num_ids: int
    num_cams: int
    captions: dict[int, list[str]]
    iter_clips: Callable[[int], Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]]
    device: torch.device
    stages: dict[str, object] = field(default_factory=dict)
    amp_dtype: torch.dtype | None = None
    reduce_sum: Callable[[Tensor], Tensor] = field(default=lambda tensor: tensor)
    gather_rows: Callable[[Tensor], Tensor] = field(default=lambda tensor: tensor)
    share_size: int = -1  # tracklets ``iter_clips`` yields in this process (-1: all of them)

    def __post_init__(self) -> None:
        if self.share_size < 0:
            self.share_size = len(self.tracklets)

    def autocast(self) -> ContextManager[object]:
        """The run's mixed precision for a pass over the training set (float32 on the CPU)."""
        if self.amp_dtype is None or self.device.type != "cuda":
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)


class ReIDModel(nn.Module, abc.ABC):
    """A video ReID model.

    ``forward(clips (B, T, 3, H, W) normalised float, camids (B,) long)``: in eval mode the features
    ``(B, feature_dim)`` (the harness L2-normalises them); in train mode a dict of named tensors that
    :meth:`losses` turns into weighted loss terms, whose sum the harness minimises.
    """

    feature_dim: int

    @abc.abstractmethod
    def forward(self, clips: Tensor, camids: Tensor, labels: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        ...

    @abc.abstractmethod
    def losses(self, outputs: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        """Named, already weighted loss terms; the total loss is their sum."""

    def prepare(self, data: TrainingData) -> None:
        """Work done once before training from the whole training set (memories, prototypes, prompt stages)."""

    def external_training_parameters(self) -> int:
        """Parameters the model trains with but does not keep (a text tower used only to build memories)."""
        return 0


@dataclass
class ClipModelConfig:
    """Settings every CLIP-based model shares; model configs extend it.

    ``backbone``: ``"ViT-B-16"`` (default) or ``"tiny"`` for tests. The camera embedding is added to the class
    token (cameras × width, std 0.02, times ``camera_scale``). ``pos_embed_interpolation`` resizes CLIP's 14×14
    positional grid to the input's patch grid: bilinearly, as TF-CLIP's and CLIP-ReID's ``build_model`` do, or
    antialiased bicubic as open_clip does. The loss settings are CLIP-ReID's and TF-CLIP's: 0.25 × the
    label-smoothed ID losses plus the batch-hard triplet losses.

    ``STAGES`` names a model's extra training stages and the dataclass of each one's settings (the recipe's
    ``stages.<name>`` section); most models have none.
    """

    STAGES: ClassVar[dict[str, type]] = {}

    backbone: str = "ViT-B-16"
    camera_embedding: bool = True
    camera_scale: float = 1.0
    pos_embed_interpolation: str = "bilinear"
    id_loss_weight: float = 0.25
    triplet_loss_weight: float = 1.0
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3

    def backbone_config(self, image_size: tuple[int, int], text: bool) -> ClipBackboneConfig:
        return ClipBackboneConfig(
            name=self.backbone,
            image_size=tuple(image_size),  # type: ignore[arg-type]
            camera_embedding=self.camera_embedding,
            camera_scale=self.camera_scale,
            text=text,
            pos_embed_interpolation=self.pos_embed_interpolation,
        )


def clip_frames(clips: Tensor, camids: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, T, 3, H, W), (B,) -> (B*T, 3, H, W), (B*T,)``: frames for an image encoder, each with its camera."""
    batch, length = clips.shape[:2]
    frames = clips.reshape(batch * length, *clips.shape[2:])
    return frames, camids.repeat_interleave(length)
