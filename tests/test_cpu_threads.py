"""``fp_rank.cpu_threads``: the fp-rank command asks torch's idle threads to sleep, before torch loads,
without overriding a user's choice and without changing a number."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import torch

from fp_rank.images import stream as batches

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, **env: str | None) -> list:
    full = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    full.update({k: v for k, v in env.items() if v is not None})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


REPORT = "import json, os, sys\nprint(json.dumps([got, os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules]))"


def test_sets_passive_before_torch_loads() -> None:
    code = "from fp_rank.cpu_threads import prefer_passive_waiting\ngot = prefer_passive_waiting()\n" + REPORT
    assert _python(code) == ["PASSIVE", "PASSIVE", False]


def test_keeps_the_users_policy() -> None:
    code = "from fp_rank.cpu_threads import prefer_passive_waiting\ngot = prefer_passive_waiting()\n" + REPORT
    assert _python(code, OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE", "ACTIVE", False]


def test_too_late_once_torch_is_imported() -> None:
    code = "import torch\nfrom fp_rank.cpu_threads import prefer_passive_waiting\ngot = prefer_passive_waiting()\n" + REPORT
    assert _python(code) == [None, None, True]


def test_the_command_sets_it_before_anything_imports_torch() -> None:
    code = "import fp_rank.cli\ntry:\n    fp_rank.cli.main(['--help'])\nexcept SystemExit:\n    pass\ngot = 0\n" + REPORT
    assert _python(code) == [0, "PASSIVE", False]


def test_the_space_sets_it_before_importing_torch() -> None:
    code = ("import builtins, os\nseen = []\nreal = builtins.__import__\n"
            "def spy(name, *a, **k):\n"
            "    if name == 'torch' and not seen:\n        seen.append(os.environ.get('OMP_WAIT_POLICY'))\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = spy\nimport app\nbuiltins.__import__ = real\ngot = seen\n" + REPORT)
    assert _python(code)[:2] == [["PASSIVE"], "PASSIVE"]


def test_embeddings_do_not_depend_on_the_policy(tiny_dinov2_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    files = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    code = (f"import json, sys\nfrom fp_rank import load_encoder\nenc = load_encoder({str(tiny_dinov2_dir)!r}, device='cpu')\n"
            f"emb = enc.encode({files!r}, batch_size=4, progress=False).embeddings\n"
            "print(json.dumps(emb.view('uint32').ravel().tolist()))")
    runs = {policy: _python(code, OMP_WAIT_POLICY=policy) for policy in ("PASSIVE", "ACTIVE", None)}
    assert len(runs[None]) > 0 and len(runs[None]) % 6 == 0
    assert runs["PASSIVE"] == runs["ACTIVE"] == runs[None]


def test_worker_mode_hints_once_when_threads_spin(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(batches, "_HINTED", [])
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with caplog.at_level(logging.INFO, logger=batches.__name__):
        batches._hint_wait_policy(on_gpu=False)
        batches._hint_wait_policy(on_gpu=False)
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "OMP_WAIT_POLICY=PASSIVE" in caplog.records[0].getMessage()


@pytest.mark.parametrize("device, policy", [("cuda", None), ("cpu", "PASSIVE"), ("cpu", "passive")])
def test_no_hint_where_nothing_spins(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, device: str, policy: str | None
) -> None:
    monkeypatch.setattr(batches, "_HINTED", [])
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    if policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    with caplog.at_level(logging.INFO, logger=batches.__name__):
        batches._hint_wait_policy(on_gpu=device == "cuda")
    assert caplog.records == []
