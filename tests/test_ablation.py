"""Gallery-selection variants (random and kmeans galleries, the paper's ablation) and ``fp-rank ablate``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fp_rank
from fp_rank.analysis.ablation import ablate
from fp_rank.cli import main
from fp_rank.errors import BuilderError, InputError
from fp_rank.galleries.build.variants import GalleryVariant
from fp_rank.stats.rank_agreement import kendall_tau_b
from gallery_builders.registry import variant_from_arguments


def _demo_encoder_embed():
    encoder = fp_rank.load_encoder("fp-rank-demo")
    return encoder, lambda images: encoder.encode(images, progress=False).embeddings


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fp_rank.demo import gallery as demo

    root = tmp_path_factory.mktemp("variants")
    encoder, embed = _demo_encoder_embed()
    return {
        "protocol": demo.build(root / "protocol", seed=0),
        "random": demo.build(root / "random", seed=0, variant=GalleryVariant("random", 5, 42)),
        "kmeans": demo.build(root / "kmeans", seed=0, variant=GalleryVariant("kmeans", 5, 42, embed=embed,
                                                                             encoder=encoder.identity())),
    }


def _split_sets(folder: Path) -> dict[str, dict[str, set[str]]]:
    gal = fp_rank.load_gallery(folder)
    out: dict[str, dict[str, set[str]]] = {}
    for name, split in gal.splits.items():
        for ident, digest in zip(split.identities.tolist(), split.hashes):
            out.setdefault(ident, {}).setdefault(name, set()).add(digest)
    return out


@pytest.mark.parametrize("rule", ["random", "kmeans"])
def test_a_variant_rechooses_k_gallery_images_from_each_identitys_pool(variants: dict[str, Path], rule: str) -> None:
    before, after = _split_sets(variants["protocol"]), _split_sets(variants[rule])
    assert before.keys() == after.keys()
    for ident in before:
        assert len(after[ident]["gallery"]) == 5
        assert after[ident]["gallery"] | after[ident]["holdout"] == before[ident]["gallery"] | before[ident]["holdout"]
        assert after[ident]["reference"] == before[ident]["reference"]
    gal = fp_rank.load_gallery(variants[rule])
    recorded = gal.describe()["gallery_selection"]
    assert (recorded["rule"], recorded["k"], recorded["seed"]) == (rule, 5, 42)
    assert (recorded["encoder"] or {}).get("name") == ("fp-rank-demo" if rule == "kmeans" else None)
    assert fp_rank.load_gallery(variants["protocol"]).describe()["gallery_selection"]["rule"] == "random"
    assert _split_sets(variants[rule]) == after  # a variant is a function of its seed


def _colour_row(value: int, ident: str = "a", split: str = "gallery") -> object:
    from fp_rank.galleries.build.files import Row
    from fp_rank.galleries.build.spec import Candidate

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (value, 0, 0)).save(buf, format="PNG")
    candidate = Candidate(source_path=f"{ident}/{split}/{value}.png", identity=ident, identity_name=ident, group="g",
                          read=lambda data=buf.getvalue(): data, file_name=f"{value}.png")
    return Row(candidate, split, buf.getvalue(), str(value))


def test_kmeans_keeps_the_image_nearest_each_centroid() -> None:
    """Two tight clusters of red levels, {10, 20, 33} and {200, 210, 222}: their centroids are 21 and 210.67, so the
    images nearest them are 20 and 210; the reference row stays where it was."""
    from fp_rank.galleries.build.variants import apply_variant

    rows = [_colour_row(v) for v in (10, 20, 200, 210)] + [_colour_row(v, split="holdout") for v in (33, 222)]
    rows.append(_colour_row(99, split="reference"))

    def red(images: list[bytes]) -> np.ndarray:
        return np.asarray([[np.asarray(Image.open(io.BytesIO(b)))[0, 0, 0]] for b in images], dtype=np.float64)

    out = apply_variant(rows, GalleryVariant("kmeans", 2, 42, embed=red))
    chosen = sorted(int(r.sha256) for r in out if r.split == "gallery")
    assert chosen == [20, 210]
    assert {int(r.sha256): r.split for r in out}[99] == "reference"
    assert sorted(int(r.sha256) for r in out if r.split == "holdout") == [10, 33, 200, 222]


def test_a_k_larger_than_a_pool_and_bad_flags_are_refused() -> None:
    from fp_rank.galleries.build.variants import apply_variant

    rows = [_colour_row(v) for v in (1, 2)]
    with pytest.raises(BuilderError, match="1 identities have fewer: a .2."):
        apply_variant(rows, GalleryVariant("random", 3))
    with pytest.raises(BuilderError, match="needs a selection encoder"):
        GalleryVariant("kmeans", 2)
    with pytest.raises(BuilderError, match="needs --selection-k"):
        variant_from_arguments("kmeans", None, 42, "fp-rank-demo")
    with pytest.raises(BuilderError, match="needs --selection-encoder"):
        variant_from_arguments("kmeans", 5, 42, None)
    with pytest.raises(BuilderError, match="--selection-encoder is for --selection kmeans"):
        variant_from_arguments("random", 5, 42, "fp-rank-demo")
    assert variant_from_arguments("random", None, 42, None) is None
    with pytest.raises(BuilderError, match="--selection-encoder no-such-encoder"):
        variant_from_arguments("kmeans", 5, 42, "no-such-encoder")


def test_ablate_scores_each_variant_and_compares_rankings(variants: dict[str, Path], demo_generated: list[dict]) -> None:
    run = fp_rank.Run.from_arguments([r["image"] for r in demo_generated], [r["identity"] for r in demo_generated],
                                     methods=[r["method"] for r in demo_generated])
    result = ablate(run, [variants["random"], variants["kmeans"]], names=["random", "kmeans"], encoder="fp-rank-demo",
                    progress=False, n_boot=200)
    direct = [fp_rank.evaluate(run, gallery=str(variants[v]), encoder="fp-rank-demo", progress=False)
              for v in ("random", "kmeans")]
    for row in result.table:
        for cell, report in zip(row["variants"], direct):
            assert cell["map"] == pytest.approx(report[row["method"]].map, abs=1e-12)
        shift = row["shifts"][0]
        paired = fp_rank.compare(direct[1], row["method"], row["method"], other=direct[0],
                                 allow_mismatch=["gallery_fingerprint", "gallery_revision"])
        assert shift["difference"] == pytest.approx(paired.difference) and shift["p_value"] == pytest.approx(paired.p_value)
    ranking = result.rankings[0]
    maps = [[r[m].map for m in result.methods] for r in direct]
    assert ranking["kendall_tau"] == pytest.approx(kendall_tau_b(*maps))
    assert ranking["low"] <= ranking["kendall_tau"] <= ranking["high"]
    assert "Kendall tau" in result.to_markdown() and json.dumps(result.to_dict())
    assert [r["rule"] for r in (rep.metadata["gallery"]["gallery_selection"] for rep in result.reports)] == ["random", "kmeans"]


def test_ablate_refuses_variants_of_other_identities(tmp_path: Path, variants: dict[str, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from tests.gallery_fixtures import png_bytes, simple_gallery

    other = simple_gallery(tmp_path / "other")
    run = fp_rank.Run.from_arguments([png_bytes(1)], ["finch_scarlet_crown"])
    with pytest.raises(InputError, match="do not hold the same identities"):
        ablate(run, [variants["random"], other], encoder="fp-rank-demo", progress=False)
    with pytest.raises(InputError, match="two or more gallery variants"):
        ablate(run, [variants["random"]], encoder="fp-rank-demo", progress=False)
    from fp_rank.demo.run import export_generated

    manifest = export_generated(tmp_path / "run", seed=0)
    code = main(["ablate", "--generated", str(manifest), "--galleries", str(variants["random"]), str(variants["kmeans"]),
                 "--encoder", "fp-rank-demo", "--bootstrap", "100", "--no-progress", "--out", str(tmp_path / "a.json")])
    out = capsys.readouterr().out
    assert code == 0 and "shift kmeans" in out and "Kendall tau" in out
    assert json.loads((tmp_path / "a.json").read_text())["variants"] == ["random", "kmeans"]
    assert main(["ablate", "--generated", str(manifest), "--galleries", str(variants["random"]), str(variants["kmeans"]),
                 "--names", "only-one", "--encoder", "fp-rank-demo"]) == 2
    assert "--names gives 1 name(s) for 2 galleries" in capsys.readouterr().err


def test_ablate_wants_one_name_per_gallery(variants: dict[str, Path]) -> None:
    run = fp_rank.Run.from_arguments([b"x"], ["finch_scarlet_crown"])
    with pytest.raises(InputError, match="names gives 1 name"):
        ablate(run, [variants["random"], variants["kmeans"]], names=["only"], encoder="fp-rank-demo")
