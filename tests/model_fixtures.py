"""Tiny random models saved in the real Hugging Face on-disk layout (nothing downloads)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch

_MIEWID_CONFIG = '''
from transformers import PretrainedConfig


class TinyMiewIdConfig(PretrainedConfig):
    model_type = "tiny_miewid"

    def __init__(self, feat_dim=24, **kwargs):
        self.feat_dim = feat_dim
        super().__init__(**kwargs)
'''

_MIEWID_MODEL = '''
import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_tiny_miewid import TinyMiewIdConfig


class TinyMiewIdModel(PreTrainedModel):
    config_class = TinyMiewIdConfig

    def __init__(self, config):
        super().__init__(config)
        self.conv = nn.Conv2d(3, 8, kernel_size=5, stride=4)
        self.head = nn.Linear(8 * 4 * 4, config.feat_dim)
        self.post_init()

    def extract_feat(self, x):
        h = torch.relu(self.conv(x))
        h = nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)
        return self.head(h)

    def forward(self, pixel_values):
        return self.extract_feat(pixel_values)
'''


def _seed() -> None:
    torch.manual_seed(0)


def make_tiny_dinov2(folder: Path) -> Path:
    """A 2-layer DINOv2 at 56 px with its BitImageProcessor, as facebook/dinov2-* is laid out."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    _seed()
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=56, patch_size=14
    )
    Dinov2Model(config).eval().save_pretrained(folder)
    BitImageProcessor(
        size={"shortest_edge": 64},
        crop_size={"height": 56, "width": 56},
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder


def _text_config() -> dict:
    return {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 99}


def _vision_config() -> dict:
    return {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32, "patch_size": 8}


def make_tiny_clip(folder: Path) -> Path:
    """A tiny CLIP (both towers) with a CLIPImageProcessor, as openai/clip-vit-base-patch32 is laid out."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    _seed()
    config = CLIPConfig(text_config={**_text_config(), "bos_token_id": 0, "eos_token_id": 2}, vision_config=_vision_config(), projection_dim=16)
    CLIPModel(config).eval().save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def make_tiny_siglip(folder: Path) -> Path:
    """A tiny SigLIP with its image processor."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    _seed()
    config = SiglipConfig(text_config=_text_config(), vision_config=_vision_config())
    SiglipModel(config).eval().save_pretrained(folder)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def make_tiny_miewid(folder: Path) -> Path:
    """A tiny remote-code model with MiewID's ``extract_feat`` interface (config ``auto_map``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "configuration_tiny_miewid.py").write_text(_MIEWID_CONFIG)
    (folder / "modeling_tiny_miewid.py").write_text(_MIEWID_MODEL)
    package = f"_tiny_miewid_{abs(hash(str(folder)))}"
    pkg_spec = importlib.util.spec_from_file_location(package, folder / "__init__.py", submodule_search_locations=[str(folder)])
    (folder / "__init__.py").write_text("")
    pkg = importlib.util.module_from_spec(pkg_spec)  # type: ignore[arg-type]
    sys.modules[package] = pkg
    conf_mod = importlib.import_module(f"{package}.configuration_tiny_miewid")
    model_mod = importlib.import_module(f"{package}.modeling_tiny_miewid")
    _seed()
    config = conf_mod.TinyMiewIdConfig(feat_dim=24)
    model = model_mod.TinyMiewIdModel(config).eval()
    model.save_pretrained(folder)
    (folder / "__init__.py").unlink()
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {
        "AutoConfig": "configuration_tiny_miewid.TinyMiewIdConfig",
        "AutoModel": "modeling_tiny_miewid.TinyMiewIdModel",
    }
    cfg["model_type"] = "tiny_miewid"
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    for name in list(sys.modules):
        if name.startswith(package):
            del sys.modules[name]
    return folder


def _write_tiny_clip_tokenizer(folder: Path) -> int:
    """A byte-level CLIP BPE tokenizer with no merges (every character is a token); returns its vocab size."""
    import json

    from transformers import CLIPTokenizer

    # byte-level BPE alphabet: printable Latin-1 bytes stand for themselves, the others for 256 + n
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    chars = [chr(b) for b in printable] + [chr(256 + n) for n in range(len(extra))]
    vocab = {tok: i for i, tok in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16).save_pretrained(folder)
    return len(vocab)


def make_tiny_clip_with_text(folder: Path) -> Path:
    """A tiny CLIP with a tokenizer and an image processor (a CLIPProcessor), for CLIP-T."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab_size = _write_tiny_clip_tokenizer(folder)
    _seed()
    text = {**_text_config(), "vocab_size": vocab_size, "max_position_embeddings": 16,
            "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1}
    CLIPModel(CLIPConfig(text_config=text, vision_config=_vision_config(), projection_dim=16)).eval().save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=CLIPTokenizer.from_pretrained(folder)).save_pretrained(folder)
    return folder


# The preprocessor_config.json files of the real checkpoints, value for value (the CLIP one in
# the old feature-extractor spelling it still has on the Hub).
DINOV2_BASE_PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "BitImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 256},
}

CLIP_B32_PREPROCESSOR = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}


def make_tiny_dinov2_224(folder: Path) -> Path:
    """A 2-layer DINOv2 with facebook/dinov2-base's own preprocessor config (256 bicubic, crop 224)."""
    from transformers import Dinov2Config, Dinov2Model

    _seed()
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=224, patch_size=28
    )
    Dinov2Model(config).eval().save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(DINOV2_BASE_PREPROCESSOR, indent=2))
    return folder


def make_tiny_clip_224(folder: Path) -> Path:
    """A tiny CLIP at 224 px with openai/clip-vit-base-patch32's own preprocessor config and a
    tokenizer, so that ``CLIPProcessor.from_pretrained`` loads it as the reference code does."""
    from transformers import CLIPConfig, CLIPModel

    vocab_size = _write_tiny_clip_tokenizer(folder)
    _seed()
    text = {**_text_config(), "vocab_size": vocab_size, "max_position_embeddings": 16,
            "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1}
    vision = {**_vision_config(), "image_size": 224, "patch_size": 32}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval().save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(CLIP_B32_PREPROCESSOR, indent=2))
    return folder


#: The tiny vision-language judge's word-level vocabulary (``<image>`` is the image placeholder).
VLM_WORDS = ("<pad>", "<s>", "</s>", "<unk>", "<image>", "USER:", "ASSISTANT:", "Score:", "0", "1", "2", "3", "4", "the", "a")


def make_tiny_vlm(folder: Path, answer: int | None = None) -> Path:
    """A tiny LLaVA (CLIP vision tower, 1-layer Llama) with a word-level tokenizer, a CLIP image
    processor and a chat template, saved as a Hub checkpoint is laid out.

    With ``answer`` its language model is rewired into a bigram model (attention and MLP outputs
    zeroed, one-hot embeddings, an lm_head of chosen transitions) that greedy decoding drives to
    ``ASSISTANT: Score: <answer> </s>``; without it the weights stay random (replies without a score).
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    _seed()
    vocab = {w: i for i, w in enumerate(VLM_WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})
    template = (
        "{% for m in messages %}{{ 'USER:' if m['role'] == 'user' else 'ASSISTANT:' }}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %} <image>{% else %} {{ c['text'] }}{% endif %}"
        "{% endfor %} {% if m['role'] == 'assistant' %}</s> {% endif %}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", chat_template=template,
        num_additional_image_tokens=1,
    )
    hidden = 16
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=hidden, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       image_size=16, patch_size=8),
        text_config=LlamaConfig(vocab_size=len(VLM_WORDS), hidden_size=hidden, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                                bos_token_id=1, eos_token_id=2, pad_token_id=0),
        image_token_index=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1,
        image_seq_length=4,
    )
    model = LlavaForConditionalGeneration(config)
    if answer is not None:
        lm = model.model.language_model
        with torch.no_grad():
            for layer in lm.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            lm.embed_tokens.weight.copy_(torch.eye(len(VLM_WORDS), hidden))
            head = torch.zeros(len(VLM_WORDS), hidden)
            for now, then in (("ASSISTANT:", "Score:"), ("Score:", str(answer)), (str(answer), "</s>")):
                head[vocab[then], vocab[now]] = 1.0
            model.lm_head.weight.copy_(head)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
