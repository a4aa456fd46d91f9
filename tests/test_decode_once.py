"""Decode once: the leakage guard shares the encoder's decode pass and the dedup hash (behaviour, not timing)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

import fp_rank
from fp_rank.checks import leakage
from fp_rank.evaluation import embed


def _jpeg(data: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _save(recs: list[dict], folder: Path, prefix: str) -> list[str]:
    paths = [folder / f"{prefix}_{i}.png" for i in range(len(recs))]
    for rec, path in zip(recs, paths):
        rec["image"].save(path)
    return [str(p) for p in paths]


def _run(tmp_path: Path, demo_gallery_dir: Path, demo_generated: list[dict]) -> tuple[dict, str]:
    jay = fp_rank.load_gallery(str(demo_gallery_dir), "jay").gallery
    recs = [r for r in demo_generated if r["identity"].startswith("jay_")][:6]
    files = _save(recs, tmp_path, "gen")
    exact, near = jay.images[0]["bytes"], _jpeg(jay.images[1]["bytes"])
    items = files + [exact, near, files[0]]  # an exact copy, a near copy, a duplicate generated image
    labels = [r["identity"] for r in recs] + [str(jay.identities[0]), str(jay.identities[1]), recs[0]["identity"]]
    leakage._INDEX_CACHE.clear()
    report = fp_rank.evaluate(items, labels, gallery=str(demo_gallery_dir), progress=False, cache=False)
    return report.metadata["leakage"], report.to_csv()


def test_leak_flags_equal_the_separate_pass(
    tmp_path: Path, demo_gallery_dir: Path, demo_generated: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = leakage.to_rgb

    def counting(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(leakage, "to_rgb", counting)
    fused = _run(tmp_path, demo_gallery_dir, demo_generated)
    gal = fp_rank.load_gallery(str(demo_gallery_dir))
    holdout = len(gal.holdout) if gal.holdout is not None else 0
    # generated images and the encoded gallery/reference splits are not decoded by the guard again:
    # only the holdout split (not encoded without ceilings=True) is
    assert calls["n"] == holdout
    assert fused[0]["n_flagged"] >= 2
    # the old order (index decoded separately, every generated image decoded again) gives the same flags
    monkeypatch.setattr(embed.Embedder, "_guard_taps", lambda self: None)  # no fingerprints taken while encoding
    calls["n"] = 0
    separate = _run(tmp_path, demo_gallery_dir, demo_generated)
    assert calls["n"] > holdout
    assert separate == fused


def test_evaluate_with_workers_gives_the_same_report(
    tmp_path: Path, demo_gallery_dir: Path, demo_generated: list[dict]
) -> None:
    recs = [r for r in demo_generated if r["identity"].startswith("jay_")][:12]
    files = _save(recs, tmp_path, "w")
    labels = [r["identity"] for r in recs]
    one = fp_rank.evaluate(files, labels, gallery=str(demo_gallery_dir), progress=False, cache=False, batch_size=4)
    two = fp_rank.evaluate(files, labels, gallery=str(demo_gallery_dir), progress=False, cache=False, batch_size=4,
                           num_workers=2)
    assert one.to_csv() == two.to_csv()
    assert one.metadata["leakage"] == two.metadata["leakage"]
