"""fp-rank 0.1's spellings still work for one version, each with a deprecation warning naming its replacement."""

from __future__ import annotations

import pytest

import fp_rank
from fp_rank import FpRankDeprecationWarning
from fp_rank._compat import MOVED
from fp_rank.reporting.report import MethodResult, Report


def _report() -> Report:
    rows = [
        {"encoder": "e", "method": m, "identity": i, "group": "g", "ap": ap, "cmc1": ap, "recall1": ap, "pairwise": 0.5,
         "top1_identity": i, "file": f"{m}-{i}.png"}
        for m, base in (("a", 0.9), ("b", 0.4)) for i, ap in (("x", base), ("y", base - 0.1), ("z", base - 0.2))
    ]
    report = Report(results=[], queries=rows, metadata={"options": {"cmc_ks": [1]}})
    report.results = [MethodResult("a", "e", {"map": 0.8}, n_queries=3), MethodResult("b", "e", {"map": 0.3}, n_queries=3)]
    return report.summarise()


@pytest.mark.parametrize(
    "name, args, kwargs, new",
    [
        ("format_table", (), {}, lambda r: fp_rank.format_table(r)),
        ("to_markdown", (), {}, lambda r: fp_rank.to_markdown(r)),
        ("drift", (2,), {}, lambda r: fp_rank.drift(r, k=2)),
        ("compare", ("a", "b"), {"n_boot": 50, "n_permutations": 100}, lambda r: fp_rank.compare(r, "a", "b", n_boot=50,
                                                                                                n_permutations=100)),
        ("plan", (0.05,), {"methods": ["a", "b"]}, lambda r: fp_rank.plan(r, 0.05, methods=["a", "b"])),
    ],
)
def test_moved_report_methods_warn_and_return_what_the_functions_return(name, args, kwargs, new) -> None:
    with pytest.warns(FpRankDeprecationWarning, match=rf"Report\.{name}\(\) is deprecated .* use fp_rank\.{name}\(report"):
        old = getattr(_report(), name)(*args, **kwargs)
    assert repr(old) == repr(new(_report()))


def test_positional_arguments_of_add_intervals_keep_their_meaning() -> None:
    with pytest.warns(FpRankDeprecationWarning):
        old = _report().add_intervals(50, 0.9, 3, "bootstrap")
    new = fp_rank.add_intervals(_report(), n_boot=50, confidence=0.9, seed=3, interval="bootstrap")
    assert [r.intervals for r in old.results] == [r.intervals for r in new.results]


def test_every_moved_method_is_attached() -> None:
    for name in MOVED:
        assert callable(getattr(Report, name)), name


@pytest.mark.parametrize(
    "old, expected",
    [
        ({"check_leaks": False}, {"leaks": "off"}),
        ({"exclude_leaks": True}, {"leaks": "exclude"}),
        ({"check_leaks": True, "exclude_leaks": False}, {"leaks": "flag"}),
        ({"cache_dir": "/tmp/c"}, {"cache": "/tmp/c"}),
        ({"cache": False, "cache_dir": "/tmp/c"}, {"cache": False}),
        ({"background": "remove", "matting": "org/segmenter"}, {"background": "org/segmenter"}),
    ],
)
def test_older_option_keywords_map_to_the_merged_options(old: dict, expected: dict) -> None:
    from fp_rank.options import resolve_options

    with pytest.warns(FpRankDeprecationWarning, match="is deprecated and will be removed in fp-rank 0.3; use "):
        opts = resolve_options(old)
    for key, value in expected.items():
        assert opts[key] == value


def test_encoder_revision_is_written_into_the_encoder_choice() -> None:
    from fp_rank.options import ModelChoice, resolve_options

    with pytest.warns(FpRankDeprecationWarning):
        opts = resolve_options({"encoder": ["a/b", "c/d@v2"], "encoder_revision": ["r1", None]})
    assert opts.encoder == (ModelChoice("a/b", "r1"), ModelChoice("c/d", "v2"))
    with pytest.warns(FpRankDeprecationWarning):
        assert resolve_options({"clip_t": "clip-vit-b32", "clip_t_revision": "r"}).clip_t == ModelChoice("clip-vit-b32", "r")


@pytest.mark.parametrize(
    "old, message",
    [
        ({"check_leaks": False, "exclude_leaks": True}, "exclude_leaks=True needs check_leaks=True"),
        ({"encoder": ["a/b", "c/d"], "encoder_revision": "abc"}, "is ambiguous with 2 encoders"),
        ({"encoder": "a/b", "encoder_revision": ["x", "y"]}, "has 2 entries for 1 encoders"),
        ({"matting": "org/segmenter"}, "pass background='remove'"),
        ({"exclude_leaks": 1}, "exclude_leaks must be True or False"),
    ],
)
def test_contradictory_older_keywords_are_still_refused(old: dict, message: str) -> None:
    from fp_rank.options import resolve_options

    with pytest.warns(FpRankDeprecationWarning), pytest.raises(fp_rank.InputError, match=message):
        resolve_options(old)


def test_read_generated_is_read_run(tmp_path) -> None:
    from fp_rank.runs import read_generated, read_run

    (tmp_path / "m.csv").write_text("file,identity\na.png,x\n", encoding="utf-8")
    with pytest.warns(FpRankDeprecationWarning, match="use fp_rank.read_run"):
        old = read_generated(tmp_path / "m.csv")
    assert old == read_run(tmp_path / "m.csv")
