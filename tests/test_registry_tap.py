import pytest
import torch

from baselines.tap import ClipTapConfig
from vreid_bench.errors import ConfigError, UnknownNameError
from vreid_bench.engine.optim import parameter_groups
from vreid_bench.models import MODELS, create, get_model_entry, list_models, model_config
from vreid_bench.models.base import clip_frames
from vreid_bench.recipe import OptimizerSpec

pytestmark = pytest.mark.filterwarnings("ignore:.*random initialisation:UserWarning")

NUM_IDS, K, T = 4, 2, 2


def _batch(size, seed=0):
    """P×K clips of random frames with camera ids; the labels the model has to fit."""
    generator = torch.Generator().manual_seed(seed)
    clips = torch.randn(NUM_IDS * K, T, 3, *size, generator=generator)
    labels = torch.arange(NUM_IDS).repeat_interleave(K)
    camids = torch.arange(NUM_IDS * K) % 2
    return clips, labels, camids


def _train(model, size, lr, steps):
    clips, labels, camids = _batch(size)
    optimiser = torch.optim.Adam(parameter_groups(model, OptimizerSpec(lr=lr, weight_decay=0.0)))
    model.train()
    totals = []
    for _ in range(steps):
        terms = model.losses(model(clips, camids, labels), labels)
        total = sum(terms.values())
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        totals.append(total.item())
    return totals, terms


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(UnknownNameError, match="clip-tap, resnet-tap"):
        create("clip-tapp", num_ids=2, num_cams=1)


def test_model_names_ignore_case_and_separators():
    assert get_model_entry("CLIP_TAP").name == "clip-tap"
    assert get_model_entry("TF-CLIP").name == "tfclip"


def test_unknown_setting_lists_the_valid_keys():
    with pytest.raises(ConfigError) as error:
        create("clip-tap", num_ids=2, num_cams=1, backbone="tiny", bakbone="tiny")
    message = str(error.value)
    assert "bakbone" in message and "backbone" in message and "triplet_margin" in message and "\n" not in message


def test_string_settings_are_converted_to_their_field_types():
    config = model_config("clip-tap", camera_scale="2.5", camera_embedding="false", backbone="tiny")
    assert config == ClipTapConfig(camera_scale=2.5, camera_embedding=False, backbone="tiny")
    with pytest.raises(ConfigError, match="give a number"):
        model_config("clip-tap", camera_scale="big")
    with pytest.raises(ConfigError, match="true or false"):
        model_config("clip-tap", camera_embedding="maybe")
    with pytest.raises(ConfigError, match="last_stride"):
        model_config("resnet-tap", last_stride="3")


def test_list_models_shows_every_entry_with_its_settings():
    infos = {info.name: info for info in list_models()}
    assert {"cgclip", "tfclip", "clipreid", "clip-tap", "resnet-tap"} <= set(infos) == set(MODELS.names())
    fields = {field.name: field.default for field in infos["clip-tap"].fields}
    assert fields["backbone"] == "ViT-B-16" and fields["id_loss_weight"] == 0.25 and infos["clip-tap"].error is None
    assert {field.name for field in infos["resnet-tap"].fields} >= {"backbone", "last_stride"}


def test_clip_frames_keep_each_frame_with_its_camera():
    clips = torch.arange(2 * 3).float().view(2, 3, 1, 1, 1).expand(2, 3, 3, 2, 2)
    frames, cams = clip_frames(clips, torch.tensor([5, 7]))
    assert frames.shape == (6, 3, 2, 2)
    assert frames[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5] and cams.tolist() == [5, 5, 5, 7, 7, 7]


def test_clip_tap_trains_and_gives_concatenated_features():
    torch.manual_seed(0)
    model = create("clip-tap", num_ids=NUM_IDS, num_cams=2, pretrained="none", image_size=(64, 32), backbone="tiny")
    totals, terms = _train(model, (64, 32), lr=1e-3, steps=8)
    assert set(terms) == {"id", "triplet"}
    assert totals[-1] < 0.7 * totals[0]
    model.eval()
    clips, _, camids = _batch((64, 32), seed=1)
    with torch.no_grad():
        features = model(clips, camids)
    assert model.feature_dim == 64 + 32 and features.shape == (NUM_IDS * K, 96)


def test_param_groups_put_biases_at_twice_the_rate_and_skip_frozen_ones():
    torch.manual_seed(0)
    model = create("clip-tap", num_ids=NUM_IDS, num_cams=2, pretrained="none", image_size=(64, 32), backbone="tiny")
    groups = parameter_groups(model, OptimizerSpec(lr=5e-6, weight_decay=1e-4, bias_lr_factor=2.0))
    by_lr = {group["lr"]: {id(p) for p in group["params"]} for group in groups}
    assert set(by_lr) == {5e-6, 1e-5}
    names = {id(p): name for name, p in model.named_parameters()}
    assert all(names[i].endswith("bias") for i in by_lr[1e-5])
    assert id(model.cls_neck.bn.bias) not in set().union(*by_lr.values())
    assert all(group["weight_decay"] == 1e-4 for group in groups)


def test_lr_factors_multiply_the_named_modules_and_a_typo_is_refused():
    torch.manual_seed(0)
    model = create("clip-tap", num_ids=NUM_IDS, num_cams=2, pretrained="none", image_size=(64, 32), backbone="tiny")
    spec = OptimizerSpec(lr=1e-5, weight_decay=0.0, bias_lr_factor=2.0, lr_factors={"proj_neck.classifier": 10.0})
    by_lr = {group["lr"]: [p for p in group["params"]] for group in parameter_groups(model, spec)}
    assert sorted(by_lr) == pytest.approx([1e-5, 2e-5, 1e-4])
    assert [p is model.proj_neck.classifier.weight for p in by_lr[max(by_lr)]] == [True]
    with pytest.raises(ConfigError, match="no trainable parameter of clip-tap starts with it"):
        parameter_groups(model, OptimizerSpec(lr_factors={"proj_neck.clasifier": 10.0}), "clip-tap")


def test_resnet_tap_is_gao_and_nevatias_temporal_pooling_by_default():
    torch.manual_seed(0)
    model = create("resnet-tap", num_ids=NUM_IDS, num_cams=2, pretrained="none", image_size=(32, 16))
    assert model.trunk.layer4[0].conv2.stride == (2, 2)  # torchvision's ResNet-50, as their ResNet50TP
    assert isinstance(model.neck, torch.nn.Linear) and model.neck.bias is not None  # nn.Linear(2048, num_classes)
    strong = create("resnet-tap", num_ids=NUM_IDS, num_cams=2, pretrained="none", image_size=(32, 16),
                    last_stride=1, neck="bnneck")
    assert strong.trunk.layer4[0].conv2.stride == (1, 1) and hasattr(strong.neck, "bn")


def test_resnet_tap_trains_on_small_frames_and_gives_2048_features():
    torch.manual_seed(0)
    model = create("resnet-tap", num_ids=NUM_IDS, num_cams=2, pretrained="none", image_size=(32, 16))
    totals, _ = _train(model, (32, 16), lr=1e-4, steps=6)
    assert sum(totals[-2:]) / 2 < 0.8 * totals[0]  # batch norm from scratch makes single steps noisy
    model.eval()
    clips, _, camids = _batch((32, 16), seed=1)
    with torch.no_grad():
        assert model(clips, camids).shape == (NUM_IDS * K, 2048) == (NUM_IDS * K, model.feature_dim)


def test_resnet_tap_refuses_unknown_weights():
    with pytest.raises(ConfigError, match="'imagenet'"):
        create("resnet-tap", num_ids=2, num_cams=1, pretrained="imagenet21k", backbone="tiny")


def test_bad_identity_count_is_a_config_error():
    with pytest.raises(ConfigError, match="num_ids=0"):
        create("clip-tap", num_ids=0, num_cams=1, backbone="tiny")
