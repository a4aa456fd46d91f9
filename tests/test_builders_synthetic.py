"""The synthetic demo gallery (fp_rank.demo.gallery) goes through the writer of the real galleries."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from fp_rank.demo import gallery as demo_source
from fp_rank.errors import BuilderError
from tests.builders_fixtures import (  # noqa: F401  (private_datasets_cache is an autouse fixture)
    all_rows,
    card_of,
    private_datasets_cache,
    tree_bytes,
)


def test_demo_gallery_matches_its_records(tmp_path: Path) -> None:
    from fp_rank.demo.synthetic import BENCHMARK_INFO, gallery_records

    out = demo_source.build(tmp_path / "demo", seed=0, progress=False)
    assert out == tmp_path / "demo"
    records = gallery_records(seed=0)
    card = card_of(out)
    block = card["fp_rank"]
    assert block["builder"] == "synthetic" and block["seed"] == 0
    assert block["recommended_encoders"]["primary"] == BENCHMARK_INFO["recommended_encoders"]["primary"]
    assert list(block["groups"]) == list(BENCHMARK_INFO["groups"])
    for group, entry in BENCHMARK_INFO["groups"].items():
        assert block["groups"][group]["identities"] == sorted(entry["identities"])
        assert block["groups"][group]["noun"] == entry["noun"]
    rows = all_rows(out)
    expected = {(r["split"], r["source_path"]) for r in records}
    assert {(s, r["source_path"]) for s, records_ in rows.items() for r in records_} == expected
    assert block["duplicates"] == []


def test_demo_gallery_is_deterministic(tmp_path: Path) -> None:
    first = demo_source.build(tmp_path / "a", seed=0)
    second = demo_source.build(tmp_path / "b", seed=0)
    assert tree_bytes(first) == tree_bytes(second)


def _fake_records() -> tuple[list[dict], dict]:
    colours = {"red": (200, 0, 0), "blue": (0, 0, 200)}
    records = []
    for name, colour in colours.items():
        for split, count in (("gallery", 2), ("reference", 1)):
            for k in range(count):
                records.append(
                    {
                        "image": Image.new(
                            "RGB", (4, 4), (colour[0], colour[1] + 10 * k + (split == "reference"), colour[2])
                        ),
                        "identity": name,
                        "identity_name": name.title(),
                        "group": "dots",
                        "split": split,
                        "source_path": f"synthetic/dots/{name}/{split}_{k}.png",
                    }
                )
    info = {
        "groups": {"dots": {"noun": "dot", "identities": list(colours)}},
        "prompts": ["a {X}"],
        "recommended_encoders": {"primary": "fp-rank-demo", "general": ["fp-rank-demo"], "specialist": []},
        "description": "two dots",
    }
    return records, info


def test_records_with_a_fake_generator(tmp_path: Path) -> None:
    records, info = _fake_records()
    out = demo_source.build_from_records(records, info, tmp_path / "out", seed=3)
    block = card_of(out)["fp_rank"]
    assert block["counts"] == {"dots": {"gallery": 4, "reference": 2, "holdout": 0}}
    assert block["prompts"] == ["a {X}"]


def test_bad_records_are_refused(tmp_path: Path) -> None:
    records, info = _fake_records()
    records[0] = {**records[0], "split": "train"}
    with pytest.raises(BuilderError, match="split 'train'"):
        demo_source.build_from_records(records, info, tmp_path / "out", seed=0)
    records, info = _fake_records()
    del records[1]["identity"]
    with pytest.raises(BuilderError, match="lacks \\['identity'\\]"):
        demo_source.build_from_records(records, info, tmp_path / "out", seed=0)
    assert not (tmp_path / "out").exists()


def test_identical_synthetic_images_are_reported(tmp_path: Path) -> None:
    records, info = _fake_records()
    records.append({**records[0], "split": "holdout", "source_path": "synthetic/dots/red/holdout_0.png"})
    out = demo_source.build_from_records(records, info, tmp_path / "out", seed=0)
    block = card_of(out)["fp_rank"]
    assert block["duplicates"][0]["source_path"] == "synthetic/dots/red/holdout_0.png"
    assert block["counts"]["dots"]["holdout"] == 0
