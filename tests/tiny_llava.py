"""A tiny randomly initialised LLaVA (1-layer CLIP vision tower, 1-layer Llama, 16-pixel images), built offline.

Its word-level tokenizer, image processor and chat template are made here and saved with ``save_pretrained``;
a captioner gets the folder, exactly as a user passes a downloaded model. Random weights write gibberish: tests
check the code path (prompt, images, batching, greedy decoding, caching, errors), not the words.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>", "<image>")
WORDS = ("USER:", "ASSISTANT:", "a", "the", "player", "dancer", "with", "short", "long", "black", "blond", "hair",
         "light", "dark", "skin", "red", "blue", "jersey", "number", "7", "white", "shoes", "socks", "headband",
         "slim", "build", "unknown", ".", ",")
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}:"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %} <image>{% else %} {{ item['text'] }}"
    "{% endif %}{% endfor %} </s> {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
IMAGE_SIZE, PATCH = 16, 8
MAX_NEW_TOKENS = 8


def build_tiny_llava(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised LLaVA with its processor, saved as a model folder; no download.

    The language model's weights are drawn wide (std 1, not 0.02) so that its greedy output depends on the
    frames and the prompt rather than repeating one token, which lets the tests tell captions apart.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {token: index for index, token in enumerate((*SPECIAL_TOKENS, *WORDS))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                                      crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = transformers.LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                            chat_template=CHAT_TEMPLATE, patch_size=PATCH,
                                            vision_feature_select_strategy="default", num_additional_image_tokens=1)
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                    num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=PATCH),
        text_config=transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=512, initializer_range=1.0,
                                             pad_token_id=vocab["<pad>"],
                                             bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"]),
        image_token_index=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = transformers.LlavaForConditionalGeneration(config)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
