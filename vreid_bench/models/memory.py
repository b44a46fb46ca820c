"""Identity memories built once with the frozen CLIP encoder (TF-CLIP's CLIP-Memory, CG-CLIP's image prototypes)."""

from __future__ import annotations

import torch
from torch import Tensor

from vreid_bench.engine.features import progress_bar
from vreid_bench.errors import ConfigError
from vreid_bench.models.base import TrainingData
from vreid_bench.models.clip_backbone import ClipBackbone
from vreid_bench.models.layers import is_main_process


@torch.no_grad()
def clip_identity_memory(backbone: ClipBackbone, data: TrainingData, batch_size: int) -> Tensor:
    """Frozen-encoder identity prototypes ``(num_ids, embed_dim)``: clip → tracklet → identity means.

    A clip's feature is the frame mean of its projected class token, computed without the camera term (as the
    reference builds its memory), under the run's mixed precision (TF-CLIP builds its memory under autocast).
    Under DDP each process encodes its share of the tracklets and the sums are added over processes. The
    backbone is put in eval mode for the pass and restored afterwards.
    """
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    sums = torch.zeros(len(data.tracklets), backbone.embed_dim, device=device)
    clip_counts = torch.zeros(len(data.tracklets), device=device)
    with progress_bar(is_main_process()) as bar:
        task = bar.add_task("identity memory (tracklets)", total=data.share_size, info="")
        for clips, _labels, _camids, owners in data.iter_clips(batch_size):
            batch, length = clips.shape[:2]
            with data.autocast():
                projected = backbone.forward_tokens(clips.flatten(0, 1)).projected  # (B*T, embed_dim)
            sums.index_add_(0, owners, projected.float().view(batch, length, -1).mean(1))  # (B, embed_dim)
            clip_counts.index_add_(0, owners, torch.ones(batch, device=device))
            bar.update(task, completed=int((clip_counts > 0).sum()))  # this process's share
    backbone.train(was_training)
    data.reduce_sum(sums)
    data.reduce_sum(clip_counts)
    if not bool((clip_counts > 0).all()):
        raise ConfigError("some training tracklets yielded no clip while the identity memory was built: "
                          "check the dataset's training split (every tracklet needs at least one frame)")
    tracklet_features = sums / clip_counts[:, None]  # (num_tracklets, embed_dim)
    labels = torch.as_tensor(data.labels, dtype=torch.long, device=device)
    memory = torch.zeros(data.num_ids, backbone.embed_dim, device=device)
    memory.index_add_(0, labels, tracklet_features)
    tracklets_per_id = torch.bincount(labels, minlength=data.num_ids).float()
    if not bool((tracklets_per_id > 0).all()):
        empty = int((tracklets_per_id == 0).nonzero()[0])
        raise ConfigError(f"training label {empty} has no tracklet: relabel the training identities 0..num_ids-1")
    return memory / tracklets_per_id[:, None]
