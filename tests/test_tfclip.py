"""TF-CLIP baseline: CLIP-Memory built once, SSP and TMD sizes, loss terms and weights, the 2,048-d test feature."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from baselines.tfclip import TFCLIP, SequenceSpecificPrompt, TemporalMemoryDiffusion
from vreid_bench.data import Tracklet
from vreid_bench.engine.optim import parameter_groups
from vreid_bench.errors import ConfigError
from vreid_bench.models import create
from vreid_bench.models.base import TrainingData
from vreid_bench.recipe import OptimizerSpec

IMAGE_SIZE = (32, 16)  # 2×1 patches of the tiny backbone (width 64, embed 32): every ViT-B/16 code path, fast
NUM_IDS, TRACKLETS_PER_ID, SEQ_LEN, NUM_CAMS = 4, 4, 3, 2
WIDTH, EMBED = 64, 32


def build(name: str = "tfclip", **overrides: object):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny backbone has no pretrained weights, on purpose
        return create(name, num_ids=NUM_IDS, num_cams=NUM_CAMS, pretrained="none", image_size=IMAGE_SIZE,
                      seq_len=SEQ_LEN, backbone="tiny", **overrides)


def synthetic_clips(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One clip per tracklet ``(N, T, 3, H, W)``: the identity's pattern plus noise; labels and cameras."""
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randn(NUM_IDS, 3, *IMAGE_SIZE, generator=generator)
    labels = torch.arange(NUM_IDS).repeat_interleave(TRACKLETS_PER_ID)  # (N,)
    clips = patterns[labels].unsqueeze(1) + 0.3 * torch.randn(len(labels), SEQ_LEN, 3, *IMAGE_SIZE,
                                                                generator=generator)
    return clips, labels, torch.arange(len(labels)) % NUM_CAMS


def training_data(captions: dict[int, list[str]] | None = None, extra_clips: int = 0) -> TrainingData:
    """Training data over :func:`synthetic_clips`; ``extra_clips`` more clips of tracklet 0 come last (a longer
    tracklet), and ``data.calls`` counts how often the clips were iterated."""
    clips, labels, camids = synthetic_clips()
    owners = torch.cat([torch.arange(len(labels)), torch.zeros(extra_clips, dtype=torch.long)])
    all_clips = torch.cat([clips, synthetic_clips(seed=2)[0][:extra_clips]])
    tracklets = [Tracklet(frames=(f"{i}.jpg",), pid=int(label), camid=int(cam))
                 for i, (label, cam) in enumerate(zip(labels, camids))]
    calls: list[int] = []

    def iter_clips(batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
        calls.append(batch_size)
        for start in range(0, len(owners), batch_size):
            index = owners[start:start + batch_size]
            yield all_clips[start:start + batch_size], labels[index], camids[index], index

    data = TrainingData(tracklets=tracklets, labels=labels.tolist(), num_ids=NUM_IDS, num_cams=NUM_CAMS,
                        captions=captions if captions is not None else {label: [] for label in range(NUM_IDS)},
                        iter_clips=iter_clips, device=torch.device("cpu"))
    data.calls = calls  # type: ignore[attr-defined]
    return data


def train_steps(model, steps: int, lr: float = 1e-3) -> list[float]:
    """Full-batch Adam steps on the synthetic clips; the total loss before each step."""
    clips, labels, camids = synthetic_clips()
    optimizer = torch.optim.Adam(parameter_groups(model, OptimizerSpec(lr=lr, weight_decay=1e-4, bias_lr_factor=2.0)))
    model.train()
    totals = []
    for _ in range(steps):
        loss = sum(model.losses(model(clips, camids), labels).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(float(loss.detach()))
    return totals


def test_training_lowers_the_loss():
    model = build(ssp_dropout=0.0)
    model.prepare(training_data())
    totals = train_steps(model, 8)
    assert totals[-1] < 0.8 * totals[0]


def test_test_feature_concatenates_class_token_projection_and_tmd_video_feature():
    model = build()
    clips, _, camids = synthetic_clips()
    model.eval()
    with torch.no_grad():
        feature = model(clips, camids)
        frames = model.backbone.forward_tokens(clips.flatten(0, 1), camids.repeat_interleave(SEQ_LEN))
        tokens = frames.tokens.view(len(clips), SEQ_LEN, *frames.tokens.shape[1:])
        expected = torch.cat([frames.cls.view(len(clips), SEQ_LEN, -1).mean(1),
                              frames.projected.view(len(clips), SEQ_LEN, -1).mean(1),
                              model.tmd(tokens).mean(1)], dim=1)
    assert model.feature_dim == 2 * WIDTH + EMBED
    assert feature.shape == (len(clips), 2 * WIDTH + EMBED)
    torch.testing.assert_close(feature, expected)


def test_memory_is_the_identity_mean_of_tracklet_means_of_frozen_clip_features():
    model = build()
    data = training_data(extra_clips=2)  # tracklet 0 has three clips, every other one
    model.prepare(data)
    clips, labels, _ = synthetic_clips()
    extra = synthetic_clips(seed=2)[0][:2]
    model.eval()
    with torch.no_grad():
        def clip_feature(clip: torch.Tensor) -> torch.Tensor:  # frame mean of the projected class token
            return model.backbone.forward_tokens(clip).projected.mean(0)

        tracklet = [clip_feature(clip) for clip in clips]
        tracklet[0] = torch.stack([tracklet[0], clip_feature(extra[0]), clip_feature(extra[1])]).mean(0)
        expected = torch.stack([torch.stack([tracklet[i] for i in range(len(labels)) if labels[i] == label]).mean(0)
                                for label in range(NUM_IDS)])
    torch.testing.assert_close(model.memory, expected, rtol=1e-4, atol=1e-5)


def test_memory_is_built_once_and_never_refreshed():
    model = build()
    data = training_data()
    model.prepare(data)
    memory = model.memory.clone()
    encoder_before = model.backbone.visual.proj.detach().clone()
    train_steps(model, 2)
    model.prepare(data)
    assert len(data.calls) == 1  # the second prepare did not look at the data
    assert not torch.equal(model.backbone.visual.proj, encoder_before)  # the encoder did learn
    torch.testing.assert_close(model.memory, memory, rtol=0, atol=0)
    assert "memory" in model.state_dict()
    assert all(parameter is not model.memory for parameter in model.parameters())

    restored = build()
    restored.load_state_dict(model.state_dict())
    restored.prepare(data)  # a resumed run: the checkpoint's memory stands
    assert len(data.calls) == 1
    torch.testing.assert_close(restored.memory, memory, rtol=0, atol=0)


def test_loss_terms_carry_the_papers_weights():
    model = build(ssp_dropout=0.0)
    model.prepare(training_data())
    clips, labels, camids = synthetic_clips()
    model.train()
    outputs = model(clips, camids)
    terms = model.losses(outputs, labels)
    assert set(terms) == {"id", "triplet", "memory", "frame"}

    def smoothed(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_prob = logits.log_softmax(1)
        return -(0.9 * log_prob.gather(1, targets[:, None]).squeeze(1) + 0.1 * log_prob.mean(1)).mean()

    id_sum = sum(smoothed(outputs[f"{name}_logits"], labels) for name in ("cls", "proj", "video"))
    torch.testing.assert_close(terms["id"], 0.25 * id_sum)
    torch.testing.assert_close(terms["memory"], smoothed(outputs["memory_logits"], labels))
    assert outputs["frame_logits"].shape == (len(labels) * SEQ_LEN, NUM_IDS)
    torch.testing.assert_close(terms["frame"],
                               smoothed(outputs["frame_logits"], labels.repeat_interleave(SEQ_LEN)) / SEQ_LEN)
    # Memory logits are plain dot products of the projected feature with the clip's adapted memory.
    assert outputs["memory_logits"].shape == (len(labels), NUM_IDS)


def test_tmd_is_detached_from_the_backbone_and_ssp_is_trained_through_the_memory_loss():
    model = build()
    model.prepare(training_data())
    clips, labels, camids = synthetic_clips()
    model.train()
    outputs = model(clips, camids)
    F.cross_entropy(outputs["video_logits"], labels).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.backbone.parameters())
    assert model.tmd.message_fc.weight.grad.abs().sum() > 0

    model.zero_grad()
    outputs = model(clips, camids)
    model.losses(outputs, labels)["memory"].backward()
    assert model.ssp.memory_out[1].weight.grad.abs().sum() > 0
    assert model.backbone.visual.proj.grad.abs().sum() > 0


def test_module_sizes_at_vit_b16_widths_match_the_reference():
    tmd = TemporalMemoryDiffusion(768)
    ssp = SequenceSpecificPrompt(512, layers=2, dropout=0.1)
    assert (tmd.attn.num_heads, tmd.message_attn.num_heads) == (12, 12)
    assert ssp.layers[0].self_attn.num_heads == 8 and ssp.layers[0].mlp[0].out_features == 2048
    tmd_params = sum(p.numel() for p in tmd.parameters())
    ssp_params = sum(p.numel() for p in ssp.parameters())
    assert 9.5e6 < tmd_params < 10.5e6  # "TMD 10 M"
    assert 8.5e6 < ssp_params < 9.5e6  # "SSP 9 M"


def test_training_before_prepare_is_refused_and_settings_are_checked():
    model = build()
    clips, _, camids = synthetic_clips()
    model.train()
    with pytest.raises(RuntimeError, match="prepare"):
        model(clips, camids)
    with pytest.raises(ConfigError, match="ssp_layers=0"):
        build(ssp_layers=0)
    with pytest.raises(ConfigError, match="valid keys"):
        build(tmd_layers=2)
    assert isinstance(model, TFCLIP)
