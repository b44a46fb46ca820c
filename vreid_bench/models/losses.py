"""Loss functions shared by the models: identity, metric and cross-modal terms.

Each is a plain function returning a scalar tensor, so a model's ``losses`` reads as the weighted sum the
paper writes down. Every loss computes in float32 (or float64) whatever its inputs' precision: under mixed
precision a half-precision distance clamp or softmax loses the small values these losses live on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _at_least_float32(tensor: Tensor) -> Tensor:
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def label_smoothed_cross_entropy(logits: Tensor, labels: Tensor, epsilon: float = 0.1) -> Tensor:
    """Cross-entropy against ``(1 - ε)·one_hot + ε / C`` (Szegedy et al.), as every CLIP ReID method trains its
    identity classifiers: it keeps logits of a few hundred training identities from saturating.

    ``logits (B, C)``, ``labels (B,)`` → mean over the batch.
    """
    return F.cross_entropy(_at_least_float32(logits), labels, label_smoothing=epsilon)


def pairwise_euclidean(x: Tensor, y: Tensor) -> Tensor:
    """``(M, D), (N, D) -> (M, N)`` Euclidean distances; the squared form is clamped before the root so that
    the gradient stays finite where two features coincide (an anchor with itself)."""
    x, y = _at_least_float32(x), _at_least_float32(y)
    with torch.autocast(device_type=x.device.type, enabled=False):  # the difference form cancels in half precision
        squared = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2 * x @ y.t()
        return squared.clamp(min=1e-12).sqrt()


def batch_hard_triplet(features: Tensor, labels: Tensor, margin: float = 0.3, soft_margin: bool = False) -> Tensor:
    """Batch-hard triplet loss (Hermans et al., 2017) on Euclidean distances.

    For each anchor: its farthest positive (same label, not itself) and its nearest negative;
    loss ``max(0, d_ap - d_an + margin)``, or ``log(1 + exp(d_ap - d_an))`` with ``soft_margin``.
    Anchors that have no other sample of their identity, or no sample of another identity, are left out
    (a P×K batch has neither; a ragged last batch may), and a batch with no valid anchor gives a zero that
    still backpropagates.

    ``features (B, D)``, ``labels (B,)`` → mean over valid anchors.
    """
    dist = pairwise_euclidean(features, features)  # (B, B)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)  # (B, B)
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & not_self
    negative = ~same
    valid = positive.any(1) & negative.any(1)  # (B,)
    if not bool(valid.any()):
        return features.sum() * 0.0
    # Distances are >= 0, so -1 / +inf mark the pairs a max / min must skip.
    hardest_positive = dist.masked_fill(~positive, -1.0).amax(1)[valid]  # (V,)
    hardest_negative = dist.masked_fill(~negative, float("inf")).amin(1)[valid]  # (V,)
    gap = hardest_positive - hardest_negative
    if soft_margin:
        return F.softplus(gap).mean()
    return F.relu(gap + margin).mean()


def supervised_contrastive(queries: Tensor, keys: Tensor, query_labels: Tensor, key_labels: Tensor,
                           temperature: float = 1.0) -> Tensor:
    """Supervised contrastive loss (Khosla et al., 2020) from each query to a set of keys, as CLIP-ReID's
    stage 1 uses it in both directions (image→text and text→image) with temperature 1 and raw features.

    For each query, minus the mean over its positive keys (same label) of ``log softmax(q·k / τ)`` taken over
    all keys. Queries with no positive key are left out. ``queries (B, D)``, ``keys (N, D)``, labels ``(B,)``,
    ``(N,)`` → mean over queries.
    """
    logits = _at_least_float32(queries) @ _at_least_float32(keys).t() / temperature  # (B, N)
    log_prob = F.log_softmax(logits, dim=1)
    positive = (query_labels.unsqueeze(1) == key_labels.unsqueeze(0)).to(log_prob.dtype)  # (B, N)
    counts = positive.sum(1)
    has_positive = counts > 0
    if not bool(has_positive.any()):
        return queries.sum() * 0.0 + keys.sum() * 0.0
    mean_log_prob = (positive * log_prob).sum(1)[has_positive] / counts[has_positive]
    return -mean_log_prob.mean()


def image_text_contrastive(image_features: Tensor, text_features: Tensor, temperature: float | Tensor = 0.07,
                           normalize: bool = True) -> Tensor:
    """Symmetric InfoNCE of CLIP: row i of each side is the positive of row i of the other, every other row a
    negative; the mean of the image→text and text→image cross-entropies of cosine similarity / τ. ``temperature``
    may be a tensor, e.g. ``1 / logit_scale.exp()`` of a learnable scale.

    ``image_features (B, D)``, ``text_features (B, D)`` → scalar.
    """
    image_features, text_features = _at_least_float32(image_features), _at_least_float32(text_features)
    if normalize:
        image_features = F.normalize(image_features, dim=-1)
        text_features = F.normalize(text_features, dim=-1)
    logits = image_features @ text_features.t() / temperature  # (B, B)
    targets = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))
