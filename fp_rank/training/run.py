"""``train_encoder``: train on labelled images, checkpoint every epoch, write the encoder folder.

:func:`train_encoder` trains a backbone with a classification head on labelled images (see
:mod:`fp_rank.training.data` for the sources and the gallery exclusion, :mod:`fp_rank.training.trainer`
for the recipe and the checkpoints) and writes a folder that ``fp_rank.load_encoder(FOLDER)`` and
``--encoder FOLDER`` load like any backbone: the backbone's weights (safetensors) and config, the
image processor of the recipe (resize to S x S, ImageNet mean/std), the head, the training record
and a model card.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fp_rank.errors import InputError
from fp_rank.training.data import TrainingData, load_training_data
from fp_rank.training import TORCHVISION_BACKBONE
from fp_rank.training.trainer import (
    CHECKPOINT,
    Network,
    Recipe,
    accuracy,
    build_network,
    environment,
    epoch_order,
    load_checkpoint,
    pixels,
    save_checkpoint,
    settings_digest,
)

logger = logging.getLogger(__name__)

@dataclass
class Trained:
    """What :func:`train_encoder` made: the record written beside the weights, and the trained network
    with its preprocessing (on the CPU, in eval mode)."""

    record: dict[str, Any]
    network: Network
    processor: Any

    def embed(self, images: list[bytes]) -> Any:
        """The trained feature of encoded images (what the saved encoder returns, before L2 normalisation)."""
        with torch.no_grad():
            return self.network.embed(pixels(self.processor, images)).numpy()


#: The file naming a trained encoder's backbone kind (read by :func:`fp_rank.load_encoder`).
ENCODER_FILE = "fp_rank_encoder.json"
TRAINING_FILE = "fp_rank_training.json"


def train_encoder(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    backbone: str = TORCHVISION_BACKBONE,
    epochs: int = 100,
    batch_size: int = 64,
    image_size: int = 480,
    lr: float = 1e-5,
    seed: int = 0,
    exclude_gallery: Any = None,
    device: str | None = None,
    progress: bool = True,
) -> Trained:
    """Train an encoder on ``data`` and write it to ``out`` (see the module docstring).

    A folder holding a checkpoint of the same recipe and data is resumed from its last complete
    epoch; any other existing folder is refused.

    Returns:
        :class:`Trained`: the training record (also ``out/fp_rank_training.json``: recipe, data,
        per-epoch loss and held-out accuracy, exclusions) and the trained network.

    Raises:
        InputError: bad settings, unreadable data, an ``out`` that is not this training's folder.
    """
    recipe = Recipe(backbone, epochs, batch_size, image_size, lr, seed)
    recipe.check()
    folder = Path(out)
    _check_out(folder)
    training = load_training_data(data, seed=seed, exclude_gallery=exclude_gallery, progress=progress)
    from fp_rank import distributed
    from fp_rank.encoding.options import _resolve_device

    ctx, rank_device = distributed.setup(device)  # under torchrun / accelerate launch: one rank per device
    device = rank_device or _resolve_device(device)
    net, processor, described = build_network(recipe, len(training.classes))
    net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    model: Any = net
    if ctx.active:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[torch.device(device).index] if device.startswith("cuda") else None,
                                        find_unused_parameters=True)  # e.g. a ViT's mask token takes no gradient
    digest = settings_digest(recipe, training)
    state = {"epoch": 0, "history": [], "settings_digest": digest}
    checkpoint = folder / CHECKPOINT
    if (checkpoint / "state.json").exists():
        saved = json.loads((checkpoint / "state.json").read_text())
        if saved.get("settings_digest") != digest:
            raise InputError(f"{str(folder)!r} holds a checkpoint of another recipe or other data; choose another --out "
                             "or remove that folder")
        state = load_checkpoint(checkpoint, net, optimizer)
        logger.info("resuming %s after epoch %d", folder, state["epoch"])
    for epoch in range(state["epoch"] + 1, epochs + 1):
        loss = _epoch(model, optimizer, processor, training, recipe, epoch, device, progress and ctx.is_main, ctx)
        held = accuracy(net, processor, training.held_out, batch_size, device) if ctx.is_main else None
        state["history"].append({"epoch": epoch, "loss": loss, "held_out_accuracy": held})
        state["epoch"] = epoch
        if ctx.is_main:
            save_checkpoint(checkpoint, net, optimizer, state)
        _barrier(ctx)
    record = {"recipe": recipe.__dict__, "backbone": described, "data": training.describe(),
              "classes": training.classes, "history": state["history"],
              "environment": {**environment(), "processes": ctx.world_size}}
    if ctx.is_main:
        _write(folder, net, processor, described, record, training)
    _barrier(ctx)
    return Trained(record, net, processor)


def _check_out(folder: Path) -> None:
    if not folder.exists():
        return
    if not folder.is_dir():
        raise InputError(f"--out {str(folder)!r} is a file; give a folder for the trained encoder")
    if any(folder.iterdir()) and not (folder / CHECKPOINT / "state.json").exists():
        raise InputError(f"--out {str(folder)!r} exists and holds no training checkpoint; give a new folder")


def _epoch(net: Any, optimizer: Any, processor: Any, data: TrainingData, recipe: Recipe, epoch: int, device: str,
           progress: bool, ctx: Any) -> float:
    """One epoch; under several processes each takes its share of every batch (``batch[rank::world]``) and the
    gradients are averaged, so a batch is the recipe's batch whatever the number of processes (a last batch
    smaller than the number of processes is left out, so that every process steps alike)."""
    from fp_rank.progress import progress_bar

    net.train()
    order = epoch_order(recipe.seed, epoch, len(data.train))
    bar = progress_bar(len(order), f"epoch {epoch}/{recipe.epochs}", progress)
    total, seen = 0.0, 0
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))
    for start in range(0, len(order), recipe.batch_size):
        batch = order[start:start + recipe.batch_size]
        whole = len(batch)  # the loss is the mean over the whole batch, whichever process holds which part
        if ctx.active:
            if len(batch) < ctx.world_size:
                break
            batch = batch[ctx.rank::ctx.world_size]
        x = pixels(processor, [data.train.images[i] for i in batch]).to(device)
        y = torch.as_tensor(data.train.labels[batch], device=device)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            summed = torch.nn.functional.cross_entropy(net(x).float(), y, reduction="sum")
        loss = summed * ctx.world_size / whole  # the processes' gradients are averaged: together, the batch mean
        loss.backward()
        optimizer.step()
        total += float(summed.detach())
        seen += len(batch)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    if ctx.active:  # the epoch's mean loss over every process's images
        import torch.distributed as dist

        sums = torch.tensor([total, float(seen)], dtype=torch.float64)
        dist.all_reduce(sums)
        total, seen = float(sums[0]), int(sums[1])
    return total / seen


def _write(folder: Path, net: Network, processor: Any, described: dict[str, Any], record: dict[str, Any],
           data: TrainingData) -> None:
    from safetensors.torch import save_file

    net.eval().cpu()
    folder.mkdir(parents=True, exist_ok=True)
    if described["kind"] == "transformers":
        net.backbone.save_pretrained(folder, safe_serialization=True)
    else:
        save_file({k: v.contiguous() for k, v in net.backbone.state_dict().items()}, str(folder / "model.safetensors"))
    processor.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in net.head.state_dict().items()}, str(folder / "head.safetensors"))
    (folder / ENCODER_FILE).write_text(json.dumps({"kind": described["kind"], "backbone": described["name"],
                                                   "embedding_dim": described["embedding_dim"],
                                                   "pooling": described["pooling"]}, indent=1) + "\n")
    (folder / TRAINING_FILE).write_text(json.dumps(record, indent=1) + "\n")
    (folder / "README.md").write_text(_card(record), encoding="utf-8")



def _card(record: dict[str, Any]) -> str:
    recipe, data, history = record["recipe"], record["data"], record["history"]
    last = history[-1] if history else {}
    excluded = data.get("excluded") or {}
    lines = [
        "---", "library_name: fp-rank", "tags:", "- fp-rank", "- image-feature-extraction", "---", "",
        f"# Specialist encoder trained with fp-rank ({record['backbone']['name']})", "",
        "An encoder for Finer-Personalization Rank, trained with `fp-rank train-encoder` on the authors' "
        "car-classifier recipe. Load it with `fp_rank.load_encoder(FOLDER)` or `fp-rank evaluate --encoder FOLDER`; "
        "its embedding is the backbone's pooled feature "
        f"({record['backbone']['pooling']}, {record['backbone']['embedding_dim']}-d).", "",
        "## Recipe", "",
        f"- backbone: {record['backbone']['name']} ({record['backbone']['kind']}), initialisation: "
        f"{record['backbone']['initialisation']}",
        f"- head: Linear({record['backbone']['embedding_dim']}, 128) -> ReLU -> Linear(128, {data['classes']}), "
        "cross-entropy, Adam",
        f"- epochs {recipe['epochs']}, batch {recipe['batch_size']}, lr {recipe['lr']}, inputs "
        f"{recipe['image_size']} x {recipe['image_size']} with ImageNet mean/std, seed {recipe['seed']}", "",
        "## Data", "",
        f"- source: `{data['source']}`; {data['train_images']} training and {data['held_out_images']} held-out "
        f"images of {data['classes']} classes; held out: {data['held_out_rule']}",
        (f"- benchmark images left out: gallery `{excluded['gallery']}` (fingerprint "
         f"{excluded['gallery_fingerprint'][:12]}), {excluded['train_images_removed']} training and "
         f"{excluded['held_out_images_removed']} held-out images removed by sha256"
         if excluded else "- no benchmark gallery was excluded (pass --exclude-gallery to leave its images out)"), "",
        "## Results", "",
        f"- final training loss {last.get('loss', float('nan')):.4f}; held-out accuracy "
        + (f"{last['held_out_accuracy']:.4f}" if last.get("held_out_accuracy") is not None else "n/a (no held-out images)"),
        "", "| epoch | loss | held-out accuracy |", "|--:|--:|--:|",
        *(f"| {h['epoch']} | {h['loss']:.4f} | " + (f"{h['held_out_accuracy']:.4f}" if h["held_out_accuracy"] is not None
                                                     else "-") + " |" for h in history),
        "",
    ]
    return "\n".join(lines)


__all__ = ["ENCODER_FILE", "Trained", "train_encoder"]


def _barrier(ctx: Any) -> None:
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()
