"""The gallery-draw spread: redraws of the gallery images from its holdout images (issue 23, part 3).
The simulation that checks the reported spread against the true one is benchmarks/bench_gallery_draws.py."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import fp_rank
from fp_rank.cli import main
from fp_rank.errors import InputError
from fp_rank.evaluation.gallery_draws import population_factor, redraw_maps, summarise_draws
from fp_rank.ranking.metrics import rank_metrics_from_embeddings
from tests.gallery_fixtures import png_bytes, simple_gallery


@pytest.fixture(scope="module")
def drawn(demo_gallery_dir: Path, demo_generated: list[dict]) -> fp_rank.Report:
    return fp_rank.evaluate([r["image"] for r in demo_generated], [r["identity"] for r in demo_generated],
                            gallery=str(demo_gallery_dir), methods=[r["method"] for r in demo_generated],
                            encoder="fp-rank-demo", progress=False, gallery_draws=12, gallery_draw_seed=3)


def test_the_undrawn_gallery_gives_the_headline_map_and_the_spread_is_recorded(drawn: fp_rank.Report) -> None:
    entry = drawn.extras["gallery_draws"]
    assert entry["n_draws"] == 12 and entry["seed"] == 3 and "holdout" in entry["rule"]
    per = entry["encoders"]["fp-rank-demo"]
    assert per["pool"] == {"identities": 15, "identities_with_extra_images": 15, "gallery_images": 150, "pool_images": 225}
    assert per["population_factor"] == pytest.approx(np.sqrt(14 / 5))
    for result in drawn.results:
        spread = per["per_method"][result.method]
        assert spread["observed"] == pytest.approx(result.map, abs=1e-12)
        assert 0 < spread["sd"] < spread["sd_population"] and spread["low"] <= spread["mean"] <= spread["high"]
    assert list(per["per_method"]) == ["faithful", "detail-loss", "drifting"]  # best first
    first = per["pairs"][0]
    assert (first["a"], first["b"], first["survives"]) == ("faithful", "detail-loss", True)


def test_redraws_are_seeded(demo_gallery_dir: Path, demo_generated: list[dict], drawn: fp_rank.Report) -> None:
    subset = [r for r in demo_generated if r["method"] == "faithful"]

    def spread(seed: int) -> dict:
        report = fp_rank.evaluate([r["image"] for r in subset], [r["identity"] for r in subset], gallery=str(demo_gallery_dir),
                                  methods=[r["method"] for r in subset], encoder="fp-rank-demo", progress=False,
                                  gallery_draws=5, gallery_draw_seed=seed, ceilings=False)
        return report.extras["gallery_draws"]["encoders"]["fp-rank-demo"]["per_method"]

    assert spread(1) == spread(1) and spread(1) != spread(2)


def test_every_redraw_is_one_of_the_galleries_the_pool_allows() -> None:
    """Two identities, each with 1 gallery and 1 holdout image: 4 possible galleries, scored by hand."""
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((4, 6))
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    pool_ids = np.array(["a", "b", "a", "b"], dtype=object)
    in_gallery = np.array([True, True, False, False])
    queries = rng.standard_normal((6, 6))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    q_ids = np.array(["a", "a", "b", "b", "a", "b"], dtype=object)
    q_methods = np.array(["m", "m", "m", "m", "n", "n"], dtype=object)
    groups = np.array(["g"] * 6, dtype=object)
    possible = []
    for ia, ib in itertools.product((0, 2), (1, 3)):
        res = rank_metrics_from_embeddings(queries, pool[[ia, ib]], q_ids, pool_ids[[ia, ib]], cmc_ks=(1,))
        possible.append((float(np.mean(res.ap[q_methods == "m"])), float(np.mean(res.ap[q_methods == "n"]))))
    observed, draws, pool_info = redraw_maps(queries, q_ids, groups, q_methods, pool, pool_ids, np.array(["g"] * 4, dtype=object),
                                             in_gallery, n_draws=40, seed=0)
    assert (observed["m"], observed["n"]) == pytest.approx(possible[0])
    seen = {(round(m, 12), round(n, 12)) for m, n in zip(draws["m"], draws["n"])}
    allowed = {(round(m, 12), round(n, 12)) for m, n in possible}
    assert seen <= allowed and len(seen) > 1
    assert pool_info["pool_images"] == 4 and pool_info["gallery_images"] == 2


def test_population_factor_and_when_it_is_not_given() -> None:
    assert population_factor([(15, 10), (15, 10)]) == pytest.approx(np.sqrt(14 / 5))
    assert population_factor([(15, 10), (10, 10)]) is None
    summary = summarise_draws({"a": 0.5, "b": 0.4}, {"a": np.array([0.5, 0.52, 0.48]), "b": np.array([0.4, 0.41, 0.39])}, None)
    assert summary["per_method"]["a"]["sd_population"] is None
    assert summary["pairs"][0]["survives"] is True and summary["pairs"][0]["same_sign"] == 1.0
    close = summarise_draws({"a": 0.5, "b": 0.49}, {"a": np.array([0.5, 0.45, 0.55]), "b": np.array([0.49, 0.5, 0.48])}, 1.5)
    assert close["pairs"][0]["survives"] is False


def test_a_gallery_without_holdout_says_it_cannot_be_redrawn(tmp_path: Path) -> None:
    gallery = simple_gallery(tmp_path / "g", n_ids=3, per_id=3)
    report = fp_rank.evaluate([png_bytes(k) for k in range(6)], ["id0", "id0", "id1", "id1", "id2", "id2"],
                              gallery=str(gallery), encoder="fp-rank-demo", progress=False, gallery_draws=5)
    entry = report.extras["gallery_draws"]["encoders"]["fp-rank-demo"]
    assert "per_method" not in entry and "cannot be redrawn" in entry["note"]
    assert "cannot be redrawn" in fp_rank.format_table(report)


def test_the_seed_needs_draws_and_the_cli_shows_the_spread(demo_gallery_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="gallery_draw_seed only applies with gallery_draws"):
        fp_rank.evaluate([png_bytes(1)], ["x"], gallery=str(demo_gallery_dir), gallery_draw_seed=4)
    from fp_rank.demo.run import export_generated

    manifest = export_generated(tmp_path / "run", seed=0)
    code = main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(manifest), "--encoder", "fp-rank-demo",
                 "--gallery-draws", "4", "--no-progress", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0 and "gallery draw (fp-rank-demo, 4 redraws from 225 images for 150 gallery places)" in out
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| faithful | 0.480 | [0.431, 0.530] | ±" in summary
    loaded = fp_rank.Report.load(tmp_path / "out" / "report.json")
    assert loaded.extras["gallery_draws"]["n_draws"] == 4


def test_the_undrawn_gallery_gives_the_headline_map_when_missing_identities_score_zero(tmp_path: Path) -> None:
    from tests.gallery_fixtures import write_gallery

    gallery_rows = [{"image": png_bytes(100 + k), "identity": f"id{k % 3}", "group": "g"} for k in range(9)]
    holdout = [{"image": png_bytes(200 + k), "identity": f"id{k % 3}", "group": "g"} for k in range(6)]
    holdout.append({"image": png_bytes(300), "identity": "id9", "group": "g"})  # known to the gallery, not in its split
    reference = [{"image": png_bytes(400 + k), "identity": f"id{k}", "group": "g"} for k in range(3)]
    gallery = write_gallery(tmp_path / "g", {"gallery": gallery_rows, "reference": reference, "holdout": holdout})
    report = fp_rank.evaluate([png_bytes(k) for k in range(8)], ["id0", "id1", "id2", "id9"] * 2, gallery=str(gallery),
                              encoder="fp-rank-demo", progress=False, gallery_draws=6, on_missing="zero")
    spread = report.extras["gallery_draws"]["encoders"]["fp-rank-demo"]["per_method"]["generated"]
    assert spread["observed"] == pytest.approx(report.map, abs=1e-12)
