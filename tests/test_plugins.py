"""Open registries: a model, a dataset and a captioner added by an installed package, without changing vreid.

The package is written to a temporary folder with its ``.dist-info`` (``entry_points.txt`` in the
``vreid.models``, ``vreid.datasets`` and ``vreid.captioners`` groups) and put on ``sys.path``, which is all
``importlib.metadata`` needs to find an installed distribution.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from builders.captions.base import CAPTIONERS, create_captioner
from vreid_bench import cli, cli_data, cli_run
from vreid_bench.datasets import DATASETS, load, register_dataset
from vreid_bench.errors import ConfigError
from vreid_bench.models import MODELS, register_model

PLUGIN = '''
"""A vreid plugin: one model, one dataset, one captioner."""
from dataclasses import dataclass
from pathlib import Path

import torch.nn.functional as F
from torch import nn

from builders.captions.base import Captioner, CaptionerEntry
from vreid_bench.datasets import DatasetEntry, toolkit
from vreid_bench.models import ModelEntry
from vreid_bench.models.base import ReIDModel


@dataclass
class PoolConfig:
    dim: int = 8


class Pool(ReIDModel):
    def __init__(self, num_ids, image_size, dim):
        super().__init__()
        self.embed = nn.Linear(3 * (image_size[0] // 4) * (image_size[1] // 4), dim)
        self.classifier = nn.Linear(dim, num_ids)
        self.feature_dim = dim

    def forward(self, clips, camids, labels=None):
        batch, length = clips.shape[:2]
        feats = self.embed(F.avg_pool2d(clips.flatten(0, 1), 4).flatten(1)).view(batch, length, -1).mean(1)
        return feats if not self.training else {"logits": self.classifier(feats)}

    def losses(self, outputs, labels):
        return {"id": F.cross_entropy(outputs["logits"], labels)}


def create(config, *, num_ids, num_cams, pretrained, image_size, seq_len):
    return Pool(num_ids, image_size, config.dim)


def load_pool_set(root, flavour="plain"):
    return toolkit.load(Path(root) / "pool-set")


class Shout(Captioner):
    name = "shout"
    prompt_id = "loud-v1"

    def caption_batch(self, requests):
        return [f"A PERSON IN {r.video.upper()}." for r in requests]


MODEL = ModelEntry("pool", create, PoolConfig, "a plugin's pooling model")
DATASET = DatasetEntry("pool-set", load_pool_set, "a plugin's dataset", "pool-set", options="flavour=plain")
CAPTIONER = CaptionerEntry("shout", Shout, "a plugin's captioner")
CLASH = ModelEntry("cgclip", create, PoolConfig)
'''


def install_plugin(site: Path, entries: str) -> None:
    site.mkdir(parents=True, exist_ok=True)
    (site / "vreid_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "vreid_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vreid-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entries))


ENTRIES = """
[vreid.models]
pool = vreid_test_plugin:MODEL
[vreid.datasets]
pool-set = vreid_test_plugin:DATASET
[vreid.captioners]
shout = vreid_test_plugin:CAPTIONER
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The plugin installed, the registries reading plugins again; afterwards, its entries removed."""
    install_plugin(tmp_path / "site", ENTRIES)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for registry in (MODELS, DATASETS, CAPTIONERS):
        monkeypatch.setattr(registry, "_plugins_read", False)
    yield tmp_path
    for registry, name in ((MODELS, "pool"), (DATASETS, "pool-set"), (CAPTIONERS, "shout")):
        registry.remove(name)


def test_a_plugins_model_dataset_and_captioner_work_through_the_command_line(plugin: Path, cli_with,
                                                                            capsys) -> None:
    from toolkit_fixture import write_identity_dataset

    write_identity_dataset(plugin / "data", 32, 16, name="pool-set")
    cli_with(cli_data, cli_run)
    assert cli.main(["models"]) == 0
    assert "pool" in capsys.readouterr().out
    assert cli.main(["datasets"]) == 0
    assert "pool-set" in capsys.readouterr().out

    args = ["run", "pool", "--dataset", "pool-set", "--root", str(plugin / "data"), "--out", str(plugin / "runs"),
            "--device", "cpu", "--workers", "0", "--epochs", "1", "--set", "input.height=32", "--set",
            "input.width=16", "--set", "input.seq_len=4", "--set", "sampler.ids_per_batch=3", "--set",
            "schedule.warmup_epochs=0", "--set", "schedule.milestones=[]", "--set", "model.dim=4"]
    assert cli.main(args) == 0, capsys.readouterr().err
    (metrics_file,) = (plugin / "runs").rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["model"] == "pool" and metrics["params"] == 3 * 8 * 4 * 4 + 4

    captioner = create_captioner("shout")
    assert captioner.caption_batch([]) == [] and captioner.name == "shout"
    assert load("pool-set", root=plugin / "data").name == "pool-set"


def test_a_plugin_that_takes_a_built_in_name_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    install_plugin(tmp_path / "site", "[vreid.models]\ncgclip = vreid_test_plugin:CLASH\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(MODELS, "_plugins_read", False)
    with pytest.raises(ConfigError, match=r"model 'cgclip' registered by plugin cgclip .* clashes with a built-in "
                                          r"model 'cgclip'") as error:
        MODELS.names()
    assert "\n" not in str(error.value)


def test_registering_in_code_and_as_a_decorator(tmp_path: Path) -> None:
    from toolkit_fixture import write_identity_dataset

    write_identity_dataset(tmp_path, 32, 16, name="mine")

    @register_dataset("mine-set", folder="mine", aliases=("mine-alias",))
    def load_mine(root):
        from vreid_bench.datasets import toolkit

        return toolkit.load(Path(root) / "mine")

    try:
        assert load("mine-alias", root=tmp_path).name == "mine"
        with pytest.raises(ConfigError, match="clashes with a built-in dataset 'mars'"):
            register_dataset("mars", load_mine)
        with pytest.raises(ConfigError, match="config="):
            register_model("no-config", lambda config, **kwargs: None)
    finally:
        DATASETS.remove("mine-set")
