"""The two ranking paths agree: the compiled kernel (Numba) and the NumPy definition (the fallback).

The NumPy path is the one checked against textbook loops and exhaustive tie enumeration in
``test_ranking.py``; the compiled kernel must give the same per-query numbers on inputs full of
ties, in both dtypes, on both branches (few vs many relevant items; few vs many candidates), with
queries lacking relevant items, and fail the same way on NaN and inf. Tensors and half precision
go through the same interface (read on the CPU, widened exactly).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fp_rank.ranking.accumulate as accumulate_mod
from fp_rank import rank_metrics
from fp_rank.errors import InputError
from fp_rank.ranking import compiled
from fp_rank.ranking.metrics import rank_metrics_from_embeddings

KS = (1, 3, 10)


@pytest.fixture
def numpy_path(monkeypatch):
    """Run a callable with the compiled kernel switched off, as on a machine without Numba."""

    def run(fn):
        monkeypatch.setenv("FP_RANK_NO_NUMBA", "1")
        compiled.reset()
        try:
            return fn()
        finally:
            monkeypatch.delenv("FP_RANK_NO_NUMBA")
            compiled.reset()

    return run


def _assert_same(a, b, tol=1e-12):
    for name in ("top1", "tied", "scored", "missing", "n_relevant"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    pairs = {"ap": (a.ap, b.ap), "inp": (a.inp, b.inp), "first": (a.first_hit_rank, b.first_hit_rank)}
    pairs.update({f"cmc@{k}": (a.cmc[k], b.cmc[k]) for k in a.cmc})
    pairs.update({f"recall@{k}": (a.recall[k], b.recall[k]) for k in a.recall})
    for name, (x, y) in pairs.items():
        np.testing.assert_allclose(x, y, rtol=0, atol=tol, equal_nan=True, err_msg=name)


def _case(rng, n_q, n_g, n_ids, levels, dtype, shift=0.0):
    g = rng.integers(0, n_ids, n_g)
    q = rng.integers(0, n_ids + 1, n_q)  # identity n_ids has no gallery item: a missing query
    if levels:
        sim = rng.integers(0, levels, (n_q, n_g)) / levels  # heavy ties
    else:
        sim = rng.standard_normal((n_q, n_g))
    sim[g[None, :] == q[:, None]] += shift
    return sim.astype(dtype), q, g


def test_compiled_kernel_is_used_when_numba_is_installed(monkeypatch):
    pytest.importorskip("numba")
    assert compiled.available()
    calls = []
    real = compiled.score_rows
    monkeypatch.setattr(compiled, "score_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    rank_metrics(np.random.default_rng(0).random((4, 50)), [0, 1, 0, 1], np.arange(50) % 2)
    assert calls


def test_without_a_writable_cache_folder_the_kernel_compiles_per_process(tmp_path):
    """Numba refuses ``cache=True`` when no folder is writable (read-only install, unwritable home)."""
    pytest.importorskip("numba")
    code = (
        "import numpy as np\n"
        "from numba.core import caching\n"
        "def unwritable(self): raise OSError('read-only')\n"
        "caching._CacheLocator.ensure_cache_path = unwritable  # as if no cache folder were writable\n"
        "from fp_rank import rank_metrics\n"
        "from fp_rank.ranking import _numba_counts, compiled\n"
        "res = rank_metrics(np.array([[0.9, 0.1, 0.8]]), ['a'], ['a', 'b', 'a'])\n"
        "print(_numba_counts.CACHED, compiled.available(), res.ap.tolist())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "True", "[1.0]"]


def test_the_kernel_cache_is_keyed_on_every_kernel_file(tmp_path):
    """The entry point compiles in functions from other files; an upgrade changing only those must
    not load the old machine code that pip leaves in __pycache__."""
    pytest.importorskip("numba")
    from numba.core import caching

    from fp_rank.ranking import _numba_cache, _numba_counts, _numba_kernels, scalar

    stamp = ("fp-rank ranking kernel", _numba_cache.sources_digest())
    for fn in (_numba_kernels.score_rows, _numba_counts.order_by_cells, _numba_kernels._expected_inp):
        assert caching.CompileResultCacheImpl(fn.py_func).locator.get_source_stamp() == stamp
    assert not getattr(caching.CompileResultCacheImpl(_plain).locator, "fp_rank_kernel", False)  # others: Numba's own
    here = Path(scalar.__file__).parent
    for name in _numba_cache.KERNEL_FILES:
        copy = tmp_path / name
        for other in _numba_cache.KERNEL_FILES:
            (tmp_path / other).write_bytes((here / other).read_bytes())
        assert _numba_cache.sources_digest(tmp_path) == _numba_cache.sources_digest()
        copy.write_bytes(copy.read_bytes() + b"# changed\n")
        _numba_cache.sources_digest.cache_clear()
        assert _numba_cache.sources_digest(tmp_path) != stamp[1], name
        _numba_cache.sources_digest.cache_clear()


def _plain(x):
    return x


def test_switched_off_compiled_kernel_still_ranks(numpy_path):
    assert numpy_path(lambda: compiled.available()) is False
    res = numpy_path(lambda: rank_metrics(np.array([[0.9, 0.1, 0.8]]), ["a"], ["a", "b", "a"]))
    assert res.ap.tolist() == [1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n_ids, levels, shift",
    [
        (12, 0, 0.0),  # few relevant, continuous scores, nearly every item a candidate
        (12, 7, 0.0),  # few relevant, heavy ties
        (12, 0, 3.0),  # few relevant near the top: few candidates (the compacted branch)
        (2, 0, 0.0),  # many relevant (> SMALL_U distinct): the cell histogram
        (2, 50, 0.0),  # many relevant with ties inside cells
        (2, 2000, 1.0),  # many relevant, few candidates
        (2, 20, 3.0),  # many relevant above every other item, heavy ties: cells holding only relevant scores
        (3, 1, 0.0),  # every score equal
    ],
)
def test_compiled_matches_numpy_path(numpy_path, dtype, n_ids, levels, shift):
    rng = np.random.default_rng(hash((n_ids, levels, shift, np.dtype(dtype).name)) % 2**32)
    sim, q, g = _case(rng, 40, 600, n_ids, levels, dtype, shift)
    ours = rank_metrics(sim, q, g, cmc_ks=KS, on_missing="skip")
    base = numpy_path(lambda: rank_metrics(sim, q, g, cmc_ks=KS, on_missing="skip"))
    if n_ids == 2:
        assert ours.n_relevant.max() > compiled.SMALL_U
    _assert_same(ours, base)
    np.testing.assert_array_equal(ours.top1, sim.argmax(axis=1))  # the first maximum, ties included


def test_compiled_matches_numpy_path_on_many_random_shapes(numpy_path):
    rng = np.random.default_rng(7)
    for trial in range(60):
        sim, q, g = _case(
            rng, int(rng.integers(1, 25)), int(rng.integers(1, 300)), int(rng.integers(1, 15)),
            int(rng.integers(0, 30)), (np.float32, np.float64)[trial % 2], float(rng.choice([0.0, 0.5, 3.0])),
        )
        for on_missing in ("skip", "zero"):
            ours = rank_metrics(sim, q, g, cmc_ks=KS, on_missing=on_missing)
            base = numpy_path(lambda: rank_metrics(sim, q, g, cmc_ks=KS, on_missing=on_missing))  # noqa: B023
            _assert_same(ours, base)


def test_compiled_path_takes_strided_and_fortran_ordered_matrices(numpy_path):
    sim, q, g = _case(np.random.default_rng(2), 30, 120, 6, 9, np.float64)
    base = numpy_path(lambda: rank_metrics(sim, q, g, cmc_ks=KS, on_missing="skip"))
    for view in (np.asfortranarray(sim), np.ascontiguousarray(sim.T).T, np.repeat(sim, 2, axis=1)[:, ::2]):
        assert not view.flags.c_contiguous
        _assert_same(rank_metrics(view, q, g, cmc_ks=KS, on_missing="skip"), base)


def test_compiled_handles_signed_zeros_and_extremes(numpy_path):
    g = np.array([0, 1, 0, 1, 0, 1, 0])
    sim = np.array([[0.0, -0.0, -0.0, 0.0, 1e308, -1e308, 5e-324], [-0.0] * 7])
    ours = rank_metrics(sim, [0, 1], g, cmc_ks=KS)
    _assert_same(ours, numpy_path(lambda: rank_metrics(sim, [0, 1], g, cmc_ks=KS)))


@pytest.mark.parametrize("scale", [1e308, 1e-310, 1e-320])
def test_many_relevant_scores_over_extreme_ranges(numpy_path, scale):
    """More than SMALL_U distinct relevant scores spread over ranges whose width overflows or
    underflows (the cell histogram would have no finite scale): still exact."""
    rng = np.random.default_rng(4)
    g = np.arange(200) % 2
    sim = rng.uniform(-1.0, 1.0, (6, 200)) * scale
    sim[:, :10] = sim[:, 10:20]  # ties
    assert (np.unique(sim[0, g == 0]).size > compiled.SMALL_U)
    _assert_same(rank_metrics(sim, [0, 1, 0, 1, 0, 1], g, cmc_ks=KS),
                 numpy_path(lambda: rank_metrics(sim, [0, 1, 0, 1, 0, 1], g, cmc_ks=KS)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 3])
def test_non_finite_rows_are_named_by_every_path(numpy_path, bad, row):
    sim = np.random.default_rng(0).random((5, 40))
    sim[row, 17] = bad
    q, g = [0, 1, 0, 1, 2], np.arange(40) % 2  # query 4 has no relevant item: still checked
    expected = f"similarity row {row} holds NaN or inf"
    with pytest.raises(InputError, match=expected):
        rank_metrics(sim, q, g, on_missing="skip")
    with pytest.raises(InputError, match=expected):
        numpy_path(lambda: rank_metrics(sim, q, g, on_missing="skip"))


def test_non_finite_row_without_relevant_items_is_caught():
    sim = np.zeros((2, 30))
    sim[1, 3] = np.nan
    with pytest.raises(InputError, match="similarity row 1"):
        rank_metrics(sim, [0, 9], np.zeros(30, dtype=int), on_missing="skip")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_tensors_are_ranked_as_their_arrays(dtype):
    """A tensor (any dtype) gives the numbers of its values as a float array (half precision widened exactly)."""
    sim, q, g = _case(np.random.default_rng(3), 30, 500, 12, 5, np.float64)
    t = torch.from_numpy(sim).to(dtype)
    as_array = t.float().numpy() if dtype in (torch.float16, torch.bfloat16) else t.numpy()
    _assert_same(rank_metrics(t, q, g, cmc_ks=KS, on_missing="zero"), rank_metrics(as_array, q, g, cmc_ks=KS,
                                                                                       on_missing="zero"), tol=0)


def test_half_precision_arrays_take_the_compiled_kernel(monkeypatch):
    """float16 similarities are widened to float32, so the compiled kernel scores them (not the NumPy path)."""
    sim, q, g = _case(np.random.default_rng(4), 20, 300, 8, 7, np.float32)
    calls = []
    real = accumulate_mod._score_block_compiled
    monkeypatch.setattr(accumulate_mod, "_score_block_compiled", lambda *a, **k: calls.append(a[0].dtype) or real(*a, **k))
    half = rank_metrics(sim.astype(np.float16), q, g, cmc_ks=KS, on_missing="zero")
    assert calls and calls[0] == np.float32
    _assert_same(half, rank_metrics(sim.astype(np.float16).astype(np.float32), q, g, cmc_ks=KS, on_missing="zero"), tol=0)


def test_embeddings_given_as_tensors_equal_their_arrays():
    rng = np.random.default_rng(11)
    qe, ge = rng.standard_normal((37, 16)), rng.standard_normal((210, 16))
    qi, gi = rng.integers(0, 9, 37), rng.integers(0, 9, 210)
    ours = rank_metrics_from_embeddings(torch.from_numpy(qe).float(), torch.from_numpy(ge).float(), qi, gi,
                                        cmc_ks=KS, chunk_size=8)
    base = rank_metrics_from_embeddings(qe.astype(np.float32), ge.astype(np.float32), qi, gi, cmc_ks=KS, chunk_size=8)
    _assert_same(ours, base, tol=0)
    np.testing.assert_array_equal(ours.extras["top1_score"], base.extras["top1_score"])


def test_concurrent_first_callers_all_wait_for_the_compiled_kernel(monkeypatch):
    """The kernel is marked loaded only once it has loaded: no first caller takes the NumPy path meanwhile."""
    import threading
    import time

    compiled.reset()
    real = compiled._import_kernel

    def slow_import():
        time.sleep(0.3)
        return real()

    monkeypatch.setattr(compiled, "_import_kernel", slow_import)
    seen: list[bool] = []
    threads = [threading.Thread(target=lambda: seen.append(compiled.available())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 4


def test_ranking_imports_no_torch():
    code = "import sys, numpy as np; from fp_rank import rank_metrics; rank_metrics(np.eye(3), [0, 1, 2], [0, 1, 2]); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("n, r", [(200_000, 200), (3000, 1000), (50, 1), (5000, 70)])
def test_cmc_in_one_big_tie_group_is_exact_on_both_paths(numpy_path, n, r):
    """Every score equal: CMC@k = 1 - C(n - k, r) / C(n, r), computed here in exact integers."""
    from fractions import Fraction
    from math import comb

    ks = (1, 2, 5, 10, 100)
    g = np.zeros(n, dtype=int)
    g[:r] = 1
    sim = np.zeros((1, n))
    expected = {k: float(1 - Fraction(comb(n - k, r), comb(n, r))) if n - k >= r else 1.0 for k in ks}
    for res in (rank_metrics(sim, [1], g, cmc_ks=ks), numpy_path(lambda: rank_metrics(sim, [1], g, cmc_ks=ks))):
        for k in ks:
            assert abs(res.cmc[k][0] - expected[k]) <= 1e-14, (k, res.cmc[k][0], expected[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_candidates_are_the_items_at_or_above_the_cut_in_order(dtype):
    from fp_rank.ranking import _numba_counts as kernels

    rng = np.random.default_rng(11)
    for n in [*range(0, 140), 1000, 4097]:
        for cut in (-np.inf, -1.0, 0.5, 2.5, 10.0):
            x = rng.standard_normal(n).astype(dtype)
            x[rng.random(n) < 0.1] = dtype(cut) if np.isfinite(cut) else 0  # items exactly at the cut
            out = np.full(n, np.nan, dtype=dtype)
            k = kernels._candidates(x, dtype(cut), out)
            expected = x[x >= dtype(cut)]
            assert k == expected.size and np.array_equal(out[:k], expected), (n, cut)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_scores_counted_in_one_pass(dtype):
    from fp_rank.ranking import _numba_counts as kernels

    rng = np.random.default_rng(12)
    for n in (0, 1, 7, 64, 1001):
        x = np.round(rng.standard_normal(n), 1).astype(dtype)  # many ties with the scores below
        for a, b in ((0.5, 0.5), (1.0, -0.3), (-np.inf, np.inf), (0.0, -0.0)):
            a, b = dtype(a), dtype(b)
            want = (int((x > a).sum()), int((x >= a).sum()), int((x > b).sum()), int((x >= b).sum()))
            assert tuple(int(c) for c in kernels._gt_ge_pair(x, a, b)) == want, (n, a, b)
