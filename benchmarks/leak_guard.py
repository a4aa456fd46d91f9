"""Detection rate and false positives of the leakage guard (fp_rank.checks.leakage) on copies.

Copies: half-size (Lanczos, and nearest-neighbour), JPEG quality 75, a 5% crop (2.5% off each
side), half-size then JPEG, of 15 pictures of each kind: white-noise textures (256 px and
512 px), blurred gray noise, 1/f ("pink") noise, and the synthetic demo birds. False positives:
distinct pictures of the same kind queried against the index (15 against 15), and on the demo
gallery every reference/holdout photo and every generated image against the gallery split.

Run: python benchmarks/leak_guard.py (about a minute on one core). ``--old`` turns the texture
route off (the detector before it was added).
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image, ImageFilter

from fp_rank.checks.leakage import LeakIndex
from fp_rank.demo.synthetic import gallery_records, generated_records


def _noise(seed: int, size: int = 256) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _gray_noise(seed: int, size: int = 256) -> Image.Image:
    base = np.random.default_rng(seed).normal(128, 40, (size, size)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(base).convert("RGB").filter(ImageFilter.GaussianBlur(0.7))


def _pink(seed: int, size: int = 256) -> Image.Image:
    rng = np.random.default_rng(seed)
    freq = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    freq[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / freq ** 0.5
        x = np.real(np.fft.ifft2(spectrum))
        channels.append((x - x.min()) / (x.max() - x.min()) * 255)
    return Image.fromarray(np.stack(channels, -1).astype(np.uint8))


def _jpeg(img: Image.Image, quality: int = 75) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _half(img: Image.Image, how: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
    return img.resize((img.width // 2, img.height // 2), how)


def _crop(img: Image.Image, share: float = 0.05) -> Image.Image:
    dx, dy = round(img.width * share / 2), round(img.height * share / 2)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


COPIES = {
    "half-size": _half,
    "half-size (nearest)": lambda i: _half(i, Image.Resampling.NEAREST),
    "JPEG q=75": _jpeg,
    "crop 5%": _crop,
    "half-size + JPEG": lambda i: _jpeg(_half(i)),
}


def kinds() -> dict[str, tuple[list[Image.Image], list[Image.Image]]]:
    """Per kind of picture: 15 indexed originals and 15 distinct pictures of the same kind."""
    birds = [r["image"] for r in gallery_records(0)]
    return {
        "white noise 256 px": ([_noise(s) for s in range(15)], [_noise(100 + s) for s in range(15)]),
        "white noise 512 px": ([_noise(s, 512) for s in range(15)], [_noise(100 + s, 512) for s in range(15)]),
        "gray noise, blur 0.7": ([_gray_noise(s) for s in range(15)], [_gray_noise(100 + s) for s in range(15)]),
        "1/f noise": ([_pink(s) for s in range(15)], [_pink(100 + s) for s in range(15)]),
        "demo birds (64 px)": (birds[:300:20], birds[10:300:20]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", action="store_true", help="texture route off (the detector before it)")
    args = parser.parse_args()
    corr = 2.0 if args.old else None
    make = (lambda: LeakIndex(min_texture_corr=corr)) if corr is not None else LeakIndex
    print("| pictures | " + " | ".join(COPIES) + " | distinct flagged |")
    print("|:--|" + "--:|" * (len(COPIES) + 1))
    for name, (originals, others) in kinds().items():
        index = make()
        index.add("gallery", originals)
        cells = []
        for copy in COPIES.values():
            hits = 0
            for k, img in enumerate(originals):
                found = index.match(copy(img))
                hits += found is not None and found["index"] == k
            cells.append(f"{hits}/{len(originals)}")
        false = sum(index.match(img) is not None for img in others)
        print(f"| {name} | " + " | ".join(cells) + f" | {false}/{len(others)} |")
    records = gallery_records(0)
    index = make()
    index.add("gallery", [r["image"] for r in records if r["split"] == "gallery"])
    distinct = [r["image"] for r in records if r["split"] != "gallery"] + [r["image"] for r in generated_records(0)]
    false = sum(index.match(img) is not None for img in distinct)
    print(f"\nDemo gallery: {false} of {len(distinct)} distinct pictures (reference, holdout, generated) flagged "
          f"against its {sum(r['split'] == 'gallery' for r in records)} gallery images.")


if __name__ == "__main__":
    main()
