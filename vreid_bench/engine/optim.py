"""The optimiser and learning-rate schedule a recipe describes.

Parameter groups follow TF-CLIP's and CLIP-ReID's ``make_optimizer``: every trainable parameter at the base lr,
biases (a name ending in ``bias``) at ``bias_lr_factor`` times it, and parameters whose name starts with one of
``lr_factors``' prefixes multiplied by that factor as well; weight decay is the same for every group (the
references set ``WEIGHT_DECAY_BIAS = WEIGHT_DECAY``). A prefix that matches no trainable parameter is an error, so
a renamed module never silently loses its factor.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import torch
from torch import nn

from vreid_bench.errors import ConfigError
from vreid_bench.recipe import OptimizerSpec, ScheduleSpec


def parameter_groups(model: nn.Module, spec: OptimizerSpec, model_name: str = "the model") -> list[dict]:
    """Groups of trainable parameters with equal lr factor, in a fixed order; frozen ones are left out."""
    groups: dict[float, list[nn.Parameter]] = {}
    used: set[str] = set()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        factor = spec.bias_lr_factor if name.endswith("bias") else 1.0
        for prefix, extra in spec.lr_factors.items():
            if name == prefix or name.startswith(prefix + "."):
                factor *= extra
                used.add(prefix)
                break
        groups.setdefault(factor, []).append(parameter)
    unused = [prefix for prefix in spec.lr_factors if prefix not in used]
    if unused:
        raise ConfigError(f"optimizer.lr_factors names {unused[0]!r}, but no trainable parameter of {model_name} "
                          "starts with it; use a module path such as video_neck.classifier")
    return [{"params": params, "lr": spec.lr * factor, "weight_decay": spec.weight_decay, "lr_factor": factor}
            for factor, params in groups.items()]


def make_optimizer(model: nn.Module, spec: OptimizerSpec, model_name: str = "the model",
                   fused: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimiser: Adam (L2 decay, as the references), AdamW, or SGD with momentum.

    ``fused``: the single-kernel CUDA implementation (same arithmetic, fewer launches).
    """
    groups = parameter_groups(model, spec, model_name)
    extra = {"fused": True} if fused else {}
    if spec.name == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, **extra)
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, lr=spec.lr, **extra)
    return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, **extra)


def lr_factor(epoch: int, schedule: ScheduleSpec, epochs: int) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based).

    Linear warm-up from ``warmup_factor`` over ``warmup_epochs``, then ×``gamma`` at each milestone (the warm-up
    multiplies the step factor, as in TF-CLIP's and CLIP-ReID's WarmupMultiStepLR), or a half cosine to zero.
    ``offset`` shifts the curve for references that step their scheduler before an epoch rather than after it.
    """
    epoch += schedule.offset
    if epoch < schedule.warmup_epochs:
        alpha = epoch / schedule.warmup_epochs
        warm = schedule.warmup_factor * (1 - alpha) + alpha
    else:
        warm = 1.0
    if schedule.kind == "step":
        return warm * schedule.gamma ** bisect_right(schedule.milestones, epoch)
    if epoch < schedule.warmup_epochs:
        return warm
    done = (epoch - schedule.warmup_epochs) / max(1, epochs - schedule.warmup_epochs)
    return 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
