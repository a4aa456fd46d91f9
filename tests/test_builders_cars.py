"""The Stanford Cars builder, from the Hub copy and from the original devkit layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fp_rank.errors import BuilderError
from gallery_builders import stanford_cars
from tests.builders_fixtures import (  # noqa: F401  (private_datasets_cache is an autouse fixture)
    CARS_CLASS_NAMES,
    CARS_IDS,
    all_rows,
    card_of,
    cars_rows,
    make_cars_devkit,
    make_cars_hub,
    private_datasets_cache,
    split_rows,
    tree_bytes,
)


@pytest.fixture(scope="module")
def rows() -> list[tuple[int, bytes]]:
    return cars_rows()


@pytest.fixture(scope="module")
def hub_gallery(rows: list[tuple[int, bytes]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = make_cars_hub(tmp_path_factory.mktemp("cars") / "hub", rows)
    return stanford_cars.build(source, tmp_path_factory.mktemp("cars_out") / "cars", progress=False)


def _first_in_source_order(rows: list[tuple[int, bytes]], label: int, start: int, stop: int) -> list[int]:
    return [i for i, (lab, _) in enumerate(rows) if lab == label][start:stop]


def test_hub_copy_counts_and_first_ten(hub_gallery: Path, rows: list[tuple[int, bytes]]) -> None:
    block = card_of(hub_gallery)["fp_rank"]
    assert block["builder"] == "stanford-cars" and block["seed"] is None
    assert block["counts"] == {"car": {"gallery": 150, "reference": 150, "holdout": 30}}
    assert block["groups"]["car"]["stanford_cars_labels"] == list(CARS_IDS)
    gallery = split_rows(hub_gallery, "car", "gallery")
    reference = split_rows(hub_gallery, "car", "reference")
    for label in CARS_IDS:
        in_gallery = sorted(int(r["source_path"].split("/")[1]) for r in gallery if r["cars_label"] == label)
        in_reference = sorted(int(r["source_path"].split("/")[1]) for r in reference if r["cars_label"] == label)
        assert in_gallery == _first_in_source_order(rows, label, 0, 10)
        assert in_reference == _first_in_source_order(rows, label, 10, 20)
    identities = block["groups"]["car"]["identities"]
    assert "Acura_RL_Sedan_2012" in identities and "Ram_C_V_Cargo_Van_Minivan_2012" in identities
    assert block["identities"]["Ram_C_V_Cargo_Van_Minivan_2012"] == "Ram C/V Cargo Van Minivan 2012"
    encoders = block["recommended_encoders"]
    assert encoders["primary"] == "dinov2-base" and encoders["specialist"] == []
    assert "never released" in encoders["note"]


def test_hub_copy_images_are_embedded_bytes(hub_gallery: Path, rows: list[tuple[int, bytes]]) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(hub_gallery / "data" / "car" / "gallery-00000-of-00001.parquet")
    record = table.to_pylist()[0]
    row = int(record["source_path"].split("/")[1])
    assert record["image"]["bytes"] == rows[row][1]
    assert record["image"]["path"] == f"{row + 1:05d}.jpg"


def test_devkit_gives_the_same_images(hub_gallery: Path, rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    source = make_cars_devkit(tmp_path / "devkit", rows)
    out = stanford_cars.build(source, tmp_path / "out", progress=False)
    devkit_rows, hub_rows = all_rows(out), all_rows(hub_gallery)
    for split in ("gallery", "reference", "holdout"):
        assert sorted(r["sha256"] for r in devkit_rows[split]) == sorted(r["sha256"] for r in hub_rows[split])
        assert all(r["source_path"].startswith("cars_test/") for r in devkit_rows[split])
    assert card_of(out)["fp_rank"]["identities"] == card_of(hub_gallery)["fp_rank"]["identities"]


def test_hub_copy_without_class_names(rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    source = make_cars_hub(tmp_path / "hub", rows, class_names=False)
    out = stanford_cars.build(source, tmp_path / "out", progress=False)
    identities = card_of(out)["fp_rank"]["groups"]["car"]["identities"]
    assert identities == [f"class_{label:03d}" for label in sorted(CARS_IDS)]


def test_saved_dataset_dict_is_accepted(rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

    features = Features({"image": Image(), "label": ClassLabel(names=CARS_CLASS_NAMES)})
    test = Dataset.from_dict(
        {"image": [{"bytes": data, "path": None} for _, data in rows], "label": [label for label, _ in rows]},
        features=features,
    )
    DatasetDict({"test": test}).save_to_disk(str(tmp_path / "saved"))
    out = stanford_cars.build(tmp_path / "saved", tmp_path / "out", progress=False)
    assert card_of(out)["fp_rank"]["counts"]["car"]["gallery"] == 150


def test_deterministic(rows: list[tuple[int, bytes]], hub_gallery: Path, tmp_path: Path) -> None:
    source = make_cars_hub(tmp_path / "hub", rows)
    again = stanford_cars.build(source, tmp_path / "again", progress=False)
    assert tree_bytes(again) == tree_bytes(hub_gallery)


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.txt").write_text("x")
    with pytest.raises(BuilderError, match="neither a Stanford Cars devkit"):
        stanford_cars.build(tmp_path / "src", tmp_path / "out", progress=False)


def test_hub_copy_without_test_split(rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    source = make_cars_hub(tmp_path / "hub", rows)
    (source / "data" / "test-00000-of-00001.parquet").unlink()
    with pytest.raises(BuilderError, match="'test' split"):
        stanford_cars.build(source, tmp_path / "out", progress=False)


@pytest.mark.parametrize("missing", ["devkit/cars_meta.mat", "cars_test_annos_withlabels.mat"])
def test_devkit_missing_mat_file_is_named(rows: list[tuple[int, bytes]], tmp_path: Path, missing: str) -> None:
    source = make_cars_devkit(tmp_path / "devkit", rows)
    (source / missing).unlink()
    with pytest.raises(BuilderError, match=Path(missing).name):
        stanford_cars.build(source, tmp_path / "out", progress=False)


def test_devkit_annotations_in_devkit_folder_are_found(rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    source = make_cars_devkit(tmp_path / "devkit", rows)
    (source / "cars_test_annos_withlabels.mat").rename(source / "devkit" / "cars_test_annos_withlabels.mat")
    out = stanford_cars.build(source, tmp_path / "out", progress=False)
    assert card_of(out)["fp_rank"]["counts"]["car"]["reference"] == 150


def test_devkit_unreadable_mat_is_named(rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    source = make_cars_devkit(tmp_path / "devkit", rows)
    (source / "devkit" / "cars_meta.mat").write_bytes(b"garbage, not MATLAB")
    with pytest.raises(BuilderError, match="cars_meta.mat"):
        stanford_cars.build(source, tmp_path / "out", progress=False)


def test_devkit_missing_image_is_named_and_skippable(rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    source = make_cars_devkit(tmp_path / "devkit", rows)
    first_acura = 1 + next(i for i, (label, _) in enumerate(rows) if label == 2)
    victim = source / "cars_test" / f"{first_acura:05d}.jpg"
    victim.unlink()
    with pytest.raises(BuilderError, match=victim.name):
        stanford_cars.build(source, tmp_path / "out", progress=False)
    out = stanford_cars.build(source, tmp_path / "out", progress=False, skip_corrupt=True)
    block = card_of(out)["fp_rank"]
    assert block["skipped"] == [{"source_path": f"cars_test/{victim.name}", "reason": "file not found"}]
    assert block["counts"]["car"] == {"gallery": 150, "reference": 150, "holdout": 29}


def test_devkit_class_out_of_range(rows: list[tuple[int, bytes]], tmp_path: Path) -> None:
    from scipy.io import savemat

    source = make_cars_devkit(tmp_path / "devkit", rows)
    records = np.zeros((1, 1), dtype=[("class", object), ("fname", object)])
    records[0, 0] = (np.uint16(500), "00001.jpg")
    savemat(source / "cars_test_annos_withlabels.mat", {"annotations": records})
    with pytest.raises(BuilderError, match="class 500"):
        stanford_cars.build(source, tmp_path / "out", progress=False)
