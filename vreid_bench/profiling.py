"""What a model costs at inference: parameters and FLOPs per clip, counted the same way for every model.

Only what the evaluation forward reaches counts: its parameters are the ones the autograd graph of the test
feature leads back to (BNNeck heads, memory prompts, caption refinement and classifiers are left out, however
large). What a model trains with besides is reported apart, as training-only parameters: the rest of its
parameters, and those it uses without keeping (the CLIP text tower CG-CLIP encodes its captions with, the one
CLIP-ReID drops once stage 1 has cached its text features).

``torch.utils.flop_counter`` sees only operators that have a FLOP formula. Two paths escape it and would make
attention free: the fused fast path of ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` at inference,
and the CPU kernel ``aten._scaled_dot_product_flash_attention_for_cpu`` (with the other SDPA variants the
counter does not know). Counting here turns the fast path off and gives those kernels the counter's own SDPA
formula, so that attention is two batched matrix products (QKᵀ and AV) whichever kernel runs. A multiply-add
counts as two FLOPs, as in the counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_flop_count

# SDPA kernels taking (query, key, value) as (B, heads, L, E) first; those already in the counter's registry
# keep the counter's formula.
SDPA_KERNELS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_fused_attention_overrideable",
    "_scaled_dot_product_attention_math_for_mps",
)


@dataclass(frozen=True)
class FlopCount:
    total: int
    by_module: dict[str, int]  # module path (the counter's naming, from the root module's class) -> FLOPs

    @property
    def gflops(self) -> float:
        return self.total / 1e9


@dataclass(frozen=True)
class ModelCost:
    params: int  # reached by the inference forward
    training_params: int  # used only in training, held by the model or not
    gflops_per_clip: float  # of the inference forward


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Distinct parameters (a tied weight counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _sdpa_flops(query_shape: tuple[int, ...], key_shape: tuple[int, ...], value_shape: tuple[int, ...],
                *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def attention_flop_formulas() -> dict[Any, Callable[..., int]]:
    """FLOP formulas for the SDPA kernels this PyTorch has and its counter does not know."""
    formulas: dict[Any, Callable[..., int]] = {}
    for name in SDPA_KERNELS:
        op = getattr(torch.ops.aten, name, None)
        if op is not None and op not in flop_registry:
            formulas[op] = _sdpa_flops
    return formulas


@contextmanager
def mha_fastpath_disabled() -> Iterator[None]:
    """Route ``nn.MultiheadAttention`` through its unfused path (visible to the counter), then restore."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def count_flops(fn: Callable[[], object]) -> FlopCount:
    """FLOPs of everything ``fn`` runs, attention included."""
    with mha_fastpath_disabled():
        counter = FlopCounterMode(display=False, custom_mapping=attention_flop_formulas())
        with counter:
            fn()
    by_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items() if name != "Global"}
    return FlopCount(total=counter.get_total_flops(), by_module=by_module)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def clip_flops(model: nn.Module, seq_len: int, image_size: tuple[int, int]) -> FlopCount:
    """FLOPs of the evaluation forward pass on one clip ``(1, T, 3, H, W)`` of camera 0."""
    device = _model_device(model)
    clip = torch.zeros(1, seq_len, 3, *image_size, device=device)
    camids = torch.zeros(1, dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return count_flops(lambda: model(clip, camids))
    finally:
        model.train(was_training)


def inference_parameters(model: nn.Module, seq_len: int, image_size: tuple[int, int]) -> list[nn.Parameter]:
    """The parameters the evaluation forward of one clip depends on, found by walking its autograd graph."""
    device = _model_device(model)
    clip = torch.zeros(1, seq_len, 3, *image_size, device=device)
    camids = torch.zeros(1, dtype=torch.long, device=device)
    parameters = list(model.parameters())
    flags = [p.requires_grad for p in parameters]
    was_training = model.training
    model.eval()
    try:
        for parameter in parameters:
            parameter.requires_grad_(True)
        with torch.enable_grad():
            output = model(clip, camids)
        reached: set[int] = set()
        stack, seen = [output.grad_fn], set()
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold the leaf they feed
            if variable is not None:
                reached.add(id(variable))
            stack.extend(next_node for next_node, _ in node.next_functions)
    finally:
        for parameter, flag in zip(parameters, flags):
            parameter.requires_grad_(flag)
        model.train(was_training)
    return [p for p in parameters if id(p) in reached]


def model_cost(model: nn.Module, seq_len: int, image_size: tuple[int, int]) -> ModelCost:
    """Inference parameters and GFLOPs of one clip, and the training-only parameters (see the module docstring)."""
    used = sum(p.numel() for p in inference_parameters(model, seq_len, image_size))
    external = int(getattr(model, "external_training_parameters", lambda: 0)())
    return ModelCost(
        params=used,
        training_params=count_parameters(model) - used + external,
        gflops_per_clip=clip_flops(model, seq_len, image_size).gflops,
    )
