"""Measure fp-rank's switches that reproduce the reference code, on the same inputs, offline.

Each section runs fp-rank twice on the synthetic demo gallery (or a tiny hand-made one), once with
fp-rank's default and once with the reference's behaviour, and prints the difference:

1. background removal (a callable matting backend; carvekit itself needs weights we cannot fetch);
2. pairwise baseline with conditioning images vs the mean over the identity's references;
3. real-image baseline (reference split as queries) vs the holdout ceiling;
4. ``on_missing="zero"`` vs ``"skip"``;
5. CLIP-T per image vs its definition (CLIPProcessor text+image, cosine of normalised features) on a
   tiny random CLIP.

Run: ``python benchmarks/reference_parity_more.py [--json out.json]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fp_rank  # noqa: E402
from fp_rank.demo import gallery as demo_gallery  # noqa: E402
from fp_rank.demo.synthetic import generated_records  # noqa: E402
from fp_rank.encoding.background import load_matting  # noqa: E402

ENCODER = "fp-rank-demo"


def _centre_matte(image: Image.Image) -> Image.Image:
    """A stand-in salient-object matte: an ellipse over the central 70% of the image."""
    from PIL import ImageDraw

    mask = Image.new("L", image.size, 0)
    w, h = image.size
    ImageDraw.Draw(mask).ellipse((0.15 * w, 0.15 * h, 0.85 * w, 0.85 * h), fill=255)
    return mask


def _run(records: list[dict[str, Any]], gallery: Path, **kwargs: Any) -> Any:
    return fp_rank.evaluate(
        [r["image"] for r in records], [r["identity"] for r in records], gallery=gallery, encoder=ENCODER,
        methods=[r["method"] for r in records], progress=False, cache=False, **kwargs,
    )


def background_section(records: list[dict[str, Any]], gallery: Path) -> dict[str, Any]:
    keep = _run(records, gallery)
    matting = load_matting(_centre_matte, name="centre-ellipse", revision="1")
    removed = _run(records, gallery, background="remove", matting=matting)
    out = {}
    for method in keep.methods:
        a, b = keep[method], removed[method]
        out[method] = {"map_keep": a.map, "map_remove": b.map, "difference": b.map - a.map,
                       "pairwise_keep": a.pairwise_similarity, "pairwise_remove": b.pairwise_similarity}
    try:
        load_matting("carvekit")
        out["carvekit"] = "installed"
    except fp_rank.EncoderError as exc:
        out["carvekit"] = f"not usable here: {str(exc)[:120]}"
    return out


def conditioning_section(records: list[dict[str, Any]], gallery: Path) -> dict[str, Any]:
    gal = fp_rank.load_gallery(gallery)
    first_ref = {}
    for row, ident in enumerate(gal.reference.identities.tolist()):
        first_ref.setdefault(ident, row)
    conditioning = [first_ref[r["identity"]] for r in records]
    mean_rule = _run(records, gallery)
    one_image = _run(records, gallery, conditioning=conditioning)
    per_query = np.asarray([q["pairwise"] for q in one_image.queries]) - np.asarray(
        [q["pairwise"] for q in mean_rule.queries])
    return {
        method: {"pairwise_mean_of_references": mean_rule[method].pairwise_similarity,
                 "pairwise_conditioning_image": one_image[method].pairwise_similarity,
                 "map_unchanged": mean_rule[method].map == one_image[method].map}
        for method in mean_rule.methods
    } | {"per_query_abs_difference_max": float(np.abs(per_query).max()),
         "per_query_abs_difference_mean": float(np.abs(per_query).mean())}


def baseline_section(records: list[dict[str, Any]], gallery: Path) -> dict[str, Any]:
    report = _run(records, gallery)
    first = report[report.methods[0]]
    return {
        "real_baseline_map (reference split as queries, the reference code's baseline)": first.real_baseline_map,
        "ceiling_map (holdout split as queries, fp-rank's ceiling)": first.ceiling_map,
        "normalised uses": "ceiling_map",
        "normalised": {m: report[m].normalised for m in report.methods},
    }


def on_missing_section(scratch: Path) -> dict[str, Any]:
    """A tiny gallery where identity ``id3`` of group ``g`` has held-out images but none in the gallery
    (the reference code then scores its queries AP 0; fp-rank needs on_missing="zero" for that)."""
    from tests.gallery_fixtures import png_bytes, write_gallery

    splits: dict[str, list[dict[str, Any]]] = {"gallery": [], "reference": [], "holdout": []}
    for i in range(4):
        for k in range(3 if i < 3 else 0):
            splits["gallery"].append({"image": png_bytes(10 * i + k), "identity": f"id{i}", "group": "g"})
        for k in range(2):
            split = "reference" if i < 3 else "holdout"
            splits[split].append({"image": png_bytes(500 + 10 * i + k), "identity": f"id{i}", "group": "g"})
    gallery = write_gallery(scratch / "missing", splits)
    images = [png_bytes(900 + n) for n in range(12)]
    labels = [f"id{n % 4}" for n in range(12)]  # a quarter of the queries name id3
    records = [{"image": im, "identity": lab, "method": "m"} for im, lab in zip(images, labels)]
    skip = _run(records, gallery, on_missing="skip", ceilings=False)
    zero = _run(records, gallery, on_missing="zero", ceilings=False)
    return {"map_skip": skip["m"].map, "map_zero": zero["m"].map, "n_missing": zero["m"].n_missing,
            "n_queries_skip": skip["m"].n_queries, "n_queries_zero": zero["m"].n_queries,
            "zero_equals_skip_times_share": abs(zero["m"].map - skip["m"].map * 9 / 12) < 1e-12}


def clip_t_section(records: list[dict[str, Any]], gallery: Path, scratch: Path) -> dict[str, Any]:
    import torch
    from transformers import CLIPModel, CLIPProcessor

    from tests.model_fixtures import make_tiny_clip_with_text

    folder = make_tiny_clip_with_text(scratch / "clip")
    # the tiny CLIP reads 16 tokens (the real one 77): short prompts keep both paths untruncated
    subset = [{**r, "prompt": ("a {X}", "{X}", "a red {X}")[n % 3]} for n, r in enumerate(records[:24])]
    prompts = [r["prompt"] for r in subset]
    report = _run(subset, gallery, prompts=prompts, clip_t=str(folder))
    gal = fp_rank.load_gallery(gallery)
    nouns = {g: (e or {}).get("noun", g) for g, e in (gal.card.get("groups") or {}).items()}
    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    differences = []
    for q in report.queries:
        record = subset[q["index"]]
        prompt = record["prompt"].replace("{X}", str(nouns.get(q["group"], q["group"])))
        image = record["image"] if isinstance(record["image"], Image.Image) else Image.open(record["image"])
        inputs = processor(text=[prompt], images=image.convert("RGB"), return_tensors="pt", padding=True)
        with torch.no_grad():
            img = model.get_image_features(pixel_values=inputs["pixel_values"])
            txt = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        img = getattr(img, "pooler_output", img)
        txt = getattr(txt, "pooler_output", txt)
        definition = torch.cosine_similarity(
            torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1)
        ).item()
        differences.append(abs(definition - q["clip_t"]))
    return {"n_images": len(differences), "max_abs_difference": max(differences),
            "mean_abs_difference": float(np.mean(differences))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--per-method", type=int, default=60, help="generated images per simulated method")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        gallery = demo_gallery.build(scratch / "gallery", seed=0, progress=False)
        by_method: dict[str, list[dict[str, Any]]] = {}
        for record in generated_records(0):
            by_method.setdefault(record["method"], []).append(record)
        records = [r for rs in by_method.values() for r in rs[: args.per_method]]
        numbers = {
            "background_removal": background_section(records, gallery),
            "pairwise_conditioning": conditioning_section(records, gallery),
            "real_baseline_vs_ceiling": baseline_section(records, gallery),
            "on_missing_zero": on_missing_section(scratch),
            "clip_t": clip_t_section(records, gallery, scratch),
        }
    text = json.dumps(numbers, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
