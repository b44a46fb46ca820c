"""CG-CLIP: the ablation switches change the computation, captions shape training only, TFE costs L·T·N."""

from __future__ import annotations

import pytest
import torch

from cgclip.cmr import (
    PLACEHOLDER_CAPTION,
    CaptionGuidedMemoryRefinement,
    CMRConfig,
    MissingCaptionsError,
    build_text_memory,
    identity_captions,
)
from cgclip.model import CGCLIP
from cgclip.tfe import TFEConfig, TokenFeatureExtractor
from test_tfclip import EMBED, NUM_IDS, SEQ_LEN, WIDTH, build, synthetic_clips, train_steps, training_data
from vreid_bench.errors import ConfigError, VreidError
from vreid_bench.profiling import count_flops

CAPTIONS = {
    0: ["a man in a red shirt", "a man in a red shirt running"],
    1: ["a woman with long black hair"],
    2: ["a player wearing number 7", "a player wearing number 7", "a tall player in white"],
    3: ["a dancer in a yellow dress"],
}
OTHER_CAPTIONS = {label: [f"a person seen from behind, {label}"] for label in range(NUM_IDS)}


def cgclip(**overrides: object) -> CGCLIP:
    return build("cgclip", cmr_dropout=0.0, **overrides)


def prepared(captions: dict[int, list[str]] = CAPTIONS, **overrides: object) -> CGCLIP:
    model = cgclip(**overrides)
    model.prepare(training_data(captions))
    return model


def eval_features(model: CGCLIP) -> torch.Tensor:
    clips, _, camids = synthetic_clips()
    model.eval()
    with torch.no_grad():
        return model(clips, camids)


def training_outputs(model: CGCLIP) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    clips, labels, camids = synthetic_clips()
    model.train()
    outputs = model(clips, camids)
    return outputs, model.losses(outputs, labels)


def test_training_lowers_the_loss():
    model = prepared()
    totals = train_steps(model, 8)
    assert totals[-1] < 0.8 * totals[0]


@pytest.mark.parametrize("tfe, dim", [(True, 2 * WIDTH + EMBED), (False, WIDTH + EMBED)])
def test_eval_feature_shape_follows_the_tfe_switch(tfe: bool, dim: int):
    model = cgclip(tfe=tfe, cmr=False)
    features = eval_features(model)
    assert model.feature_dim == dim
    assert features.shape == (len(synthetic_clips()[1]), dim)


def test_without_tfe_the_feature_is_the_temporal_average_of_class_tokens_and_projections():
    model = cgclip(tfe=False, cmr=False)
    clips, _, camids = synthetic_clips()
    features = eval_features(model)
    with torch.no_grad():
        frames = model.backbone.forward_tokens(clips.flatten(0, 1), camids.repeat_interleave(SEQ_LEN))
    expected = torch.cat([frames.cls.view(len(clips), SEQ_LEN, -1).mean(1),
                          frames.projected.view(len(clips), SEQ_LEN, -1).mean(1)], dim=1)
    torch.testing.assert_close(features, expected)


def test_tfe_and_its_token_count_change_the_video_feature():
    with_tfe, fewer_tokens, without = (eval_features(cgclip(cmr=False, **switches))
                                       for switches in ({}, {"tfe_tokens": 2}, {"tfe": False}))
    # The backbone is built first from the same seed, so the class-token and projected parts agree.
    torch.testing.assert_close(with_tfe[:, :WIDTH + EMBED], without)
    torch.testing.assert_close(fewer_tokens[:, :WIDTH + EMBED], without)
    assert not torch.allclose(with_tfe[:, WIDTH + EMBED:], fewer_tokens[:, WIDTH + EMBED:])
    assert cgclip(cmr=False).tfe.queries.shape == (8, WIDTH)


def test_cmr_switch_changes_the_loss_terms_and_the_gradients():
    with_cmr, without = prepared(), prepared(cmr=False)
    terms = {}
    for name, model in (("on", with_cmr), ("off", without)):
        _, terms[name] = training_outputs(model)
        sum(terms[name].values()).backward()
    assert set(terms["on"]) == {"id", "triplet", "cmr"}
    assert set(terms["off"]) == {"id", "triplet"}
    assert without.cmr is None and "image_memory" not in without.state_dict()
    assert with_cmr.cmr.memory_out[1].weight.grad.abs().sum() > 0
    grad_on, grad_off = with_cmr.backbone.visual.proj.grad, without.backbone.visual.proj.grad
    assert not torch.allclose(grad_on, grad_off)


def test_contrastive_logits_are_dot_products_with_the_caption_refined_prototypes():
    model = prepared()
    outputs, terms = training_outputs(model)
    refined = model.cmr(model.image_memory, model.text_memory, model.text_valid)
    torch.testing.assert_close(outputs["memory_logits"], outputs["proj_feature"] @ refined.t())
    assert not torch.allclose(refined, model.image_memory)  # the refinement does move the prototypes
    labels = synthetic_clips()[1]
    log_prob = outputs["memory_logits"].log_softmax(1)
    smoothed = -(0.9 * log_prob.gather(1, labels[:, None]).squeeze(1) + 0.1 * log_prob.mean(1)).mean()
    torch.testing.assert_close(terms["cmr"], smoothed)


def test_captions_shape_training_but_never_the_eval_feature():
    first, second = prepared(CAPTIONS), prepared(OTHER_CAPTIONS)
    torch.testing.assert_close(eval_features(first), eval_features(second), rtol=0, atol=0)
    _, first_terms = training_outputs(first)
    _, second_terms = training_outputs(second)
    assert not torch.allclose(first_terms["cmr"], second_terms["cmr"])
    assert not any(key.startswith("backbone.text") for key in first.state_dict())  # no text tower is kept


def test_missing_captions_fail_before_any_encoder_pass_with_the_command_that_makes_them():
    model = cgclip()
    captions = {**CAPTIONS, 2: []}
    data = training_data(captions)
    with pytest.raises(MissingCaptionsError) as error:
        model.prepare(data)
    message = str(error.value)
    assert isinstance(error.value, VreidError) and "\n" not in message
    assert "vreid caption --dataset NAME_OR_DIR --captioner" in message and "training labels 2" in message
    assert data.calls == []


@pytest.mark.parametrize("source", ["placeholder", "none"])
def test_caption_free_sources_train_without_captions(source: str):
    model = prepared(captions={label: [] for label in range(NUM_IDS)}, caption_source=source)
    outputs, terms = training_outputs(model)
    assert "cmr" in terms
    if source == "none":
        assert model.cmr is None
        torch.testing.assert_close(outputs["memory_logits"], outputs["proj_feature"] @ model.image_memory.t())
    else:
        assert bool(model.text_valid[:, 0].all()) and not bool(model.text_valid[:, 1:].any())


def test_identity_captions_by_source():
    assert identity_captions("none", CAPTIONS, NUM_IDS) == {}
    assert identity_captions("placeholder", {}, 2) == {0: [PLACEHOLDER_CAPTION], 1: [PLACEHOLDER_CAPTION]}
    assert identity_captions("dataset", {**CAPTIONS, 1: ["", "  a woman"]}, NUM_IDS)[1] == ["  a woman"]
    with pytest.raises(MissingCaptionsError, match="1 of 4"):
        identity_captions("dataset", {**CAPTIONS, 3: ["  "]}, NUM_IDS)


def test_text_memory_averages_distinct_captions_into_at_most_k_prototypes():
    vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [2.0, 2.0], "d": [4.0, 0.0]}

    def encode(texts: list[str]) -> torch.Tensor:
        assert len(texts) == len(set(texts))  # each distinct caption encoded once
        return torch.tensor([vectors[text] for text in texts])

    captions = {0: ["a", "b", "a", "c"], 1: ["d"], 2: []}
    memory, valid = build_text_memory(captions, num_ids=3, max_captions=2, dim=2, encode=encode)
    # Identity 0 has distinct captions a, b, c: two groups, (a, b) and (c).
    torch.testing.assert_close(memory[0], torch.tensor([[0.5, 0.5], [2.0, 2.0]]))
    torch.testing.assert_close(memory[1, 0], torch.tensor([4.0, 0.0]))
    assert valid.tolist() == [[True, True], [True, False], [False, False]]


def test_refinement_ignores_padded_text_slots():
    torch.manual_seed(0)
    refine = CaptionGuidedMemoryRefinement(CMRConfig(dim=EMBED, heads=2, dropout=0.0, max_captions=3)).eval()
    image = torch.randn(NUM_IDS, EMBED)
    text = torch.randn(NUM_IDS, 3, EMBED)
    valid = torch.tensor([[True, False, False], [True, True, False], [True, True, True], [True, False, False]])
    changed = text.clone()
    changed[~valid] = 100.0
    with torch.no_grad():
        torch.testing.assert_close(refine(image, text, valid), refine(image, changed, valid))
        changed[0, 0] = torch.randn(EMBED)  # a real slot does count
        assert not torch.allclose(refine(image, text, valid), refine(image, changed, valid))


def test_tfe_cost_grows_linearly_with_tokens_and_frames():
    def flops(num_tokens: int, frames: int) -> int:
        module = TokenFeatureExtractor(TFEConfig(width=64, heads=2, num_tokens=num_tokens, seq_len=8)).eval()
        tokens = torch.randn(1, frames, 129, 64)
        with torch.inference_mode():
            return count_flops(lambda: module(tokens)).total

    base, double_frames = flops(8, 8), flops(8, 16)
    assert double_frames / base == pytest.approx(2.0, rel=0.05)  # not the 4× of attention over all T·N tokens
    attention = flops(16, 8) - base  # extra queries only add attention over T·N keys and per-query work
    assert 0 < attention < 0.5 * base


def test_tfe_temporal_embedding_makes_frame_order_matter_and_resamples_to_other_lengths():
    torch.manual_seed(0)
    module = TokenFeatureExtractor(TFEConfig(width=64, heads=2, num_tokens=4, seq_len=4)).eval()
    tokens = torch.randn(2, 4, 5, 64)
    with torch.no_grad():
        assert not torch.allclose(module(tokens), module(tokens.flip(1)))
        assert module(torch.randn(2, 7, 5, 64)).shape == (2, 64)
        torch.testing.assert_close(module.temporal_positions(4), module.temporal_embedding)
        torch.testing.assert_close(module.temporal_positions(7)[[0, -1]], module.temporal_embedding[[0, -1]])


def test_settings_are_checked_with_the_fix():
    with pytest.raises(ConfigError, match="tfe_tokens=0"):
        cgclip(tfe_tokens=0)
    with pytest.raises(ConfigError, match="caption_source"):
        cgclip(caption_source="wikipedia")
    model = prepared()
    model.prepare(training_data({}))  # already built: captions are not looked at again
    fewer_identities = training_data(CAPTIONS)
    fewer_identities.num_ids = 2
    with pytest.raises(ConfigError, match="num_ids=2"):
        model.prepare(fewer_identities)
