"""Untrusted code: remote code only on explicit opt-in (with a warning naming repository and
revision), safetensors weights only unless the caller opts out, and no pickle in what we write."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import fp_rank
from fp_rank.errors import EncoderError
from tests.gallery_fixtures import png_bytes, write_gallery

PACKAGE = Path(fp_rank.__file__).resolve().parent


def _remote_code_folder(tmp_path: Path, tiny_miewid_dir: Path) -> tuple[Path, Path]:
    """A copy of the tiny remote-code model whose code leaves a marker file when it is imported."""
    folder = tmp_path / "remote"
    shutil.copytree(tiny_miewid_dir, folder)
    marker = tmp_path / "code-ran.txt"
    config_py = folder / "configuration_tiny_miewid.py"
    config_py.write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + config_py.read_text())
    return folder, marker


def test_remote_code_is_refused_without_opt_in_and_never_runs(tmp_path: Path, tiny_miewid_dir: Path) -> None:
    folder, marker = _remote_code_folder(tmp_path, tiny_miewid_dir)
    with pytest.raises(EncoderError, match="needs trust_remote_code=True"):
        fp_rank.load_encoder("miewid", source=str(folder))
    with pytest.raises(EncoderError, match="needs trust_remote_code=True"):
        fp_rank.load_encoder(str(folder))  # a generic folder whose config maps to its own code
    assert not marker.exists()


def test_remote_code_opt_in_warns_naming_repository_and_revision(tmp_path: Path, tiny_miewid_dir: Path) -> None:
    folder, marker = _remote_code_folder(tmp_path, tiny_miewid_dir)
    with pytest.warns(UserWarning, match=re.escape(f"running code from {str(folder)!r} at a local folder")):
        enc = fp_rank.load_encoder("miewid", source=str(folder), trust_remote_code=True)
    assert marker.exists()
    assert enc.revision is not None and enc.revision.startswith("sha256:")
    # a Hub repository: the warning names the pinned revision (offline, it then fails as not cached)
    with pytest.warns(UserWarning, match=r"'fp-rank-test/remote' at revision 0123abcd"):
        with pytest.raises(EncoderError, match="offline"):
            fp_rank.load_encoder("miewid", source="fp-rank-test/remote", revision="0123abcd", trust_remote_code=True)
    with pytest.warns(UserWarning, match=r"revision main \(unpinned"):
        with pytest.raises(EncoderError):
            fp_rank.load_encoder("miewid", source="fp-rank-test/remote", trust_remote_code=True)


def _pickled_copy(tiny_dinov2_dir: Path, folder: Path) -> Path:
    """The tiny DINOv2 with its weights as a pickled pytorch_model.bin instead of safetensors."""
    from safetensors.torch import load_file

    folder.mkdir()
    torch.save(load_file(tiny_dinov2_dir / "model.safetensors"), folder / "pytorch_model.bin")
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(tiny_dinov2_dir / name, folder / name)
    return folder


def test_pickled_weights_are_refused_unless_the_caller_opts_out(tiny_dinov2_dir: Path, tmp_path: Path) -> None:
    folder = _pickled_copy(tiny_dinov2_dir, tmp_path / "pickled")
    with pytest.raises(EncoderError, match=r"no safetensors weights.*pass use_safetensors=False"):
        fp_rank.load_encoder(str(folder))
    with pytest.raises(EncoderError, match="no safetensors weights"):
        fp_rank.load_encoder("dinov2-small", source=str(folder))
    opted = fp_rank.load_encoder(str(folder), use_safetensors=False)
    safe = fp_rank.load_encoder(str(tiny_dinov2_dir))
    images = [png_bytes(i, size=40) for i in range(3)]
    np.testing.assert_allclose(
        opted.encode(images, progress=False).embeddings, safe.encode(images, progress=False).embeddings, atol=1e-6
    )


_PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".npy", ".npz"}


def _looks_pickled(data: bytes) -> bool:
    # pickle protocols 2-5 start with PROTO (0x80) and the protocol number; torch.save writes a
    # zip whose members are pickles ("data.pkl")
    return (len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5) or (data[:2] == b"PK" and b".pkl" in data)


def test_no_pickle_in_caches_or_outputs(tmp_path: Path) -> None:
    folder = write_gallery(
        tmp_path / "gallery",
        {
            "gallery": [{"image": png_bytes(i, size=32), "identity": f"id{i % 3}", "group": "g"} for i in range(9)],
            "reference": [{"image": png_bytes(50 + i, size=32), "identity": f"id{i}", "group": "g"} for i in range(3)],
        },
    )
    cache_dir, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    report = fp_rank.evaluate(
        [png_bytes(90 + i, size=32) for i in range(6)], ["id0", "id1", "id2"] * 2, gallery=str(folder),
        encoder="fp-rank-demo", cache=cache_dir, progress=False,
    )
    report.to_json(out / "report.json")
    report.to_csv(out / "queries.csv")
    written = [p for p in [*cache_dir.rglob("*"), *out.rglob("*")] if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in written)
    for path in written:
        assert path.suffix not in _PICKLE_SUFFIXES, path
        assert not _looks_pickled(path.read_bytes()), path
    for entry in cache_dir.rglob("*.safetensors"):  # plain safetensors: JSON header, raw float32
        data = entry.read_bytes()
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        assert header["embeddings"]["dtype"] == "F32"
    json.loads((out / "report.json").read_text())


def test_package_source_never_unpickles() -> None:
    forbidden = re.compile(
        r"^\s*(import pickle|from pickle|import dill|import joblib|import cloudpickle)|torch\.load\(|allow_pickle\s*=\s*True"
        r"|weights_only\s*=\s*False",
        re.MULTILINE,
    )
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if forbidden.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
