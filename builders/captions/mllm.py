"""Captions written by a multimodal language model: any transformers image-text-to-text model, by name or folder.

Each tracklet is shown to the model as a few crops in one user turn, with the prompt of the captioning recipe
(:mod:`builders.captions.recipe`; by default ``identity``: the details that tell teammates apart, no guessing).
Decoding is greedy, so a caption is a function of the frames, the model and the settings hashed into the prompt
id (the recipe id among them; batch size and order do not enter it: prompts are padded on the left), which is what
lets the base cache reuse it. The default model is ``microsoft/Phi-4-multimodal-instruct``, the model the
CG-CLIP paper captioned with.

The model is loaded on first use, not when the captioner is built: a re-run whose captions are all cached
never reads the weights. Offline, a model name that is not in the local cache is an error that says how to
fetch the folder on a machine with network and pass it instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from PIL import Image

from builders.captions.base import Caption, CaptionRequest, Captioner, short_hash
from builders.captions.recipe import CaptionRecipe, load_caption_recipe
from vreid_bench.errors import ConfigError

DEFAULT_MODEL = "microsoft/Phi-4-multimodal-instruct"

# Models whose published checkpoint ships its own modelling code; trust_remote_code defaults on for these only.
REMOTE_CODE_MODELS = frozenset({DEFAULT_MODEL})

DTYPES: Mapping[str, torch.dtype] = MappingProxyType({
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
})

@dataclass(frozen=True)
class ModelFamily:
    """How one model family departs from the usual path (structured chat content, one image list per prompt).

    ``image_tag``: the chat template takes plain-text content in which images are numbered tags (``{n}`` from
    1), and the processor takes one flat image list for the whole batch. ``adapter``: the subfolder of a LoRA
    adapter the family needs for image input, used unless the ``adapter`` option says otherwise.
    """

    image_tag: str | None = None
    adapter: str | None = None


STANDARD_FAMILY = ModelFamily()

# By ``config.model_type``.
MODEL_FAMILIES: Mapping[str, ModelFamily] = MappingProxyType({
    # Phi-4-multimodal's own (remote) code: a text-only chat template with <|image_1|> ... tags.
    "phi4mm": ModelFamily(image_tag="<|image_{n}|>"),
    # Phi-4-multimodal as transformers implements it: the vision LoRA is a separate adapter folder.
    "phi4_multimodal": ModelFamily(adapter="vision-lora"),
})


@dataclass(frozen=True)
class MLLMSettings:
    """Everything that decides a caption besides the frames; all of it goes into the prompt id."""

    model: str
    revision: str | None
    device: str
    dtype: str
    recipe: CaptionRecipe
    trust_remote_code: bool
    adapter: str | None

    def cache_text(self) -> str:
        """The text hashed into the prompt id. The device is left out: it changes speed, not the caption."""
        return "|".join([
            f"recipe={self.recipe.id}",
            f"model={self.model}",
            f"revision={self.revision or 'default'}",
            f"adapter={self.adapter or 'default'}",
            f"dtype={self.dtype}",
        ])


@dataclass(frozen=True)
class LoadedModel:
    processor: Any
    model: Any
    family: ModelFamily


def resolve_device(device: str) -> str:
    """``auto`` is the first GPU when there is one, else the CPU; a named device must exist."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {device!r} is not a torch device: use auto, cpu, cuda or cuda:N") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asks for a GPU but torch sees none: use --device cpu or auto")
    return str(parsed)


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` is bfloat16 on a GPU (half the memory, the precision these models are published in), else float32."""
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not supported: use auto, {', '.join(DTYPES)}")
    return dtype


def missing_model_message(model: str, reason: str) -> str:
    return (f"captioning model {model!r} is neither a local model folder nor could it be fetched ({reason}): on a "
            f"machine with network run `hf download {model} --local-dir DIR`, copy DIR here and pass "
            "--captioner DIR")


def model_class_for(config: Any) -> Any:
    """The auto class that builds this model: image-text-to-text where the model is one, else causal LM.

    Multimodal models that generate text but are not registered as image-text-to-text (Phi-4-multimodal, in its
    remote and its transformers form) load as causal language models, as their own documentation does.
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    auto_map = getattr(config, "auto_map", None) or {}
    if config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES or "AutoModelForImageTextToText" in auto_map:
        return AutoModelForImageTextToText
    return AutoModelForCausalLM


def check_generates_from_images(model: str, config: Any) -> None:
    """A model that cannot read images (a text-only LM, an image classifier) is refused before its weights load."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    auto_map = getattr(config, "auto_map", None) or {}
    if (config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES or config.model_type in MODEL_FAMILIES
            or "AutoModelForImageTextToText" in auto_map):
        return
    raise ConfigError(f"{model} is a {config.model_type!r} model, not an image-text-to-text model: give a multimodal "
                      f"model that writes text about images (default {DEFAULT_MODEL})")


def model_source(model: str) -> str:
    """What ``from_pretrained`` gets: a local folder (``~`` expanded), which must hold a model, or a hub id."""
    local = Path(model).expanduser()
    if not local.is_dir():
        return model
    if not (local / "config.json").is_file():
        raise ConfigError(f"{model} has no config.json: give a folder written by save_pretrained or by "
                          f"`hf download NAME --local-dir {model}`")
    return str(local)


def load_model(settings: MLLMSettings) -> LoadedModel:
    """Processor and model, on the device and in the dtype asked for; user errors for what the user can fix."""
    try:
        import transformers
    except ImportError:
        raise ConfigError("model captioners need transformers: pip install 'transformers>=5,<6'") from None

    source = model_source(settings.model)
    if not Path(source).is_dir() and not _in_hub_cache(source, settings.revision):
        from vreid_bench.net import hub_endpoint, require_download

        require_download(hub_endpoint(), f"captioning model {settings.model!r}",
                         f"on a machine with network run `hf download {settings.model} --local-dir DIR`, copy DIR "
                         "here and pass --captioner DIR", hub=True)
    common: dict[str, Any] = {"revision": settings.revision, "trust_remote_code": settings.trust_remote_code}
    try:
        config = transformers.AutoConfig.from_pretrained(source, **common)
        check_generates_from_images(settings.model, config)
        processor = transformers.AutoProcessor.from_pretrained(source, **common)
        model = model_class_for(config).from_pretrained(source, dtype=DTYPES[settings.dtype], **common)
    except OSError as exc:
        raise ConfigError(missing_model_message(settings.model, _first_line(exc))) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ConfigError(f"model {settings.model!r} ships its own code: pass trust_remote_code=True "
                              "(--trust-remote-code) if you trust its authors") from exc
        raise ConfigError(f"model {settings.model!r} cannot be loaded by transformers {transformers.__version__} "
                          f"({_first_line(exc)}): upgrade transformers or choose an image-text-to-text model") from exc

    family = MODEL_FAMILIES.get(config.model_type, STANDARD_FAMILY)
    if family.image_tag is None and getattr(processor, "chat_template", None) is None:
        raise ConfigError(f"model {settings.model!r} has no chat template in its processor: choose an instruction-"
                          "tuned image-text-to-text model")
    adapter = settings.adapter if settings.adapter is not None else family.adapter
    if adapter and adapter != "none":
        model = _with_adapter(model, source, settings, adapter)
    _prepare_for_batches(processor)
    model = model.to(settings.device)
    model.eval()
    return LoadedModel(processor=processor, model=model, family=family)


def _in_hub_cache(model: str, revision: str | None) -> bool:
    """Whether an earlier download left the model's config in the Hugging Face cache (no network used)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model, "config.json", revision=revision), str)


def _with_adapter(model: Any, source: str, settings: MLLMSettings, adapter: str) -> Any:
    """The model with the LoRA adapter kept in its ``adapter`` subfolder applied (by peft, as a wrapper)."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ConfigError(f"model {settings.model!r} needs its {adapter!r} LoRA adapter, which needs peft: "
                          "pip install 'peft>=0.21,<1'") from None
    try:
        return PeftModel.from_pretrained(model, source, subfolder=adapter, adapter_name=adapter,
                                         revision=settings.revision)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model {settings.model!r} has no adapter folder {adapter!r} ({_first_line(exc)}): "
                          "give the subfolder that holds adapter_config.json, or adapter='none'") from exc


def _prepare_for_batches(processor: Any) -> None:
    """Pad on the left, so every prompt of a batch ends where generation starts."""
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def chat_prompt(processor: Any, family: ModelFamily, n_images: int, prompt: str) -> str:
    """The rendered chat turn for ``n_images`` frames followed by the prompt, ending where the answer starts."""
    if family.image_tag is not None:
        tags = "".join(family.image_tag.format(n=n) for n in range(1, n_images + 1))
        messages: list[dict[str, Any]] = [{"role": "user", "content": tags + prompt}]
        return processor.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def read_frames(paths: Sequence[str]) -> list[Image.Image]:
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


def clean_caption(text: str) -> str:
    """One line: models break lines and pad with spaces (an empty answer stays empty, and is refused)."""
    return re.sub(r"\s+", " ", text).strip()


class MLLMCaptioner(Captioner):
    """Captions by a transformers multimodal model, greedy and batched; the model is loaded on first use.

    ``model`` is a hub name or a local folder (``hf download NAME --local-dir DIR``). ``recipe`` is a captioning
    recipe name or YAML file (default ``identity``); ``frames`` and ``max_new_tokens`` change that one value of it.
    ``trust_remote_code`` defaults to True for ``microsoft/Phi-4-multimodal-instruct`` only, whose checkpoint
    ships its own code; pass it explicitly for any other model that does. ``adapter`` names a LoRA subfolder to
    activate ("none" for none); by default the family's own (Phi-4-multimodal in transformers' form:
    ``vision-lora``).
    """

    def __init__(self, model: str = DEFAULT_MODEL, revision: str | None = None, device: str = "auto",
                 dtype: str = "auto", recipe: str | None = None, max_new_tokens: int | None = None,
                 frames: int | None = None, trust_remote_code: bool | None = None, adapter: str | None = None) -> None:
        chosen = load_caption_recipe(recipe).with_changes(
            frames=None if frames is None else int(frames),
            max_new_tokens=None if max_new_tokens is None else int(max_new_tokens))
        resolved_device = resolve_device(str(device))
        self.settings = MLLMSettings(
            model=str(model),
            revision=revision,
            device=resolved_device,
            dtype=resolve_dtype(str(dtype), resolved_device),
            recipe=chosen,
            trust_remote_code=(str(model) in REMOTE_CODE_MODELS if trust_remote_code is None
                               else bool(trust_remote_code)),
            adapter=adapter,
        )
        self.name = self.settings.model
        self.prompt_id = short_hash(self.settings.cache_text())
        self.frames_per_request = chosen.frames
        self._loaded: LoadedModel | None = None

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> LoadedModel:
        """The processor and model, loaded the first time they are needed."""
        if self._loaded is None:
            self._loaded = load_model(self.settings)
        return self._loaded

    @property
    def recipe(self) -> CaptionRecipe:
        return self.settings.recipe

    def choose_frames(self, frames: Sequence[str]) -> tuple[str, ...]:
        return self.settings.recipe.choose_frames(frames)

    def check_requests(self, requests: Sequence[CaptionRequest]) -> None:
        """Load the model before any work starts, so a missing model fails at once; only when there is work."""
        if requests:
            self.load()

    def describe_batch(self, requests: Sequence[CaptionRequest]) -> list[Caption]:
        """Captions, each row naming the captioning recipe it followed."""
        return [Caption(text, {"recipe": self.settings.recipe.id}) for text in self.caption_batch(requests)]

    def caption_batch(self, requests: Sequence[CaptionRequest]) -> list[str]:
        if not requests:
            return []
        loaded = self.load()
        recipe = self.settings.recipe
        prompts = [chat_prompt(loaded.processor, loaded.family, len(r.frames), recipe.prompt) for r in requests]
        frames = [read_frames(r.frames) for r in requests]
        images: list[Any] = [img for group in frames for img in group] if loaded.family.image_tag else frames
        inputs = loaded.processor(text=prompts, images=images, padding=True, return_tensors="pt")
        inputs = inputs.to(device=self.settings.device, dtype=DTYPES[self.settings.dtype])
        with torch.inference_mode():
            output = loaded.model.generate(**inputs, max_new_tokens=recipe.max_new_tokens, do_sample=False,
                                           num_beams=1, pad_token_id=loaded.processor.tokenizer.pad_token_id)
        answers = output[:, inputs["input_ids"].shape[1]:]  # (B, prompt + new) -> (B, new): drop the prompt
        texts = loaded.processor.batch_decode(answers, skip_special_tokens=True)
        return [clean_caption(text) for text in texts]
