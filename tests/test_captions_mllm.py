"""The multimodal-model captioner, end to end on a tiny randomly initialised LLaVA built offline.

The model (a 1-layer CLIP vision tower and a 1-layer Llama, 16-pixel images, 4 tokens per image), its word-level
tokenizer, image processor and chat template are made here and saved with ``save_pretrained``; the captioner
gets the folder, exactly as a user passes a downloaded model. Random weights write gibberish: the tests check
the code path (prompt, images, batching, greedy decoding, caching, errors), not the words.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

transformers = pytest.importorskip("transformers")

from tiny_llava import MAX_NEW_TOKENS, build_tiny_llava
from toolkit_fixture import make_toolkit_dataset

from builders.captions import (
    CaptionRequest,
    CaptionTarget,
    caption_dataset,
    caption_requests,
    caption_target,
    create_captioner,
    load_caption_recipe,
)
from builders.captions.mllm import DEFAULT_MODEL, MLLMCaptioner
from vreid_bench import cli_caption
from vreid_bench.errors import ConfigError, UnknownNameError

PROMPT = load_caption_recipe().prompt


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_toolkit_dataset(tmp_path, videos=2, ids_per_video=2, cameras=2, frames=6)


def everything(dataset_dir: Path) -> CaptionTarget:
    return caption_target(dataset_dir, include_test=True)


def read_rows(dataset_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (dataset_dir / "captions.jsonl").read_text().splitlines()]


def tiny_captioner(model_dir: Path, **options: object) -> MLLMCaptioner:
    captioner = create_captioner(str(model_dir), device="cpu", max_new_tokens=MAX_NEW_TOKENS, **options)
    assert isinstance(captioner, MLLMCaptioner)
    return captioner


def greedy_reference(model_dir: Path, frames: tuple[str, ...], model: torch.nn.Module | None = None,
                     prompt: str = PROMPT) -> str:
    """Greedy decoding by hand: the full forward pass at every step, argmax, stop at end of sequence."""
    from PIL import Image

    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    model = model or transformers.AutoModelForImageTextToText.from_pretrained(model_dir)
    text = "USER:" + " <image>" * len(frames) + f" {prompt} </s> ASSISTANT:"
    images = [Image.open(path).convert("RGB") for path in frames]
    inputs = processor(text=[text], images=[images], return_tensors="pt")
    ids = inputs["input_ids"]
    eos = processor.tokenizer.eos_token_id
    new: list[int] = []
    with torch.no_grad():
        for _ in range(MAX_NEW_TOKENS):
            logits = model(input_ids=ids, pixel_values=inputs["pixel_values"]).logits  # (1, L, V)
            token = int(logits[0, -1].argmax())
            if token == eos:
                break
            new.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    decoded = processor.tokenizer.decode(new, skip_special_tokens=True)
    return re.sub(r"\s+", " ", decoded).strip()


def requests_of_mixed_length(dataset_dir: Path) -> list[CaptionRequest]:
    """Requests with 4, 1, 3 and 2 frames: prompts of different lengths, so a batch must be padded."""
    full = caption_requests(everything(dataset_dir))
    return [CaptionRequest(r.tracklet_id, r.video, r.track_id, r.frames[:n]) for r, n in zip(full, (4, 1, 3, 2))]


def test_caption_dataset_with_a_local_model_folder(model_dir: Path, dataset: Path) -> None:
    captioner = tiny_captioner(model_dir)
    summary = caption_dataset(everything(dataset), captioner, batch_size=3, progress=False)
    assert (summary.captioned, summary.cached, summary.total) == (8, 0, 8)

    rows = read_rows(dataset)
    assert len(rows) == 8 and len({r["tracklet_id"] for r in rows}) == 8
    for row in rows:
        assert row["captioner"] == str(model_dir)
        assert row["prompt_id"] == captioner.prompt_id
        assert row["reviewed"] is False and row["recipe"] == captioner.recipe.id
        assert isinstance(row["caption"], str) and row["caption"] and "\n" not in row["caption"]

    # The captions are what greedy decoding of the prompt and the tracklet's frames gives.
    requests = {r.tracklet_id: r for r in caption_requests(everything(dataset), captioner)}
    for row in rows[:2]:
        assert row["caption"] == greedy_reference(model_dir, requests[row["tracklet_id"]].frames)

    # A fresh captioner with the same settings has the same prompt id, finds every caption cached, and never
    # loads the model to find out.
    again = tiny_captioner(model_dir)
    assert again.prompt_id == captioner.prompt_id
    summary = caption_dataset(everything(dataset), again, progress=False)
    assert (summary.captioned, summary.cached) == (0, 8)
    assert not again.is_loaded
    assert read_rows(dataset) == rows


def test_prompt_id_follows_the_settings_that_change_captions(model_dir: Path) -> None:
    base = tiny_captioner(model_dir).prompt_id
    assert tiny_captioner(model_dir).prompt_id == base
    assert create_captioner(str(model_dir), device="cpu", max_new_tokens=9).prompt_id != base
    assert tiny_captioner(model_dir, frames=2).prompt_id != base
    assert tiny_captioner(model_dir, dtype="bfloat16").prompt_id != base
    assert tiny_captioner(model_dir, revision="v2").prompt_id != base
    assert tiny_captioner(model_dir, recipe=str(other_recipe(model_dir.parent))).prompt_id != base
    assert create_captioner("someone/other-model", device="cpu", max_new_tokens=MAX_NEW_TOKENS).prompt_id != base


def test_batched_captions_equal_one_at_a_time(model_dir: Path, dataset: Path) -> None:
    captioner = tiny_captioner(model_dir)
    requests = requests_of_mixed_length(dataset)
    batched = captioner.caption_batch(requests)
    singles = [captioner.caption_batch([request])[0] for request in requests]
    assert batched == singles
    assert singles[1] == greedy_reference(model_dir, requests[1].frames)  # the shortest prompt, padded the most
    assert len(set(batched)) > 1, "different frames should give different captions"


def test_frames_option_sets_how_many_frames_each_request_carries(model_dir: Path, dataset: Path) -> None:
    captioner = tiny_captioner(model_dir, frames=2)
    assert captioner.frames_per_request == 2
    caption_dataset(dataset, captioner, progress=False)
    request = caption_requests(caption_target(dataset), captioner)[0]
    assert len(request.frames) == 2
    row = next(r for r in read_rows(dataset) if r["tracklet_id"] == request.tracklet_id)
    assert row["caption"] == greedy_reference(model_dir, request.frames)


def test_lora_adapter_subfolder_is_loaded_and_active(model_dir: Path, dataset: Path, tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    import shutil

    folder = Path(shutil.copytree(model_dir, tmp_path / "with-adapter"))
    base = transformers.AutoModelForImageTextToText.from_pretrained(folder)
    torch.manual_seed(1)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                     init_lora_weights=False))  # random B: the adapter matters
    lora.save_pretrained(folder / "vision-lora")

    requests = requests_of_mixed_length(dataset)
    adapted = tiny_captioner(folder, adapter="vision-lora")
    captions = adapted.caption_batch(requests)
    assert captions == [greedy_reference(folder, r.frames, model=lora.eval()) for r in requests]
    assert captions != tiny_captioner(folder).caption_batch(requests)
    assert adapted.prompt_id != tiny_captioner(folder).prompt_id

    with pytest.raises(ConfigError, match="no adapter folder 'text-lora'"):
        tiny_captioner(folder, adapter="text-lora").load()


def test_missing_model_offline_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, dataset: Path) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, when the hub loads
    captioner = create_captioner("vreid-test/no-such-model", device="cpu")
    assert captioner.name == "vreid-test/no-such-model"
    with pytest.raises(ConfigError) as caught:
        caption_dataset(dataset, captioner, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "'vreid-test/no-such-model'" in message
    assert "hf download vreid-test/no-such-model --local-dir DIR" in message and "--captioner DIR" in message
    assert not (dataset / "captions.jsonl").exists()


def test_folder_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"not-a-model has no config\.json"):
        create_captioner(str(empty), device="cpu").load()


def test_names_options_and_remote_code_defaults() -> None:
    default = create_captioner("mllm", device="cpu")
    assert isinstance(default, MLLMCaptioner) and default.name == DEFAULT_MODEL == "microsoft/Phi-4-multimodal-instruct"
    assert default.settings.trust_remote_code is True
    assert create_captioner(DEFAULT_MODEL, device="cpu", trust_remote_code=False).settings.trust_remote_code is False
    other = create_captioner("someone/other-model", device="cpu")
    assert other.settings.trust_remote_code is False and not other.is_loaded  # nothing loaded yet
    assert create_captioner("someone/other-model", device="cpu", trust_remote_code=True).settings.trust_remote_code

    with pytest.raises(UnknownNameError, match=r"'phi4'.*model id \(org/name\)"):
        create_captioner("phi4")
    with pytest.raises(ConfigError, match="no option hallucination"):
        create_captioner("someone/other-model", hallucination=0.2)
    with pytest.raises(ConfigError, match="max_new_tokens=0"):
        create_captioner("someone/other-model", max_new_tokens=0)
    with pytest.raises(ConfigError, match="frames=0"):
        create_captioner("someone/other-model", frames=0)
    with pytest.raises(ConfigError, match="dtype 'float8'"):
        create_captioner("someone/other-model", dtype="float8")
    with pytest.raises(ConfigError, match="device 'gpu0'"):
        create_captioner("someone/other-model", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cpu or auto"):
            create_captioner("someone/other-model", device="cuda")
        assert create_captioner("someone/other-model").settings.dtype == "float32"  # auto on a CPU machine


def test_cli_caption_with_a_model_folder(model_dir: Path, dataset: Path) -> None:
    app = typer.Typer()
    cli_caption.register(app)
    runner = CliRunner()
    args = ["caption", "--dataset", str(dataset), "--captioner", str(model_dir), "--device", "cpu",
            "--max-new-tokens", "4", "--frames", "2", "--batch-size", "3"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "4 tracklets to caption (0 already captioned) × 2 frames each = 8 images" in first.output
    assert "captioned 4, cached 0, total 4" in first.output
    assert runner.invoke(app, args).output.count("captioned 0, cached 4, total 4") == 1
    assert {row["captioner"] for row in read_rows(dataset)} == {str(model_dir)}

    template_option = runner.invoke(app, ["caption", "--dataset", str(dataset), "--captioner", str(model_dir),
                                          "--hallucination", "0.1"])
    assert isinstance(template_option.exception, ConfigError)
    model_option = runner.invoke(app, ["caption", "--dataset", str(dataset), "--frames", "2"])
    assert isinstance(model_option.exception, ConfigError) and "no option frames" in str(model_option.exception)


def other_recipe(folder: Path) -> Path:
    """A captioning recipe file that differs from the default in its prompt only."""
    path = folder / "short-prompt.yaml"
    path.write_text("name: short\nversion: 1\nprompt: Describe this person in one sentence.\n")
    return path


def test_a_recipe_file_sets_the_prompt_the_model_is_given(model_dir: Path, dataset: Path) -> None:
    recipe = other_recipe(model_dir.parent)
    captioner = tiny_captioner(model_dir, recipe=str(recipe))
    assert captioner.recipe.prompt == "Describe this person in one sentence."
    assert captioner.recipe.id.startswith("short-v1-")
    request = caption_requests(caption_target(dataset), captioner)[0]
    assert len(request.frames) == 4  # the recipe's default
    (text,) = captioner.caption_batch([request])
    reference = greedy_reference(model_dir, request.frames, prompt=captioner.recipe.prompt)
    assert text == reference


def test_an_empty_answer_is_refused_and_nothing_is_written(model_dir: Path, dataset: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    captioner = tiny_captioner(model_dir)
    monkeypatch.setattr(MLLMCaptioner, "caption_batch", lambda self, requests: ["  "] * len(requests))
    with pytest.raises(ConfigError, match=r"returned an empty caption for tracklet 'v_fixture_000_t1_c0'"):
        caption_dataset(dataset, captioner, progress=False)
    assert not (dataset / "captions.jsonl").exists()


def test_a_model_that_does_not_read_images_is_refused_before_loading(tmp_path: Path) -> None:
    folder = tmp_path / "text-only"
    transformers.LlamaConfig(vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                             num_attention_heads=1).save_pretrained(folder)
    with pytest.raises(ConfigError, match=r"text-only is a 'llama' model, not an image-text-to-text model"):
        create_captioner(str(folder), device="cpu").load()
