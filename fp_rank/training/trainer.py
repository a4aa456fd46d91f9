"""Training a specialist encoder: the reference recipe, checkpoints every epoch, resume after a kill.

The recipe (the authors' car classifier): a backbone, its pooled feature as the embedding, a head
``Linear(d, 128) -> ReLU -> Linear(128, classes)``, cross-entropy, Adam (lr 1e-5), batch 64, 100
epochs, inputs resized to 480 x 480 with ImageNet mean/std. The backbone is torchvision's
EfficientNetV2-S (ImageNet weights when torchvision has them on this machine) or any transformers
image backbone by Hub id or folder. Training is deterministic for a seed: the head's initial
weights and dropout come from the seeded torch generator, the order of each epoch from
``default_rng([seed, epoch])``. After every epoch the model, the optimiser state, the generator
state and the history are checkpointed (safetensors and JSON, written whole); a run started
again with the same settings continues from the last complete epoch and ends with the weights
an uninterrupted run gives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fp_rank.errors import InputError
from fp_rank.training import TORCHVISION_BACKBONE
from fp_rank.training.data import TrainingData

logger = logging.getLogger(__name__)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
HEAD_HIDDEN = 128
#: The largest input side accepted (the recipe's is 480).
MAX_IMAGE_SIZE = 2048
CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Recipe:
    """The training settings (all recorded in the model card and the checkpoint)."""

    backbone: str = TORCHVISION_BACKBONE
    epochs: int = 100
    batch_size: int = 64
    image_size: int = 480
    lr: float = 1e-5
    seed: int = 0

    def check(self) -> None:
        for name in ("epochs", "batch_size", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.image_size > MAX_IMAGE_SIZE:
            raise InputError(f"image_size must be at most {MAX_IMAGE_SIZE} (the recipe uses 480), got {self.image_size}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            raise InputError(f"lr must be a learning rate in (0, 1), got {self.lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")


class Network(torch.nn.Module):
    """Backbone + classification head; :meth:`embed` is the encoder's feature."""

    def __init__(self, backbone: Any, embed: Any, dim: int, classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self._embed = embed
        self.head = torch.nn.Sequential(torch.nn.Linear(dim, HEAD_HIDDEN), torch.nn.ReLU(),
                                        torch.nn.Linear(HEAD_HIDDEN, classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self._embed(self.backbone, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def build_network(recipe: Recipe, classes: int) -> tuple[Network, Any, dict[str, Any]]:
    """The network, its preprocessing (an image processor) and how the backbone is described."""
    from transformers import ViTImageProcessor

    processor = ViTImageProcessor(do_resize=True, size={"height": recipe.image_size, "width": recipe.image_size},
                                  resample=2, do_rescale=True, do_normalize=True, image_mean=IMAGENET_MEAN,
                                  image_std=IMAGENET_STD)
    if recipe.backbone == TORCHVISION_BACKBONE:
        backbone, embed, described = _torchvision_backbone()
    else:
        backbone, embed, described = _transformers_backbone(recipe.backbone)
    with torch.no_grad():
        dim = int(embed(backbone.eval(), torch.zeros(1, 3, recipe.image_size, recipe.image_size)).shape[1])
    torch.manual_seed(recipe.seed)  # the head's initial weights
    return Network(backbone, embed, dim, classes), processor, {**described, "embedding_dim": dim}


def _torchvision_backbone() -> tuple[Any, Any, dict[str, Any]]:
    try:
        import torchvision
    except Exception as exc:  # absent, or a build that does not import beside this torch
        raise InputError(
            f"the reference recipe's EfficientNetV2-S comes from torchvision, which does not import here ({type(exc).__name__}); "
            "install the torchvision that matches your torch, or pass --backbone a transformers image backbone "
            "(a Hub id or folder, e.g. google/efficientnet-b0 or facebook/dinov2-small)"
        ) from None
    weights = torchvision.models.EfficientNet_V2_S_Weights.IMAGENET1K_V1
    try:
        model = torchvision.models.efficientnet_v2_s(weights=weights)
        init = "ImageNet (torchvision IMAGENET1K_V1)"
    except Exception:  # weights not downloadable here: say so, train from scratch
        logger.warning("torchvision's ImageNet weights of EfficientNetV2-S are not available here; training from "
                       "random initialisation (recorded in the model card)")
        model = torchvision.models.efficientnet_v2_s(weights=None)
        init = "random (ImageNet weights not available)"

    def embed(m: Any, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(m.avgpool(m.features(x)), 1)

    return model, embed, {"kind": "torchvision", "name": TORCHVISION_BACKBONE, "initialisation": init,
                          "pooling": "features -> adaptive average pool (1280-d)"}


def _transformers_backbone(spec: str) -> tuple[Any, Any, dict[str, Any]]:
    from transformers import AutoModel

    from fp_rank.encoding.backends._pretrained import load_pretrained, model_revision
    from fp_rank.encoding.backends.transformers import pooled, pooling_rule
    from fp_rank.errors import EncoderError
    from fp_rank.options import split_revision

    target, revision = split_revision(spec)
    try:
        model = load_pretrained(AutoModel, target, revision, "backbone", use_safetensors=True)
        rule = pooling_rule(model, None, target)
    except EncoderError as exc:
        raise InputError(f"--backbone {spec}: {exc}") from None
    model.config.fp_rank_pooling = rule

    def embed(m: Any, x: torch.Tensor) -> torch.Tensor:
        return pooled(m, x, rule, target)

    return model, embed, {"kind": "transformers", "name": target, "revision": model_revision(model, target, revision),
                          "model_type": getattr(model.config, "model_type", None), "pooling": rule,
                          "initialisation": "the checkpoint's weights"}


def pixels(processor: Any, images: list[bytes]) -> torch.Tensor:
    from fp_rank.images.decode import to_rgb

    return processor(images=[to_rgb(b, name="training image") for b in images], return_tensors="pt")["pixel_values"]


def settings_digest(recipe: Recipe, data: TrainingData) -> str:
    """What a checkpoint must share with a run to be resumed by it: the recipe (but the number of epochs, so a
    finished run can be extended), the classes, both splits and what was excluded."""
    settings = {k: v for k, v in asdict(recipe).items() if k != "epochs"}
    digest = hashlib.sha256(json.dumps([settings, data.classes, data.excluded], sort_keys=True, default=str).encode())
    for split in (data.train, data.held_out):
        digest.update(b"|split|")
        for image, label in zip(split.images, split.labels.tolist()):
            digest.update(hashlib.sha256(image).digest() + int(label).to_bytes(8, "little"))
    return digest.hexdigest()


def save_checkpoint(folder: Path, net: Network, optimizer: Any, state: dict[str, Any]) -> None:
    """Model, optimiser and generator state after a complete epoch, replacing the last checkpoint whole."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
    opt = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.detach().cpu().contiguous() for i, s in opt["state"].items() for k, v in s.items()}
    tensors["torch_rng"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "param_groups": opt["param_groups"]}, indent=1))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, net: Network, optimizer: Any) -> dict[str, Any]:
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state = json.loads((folder / "state.json").read_text())
    per: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key != "torch_rng":
            index, name = key.split(".", 1)
            per.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per, "param_groups": state.pop("param_groups")})
    torch.set_rng_state(tensors["torch_rng"])
    return state


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def accuracy(net: Network, processor: Any, split: Any, batch_size: int, device: str) -> float | None:
    if not len(split):
        return None
    net.eval()
    right = 0
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x = pixels(processor, split.images[start:start + batch_size]).to(device)
            right += int((net(x).argmax(dim=1).cpu().numpy() == split.labels[start:start + batch_size]).sum())
    return right / len(split)


def environment() -> dict[str, Any]:
    return {"torch": torch.__version__, "deterministic_note": "CPU runs repeat bit for bit for a seed; GPU kernels may not",
            "cuda": torch.cuda.is_available()}
