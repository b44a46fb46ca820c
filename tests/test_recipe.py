"""Recipes: each model's reference recipe as its authors' code runs it, every value with its source; files,
bases, per-dataset sections, ``--set``, hashing and the one-line errors."""

from __future__ import annotations

import re

import pytest
import yaml

from vreid_bench.cli import main
from vreid_bench.errors import ConfigError
from vreid_bench.recipe import Recipe, read_comments, recipe_for, reference_recipe

MODELS = ("tfclip", "clipreid", "resnet-tap", "clip-tap", "cgclip")


@pytest.mark.parametrize("model", MODELS)
def test_recipe_show_prints_every_value_with_its_source(model, capsys):
    assert main(["recipe", "show", model]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out) == reference_recipe(model).to_dict()  # the printout is the recipe, as YAML
    values = [line for line in out.splitlines() if re.match(r"\s*\w[\w.]*: \S", line)
              and not line.startswith("name") and not line.endswith(": {}")]
    assert values and all(" # " in line for line in values), [line for line in values if " # " not in line]
    assert f"hash {reference_recipe(model).hash()}" in out.splitlines()[0]


def test_the_tfclip_recipe_is_what_its_code_runs():
    r = reference_recipe("tfclip")
    assert (r.input.mean, r.input.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # not the yml's 0.5
    assert (r.augment.pad, r.augment.flip_p, r.input.train_resize) == (0, 0.5, "bilinear")
    erasing = r.augment.erasing
    assert (erasing.p, erasing.area, erasing.aspect_sampling, erasing.fill) == (0.5, (0.02, 0.2), "uniform",
                                                                              "random_colour")
    assert (r.sampler.batch_size, r.sampler.frames) == (16, "restricted_random_padded")
    assert (r.optimizer.name, r.optimizer.lr, r.optimizer.weight_decay, r.optimizer.bias_lr_factor) == (
        "adam", 5e-6, 1e-4, 2.0)
    assert r.optimizer.lr_factors == {"video_neck.classifier": 10.0}  # LARGE_FC_LR on classifier_proj_temp
    assert (r.schedule.warmup_epochs, r.schedule.warmup_factor, r.schedule.milestones, r.epochs) == (
        10, 0.1, (30, 50, 70), 80)
    assert (r.amp, r.model["pos_embed_interpolation"], r.model["frame_classifier"]) == ("fp16", "bilinear", "shared")
    assert "LARGE_FC_LR" in r.sources["optimizer.lr_factors"] and "hard-codes" in r.sources["input.mean"]
    ilids = reference_recipe("tfclip", "ilidsvid")
    assert (ilids.sampler.frames, ilids.sampler.window_stride) == ("sliding_window", 4)
    assert "_pluckseq" in ilids.sources["sampler.frames"] and ilids.hash() != r.hash()


def test_the_clipreid_recipe_has_both_stages_as_its_person_config():
    r = reference_recipe("clipreid")
    assert (r.input.mean, r.input.train_resize, r.input.test_resize) == ((0.5, 0.5, 0.5), "bicubic", "bilinear")
    assert (r.augment.pad, r.augment.erasing.fill, r.augment.erasing.area[1]) == (10, "noise", pytest.approx(1 / 3))
    assert (r.sampler.ids_per_batch, r.sampler.instances_per_id) == (16, 4)
    assert (r.epochs, r.schedule.milestones, r.schedule.offset) == (60, (30, 50), 1)
    assert r.model["camera_embedding"] is False and r.optimizer.lr_factors == {}
    assert r.stages["prompts"] == {"epochs": 120, "batch_size": 64, "lr": 3.5e-4, "weight_decay": 1e-4,
                                   "warmup_epochs": 5, "warmup_lr": 1e-5, "min_lr": 1e-6, "amp": "fp16"}
    assert "SOLVER.STAGE1" in r.sources["stages.prompts.lr"]


def test_resnet_tap_clip_tap_and_cgclip_name_what_they_follow():
    resnet = reference_recipe("resnet-tap")
    assert (resnet.optimizer.lr, resnet.optimizer.weight_decay, resnet.input.height, resnet.input.seq_len) == (
        3e-4, 5e-4, 224, 4)
    assert (resnet.sampler.epoch, resnet.sampler.frames, resnet.augment.per, resnet.amp) == (
        "identities", "consecutive_random", "frame", "off")
    assert resnet.model == {"backbone": "resnet50", "last_stride": 2, "neck": "linear", "id_loss_weight": 1.0,
                            "triplet_loss_weight": 1.0, "label_smoothing": 0.1, "triplet_margin": 0.3}
    assert "Gao & Nevatia" in resnet.to_yaml("") or "Video-Person-ReID" in _header("resnet-tap")
    assert "CLIP-ReID" in _header("clip-tap") and "CLIP-ReID" in reference_recipe("clip-tap").sources["optimizer.lr"]
    cgclip = reference_recipe("cgclip")
    sources = {path: source.removeprefix("cgclip recipe: ") for path, source in cgclip.sources.items()}
    assert all("paper silent; TF-CLIP" in source or source.startswith(("paper:", "vreid:", "unused"))
               for path, source in sources.items() if path != "name"), sources
    tfclip = reference_recipe("tfclip")
    assert {k: v for k, v in cgclip.to_dict().items() if k not in ("name", "model")} == {
        k: v for k, v in tfclip.to_dict().items() if k not in ("name", "model")}


def _header(model: str) -> str:
    from importlib import resources

    from vreid_bench.models import get_model_entry

    package, _, path = get_model_entry(model).recipe.partition(":")
    return resources.files(package).joinpath(path).read_text().split("\nname:")[0]


def test_sets_and_files_change_a_recipe_and_say_so(tmp_path):
    changed = recipe_for("tfclip", sets=["optimizer.lr=1e-5", "augment.erasing.p=0", "model.ssp_layers=1"])
    assert (changed.optimizer.lr, changed.augment.erasing.p, changed.model["ssp_layers"]) == (1e-5, 0.0, 1)
    assert changed.sources["optimizer.lr"] == "--set" and changed.hash() != reference_recipe("tfclip").hash()
    mine = tmp_path / "mine.yaml"
    mine.write_text("# a longer TF-CLIP\nname: longer\nbase: tfclip\nepochs: 120  # twice the schedule\n"
                    "schedule:\n  milestones: [60, 100]\n")
    longer = recipe_for("tfclip", file=mine)
    assert (longer.name, longer.epochs, longer.schedule.milestones, longer.optimizer.lr) == (
        "longer", 120, (60, 100), 5e-6)
    assert longer.sources["epochs"] == "mine.yaml: twice the schedule"
    assert longer.sources["schedule.milestones"] == "mine.yaml"
    assert longer.sources["optimizer.lr"].startswith("tfclip recipe: SOLVER.STAGE2.BASE_LR")
    assert "# twice the schedule" in longer.to_yaml()
    # The name does not make a recipe: the same values hash the same.
    renamed = Recipe.from_dict({**reference_recipe("tfclip").to_dict(), "name": "copy"})
    assert renamed.hash() == reference_recipe("tfclip").hash()


def test_comments_are_read_per_key_and_per_section():
    header, comments = read_comments("# header\nname: x  # own\ninput:  # section\n  height: 3\n"
                                     "  width: 2  # '#' inside\nmodel: {a: 1}  # flow\n")
    assert header == "header"
    assert comments == {"name": "own", "input": "section", "input.width": "'#' inside", "model": "flow"}


@pytest.mark.parametrize("content, message", [
    ("epochs: ten\n", "epochs='ten': give an integer"),
    ("optimizer:\n  lrate: 1\n", "unknown recipe section optimizer key lrate: valid keys are name, lr"),
    ("warmup: 3\n", "unknown recipe key warmup: valid keys are amp, augment"),
    ("input: 3\n", "recipe section input must be a mapping"),
    ("- a\n- b\n", "must hold a mapping of recipe keys, not list"),
    ("epochs: [1\n", "is not valid YAML"),
    ("model:\n  ssp_layrs: 1\n", "model.ssp_layrs is not a setting of model tfclip"),
    ("stages:\n  prompts: {epochs: 1}\n", "stages.prompts is not a setting of model tfclip"),
    ("augment:\n  erasing:\n    fill: paint\n", "fill='paint': use one of mean, random_colour, noise"),
])
def test_bad_recipe_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        recipe_for("tfclip", file=path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_cli_recipe_errors_are_one_line(tmp_path, capsys):
    assert main(["recipe", "show", "tfclip", "--recipe", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["recipe", "show", "tfclip", "--set", "schedule.kind=linear"]) == 2
    err = capsys.readouterr().err.strip()
    assert "schedule.kind='linear': use one of step, cosine" in err and len(err.splitlines()) == 1
    assert main(["recipe", "show", "tfclip", "--set", "protocol.ap=trapezoid"]) == 2
    assert "changes the evaluation, not the recipe" in capsys.readouterr().err
    assert main(["recipe", "show", "tfclip", "--dataset", "ilidsvid"]) == 0
    assert "frames: sliding_window" in capsys.readouterr().out
