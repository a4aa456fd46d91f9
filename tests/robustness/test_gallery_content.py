"""Reliability round 2, galleries and builders: a gallery is its content.

Classes: a folder rebuilt with the same names, sizes and restored mtimes loads fresh (the cache key
and fingerprint come from the bytes), data files named by a card stay inside the folder, a card's
YAML cannot expand without bound (aliases), and builders do not follow links out of the source.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

import fp_rank
from fp_rank.errors import BuilderError, GalleryError
from fp_rank.galleries import card as gallery_card
from fp_rank.galleries import datasets_cache
from fp_rank.galleries.build.sources import following_symlinks
from tests.builders_fixtures import make_cub, private_datasets_cache  # noqa: F401 (autouse fixture)
from tests.gallery_fixtures import png_bytes, write_gallery


def _rows(order: list[int]) -> dict[str, list[dict[str, str | bytes]]]:
    gallery = [{"image": png_bytes(seed), "identity": f"id{k % 2}", "group": "g"} for k, seed in enumerate(order)]
    reference = [{"image": png_bytes(100 + k), "identity": f"id{k}", "group": "g"} for k in range(2)]
    return {"gallery": gallery, "reference": reference}


def test_rebuilt_folder_with_restored_names_sizes_and_mtimes_loads_fresh(tmp_path: Path) -> None:
    served = write_gallery(tmp_path / "served", _rows([1, 2, 3, 4]))
    rebuilt = write_gallery(tmp_path / "rebuilt", _rows([3, 2, 1, 4]))  # two images swap identities
    first = fp_rank.load_gallery(served, progress=False)
    expected = fp_rank.load_gallery(rebuilt, progress=False).fingerprint
    assert expected != first.fingerprint
    for new in sorted((rebuilt / "data").iterdir()):
        old = served / "data" / new.name
        assert old.stat().st_size == new.stat().st_size  # same names and sizes: only the bytes differ
        stamp = old.stat().st_mtime_ns
        shutil.copyfile(new, old)
        os.utime(old, ns=(stamp, stamp))  # what cp -p / rsync -t leave behind
    again = fp_rank.load_gallery(served, progress=False)
    assert again.fingerprint == expected
    assert [h for h in again.gallery.hashes] == [h for h in fp_rank.load_gallery(rebuilt, progress=False).gallery.hashes]


def test_file_digests_are_remembered_only_while_the_file_is_unchanged(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"aaaa")
    key_a = datasets_cache._local_cache_dir(tmp_path)
    assert datasets_cache._local_cache_dir(tmp_path) == key_a
    stamp = (tmp_path / "a.bin").stat().st_mtime_ns
    with open(tmp_path / "a.bin", "r+b") as fh:  # same inode, same size, mtime restored
        fh.write(b"bbbb")
    os.utime(tmp_path / "a.bin", ns=(stamp, stamp))
    assert datasets_cache._local_cache_dir(tmp_path) != key_a


@pytest.mark.parametrize("path", ["../outside/*.parquet", "/etc/passwd", "data/../../x.parquet", "~/x.parquet"])
def test_card_data_files_must_stay_inside_the_folder(tmp_path: Path, path: str) -> None:
    folder = write_gallery(tmp_path / "g", _rows([1, 2, 3, 4]))
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("path: data/gallery-*.parquet", f"path: {path!r}"))
    with pytest.raises(GalleryError, match="outside the gallery folder"):
        fp_rank.load_gallery(folder, progress=False)


def test_card_data_file_linking_out_is_refused(tmp_path: Path) -> None:
    outside = write_gallery(tmp_path / "outside", _rows([1, 2, 3, 4]))
    folder = write_gallery(tmp_path / "g", _rows([5, 6, 7, 8]))
    target = folder / "data" / "gallery-00000-of-00001.parquet"
    target.unlink()
    target.symlink_to(outside / "data" / "gallery-00000-of-00001.parquet")
    with pytest.raises(GalleryError, match="outside the gallery folder"):
        fp_rank.load_gallery(folder, progress=False)


def test_card_yaml_aliases_are_refused_quickly(tmp_path: Path) -> None:
    folder = write_gallery(tmp_path / "g", _rows([1, 2, 3, 4]))
    bomb = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
                     + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)])
    assert len(bomb) < 1000
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("---\n", "---\n" + bomb + "\n", 1))
    start = time.perf_counter()
    with pytest.raises(GalleryError, match="alias"):
        fp_rank.load_gallery(folder, progress=False)
    assert time.perf_counter() - start < 2.0


def test_card_node_count_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(gallery_card, "MAX_CARD_NODES", 50)
    with pytest.raises(GalleryError, match="more than 50 nodes"):
        gallery_card.parse_card_yaml("[" + ", ".join(["1"] * 100) + "]", "card")
    assert gallery_card.parse_card_yaml("a: [1, 2]", "card") == {"a": [1, 2]}


def test_written_cards_never_use_aliases() -> None:
    import yaml

    from fp_rank.galleries.build.card import _CardDumper

    shared = ["x", "y"]
    text = yaml.dump({"a": shared, "b": shared}, Dumper=_CardDumper)
    assert "&" not in text and "*" not in text
    assert gallery_card.parse_card_yaml(text, "card") == {"a": shared, "b": shared}


def test_builders_refuse_links_out_of_the_source_unless_asked(tmp_path: Path) -> None:
    from gallery_builders import cub

    root = make_cub(tmp_path / "src")
    secret = tmp_path / "secret.jpg"
    victim = next((root / "images").rglob("*.jpg"))
    shutil.copyfile(victim, secret)
    victim.unlink()
    victim.symlink_to(secret)
    with pytest.raises(BuilderError, match="outside the source folder"):
        cub.build(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with following_symlinks():
        assert cub.build(root, tmp_path / "out", progress=False).is_dir()


def test_builder_cli_has_follow_symlinks(tmp_path: Path, capsys) -> None:
    from gallery_builders.__main__ import main

    root = make_cub(tmp_path / "src")
    victim = next((root / "images").rglob("*.jpg"))
    shutil.copyfile(victim, tmp_path / "secret.jpg")
    victim.unlink()
    victim.symlink_to(tmp_path / "secret.jpg")
    assert main(["cub", "--source", str(root), "--out", str(tmp_path / "o1"), "--no-progress"]) == 2
    assert "--follow-symlinks" in capsys.readouterr().err
    assert main(["cub", "--source", str(root), "--out", str(tmp_path / "o2"), "--no-progress", "--follow-symlinks"]) == 0
