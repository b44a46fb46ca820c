"""CLIP-ReID baseline: prompt construction, stage 1 (prompts only), stage 2 losses, a text-free test feature."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from baselines.clipreid import CLIPReID, PromptStage, penultimate_class_token, stage1_learning_rate
from recipes import tiny_recipe
from toolkit_fixture import make_toolkit_dataset
from vreid_bench.data import Tracklet
from vreid_bench.datasets import load
from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.optim import parameter_groups
from vreid_bench.engine.train import eval_run, run_training
from vreid_bench.errors import ConfigError
from vreid_bench.models import create
from vreid_bench.models.base import TrainingData
from vreid_bench.models.losses import supervised_contrastive
from vreid_bench.protocol import get_protocol
from vreid_bench.recipe import OptimizerSpec

IMAGE_SIZE = (32, 16)  # 2×1 patches of the tiny backbone: fast, and every code path is the ViT-B/16 one
NUM_IDS, CLIPS_PER_ID, SEQ_LEN, NUM_CAMS = 4, 4, 2, 2
# CLIP's BPE ids of "A photo of a X X X X person." (start, a, photo, of, a, x ×4, person, ., end of text).
TEMPLATE_IDS = [49406, 320, 1125, 539, 320, 343, 343, 343, 343, 2533, 269, 49407]


def build(**overrides: object) -> CLIPReID:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny backbone has no pretrained weights, on purpose
        return create("clipreid", num_ids=NUM_IDS, num_cams=NUM_CAMS, pretrained="none", image_size=IMAGE_SIZE,
                      seq_len=SEQ_LEN, backbone="tiny", **overrides)


def synthetic_clips(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clips ``(N, T, 3, H, W)`` whose frames are an identity's pattern plus noise, their labels and cameras."""
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randn(NUM_IDS, 3, *IMAGE_SIZE, generator=generator)
    labels = torch.arange(NUM_IDS).repeat_interleave(CLIPS_PER_ID)  # (N,)
    noise = 0.3 * torch.randn(len(labels), SEQ_LEN, 3, *IMAGE_SIZE, generator=generator)
    clips = patterns[labels].unsqueeze(1) + noise  # (N, T, 3, H, W)
    camids = torch.arange(len(labels)) % NUM_CAMS
    return clips, labels, camids


def training_data(stage: PromptStage | None = None) -> TrainingData:
    clips, labels, camids = synthetic_clips()
    tracklets = [Tracklet(frames=(f"{i}.jpg",), pid=int(label), camid=int(cam))
                 for i, (label, cam) in enumerate(zip(labels, camids))]

    def iter_clips(batch_size: int):
        for start in range(0, len(labels), batch_size):
            index = torch.arange(start, min(start + batch_size, len(labels)))
            yield clips[index], labels[index], camids[index], index

    return TrainingData(tracklets=tracklets, labels=labels.tolist(), num_ids=NUM_IDS, num_cams=NUM_CAMS,
                        captions={label: [] for label in range(NUM_IDS)}, iter_clips=iter_clips,
                        device=torch.device("cpu"), stages={"prompts": stage or PromptStage()})


def stage1(epochs: int) -> PromptStage:
    return PromptStage(epochs=epochs, batch_size=8, lr=1e-2, warmup_epochs=1)


def groups(model: CLIPReID, lr: float) -> list[dict]:
    return parameter_groups(model, OptimizerSpec(lr=lr, weight_decay=1e-4, bias_lr_factor=2.0))


@pytest.fixture(scope="module")
def prepared_state() -> dict[str, torch.Tensor]:
    """The state of a model after a short stage 1, computed once for the tests that start from it."""
    model = build()
    model.prepare(training_data(stage1(4)))
    return model.state_dict()


@pytest.fixture
def prepared(prepared_state: dict[str, torch.Tensor]) -> CLIPReID:
    """A fresh model holding :func:`prepared_state`, for a test to change at will."""
    model = build()
    model.load_state_dict(prepared_state)
    return model


def stage1_loss(model: CLIPReID, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Stage 1's loss with the prompts' text features (the cached ones once the text tower is dropped)."""
    with torch.no_grad():
        text = model.text_features[labels] if model.backbone.text is None else model.text_features_of(labels)
        return float(supervised_contrastive(features, text, labels, labels)
                     + supervised_contrastive(text, features, labels, labels))


def test_context_vectors_sit_at_the_placeholder_positions_of_the_template():
    model = build()
    assert model.prompts.template_ids[0].tolist() == TEMPLATE_IDS
    assert (model.prompts.start, model.prompts.end) == (5, 9)
    assert model.prompts.eot_position == len(TEMPLATE_IDS) - 1
    text = model.backbone.text
    labels = torch.tensor([2, 0])
    prompts = model.prompts(labels, text.token_embedding)  # (2, 12, width)
    template = text.token_embedding(model.prompts.template_ids)  # (1, 12, width)
    assert torch.equal(prompts[:, 5:9], model.prompts.context[labels])
    assert torch.equal(prompts[:, :5], template[:, :5].expand(2, -1, -1))
    assert torch.equal(prompts[:, 9:], template[:, 9:].expand(2, -1, -1))
    # With every context vector set to the embedding of "x", the prompt is the tokenized template itself, and the
    # text feature is that of the full 77-token sequence (the causal encoder never looks past end of text).
    with torch.no_grad():
        model.prompts.context.copy_(template[0, 5:9].expand(NUM_IDS, -1, -1))
        expected = model.backbone.encode_text(torch.tensor([TEMPLATE_IDS + [0] * (77 - len(TEMPLATE_IDS))]))
        assert torch.allclose(model.text_features_of(labels), expected.expand(2, -1), atol=1e-5)


def test_prompt_without_consecutive_placeholders_is_rejected():
    with pytest.raises(ConfigError, match="consecutive"):
        build(prompt="A photo of a person.")
    with pytest.raises(ConfigError, match="consecutive"):
        build(prompt="A X photo of a X person.")


def test_unknown_setting_lists_the_valid_keys():
    with pytest.raises(ConfigError, match="i2t_loss_weight"):
        build(stage_one_epochs=3)


def test_stage1_learning_rate_follows_warmup_then_cosine():
    config = PromptStage()
    assert stage1_learning_rate(1, config) == pytest.approx(1e-5 + (3.5e-4 - 1e-5) / 5)
    assert stage1_learning_rate(4, config) == pytest.approx(1e-5 + 4 * (3.5e-4 - 1e-5) / 5)
    assert stage1_learning_rate(5, config) == pytest.approx(1e-6 + 0.5 * (3.5e-4 - 1e-6) * (1 + math.cos(math.pi * 5 / 120)))
    assert stage1_learning_rate(60, config) == pytest.approx(1e-6 + 0.5 * (3.5e-4 - 1e-6))
    assert stage1_learning_rate(120, config) == pytest.approx(1e-6)
    after_warmup = [stage1_learning_rate(epoch, config) for epoch in range(5, 121)]
    assert after_warmup == sorted(after_warmup, reverse=True)


def test_stage1_lowers_supcon_and_changes_only_the_prompts():
    model = build()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    data = training_data(stage1(8))
    features, labels = model.frozen_image_features(data, stage1(8))
    assert features.shape == (NUM_IDS * CLIPS_PER_ID, model.backbone.embed_dim)
    loss_before = stage1_loss(model, features, labels)
    model.prepare(data)
    loss_after = stage1_loss(model, features, labels)
    assert loss_after < 0.5 * loss_before
    after = model.state_dict()
    learned = {"prompts.context", "text_features", "prompts_learned"}
    dropped = {key for key in before if key.startswith("backbone.text.")}
    assert dropped and set(after) == set(before) - dropped
    assert not torch.equal(after["prompts.context"], before["prompts.context"])
    unchanged = [key for key in after if key not in learned and torch.equal(before[key], after[key])]
    assert sorted(unchanged) == sorted(set(after) - learned)
    # The features were computed once from the frozen encoder, which stage 1 left as it was.
    assert torch.equal(model.frozen_image_features(data, stage1(8))[0], features)
    # Afterwards the prompts are frozen, every identity's text feature is cached and the text tower is gone: the
    # cached features are those of the learned prompts through the tower of a fresh copy.
    assert bool(model.prompts_learned)
    assert not model.prompts.context.requires_grad
    assert model.backbone.text is None and model.external_training_parameters() > 0
    fresh = build()
    fresh.prompts.context.data.copy_(model.prompts.context)
    assert torch.allclose(model.text_features, fresh.text_features_of(torch.arange(NUM_IDS)).detach(), atol=1e-6)


def test_text_features_stay_out_of_stage2_and_travel_in_the_state_dict(prepared: CLIPReID):
    model = prepared
    trainable = {id(p) for group in groups(model, 5e-6) for p in group["params"]}
    assert model.backbone.text is None  # dropped after stage 1, so stage 2 cannot train it
    assert id(model.prompts.context) not in trainable
    assert trainable >= {id(p) for p in model.backbone.visual.parameters()}
    state = model.state_dict()
    assert state["text_features"].shape == (NUM_IDS, model.backbone.embed_dim)
    assert bool(state["prompts_learned"])

    restored = build()
    assert not bool(restored.prompts_learned)
    restored.load_state_dict(state)
    assert bool(restored.prompts_learned)
    assert torch.equal(restored.text_features, model.text_features)


def test_param_groups_put_biases_at_twice_the_learning_rate(prepared: CLIPReID):
    model = prepared
    by_lr = {group["lr"]: group["params"] for group in groups(model, 5e-6)}
    assert set(by_lr) == {5e-6, 1e-5}
    names = {id(p): name for name, p in model.named_parameters()}
    assert all(names[id(p)].endswith("bias") for p in by_lr[1e-5])


def test_training_before_stage1_is_refused():
    model = build()
    clips, labels, camids = synthetic_clips()
    with pytest.raises(RuntimeError, match="prepare"):
        model.train()(clips[:4], camids[:4], labels[:4])


def test_stage2_trains_the_image_encoder_and_the_loss_falls(prepared: CLIPReID):
    model = prepared
    text_features = model.text_features.clone()
    visual_before = [p.detach().clone() for p in model.backbone.visual.parameters()]
    clips, labels, camids = synthetic_clips(seed=2)
    optimizer = torch.optim.Adam(groups(model, 1e-3))
    model.train()
    totals = []
    for _ in range(8):
        terms = model.losses(model(clips, camids, labels), labels)
        assert set(terms) == {"id", "triplet", "i2t"}
        loss = torch.stack(list(terms.values())).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(float(loss.detach()))
    assert totals[-1] < 0.8 * totals[0]
    assert torch.equal(model.text_features, text_features)
    assert all(not torch.equal(a, b) for a, b in zip(visual_before, model.backbone.visual.parameters()))


def test_training_outputs_match_the_references_features(prepared: CLIPReID):
    model = prepared.train()
    clips, labels, camids = synthetic_clips()
    clips, labels, camids = clips[:6], labels[:6], camids[:6]
    # The block before the last one outputs what the last block takes in: CLIP-ReID's x11.
    outputs_of_previous_block = []
    handle = model.backbone.visual.transformer.resblocks[-2].register_forward_hook(
        lambda _m, _args, output: outputs_of_previous_block.append(output))
    try:
        outputs = model(clips, camids, labels)
    finally:
        handle.remove()
    frames_x11 = outputs_of_previous_block[0][:, 0]  # (B*T, width), batch-first open_clip
    assert torch.allclose(outputs["penultimate_feature"], frames_x11.view(6, SEQ_LEN, -1).mean(1))
    assert torch.allclose(outputs["i2t_logits"], outputs["proj_feature"] @ model.text_features.t())
    frames = clips.flatten(0, 1)
    with torch.no_grad():
        with penultimate_class_token(model.backbone) as captured:
            model.backbone.forward_tokens(frames)
        model.backbone.forward_tokens(frames)
    assert len(captured) == 1  # the hook is gone once the context exits


def test_test_feature_is_the_frame_mean_of_class_and_projected_features_without_text(prepared: CLIPReID):
    model = prepared.eval()
    clips, _, camids = synthetic_clips()
    clips, camids = clips[:5], camids[:5]
    with torch.no_grad():
        features = model(clips, camids)
        assert features.shape == (5, model.backbone.width + model.backbone.embed_dim)
        assert model.feature_dim == features.shape[1]
        tokens = model.backbone.forward_tokens(clips.flatten(0, 1), camids.repeat_interleave(SEQ_LEN))
        expected = torch.cat([tokens.cls, tokens.projected], dim=1).view(5, SEQ_LEN, -1).mean(1)
        assert torch.allclose(features, expected, atol=1e-6)
        model.text_features.normal_()
        model.prompts.context.normal_()
        assert torch.equal(model(clips, camids), features)


def test_the_harness_runs_both_stages_and_a_saved_run_evaluates_the_same(tmp_path):
    dataset_dir = make_toolkit_dataset(tmp_path / "data", crop_size=IMAGE_SIZE)
    recipe = tiny_recipe("clipreid", IMAGE_SIZE, SEQ_LEN, "stages.prompts.epochs=2", "stages.prompts.batch_size=4")
    options = RunOptions(workers=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_training("clipreid", load(dataset_dir), get_protocol("gallery-only"), recipe, tmp_path / "runs",
                              pretrained="none", options=options, progress=False)
        again = eval_run(result.run_dir, options=options, progress=False)
    weights = torch.load(result.run_dir / "model.pt", weights_only=True)
    assert bool(weights["prompts_learned"]) and weights["text_features"].abs().sum() > 0
    assert again["mAP"] == pytest.approx(result.metrics["mAP"])
