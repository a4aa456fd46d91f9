"""Agreement of a report's scores with people's ratings: the rank statistics against scipy and by hand,
the clustered bootstrap, the pair accuracies, the ratings file's checks and ``fp-rank agreement``."""

from __future__ import annotations

import difflib
import json
import math
import unicodedata
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fp_rank.analysis.agreement import agreement, read_ratings
from fp_rank.analysis.rating_names import match_ratings, people_verdict, report_images
from fp_rank.cli import main
from fp_rank.errors import InputError
from fp_rank.reporting.report import Report
from fp_rank.stats.pair_accuracy import pairwise_accuracy, preference_accuracy
from fp_rank.stats.rank_agreement import (
    MIN_CLUSTERS,
    average_ranks,
    kendall_tau_b,
    rank_correlation_interval,
    spearman_rho,
)
from tests.report_fixtures import valid_metadata

# ----------------------------------------------------------------------------- tau-b and rho


def _sample(n: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: most pairs are tied in x, in y or in both
        x = rng.integers(0, 4, n).astype(float)
        return x, x + rng.integers(0, 3, n)
    x = rng.standard_normal(n)
    return x, x + rng.standard_normal(n)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("n", [2, 3, 4, 11, 100, 2000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tau_b_and_rho_equal_scipy(n: int, seed: int, ties: bool) -> None:
    x, y = _sample(n, seed, ties)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on a constant sample (tau undefined)
        tau = stats.kendalltau(x, y, variant="b").statistic
        rho = stats.spearmanr(x, y).statistic
    for ours, theirs in ((kendall_tau_b(x, y), tau), (spearman_rho(x, y), rho)):
        if math.isnan(theirs):
            assert math.isnan(ours)
        else:
            assert ours == pytest.approx(theirs, rel=1e-12, abs=0)


def test_tau_b_by_hand() -> None:
    # x = 1 2 3 4, y = 1 3 2 4: of the 6 pairs only (2nd, 3rd) is discordant: C = 5, D = 1, no ties,
    # tau = (5 - 1) / sqrt(6 * 6) = 4 / 6.
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6, abs=1e-15)
    # x = 1 1 2 3, y = 1 2 2 3: n0 = 6 pairs; (1st, 2nd) tied in x (n1 = 1); (2nd, 3rd) tied in y
    # (n2 = 1); no pair tied in both (n3 = 0); the other 4 pairs are concordant, none discordant:
    # tau-b = (4 - 0) / sqrt((6 - 1) (6 - 1)) = 0.8.
    assert kendall_tau_b([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8, abs=1e-15)
    # x = 1 1 2 2, y = 5 5 1 1: n1 = 2, n2 = 2, n3 = 2 (the same two pairs), C = 0, D = 4:
    # tau-b = -4 / sqrt(4 * 4) = -1.
    assert kendall_tau_b([1, 1, 2, 2], [5, 5, 1, 1]) == -1.0
    assert math.isnan(kendall_tau_b([3, 3, 3], [1, 2, 3])) and math.isnan(kendall_tau_b([1], [2]))
    assert math.isnan(kendall_tau_b([], []))


def test_spearman_by_hand() -> None:
    # x = 1 2 2 3 has average ranks 1 2.5 2.5 4; y = 1 2 3 4 ranks 1 2 3 4. Centred: (-1.5, 0, 0, 1.5)
    # and (-1.5, -0.5, 0.5, 1.5): sum of products 4.5, sums of squares 4.5 and 5: rho = 4.5 / sqrt(22.5).
    assert average_ranks([1, 2, 2, 3]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert spearman_rho([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5), abs=1e-15)
    assert spearman_rho([1, 2, 3], [30, 20, 10]) == -1.0
    assert math.isnan(spearman_rho([1, 2, 3], [7, 7, 7]))


def test_symmetry_and_sign() -> None:
    x, y = _sample(300, 5, ties=True)
    assert kendall_tau_b(x, y) == pytest.approx(kendall_tau_b(y, x), abs=1e-14)
    assert kendall_tau_b(x, -y) == pytest.approx(-kendall_tau_b(x, y), abs=1e-14)
    assert spearman_rho(x, -y) == pytest.approx(-spearman_rho(x, y), abs=1e-14)


@pytest.mark.parametrize("call", [kendall_tau_b, spearman_rho])
def test_bad_samples_are_refused(call) -> None:
    with pytest.raises(InputError, match="x has 3 values but y has 2"):
        call([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="finite"):
        call([1, 2, float("nan")], [1, 2, 3])


# ----------------------------------------------------------------------------- the clustered interval


def test_interval_is_reproducible_and_holds_the_estimate() -> None:
    rng = np.random.default_rng(0)
    clusters = np.repeat([f"id{i}" for i in range(12)], 8)
    x = rng.standard_normal(96) + np.repeat(rng.standard_normal(12), 8)
    y = x + rng.standard_normal(96)
    first = rank_correlation_interval(x, y, clusters, "kendall", n_boot=300, seed=3)
    assert first == rank_correlation_interval(x, y, clusters, "kendall", n_boot=300, seed=3)
    assert first != rank_correlation_interval(x, y, clusters, "kendall", n_boot=300, seed=4)
    assert first.low < first.estimate < first.high and first.estimate == kendall_tau_b(x, y)
    assert (first.n, first.n_clusters, first.n_boot, first.n_dropped) == (96, 12, 300, 0)
    assert "resampling whole clusters" in first.method
    wider = rank_correlation_interval(x, y, clusters, "kendall", n_boot=300, seed=3, confidence=0.99)
    assert wider.low <= first.low and wider.high >= first.high
    rho = rank_correlation_interval(x, y, clusters, "spearman", n_boot=300)
    assert rho.estimate == spearman_rho(x, y) and rho.low < rho.estimate < rho.high


def test_interval_resamples_clusters_not_items() -> None:
    # 6 identities, 40 identical images each: there are only 6 independent observations, and the
    # interval must be as wide as 6 observations allow, not as narrow as 240 would make it.
    x_means = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    y_means = np.array([1.0, 0.0, 3.0, 2.0, 5.0, 4.0])
    x, y = np.repeat(x_means, 40), np.repeat(y_means, 40)
    identities = np.repeat([f"id{i}" for i in range(6)], 40)
    by_identity = rank_correlation_interval(x, y, identities, "spearman", n_boot=400, min_clusters=2)
    by_image = rank_correlation_interval(x, y, np.arange(240).astype(str), "spearman", n_boot=400)
    assert by_identity.estimate == by_image.estimate == pytest.approx(spearman_rho(x_means, y_means))
    assert by_identity.n_clusters == 6 and by_image.n_clusters == 240
    assert by_identity.high - by_identity.low > 4 * (by_image.high - by_image.low)


def test_undefined_replicates_are_dropped_and_counted() -> None:
    # x varies only through cluster d, y only through cluster e: a replicate missing either is
    # undefined, which happens more often than not with 5 clusters (about 58%): no interval.
    clusters = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"]
    x = [0, 0, 0, 0, 0, 0, 1, 1, 0, 0]
    y = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    out = rank_correlation_interval(x, y, clusters, "kendall", n_boot=200, min_clusters=2)
    assert math.isfinite(out.estimate) and out.low is None and out.high is None
    assert out.n_dropped > 100 and "undefined" in out.note
    # three clusters that each vary: the odd replicate drawing one cluster thrice is dropped
    some = rank_correlation_interval([1, 2, 3, 4, 5, 6], [1, 2, 4, 3, 6, 5], ["a", "a", "b", "b", "c", "c"],
                                     "kendall", n_boot=300, min_clusters=2)
    assert some.low is not None and some.n_dropped == 0
    constant = rank_correlation_interval([1, 1, 1], [1, 2, 3], ["a", "b", "c"], "kendall", n_boot=100)
    assert math.isnan(constant.estimate) and constant.low is None and constant.to_dict()["estimate"] is None


def test_too_few_clusters_or_items_give_the_estimate_with_a_note() -> None:
    one = rank_correlation_interval([1, 2, 3, 4], [1, 2, 3, 4], ["a"] * 4, "kendall")
    assert one.estimate == 1.0 and one.low is None and one.note.startswith("no interval: 1 cluster(s) (identities); "
                                                                            "an interval needs at least 10")
    single = rank_correlation_interval([1], [2], ["a"], "spearman")
    assert math.isnan(single.estimate) and single.note == "undefined: fewer than 2 items"
    with pytest.raises(InputError, match="statistic must be one of"):
        rank_correlation_interval([1, 2, 3], [1, 2, 3], ["a", "b", "c"], "pearson")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="min_clusters must be an integer >= 2; got 1"):
        rank_correlation_interval([1, 2, 3], [1, 2, 3], ["a", "b", "c"], "kendall", min_clusters=1)


# ----------------------------------------------------------------------------- pair accuracies


def test_pairwise_accuracy_by_hand() -> None:
    # A > B > C for people; the score has A first and ties B and C: AB right (1), AC right (1),
    # BC tied by the score (1/2): 2.5 / 3.
    out = pairwise_accuracy({"A": 0.9, "B": 0.5, "C": 0.5}, {"A": 4.0, "B": 3.0, "C": 2.0})
    assert out == {"accuracy": 2.5 / 3, "n_pairs": 3, "n_human_ties": 0, "n_score_ties": 1, "methods": ["A", "B", "C"]}
    # people tie A and B: that pair is left out and counted; AC and BC are ordered right: 2 / 2.
    out = pairwise_accuracy({"A": 1.0, "B": 2.0, "C": 3.0}, {"A": 1.0, "B": 1.0, "C": 2.0})
    assert (out["accuracy"], out["n_pairs"], out["n_human_ties"]) == (1.0, 2, 1)
    # only methods both hold count (D has no rating, C no score); the one pair is reversed: 0.
    out = pairwise_accuracy({"A": 1.0, "B": 2.0, "D": 0.0}, {"A": 2.0, "B": 1.0, "C": 3.0})
    assert (out["accuracy"], out["n_pairs"], out["methods"]) == (0.0, 1, ["A", "B"])
    out = pairwise_accuracy({"A": 1.0, "B": 2.0}, {"A": 3.0, "B": 3.0})
    assert math.isnan(out["accuracy"]) and out["n_pairs"] == 0 and out["n_human_ties"] == 1
    with pytest.raises(InputError, match=r"score_means\['A'\] must be a finite number"):
        pairwise_accuracy({"A": float("nan"), "B": 1.0}, {"A": 1.0, "B": 2.0})


def test_preference_accuracy_by_hand() -> None:
    # pair 1: score prefers a, people a (1); pair 2: score b, people b (1); pair 3: the score ties,
    # people prefer a (1/2); pair 4: people tie (left out); pair 5: score a, people b (0): 2.5 / 4.
    args = ([0.9, 0.2, 0.5, 0.3, 0.8], [0.1, 0.4, 0.5, 0.3, 0.7], ["a", "b", "a", "tie", "b"], list("vwxyz"))
    out = preference_accuracy(*args, n_boot=400, min_clusters=2)
    assert (out["accuracy"], out["n_pairs"], out["n_human_ties"], out["n_score_ties"]) == (0.625, 4, 1, 1)
    assert 0.0 <= out["low"] <= 0.625 <= out["high"] <= 1.0 and out["n_clusters"] == 4
    assert out == preference_accuracy(*args, n_boot=400, min_clusters=2)
    ties = preference_accuracy([1.0, 2.0], [2.0, 1.0], ["tie", "tie"], ["x", "y"])
    assert math.isnan(ties["accuracy"]) and ties["low"] is None and ties["n_human_ties"] == 2
    with pytest.raises(InputError, match=r"preferred holds \['left'\]; each value must be one of \['a', 'b', 'tie'\]"):
        preference_accuracy([1.0], [2.0], ["left"], ["x"])
    with pytest.raises(InputError, match="clusters has 1 entries but score_a has 2"):
        preference_accuracy([1.0, 2.0], [2.0, 1.0], ["a", "b"], ["x"])


# ----------------------------------------------------------------------------- a report and its ratings


def _report(seed: int = 0, encoders: tuple[str, ...] = ("enc", "other")) -> Report:
    """Three methods, 10 identities in two groups, 4 images each: a report built from its rows."""
    from fp_rank.reporting.aggregate import summarise

    rng = np.random.default_rng(seed)
    rows, index = [], 0
    for method, shift in (("good", 0.25), ("mid", 0.0), ("bad", -0.25)):
        for group in ("wren", "tern"):
            for i in range(5):
                base = rng.beta(3, 3)
                for k in range(4):
                    ap = float(np.clip(base + shift + 0.1 * rng.standard_normal(), 0, 1))
                    judge = float(np.clip(ap + 0.2 * rng.standard_normal(), 0, 1))
                    for e, encoder in enumerate(encoders):
                        value = ap if e == 0 else float(np.clip(ap + 0.2 * rng.standard_normal(), 0, 1))
                        rows.append({"encoder": encoder, "method": method, "identity": f"{group}{i}", "group": group,
                                     "ap": value, "cmc1": float(value > 0.5), "pairwise": 0.5 + 0.2 * value,
                                     "judge": judge, "file": f"{method}/{group}{i}/{k}.png", "index": index,
                                     "first_hit_rank": 1, "top1_identity": f"{group}{i}", "chance_ap": 0.1,
                                     "n_relevant": 5, "n_gallery": 50, "tied": False})
                    index += 1
    results = summarise(rows, [], encoders=list(encoders), methods=["bad", "good", "mid"], ks=(1,))
    return Report(results=results, queries=rows, metadata=valid_metadata(encoders, fp_rank_version="9.9.9"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    path = tmp_path_factory.mktemp("agreement") / "report.json"
    report = _report()
    report.to_json(path)
    return path, report


def _image_ratings(report: Report, path: Path, *, key: str = "file", skip: int = 0) -> Path:
    """Two raters per image: a noisy increasing function of the first encoder's AP (1-5)."""
    rng = np.random.default_rng(1)
    lines = [f"{key},rating,rater,comment"]
    rows = [q for q in report.queries if q["encoder"] == "enc"][skip:]
    for row in rows:
        for rater in ("ann", "bob"):
            rating = round(1 + 4 * row["ap"] + 0.4 * rng.standard_normal(), 2)
            lines.append(f"{row[key]},{rating},{rater},ok")
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # a spreadsheet's byte-order mark
    return path


def test_cli_per_image_ratings(saved: tuple[Path, Report], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report_path, report = saved
    ratings = _image_ratings(report, tmp_path / "ratings.csv", skip=6)
    out, markdown = tmp_path / "out.json", tmp_path / "agreement.md"
    code = main(["agreement", str(report_path), str(ratings), "--bootstrap", "200", "--seed", "1",
                 "--out", str(out), "--markdown", str(markdown)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Kendall tau [CI]" in printed and "114 rated images (228 ratings by 2 rater(s)); 6 of the report's 120" in printed
    assert "columns not read: comment" in printed
    data = json.loads(out.read_text())
    assert set(data) == {"layout", "scores", "counts", "settings", "report", "ratings"}
    assert data["settings"]["n_boot"] == 200 and data["settings"]["seed"] == 1 and data["settings"]["confidence"] == 0.95
    assert data["report"] == {"fp_rank_version": "9.9.9", "protocol_version": "1.0"}
    import hashlib

    assert data["ratings"]["sha256"] == hashlib.sha256(ratings.read_bytes()).hexdigest()
    scores = {(s["score"], s["encoder"]): s for s in data["scores"]}
    assert list(scores) == [("map", "enc"), ("pairwise", "enc"), ("map", "other"), ("pairwise", "other"), ("judge", None)]
    first = scores["map", "enc"]
    assert first["n_images"] == 114 and first["n_identities"] == 10
    assert first["kendall"]["estimate"] > 0.5 and first["kendall"]["low"] < first["kendall"]["estimate"] < first["kendall"]["high"]
    assert first["spearman"]["estimate"] > first["kendall"]["estimate"]
    assert first["method_pairs"]["accuracy"] == 1.0 and first["method_pairs"]["n_pairs"] == 3
    assert scores["map", "other"]["kendall"]["estimate"] < first["kendall"]["estimate"]  # the noisier encoder
    assert "| mAP | enc | 114 | 10 |" in markdown.read_text()


def test_ratings_by_index_and_the_library_call(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    by_file = agreement(report, read_ratings(_image_ratings(report, tmp_path / "f.csv")), n_boot=100)
    by_index = agreement(report, read_ratings(_image_ratings(report, tmp_path / "i.csv", key="index")), n_boot=100)
    assert by_index.ratings["key"] == "index"
    assert [s["kendall"] for s in by_index.scores] == [s["kendall"] for s in by_file.scores]
    json.dumps(by_file.to_dict(), allow_nan=False)
    old = Report(report.results, [{k: v for k, v in q.items() if k != "index"} for q in report.queries], report.metadata)
    with pytest.raises(InputError, match="the report's rows carry no 'index'"):
        agreement(old, read_ratings(tmp_path / "i.csv"))


def test_cli_pair_ratings(saved: tuple[Path, Report], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report_path, report = saved
    rows = [q for q in report.queries if q["encoder"] == "enc"]
    rng = np.random.default_rng(4)
    lines, seen = ["file_a,file_b,preferred,rater"], set()
    while len(lines) < 201:
        a, b = (rows[i] for i in rng.choice(len(rows), 2, replace=False))
        rater = f"r{len(lines) % 3}"
        if (rater, *sorted((a["file"], b["file"]))) in seen:
            continue
        seen.add((rater, *sorted((a["file"], b["file"]))))
        gap = a["ap"] - b["ap"] + 0.05 * rng.standard_normal()
        lines.append(f"{a['file']},{b['file']},{'tie' if abs(gap) < 0.02 else 'a' if gap > 0 else 'b'},{rater}")
    ratings = tmp_path / "pairs.csv"
    ratings.write_text("\n".join(lines) + "\n")
    assert main(["agreement", str(report_path), str(ratings), "--bootstrap", "200", "--out", str(tmp_path / "p.json")]) == 0
    assert "preference accuracy [CI]" in capsys.readouterr().out
    data = json.loads((tmp_path / "p.json").read_text())
    first = data["scores"][0]
    assert data["layout"] == "pair" and first["score"] == "map"
    assert first["preference"]["accuracy"] > 0.8 and first["preference"]["low"] < first["preference"]["high"]
    assert first["preference"]["n_pairs"] + first["preference"]["n_human_ties"] == first["n_pairs"]
    assert first["method_pairs"]["accuracy"] == 1.0 and set(first["method_pairs"]["win_rates"]) == {"bad", "good", "mid"}
    assert first["method_pairs"]["win_rates"]["good"] > first["method_pairs"]["win_rates"]["bad"]


def test_pair_votes_add_up_in_either_order(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("file_a,file_b,preferred,rater\nx.png,y.png,a,ann\ny.png,x.png,a,bob\ny.png,x.png,TIE,cy\n")
    ratings = read_ratings(path)
    assert list(ratings.items) == [("x.png", "y.png")] and ratings.items["x.png", "y.png"].votes == [1, 1, 1]
    assert ratings.raters == ("ann", "bob", "cy") and ratings.n_unnamed == 0


BAD_RATINGS = [
    ("name,score\nx.png,3\n", "is neither layout; write the columns per image: file (or index), rating"),
    ("file,index,rating\nx.png,1,3\n", "it names both file and index: keep one"),
    ("file,rating,rating\nx.png,3,4\n", "names column(s) ['rating'] twice"),
    ("", "is empty; write a header"),
    ("file,rating\n", "holds a header but no ratings"),
    ("file,rating\nx.png,3\ny.png,\n", "line 3, column 'rating': is empty; write the rating as a number"),
    ("file,rating\nx.png,good\n", "line 2, column 'rating': 'good' is not a number"),
    ("file,rating\nx.png,nan\n", "line 2, column 'rating': 'nan' is not a finite number"),
    ("file,rating\nx.png,-inf\n", "line 2, column 'rating': '-inf' is not a finite number"),
    ("file,rating\n,3\n", "line 2, column 'file': is empty"),
    ("index,rating\n1.5,3\n", "line 2, column 'index': '1.5' is not an image index"),
    ("file,rating\nx.png,3,4\n", "line 2: 3 field(s) where the header has 2"),
    ("file,rating\nx.png,3\nx.png,4\n", ("line 3, column 'file': 'x.png' is rated twice by the same rater (the file has "
     "no rater column), first on line 2; keep one rating per rater, or add a rater column")),
    ("file,rating,rater\nx.png,3,ann\nx.png,4,bob\nx.png,5,ann\n", ("line 4, column 'file': 'x.png' is rated twice by "
     "rater 'ann', first on line 2")),
    ("file_a,file_b,preferred\nx.png,y.png,left\n", ("line 2, column 'preferred': 'left' is not a, b or tie; write a "
     "(file_a preferred), b (file_b preferred) or tie")),
    ("file_a,file_b,preferred,rater\nx.png,y.png,a,ann\ny.png,x.png,b,ann\n", ("line 3, column 'file_a': the pair "
     "'x.png', 'y.png' is rated twice by rater 'ann', first on line 2")),
    ('file,rating\n"x.png,3\n', "not valid CSV"),
]


@pytest.mark.parametrize("text, message", BAD_RATINGS, ids=[m[:40] for _, m in BAD_RATINGS])
def test_bad_ratings_are_refused_naming_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_ratings(path)
    assert message in str(caught.value) and repr(str(path)) in str(caught.value)


def test_unknown_images_are_refused_with_the_closest_report_files(saved: tuple[Path, Report], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    report_path, _ = saved
    ratings = tmp_path / "r.csv"
    ratings.write_text("file,rating\ngood/wren0/0.png,3\ngood/wren0/1.jpg,2\nnothing-like-it,1\n")
    out = tmp_path / "out.json"
    assert main(["agreement", str(report_path), str(ratings), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "names 2 image(s) the report does not hold: 'good/wren0/1.jpg' (line 3), 'nothing-like-it' (line 4)" in err
    assert "closest report files: 'good/wren0/1.jpg' -> 'good/wren0/1.png'" in err and not out.exists()


def test_ambiguous_file_names_ask_for_the_index(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    rows = [dict(q) for q in report.queries]
    rows[2]["file"] = rows[0]["file"]  # two images of the first encoder named alike
    ratings = tmp_path / "r.csv"
    ratings.write_text(f"file,rating\n{rows[0]['file']},3\n")
    with pytest.raises(InputError, match="several images named 'good/wren0/0.png' .line 2.; name them by a longer part "
                       "of their path, or by index"):
        agreement(Report(report.results, rows, report.metadata), read_ratings(ratings))


def test_a_file_may_be_named_by_the_last_parts_of_its_path_where_only_one_file_ends_so(
    saved: tuple[Path, Report], tmp_path: Path
) -> None:
    _, report = saved
    rows = [dict(q, file=f"/data/runs/{q['file']}") for q in report.queries]  # a manifest's absolute paths
    moved = Report(report.results, rows, report.metadata)
    relative = _image_ratings(report, tmp_path / "relative.csv")  # the manifest's relative names
    absolute = tmp_path / "absolute.csv"
    absolute.write_text("".join(
        line if n == 0 else "/data/runs/" + line for n, line in enumerate(relative.read_text().splitlines(True))
    ))
    by_tail, by_path = agreement(moved, read_ratings(relative)), agreement(moved, read_ratings(absolute))
    assert by_tail.to_dict()["scores"] == by_path.to_dict()["scores"]
    assert by_tail.to_dict()["counts"]["report_images"] == len({q["index"] for q in report.queries})
    name = rows[0]["file"].rsplit("/", 1)[1]  # "0.png": every identity folder has one
    (tmp_path / "short.csv").write_text(f"file,rating\n{name},3\n")
    with pytest.raises(InputError, match=f"several images named '{name}'"):
        agreement(moved, read_ratings(tmp_path / "short.csv"))


def test_out_over_an_input_is_refused_before_any_work(saved: tuple[Path, Report], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    report_path, report = saved
    ratings = _image_ratings(report, tmp_path / "r.csv")
    before = report_path.read_bytes()
    for flag, target in (("--out", report_path), ("--markdown", ratings)):
        assert main(["agreement", str(report_path), str(ratings), flag, str(target)]) == 2
        assert f"{flag} {str(target)!r} is also an input of this command" in capsys.readouterr().err
    assert report_path.read_bytes() == before


def test_too_few_images_give_estimates_without_intervals(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    ratings = tmp_path / "r.csv"
    ratings.write_text("file,rating\ngood/wren0/0.png,3\ngood/wren0/1.png,1\n")  # one identity
    out = agreement(report, read_ratings(ratings), n_boot=100)
    first = out.scores[0]
    assert first["n_images"] == 2 and first["kendall"]["low"] is None and "1 cluster(s)" in first["kendall"]["note"]
    assert "-1.000 (no interval)" in out.summary() and "- (0 pairs)" in out.summary()
    json.dumps(out.to_dict(), allow_nan=False)


# ----------------------------------------------------------------------------- names resolved first, exact means


def _moved(report: Report) -> Report:
    """The report of a manifest that names its images by absolute paths."""
    return Report(report.results, [dict(q, file=f"/data/runs/{q['file']}") for q in report.queries], report.metadata)


def _write(tmp_path: Path, text: str, name: str = "r.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_one_image_rated_under_two_names_is_one_image(saved: tuple[Path, Report], tmp_path: Path) -> None:
    moved = _moved(saved[1])
    twice = _write(tmp_path, "file,rating\ngood/wren0/0.png,1\n/data/runs/good/wren0/0.png,5\ngood/wren0/1.png,2\n")
    with pytest.raises(InputError) as caught:
        agreement(moved, read_ratings(twice))
    assert ("line 3, column 'file': '/data/runs/good/wren0/0.png' is rated twice by the same rater (the file has no "
            "rater column), first on line 2 as 'good/wren0/0.png' (both name the report's '/data/runs/good/wren0/0.png')"
            ) in str(caught.value)
    # two raters, one under each name: one image, its two ratings averaged
    two = _write(tmp_path, "file,rating,rater\ngood/wren0/0.png,1,ann\n/data/runs/good/wren0/0.png,4,bob\n"
                 "mid/tern1/2.png,2,ann\n", "two.csv")
    out = agreement(moved, read_ratings(two))
    assert (out.counts["rated_images"], out.counts["rating_rows"], out.counts["unrated_report_images"]) == (2, 3, 118)
    assert sorted(match_ratings(report_images(moved, "file"), read_ratings(two)).images.values()) == [(2.0, 1), (2.5, 2)]


def test_pairs_are_checked_and_added_up_on_the_images_their_names_resolve_to(saved: tuple[Path, Report],
                                                                            tmp_path: Path) -> None:
    moved = _moved(saved[1])
    alias = _write(tmp_path, "file_a,file_b,preferred\ngood/wren0/1.png,mid/tern1/2.png,a\n"
                   "good/wren0/0.png,/data/runs/good/wren0/0.png,a\n")
    with pytest.raises(InputError, match=r"line 3, column 'file_b': the pair '/data/runs/good/wren0/0.png', "
                       r"'good/wren0/0.png' names the report's '/data/runs/good/wren0/0.png' twice; name two different"):
        agreement(moved, read_ratings(alias))
    with pytest.raises(InputError, match="line 2, column 'file_b': the pair compares 'good/wren0/0.png' with itself; "):
        agreement(moved, read_ratings(_write(tmp_path, "file_a,file_b,preferred\ngood/wren0/0.png,good/wren0/0.png,a\n")))
    g, m = "good/wren0/0.png", "mid/wren0/0.png"
    votes = _write(tmp_path, f"file_a,file_b,preferred,rater\n{g},{m},a,ann\n/data/runs/{m},/data/runs/{g},b,bob\n"
                   f"{m},/data/runs/{g},tie,cy\n", "votes.csv")
    out = agreement(moved, read_ratings(votes))
    assert (out.counts["rated_pairs"], out.counts["rated_images"], out.counts["tied_pairs"]) == (1, 2, 0)
    index = {q["file"]: q["index"] for q in saved[1].queries}
    assert match_ratings(report_images(moved, "file"), read_ratings(votes)).pairs == {(index[g], index[m]): (2, 0, 1)}
    again = _write(tmp_path, votes.read_text() + f"/data/runs/{g},{m},a,ann\n", "again.csv")
    with pytest.raises(InputError, match=f"line 5, column 'file_a': the pair '/data/runs/{g}', '{m}' is rated twice by "
                       f"rater 'ann', first on line 2 as the pair '{g}', '{m}'"):
        agreement(moved, read_ratings(again))


def test_equal_mean_ratings_compare_equal(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    # every mean is 0.2 exactly; averaged in floats, in the file's order, they are 0.20000000000000004,
    # 0.19999999999999998 and 0.20000000000000004: people would seem to order images they rate alike
    cells = {"good/wren0/0.png": "0.1 0.2 0.3", "mid/wren0/0.png": "0.3 0.2 0.1", "bad/wren0/0.png": "0.2 0.2 0.2"}
    text = "file,rating,rater\n" + "".join(f"{f},{r},{w}\n" for f, rs in cells.items() for r, w in zip(rs.split(), "abc"))
    first = agreement(report, read_ratings(_write(tmp_path, text))).scores[0]
    assert first["kendall"]["estimate"] is None and first["kendall"]["note"] == "undefined: the scores or the ratings are all equal"
    assert (first["method_pairs"]["n_pairs"], first["method_pairs"]["n_human_ties"]) == (0, 3)
    # method means equal exactly, images rated apart: good 0.1 0.2 0.3, mid 0.3 0.2 0.1 (one rating each)
    text = "file,rating\n" + "".join(f"{m}/wren0/{k}.png,{r}\n" for m, rs in (("good", "0.1 0.2 0.3"), ("mid", "0.3 0.2 0.1"))
                                      for k, r in enumerate(rs.split()))
    first = agreement(report, read_ratings(_write(tmp_path, text, "m.csv"))).scores[0]
    assert (first["method_pairs"]["n_pairs"], first["method_pairs"]["n_human_ties"]) == (0, 1)
    assert pairwise_accuracy({"A": 1.0, "B": 2.0}, {"A": Fraction(1, 3), "B": Fraction(2, 6)})["n_human_ties"] == 1


# ----------------------------------------------------------------------------- intervals and settings


def test_the_preference_interval_resamples_identities(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    rows = [q for q in report.queries if q["encoder"] == "enc" and q["identity"] == "wren0"]
    text = "file_a,file_b,preferred\n" + "".join(f"{a['file']},{b['file']},{'a' if a['ap'] > b['ap'] else 'b'}\n"
                                                 for i, a in enumerate(rows) for b in rows[i + 1:])
    out = agreement(report, read_ratings(_write(tmp_path, text)))
    preference = out.scores[0]["preference"]
    assert preference["n_pairs"] == 66 and preference["low"] is None and preference["n_clusters"] == 1
    assert "no interval: 1 cluster(s) (identities); an interval needs at least 10" in preference["note"]
    # 12 identities, 20 pairs each, every pair of an identity ordered right or every one wrong
    right = np.repeat(np.random.default_rng(0).random(12) < 0.6, 20)
    args = (np.where(right, 1.0, 0.0), np.where(right, 0.0, 1.0), ["a"] * 240)
    by_identity = preference_accuracy(*args, np.repeat([f"id{i}" for i in range(12)], 20), n_boot=1000)
    by_pair = preference_accuracy(*args, [str(i) for i in range(240)], n_boot=1000)
    assert by_identity["accuracy"] == by_pair["accuracy"] and by_identity["n_clusters"] == 12
    assert by_identity["high"] - by_identity["low"] > 3 * (by_pair["high"] - by_pair["low"])
    perfect = preference_accuracy([1.0] * 20, [0.0] * 20, ["a"] * 20, [f"id{i}" for i in range(20)])
    assert perfect["accuracy"] == 1.0 and perfect["low"] is None and "zero-width" in perfect["note"]


def test_correlations_need_ten_identities_for_an_interval(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    rows = [q for q in report.queries if q["encoder"] == "enc" and q["identity"] in ("wren0", "wren1")]
    text = "file,rating\n" + "".join(f"{q['file']},{round(1 + 4 * q['ap'], 2)}\n" for q in rows)
    out = agreement(report, read_ratings(_write(tmp_path, text)))
    kendall = out.scores[0]["kendall"]
    assert MIN_CLUSTERS == 10 and kendall["estimate"] > 0.5 and kendall["low"] is None and kendall["n_clusters"] == 2
    assert "mAP / enc: no interval: 2 cluster(s) (identities); an interval needs at least 10" in out.summary()
    assert "none with fewer than 10 identities" in out.summary()


@pytest.mark.parametrize("flag, value, message", [
    ("--bootstrap", "1", "--bootstrap must be an integer from 100 to 1,000,000"),
    ("--bootstrap", "100000000000", "--bootstrap must be an integer from 100 to 1,000,000"),
    ("--confidence", "1.5", "--confidence must be a number strictly between 0 and 1"),
    ("--confidence", "nan", "--confidence must be a number strictly between 0 and 1"),
    ("--seed", "-1", "--seed must be an integer >= 0"),
])
def test_settings_are_checked_before_any_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture, flag: str,
                                                      value: str, message: str) -> None:
    assert main(["agreement", str(tmp_path / "no.json"), str(tmp_path / "no.csv"), flag, value]) == 2
    assert message in capsys.readouterr().err


def test_the_library_refuses_too_few_or_too_many_replicates(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    ratings = read_ratings(_image_ratings(report, tmp_path / "r.csv"))
    for n_boot in (1, 99, 1_000_001, 10**11):
        with pytest.raises(InputError, match=f"n_boot must be an integer from 100 to 1,000,000 .*; got {n_boot}"):
            agreement(report, ratings, n_boot=n_boot)
    with pytest.raises(InputError, match="n_boot must be an integer from 100"):
        rank_correlation_interval([1, 2, 3], [1, 2, 3], ["a", "b", "c"], "kendall", n_boot=1)


def test_the_confidence_is_printed_as_given(saved: tuple[Path, Report], tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    report_path, report = saved
    ratings = _image_ratings(report, tmp_path / "r.csv")
    assert main(["agreement", str(report_path), str(ratings), "--bootstrap", "100", "--confidence", "0.999"]) == 0
    assert "99.9% intervals" in capsys.readouterr().out


# ----------------------------------------------------------------------------- what is counted and printed


def test_rated_images_and_pairs_without_a_score_are_counted(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    partial = Report(report.results, [dict(q, judge=None if q["index"] % 4 == 0 else q["judge"]) for q in report.queries],
                     report.metadata)
    out = agreement(partial, read_ratings(_image_ratings(report, tmp_path / "r.csv")))
    judge = out.scores[-1]
    assert judge["score"] == "judge" and (judge["n_images"], judge["n_rated_without_score"]) == (90, 30)
    assert "judge: 30 rated image(s) have no judge value: left out" in out.summary()
    none = "file,rating\n" + "".join(f"{q['file']},3\n" for q in report.queries if q["encoder"] == "enc" and q["index"] % 4 == 0)
    judge = agreement(partial, read_ratings(_write(tmp_path, none, "none.csv"))).scores[-1]
    assert judge["kendall"]["note"] == "none of the 30 rated images has a judge value" and judge["kendall"]["estimate"] is None
    rows = [q for q in report.queries if q["encoder"] == "enc"]
    pairs = "file_a,file_b,preferred\n" + "".join(f"{rows[i]['file']},{rows[i + 1]['file']},a\n" for i in range(0, 120, 2))
    out = agreement(partial, read_ratings(_write(tmp_path, pairs, "pairs.csv")))
    judge = out.scores[-1]
    assert (judge["n_pairs"], judge["n_pairs_without_score"]) == (30, 30)
    assert "judge: 30 rated pair(s) have an image with no judge value: left out" in out.summary()


def test_pair_verdicts_are_the_plurality_of_a_b_and_tie(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    f = [q["file"] for q in report.queries if q["encoder"] == "enc"]
    votes = {(0, 1): "a tie tie tie", (2, 3): "a a b b", (4, 5): "a a tie tie", (6, 7): "a a b"}
    text = "file_a,file_b,preferred,rater\n" + "".join(f"{f[i]},{f[j]},{v},r{k}\n" for (i, j), vs in votes.items()
                                                       for k, v in enumerate(vs.split()))
    out = agreement(report, read_ratings(_write(tmp_path, text)))
    assert (out.counts["tied_pairs"], out.counts["rated_pairs"]) == (3, 4)
    assert out.scores[0]["preference"]["n_pairs"] == 1 and out.scores[0]["preference"]["n_human_ties"] == 3
    assert [people_verdict(v) for v in ((1, 0, 3), (2, 2, 0), (2, 0, 2), (2, 1, 0), (0, 1, 0))] == ["tie"] * 3 + ["a", "b"]


def test_report_images_are_counted_by_index(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    rows = [dict(q, file="good/wren0/0.png" if q["index"] == 2 else q["file"]) for q in report.queries]
    ratings = read_ratings(_write(tmp_path, "file,rating\nmid/tern1/2.png,1\nbad/wren3/3.png,2\ngood/wren1/1.png,3\n"))
    counts = agreement(Report(report.results, rows, report.metadata), ratings).counts
    assert (counts["report_images"], counts["unrated_report_images"]) == (120, 117)


def test_raters_are_counted_by_name(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    plain = agreement(report, read_ratings(_write(tmp_path, "file,rating\ngood/wren0/0.png,1\ngood/wren0/1.png,2\n")))
    assert "2 rated images from 2 ratings (no rater column);" in plain.summary()
    blank = read_ratings(_write(tmp_path, "file,rating,rater\ngood/wren0/0.png,1,ann\ngood/wren0/1.png,2, \n", "b.csv"))
    assert (blank.raters, blank.n_unnamed) == (("ann",), 1)
    assert "(2 ratings by 1 rater(s), 1 with a blank rater cell)" in agreement(report, blank).summary()
    with pytest.raises(InputError, match="line 3, column 'file': 'good/wren0/0.png' is rated twice by a row with a "
                       "blank rater cell, first on line 2; keep one rating per rater, or fill in the rater cells"):
        read_ratings(_write(tmp_path, "file,rating,rater\ngood/wren0/0.png,1,\ngood/wren0/0.png,2, \n", "c.csv"))


def test_scores_of_any_real_type_are_used(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    rows = [dict(q, ap=np.float32(q["ap"]), judge=np.float32(q["judge"])) for q in report.queries]
    out = agreement(Report(report.results, rows, report.metadata), read_ratings(_image_ratings(report, tmp_path / "r.csv")))
    assert [(s["score"], s["encoder"]) for s in out.scores] == [("map", "enc"), ("pairwise", "enc"), ("map", "other"),
                                                               ("pairwise", "other"), ("judge", None)]
    json.dumps(out.to_dict(), allow_nan=False)


def test_out_and_markdown_must_name_two_files(saved: tuple[Path, Report], tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    report_path, report = saved
    ratings = _image_ratings(report, tmp_path / "r.csv")
    same = tmp_path / "same"
    assert main(["agreement", str(report_path), str(ratings), "--out", str(same), "--markdown", str(same)]) == 2
    assert f"--out and --markdown both name {str(same)!r}; name two files" in capsys.readouterr().err and not same.exists()


# ----------------------------------------------------------------------------- the ratings file


MORE_BAD_RATINGS = [
    ("file,rating\nx.png,1e308\n", "line 2, column 'rating': '1e308' is beyond +-1e+12; ratings are scores on a scale"),
    ("file,rating\nx.png,-1.7e308\n", "line 2, column 'rating': '-1.7e308' is beyond +-1e+12"),
    ("file,rating\nx.png,1e400\n", "line 2, column 'rating': '1e400' is beyond +-1e+12"),
    ("file,rating\nx.png,1_0\n", "line 2, column 'rating': '1_0' is not a number; write the rating as a number"),
    ("file,rating\nx.png,\u0664\n", "line 2, column 'rating': '\u0664' is not a number"),
    ("file,rating\nx.png,1e5000\n", "line 2, column 'rating': '1e5000' is not a number"),
    ('file,rating,comment\nx.png,x,"two\nlines"\n', "line 2, column 'rating': 'x' is not a number"),
    ('file,rating,comment\nx.png,1,"two\nlines"\ny.png,2,"two\nlines"\ny.png,3,\n', "line 6, column 'file': 'y.png' "
     "is rated twice by the same rater (the file has no rater column), first on line 4"),
    ("file;rating\nx.png;3\n", "(the file looks semicolon-separated: save it comma-separated)"),
    ("file\trating\nx.png\t3\n", "(the file looks tab-separated: save it comma-separated)"),
    ("sep=;\nfile;rating\nx.png;3\n", "(its first line is a spreadsheet's separator line, sep=...: delete it, and save"),
    ("sep=,\nfile,rating\nx.png,3\n", "(its first line is a spreadsheet's separator line, sep=...: delete it"),
    ("file,rating,,comment\nx.png,3,oops,fine\n", "line 2: column 3 has no name in the header but holds 'oops'; name"),
    ("file,rating,file_a,file_b,preferred\nx.png,1,x.png,y.png,a\n", "the header names columns of both layouts (['file', "
     "'rating'] per image, ['file_a', 'file_b', 'preferred'] per pair); keep one layout per file"),
]


@pytest.mark.parametrize("text, message", MORE_BAD_RATINGS, ids=[m[:40] for _, m in MORE_BAD_RATINGS])
def test_more_bad_ratings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_ratings(path)
    assert message in str(caught.value)


def test_not_utf8_and_too_large_files_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("file,rating\ncaf\u00e9.png,3\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"is not UTF-8 text \(byte 15\); save it as UTF-8"):
        read_ratings(latin1)
    import fp_rank.analysis.ratings as ratings_module

    assert ratings_module.MAX_RATINGS_BYTES == 256 * 1024**2
    monkeypatch.setattr(ratings_module, "MAX_RATINGS_BYTES", 10)
    with pytest.raises(InputError, match="ratings file .* cannot be read: 23 bytes, more than the 10 fp-rank reads"):
        read_ratings(_write(tmp_path, "file,rating\nx.png,3.25\n"))


def test_trailing_empty_header_cells_are_dropped(saved: tuple[Path, Report], tmp_path: Path) -> None:
    path = _write(tmp_path, "file,rating,,\ngood/wren0/0.png,1,,\ngood/wren0/1.png,2\nmid/tern1/2.png,3,,\n")
    ratings = read_ratings(path)
    assert (ratings.n_rows, ratings.ignored_columns) == (3, ())
    assert agreement(saved[1], ratings).counts["rated_images"] == 3


def test_names_match_in_unicode_nfc(saved: tuple[Path, Report], tmp_path: Path) -> None:
    _, report = saved
    rows = [dict(q, file=q["file"].replace("wren", "Caf\u00e9 wren")) for q in report.queries]  # NFC, as Linux keeps it
    nfd = unicodedata.normalize("NFD", "good/Caf\u00e9 wren0/0.png")  # as macOS writes it
    assert nfd != "good/Caf\u00e9 wren0/0.png"
    out = agreement(Report(report.results, rows, report.metadata), read_ratings(_write(tmp_path, f"file,rating\n{nfd},3\n")))
    assert out.counts["rated_images"] == 1


def test_the_closest_name_hint_looks_through_few_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    rows = [{"encoder": "enc", "method": f"m{i % 3}", "identity": f"id{i // 50}", "group": "g", "ap": 0.5, "index": i,
             "file": f"/data/runs/m{i % 3}/id{i // 50}/img_{i:06d}.png"} for i in range(20_000)]
    looked: list[int] = []
    close = difflib.get_close_matches
    monkeypatch.setattr(difflib, "get_close_matches", lambda word, names, *a, **k: looked.append(len(names)) or close(word, names, *a, **k))
    ratings = read_ratings(_write(tmp_path, "file,rating\nm1/id0/img_000001.jpg,1\nzz/nothing.txt,2\n"))
    with pytest.raises(InputError) as caught:
        agreement(SimpleNamespace(encoders=["enc"], queries=rows, metadata={}), ratings)  # type: ignore[arg-type]
    assert looked and max(looked) <= 2000  # not difflib over 20,000 paths and their 100,000 tails
    assert "closest report files: 'm1/id0/img_000001.jpg' -> '/data/runs/m1/id0/img_000001.png'" in str(caught.value)
