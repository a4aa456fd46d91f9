"""WildlifeReID-10k builder, reference parity: ties at the cut-off, --individuals, duplicates."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from fp_rank.errors import BuilderError
from gallery_builders import wildlife_reid
from gallery_builders.__main__ import main
from tests.builders_fixtures import (  # noqa: F401  (private_datasets_cache is an autouse fixture)
    all_rows,
    card_of,
    jpeg_stream,
    make_wildlife,
    private_datasets_cache,
)

TIED = [f"T{k:02d}" for k in range(12)]  # 12 turtles with >= 15 images: all have 10 reference images


def make_tied_source(root: Path) -> Path:
    """A WildlifeReID-10k layout where 12 turtles tie for 10 places, plus two with fewer images."""
    images = jpeg_stream(7)
    counts = {name: 15 + k % 4 for k, name in enumerate(TIED)} | {"S00": 12, "S01": 9}
    root.mkdir(parents=True)
    with (root / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "species", "dataset", "path"])
        for k in range(max(counts.values())):
            for name in sorted(counts, reverse=True):  # rows not sorted by identity
                if k < counts[name]:
                    path = f"images/D/{name}/{k:03d}.jpg"
                    (root / path).parent.mkdir(parents=True, exist_ok=True)
                    (root / path).write_bytes(next(images))
                    writer.writerow([name, "sea turtle", "D", path])
    return root


def _reference_procedure(metadata: Path, kept: list[str] | None, seed: int = 42) -> tuple[set[str], set[str]]:
    """The reference code's draws written with pandas; ``kept`` pins the individuals (ties aside)."""
    frame = pd.read_csv(metadata, dtype=str, keep_default_na=False)
    eligible = frame.groupby("identity").filter(lambda x: len(x) >= 9)
    reference = pd.concat(
        [x.sample(n=min(len(x) - 5, 10), random_state=seed) for _, x in eligible.groupby("identity")]
    )
    if kept is None:
        kept = []
        for name in sorted(set(frame["species"])):
            counts = reference[reference["species"] == name]["identity"].value_counts()
            kept += counts.head(10).index.tolist()
    reference = reference[reference["identity"].isin(kept)]
    rest = frame[~frame["path"].isin(reference["path"])]
    gallery = pd.concat(
        [x.sample(n=min(len(x), 15), random_state=seed) for _, x in rest[rest["identity"].isin(kept)].groupby("identity")]
    )
    return set(reference["path"]), set(gallery["path"])


@pytest.fixture(scope="module")
def tied_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tied_source(tmp_path_factory.mktemp("tied") / "wildlifereid-10k")


def test_the_card_records_the_tie_at_the_cut_off(tied_source: Path, tmp_path: Path) -> None:
    out = wildlife_reid.build(tied_source, tmp_path / "out", progress=False)
    group = card_of(out)["fp_rank"]["groups"]["sea_turtle"]
    assert group["identities"] == TIED[:10]
    assert group["cutoff"] == {
        "places": 10, "eligible": 14, "count": 10, "tied": TIED, "kept_among_tied": TIED[:10],
        "left_out_among_tied": TIED[10:],
    }
    text = (out / "README.md").read_text()
    assert "12 tie at it with 10 reference images, for 10 places; kept: T00" in text
    assert "machine-dependent" in text


def test_no_cut_off_when_every_eligible_individual_is_kept(tmp_path: Path) -> None:
    out = wildlife_reid.build(make_wildlife(tmp_path / "src"), tmp_path / "out", species=["zebra"], progress=False)
    assert card_of(out)["fp_rank"]["groups"]["zebra"]["cutoff"]["count"] is None
    assert "no cut-off" in (out / "README.md").read_text()


@pytest.mark.parametrize("form", ["lines", "csv"])
def test_individuals_pin_the_selection_and_keep_the_draws(tied_source: Path, tmp_path: Path, form: str) -> None:
    pinned = TIED[2:12]  # what a machine whose pandas put T00 and T01 last would have kept
    listing = tmp_path / "individuals.txt"
    if form == "lines":
        listing.write_text("# pinned\n" + "\n".join(pinned) + "\n\n")
    else:
        listing.write_text("species,identity\n" + "".join(f"sea turtle,{n}\n" for n in pinned))
    status = main(["wildlife-reid", "--source", str(tied_source), "--out", str(tmp_path / "out"),
                   "--individuals", str(listing), "--no-progress"])
    assert status == 0
    out = tmp_path / "out"
    group = card_of(out)["fp_rank"]["groups"]["sea_turtle"]
    assert group["identities"] == pinned and group["cutoff"]["pinned"] == pinned
    rows = all_rows(out)
    reference, gallery = _reference_procedure(tied_source / "metadata.csv", pinned)
    assert {r["source_path"] for r in rows["reference"]} == reference
    assert {r["source_path"] for r in rows["gallery"]} == gallery
    default = all_rows(wildlife_reid.build(tied_source, tmp_path / "default", progress=False))
    shared = {r["source_path"] for r in default["reference"] if r["identity"] in pinned}
    assert shared <= reference  # an individual's draws do not depend on which others are kept
    assert "pinned by --individuals" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("T00\nNobody\n", "lacks .*Nobody"),
        ("species,identity\nzebra,T00\n", "another species.*T00 \\(zebra vs sea turtle\\)"),
        ("species,identity\nsea turtle\n", "row 2: expected species,identity"),
        ("# nothing\n\n", "names no individual"),
    ],
    ids=["unknown", "wrong-species", "short-row", "empty"],
)
def test_bad_individuals_files_are_refused(tied_source: Path, tmp_path: Path, content: str, message: str) -> None:
    listing = tmp_path / "individuals.csv"
    listing.write_text(content)
    with pytest.raises(BuilderError, match=message):
        wildlife_reid.build(tied_source, tmp_path / "out", individuals=listing, progress=False)


def test_ineligible_and_missing_individuals(tmp_path: Path) -> None:
    source = make_wildlife(tmp_path / "src")
    with pytest.raises(BuilderError, match="fewer than 9 images.*SeaTurtleID_t12 \\(8\\)"):
        wildlife_reid.build(source, tmp_path / "out", individuals=["SeaTurtleID_t12"], progress=False)
    with pytest.raises(BuilderError, match="no-such-file"):
        wildlife_reid.build(source, tmp_path / "out", individuals=tmp_path / "no-such-file", progress=False)
    out = wildlife_reid.build(source, tmp_path / "out", individuals=["StripeSpotter_z01", "Cows_c00"], progress=False)
    assert list(card_of(out)["fp_rank"]["groups"]) == ["cow", "zebra"]


def _duplicated_source(root: Path) -> tuple[Path, list[dict[str, str]]]:
    """The fake source with two copies: one inside an individual, one across two individuals."""
    source = make_wildlife(root)
    with (source / "metadata.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    t08 = [r["path"] for r in rows if r["identity"] == "SeaTurtleID_t08"]
    t07 = [r["path"] for r in rows if r["identity"] == "SeaTurtleID_t07"]
    (source / t08[5]).write_bytes((source / t08[0]).read_bytes())
    (source / t07[3]).write_bytes((source / t08[1]).read_bytes())
    return source, rows


def test_duplicates_are_listed_with_their_twin_and_dropped_by_default(tmp_path: Path) -> None:
    source, _ = _duplicated_source(tmp_path / "src")
    out = wildlife_reid.build(source, tmp_path / "out", progress=False)
    block = card_of(out)["fp_rank"]
    assert block["keep_duplicates"] is False and len(block["duplicates"]) == 2
    placed = {r["source_path"]: split for split, rows in all_rows(out).items() for r in rows}
    for entry in block["duplicates"]:
        assert entry["split"] is None and entry["source_path"] not in placed
        assert entry["duplicate_of_split"] == placed[entry["duplicate_of"]]
    text = (out / "README.md").read_text()
    first = block["duplicates"][0]
    assert f"`{first['source_path']}` is identical to `{first['duplicate_of']}` (in {first['duplicate_of_split']}); left out" in text


def test_keep_duplicates_reproduces_the_reference_draws(tmp_path: Path) -> None:
    source, _ = _duplicated_source(tmp_path / "src")
    status = main(["wildlife-reid", "--source", str(source), "--out", str(tmp_path / "kept"), "--keep-duplicates",
                   "--no-progress"])
    assert status == 0
    kept = all_rows(tmp_path / "kept")
    reference, gallery = _reference_procedure(source / "metadata.csv", None)
    assert {r["source_path"] for r in kept["reference"]} == reference
    assert {r["source_path"] for r in kept["gallery"]} == gallery
    block = card_of(tmp_path / "kept")["fp_rank"]
    assert block["keep_duplicates"] is True and len(block["duplicates"]) == 2
    assert all(d["split"] is not None and d["duplicate_of_split"] is not None for d in block["duplicates"])
    assert "both kept" in (tmp_path / "kept" / "README.md").read_text()
    dropped = all_rows(wildlife_reid.build(source, tmp_path / "dropped", progress=False))
    assert {r["source_path"] for r in dropped["reference"]} != reference  # t08 and t07 were drawn again
