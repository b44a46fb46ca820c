"""Cost of every CLIP video model at inference: parameters, GFLOPs per clip at T = 8, 16, 32, CPU clips/s at T = 8.

``params`` counts the parameters an inference forward uses; ``training_params`` those only training needs
(classifiers, prompt learners, a text tower used by a training loss), as in the leaderboard's cost table
(:func:`vreid_bench.profiling.model_cost`).

Prints one JSON object. Models are ViT-B/16 at 256×128 with random weights (``pretrained="none"``: costs do not
depend on the weights), sized for MARS (625 training identities, 6 cameras). FLOPs come from
:func:`vreid_bench.profiling.clip_flops`, which counts attention the same way for every model (a multiply-add is
two FLOPs). Each model is built once at ``seq_len`` 8 and run at every length (CG-CLIP's temporal embedding is
resampled; the cost is the same as a model built for that length). Models missing from the registry, or whose
module does not import, are listed under ``skipped``.

Also reported: the temporal module's own GFLOPs and its share of the backbone at T = 8 (CG-CLIP's TFE,
TF-CLIP's TMD), and whether CG-CLIP meets its goals (GFLOPs per clip at most TF-CLIP's at every T, TFE at most
5 % of the backbone at T = 8).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import torch
from torch import nn

from vreid_bench.io import atomic_write_json
from vreid_bench.models import MODELS as REGISTRY, create
from vreid_bench.profiling import clip_flops, count_parameters, model_cost

MODELS = ("cgclip", "tfclip", "clipreid", "clip-tap")
TEMPORAL_MODULES = {"cgclip": "tfe", "tfclip": "tmd"}  # attribute holding the model's temporal module
TFE_SHARE_GOAL = 0.05


def build(name: str, args: argparse.Namespace) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random initialisation is the point here
        model = create(name, num_ids=args.num_ids, num_cams=args.num_cams, pretrained="none",
                       image_size=tuple(args.image_size), seq_len=args.lengths[0], backbone=args.backbone)
    return model.eval()


def module_gflops(by_module: dict[str, int], root: str, attribute: str) -> float:
    """GFLOPs of ``root.attribute`` and its submodules (the counter names modules ``Root.attr.sub``)."""
    return by_module.get(f"{root}.{attribute}", 0) / 1e9


def backbone_gflops(model: nn.Module, total: int, by_module: dict[str, int]) -> float:
    """Everything but the model's own added modules: the backbone is entered through ``forward_tokens``, not
    ``__call__``, so the counter has no entry for it, and its projection runs outside any submodule."""
    root = type(model).__name__
    added = sum(by_module.get(f"{root}.{child}", 0) for child, _ in model.named_children() if child != "backbone")
    return (total - added) / 1e9


def seconds_per_clip(model: nn.Module, length: int, image_size: tuple[int, int], clips: int) -> float:
    """Wall seconds of one batch-1 clip through the eval forward, after one untimed warm-up clip.

    The fastest of ``clips`` timed clips: on a shared machine, other work only ever adds time.
    """
    clip = torch.randn(1, length, 3, *image_size)
    camids = torch.zeros(1, dtype=torch.long)
    times = []
    with torch.inference_mode():
        model(clip, camids)
        for _ in range(clips):
            start = time.perf_counter()
            model(clip, camids)
            times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, args: argparse.Namespace) -> dict[str, object]:
    model = build(name, args)
    image_size = tuple(args.image_size)
    root = type(model).__name__
    cost = model_cost(model, args.lengths[0], image_size)
    row: dict[str, object] = {"params": cost.params, "training_params": cost.training_params,
                              "feature_dim": int(model.feature_dim), "gflops_per_clip": {}}
    for length in args.lengths:
        flops = clip_flops(model, length, image_size)
        row["gflops_per_clip"][str(length)] = round(flops.gflops, 2)  # type: ignore[index]
        if length == args.lengths[0]:
            backbone = backbone_gflops(model, flops.total, flops.by_module)
            row[f"backbone_gflops_t{length}"] = round(backbone, 2)
            if name in TEMPORAL_MODULES and getattr(model, TEMPORAL_MODULES[name], None) is not None:
                temporal = module_gflops(flops.by_module, root, TEMPORAL_MODULES[name])
                row[f"temporal_module_t{length}"] = {
                    "module": TEMPORAL_MODULES[name],
                    "params": count_parameters(getattr(model, TEMPORAL_MODULES[name])),
                    "gflops": round(temporal, 3),
                    "share_of_backbone": round(temporal / backbone, 4),
                }
    seconds = seconds_per_clip(model, args.lengths[0], image_size, args.timed_clips)
    row[f"seconds_per_clip_t{args.lengths[0]}"] = round(seconds, 3)
    row[f"clips_per_s_t{args.lengths[0]}"] = round(1.0 / seconds, 3)
    return row


def goals(results: dict[str, dict[str, object]], first_length: int) -> dict[str, object]:
    """CG-CLIP's efficiency goals, where both models were measured."""
    if "cgclip" not in results:
        return {}
    verdict: dict[str, object] = {}
    tfe = results["cgclip"].get(f"temporal_module_t{first_length}")
    if isinstance(tfe, dict):
        verdict[f"tfe_share_at_most_5pct_t{first_length}"] = tfe["share_of_backbone"] <= TFE_SHARE_GOAL
    if "tfclip" in results:
        ours, theirs = results["cgclip"]["gflops_per_clip"], results["tfclip"]["gflops_per_clip"]
        verdict["cgclip_gflops_at_most_tfclip"] = {t: ours[t] <= theirs[t] for t in ours}  # type: ignore[index]
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[8, 16, 32],
                        help="clip lengths T; clips/s and the temporal module's share are measured at the first")
    parser.add_argument("--backbone", default="ViT-B-16", help="'tiny' for a quick check of the script itself")
    parser.add_argument("--image-size", nargs=2, type=int, default=[256, 128], metavar=("H", "W"))
    parser.add_argument("--num-ids", type=int, default=625, help="training identities (MARS: 625)")
    parser.add_argument("--num-cams", type=int, default=6, help="cameras (MARS: 6)")
    parser.add_argument("--timed-clips", type=int, default=2, help="clips timed per model, after a warm-up")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    results: dict[str, dict[str, object]] = {}
    skipped: dict[str, str] = {}
    for name in args.models:
        if name not in REGISTRY.names():
            skipped[name] = "not in the model registry"
            continue
        try:
            results[name] = measure(name, args)
        except (ImportError, AttributeError) as exc:  # a registered model whose module is not written yet
            skipped[name] = f"{type(exc).__name__}: {exc}"
    report = {
        "benchmark": "models",
        "backbone": args.backbone,
        "pretrained": "none",
        "image_size": list(args.image_size),
        "lengths": args.lengths,
        "num_ids": args.num_ids,
        "num_cams": args.num_cams,
        "device": f"cpu ({platform.processor() or platform.machine()}), {args.threads} threads",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "models": results,
        "skipped": skipped,
        "goals": goals(results, args.lengths[0]),
    }
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
