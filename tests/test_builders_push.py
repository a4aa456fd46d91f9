"""Offline pre-flight validation, the (mocked) upload, and the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fp_rank.errors import BuilderError
from gallery_builders import cub, push
from gallery_builders.__main__ import main
from tests.builders_fixtures import (  # noqa: F401  (private_datasets_cache is an autouse fixture)
    card_of,
    make_cub,
    private_datasets_cache,
)


@pytest.fixture(scope="module")
def cub_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cub(tmp_path_factory.mktemp("cub_src"))


@pytest.fixture(scope="module")
def good(cub_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cub.build(cub_source, tmp_path_factory.mktemp("good") / "cub", progress=False)


@pytest.fixture()
def broken(good: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(good, copy)
    return copy


def test_validate_accepts_a_built_folder(good: Path) -> None:
    report = push.validate(good)
    assert report.configs == ("all", "wren", "tern", "sparrow")
    assert report.primary_encoder == "dinov2-base"
    assert report.rows["all"]["gallery"] == 150 and report.rows["wren"]["reference"] == 50


def test_validate_missing_shard(broken: Path) -> None:
    (broken / "data" / "tern" / "reference-00000-of-00001.parquet").unlink()
    with pytest.raises(BuilderError, match="data/tern/reference-00000-of-00001.parquet"):
        push.validate(broken)


def test_validate_bad_yaml(broken: Path) -> None:
    text = (broken / "README.md").read_text()
    (broken / "README.md").write_text(text.replace("configs:\n", "configs: [\n", 1))
    with pytest.raises(BuilderError, match="README.md"):
        push.validate(broken)


def test_validate_missing_card_and_block(broken: Path, tmp_path: Path) -> None:
    text = (broken / "README.md").read_text()
    (broken / "README.md").write_text(text.replace("fp_rank:\n", "other_block:\n", 1))
    with pytest.raises(BuilderError, match="no 'fp_rank:' block"):
        push.validate(broken)
    (broken / "README.md").unlink()
    with pytest.raises(BuilderError, match="missing file .*README.md"):
        push.validate(broken)
    with pytest.raises(BuilderError, match="does not exist"):
        push.validate(tmp_path / "nowhere")


def test_validate_counts_and_manifest_disagreement(broken: Path) -> None:
    text = (broken / "README.md").read_text()
    (broken / "README.md").write_text(text.replace("    wren:\n      gallery: 50", "    wren:\n      gallery: 49", 1))
    lines = (broken / "manifest.jsonl").read_text().splitlines()
    (broken / "manifest.jsonl").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(BuilderError) as info:
        push.validate(broken)
    message = str(info.value)
    assert "has 50 rows, the card says 49" in message
    assert "manifest.jsonl disagrees" in message


def test_validate_detects_an_image_in_two_splits(broken: Path) -> None:
    import pyarrow.parquet as pq

    gallery_path = broken / "data" / "wren" / "gallery-00000-of-00001.parquet"
    holdout_path = broken / "data" / "wren" / "holdout-00000-of-00001.parquet"
    gallery = pq.read_table(gallery_path)
    holdout = pq.read_table(holdout_path)
    mixed = holdout.slice(0, len(holdout) - 1).to_pylist() + gallery.slice(0, 1).to_pylist()
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(mixed, schema=holdout.schema), holdout_path)
    with pytest.raises(BuilderError, match="is in \\('wren', 'gallery'\\) and in \\('wren', 'holdout'\\)"):
        push.validate(broken)


class _FakeApi:
    calls: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, token: str | None = None) -> None:
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kwargs: Any) -> Any:
        self.calls.append(("upload_folder", kwargs))

        class Commit:
            oid = "a" * 40
            commit_url = "https://huggingface.co/datasets/x/commit/" + "a" * 40

        return Commit()

    def create_tag(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_tag", {"repo_id": repo_id, **kwargs}))


@pytest.fixture()
def fake_api(monkeypatch: pytest.MonkeyPatch) -> type[_FakeApi]:
    import huggingface_hub

    _FakeApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", _FakeApi)
    return _FakeApi


def test_push_refuses_an_invalid_folder_before_any_network_call(broken: Path, fake_api: type[_FakeApi]) -> None:
    (broken / "manifest.jsonl").unlink()
    with pytest.raises(BuilderError, match="manifest.jsonl"):
        push.push(broken, "org/fp-rank-cub", "v1.0")
    assert fake_api.calls == []


def test_push_uploads_then_tags(good: Path, fake_api: type[_FakeApi]) -> None:
    result = push.push(good, "org/fp-rank-cub", "v1.0", token="secret")
    assert [name for name, _ in fake_api.calls] == ["init", "create_repo", "upload_folder", "create_tag"]
    create = fake_api.calls[1][1]
    assert create["repo_type"] == "dataset" and create["exist_ok"] is True
    upload = fake_api.calls[2][1]
    assert upload["folder_path"] == str(good) and upload["repo_type"] == "dataset"
    tag = fake_api.calls[3][1]
    assert tag["tag"] == "v1.0" and tag["revision"] == "a" * 40 and tag["repo_type"] == "dataset"
    assert result.commit == "a" * 40


@pytest.mark.parametrize(("repo_id", "tag"), [("no-slash", "v1"), ("org/x", " ")])
def test_push_argument_checks(good: Path, fake_api: type[_FakeApi], repo_id: str, tag: str) -> None:
    with pytest.raises(BuilderError):
        push.push(good, repo_id, tag)
    assert fake_api.calls == []


# --- command line -----------------------------------------------------------------------------


def test_cli_builds_and_validates(cub_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["cub", "--source", str(cub_source), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert card_of(out)["fp_rank"]["seed"] == 101
    assert main(["validate", str(out)]) == 0
    assert "is valid" in capsys.readouterr().out


def test_cli_error_is_one_line_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["cub", "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(tmp_path / "missing") in err


def test_cli_wildlife_and_push_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["wildlife-reid", "--source", str(tmp_path), "--species", "sea turtle", "zebra"]
    argv += ["--out", str(tmp_path / "o")]
    status = main(argv)
    assert status == 2 and "metadata.csv" in capsys.readouterr().err
    status = main(["push", str(tmp_path / "nothing"), "--repo-id", "org/x", "--tag", "v1.0"])
    assert status == 2 and "does not exist" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gallery_builders", "cub", "--source", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: missing file") and "Traceback" not in result.stderr
    assert json.dumps(result.stdout) == '""'
