"""Property tests (hypothesis): the ranking maths over whole query blocks, and the input validators
fed random junk (only our InputError, or success, may come out)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import fp_rank
from fp_rank import InputError, rank_metrics
from fp_rank.evaluation.check import check_gallery_argument
from fp_rank.options import resolve_options
from fp_rank.runs import Run
from tests.gallery_fixtures import png_bytes, write_gallery

# --- ranking maths ---------------------------------------------------------------------------------


@st.composite
def ranking_blocks(draw: st.DrawFn) -> tuple[np.ndarray, list[str], list[str]]:
    """A (Q, N) block of similarities with ties and negative values, string labels, every query
    having at least one relevant gallery item."""
    n_gallery = draw(st.integers(1, 10))
    labels = ["a", "b", "c", "d"]
    gallery_ids = draw(st.lists(st.sampled_from(labels), min_size=n_gallery, max_size=n_gallery))
    n_queries = draw(st.integers(1, 5))
    query_ids = draw(st.lists(st.sampled_from(sorted(set(gallery_ids))), min_size=n_queries, max_size=n_queries))
    values = st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0])  # few values: many ties
    sim = np.asarray(
        draw(st.lists(st.lists(values, min_size=n_gallery, max_size=n_gallery), min_size=n_queries, max_size=n_queries))
    )
    return sim, query_ids, gallery_ids


KS = (1, 2, 3, 5, 10)


@settings(max_examples=150, deadline=None)
@given(block=ranking_blocks(), data=st.data())
def test_rank_metrics_properties(block: tuple[np.ndarray, list[str], list[str]], data: st.DataObject) -> None:
    sim, q_ids, g_ids = block
    res = rank_metrics(sim, q_ids, g_ids, cmc_ks=KS)
    n_q, n_g = sim.shape
    # bounds
    assert np.all((res.ap > 0) & (res.ap <= 1 + 1e-12))
    assert np.all((res.inp > 0) & (res.inp <= 1 + 1e-12))
    assert np.all((res.chance_ap > 0) & (res.chance_ap <= 1 + 1e-12))
    assert np.all((res.first_hit_rank >= 1) & (res.first_hit_rank <= n_g))
    # CMC is a distribution function of the first-hit rank: monotone in k, 1 once k >= N
    for small, large in zip(KS, KS[1:]):
        assert np.all(res.cmc[small] <= res.cmc[large] + 1e-12)
    for k in KS:
        if k >= n_g:
            np.testing.assert_allclose(res.cmc[k], 1.0)
    # gallery order never matters (ties are an expectation, not an argsort accident)
    perm = np.asarray(data.draw(st.permutations(list(range(n_g)))))
    shuffled = rank_metrics(sim[:, perm], q_ids, [g_ids[j] for j in perm], cmc_ks=KS)
    np.testing.assert_allclose(shuffled.ap, res.ap, atol=1e-12)
    for k in KS:
        np.testing.assert_allclose(shuffled.cmc[k], res.cmc[k], atol=1e-12)
    # only the order of the scores matters: shift and positive scale change nothing
    affine = rank_metrics(3.0 * sim - 7.0, q_ids, g_ids, cmc_ks=KS)
    np.testing.assert_allclose(affine.ap, res.ap, atol=1e-12)
    # each query row is scored independently of the others in its block
    row = data.draw(st.integers(0, n_q - 1))
    alone = rank_metrics(sim[row : row + 1], [q_ids[row]], g_ids, cmc_ks=KS)
    assert alone.ap[0] == pytest.approx(res.ap[row], abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(block=ranking_blocks(), data=st.data())
def test_raising_a_relevant_score_never_lowers_ap_and_separation_gives_one(
    block: tuple[np.ndarray, list[str], list[str]], data: st.DataObject
) -> None:
    sim, q_ids, g_ids = block
    row = sim[:1]
    relevant = np.asarray([g == q_ids[0] for g in g_ids])
    before = rank_metrics(row, q_ids[:1], g_ids, cmc_ks=KS)
    j = int(data.draw(st.sampled_from(np.flatnonzero(relevant).tolist())))
    bumped = row.copy()
    bumped[0, j] += data.draw(st.sampled_from([0.25, 0.5, 2.0]))
    after = rank_metrics(bumped, q_ids[:1], g_ids, cmc_ks=KS)
    assert after.ap[0] >= before.ap[0] - 1e-12
    for k in KS:
        assert after.cmc[k][0] >= before.cmc[k][0] - 1e-12
    # every relevant item strictly above every other one: AP = CMC@1 = INP = 1
    separated = np.where(relevant, 5.0, 0.0)[None, :] + 1e-3 * row
    perfect = rank_metrics(separated, q_ids[:1], g_ids, cmc_ks=KS)
    assert perfect.ap[0] == pytest.approx(1.0)
    assert perfect.cmc[1][0] == pytest.approx(1.0)
    assert perfect.inp[0] == pytest.approx(1.0)


# --- validators with random junk ------------------------------------------------------------------

junk_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True), st.text(max_size=6),
    st.binary(max_size=6), st.just(object()), st.just(float("inf")),
)
junk = st.one_of(
    junk_scalar,
    st.lists(junk_scalar, max_size=4),
    st.tuples(junk_scalar, junk_scalar),
    st.dictionaries(st.text(max_size=3), junk_scalar, max_size=2),
    st.just(np.zeros((2, 2))),
    st.lists(st.integers(), max_size=3).map(iter),
)


@settings(max_examples=400, deadline=None)
@given(
    generated=junk, identities=junk, gallery=junk, methods=junk, prompts=junk, seeds=junk, files=junk,
    batch_size=junk, on_missing=junk, on_invalid=junk, cmc_ks=junk, top_k=junk, flag=junk,
)
def test_argument_validator_raises_only_input_error(**kwargs: Any) -> None:
    """The checks run before any work (the run's arguments, the gallery argument, the options) raise only InputError."""
    options = {k: kwargs.pop(k) for k in ("batch_size", "on_missing", "on_invalid", "cmc_ks", "top_k")}
    options["cache"] = kwargs.pop("flag")
    gallery = kwargs.pop("gallery")
    try:
        run = Run.from_arguments(kwargs.pop("generated"), kwargs.pop("identities"), **kwargs)
        check_gallery_argument(gallery)
        resolve_options(options)
    except InputError:
        return
    assert len(run) >= 1


@pytest.fixture(scope="module")
def tiny_gallery(tmp_path_factory: pytest.TempPathFactory) -> fp_rank.Gallery:
    folder = tmp_path_factory.mktemp("propgal") / "g"
    gallery = [{"image": png_bytes(10 * i + j, size=32), "identity": f"id{i}", "group": "g"} for i in range(2) for j in range(2)]
    reference = [{"image": png_bytes(90 + i, size=32), "identity": f"id{i}", "group": "g"} for i in range(2)]
    return fp_rank.load_gallery(str(write_gallery(folder, {"gallery": gallery, "reference": reference})), progress=False)


def _picture(seed: int) -> Image.Image:
    return Image.open(io.BytesIO(png_bytes(seed, size=32))).convert("RGB")


good_image = st.one_of(
    st.integers(0, 5).map(lambda s: png_bytes(300 + s, size=32)),
    st.integers(0, 5).map(_picture),
    st.integers(0, 5).map(lambda s: np.asarray(_picture(s))),
)
bad_image = st.one_of(
    st.binary(max_size=20),
    st.just(np.full((3, 3, 3), 0.5)),  # a flat picture: works (valid input among the junk)
    st.just(np.zeros((4,))),
    st.none(),
    st.just("/nonexistent.png"),
    st.just({"bytes": None}),
    st.just({"path": 3}),  # an int path must not be opened as a file descriptor
    st.just({"bytes": "text"}),
)


def _mostly(data: st.DataObject, valid: st.SearchStrategy, invalid: st.SearchStrategy, odds: int = 8) -> Any:
    """A valid value ``odds`` times out of ``odds + 1``, junk otherwise (so runs get deep)."""
    # hypothesis favours small integers, so the rare branch is the largest one
    return data.draw(invalid if data.draw(st.integers(0, odds)) == odds else valid)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_evaluate_with_random_inputs_raises_only_input_errors(tiny_gallery: fp_rank.Gallery, data: st.DataObject) -> None:
    n = _mostly(data, st.integers(1, 5), st.just(0))
    generated = [_mostly(data, good_image, bad_image, odds=5) for _ in range(n)]
    ids = st.sampled_from(["id0", "id1"])
    identities = _mostly(data, st.one_of(st.lists(ids, min_size=n, max_size=n), ids), st.one_of(junk, st.just(["id9"] * n)))
    options = {
        "methods": _mostly(data, st.one_of(st.none(), st.lists(st.sampled_from(["m", "n"]), min_size=n, max_size=n)), junk),
        "on_invalid": _mostly(data, st.sampled_from(["error", "skip"]), junk),
        "on_missing": _mostly(data, st.sampled_from(["error", "skip"]), junk),
        "batch_size": _mostly(data, st.integers(1, 4), junk),
        "cmc_ks": _mostly(data, st.lists(st.integers(1, 6), max_size=3), junk),
        "leaks": _mostly(data, st.sampled_from(["flag", "exclude", "off"]), junk),
        "top_k": _mostly(data, st.integers(0, 3), junk),
    }
    try:
        report = fp_rank.evaluate(
            generated, identities, gallery=tiny_gallery, encoder="fp-rank-demo", progress=False, cache=False,
            ceilings=False, **options,
        )
    except InputError:
        return
    assert report.results
    for result in report.results:
        if result.n_queries:
            assert 0 <= result.map <= 1
        else:  # a method whose images were all skipped stays in the report, with no score
            assert np.isnan(result.map)
    assert len(report.queries) + len(report.skipped) <= n
