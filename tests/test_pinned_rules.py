"""Rules pinned against values worked out by hand, so that a plausible one-token bug changes a test.

Each test names the mutant it kills (a mutation pass on main left these alive): group values
replaced by the overall mean (macro = micro), the cache key without the device type, the leak
guard's ``<=`` made ``<`` at its thresholds, ``reference:N`` read as a file path, and the
paired comparison's sign flipped.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fp_rank.caching.store import cache_key
from fp_rank.checks.leakage import LeakIndex, leak_fingerprint
from fp_rank.errors import InputError
from fp_rank.reporting.aggregate import summarise
from fp_rank.runs.manifest import read_manifest
from fp_rank.stats import paired_comparison


def test_macro_is_the_mean_of_group_means_not_of_queries() -> None:
    # group x: APs 1.0, 0.5, 0.0 (mean 0.5); group y: AP 1.0 (mean 1.0)
    # macro = (0.5 + 1.0) / 2 = 0.75; micro = 2.5 / 4 = 0.625
    rows = [{"encoder": "e", "method": "m", "identity": i, "group": g, "ap": ap, "pairwise": 0.0}
            for i, g, ap in (("a", "x", 1.0), ("b", "x", 0.5), ("c", "x", 0.0), ("d", "y", 1.0))]
    result = summarise(rows, [], encoders=["e"], methods=["m"], ks=(1,))[0]
    assert result.map == pytest.approx(0.75) and result.map_micro == pytest.approx(0.625)
    assert result.map_per_group == {"x": pytest.approx(0.5), "y": pytest.approx(1.0)}
    assert result.map_per_identity == {"a": 1.0, "b": 0.5, "c": 0.0, "d": 1.0}


def test_an_evaluation_aggregates_its_rows_by_group_then_over_groups(demo_gallery_dir, demo_generated) -> None:
    import fp_rank

    # unequal numbers of queries per group, so macro and micro differ
    recs = [r for r in demo_generated if r["method"] == "faithful"]
    keep = [r for k, r in enumerate(recs) if not r["identity"].startswith("jay") or k % 5 == 0]
    report = fp_rank.evaluate([r["image"] for r in keep], [r["identity"] for r in keep], gallery=str(demo_gallery_dir),
                              encoder="fp-rank-demo", progress=False, cache=False, ceilings=False)
    by_group: dict[str, list[float]] = {}
    for row in report.queries:
        by_group.setdefault(row["group"], []).append(row["ap"])
    macro = sum(sum(v) / len(v) for v in by_group.values()) / len(by_group)
    micro = sum(sum(v) for v in by_group.values()) / sum(len(v) for v in by_group.values())
    assert abs(macro - micro) > 1e-3  # the design tells them apart
    assert report.map == pytest.approx(macro, abs=1e-12) and report.map_micro == pytest.approx(micro, abs=1e-12)


def test_the_cache_key_tells_devices_apart() -> None:
    identity = {"model_id": "m", "revision": "r", "pooling": "cls", "preprocessing": {}, "dtype": "float32"}
    cpu = cache_key({**identity, "device_type": "cpu"}, "content")
    gpu = cache_key({**identity, "device_type": "cuda"}, "content")
    assert cpu != gpu and cpu == cache_key({**identity, "device_type": "cpu"}, "content")


@pytest.fixture(scope="module")
def real_fingerprint() -> tuple[int, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return leak_fingerprint(Image.fromarray(rng.integers(40, 200, (64, 64, 3), dtype=np.uint8)))


def _index(fp: tuple[int, np.ndarray, np.ndarray], **thresholds) -> LeakIndex:
    index = LeakIndex(min_texture_corr=1.0001, **thresholds)  # the texture route off: the hash and thumbnail decide
    index.add("gallery", ["real"], sha256=["0" * 64], fingerprints={0: fp})
    return index


def test_the_leak_guard_flags_a_copy_exactly_at_its_hash_threshold(real_fingerprint) -> None:
    phash, thumb, texture = real_fingerprint
    flipped = (phash ^ 0b111) & (2**64 - 1)  # 3 bits differ
    copy = (flipped, thumb, texture)
    assert _index(real_fingerprint, max_distance=3).match("q", digest=None, fingerprint=copy)["distance"] == 3
    assert _index(real_fingerprint, max_distance=2).match("q", digest=None, fingerprint=copy) is None


def test_the_leak_guard_flags_a_copy_exactly_at_its_thumbnail_threshold(real_fingerprint) -> None:
    phash, thumb, texture = real_fingerprint
    brighter = (phash, (thumb.astype(np.int32) + 3).astype(np.uint8), texture)  # every pixel 3 levels up: diff 3.0
    assert _index(real_fingerprint, max_thumb_diff=3.0).match("q", digest=None, fingerprint=brighter) is not None
    assert _index(real_fingerprint, max_thumb_diff=2.99).match("q", digest=None, fingerprint=brighter) is None


def test_manifest_conditioning_reference_rows_are_rows(tmp_path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,identity,conditioning\na.png,x,reference:3\nb.png,x,7\nc.png,x,real/ref.png\nd.png,x,\n")
    assert [row.conditioning for row in read_manifest(manifest)] == [3, 7, "real/ref.png", None]
    manifest.write_text("file,identity,conditioning\na.png,x,reference:\u00b2\n")
    with pytest.raises(InputError, match=r"line 2: conditioning 'reference:\u00b2' names no row"):
        read_manifest(manifest)


def test_the_paired_difference_is_a_minus_b() -> None:
    ids = np.asarray([f"i{k}" for k in range(8)], dtype=object)
    a = np.asarray([0.9, 0.8, 0.85, 0.7, 0.95, 0.75, 0.8, 0.9])
    b = a - np.asarray([0.2, 0.1, 0.15, 0.1, 0.25, 0.05, 0.1, 0.2])  # A beats B by 0.14375 on average
    forward = paired_comparison(a, ids, ["g"] * 8, b, ids, ["g"] * 8)
    backward = paired_comparison(b, ids, ["g"] * 8, a, ids, ["g"] * 8)
    assert forward.difference == pytest.approx(0.14375) and forward.ci.low > 0
    assert backward.difference == pytest.approx(-0.14375) and backward.ci.high < 0
    assert forward.map_a == pytest.approx(a.mean()) and forward.map_b == pytest.approx(b.mean())
