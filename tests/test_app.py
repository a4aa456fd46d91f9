"""The Gradio Space (space/, run by app.py): its scoring function, limits, allow-lists, rendering, and the
launched page driven through gradio_client (one client, then two at once)."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fp_rank.errors import InputError
from fp_rank.views import strips as drawing
from space import render, service, settings
from space import uploads as intake
from tests.app_fixtures import (
    DEMO_ENCODER,
    expected_report,
    make_space,
    pick,
    png_header_only,
    running_app,
    save_records,
)

DEMO = settings.DEMO_GALLERY
SCARLET, GOLD_JAY = "finch_scarlet_crown", "jay_gold_cheek"


@pytest.fixture(scope="module")
def space(demo_gallery_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> service.ScoringSpace:
    """One Space for the module: galleries and encoders stay loaded between tests."""
    return make_space(demo_gallery_dir, tmp_path_factory.mktemp("space"))


def _score(space: service.ScoringSpace, files: list[Path], tmp_path: Path, **kwargs: Any) -> service.Outcome:
    options: dict[str, Any] = {"gallery": DEMO, "config": "all", "encoder": DEMO_ENCODER}
    options.update(kwargs)
    return space.score([str(f) for f in files], work_dir=tmp_path / "request", **options)


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _reasons(outcome: service.Outcome) -> dict[str, str]:
    return {p.name: p.reason for p in outcome.problems}


ROOT = Path(__file__).resolve().parents[1]


def test_space_modules_but_the_page_do_not_import_gradio() -> None:
    """Upload checks, scoring and rendering work without Gradio: only space.page imports it."""
    code = (
        "import sys, space.uploads, space.service, space.render, space.settings\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'gradio_client')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


# -- scoring -------------------------------------------------------------------------------------
def test_scores_equal_the_library_and_carry_rankings(space, tmp_path, demo_generated, demo_gallery_dir) -> None:
    files = save_records(pick(demo_generated, SCARLET, "faithful", 8), tmp_path / "batch")
    outcome = _score(space, files, tmp_path, identity=SCARLET, method="my-method")
    expected = expected_report(files, SCARLET, demo_gallery_dir, methods="my-method")

    assert outcome.error is None and outcome.problems == []
    report = outcome.report
    assert report.map == pytest.approx(expected.map, abs=1e-12)
    assert report.cmc[1] == pytest.approx(expected.cmc[1], abs=1e-12)
    assert [q["ap"] for q in report.queries] == pytest.approx([q["ap"] for q in expected.queries], abs=1e-12)
    assert [q["file"] for q in report.queries] == [f.name for f in files]
    assert report.methods == ["my-method"]
    for q in report.queries:
        assert len(q["top_k"]) == space.top_k
        assert [m["hit"] for m in q["top_k"]] == [m["identity"] == SCARLET for m in q["top_k"]]
    ci = report.results[0].intervals.get("map")
    assert ci is not None and ci["low"] <= report.map <= ci["high"]
    assert f"{report.map:.3f}" in render.headline_html(outcome)
    assert f"{ci['low']:.3f}–{ci['high']:.3f}" in render.headline_html(outcome)


def test_bad_files_are_named_and_the_rest_scored(space, tmp_path, demo_generated, demo_gallery_dir) -> None:
    good = save_records(pick(demo_generated, SCARLET, "faithful", 5), tmp_path / "batch")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    (tmp_path / "batch" / "cut.png").write_bytes(buf.getvalue()[:2000])  # header intact, pixel data cut
    (tmp_path / "batch" / "notes.png").write_text("not an image at all")
    (tmp_path / "batch" / "empty.png").write_bytes(b"")
    bad = [tmp_path / "batch" / n for n in ("cut.png", "notes.png", "empty.png")]

    outcome = _score(space, [good[0], *bad, *good[1:]], tmp_path, identity=SCARLET)

    reasons = _reasons(outcome)
    assert set(reasons) == {"cut.png", "notes.png", "empty.png"}
    assert "truncated" in reasons["cut.png"] or "corrupt" in reasons["cut.png"]
    assert "not a recognised image" in reasons["notes.png"]
    assert "empty" in reasons["empty.png"]
    assert outcome.report.results[0].n_queries == len(good)
    assert outcome.report.map == pytest.approx(expected_report(good, SCARLET, demo_gallery_dir).map, abs=1e-12)
    listed = {row["file"] for row in outcome.report.extras["space"]["not_scored"]}
    assert listed == set(reasons)
    status = render.status_markdown(outcome)
    assert all(name in status for name in reasons)


def test_pixel_limit_is_enforced_from_the_header_without_decoding(tmp_path, demo_generated) -> None:
    # These files hold a header and no pixel data: decoding them would fail with another message.
    (tmp_path / "wide.png").write_bytes(png_header_only(7_000, 7_000))
    (tmp_path / "vast.png").write_bytes(png_header_only(100_000, 100_000))
    small = save_records(pick(demo_generated, SCARLET, "faithful", 1), tmp_path)
    uploads, problems = intake.collect_uploads([tmp_path / "wide.png", tmp_path / "vast.png", *small], tmp_path / "w", settings.Limits())
    reasons = {p.name: p.reason for p in problems}
    assert "49.0 megapixels exceeds the limit of 40 megapixels" in reasons["wide.png"]
    assert "exceed the limit" in reasons["vast.png"]
    assert [u.name for u in uploads] == [small[0].name]

    uploads, problems = intake.collect_uploads(small, tmp_path / "w3", settings.Limits(), upload_root=tmp_path / "uploads")
    assert uploads == [] and "not a file uploaded through this page" in problems[0].reason

    tiny = settings.Limits(max_pixels=1_000)  # a 64x64 image has 4096 pixels
    uploads, problems = intake.collect_uploads(small, tmp_path / "w2", tiny)
    assert uploads == [] and "exceeds the limit" in problems[0].reason


def test_file_count_and_size_limits(space, tmp_path, demo_generated) -> None:
    files = save_records(pick(demo_generated, SCARLET, "faithful", 5), tmp_path / "batch")
    with pytest.raises(intake.BatchRefused, match="5 images; the limit is 3"):
        intake.collect_uploads(files, tmp_path / "w", settings.Limits(max_files=3))

    strict = service.ScoringSpace(space.galleries, space.encoders, limits=settings.Limits(max_files=3), work_root=tmp_path / "s")
    outcome = _score(strict, files, tmp_path, identity=SCARLET)
    assert outcome.report is None and "the limit is 3" in outcome.error
    assert "Nothing was scored" in render.headline_html(outcome)

    big = tmp_path / "batch" / "big.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(big)
    limit = 100_000
    assert big.stat().st_size > limit > max(f.stat().st_size for f in files)
    uploads, problems = intake.collect_uploads([*files, big], tmp_path / "w3", settings.Limits(max_file_bytes=limit))
    assert [p.name for p in problems] == ["big.png"] and "exceeds the limit" in problems[0].reason
    assert len(uploads) == len(files)


def test_zip_upload_refuses_unsafe_members_and_scores_the_rest(space, tmp_path, demo_generated, demo_gallery_dir) -> None:
    good = save_records(pick(demo_generated, SCARLET, "faithful", 3), tmp_path / "src")
    png = good[0].read_bytes()
    (tmp_path / "upload").mkdir()
    archive = _zip(
        tmp_path / "upload" / "batch.zip",
        {
            **{f"run/{p.name}": p.read_bytes() for p in good},
            "../evil.png": png,
            "/abs/evil2.png": png,
            "C:/evil3.png": png,
            "run/readme.txt": b"hello",
            "__MACOSX/run/._x.png": b"junk",
        },
        symlinks={"run/link.png": "/etc/passwd"},
    )
    outcome = _score(space, [archive], tmp_path, identity=SCARLET)

    reasons = _reasons(outcome)
    for name in ("../evil.png", "/abs/evil2.png", "C:/evil3.png"):
        assert "unsafe path" in reasons[f"batch.zip/{name}"]
    assert "symbolic link" in reasons["batch.zip/run/link.png"]
    assert "not an image" in reasons["batch.zip/run/readme.txt"]
    assert not any("__MACOSX" in n for n in reasons)
    assert not list(tmp_path.rglob("evil*.png"))
    assert [q["file"] for q in outcome.report.queries] == [f"run/{p.name}" for p in good]
    assert outcome.report.map == pytest.approx(expected_report(good, SCARLET, demo_gallery_dir).map, abs=1e-12)


def test_zip_sizes_are_checked_before_extraction(tmp_path) -> None:
    zeros = b"\0" * 2_000_000  # deflates to a few kB
    archive = _zip(tmp_path / "bomb.zip", {"bomb.png": zeros, "ok.png": png_header_only(8, 8)})
    assert archive.stat().st_size < 50_000
    uploads, problems = intake.collect_uploads([archive], tmp_path / "w", settings.Limits(max_file_bytes=1_000_000))
    assert [(p.name, "once decompressed" in p.reason) for p in problems] == [("bomb.zip/bomb.png", True)]
    assert [u.name for u in uploads] == ["ok.png"]
    # only ok.png was extracted; the bomb never reached the disk
    assert [f.stat().st_size for f in (tmp_path / "w").iterdir()] == [len(png_header_only(8, 8))]
    with pytest.raises(intake.BatchRefused, match="decompressed"):
        intake.collect_uploads([archive], tmp_path / "w2", settings.Limits(max_total_bytes=1_000_000))
    uploads, problems = intake.collect_uploads([archive], tmp_path / "w3", settings.Limits(max_archive_bytes=1_000))
    assert uploads == [] and "archive of" in problems[0].reason
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    uploads, problems = intake.collect_uploads([tmp_path / "fake.zip"], tmp_path / "w4", settings.Limits())
    assert problems[0].name == "fake.zip" and "not a readable .zip" in problems[0].reason


def test_mapping_csv_gives_identities_and_methods(space, tmp_path, demo_generated, demo_gallery_dir) -> None:
    a = save_records(pick(demo_generated, SCARLET, "faithful", 4), tmp_path / "batch")
    b = save_records(pick(demo_generated, GOLD_JAY, "drifting", 4), tmp_path / "batch")
    stray = save_records([d for d in demo_generated if d["identity"] == "tern_white_tail"][:1], tmp_path / "batch")
    lines = ["File,Identity,Method"] + [f"{p.name},{SCARLET},alpha" for p in a] + [f"sub/{p.name},{GOLD_JAY},beta" for p in b]
    lines.append(f"ghost.png,{SCARLET},alpha")
    mapping = tmp_path / "map.csv"
    mapping.write_text("\n".join(lines) + "\n", encoding="utf-8")

    outcome = _score(space, [*a, *b, *stray], tmp_path, mapping=str(mapping))

    assert _reasons(outcome) == {stray[0].name: "no identity: not in the mapping CSV and no identity chosen for the batch"}
    assert any("ghost.png" in note for note in outcome.notes)
    assert outcome.report.methods == ["alpha", "beta"]
    expected = expected_report([*a, *b], [SCARLET] * 4 + [GOLD_JAY] * 4, demo_gallery_dir, methods=["alpha"] * 4 + ["beta"] * 4)
    for method in ("alpha", "beta"):
        assert outcome.report[method].map == pytest.approx(expected[method].map, abs=1e-12)
    figure = render.identity_figure(outcome)
    assert len(figure.axes[0].patches) == 2 * 2  # two identities x two methods (absent pairs drawn as NaN)


def test_unknown_identities_are_reported_with_close_matches(space, tmp_path, demo_generated) -> None:
    files = save_records(pick(demo_generated, SCARLET, "faithful", 3), tmp_path / "batch")
    outcome = _score(space, files, tmp_path, identity="finch_scarlet_crwn")
    assert outcome.report is None and "none of the uploaded files" in outcome.error
    assert all("did you mean 'finch_scarlet_crown'" in r for r in _reasons(outcome).values())

    mapping = tmp_path / "map.csv"
    mapping.write_text(f"file,identity\n{files[0].name},finch_scarlet_crwn\n", encoding="utf-8")
    outcome = _score(space, files, tmp_path, identity=SCARLET, mapping=str(mapping))
    assert list(_reasons(outcome)) == [files[0].name]
    assert outcome.report.results[0].n_queries == 2

    jay_only = _score(space, files, tmp_path, config="jay", identity=SCARLET)
    assert jay_only.report is None
    assert all("config 'jay'" in r for r in _reasons(jay_only).values())
    assert {ident for _, ident in space.identities(DEMO, "jay")} == {i for i in space.gallery(DEMO).identities if i.startswith("jay_")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,identity\na.png,x\n", "lacks column"),
        ("file,identity\na.png,\n", "line 2"),
        ("file,identity\na.png,x\na.png,y\n", "already mapped on line 2"),
        ("file,identity\n", "lists no files"),
        ("", "is empty"),
    ],
)
def test_mapping_csv_errors_name_the_problem(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "map.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        intake.read_mapping(path, settings.Limits())


def test_mapping_csv_encoding_and_size(tmp_path) -> None:
    path = tmp_path / "map.csv"
    path.write_bytes(b"file,identity\n\xff\xfe.png,x\n")
    with pytest.raises(InputError, match="not UTF-8"):
        intake.read_mapping(path, settings.Limits())
    path.write_text("file,identity\n" + "a.png,x\n" * 10, encoding="utf-8")
    with pytest.raises(InputError, match="the limit is"):
        intake.read_mapping(path, settings.Limits(max_mapping_bytes=20))


# -- allow-lists and settings ---------------------------------------------------------------------
def test_only_allow_listed_galleries_and_encoders(space, tmp_path, demo_generated, demo_gallery_dir, monkeypatch) -> None:
    files = save_records(pick(demo_generated, SCARLET, "faithful", 1), tmp_path / "batch")
    wrong_gallery = _score(space, files, tmp_path, gallery=str(demo_gallery_dir), identity=SCARLET)
    assert wrong_gallery.report is None and "unknown gallery" in wrong_gallery.error
    wrong_encoder = _score(space, files, tmp_path, encoder="facebook/dinov2-base", identity=SCARLET)
    assert wrong_encoder.report is None and "unknown encoder" in wrong_encoder.error and DEMO_ENCODER in wrong_encoder.error
    with pytest.raises(InputError, match="trust_remote_code"):
        service.ScoringSpace(space.galleries, {"re-id": "miewid"})

    monkeypatch.setenv("FP_RANK_SPACE_ENCODERS", "dinov2-base, miewid")
    assert settings.encoders_from_env() == {DEMO_ENCODER: DEMO_ENCODER, "dinov2-base": "dinov2-base"}
    monkeypatch.setenv("FP_RANK_SPACE_ENCODERS", '{"DINOv2 (base)": "dinov2-base", "MiewID": "miewid"}')
    assert settings.encoders_from_env() == {DEMO_ENCODER: DEMO_ENCODER, "DINOv2 (base)": "dinov2-base"}
    monkeypatch.setenv("FP_RANK_SPACE_GALLERIES", '{"CUB wrens": "org/fp-rank-cub"}')
    assert list(settings.galleries_from_env()) == [DEMO, "CUB wrens"]
    monkeypatch.setenv("FP_RANK_SPACE_GALLERIES", "org/fp-rank-cub")
    with pytest.raises(InputError, match="not valid JSON"):
        settings.galleries_from_env()


def test_limits_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("FP_RANK_SPACE_MAX_FILES", "7")
    monkeypatch.setenv("FP_RANK_SPACE_MAX_FILE_MB", "3")
    limits = settings.Limits.from_env()
    assert (limits.max_files, limits.max_file_bytes, limits.max_pixels) == (7, 3 * settings.MB, settings.Limits().max_pixels)
    monkeypatch.setenv("FP_RANK_SPACE_MAX_FILES", "many")
    with pytest.raises(InputError, match="FP_RANK_SPACE_MAX_FILES"):
        settings.Limits.from_env()


# -- rendering ---------------------------------------------------------------------------------------
def test_strips_mark_hits_and_misses(space, tmp_path, demo_generated) -> None:
    files = save_records(pick(demo_generated, GOLD_JAY, "drifting", 4), tmp_path / "batch")
    outcome = _score(space, files, tmp_path, identity=GOLD_JAY)
    drawn = render.strips(outcome, space)
    assert len(drawn) == len(files)
    cell = drawing.THUMB + 2 * drawing._BORDER
    top = drawing._PAD + 24
    seen = set()
    for strip, query in zip(drawn, outcome.report.queries):
        assert strip.hits == tuple(m["hit"] for m in query["top_k"])
        pixels = strip.image.load()
        for rank, hit in enumerate(strip.hits):
            x = drawing._PAD + cell + drawing._SEP + rank * (cell + drawing._GAP)
            assert pixels[x + 1, top + cell // 2] == (drawing.HIT_COLOUR if hit else drawing.MISS_COLOUR)
            seen.add(hit)
        assert ("Same identity (hit) at rank" in strip.caption) == any(strip.hits)
    assert seen == {True, False}  # drifting images hit some ranks and miss others

    page = render.strips_html(drawn, total=len(drawn))
    assert page.count("<img ") == len(drawn)
    table = render.query_table(outcome)
    assert list(table["file"]) == [f.name for f in files]
    assert list(table["AP"]) == [f"{q['ap']:.3f}" for q in outcome.report.queries]


def test_user_text_is_escaped_in_html() -> None:
    strip = drawing.Strip(Image.new("RGB", (4, 4)), "<script>alert(1)</script>.png", "x <b>y</b>", (True,))
    page = render.strips_html([strip], total=1)
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>y</b>" not in page


def test_sample_images_score_with_their_mapping(space, tmp_path) -> None:
    paths, mapping = service.write_samples(tmp_path / "samples")
    outcome = _score(space, [Path(p) for p in paths], tmp_path, mapping=mapping)
    assert outcome.problems == [] and outcome.report.methods == sorted(service.SAMPLE_METHODS)
    assert outcome.report.results[0].n_queries == len(paths) // 2


def test_clip_t_is_scored_and_shown_when_the_owner_names_a_checkpoint(demo_gallery_dir: Path, tmp_path: Path) -> None:
    from tests.model_fixtures import make_tiny_clip_with_text

    clip_dir = make_tiny_clip_with_text(tmp_path / "clip")
    space = make_space(demo_gallery_dir, tmp_path / "work", clip_t=str(clip_dir), n_boot=0)
    paths, mapping = service.write_samples(tmp_path / "samples")
    outcome = _score(space, [Path(p) for p in paths], tmp_path, mapping=mapping)
    assert all(q["prompt"] for q in outcome.report.queries)
    assert all(q["clip_t"] is not None and -1 <= q["clip_t"] <= 1 for q in outcome.report.queries)
    assert "fp-clip_t" in render.headline_html(outcome) and "CLIP-T" in render.query_table(outcome)
    # the owner's folder never reaches the visitor
    assert str(clip_dir) not in json.dumps(space.scrub_value(outcome.report.to_dict()))
    plain = make_space(demo_gallery_dir, tmp_path / "work2", n_boot=0)
    assert "fp-clip_t" not in render.headline_html(_score(plain, [Path(p) for p in paths], tmp_path / "b", mapping=mapping))


# -- the launched page through gradio_client ---------------------------------------------------------
@pytest.fixture(scope="module")
def server(demo_gallery_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    space = make_space(demo_gallery_dir, tmp_path_factory.mktemp("served"))
    with running_app(space) as url:
        yield url, space


def _call(url: str, download: Path, files: list[Path], identity: str | None, method: str, mapping: Path | None = None) -> tuple[Any, ...]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=str(download), analytics_enabled=False)
    return client.predict(
        [handle_file(str(f)) for f in files],
        DEMO,
        "all",
        identity,
        method,
        handle_file(str(mapping)) if mapping else None,
        DEMO_ENCODER,
        api_name="/score",
    )


def test_client_scores_an_upload(server, tmp_path, demo_generated, demo_gallery_dir) -> None:
    url, space = server
    good = save_records(pick(demo_generated, SCARLET, "faithful", 5), tmp_path / "batch")
    zipped = save_records(pick(demo_generated, SCARLET, "faithful", 7)[5:], tmp_path / "zipped")
    archive = _zip(tmp_path / "more.zip", {**{p.name: p.read_bytes() for p in zipped}, "../escape.png": zipped[0].read_bytes()})
    broken = tmp_path / "batch" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    status, headline, json_path, csv_path, strip_html, table, plot = _call(url, tmp_path / "dl", [*good, broken, archive], SCARLET, "run-1")

    report = json.loads(Path(json_path).read_text(encoding="utf-8"))
    expected = expected_report([*good, *zipped], SCARLET, demo_gallery_dir, methods="run-1")
    assert report["results"][0]["map"] == pytest.approx(expected.map, abs=1e-12)
    assert {q["file"] for q in report["queries"]} == {p.name for p in [*good, *zipped]}
    assert f"{expected.map:.3f}" in headline
    assert "broken.png" in status and "more.zip/../escape.png" in status
    assert Path(csv_path).read_text(encoding="utf-8").count("\n") == len(good) + len(zipped) + 1
    assert strip_html.count("<img ") == len(good) + len(zipped)
    assert len(table["data"]) == len(good) + len(zipped)
    assert plot is not None
    request_dirs = list(space.work_root.glob("req-*"))
    assert request_dirs and all(not (d / "inputs").exists() for d in request_dirs)  # uploads cleaned up


def test_a_request_cannot_name_files_on_the_server(server, tmp_path, demo_generated) -> None:
    """A hand-made API request naming a server file (not uploaded) is refused, not scored."""
    import httpx

    url, space = server
    on_server = save_records(pick(demo_generated, SCARLET, "faithful", 1), tmp_path / "server-side")[0]
    crafted = {"path": str(on_server), "meta": {"_type": "gradio.FileData"}, "orig_name": on_server.name}
    csv_on_server = tmp_path / "server-side" / "map.csv"
    csv_on_server.write_text(f"file,identity\n{on_server.name},{SCARLET}\n", encoding="utf-8")
    crafted_csv = {"path": str(csv_on_server), "meta": {"_type": "gradio.FileData"}, "orig_name": "map.csv"}
    before = set(space.work_root.glob("req-*"))
    for files, mapping in (([crafted], None), ([], crafted_csv)):
        data = [files, DEMO, "all", SCARLET, "m", mapping, DEMO_ENCODER]
        event = httpx.post(f"{url}gradio_api/call/score", json={"data": data}, timeout=30).json()["event_id"]
        stream = httpx.get(f"{url}gradio_api/call/score/{event}", timeout=60).text
        assert "event: error" in stream and "event: complete" not in stream
    assert set(space.work_root.glob("req-*")) == before  # the scoring function never ran


def test_two_clients_at_once_get_their_own_results(server, tmp_path, demo_generated, demo_gallery_dir) -> None:
    url, _ = server
    jobs = {
        "alpha": (SCARLET, save_records(pick(demo_generated, SCARLET, "faithful", 8), tmp_path / "a")),
        "beta": (GOLD_JAY, save_records(pick(demo_generated, GOLD_JAY, "drifting", 8), tmp_path / "b")),
    }
    barrier = threading.Barrier(len(jobs))
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(method: str) -> None:
        identity, files = jobs[method]
        try:
            barrier.wait(timeout=30)
            results[method] = _call(url, tmp_path / f"dl-{method}", files, identity, method)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for method, (identity, files) in jobs.items():
        report = json.loads(Path(results[method][2]).read_text(encoding="utf-8"))
        expected = expected_report(files, identity, demo_gallery_dir, methods=method)
        assert [r["method"] for r in report["results"]] == [method]
        assert report["results"][0]["map"] == pytest.approx(expected.map, abs=1e-12)
        assert {q["identity"] for q in report["queries"]} == {identity}
        assert sorted(q["file"] for q in report["queries"]) == sorted(f.name for f in files)
    assert results["alpha"][2] != results["beta"][2]


# -- leak marks, owner labels, units (page polish) ------------------------------------------------------
def test_copies_of_real_images_are_counted_and_marked(space, tmp_path, demo_generated, demo_gallery_dir) -> None:
    from tests.test_app_browser import copy_of_a_gallery_image

    files = save_records(pick(demo_generated, SCARLET, "faithful", 3), tmp_path / "batch")
    files.append(copy_of_a_gallery_image(demo_gallery_dir, SCARLET, tmp_path / "batch" / "copy.png"))
    outcome = _score(space, files, tmp_path, identity=SCARLET, method="m")

    flagged = [q["file"] for q in outcome.report.queries if q["leak"] is not None]
    assert flagged == ["copy.png"]
    assert outcome.report.leak_counts()["m"]["scored"] == 1
    cards = render.headline_html(outcome)
    assert cards.count('class="fp-leak"') == 1 and "1 of 4 image(s) flagged as copies of real images" in cards
    assert render.LEAK_SENTENCE in cards
    table = render.query_table(outcome)
    assert [cell.startswith("⚠ ") for cell in table["file"]] == [False, False, False, True]
    drawn = render.strips(outcome, space)
    # strips are ordered by method, identity and file name (not upload order): the copy's strip is marked
    assert [getattr(s, "leak", None) is not None for s in drawn] == [s.title.startswith("copy.png") for s in drawn]
    assert sum(getattr(s, "leak", None) is not None for s in drawn) == 1
    page = render.strips_html(drawn, total=len(drawn))
    assert page.count("fp-strip-leak") == 1 and "1 strip(s) above" in page

    clean = _score(space, files[:3], tmp_path, identity=SCARLET, method="m")
    assert "fp-leak" not in render.headline_html(clean) and "fp-strip-leak" not in render.strips_html(render.strips(clean, space), 3)


def test_cards_name_the_encoder_by_its_owner_label(demo_gallery_dir, tmp_path, demo_generated) -> None:
    folder = str(tmp_path / "server" / "models" / "secret-encoder")
    labelled = service.ScoringSpace({DEMO: str(demo_gallery_dir)}, {"Demo descriptor": DEMO_ENCODER}, n_boot=0,
                                    work_root=tmp_path / "w")
    files = save_records(pick(demo_generated, SCARLET, "faithful", 2), tmp_path / "batch")
    outcome = _score(labelled, files, tmp_path, identity=SCARLET, method="m", encoder="Demo descriptor")
    outcome.report.results[0].encoder = folder  # what a folder-loaded encoder reports as its name
    cards = render.headline_html(outcome)
    assert "m · Demo descriptor · 2 image(s) scored" in cards and folder not in cards


def test_table_leaves_out_metrics_no_image_has_and_marks_the_top1(space, tmp_path, demo_generated) -> None:
    files = save_records(pick(demo_generated, GOLD_JAY, "drifting", 3), tmp_path / "batch")
    outcome = _score(space, files, tmp_path, identity=GOLD_JAY)
    table = render.query_table(outcome)
    assert "CLIP-T" not in table  # no prompts were given: like the cards, no empty column
    assert "CLIP-T" in render.TABLE_COLUMNS
    for cell, q in zip(table["top-1 identity"], outcome.report.queries):
        assert cell.startswith("✓ " if q["top1_identity"] == q["identity"] else "✗ ")


def test_sizes_are_megabytes_of_a_million_bytes() -> None:
    assert settings.MB == 1_000_000
    assert settings.mb_text(20_000_000) == "20 MB" and settings.mb_text(2_500_000) == "2.5 MB"
    assert settings.mb_text(4_000) == "0.004 MB"
    assert "20 MB" in settings.Limits().describe() and "MiB" not in settings.Limits().describe()
