"""End to end: fp_rank.evaluate, the cache, the report, and the evaluate-module paths agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fp_rank
from fp_rank import InputError
from fp_rank.reporting.report import Report, validate_report

REPO = Path(__file__).resolve().parents[1]


def _subset(records: list[dict], method: str, n: int) -> list[dict]:
    return [r for r in records if r["method"] == method][:n]


def test_demo_methods_are_separated_by_map_more_than_by_pairwise(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    report = fp_rank.evaluate(
        [r["image"] for r in demo_generated],
        [r["identity"] for r in demo_generated],
        gallery=str(demo_gallery_dir),
        encoder="fp-rank-demo",
        methods=[r["method"] for r in demo_generated],
        progress=False,
    )
    faithful, drifting = report["faithful"], report["drifting"]
    assert faithful.map > drifting.map + 0.1
    assert faithful.map > faithful.chance_map
    rel_map = (faithful.map - drifting.map) / faithful.map
    rel_pair = (faithful.pairwise_similarity - drifting.pairwise_similarity) / faithful.pairwise_similarity
    assert rel_map > 3 * rel_pair
    # macro headline is the mean of per-group mAPs; micro the mean over queries
    assert faithful.map == pytest.approx(np.mean(list(faithful.map_per_group.values())))
    aps = [q["ap"] for q in report.queries if q["method"] == "faithful"]
    assert faithful.map_micro == pytest.approx(np.mean(aps))
    assert faithful.ceiling_split == "holdout" and faithful.ceiling_map is not None
    assert faithful.normalised == pytest.approx(
        (faithful.map - faithful.chance_map) / (faithful.ceiling_map - faithful.chance_map)
    )
    validate_report(report)


def test_second_evaluation_encodes_zero_gallery_images(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    first = _subset(demo_generated, "faithful", 20)
    second = _subset(demo_generated, "drifting", 20)
    r1 = fp_rank.evaluate([r["image"] for r in first], [r["identity"] for r in first], gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False)
    r2 = fp_rank.evaluate([r["image"] for r in second], [r["identity"] for r in second], gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False)
    assert r1.metadata["cache"]["gallery_images_encoded"] > 0
    assert r2.metadata["cache"]["gallery_images_encoded"] == 0
    assert r2.metadata["cache"]["gallery_images_from_cache"] == r1.metadata["cache"]["gallery_images_encoded"]
    r3 = fp_rank.evaluate([r["image"] for r in second], [r["identity"] for r in second], gallery=str(demo_gallery_dir), encoder="fp-rank-demo", cache=False, progress=False)
    assert r3.metadata["cache"]["gallery_images_from_cache"] == 0
    assert r3.map == r2.map


def test_report_records_provenance(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    recs = _subset(demo_generated, "faithful", 10)
    report = fp_rank.evaluate([r["image"] for r in recs], [r["identity"] for r in recs], gallery=str(demo_gallery_dir), progress=False)
    meta = report.metadata
    assert meta["protocol_version"] == fp_rank.PROTOCOL_VERSION
    assert meta["fp_rank_version"] == fp_rank.__version__
    # the gallery card's recommended encoder was used since none was named
    assert meta["encoders"][0]["name"] == "fp-rank-demo" and meta["encoders"][0]["is_demo"] is True
    assert meta["encoders"][0]["revision"] and meta["encoders"][0]["dtype"] == "float32"
    assert len(meta["gallery"]["fingerprint"]) == 64 and meta["gallery"]["config"] == "all"


def test_group_config_and_real_encoder(demo_gallery_dir: Path, demo_generated: list[dict], tiny_dinov2_dir: Path) -> None:
    recs = [r for r in demo_generated if r["identity"].startswith("jay_")][:12]
    report = fp_rank.evaluate(
        [r["image"] for r in recs], [r["identity"] for r in recs], gallery=str(demo_gallery_dir),
        gallery_config="jay", encoder=str(tiny_dinov2_dir), progress=False, top_k=3,
    )
    assert set(report.map_per_group) == {"jay"}
    assert report.metadata["gallery"]["splits"]["gallery"] == 50
    assert all(len(q["top_k"]) == 3 for q in report.queries)
    assert 0.0 <= report.map <= 1.0 and 1 in report.cmc
    with pytest.raises(InputError, match="not in gallery"):
        fp_rank.evaluate([recs[0]["image"]], ["finch_gold_cheek"], gallery=str(demo_gallery_dir), gallery_config="jay", progress=False)


def test_unknown_identity_lists_close_matches(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    with pytest.raises(InputError, match="did you mean 'jay_gold_cheek'"):
        fp_rank.evaluate([demo_generated[0]["image"]], ["jay_gold_cheeks"], gallery=str(demo_gallery_dir), progress=False)


@pytest.mark.parametrize(
    ("generated", "identities", "message"),
    [
        ([], [], "empty"),
        (["a.png", "b.png"], ["x"], "identities has 1 labels"),
        (["a.png"], [3], "must be strings"),
    ],
)
def test_input_errors(demo_gallery_dir: Path, generated: list, identities: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        fp_rank.evaluate(generated, identities, gallery=str(demo_gallery_dir), progress=False)


def test_several_encoders_and_statistics(demo_gallery_dir: Path, demo_generated: list[dict], tiny_dinov2_dir: Path, tmp_path: Path) -> None:
    recs = [r for r in demo_generated if r["identity"].startswith("finch_")]
    report = fp_rank.evaluate(
        [r["image"] for r in recs], [r["identity"] for r in recs], gallery=str(demo_gallery_dir),
        encoder=["fp-rank-demo", str(tiny_dinov2_dir)], methods=[r["method"] for r in recs], progress=False,
    )
    assert len(report.encoders) == 2 and len(report.results) == 6
    with pytest.raises(InputError, match="several results"):
        _ = report.map
    fp_rank.add_statistics(report, n_boot=200, seed=1)
    agreement = report.extras["encoder_agreement"]
    assert set(agreement["rankings"]) == set(report.encoders)
    res = report.result("faithful", "fp-rank-demo")
    assert res.intervals["map"]["low"] <= res.map <= res.intervals["map"]["high"]
    cmp = fp_rank.compare(report, "faithful", "drifting", encoder="fp-rank-demo", n_boot=200, n_permutations=2000)
    assert cmp.n_shared_identities == 5 and cmp.difference == pytest.approx(
        report.result("faithful", "fp-rank-demo").map - report.result("drifting", "fp-rank-demo").map
    )
    path = tmp_path / "report.json"
    report.to_json(path)
    loaded = Report.load(path)
    validate_report(json.loads(path.read_text()))
    assert loaded.result("faithful", "fp-rank-demo").map == res.map
    csv_text = report.to_csv()
    assert csv_text.splitlines()[0].startswith("encoder,method,identity,group,prompt,seed,file,ap")
    assert len(csv_text.splitlines()) == 1 + len(report.queries)
    md = fp_rank.to_markdown(report)
    assert md.count("| faithful |") == 2
    figures = fp_rank.plot(report, tmp_path / "figs")
    assert all(p.exists() and p.stat().st_size > 2000 for p in figures)


def test_evaluate_module_paths_agree_with_the_library(demo_gallery_dir: Path, tmp_path: Path) -> None:
    """evaluate.load("fp-rank") (installed into evaluate's cache) and by path, in a fresh offline process."""
    script = textwrap.dedent(
        f"""
        import json, evaluate, fp_rank
        from fp_rank.metric import install_evaluate_module
        from fp_rank.demo.synthetic import generated_records
        install_evaluate_module()
        recs = [r for r in generated_records(0) if r["method"] == "drifting"][:24]
        images = [r["image"] for r in recs]
        labels = [r["identity"] for r in recs]
        kw = dict(gallery={str(demo_gallery_dir)!r}, encoder="fp-rank-demo")
        direct = fp_rank.evaluate(images, labels, progress=False, **kw)
        by_name = evaluate.load("fp-rank").compute(predictions=images, references=labels, **kw)
        by_path = evaluate.load({str(REPO / "finer_personalization_rank.py")!r}).compute(predictions=images, references=labels, **kw)
        print(json.dumps([direct.map, by_name["map"], by_path["map"], direct.cmc[1], by_name["cmc@1"]]))
        """
    )
    env = {**os.environ, "HF_EVALUATE_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    direct, by_name, by_path, cmc_direct, cmc_name = json.loads(out.stdout.strip().splitlines()[-1])
    assert direct == by_name == by_path
    assert cmc_direct == cmc_name


def test_install_metric_copies_the_repository_module(tmp_path: Path) -> None:
    from fp_rank.metric import install_evaluate_module

    installed = install_evaluate_module(tmp_path / "modules")
    assert installed.read_bytes() == (REPO / "finer_personalization_rank.py").read_bytes()


def _gallery_copy(gallery_dir: Path, k: int) -> bytes:
    return fp_rank.load_gallery(str(gallery_dir), "jay").gallery.images[k]["bytes"]


def test_same_named_callable_encoders_are_refused(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    def make(scale: float):
        return lambda images: np.stack([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) * scale + 1 for im in images])

    recs = _subset(demo_generated, "faithful", 4)
    with pytest.raises(InputError, match="both named"):
        fp_rank.evaluate([r["image"] for r in recs], [r["identity"] for r in recs], gallery=str(demo_gallery_dir),
                         encoder=[make(1.0), make(2.0)], progress=False)


def test_on_missing_skip_leaves_out_unknown_identities(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    recs = _subset(demo_generated, "faithful", 6)
    images = [r["image"] for r in recs]
    labels = [r["identity"] for r in recs]
    with pytest.raises(InputError, match="not in gallery"):
        fp_rank.evaluate(images, labels[:5] + ["no_such_bird"], gallery=str(demo_gallery_dir), progress=False)
    report = fp_rank.evaluate(images, labels[:5] + ["no_such_bird"], gallery=str(demo_gallery_dir), on_missing="skip", progress=False)
    clean = fp_rank.evaluate(images[:5], labels[:5], gallery=str(demo_gallery_dir), progress=False)
    assert report.single.n_missing == 1 and report.single.n_queries == 5
    assert report.metadata["missing"][0]["identity"] == "no_such_bird"
    assert report.map == clean.map
    with pytest.raises(InputError, match="belong to no group"):  # "zero" needs the label's group
        fp_rank.evaluate(images, labels[:5] + ["no_such_bird"], gallery=str(demo_gallery_dir), on_missing="zero",
                         progress=False)


def test_a_method_with_nothing_scored_stays_in_the_report(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    recs = [r for r in demo_generated if r["method"] == "faithful" and r["identity"].startswith("jay_")][:4]
    images = [r["image"] for r in recs] + [b"not an image", b"\x89PNG broken"]
    labels = [r["identity"] for r in recs] + [recs[0]["identity"]] * 2
    methods = ["A"] * 4 + ["B"] * 2
    report = fp_rank.evaluate(images, labels, gallery=str(demo_gallery_dir), methods=methods, on_invalid="skip", progress=False)
    assert report.methods == ["A", "B"]
    assert report["B"].n_queries == 0 and report["B"].n_skipped == 2 and np.isnan(report["B"].map)
    validate_report(report)
    # copies of gallery photos, excluded as leaks
    copies = [_gallery_copy(demo_gallery_dir, 0), _gallery_copy(demo_gallery_dir, 1)]
    jay = fp_rank.load_gallery(str(demo_gallery_dir), "jay").gallery.identities
    report = fp_rank.evaluate(
        [r["image"] for r in recs] + copies, [r["identity"] for r in recs] + [str(jay[0]), str(jay[1])],
        gallery=str(demo_gallery_dir), methods=methods, leaks="exclude", progress=False,
    )
    assert report["B"].n_excluded == 2 and report["B"].n_queries == 0
    assert report["A"].n_excluded == 0 and report.metadata["leakage"]["n_excluded"] == 2
    assert "leak_split" in report.to_csv().splitlines()[0]


def test_ceiling_falls_back_to_reference_per_group(tmp_path: Path) -> None:
    from tests.gallery_fixtures import png_bytes, write_gallery

    def rows(group: str, ident: str, seeds: range) -> list[dict]:
        return [{"image": png_bytes(s), "identity": ident, "group": group} for s in seeds]

    splits = {
        "gallery": rows("g1", "a", range(0, 3)) + rows("g1", "b", range(3, 6)) + rows("g2", "c", range(6, 9)) + rows("g2", "d", range(9, 12)),
        "reference": rows("g1", "a", range(20, 22)) + rows("g1", "b", range(22, 24)) + rows("g2", "c", range(24, 26)) + rows("g2", "d", range(26, 28)),
        "holdout": rows("g1", "a", range(40, 42)) + rows("g1", "b", range(42, 44)),  # no holdout for g2
    }
    folder = write_gallery(tmp_path / "gal", splits)
    images = [png_bytes(s) for s in range(60, 64)]
    report = fp_rank.evaluate(images, ["a", "b", "c", "d"], gallery=str(folder), encoder="fp-rank-demo", progress=False)
    res = report.single
    assert res.ceiling_split == "mixed"
    assert res.ceiling_split_per_group == {"g1": "holdout", "g2": "reference"}
    by = {(c["split"], c["group"]): c["map"] for c in report.ceilings}
    assert res.ceiling_map == pytest.approx((by[("holdout", "g1")] + by[("reference", "g2")]) / 2)
