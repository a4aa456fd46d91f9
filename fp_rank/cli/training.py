"""``fp-rank train-encoder``: a specialist encoder trained on the authors' recipe."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from fp_rank.training import TORCHVISION_BACKBONE

    train = sub.add_parser("train-encoder", help="train a specialist encoder (the authors' EfficientNetV2-S car recipe, "
                           "or a transformers backbone) for --encoder FOLDER")
    train.add_argument("--data", required=True, help="labelled images: a Hub dataset id (e.g. Donghyun99/Stanford-Cars), "
                       "a datasets folder, or an ImageFolder (DIR/<class>/*.jpg)")
    train.add_argument("--out", required=True, help="folder for the encoder (a folder with this training's checkpoint "
                       "resumes it)")
    train.add_argument("--backbone", default=TORCHVISION_BACKBONE, help=f"{TORCHVISION_BACKBONE} (torchvision, the "
                       "reference) or a transformers image backbone: Hub id or folder, ID@REVISION pins it")
    train.add_argument("--epochs", type=int, default=100, help="epochs (default 100, the reference)")
    train.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    train.add_argument("--image-size", type=int, default=480, help="inputs resized to S x S (default 480)")
    train.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (default 1e-5)")
    train.add_argument("--seed", type=int, default=0, help="seed of the head's initialisation, dropout and data order")
    train.add_argument("--exclude-gallery", default=None, metavar="GALLERY", help="leave out every image of this "
                       "benchmark gallery (folder or Hub id; gallery, reference and holdout splits), by content hash")
    train.add_argument("--device", default=None, help="torch device (default: CUDA when available)")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train.set_defaults(func=train_encoder)


def train_encoder(args: argparse.Namespace) -> int:
    from fp_rank.training import train_encoder as train

    record = train(args.data, args.out, backbone=args.backbone, epochs=args.epochs, batch_size=args.batch_size,
                   image_size=args.image_size, lr=args.lr, seed=args.seed, exclude_gallery=args.exclude_gallery,
                   device=args.device, progress=not args.no_progress).record
    data, last = record["data"], record["history"][-1] if record["history"] else {}
    excluded = data.get("excluded") or {}
    print(f"trained {record['backbone']['name']} on {data['train_images']} images of {data['classes']} classes for "
          f"{record['recipe']['epochs']} epochs: loss {last.get('loss', float('nan')):.4f}, held-out accuracy "
          + (f"{last['held_out_accuracy']:.4f}" if last.get("held_out_accuracy") is not None else "n/a")
          + f" ({data['held_out_images']} images, {data['held_out_rule']})")
    if excluded:
        print(f"left out {excluded['train_images_removed']} training and {excluded['held_out_images_removed']} held-out "
              f"images of gallery {excluded['gallery']}")
    print(f"wrote {args.out}; score with: fp-rank evaluate ... --encoder {args.out}")
    return 0
