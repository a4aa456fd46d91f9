"""The CUB-200-2011 builder and the shared writer: counts, the reference draw, disjointness,
determinism, loading, bad sources, duplicates, atomic output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import fp_rank
from fp_rank.errors import BuilderError
from fp_rank.galleries.build.sources import bytes_reader
from fp_rank.galleries.build.spec import Candidate
from gallery_builders import cub
from tests.builders_fixtures import (  # noqa: F401  (private_datasets_cache is an autouse fixture)
    CUB_GROUP_IDS,
    CUB_NAMES,
    all_rows,
    card_of,
    cub_per_class_count,
    make_cub,
    manifest_of,
    private_datasets_cache,
    split_rows,
    tree_bytes,
)


@pytest.fixture(scope="module")
def cub_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cub(tmp_path_factory.mktemp("cub_src"))


@pytest.fixture(scope="module")
def cub_gallery(cub_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cub.build(cub_source, tmp_path_factory.mktemp("cub_out") / "cub", progress=False)


def _pandas_reference_draw(frame: pd.DataFrame, seed: int) -> tuple[set[str], set[str]]:
    """The reference code's procedure, written with pandas: groupby-sample 10, then 10 of the rest."""
    gallery = frame.groupby("name", group_keys=False).sample(n=10, random_state=seed)
    rest = frame[~frame["path"].isin(gallery["path"])]
    reference = rest.groupby("name", group_keys=False).sample(n=10, random_state=seed)
    return set(gallery["path"]), set(reference["path"])


def _cub_frame(root: Path) -> pd.DataFrame:
    images = pd.read_csv(root / "images.txt", sep=" ", names=["img_id", "img_path"])
    labels = pd.read_csv(root / "image_class_labels.txt", sep=" ", names=["img_id", "class_id"])
    classes = pd.read_csv(root / "classes.txt", sep=" ", names=["class_id", "class_name"])
    frame = images.merge(labels, on="img_id").merge(classes, on="class_id")
    frame["name"] = frame["class_name"].str.split(".", n=1).str[1]
    frame["path"] = "images/" + frame["img_path"]
    return frame


def test_counts_groups_and_card(cub_gallery: Path) -> None:
    card = card_of(cub_gallery)
    block = card["fp_rank"]
    assert block["protocol_version"] == fp_rank.PROTOCOL_VERSION
    assert block["builder"] == "cub"
    assert block["seed"] == 101
    assert list(block["groups"]) == ["wren", "tern", "sparrow"]
    for group, ids in CUB_GROUP_IDS.items():
        expected_identities = sorted(CUB_NAMES[i] for i in ids)
        assert block["groups"][group]["identities"] == expected_identities
        assert block["groups"][group]["noun"] == group
        assert block["groups"][group]["cub_class_ids"] == list(ids)
        holdout = sum(cub_per_class_count(i) - 20 for i in ids)
        assert block["counts"][group] == {"gallery": 50, "reference": 50, "holdout": holdout}
        for split, size in block["counts"][group].items():
            rows = split_rows(cub_gallery, group, split)
            assert len(rows) == size
            assert {r["group"] for r in rows} == {group}
            assert {r["identity"] for r in rows} == set(expected_identities)
            assert all(r["cub_class_id"] in ids for r in rows)
        for identity in expected_identities:
            per_split = [
                sum(r["identity"] == identity for r in split_rows(cub_gallery, group, s))
                for s in ("gallery", "reference")
            ]
            assert per_split == [10, 10]
    assert block["identities"]["Bewick_Wren"] == "Bewick Wren"
    assert block["recommended_encoders"] == {
        "primary": "dinov2-base",
        "general": ["dinov2-base", "clip-vit-b32"],
        "specialist": ["bioclip-2"],
    }
    assert len(block["prompts"]) == 10 and all("{X}" in p for p in block["prompts"])
    assert block["duplicates"] == [] and block["skipped"] == []
    assert "Wah" in block["source"]["citation"] and "license" in block["source"]
    names = [c["config_name"] for c in card["configs"]]
    assert names == ["all", "wren", "tern", "sparrow"]
    assert card["configs"][0]["default"] is True


def test_card_parses_with_huggingface_hub(cub_gallery: Path) -> None:
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(cub_gallery / "README.md")
    assert card.data.to_dict()["fp_rank"]["builder"] == "cub"
    for heading in ("## Dataset Description", "## Dataset Structure", "## Dataset Creation",
                    "## Bias, Risks, and Limitations", "## Citation"):
        assert heading in card.text


def test_draw_equals_the_reference_pandas_procedure(cub_source: Path, cub_gallery: Path) -> None:
    frame = _cub_frame(cub_source)
    for group, ids in CUB_GROUP_IDS.items():
        gallery, reference = _pandas_reference_draw(frame[frame["class_id"].isin(ids)], 101)
        assert {r["source_path"] for r in split_rows(cub_gallery, group, "gallery")} == gallery
        assert {r["source_path"] for r in split_rows(cub_gallery, group, "reference")} == reference


def test_draw_sorts_species_by_name_and_keeps_source_order() -> None:
    sizes = {"Zeta_Wren": 23, "Alpha_Wren": 21, "Mid_Wren": 25}
    order = [(name, k) for k in range(25) for name in sizes if k < sizes[name]]  # interleaved
    candidates = [
        Candidate(
            source_path=f"images/{name}/{k:02d}.jpg",
            identity=name,
            identity_name=name,
            group="wren",
            read=bytes_reader(b""),
            extra={"_sort_name": name},
        )
        for name, k in order
    ]
    assignment = cub.select(candidates, seed=5)
    frame = pd.DataFrame({"name": [c.identity for c in candidates], "path": [c.source_path for c in candidates]})
    gallery, reference = _pandas_reference_draw(frame, 5)
    assert {p for p, s in assignment.items() if s == "gallery"} == gallery
    assert {p for p, s in assignment.items() if s == "reference"} == reference
    assert {p for p, s in assignment.items() if s == "holdout"} == set(frame["path"]) - gallery - reference


def test_splits_are_disjoint_and_manifest_matches(cub_gallery: Path) -> None:
    rows = all_rows(cub_gallery)
    seen_paths: dict[str, str] = {}
    seen_hashes: dict[str, str] = {}
    for split, records in rows.items():
        for record in records:
            assert seen_paths.setdefault(record["source_path"], split) == split
            assert seen_hashes.setdefault(record["sha256"], split) == split
    assert len(seen_hashes) == sum(len(r) for r in rows.values())
    manifest = manifest_of(cub_gallery)
    assert manifest == sorted(manifest, key=lambda e: (e["split"], e["group"], e["identity"], e["source_path"]))
    assert {(e["split"], e["source_path"], e["sha256"]) for e in manifest} == {
        (s, r["source_path"], r["sha256"]) for s, records in rows.items() for r in records
    }


def test_same_source_and_seed_give_identical_bytes(cub_source: Path, cub_gallery: Path, tmp_path: Path) -> None:
    again = cub.build(cub_source, tmp_path / "again", progress=False)
    assert tree_bytes(again) == tree_bytes(cub_gallery)


def test_another_seed_gives_another_sample(cub_source: Path, cub_gallery: Path, tmp_path: Path) -> None:
    other = cub.build(cub_source, tmp_path / "seed7", seed=7, progress=False)
    assert card_of(other)["fp_rank"]["seed"] == 7
    for group in CUB_GROUP_IDS:
        first = {r["source_path"] for r in split_rows(cub_gallery, group, "gallery")}
        second = {r["source_path"] for r in split_rows(other, group, "gallery")}
        assert len(second) == 50 and first != second


def test_loads_with_datasets(cub_gallery: Path) -> None:
    import datasets
    from PIL import Image

    wren = datasets.load_dataset(str(cub_gallery), "wren", split="gallery")
    assert len(wren) == 50
    assert isinstance(wren[0]["image"], Image.Image)
    assert wren[0]["image"].size == (16, 16)
    assert set(wren.column_names) >= {"image", "identity", "identity_name", "group", "source_path", "sha256"}
    everything = datasets.load_dataset(str(cub_gallery))
    assert {name: len(split) for name, split in everything.items()} == {
        "gallery": 150,
        "reference": 150,
        "holdout": sum(cub_per_class_count(i) - 20 for ids in CUB_GROUP_IDS.values() for i in ids),
    }


# --- bad sources ------------------------------------------------------------------------------


def _fresh_source(tmp_path: Path) -> Path:
    return make_cub(tmp_path / "src")


def _no_output_left(out: Path) -> None:
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_missing_index_file_is_named(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    (root / "image_class_labels.txt").unlink()
    with pytest.raises(BuilderError, match="image_class_labels.txt"):
        cub.build(root, tmp_path / "out", progress=False)
    _no_output_left(tmp_path / "out")


def test_wrong_layout_is_reported(tmp_path: Path) -> None:
    (tmp_path / "notcub").mkdir()
    (tmp_path / "notcub" / "readme.txt").write_text("hello")
    with pytest.raises(BuilderError, match="images.txt"):
        cub.build(tmp_path / "notcub", tmp_path / "out", progress=False)


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    with (root / "classes.txt").open("a") as handle:
        handle.write("oops\n")
    with pytest.raises(BuilderError, match=r"classes.txt line \d+"):
        cub.build(root, tmp_path / "out", progress=False)


def test_parent_folder_of_cub_200_2011_is_accepted(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    out = cub.build(root.parent, tmp_path / "out", progress=False)
    assert card_of(out)["fp_rank"]["counts"]["wren"]["gallery"] == 50


def test_missing_image_is_named_and_leaves_no_output(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    victim = next((root / "images" / "193.Bewick_Wren").iterdir())
    victim.unlink()
    with pytest.raises(BuilderError, match=victim.name) as info:
        cub.build(root, tmp_path / "out", progress=False)
    assert "file not found" in str(info.value) and "--skip-corrupt" in str(info.value)
    _no_output_left(tmp_path / "out")


def test_unreadable_image_is_named_or_skipped(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    victim = sorted((root / "images" / "145.Elegant_Tern").iterdir())[3]
    victim.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(BuilderError, match=victim.name):
        cub.build(root, tmp_path / "out", progress=False)
    _no_output_left(tmp_path / "out")

    out = cub.build(root, tmp_path / "out", skip_corrupt=True, progress=False)
    block = card_of(out)["fp_rank"]
    relative = victim.relative_to(root).as_posix()
    assert [s["source_path"] for s in block["skipped"]] == [relative]
    assert block["counts"]["tern"]["gallery"] == 50 and block["counts"]["tern"]["reference"] == 50
    assert relative not in {r["source_path"] for rows in all_rows(out).values() for r in rows}
    assert relative in (out / "README.md").read_text()


def test_truncated_image_is_unreadable(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    victim = sorted((root / "images" / "113.Baird_Sparrow").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    with pytest.raises(BuilderError, match=victim.name):
        cub.build(root, tmp_path / "out", progress=False)


def test_too_few_images_is_an_error(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    lines = (root / "images.txt").read_text().splitlines()
    keep = [line for line in lines if "194.Cactus_Wren" not in line]
    cactus = [line for line in lines if "194.Cactus_Wren" in line][:15]
    (root / "images.txt").write_text("\n".join(keep + cactus) + "\n")
    with pytest.raises(BuilderError, match="Cactus_Wren"):
        cub.build(root, tmp_path / "out", progress=False)


def test_existing_output_is_refused_then_replaced(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(BuilderError, match="already exists"):
        cub.build(root, out, progress=False)
    cub.build(root, out, progress=False, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "README.md").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_failure_while_writing_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fp_rank.galleries.build import writer

    root = _fresh_source(tmp_path)

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(writer, "_write_manifest", explode)
    with pytest.raises(OSError, match="disk full"):
        cub.build(root, tmp_path / "out", progress=False)
    _no_output_left(tmp_path / "out")


def test_duplicates_are_detected_reported_and_kept_out_of_two_splits(tmp_path: Path) -> None:
    root = _fresh_source(tmp_path)
    wrens = sorted((root / "images" / "195.Carolina_Wren").iterdir())
    terns = sorted((root / "images" / "147.Least_Tern").iterdir())
    shutil.copyfile(wrens[0], wrens[5])  # same class
    shutil.copyfile(wrens[1], terns[2])  # another class and group, earlier in images.txt
    out = cub.build(root, tmp_path / "out", progress=False)
    block = card_of(out)["fp_rank"]
    reported = {d["source_path"]: d["duplicate_of"] for d in block["duplicates"]}
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    # Of identical files the first in images.txt order is kept (class 147 comes before 195).
    assert reported == {rel(wrens[5]): rel(wrens[0]), rel(wrens[1]): rel(terns[2])}
    rows = [r for records in all_rows(out).values() for r in records]
    assert len({r["sha256"] for r in rows}) == len(rows)
    assert {rel(wrens[5]), rel(wrens[1])}.isdisjoint({r["source_path"] for r in rows})
    assert rel(terns[2]) in {r["source_path"] for r in rows}
    assert block["counts"]["wren"]["gallery"] == 50 and block["counts"]["wren"]["reference"] == 50
    text = (out / "README.md").read_text()
    assert f"`{rel(wrens[1])}` is identical to `{rel(terns[2])}`" in text
