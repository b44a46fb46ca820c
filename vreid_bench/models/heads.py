"""Heads on top of a pooled feature."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn


class BNNeckOutput(NamedTuple):
    feature: Tensor  # (B, D) before batch norm: the triplet loss and the test feature use it
    bn_feature: Tensor  # (B, D) after batch norm: the classifier's input
    logits: Tensor  # (B, num_classes)


class BNNeck(nn.Module):
    """Batch norm, then a bias-free linear identity classifier (Luo et al., 2019, "Bag of Tricks").

    The triplet loss works in the free Euclidean space before the norm and the identity loss on the
    normalised side, where a hypersphere suits a softmax; the BN bias is zero and frozen so that it cannot
    shift the features away from the origin. Classifier weights start at std 0.001 as in the references.
    """

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feature: Tensor) -> BNNeckOutput:
        """``(B, D) -> (B, D), (B, D), (B, num_classes)``."""
        bn_feature = self.bn(feature)
        return BNNeckOutput(feature=feature, bn_feature=bn_feature, logits=self.classifier(bn_feature))
