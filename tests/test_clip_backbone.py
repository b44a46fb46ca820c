import dataclasses
from types import SimpleNamespace

import open_clip
import pytest
import torch

from vreid_bench.errors import ConfigError, VreidError
from vreid_bench.models.clip_backbone import (
    ClipBackbone,
    ClipBackboneConfig,
    create_clip_backbone,
    resize_positional_embedding,
)
from vreid_bench.models.configs import TINY_CLIP

pytestmark = pytest.mark.filterwarnings("ignore:.*random initialisation:UserWarning")

SIZE = (128, 64)  # 8×4 patches of 16 pixels


def _tiny(num_cams=0, pretrained="none", image_size=SIZE, seed=0, **fields):
    torch.manual_seed(seed)
    return create_clip_backbone("tiny", image_size=image_size, num_cams=num_cams, pretrained=pretrained, **fields)


def _images(n, size=SIZE, seed=1):
    return torch.randn(n, 3, *size, generator=torch.Generator().manual_seed(seed))


def _open_clip_tiny(image_size):
    """The reference: open_clip's own CLIP built from the tiny architecture."""
    return open_clip.CLIP(**TINY_CLIP.open_clip_kwargs(image_size, quick_gelu=True)).eval()


def test_vit_b16_at_256x128_has_129_tokens():
    with pytest.warns(UserWarning, match="random initialisation"):
        backbone = create_clip_backbone("ViT-B-16", (256, 128), pretrained="none", text=False)
    assert (backbone.width, backbone.embed_dim, backbone.grid, backbone.num_tokens) == (768, 512, (16, 8), 129)
    with torch.no_grad():
        out = backbone.forward_tokens(torch.zeros(1, 3, 256, 128))
    assert out.tokens.shape == (1, 129, 768)
    assert out.cls.shape == (1, 768) and out.projected.shape == (1, 512)


def test_resizing_a_224_grid_to_256x128_keeps_the_class_position():
    old = torch.randn(1 + 14 * 14, 24)
    new = resize_positional_embedding(old, (16, 8))
    assert new.shape == (129, 24)
    assert torch.equal(new[0], old[0])


def test_resizing_a_grid_to_itself_is_the_identity():
    old = torch.randn(1 + 8 * 4, 24)
    for mode in ("bicubic", "bilinear"):
        assert torch.allclose(resize_positional_embedding(old, (8, 4), old_grid=(8, 4), mode=mode), old, atol=1e-6)


def test_bicubic_resize_matches_open_clip_loading():
    """open_clip's own resize, the one ``create_model(..., force_image_size=(256, 128))`` applies, as reference."""
    old = torch.randn(1 + 14 * 14, 24)
    state = {"visual.positional_embedding": old.clone()}
    open_clip.model.resize_pos_embed(state, SimpleNamespace(visual=SimpleNamespace(grid_size=(16, 8))))
    assert torch.allclose(resize_positional_embedding(old, (16, 8), mode="bicubic"), state["visual.positional_embedding"],
                          atol=1e-5)


def test_bilinear_resize_is_the_references_and_the_default():
    """TF-CLIP's and CLIP-ReID's ``resize_pos_embed``: plain ``F.interpolate(mode='bilinear')`` of the 14×14 grid."""
    old = torch.randn(1 + 14 * 14, 24)
    grid = old[1:].reshape(1, 14, 14, 24).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(16, 8), mode="bilinear").permute(0, 2, 3, 1)
    resized = resize_positional_embedding(old, (16, 8))
    assert torch.equal(resized[0], old[0])
    assert torch.allclose(resized[1:], expected.reshape(16 * 8, 24), atol=1e-6)
    assert not torch.allclose(resized, resize_positional_embedding(old, (16, 8), mode="bicubic"), atol=1e-3)


def test_non_square_grid_without_its_shape_is_refused():
    with pytest.raises(ConfigError, match="image size they were trained at"):
        resize_positional_embedding(torch.randn(1 + 8 * 4, 8), (16, 8))


def test_image_path_matches_open_clip_encode_image(tmp_path):
    reference = _open_clip_tiny((224, 224))
    path = tmp_path / "tiny.pt"
    torch.save(reference.state_dict(), path)
    backbone = _tiny(pretrained=str(path), image_size=(224, 224), seed=5).eval()
    images = _images(2, (224, 224))
    with torch.no_grad():
        ours = backbone.forward_tokens(images, None)
        expected = reference.encode_image(images)
    assert ours.tokens.shape == (2, 1 + 14 * 14, 64)
    assert torch.allclose(ours.projected, expected, atol=1e-5)
    assert torch.allclose(ours.cls, ours.tokens[:, 0])


def test_loading_224_weights_at_128x64_interpolates_the_grid(tmp_path):
    reference = _open_clip_tiny((224, 224))
    path = tmp_path / "tiny_224.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    backbone = _tiny(pretrained=str(path), seed=5)
    old = reference.visual.positional_embedding.detach()
    assert torch.equal(backbone.visual.positional_embedding.detach(), resize_positional_embedding(old, (8, 4)))
    assert torch.equal(backbone.visual.conv1.weight, reference.visual.conv1.weight)


def test_text_path_matches_open_clip_and_prompt_embeddings(tmp_path):
    reference = _open_clip_tiny((224, 224))
    path = tmp_path / "tiny.pt"
    torch.save(reference.state_dict(), path)
    backbone = _tiny(pretrained=str(path), seed=5).eval()
    ids = backbone.tokenize(["a photo of a person in a red shirt.", "a dancer"])
    assert ids.shape == (2, 77)
    with torch.no_grad():
        ours = backbone.encode_text(ids)
        expected = reference.encode_text(ids)
        via_embeddings = backbone.encode_text_embeddings(backbone.text.token_embedding(ids), ids.argmax(-1))
    assert ours.shape == (2, 32)
    assert torch.allclose(ours, expected, atol=1e-5)
    assert torch.allclose(via_embeddings, ours)


def test_saved_backbone_round_trips_through_a_local_file(tmp_path):
    original = _tiny(num_cams=3, seed=0).eval()
    path = tmp_path / "backbone.pt"
    torch.save(original.state_dict(), path)
    loaded = _tiny(num_cams=3, pretrained=str(path), seed=1).eval()
    images, camids = _images(3), torch.tensor([0, 1, 2])
    with torch.no_grad():
        for a, b in zip(original.forward_tokens(images, camids), loaded.forward_tokens(images, camids)):
            assert torch.equal(a, b)
        assert torch.equal(original.encode_text(original.tokenize(["x"])), loaded.encode_text(loaded.tokenize(["x"])))


def test_camera_embedding_acts_through_the_class_token_only():
    backbone = _tiny(num_cams=2).eval()
    images = _images(1).repeat(2, 1, 1, 1)
    with torch.no_grad():
        by_camera = backbone.forward_tokens(images, torch.tensor([0, 1]))
        same_camera = backbone.forward_tokens(images, torch.tensor([1, 1]))
        # Reference: no camera term, the camera's embedding folded into the class embedding instead.
        folded = dataclasses.replace(backbone.config, camera_embedding=False)
        plain = ClipBackbone(folded, num_cams=0, pretrained="none").eval()
        plain.load_state_dict({k: v for k, v in backbone.state_dict().items() if k != "camera_embedding"})
        plain.visual.class_embedding += backbone.camera_embedding[1]
        expected = plain.forward_tokens(images[:1], None)
    assert not torch.allclose(by_camera.cls[0], by_camera.cls[1])
    assert torch.equal(same_camera.tokens[0], same_camera.tokens[1])
    assert torch.allclose(by_camera.tokens[1:], expected.tokens, atol=1e-5)


def test_camera_scale_and_missing_camids():
    backbone = _tiny(num_cams=2, camera_scale=2.0)
    assert torch.allclose(backbone.camera_term(torch.tensor([1])), 2.0 * backbone.camera_embedding[1:2])
    with torch.no_grad():
        without = backbone.forward_tokens(_images(1), None)
        with_camera = backbone.forward_tokens(_images(1), torch.tensor([0]))
    assert not torch.allclose(without.cls, with_camera.cls)
    with pytest.raises(ConfigError, match="num_cams"):
        backbone.forward_tokens(_images(1), torch.tensor([2]))


def test_offline_openai_gives_a_one_line_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(VreidError) as error:
        ClipBackbone(ClipBackboneConfig(name="ViT-B-16", text=False), pretrained="openai")
    message = str(error.value)
    assert "\n" not in message
    assert "pretrained=/path/to/ViT-B-16.pt" in message and "'none'" in message


@pytest.mark.parametrize(
    ("fields", "pretrained", "match"),
    [
        ({"image_size": (100, 64)}, "none", "multiple of the 16-pixel patch"),
        ({}, "openai", "neither a weights tag of tiny"),
        ({}, "/no/such/file.pt", "nor an existing file"),
        ({"pos_embed_interpolation": "nearest"}, "none", "bicubic"),
    ],
)
def test_bad_settings_are_config_errors(fields, pretrained, match):
    config = ClipBackboneConfig(name="tiny", **{"image_size": SIZE, **fields})
    with pytest.raises(ConfigError, match=match):
        ClipBackbone(config, pretrained=pretrained)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"visual.conv1.weight": torch.zeros(8, 3, 16, 16)}, path)
    with pytest.raises(ConfigError, match="do not fit"):
        _tiny(pretrained=str(path))


def test_text_free_backbone_says_how_to_get_text():
    backbone = _tiny(text=False)
    assert backbone.text is None
    with pytest.raises(ConfigError, match="text=True"):
        backbone.encode_text(torch.zeros(1, 77, dtype=torch.long))


class _ScriptHolder(torch.nn.Module):
    """Lays a CLIP model's weights out as OpenAI's TorchScript ``ViT-B-16.pt`` does (same keys, JIT archive)."""

    def __init__(self, clip):
        super().__init__()
        for name, child in clip.named_children():
            setattr(self, name, child)
        for name, parameter in clip.named_parameters(recurse=False):
            setattr(self, name, parameter)

    def forward(self, x):
        return x * self.logit_scale


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_openai_style_torchscript_archive_loads(tmp_path):
    reference = _open_clip_tiny((224, 224))
    path = tmp_path / "ViT-tiny.pt"
    torch.jit.trace(_ScriptHolder(reference), torch.ones(1)).save(str(path))
    backbone = _tiny(pretrained=str(path), image_size=(224, 224), seed=5).eval()
    images = _images(1, (224, 224))
    with torch.no_grad():
        assert torch.allclose(backbone.forward_tokens(images).projected, reference.encode_image(images), atol=1e-5)
