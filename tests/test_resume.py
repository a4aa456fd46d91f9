"""Resumable scale-out: generated-image embeddings cached per chunk; a SIGKILLed run resumes with identical numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fp_rank
from fp_rank.evaluation import embed

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, sys, time
from fp_rank.encoding.encoders import Encoder
from fp_rank.evaluation import embed
import fp_rank

args = json.loads(sys.argv[1])
embed.GENERATED_CHUNK = args["chunk"]
forward = Encoder.embed_tensor
def slow(self, pixels):
    time.sleep(args["sleep"])
    return forward(self, pixels)
Encoder.embed_tensor = slow
report = fp_rank.evaluate(args["files"], args["labels"], gallery=args["gallery"], encoder=args["encoder"],
                          cache=args["cache"], batch_size=args["batch"], progress=False)
with open(args["out"], "w") as fh:
    json.dump({"csv": report.to_csv(), "cache": report.metadata["cache"]}, fh)
"""


def _launch(args: dict) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _entries(cache: Path) -> int:
    root = cache / "embeddings"
    return len(list(root.rglob("*.safetensors"))) if root.exists() else 0


def test_killed_run_resumes_with_identical_numbers(
    tmp_path: Path, demo_gallery_dir: Path, demo_generated: list[dict], tiny_dinov2_dir: Path
) -> None:
    recs = demo_generated[:40]
    files = []
    for i, rec in enumerate(recs):
        path = tmp_path / f"gen_{i:03d}.png"
        rec["image"].save(path)
        files.append(str(path))
    base = {"files": files, "labels": [r["identity"] for r in recs], "gallery": str(demo_gallery_dir),
            "encoder": str(tiny_dinov2_dir), "batch": 4, "chunk": 8}
    cache = tmp_path / "cache"
    real_splits = 2  # the gallery and reference entries come first (the holdout after the generated images)
    first = _launch({**base, "cache": str(cache), "sleep": 0.5, "out": str(tmp_path / "a.json")})
    deadline = time.monotonic() + 240
    while _entries(cache) < real_splits + 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the run ended before it could be killed: " + first.stderr.read().decode()[-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_chunks = _entries(cache) - real_splits
    assert 2 <= done_chunks < 5
    resumed = _launch({**base, "cache": str(cache), "sleep": 0.0, "out": str(tmp_path / "b.json")})
    clean = _launch({**base, "cache": str(tmp_path / "fresh"), "sleep": 0.0, "out": str(tmp_path / "c.json")})
    for proc in (resumed, clean):
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    b = json.loads((tmp_path / "b.json").read_text())
    c = json.loads((tmp_path / "c.json").read_text())
    assert b["cache"]["generated_images_from_cache"] == 8 * done_chunks
    assert b["cache"]["generated_images_encoded"] == 40 - 8 * done_chunks
    assert c["cache"]["generated_images_from_cache"] == 0
    assert b["csv"] == c["csv"]


def test_chunked_encoding_equals_one_pass(
    demo_gallery_dir: Path, demo_generated: list[dict], tiny_dinov2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = demo_generated[:30]
    images, labels = [r["image"] for r in recs], [r["identity"] for r in recs]
    enc = fp_rank.load_encoder(str(tiny_dinov2_dir), device="cpu")
    whole = enc.encode(images, batch_size=4, progress=False).embeddings
    monkeypatch.setattr(embed, "GENERATED_CHUNK", 9)  # rounded down to 8: whole batches
    report = fp_rank.evaluate(images, labels, gallery=str(demo_gallery_dir), encoder=enc, batch_size=4,
                              progress=False)
    again = fp_rank.evaluate(images, labels, gallery=str(demo_gallery_dir), encoder=enc, batch_size=4,
                             progress=False)
    assert again.metadata["cache"]["generated_images_from_cache"] == 30
    assert again.to_csv() == report.to_csv()
    assert whole.shape[0] == 30 and np.isfinite(whole).all()
