"""Publishing on the Hub: the metric Space build, eval.yaml, .eval_results export, leaderboards,
and open_clip revisions loaded from a snapshot. Nothing here reaches the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

import fp_rank
from fp_rank import EncoderError, InputError
from fp_rank.cli import main
from fp_rank.hub import leaderboard as lb
from fp_rank.hub import results as hub_results
from fp_rank.hub import space_build
from fp_rank.reporting.report import Report
from fp_rank.version import PROTOCOL_VERSION, __version__
from fp_rank.hub.results import to_eval_results

REPO = Path(__file__).resolve().parents[1]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the metric Space ------------------------------------------------------------------------


def test_space_build_holds_what_the_hub_serves(tmp_path: Path) -> None:
    build = space_build.build_space(tmp_path / "fp-rank", repo_id="my-org/fp-rank", datasets=["my-org/fp-rank-cub"])
    files = _tree(build.folder)
    assert {"fp-rank.py", "README.md", "app.py", "requirements.txt"} <= set(files)
    assert set(files) - {space_build.BUILD_RECORD} == set(build.files)
    # the very files of the repository: the module under the name evaluate fetches, and the app
    assert files["fp-rank.py"] == (REPO / "finer_personalization_rank.py").read_bytes()
    assert files["app.py"] == (REPO / "app.py").read_bytes()
    # every relative file the card links to travels with it
    assert "docs/figures/demo_pairwise_vs_map.png" in files
    meta, body = space_build.split_front_matter(files["README.md"].decode())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["title"]
    assert {"evaluate", "metric"} <= set(meta["tags"])
    assert 0 < len(meta["short_description"]) <= 60
    assert "imageomics/bioclip-2" in meta["models"] and "facebook/dinov2-base" in meta["models"]
    assert "my-org/fp-rank-cub" in meta["datasets"]
    assert "https://arxiv.org/abs/2512.19026" in body
    assert "### Personal and sensitive information" in body and "### Contact" in body
    assert "from space.page import" in files["app.py"].decode()
    reqs = files["requirements.txt"].decode().splitlines()
    assert f"fp-rank[app]=={__version__}" in reqs
    app_extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["app"]
    assert space_build.GRADIO_REQUIREMENT in reqs and space_build.GRADIO_REQUIREMENT in app_extra
    assert build.load_call() == str(build.folder)


def test_space_build_is_byte_deterministic(tmp_path: Path) -> None:
    a = space_build.build_space(tmp_path / "a" / "fp-rank")
    b = space_build.build_space(tmp_path / "b" / "fp-rank")
    assert _tree(a.folder) == _tree(b.folder)


def test_space_module_is_named_after_the_repository(tmp_path: Path) -> None:
    build = space_build.build_space(tmp_path / "elsewhere", repo_id="org/my-metric")
    assert build.module.name == "my-metric.py"
    assert build.load_call() == str(build.module)  # folder name differs: load the module by its path


def test_space_build_refuses_to_clobber(tmp_path: Path) -> None:
    out = tmp_path / "fp-rank"
    space_build.build_space(out)
    with pytest.raises(InputError, match="not empty"):
        space_build.build_space(out)
    (out / "stale.txt").write_text("x")
    space_build.build_space(out, overwrite=True)
    assert (out / "stale.txt").read_text() == "x"  # not written by fp-rank: never deleted (issue 21)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(InputError, match="was not written by fp-rank build-space"):
        space_build.build_space(other, overwrite=True)
    assert (other / "mine.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="cannot name a Hub repository"):
        space_build.build_space(tmp_path / "x", repo_id="org/bad name")


def test_space_card_names_what_its_front_matter_lacks() -> None:
    with pytest.raises(InputError, match="no YAML front matter"):
        space_build.space_card("# no front matter\n")
    with pytest.raises(InputError, match=r"sdk: gradio.*short_description.*models"):
        space_build.space_card("---\ntitle: x\napp_file: app.py\ntags: [evaluate, metric]\ndatasets: [a/b]\n---\nbody\n")
    long = "x" * 61
    card = f"---\ntitle: x\nsdk: gradio\napp_file: app.py\ntags: [evaluate, metric]\nmodels: [a/m]\ndatasets: [a/b]\nshort_description: {long}\n---\n"
    with pytest.raises(InputError, match="at most 60 characters"):
        space_build.space_card(card)


def test_space_preflight_loads_the_module_offline_like_the_hub(demo_gallery_dir: Path, tmp_path: Path) -> None:
    """evaluate.load(OUT) in a fresh offline process gives the library's numbers."""
    out = space_build.build_space(tmp_path / "fp-rank", repo_id="my-org/fp-rank").folder
    script = textwrap.dedent(
        f"""
        import json, evaluate, fp_rank
        from fp_rank.demo.synthetic import generated_records
        recs = [r for r in generated_records(0) if r["method"] == "detail-loss"][:24]
        images = [r["image"] for r in recs]
        labels = [r["identity"] for r in recs]
        kw = dict(gallery={str(demo_gallery_dir)!r}, encoder="fp-rank-demo")
        direct = fp_rank.evaluate(images, labels, progress=False, **kw)
        module = evaluate.load({str(out)!r})
        got = module.compute(predictions=images, references=labels, **kw)
        print(json.dumps([direct.map, got["map"], direct.cmc[1], got["cmc@1"], type(module).__name__]))
        """
    )
    env = {**os.environ, "HF_EVALUATE_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    direct_map, got_map, direct_cmc, got_cmc, cls = json.loads(done.stdout.strip().splitlines()[-1])
    assert got_map == direct_map and got_cmc == direct_cmc
    assert cls == "FinerPersonalizationRank"


class _FakeHfApi:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __init__(self, token: str | None = None) -> None:
        self.calls.append(("init", (), {"token": token}))

    def create_repo(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_repo", args, kwargs))

    def upload_folder(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("upload_folder", args, kwargs))
        _FakeHfApi.uploaded = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())


def test_push_creates_a_gradio_space_and_uploads_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import huggingface_hub

    _FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", _FakeHfApi)
    out = tmp_path / "fp-rank"
    assert main(["build-space", str(out), "--repo-id", "my-org/fp-rank", "--push"]) == 0
    names = [c[0] for c in _FakeHfApi.calls]
    assert names == ["init", "create_repo", "upload_folder"]
    _, args, kwargs = _FakeHfApi.calls[1]
    assert args == ("my-org/fp-rank",) and kwargs["repo_type"] == "space" and kwargs["space_sdk"] == "gradio"
    assert kwargs["exist_ok"] is True
    upload = _FakeHfApi.calls[2][2]
    assert upload["repo_id"] == "my-org/fp-rank" and upload["repo_type"] == "space"
    assert Path(upload["folder_path"]) == out
    assert {"fp-rank.py", "README.md", "app.py", "requirements.txt"} <= set(_FakeHfApi.uploaded)
    printed = capsys.readouterr().out
    assert "https://huggingface.co/spaces/my-org/fp-rank" in printed and f"evaluate.load({str(out)!r})" in printed


def test_push_needs_a_namespace_and_a_build(tmp_path: Path) -> None:
    build = space_build.build_space(tmp_path / "fp-rank")
    with pytest.raises(InputError, match="ORG/NAME"):
        space_build.push_space(build.folder, "fp-rank", api=_FakeHfApi())
    with pytest.raises(InputError, match="has no other.py"):
        space_build.push_space(build.folder, "org/other", api=_FakeHfApi())
    assert main(["build-space", str(tmp_path / "y"), "--repo-id", "fp-rank", "--push"]) == 2


def test_cli_hub_commands_import_lazily() -> None:
    code = "import sys, fp_rank.cli; print(any(m == 'fp_rank.hub' or m.startswith('fp_rank.hub.') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


# --- eval.yaml and the gallery cards ---------------------------------------------------------


def test_gallery_build_declares_the_benchmark(demo_gallery_dir: Path) -> None:
    declared = yaml.safe_load((demo_gallery_dir / "eval.yaml").read_text())
    card = yaml.safe_load((demo_gallery_dir / "README.md").read_text().split("---")[1])
    configs = [c["config_name"] for c in card["configs"]]
    assert [t["id"] for t in declared["tasks"]] == configs == ["all", "finch", "jay", "tern"]
    assert all(t["config"] == t["id"] and t["split"] == "gallery" for t in declared["tasks"])
    assert declared["evaluation_framework"] == "fp-rank"
    block = declared["fp_rank"]
    assert block["metric"] == "map" and block["encoder"] == card["fp_rank"]["recommended_encoders"]["primary"]
    assert block["protocol_version"] == PROTOCOL_VERSION
    assert card["source_datasets"] == ["original"]
    body = (demo_gallery_dir / "README.md").read_text()
    assert "https://arxiv.org/abs/2512.19026" in body
    assert "### Personal and Sensitive Information" in body and "## Dataset Card Contact" in body


def test_gallery_eval_yaml_is_deterministic(demo_gallery_dir: Path, tmp_path: Path) -> None:
    from fp_rank.demo import gallery as demo_source

    again = demo_source.build(tmp_path / "again", seed=0)
    assert (again / "eval.yaml").read_bytes() == (demo_gallery_dir / "eval.yaml").read_bytes()


def test_source_datasets_default_names_the_source() -> None:
    from fp_rank.galleries.build.card import card_metadata
    from gallery_builders.stanford_cars import gallery_spec

    summary = {"group_identities": {"car": []}, "identities": {}, "counts": {}, "duplicates": [], "skipped": [],
               "configs": [], "total": 0}
    assert card_metadata(gallery_spec("hub", None), summary)["source_datasets"] == ["extended|Donghyun99/Stanford-Cars"]


# --- .eval_results export --------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_report(demo_gallery_dir: Path) -> Report:
    from fp_rank.demo.synthetic import generated_records

    recs = [r for r in generated_records(0) if r["method"] in ("faithful", "drifting")][::3]
    return fp_rank.evaluate(
        [r["image"] for r in recs], [r["identity"] for r in recs], gallery=str(demo_gallery_dir),
        encoder="fp-rank-demo", methods=[r["method"] for r in recs], progress=False, cache=False,
    )


def test_eval_results_entries_follow_the_report(demo_report: Report) -> None:
    by_method = to_eval_results(demo_report, dataset_id="my-org/fp-rank-demo", dataset_revision="0123abc", allow_demo=True)
    assert sorted(by_method) == ["drifting", "faithful"]
    entries = by_method["faithful"]
    result = demo_report.result("faithful")
    assert [e.task_id for e in entries] == ["all", "finch", "jay", "tern"]
    assert entries[0].value == result.map
    assert {e.task_id: e.value for e in entries[1:]} == result.map_per_group
    assert all(e.dataset_id == "my-org/fp-rank-demo" and e.dataset_revision == "0123abc" for e in entries)
    notes = entries[0].notes
    assert "encoder fp-rank-demo (fp-rank/demo-descriptor@" in notes and f"protocol {PROTOCOL_VERSION}" in notes
    assert "DEMO ENCODER" in notes and entries[0].date is None


def test_export_results_round_trips_through_huggingface_hub(demo_report: Report, demo_gallery_dir: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    demo_report.to_json(report_path)
    args = ["export-results", str(report_path), "--dataset-id", "my-org/fp-rank-demo", "--dataset-revision", "0123abc", "--allow-demo"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    files = sorted((tmp_path / "a").rglob("*.yaml"))
    assert [p.relative_to(tmp_path / "a").as_posix() for p in files] == [
        "drifting/.eval_results/fp-rank-demo_fp-rank-demo.yaml",
        "faithful/.eval_results/fp-rank-demo_fp-rank-demo.yaml",
    ]
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")  # no dates, same bytes
    parsed = hub_results.read_eval_results(files[1])
    assert parsed == to_eval_results(demo_report, dataset_id="my-org/fp-rank-demo", dataset_revision="0123abc", allow_demo=True)["faithful"]
    declared = {t["id"] for t in yaml.safe_load((demo_gallery_dir / "eval.yaml").read_text())["tasks"]}
    assert {e.task_id for e in parsed} <= declared
    raw = yaml.safe_load(files[1].read_text())
    assert raw[0]["dataset"] == {"id": "my-org/fp-rank-demo", "task_id": "all", "revision": "0123abc"}


def test_export_results_refusals(demo_report: Report, demo_gallery_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a Hub dataset id"):
        to_eval_results(demo_report, allow_demo=True)
    with pytest.raises(InputError, match="demo encoder"):
        to_eval_results(demo_report, dataset_id="my-org/fp-rank-demo")
    with pytest.raises(InputError, match="no result for method='nobody'"):
        to_eval_results(demo_report, dataset_id="my-org/fp-rank-demo", method="nobody", allow_demo=True)
    with pytest.raises(InputError, match="cannot name a Hub repository"):
        to_eval_results(demo_report, dataset_id="my-org/bad name", allow_demo=True)
    # a local gallery's eval.yaml must declare the tasks written
    data = demo_report.to_dict()
    folder = tmp_path / "gallery"
    folder.mkdir()
    (folder / "eval.yaml").write_text(yaml.safe_dump({"tasks": [{"id": "all"}]}))
    data["metadata"]["gallery"]["id"] = str(folder)
    with pytest.raises(InputError, match=r"tasks \['finch', 'jay', 'tern'\] are not declared"):
        to_eval_results(Report.from_dict(data), dataset_id="my-org/fp-rank-demo", dataset_revision="0123abc",
                        allow_demo=True)
    with pytest.raises(InputError, match="records no revision"):
        to_eval_results(demo_report, dataset_id="my-org/fp-rank-demo", allow_demo=True)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- dataset: {id: a/b}\n  value: 1\n")
    with pytest.raises(InputError, match="invalid entry"):
        hub_results.read_eval_results(bad)
    assert main(["export-results", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2


# --- leaderboard -----------------------------------------------------------------------------


def _split_reports(report: Report, folder: Path) -> list[Path]:
    paths = []
    for method in report.methods:
        data = report.to_dict()
        data["results"] = [r for r in data["results"] if r["method"] == method]
        data["queries"] = [q for q in data["queries"] if q["method"] == method]
        path = folder / method / "report.json"
        path.parent.mkdir(parents=True)
        Report.from_dict(data).to_json(path)
        paths.append(path)
    return paths


def test_leaderboard_ranks_methods_across_reports(demo_report: Report, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    _split_reports(demo_report, runs)
    (runs / "comparison.json").write_text(json.dumps({"difference": 0.1}))
    board = lb.build_leaderboard([runs])
    assert len(board.boards) == 1 and [p for p, _ in board.ignored] == [(runs / "comparison.json").as_posix()]
    ranked = board.boards[0].ranked()
    assert [r["method"] for r in ranked] == ["faithful", "drifting"] and [r["rank"] for r in ranked] == [1, 2]
    written = board.write(tmp_path / "board")
    assert [p.name for p in written] == ["leaderboard.md", "leaderboard.png"]
    assert written[1].stat().st_size > 2000
    md = written[0].read_text()
    assert md.index("| faithful |") < md.index("| drifting |") and "![mAP per method](leaderboard.png)" in md
    assert "comparison.json" in md
    assert main(["leaderboard", str(runs)]) == 0
    assert "| 1 | faithful |" in capsys.readouterr().out


def test_leaderboard_refuses_one_method_twice(demo_report: Report, tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    demo_report.to_json(a)
    demo_report.to_json(b)
    with pytest.raises(InputError, match="appears in .*a.json and .*b.json"):
        lb.build_leaderboard([a, b])
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(InputError, match="not an fp-rank report"):
        lb.build_leaderboard([other])


def test_ties_share_a_rank() -> None:
    board = lb.Board(gallery="g", config="all", fingerprint="f", encoder="e", protocol_version="1.0",
                     rows=[{"method": m, "map": v} for m, v in (("b", 0.5), ("a", 0.5), ("c", 0.7), ("d", None))])
    assert [(r["method"], r["rank"]) for r in board.ranked()] == [("c", 1), ("a", 2), ("b", 2), ("d", 4)]


def test_hub_leaderboard_reads_the_api() -> None:
    class Api:
        def get_dataset_leaderboard(self, repo_id: str) -> list[Any]:
            assert repo_id == "org/bench"
            return [types.SimpleNamespace(rank=1, model_id="org/m", value=0.5, verified=False, notes="n", filename="f.yaml")]

    assert lb.hub_leaderboard("org/bench", api=Api()) == [
        {"rank": 1, "model_id": "org/m", "value": 0.5, "verified": False, "notes": "n", "filename": "f.yaml"}
    ]


# --- open_clip: pinned revisions load from a snapshot ----------------------------------------


@pytest.fixture()
def fake_open_clip(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import torch

    names: list[str] = []

    class Model(torch.nn.Module):
        def encode_image(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)

    def create_model_and_transforms(model_name: str) -> tuple[Any, Any, Any]:
        names.append(model_name)
        return Model(), None, lambda img: torch.zeros(3, 2, 2)

    module = types.ModuleType("open_clip")
    module.create_model_and_transforms = create_model_and_transforms  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "open_clip", module)
    return names


@pytest.fixture()
def fake_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import huggingface_hub

    calls: list[dict[str, Any]] = []
    snapshot = tmp_path / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_config.json").write_text("{}")

    def snapshot_download(repo_id: str, **kwargs: Any) -> str:
        calls.append({"repo_id": repo_id, **kwargs})
        if any(p.endswith(".safetensors") for p in kwargs["allow_patterns"]) and (tmp_path / "has_safetensors").exists():
            (snapshot / "open_clip_model.safetensors").write_bytes(b"x")
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    (tmp_path / "has_safetensors").touch()
    return calls


def test_pinned_bioclip_loads_the_snapshot_at_its_revision(fake_open_clip: list[str], fake_snapshot: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    encoder = fp_rank.load_encoder("bioclip-2", revision="0123abc", device="cpu")
    assert fake_open_clip[0].startswith("local-dir:") and fake_open_clip[0].endswith("0123abc")
    assert "@" not in fake_open_clip[0]
    call = fake_snapshot[0]
    assert call["repo_id"] == "imageomics/bioclip-2" and call["revision"] == "0123abc"
    assert call["local_files_only"] is True  # offline mode: the cache only
    assert "*.safetensors" in call["allow_patterns"] and "*.bin" not in call["allow_patterns"]
    assert encoder.revision == "0123abc" and encoder.model_id == "imageomics/bioclip-2"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    fp_rank.load_encoder("bioclip-2", revision="0123abc", device="cpu")
    assert fake_snapshot[-1]["local_files_only"] is False


def test_unpinned_and_local_open_clip_names(fake_open_clip: list[str], fake_snapshot: list[dict[str, Any]], tmp_path: Path) -> None:
    fp_rank.load_encoder("bioclip-2", device="cpu")
    folder = tmp_path / "bioclip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text("{}")
    fp_rank.load_encoder("bioclip-2", source=folder, revision="ignored", device="cpu")
    assert fake_open_clip == ["hf-hub:imageomics/bioclip-2", f"local-dir:{folder}"]
    assert fake_snapshot == []


def test_pinned_open_clip_without_safetensors(fake_open_clip: list[str], fake_snapshot: list[dict[str, Any]], tmp_path: Path) -> None:
    (tmp_path / "has_safetensors").unlink()
    with pytest.raises(EncoderError, match="no safetensors weights"):
        fp_rank.load_encoder("bioclip-2", revision="0123abc", device="cpu")
    assert fake_open_clip == []
    fp_rank.load_encoder("bioclip-2", revision="0123abc", device="cpu", use_safetensors=False)
    assert "*.bin" in fake_snapshot[-1]["allow_patterns"] and fake_open_clip[0].startswith("local-dir:")


def test_unfetchable_revision_is_an_encoder_error(fake_open_clip: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    import huggingface_hub.constants

    def fail(repo_id: str, **kwargs: Any) -> str:
        raise OSError("not in cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EncoderError, match=r"'imageomics/bioclip-2' at revision 'v9'.*offline mode is on"):
        fp_rank.load_encoder("bioclip-2", revision="v9", device="cpu")
    assert fake_open_clip == []


def test_leaderboard_has_one_board_per_encoder_and_gallery(demo_report: Report, tmp_path: Path) -> None:
    data = demo_report.to_dict()
    for r in data["results"]:
        r["encoder"] = "other-encoder"
    for q in data["queries"] + data["ceilings"]:
        q["encoder"] = "other-encoder"
    data["metadata"]["encoders"][0]["name"] = "other-encoder"
    other = tmp_path / "other.json"
    Report.from_dict(data).to_json(other)
    mine = tmp_path / "mine.json"
    demo_report.to_json(mine)
    board = lb.build_leaderboard([mine, other])
    assert [b.encoder for b in board.boards] == ["fp-rank-demo", "other-encoder"]
    written = board.write(tmp_path / "board")
    assert [p.name for p in written] == ["leaderboard.md", "leaderboard-1.png", "leaderboard-2.png"]
    md = written[0].read_text()
    assert md.count("## ") == 2 and "(leaderboard-2.png)" in md


@pytest.mark.slow
def test_a_wheel_install_builds_the_same_space(tmp_path: Path) -> None:
    """From a wheel (not the checkout), build-space writes the repository's own app.py and module, byte for byte."""
    import shutil
    import zipfile

    source = tmp_path / "source"  # a copy of what the wheel is built from (the build writes beside its sources)
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "app.py", "finer_personalization_rank.py"):
        shutil.copy2(REPO / name, source / name)
    for package in ("fp_rank", "space", "gallery_builders"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheel_dir.glob("fp_rank-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    assert {"fp_rank/shipped/app.py", "fp_rank/shipped/finer_personalization_rank.py"} <= names
    script = (
        "import sys, fp_rank, fp_rank._files as f\n"
        "from fp_rank.hub.space_build import build_space\n"
        f"assert fp_rank.__file__.startswith({str(site)!r}), fp_rank.__file__\n"
        f"print(f.repository_file('app.py'))\n"
        f"build_space({str(tmp_path / 'fp-rank')!r}, repo_id='my-org/fp-rank')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().startswith(str(site))  # read from the installed package, not the checkout
    assert (tmp_path / "fp-rank" / "app.py").read_bytes() == (REPO / "app.py").read_bytes()
    assert (tmp_path / "fp-rank" / "fp-rank.py").read_bytes() == (REPO / "finer_personalization_rank.py").read_bytes()
