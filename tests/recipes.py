"""Tiny recipes for tests: a model's reference recipe shrunk to test size through ``--set`` changes."""

from __future__ import annotations

from vreid_bench.recipe import Recipe, recipe_for


def tiny_recipe(model: str, size: tuple[int, int], seq_len: int, *sets: str, ids: int = 3, instances: int = 2,
                epochs: int = 2, lr: float = 1e-4, family: str | None = None) -> Recipe:
    """``model``'s reference recipe with a tiny backbone at ``size``, clips of ``seq_len``, P×K = ids×instances,
    ``epochs`` at a flat ``lr``; ``sets`` change anything else."""
    return recipe_for(model, family, sets=[
        "model.backbone=tiny", f"input.height={size[0]}", f"input.width={size[1]}", f"input.seq_len={seq_len}",
        f"sampler.ids_per_batch={ids}", f"sampler.instances_per_id={instances}", f"epochs={epochs}",
        f"optimizer.lr={lr}", "schedule.warmup_epochs=0", "schedule.milestones=[]", *sets])
