"""A judge run here: a transformers vision-language model by Hub id or folder (``--judge ID[@REVISION]``).

The model gets the same conversation as a served judge (:mod:`fp_rank.judging.prompt`), laid
out by its processor's chat template with the two images (reference first), and answers by
greedy decoding, so its judgements are deterministic for given weights. Any checkpoint that
``AutoModelForImageTextToText`` and ``AutoProcessor`` load and whose chat template takes
image entries works (LLaVA, Idefics3/SmolVLM, Qwen2-VL and the like). Weights load from
safetensors only, and remote code only with ``trust_remote_code``.
"""

from __future__ import annotations

import io
from typing import Any

from fp_rank.errors import EncoderError
from fp_rank.judging.base import CallBudget, JudgeError, JudgeRequest

#: Tokens the model may write in its reply ("Score: 4" is a handful).
MAX_NEW_TOKENS = 24


class LocalVLMJudge:
    """A vision-language model loaded with transformers.

    Args:
        spec: Hub id or folder.
        revision: Hub revision (None: main; a folder's content hash is recorded instead).
        device: torch device (None: CUDA when available).
        trust_remote_code: allow a checkpoint that runs its repository's code.

    Raises:
        JudgeError: the checkpoint cannot be loaded as a vision-language model.
    """

    backend = "transformers"
    concurrency = 1
    counts_calls = True

    def __init__(self, spec: str, *, revision: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging as hf_logging

        from fp_rank.encoding.backends._pretrained import check_local_model_folder, load_pretrained, model_revision
        from fp_rank.encoding.options import _resolve_device

        self.spec = str(spec)
        self.device = _resolve_device(device)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            check_local_model_folder(self.spec, trust_remote_code, True)
            self.processor = load_pretrained(AutoProcessor, self.spec, revision, "judge processor",
                                             trust_remote_code=trust_remote_code)
            self.model = load_pretrained(AutoModelForImageTextToText, self.spec, revision, "judge model",
                                         use_safetensors=True, trust_remote_code=trust_remote_code)
        except EncoderError as exc:
            raise JudgeError(f"the judge {self.spec!r} cannot be loaded as a vision-language model: {exc}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        if getattr(self.processor, "chat_template", None) is None:
            raise JudgeError(f"the judge {self.spec!r} has no chat template in its processor; a vision-language judge "
                             "needs one that lays out text and image turns (save it with the processor)")
        self.model.eval().to(self.device)
        self.revision = model_revision(self.model, self.spec, revision)

    def __repr__(self) -> str:
        return f"LocalVLMJudge({self.spec!r}, revision={self.revision!r}, device={self.device!r})"

    def identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.spec, "revision": self.revision, "endpoint": None,
                "temperature": 0.0, "decoding": f"greedy, at most {MAX_NEW_TOKENS} new tokens",
                "model_class": type(self.model).__name__}

    def ask(self, request: JudgeRequest, budget: CallBudget) -> str:
        import torch
        from PIL import Image

        budget.take()
        images = [Image.open(io.BytesIO(data)).convert("RGB") for data in (request.reference, request.generated)]
        conversation: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": request.user}]}]
        if request.assistant is not None:
            conversation.append({"role": "assistant", "content": [{"type": "text", "text": request.assistant}]})
        conversation.append({"role": "user", "content": [{"type": "image"}, {"type": "image"}]})
        try:
            text = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
            inputs = self.processor(text=text, images=images, return_tensors="pt").to(self.device)
        except (ValueError, TypeError, KeyError) as exc:
            raise JudgeError(f"the judge {self.spec!r} cannot take this conversation (two images after a text turn): "
                             f"{exc}") from None
        with torch.inference_mode():
            out = self.model.generate(**inputs, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
        new = out[0, inputs["input_ids"].shape[1]:]
        return str(self.processor.decode(new, skip_special_tokens=True))
