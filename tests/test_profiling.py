import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vreid_bench.profiling import clip_flops, count_flops, count_parameters, model_cost

B, L, S, E, HEADS = 2, 10, 12, 16, 4


def test_scaled_dot_product_attention_is_counted_as_two_matmuls():
    d, dv = 8, 6
    q, k, v = torch.randn(B, HEADS, L, d), torch.randn(B, HEADS, S, d), torch.randn(B, HEADS, S, dv)
    expected = 2 * B * HEADS * L * S * d + 2 * B * HEADS * L * S * dv  # Q·Kᵀ, then softmax(·)·V
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)).total == expected


def _attention_flops(q_len: int, kv_len: int) -> int:
    """Hand count of one nn.MultiheadAttention call: projections, Q·Kᵀ and A·V summed over heads."""
    projections = 2 * B * q_len * E * E + 2 * (2 * B * kv_len * E * E) + 2 * B * q_len * E * E  # q, k+v, out
    attention = 2 * (2 * B * q_len * kv_len * E)
    return projections + attention


def test_multihead_attention_fast_path_is_counted():
    mha = nn.MultiheadAttention(E, HEADS, batch_first=True).eval()
    x = torch.randn(B, L, E)
    with torch.inference_mode():  # the conditions under which PyTorch takes the fused fast path
        flops = count_flops(lambda: mha(x, x, x, need_weights=False)).total
    assert flops == _attention_flops(L, L)


def test_cross_attention_is_counted():
    mha = nn.MultiheadAttention(E, HEADS, batch_first=True).eval()
    queries, memory = torch.randn(B, L, E), torch.randn(B, S, E)
    with torch.inference_mode():
        flops = count_flops(lambda: mha(queries, memory, memory, need_weights=False)).total
    assert flops == _attention_flops(L, S)


def test_transformer_encoder_layer_fast_path_is_counted():
    ffn = 32
    layer = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=ffn, batch_first=True).eval()
    x = torch.randn(B, L, E)
    with torch.inference_mode():
        flops = count_flops(lambda: layer(x)).total
    assert flops == _attention_flops(L, L) + 2 * B * L * E * ffn * 2


def test_counting_restores_the_fast_path_setting():
    before = torch.backends.mha.get_fastpath_enabled()
    count_flops(lambda: None)
    assert torch.backends.mha.get_fastpath_enabled() == before


class _Pool(nn.Module):
    """Mean of each clip's pixels through one linear layer; the embedding is tied to a second, frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 5)
        self.frozen = nn.Linear(5, 5, bias=False)
        self.frozen.requires_grad_(False)
        self.tied = nn.Linear(3, 5)
        self.tied.weight = self.embed.weight

    def forward(self, clips: torch.Tensor, camids: torch.Tensor) -> torch.Tensor:
        assert not self.training
        return self.frozen(self.embed(clips.mean(dim=(3, 4))).mean(dim=1))  # (B, T, 3, H, W) -> (B, 5)


def test_parameters_count_tied_weights_once_and_split_trainable():
    model = _Pool()
    assert count_parameters(model) == 15 + 5 + 25 + 5  # embed weight+bias, frozen weight, tied bias
    assert count_parameters(model, trainable_only=True) == 15 + 5 + 5


def test_clip_flops_runs_one_clip_in_eval_mode_and_restores_training():
    model = _Pool().train()
    seq_len, size = 8, (32, 16)
    count = clip_flops(model, seq_len, size)
    assert count.total == 2 * seq_len * 3 * 5 + 2 * 5 * 5  # per-frame embedding, then the frozen layer
    assert model.training
    assert model_cost(model, seq_len, size).gflops_per_clip == count.total / 1e9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_attention_kernels_are_counted_the_same_way():
    d = 64  # a head size the flash kernel takes
    q, k, v = (torch.randn(B, HEADS, n, d, device="cuda", dtype=torch.float16) for n in (L, S, S))
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)).total == 2 * (2 * B * HEADS * L * S * d)
    mha = nn.MultiheadAttention(E, HEADS, batch_first=True).cuda().eval()
    x = torch.randn(B, L, E, device="cuda")
    with torch.inference_mode():
        assert count_flops(lambda: mha(x, x, x, need_weights=False)).total == _attention_flops(L, L)


def _tiny(name: str, **options):
    import warnings

    from vreid_bench.models import create

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create(name, num_ids=7, num_cams=2, pretrained="none", image_size=(32, 16), seq_len=2,
                      backbone="tiny", **options)


@pytest.mark.parametrize("name, small, large", [
    ("tfclip", {"ssp_layers": 1}, {"ssp_layers": 3}),  # the sequence-specific prompt trains the memory only
    ("cgclip", {"cmr_depth": 1}, {"cmr_depth": 3}),  # caption-guided refinement is training-only
])
def test_a_training_only_module_does_not_change_the_inference_cost(name, small, large):
    a, b = model_cost(_tiny(name, **small), 2, (32, 16)), model_cost(_tiny(name, **large), 2, (32, 16))
    assert a.params == b.params and a.gflops_per_clip == b.gflops_per_clip
    assert b.training_params > a.training_params
    model = _tiny(name, **small)
    assert a.params + a.training_params - model.external_training_parameters() == count_parameters(model)


def test_inference_parameters_are_what_the_test_feature_depends_on():
    from vreid_bench.profiling import inference_parameters

    model = _tiny("clip-tap")
    used = {id(p) for p in inference_parameters(model, 2, (32, 16))}
    assert id(model.backbone.visual.conv1.weight) in used and id(model.backbone.camera_embedding) in used
    assert id(model.cls_neck.classifier.weight) not in used and id(model.cls_neck.bn.weight) not in used
    assert model.backbone.visual.conv1.weight.requires_grad  # the walk restores every flag
    assert not model.cls_neck.bn.bias.requires_grad


def test_clip_reid_counts_its_dropped_text_tower_as_training_only():
    from vreid_bench.models.clip_backbone import text_tower_parameters

    model = _tiny("clipreid")
    before = model_cost(model, 2, (32, 16))
    text = sum(p.numel() for p in model.backbone.text.parameters())
    assert text == text_tower_parameters("tiny") and before.training_params >= text
    model.drop_text_tower()
    after = model_cost(model, 2, (32, 16))
    assert after.params == before.params and after.training_params == before.training_params
    assert count_parameters(model) == count_parameters(_tiny("clipreid")) - text
