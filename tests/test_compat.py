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
