"""The WildlifeReID-10k builder: the reference selection, filters, seeds, bad sources."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from fp_rank.errors import BuilderError
from gallery_builders import wildlife_reid
from tests.builders_fixtures import (  # noqa: F401  (private_datasets_cache is an autouse fixture)
    all_rows,
    card_of,
    make_wildlife,
    private_datasets_cache,
    split_rows,
    tree_bytes,
    wildlife_individuals,
)


@pytest.fixture(scope="module")
def reid_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_wildlife(tmp_path_factory.mktemp("reid") / "wildlifereid-10k")


@pytest.fixture(scope="module")
def reid_gallery(reid_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wildlife_reid.build(reid_source, tmp_path_factory.mktemp("reid_out") / "reid", progress=False)


def _pandas_reference_selection(metadata: Path, species: list[str], seed: int) -> tuple[set[str], set[str]]:
    """The reference code's procedure written with pandas (groups iterated in sorted order)."""
    frame = pd.read_csv(metadata, dtype=str, keep_default_na=False)
    frame = frame[frame["species"].isin(species)]
    eligible = frame.groupby("identity").filter(lambda x: len(x) >= 9)
    reference = pd.concat(
        [x.sample(n=min(len(x) - 5, 10), random_state=seed) for _, x in eligible.groupby("identity")]
    )
    kept: list[str] = []
    for name in species:
        kept += reference[reference["species"] == name]["identity"].value_counts().head(10).index.tolist()
    reference = reference[reference["identity"].isin(kept)]
    rest = frame[~frame["path"].isin(reference["path"])]
    gallery = pd.concat(
        [
            x.sample(n=min(len(x), 15), random_state=seed)
            for _, x in rest[rest["identity"].isin(kept)].groupby("identity")
        ]
    )
    return set(reference["path"]), set(gallery["path"])


def test_counts_follow_the_rules(reid_gallery: Path) -> None:
    block = card_of(reid_gallery)["fp_rank"]
    assert block["builder"] == "wildlife-reid" and block["seed"] == 42
    assert list(block["groups"]) == ["cow", "sea_turtle", "zebra"]
    assert block["groups"]["sea_turtle"]["noun"] == "sea turtle"
    assert block["recommended_encoders"]["specialist"] == ["miewid"]
    sizes = {identity: n for identity, _, _, n in wildlife_individuals()}
    eligible_turtles = [i for i, s, _, n in wildlife_individuals() if s == "sea turtle" and n >= 9]
    ranked = sorted(eligible_turtles, key=lambda i: (-min(sizes[i] - 5, 10), i))
    assert block["groups"]["sea_turtle"]["identities"] == sorted(ranked[:10])
    for group, entry in block["groups"].items():
        for identity in entry["identities"]:
            n = sizes[identity]
            counts = {s: sum(r["identity"] == identity for r in split_rows(reid_gallery, group, s))
                      for s in ("reference", "gallery", "holdout")}
            reference = min(n - 5, 10)
            gallery = min(n - reference, 15)
            assert counts == {"reference": reference, "gallery": gallery, "holdout": n - reference - gallery}


def test_selection_equals_the_reference_pandas_procedure(reid_source: Path, reid_gallery: Path) -> None:
    species = ["cow", "sea turtle", "zebra"]
    reference, gallery = _pandas_reference_selection(reid_source / "metadata.csv", species, 42)
    rows = all_rows(reid_gallery)
    assert {r["source_path"] for r in rows["reference"]} == reference
    assert {r["source_path"] for r in rows["gallery"]} == gallery


def test_extra_columns_and_disjointness(reid_gallery: Path) -> None:
    rows = all_rows(reid_gallery)
    seen: dict[str, str] = {}
    for split, records in rows.items():
        for record in records:
            assert seen.setdefault(record["sha256"], split) == split
            assert seen.setdefault(record["source_path"], split) == split
            assert record["species"] in {"cow", "sea turtle", "zebra"}
            assert record["orientation"] in {"left", "right", None}
            assert record["dataset"] in {"Cows2021", "SeaTurtleID2022", "StripeSpotter"}


def test_groups_without_holdout_omit_the_split(reid_gallery: Path) -> None:
    card = card_of(reid_gallery)
    by_name = {c["config_name"]: c for c in card["configs"]}
    assert [d["split"] for d in by_name["zebra"]["data_files"]] == ["gallery", "reference"]
    assert [d["split"] for d in by_name["sea_turtle"]["data_files"]] == ["gallery", "reference", "holdout"]
    holdout = next(d for d in by_name["all"]["data_files"] if d["split"] == "holdout")
    assert holdout["path"] == ["data/sea_turtle/holdout-00000-of-00001.parquet"]


def test_loads_with_datasets(reid_gallery: Path) -> None:
    import datasets

    turtles = datasets.load_dataset(str(reid_gallery), "sea_turtle", split="gallery")
    assert len(turtles) == card_of(reid_gallery)["fp_rank"]["counts"]["sea_turtle"]["gallery"]
    assert turtles[0]["image"].size == (16, 16)


def test_species_and_dataset_filters(reid_source: Path, tmp_path: Path) -> None:
    zebra = wildlife_reid.build(reid_source, tmp_path / "zebra", species=["zebra"], progress=False)
    assert list(card_of(zebra)["fp_rank"]["groups"]) == ["zebra"]
    cows = wildlife_reid.build(reid_source, tmp_path / "cows", datasets=["Cows2021"], progress=False)
    assert list(card_of(cows)["fp_rank"]["groups"]) == ["cow"]
    assert card_of(cows)["fp_rank"]["groups"]["cow"]["datasets"] == ["Cows2021"]


def test_filter_errors(reid_source: Path, tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no species \\['unicorn'\\]"):
        wildlife_reid.build(reid_source, tmp_path / "a", species=["unicorn"], progress=False)
    with pytest.raises(BuilderError, match="no dataset"):
        wildlife_reid.build(reid_source, tmp_path / "b", datasets=["Nope"], progress=False)
    with pytest.raises(BuilderError, match="species \\['zebra'\\] have no individual"):
        wildlife_reid.build(reid_source, tmp_path / "c", species=["zebra"], datasets=["Cows2021"], progress=False)


def test_seed_changes_the_sample_and_builds_are_identical(
    reid_source: Path, reid_gallery: Path, tmp_path: Path
) -> None:
    again = wildlife_reid.build(reid_source, tmp_path / "again", progress=False)
    assert tree_bytes(again) == tree_bytes(reid_gallery)
    other = wildlife_reid.build(reid_source, tmp_path / "other", seed=1, progress=False)
    first = {r["source_path"] for r in all_rows(reid_gallery)["reference"]}
    second = {r["source_path"] for r in all_rows(other)["reference"]}
    assert first != second and len(first) == len(second)


def test_missing_metadata_and_columns(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(BuilderError, match="metadata.csv"):
        wildlife_reid.build(tmp_path / "src", tmp_path / "out", progress=False)
    (tmp_path / "src" / "metadata.csv").write_text("identity,path\nx,images/a.jpg\n")
    with pytest.raises(BuilderError, match="lacks columns \\['species', 'dataset'\\]"):
        wildlife_reid.build(tmp_path / "src", tmp_path / "out", progress=False)


def test_path_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "metadata.csv").write_text("identity,species,dataset,path\nx,cat,D,../secret.jpg\n")
    with pytest.raises(BuilderError, match="stay inside"):
        wildlife_reid.build(tmp_path / "src", tmp_path / "out", progress=False)


def test_unreadable_image_is_named_or_skipped(tmp_path: Path) -> None:
    source = make_wildlife(tmp_path / "src")
    with (source / "metadata.csv").open(newline="") as handle:
        first_turtle = next(r for r in csv.DictReader(handle) if r["identity"] == "SeaTurtleID_t08")
    victim = source / first_turtle["path"]
    victim.write_bytes(b"broken")
    with pytest.raises(BuilderError, match=first_turtle["path"]):
        wildlife_reid.build(source, tmp_path / "out", progress=False)
    out = wildlife_reid.build(source, tmp_path / "out", progress=False, skip_corrupt=True)
    block = card_of(out)["fp_rank"]
    assert [s["source_path"] for s in block["skipped"]] == [first_turtle["path"]]
    assert sum(r["identity"] == "SeaTurtleID_t08" for rows in all_rows(out).values() for r in rows) == 29


def test_skipping_can_change_which_individuals_qualify(tmp_path: Path) -> None:
    source = make_wildlife(tmp_path / "src")
    with (source / "metadata.csv").open(newline="") as handle:
        paths = [r["path"] for r in csv.DictReader(handle) if r["identity"] == "SeaTurtleID_t01"]
    for path in paths[:2]:  # 10 images -> 8: no longer eligible
        (source / path).write_bytes(b"")
    out = wildlife_reid.build(source, tmp_path / "out", progress=False, skip_corrupt=True)
    block = card_of(out)["fp_rank"]
    assert "SeaTurtleID_t01" not in block["groups"]["sea_turtle"]["identities"]
    assert "SeaTurtleID_t00" in block["groups"]["sea_turtle"]["identities"]
    assert len(block["groups"]["sea_turtle"]["identities"]) == 10
