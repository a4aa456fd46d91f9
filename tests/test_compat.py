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
        for m, base, wobble in (("a", 0.9, 0.0), ("b", 0.4, 0.04))
        for i, ap in (("x", base), ("y", base - 0.1 + wobble), ("z", base - 0.2), ("x", base - 0.03 - wobble),
                      ("y", base - 0.12), ("z", base - 0.15 + wobble))
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
        ({"check_leaks": False, "exclude_leaks": True}, "exclude_leaks=True and check_leaks=False contradict"),
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


def test_read_generated_gives_the_lists_of_0_1(tmp_path) -> None:
    from fp_rank.runs import read_generated, read_run

    (tmp_path / "m.csv").write_text("file,identity,method\na.png,x,m\nb.png,y,m\n", encoding="utf-8")
    with pytest.warns(FpRankDeprecationWarning, match="use fp_rank.read_run"):
        old = read_generated(tmp_path / "m.csv")
    fields = lambda run: [(g.source, g.identity, g.method, g.prompt, g.seed) for g in run]  # noqa: E731
    assert fields(old.as_run()) == fields(read_run(tmp_path / "m.csv"))
    assert old.files == [str(tmp_path / "a.png"), str(tmp_path / "b.png")] and old.identities == ["x", "y"]
    old.add("c.png", "z", "m")
    kwargs = old.as_kwargs()
    assert kwargs["generated"][-1] == "c.png" and kwargs["methods"] == ["m"] * 3 and kwargs["conditioning"] is None


@pytest.mark.parametrize(
    "given, message",
    [
        ({"leaks": "off", "exclude_leaks": True}, "exclude_leaks=True .deprecated. and leaks='off' say different things"),
        ({"leaks": "exclude", "check_leaks": False}, "check_leaks=False .deprecated. and leaks='exclude'"),
        ({"cache": "/a", "cache_dir": "/b"}, "cache_dir='/b' .deprecated. and cache='/a'"),
        ({"encoder": "x/y@v1", "encoder_revision": "v2"}, "encoder_revision='v2' .deprecated. and encoder='x/y@v1'"),
        ({"clip_t": "a/b@1", "clip_t_revision": "2"}, "clip_t_revision='2' .deprecated. and clip_t='a/b@1'"),
        ({"cache_dir": 5}, "cache_dir must be a folder"),
        ({"clip_t": "a/b", "clip_t_revision": 7}, "clip_t_revision must be a string"),
    ],
)
def test_an_older_keyword_contradicting_its_replacement_is_refused(given: dict, message: str) -> None:
    from fp_rank.options import resolve_options

    with pytest.warns(FpRankDeprecationWarning), pytest.raises(fp_rank.InputError, match=message):
        resolve_options(given)


def test_agreeing_old_and_new_keywords_and_none_are_accepted() -> None:
    import warnings

    from fp_rank.options import ModelChoice, resolve_options

    with pytest.warns(FpRankDeprecationWarning):
        assert resolve_options({"leaks": "exclude", "exclude_leaks": True}).leaks == "exclude"
    with pytest.warns(FpRankDeprecationWarning):
        assert resolve_options({"cache": "/a", "cache_dir": "/a"}).cache == "/a"
    with pytest.warns(FpRankDeprecationWarning):
        assert resolve_options({"encoder": "x/y@v1", "encoder_revision": "v1"}).encoder == (ModelChoice("x/y", "v1"),)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_options({"cache_dir": None, "check_leaks": None, "encoder_revision": None}).cache is True


def test_encoder_revision_alone_pins_the_gallery_cards_encoder() -> None:
    """As in 0.1: no encoder means the card's recommended one, and the revision applies to it."""
    from types import SimpleNamespace

    from fp_rank.evaluation.load import encoder_choices
    from fp_rank.options import ModelChoice, resolve_options

    with pytest.warns(FpRankDeprecationWarning):
        opts = resolve_options({"encoder_revision": "abc"})
    gallery = SimpleNamespace(recommended_encoder="dinov2-base", id="g")
    assert encoder_choices(opts, gallery) == (ModelChoice("dinov2-base", "abc"),)
    assert encoder_choices(resolve_options({}), gallery) == (ModelChoice("dinov2-base"),)


@pytest.mark.parametrize("spelling", ["bf16", "BF16", "bfloat16", "BFloat16"])
def test_dtype_keeps_the_spellings_of_0_1(spelling: str) -> None:
    from fp_rank.options import resolve_options

    assert resolve_options({"dtype": spelling}).dtype == "bfloat16"
    assert resolve_options({"dtype": "fp32"}).dtype == "float32" and resolve_options({"dtype": None}).dtype is None
    assert resolve_options({"preprocessing": None}).preprocessing == "processor"
    with pytest.raises(fp_rank.InputError, match="dtype must be one of"):
        resolve_options({"dtype": "int8"})


def test_dtype_accepts_a_torch_dtype() -> None:
    torch = pytest.importorskip("torch")
    from fp_rank.options import resolve_options

    assert resolve_options({"dtype": torch.float16}).dtype == "float16"


def test_the_warning_points_at_the_callers_line() -> None:
    from fp_rank.options import resolve_options

    with pytest.warns(FpRankDeprecationWarning) as caught:
        resolve_options({"cache_dir": "/tmp/c"})
    assert caught[0].filename == __file__


def test_run_demo_uses_no_older_keyword(tmp_path, monkeypatch) -> None:
    """The demo passes its cache folder as the merged option (no warning the user did not cause)."""
    import warnings

    from fp_rank.demo import run as demo_run

    seen = {}
    monkeypatch.setattr(demo_run, "demo_gallery", lambda *a: tmp_path)
    monkeypatch.setattr(demo_run, "generated_records", lambda seed: [])
    monkeypatch.setattr(demo_run, "evaluate", lambda *a, **k: seen.update(k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo_run.run_demo(cache_dir=tmp_path / "c")
        assert seen["cache"] == str(tmp_path / "c") and "cache_dir" not in seen
        demo_run.run_demo(cache=False, cache_dir=tmp_path / "c")
        assert seen["cache"] is False


@pytest.mark.parametrize(
    "old, name, new",
    [
        ("fp_rank.reporting.outputs", "write_outputs", "fp_rank.views.outputs"),
        ("fp_rank.encoding.images", "to_rgb", "fp_rank.images.decode"),
        ("fp_rank.reporting.analysis", "to_markdown", "fp_rank.views.markdown"),
        ("fp_rank.evaluation.summarise", "summarise", "fp_rank.reporting.aggregate"),
    ],
)
def test_moved_modules_import_with_a_warning(old: str, name: str, new: str) -> None:
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(FpRankDeprecationWarning, match=rf"module {old} is deprecated .* import from .*{new}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="moved to"):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "module, name, new",
    [
        ("fp_rank.runs", "GeneratedRun", "fp_rank.runs.legacy"),
        ("fp_rank.encoding", "to_rgb", "fp_rank.images.decode"),
        ("fp_rank.evaluation", "DEFAULT_METHOD", "fp_rank.runs.run"),
    ],
)
def test_names_a_package_exported_in_0_1_still_resolve(module: str, name: str, new: str) -> None:
    import importlib

    package = importlib.import_module(module)
    package.__dict__.pop(name, None)
    with pytest.warns(FpRankDeprecationWarning, match=rf"{module}\.{name} is deprecated"):
        value = getattr(package, name)
    assert value is getattr(importlib.import_module(new), name)
    package.__dict__.pop(name, None)


@pytest.mark.parametrize(
    "option, value",
    [("gallery_config", "jay"), ("gallery_revision", "v9"), ("min_gallery_images", 5), ("on_duplicate", "allow")],
)
def test_a_loaded_gallery_refuses_loading_options_it_was_not_loaded_with(demo_gallery_dir, option, value) -> None:
    gallery = fp_rank.load_gallery(str(demo_gallery_dir), "finch", progress=False)
    with pytest.raises(fp_rank.InputError, match=rf"{option}=.* applies when fp-rank loads the gallery"):
        fp_rank.evaluate(["x.png"], ["a"], gallery=gallery, encoder="fp-rank-demo", progress=False, **{option: value})
