"""Measure fp-rank against the reference code's preprocessing and ranking on the same inputs.

Numbers for docs/reference_parity.md. Nothing is downloaded: the models are the tiny random ones
of the test suite, saved with the real checkpoints' preprocessor configurations, and the images
are synthetic photos in many sizes, modes and formats (``tests/photo_fixtures.py``).

What is compared, per point of the doc:

1. DINOv2 / CLIP model inputs: fp-rank's default and ``preprocessing="fast"`` against the
   reference call, ``processor(images=np.array(Image.open(f).convert("RGB")))``.
2. MiewID model input: fp-rank's default (OpenCV), ``preprocessing="fast"`` (NumPy rewrite of
   OpenCV's arithmetic) and fp-rank 0.1's Pillow resize against albumentations
   ``Resize(440, 440)`` + ``Normalize()`` (the library itself when importable, else its two steps
   written out with ``cv2``).
3. float32 vs float64 ranking: the reference ranks float32 cosine distances, fp-rank float64.
4. End to end: ``fp_rank.evaluate`` against a reference-style loop (processor, model, CLS /
   projected features, L2 normalisation, float32 cosine distance, argsort, textbook AP, mean per
   group), cell by cell.

The authors' code is never part of this repository. ``--extra-path`` puts a scratch folder first on
``sys.path`` (e.g. one holding albumentations); ``--reference-dir`` names a checkout of the
authors' ``evaluation/`` folder whose ``mean_average_precision`` and ``cosine_distance`` are then
used for point 4 if they import (they need torchvision, so often they do not; the output says).

Usage::

    python benchmarks/reference_parity.py [--out parity.json] [--extra-path DIR] [--reference-dir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import _common  # noqa: E402,F401  (offline environment variables)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _reference_rgb(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def _stats(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    return {"max_abs": float(diff.max()), "share_differing": float((diff > 0).mean())}


# ----------------------------------------------------------------------------- 1. DINOv2 / CLIP


def processor_inputs(folders: dict[str, Path], cases: list[Any]) -> dict[str, Any]:
    import torch
    from transformers import AutoImageProcessor

    from fp_rank.encoding import load_encoder
    from fp_rank.images.decode import to_rgb

    out: dict[str, Any] = {}
    for name, folder in folders.items():
        processor = AutoImageProcessor.from_pretrained(folder)
        encoders = {mode: load_encoder(str(folder), preprocessing=mode) for mode in ("processor", "fast")}
        rows = []
        for case in cases:
            reference = processor(images=_reference_rgb(case.data), return_tensors="pt")["pixel_values"]
            rgb = to_rgb(case.data, name=case.name)
            same_rgb = np.array_equal(np.asarray(rgb), _reference_rgb(case.data))
            row: dict[str, Any] = {"image": case.name, "same_decoded_rgb": same_rgb,
                                   "reference_array_height": int(_reference_rgb(case.data).shape[0])}
            default = encoders["processor"].preprocess([rgb])
            fast = encoders["fast"].preprocess([rgb])
            row["default_vs_reference"] = {"equal": bool(torch.equal(default, reference)),
                                           **_stats(default.numpy(), reference.numpy())}
            # the processor itself on fp-rank's decoded image (PIL): separates the decode rule and
            # transformers' channel guess on NumPy input from the preprocessing
            on_rgb = processor(images=rgb, return_tensors="pt")["pixel_values"]
            row["default_equals_processor_on_decoded_rgb"] = bool(torch.equal(default, on_rgb))
            row["fast_vs_default"] = {"equal": bool(torch.equal(fast, default)), **_stats(fast.numpy(), default.numpy())}
            rows.append(row)
        out[name] = {
            "processor_config": {k: v for k, v in processor.to_dict().items() if k in ("size", "crop_size", "resample", "image_mean", "image_std")},
            "n_images": len(rows),
            "default_equal_reference": sum(r["default_vs_reference"]["equal"] for r in rows),
            "default_not_equal_reference": [
                {"image": r["image"], "same_decoded_rgb": r["same_decoded_rgb"],
                 "reference_array_height": r["reference_array_height"], "max_abs": r["default_vs_reference"]["max_abs"]}
                for r in rows if not r["default_vs_reference"]["equal"]
            ],
            "default_equals_processor_on_decoded_rgb": sum(r["default_equals_processor_on_decoded_rgb"] for r in rows),
            "fast_equal_default": sum(r["fast_vs_default"]["equal"] for r in rows),
            "fast_vs_default_max_abs": max(r["fast_vs_default"]["max_abs"] for r in rows),
            "fast_vs_default_share_differing_mean": float(np.mean([r["fast_vs_default"]["share_differing"] for r in rows])),
            "fast_vs_default_share_differing_max": max(r["fast_vs_default"]["share_differing"] for r in rows),
            "rows": rows,
        }
    return out


# ----------------------------------------------------------------------------- 2. MiewID


MIEWID_SIZES = [(1000, 872), (872, 1000), (3000, 4000), (1500, 2000), (880, 880), (441, 440), (440, 440),
                (300, 200), (97, 103), (13, 600), (2, 3), (1, 1), (224, 224), (2000, 20)]


def miewid_inputs(cases: list[Any]) -> dict[str, Any]:
    from PIL import Image

    from fp_rank.encoding.backends._resize import (
        normalise_uint8,
        opencv_linear,
        opencv_linear_emulated,
        resize_to_tensor,
        square_resize_normalise,
    )
    from tests.photo_fixtures import photo

    try:
        import albumentations

        transform = albumentations.Compose([albumentations.Resize(440, 440), albumentations.Normalize()])
        reference_name = f"albumentations {albumentations.__version__}"

        def reference(arr: np.ndarray) -> np.ndarray:
            return transform(image=arr)["image"].transpose(2, 0, 1)
    except ImportError:
        reference_name = "cv2.resize INTER_LINEAR + (x - 255 mean) / (255 std), written out"

        def reference(arr: np.ndarray) -> np.ndarray:
            resized = opencv_linear(arr, 440)
            return normalise_uint8(resized[None], IMAGENET_MEAN, IMAGENET_STD)[0].numpy()

    import cv2

    arrays = [(f"{h}x{w}", photo(h, w, seed=h * 7 + w)) for h, w in MIEWID_SIZES]
    arrays += [(c.name, _reference_rgb(c.data)) for c in cases]
    rows = []
    for name, arr in arrays:
        ref = reference(arr)
        ref_levels = opencv_linear(arr, 440).astype(np.int16)
        img = Image.fromarray(arr)
        default = square_resize_normalise([img], 440, IMAGENET_MEAN, IMAGENET_STD, "processor")[0].numpy()
        fast = square_resize_normalise([img], 440, IMAGENET_MEAN, IMAGENET_STD, "fast")[0].numpy()
        old = resize_to_tensor([img], 440, IMAGENET_MEAN, IMAGENET_STD)[0].numpy()
        old_levels = np.asarray(img.resize((440, 440), Image.Resampling.BILINEAR), dtype=np.int16)
        fast_levels = opencv_linear_emulated(arr, 440).astype(np.int16)
        rows.append({
            "image": name, "shape": list(arr.shape[:2]),
            "default_equal": bool(np.array_equal(default, ref)),
            "fast_equal": bool(np.array_equal(fast, ref)),
            "fast_levels": _stats(fast_levels, ref_levels),
            "pillow_0_1": _stats(old, ref),
            "pillow_0_1_levels": _stats(old_levels, ref_levels),
        })
    return {
        "reference": reference_name,
        "opencv": cv2.__version__,
        "n_images": len(rows),
        "default_equal": sum(r["default_equal"] for r in rows),
        "fast_equal": sum(r["fast_equal"] for r in rows),
        "fast_max_levels": max(r["fast_levels"]["max_abs"] for r in rows),
        "pillow_0_1_max_levels": max(r["pillow_0_1_levels"]["max_abs"] for r in rows),
        "pillow_0_1_max_normalised": max(r["pillow_0_1"]["max_abs"] for r in rows),
        "pillow_0_1_share_differing_mean": float(np.mean([r["pillow_0_1_levels"]["share_differing"] for r in rows])),
        "pillow_0_1_share_differing_1000x872": rows[0]["pillow_0_1_levels"]["share_differing"],
        "pillow_0_1_max_levels_1000x872": rows[0]["pillow_0_1_levels"]["max_abs"],
        "rows": rows,
    }


# ----------------------------------------------------------------------------- 3 + 4. end to end


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _textbook_ap(dist: np.ndarray, relevant: np.ndarray) -> float:
    order = np.argsort(dist)
    hits = np.cumsum(relevant[order])
    ranks = np.arange(1, len(order) + 1)
    return float(np.sum((hits / ranks) * relevant[order]) / relevant.sum())


def _reference_functions(reference_dir: str | None) -> tuple[Any, Any, str]:
    """(mean_average_precision, cosine_distance, provenance): the authors' if they import."""
    import torch

    def cosine_distance(a: Any, b: Any) -> Any:
        a, b = torch.nn.functional.normalize(a, p=2, dim=1), torch.nn.functional.normalize(b, p=2, dim=1)
        return 1 - torch.mm(a, b.t())

    def mean_average_precision(dist: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray) -> float:
        return float(np.mean([_textbook_ap(dist[i], g_ids == q_ids[i]) for i in range(len(q_ids))]))

    if reference_dir:
        sys.path.insert(0, str(reference_dir))
        try:
            import embeds_extractors  # the authors' module, from the scratch folder

            return embeds_extractors.mean_average_precision, embeds_extractors.cosine_distance, "authors' functions"
        except Exception as exc:  # noqa: BLE001  (report why, fall back to the textbook loop)
            return mean_average_precision, cosine_distance, f"textbook loop (authors' module did not import: {exc!r})"
    return mean_average_precision, cosine_distance, "textbook loop"


def end_to_end(folders: dict[str, Path], reference_dir: str | None, work: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoImageProcessor, AutoModel, CLIPModel, CLIPProcessor

    import fp_rank
    from tests.gallery_fixtures import write_gallery
    from tests.photo_fixtures import photo

    rng = np.random.default_rng(11)
    groups, idents, per_id = ("g1", "g2", "g3"), ("a", "b", "c", "d", "e"), 6
    splits: dict[str, list[dict]] = {"gallery": [], "reference": []}
    seed = 0
    for group in groups:
        for ident in idents:
            for split, count in (("gallery", per_id), ("reference", 2)):
                for _ in range(count):
                    seed += 1
                    h, w = (int(v) for v in rng.integers(150, 600, 2))
                    splits[split].append({"image": _png(photo(h, w, seed)), "identity": f"{group}-{ident}", "group": group})
    gallery = fp_rank.load_gallery(str(write_gallery(work / "gallery", splits)), progress=False)
    methods = ("m1", "m2", "m3")
    labels = [f"{g}-{i}" for g in groups for i in idents] * (2 * len(methods))
    method_of = [methods[k // (len(labels) // len(methods))] for k in range(len(labels))]
    images = [_png(photo(int(rng.integers(200, 700)), int(rng.integers(200, 700)), 5000 + k)) for k in range(len(labels))]
    t0 = time.perf_counter()
    report = fp_rank.evaluate(images, labels, methods=list(method_of), gallery=gallery,
                              encoder=[str(f) for f in folders.values()], ceilings=False, cache=False,
                              leaks="off", progress=False)
    seconds_fp_rank = time.perf_counter() - t0
    mean_ap, cosine_distance, provenance = _reference_functions(reference_dir)
    g_bytes = [gallery.gallery.images[i]["bytes"] for i in range(len(gallery.gallery))]
    g_ids, g_groups = np.asarray(gallery.gallery.identities), np.asarray(gallery.gallery.groups)
    cells, precision = [], {"queries": 0, "queries_with_other_order": 0, "max_ap_change": 0.0}
    for name, folder in folders.items():
        clip = name.startswith("clip")
        processor = CLIPProcessor.from_pretrained(folder) if clip else AutoImageProcessor.from_pretrained(folder)
        model = (CLIPModel if clip else AutoModel).from_pretrained(folder).eval()

        def embed(items: list[bytes]) -> Any:
            out = []
            with torch.no_grad():
                for data in items:
                    pixels = processor(images=_reference_rgb(data), return_tensors="pt")["pixel_values"]
                    if clip:
                        feats = model.get_image_features(pixel_values=pixels)
                        out.append(feats if isinstance(feats, torch.Tensor) else feats.pooler_output)
                    else:
                        out.append(model(pixel_values=pixels).last_hidden_state[:, 0])
            return torch.cat(out)

        q, g = embed(images), embed(g_bytes)
        enc_name = str(folder)
        rows = [r for r in report.queries if r["encoder"] == enc_name]
        for method in methods:
            result = report.result(method=method, encoder=enc_name)
            for group in groups:
                qi = [k for k in range(len(labels)) if method_of[k] == method and labels[k].startswith(group)]
                gi = np.flatnonzero(g_groups == group)
                dist32 = cosine_distance(q[qi], g[gi]).numpy()
                tied = any(len(np.unique(d)) < len(d) for d in dist32) or any(
                    r["tied"] for r in rows if r["method"] == method and r["group"] == group
                )
                ref = float(mean_ap(dist32, np.asarray([labels[k] for k in qi]), g_ids[gi]))
                ours = float(result.map_per_group[group])
                cells.append({"encoder": name, "method": method, "group": group, "tied": bool(tied),
                              "fp_rank": ours, "reference": ref, "abs_diff": abs(ours - ref)})
                # precision: the same float32 embeddings ranked in float64
                qn = torch.nn.functional.normalize(q[qi], dim=1).double().numpy()
                gn = torch.nn.functional.normalize(g[gi], dim=1).double().numpy()
                dist64 = 1 - qn @ gn.T
                for k in range(len(qi)):
                    relevant = g_ids[gi] == labels[qi[k]]
                    precision["queries"] += 1
                    if not np.array_equal(np.argsort(dist32[k], kind="stable"), np.argsort(dist64[k], kind="stable")):
                        precision["queries_with_other_order"] += 1
                        change = abs(_textbook_ap(dist32[k], relevant) - _textbook_ap(dist64[k], relevant))
                        precision["max_ap_change"] = max(precision["max_ap_change"], change)
    untied = [c for c in cells if not c["tied"]]
    return {
        "reference_functions": provenance,
        "gallery_images": len(g_bytes), "queries_per_encoder": len(images), "cells": len(cells),
        "untied_cells": len(untied),
        "untied_max_abs_diff": max((c["abs_diff"] for c in untied), default=None),
        "untied_cells_differing_over_1e-12": sum(c["abs_diff"] > 1e-12 for c in untied),
        "tied_cells": [c for c in cells if c["tied"]],
        "precision_float32_vs_float64": precision,
        "seconds_fp_rank_evaluate": round(seconds_fp_rank, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the measurements to this JSON file")
    parser.add_argument("--extra-path", action="append", default=[], help="folder put first on sys.path (scratch libraries)")
    parser.add_argument("--reference-dir", help="scratch checkout of the authors' evaluation/ folder")
    args = parser.parse_args(argv)
    for path in reversed(args.extra_path):
        sys.path.insert(0, path)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from tests.model_fixtures import make_tiny_clip_224, make_tiny_dinov2_224
    from tests.photo_fixtures import photo_cases

    cases = photo_cases()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = {"dinov2-base config": make_tiny_dinov2_224(work / "dinov2"),
                   "clip-vit-b32 config": make_tiny_clip_224(work / "clip")}
        results = {
            "processor_inputs": processor_inputs(folders, cases),
            "miewid_inputs": miewid_inputs(cases),
            "end_to_end": end_to_end(folders, args.reference_dir, work),
        }
    text = json.dumps(results, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    summary = {k: ({kk: vv for kk, vv in v.items() if kk != "rows"} if isinstance(v, dict) else v) for k, v in results.items()}
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
