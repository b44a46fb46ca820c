"""Each loss against a straightforward loop over the formula, in float64, on random inputs."""

import math

import pytest
import torch

from vreid_bench.models.heads import BNNeck
from vreid_bench.models.losses import (
    batch_hard_triplet,
    image_text_contrastive,
    label_smoothed_cross_entropy,
    pairwise_euclidean,
    supervised_contrastive,
)


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _log_softmax_row(row):
    top = max(row)
    log_sum = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - log_sum for v in row]


def test_label_smoothed_cross_entropy_matches_the_formula():
    logits, labels, epsilon = _random(6, 5), torch.tensor([0, 4, 2, 2, 1, 3]), 0.1
    expected = 0.0
    for row, label in zip(logits.tolist(), labels.tolist()):
        log_p = _log_softmax_row(row)
        target = [(1 - epsilon) * (c == label) + epsilon / len(row) for c in range(len(row))]
        expected -= sum(t * lp for t, lp in zip(target, log_p))
    expected /= len(labels)
    assert label_smoothed_cross_entropy(logits, labels, epsilon).item() == pytest.approx(expected, rel=1e-9)


def _triplet_reference(features, labels, margin, soft):
    x, y = features.tolist(), labels.tolist()
    dist = [[math.dist(a, b) for b in x] for a in x]
    terms = []
    for i in range(len(x)):
        positives = [dist[i][j] for j in range(len(x)) if y[j] == y[i] and j != i]
        negatives = [dist[i][j] for j in range(len(x)) if y[j] != y[i]]
        if not positives or not negatives:
            continue
        gap = max(positives) - min(negatives)
        terms.append(math.log1p(math.exp(gap)) if soft else max(0.0, gap + margin))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_triplet_matches_the_formula(soft):
    features, labels = _random(8, 5), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    expected = _triplet_reference(features, labels, 0.3, soft)
    assert batch_hard_triplet(features, labels, 0.3, soft_margin=soft).item() == pytest.approx(expected, rel=1e-6)


def test_triplet_leaves_out_anchors_without_positive_and_stays_differentiable():
    features = _random(5, 4, seed=1).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1, 2])  # identity 2 has a single sample
    loss = batch_hard_triplet(features, labels, 0.3)
    assert loss.item() == pytest.approx(_triplet_reference(features.detach(), labels, 0.3, False), rel=1e-6)
    loss.backward()
    assert torch.isfinite(features.grad).all()


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]])
def test_triplet_without_any_valid_anchor_is_a_differentiable_zero(labels):
    features = _random(4, 3).requires_grad_()
    loss = batch_hard_triplet(features, torch.tensor(labels))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(features.grad, torch.zeros_like(features))


def test_triplet_gradient_is_finite_for_identical_features():
    features = torch.ones(4, 3, dtype=torch.float64, requires_grad=True)
    batch_hard_triplet(features, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(features.grad).all()


def test_pairwise_euclidean_matches_cdist():
    x, y = _random(4, 6), _random(3, 6, seed=2)
    assert torch.allclose(pairwise_euclidean(x, y), torch.cdist(x, y), atol=1e-6)


def test_supervised_contrastive_matches_the_formula():
    queries, keys = _random(6, 4), _random(5, 4, seed=3)
    query_labels, key_labels = torch.tensor([0, 1, 2, 0, 1, 9]), torch.tensor([0, 0, 1, 2, 2])
    temperature = 0.5
    per_query = []
    for q, label in zip(queries.tolist(), query_labels.tolist()):
        logits = [sum(a * b for a, b in zip(q, k)) / temperature for k in keys.tolist()]
        log_p = _log_softmax_row(logits)
        positive = [lp for lp, kl in zip(log_p, key_labels.tolist()) if kl == label]
        if positive:  # query 9 has no positive key and is left out
            per_query.append(-sum(positive) / len(positive))
    expected = sum(per_query) / len(per_query)
    got = supervised_contrastive(queries, keys, query_labels, key_labels, temperature)
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_image_text_contrastive_matches_the_formula():
    images, texts, temperature = _random(4, 6), _random(4, 6, seed=4), 0.07
    normalise = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in images.tolist()]
    normalise_t = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in texts.tolist()]
    sim = [[sum(a * b for a, b in zip(i, t)) / temperature for t in normalise_t] for i in normalise]
    i2t = -sum(_log_softmax_row(sim[i])[i] for i in range(4)) / 4
    t2i = -sum(_log_softmax_row([sim[j][i] for j in range(4)])[i] for i in range(4)) / 4
    got = image_text_contrastive(images, texts, temperature)
    assert got.item() == pytest.approx((i2t + t2i) / 2, rel=1e-9)


def test_bnneck_freezes_a_zero_bias_and_starts_the_classifier_small():
    torch.manual_seed(0)
    neck = BNNeck(512, 1000)
    assert not neck.bn.bias.requires_grad and torch.equal(neck.bn.bias, torch.zeros(512))
    assert neck.classifier.bias is None
    assert neck.classifier.weight.std().item() == pytest.approx(0.001, rel=0.05)
    feature = torch.randn(8, 512)
    out = neck(feature)
    assert torch.equal(out.feature, feature)
    assert out.bn_feature.shape == (8, 512) and out.logits.shape == (8, 1000)
    assert torch.allclose(out.bn_feature.mean(0), torch.zeros(512), atol=1e-5)  # train mode: batch-normalised


def test_half_precision_inputs_are_computed_in_float32():
    features = _random(8, 5).half().requires_grad_()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = batch_hard_triplet(features, labels)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(features.grad).all()
    expected = _triplet_reference(features.detach().double(), labels, 0.3, False)
    assert loss.item() == pytest.approx(expected, rel=1e-3)
    logits = _random(4, 3).bfloat16()
    assert label_smoothed_cross_entropy(logits, torch.tensor([0, 1, 2, 0])).dtype == torch.float32
