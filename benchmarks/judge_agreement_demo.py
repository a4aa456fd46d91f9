"""The judge served on loopback and the agreement command, end to end on the demo benchmark.

1. exports the demo's 450 generated images with their manifest;
2. serves an OpenAI-compatible chat API on 127.0.0.1 (tests/judge_server.py) whose "model" is a
   thumbnail rule, not a VLM: it scores 4 for near-identical 32 x 32 thumbnails of the reference
   and the generated image, down to 0 as they differ;
3. runs ``fp-rank evaluate --judge openai:loopback-thumbnail`` against it (every call goes over HTTP);
4. writes synthetic ratings by simulated people who know how each image was made (the demo's
   ground truth: faithful kept the details; detail-loss shrank the spot; drifting painted a
   sibling's details on 80% of its images), two raters each, with noise;
5. runs ``fp-rank agreement`` on the report and those ratings.

Writes benchmarks/judge_agreement_demo.md. The judge numbers say how the plumbing behaves, not
how good any real judge is.

    python benchmarks/judge_agreement_demo.py
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fp_rank.cli import main  # noqa: E402
from fp_rank.demo.run import export_generated  # noqa: E402
from fp_rank.demo.synthetic import IDENTITIES, PROMPTS  # noqa: E402
from tests.judge_server import ChatServer, pixel_judge  # noqa: E402

#: The simulated people's mean rating (1-5) by how an image was made.
TRUE_RATING = {"faithful": 4.6, "detail-loss": 3.0, "drifting-sibling": 1.6, "drifting-kept": 4.4}


def _truth(method: str, label: str, p_idx: int, seed: int = 0) -> str:
    if method != "drifting":
        return method
    drifted = random.Random(f"{seed}/{method}/{label}/{p_idx}").random() < 0.8  # the demo's own draw
    return "drifting-sibling" if drifted else "drifting-kept"


def _cli(argv: list[str]) -> tuple[int, str, float]:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue(), time.perf_counter() - start


def run(work: Path) -> str:
    os.environ.setdefault("FP_RANK_CACHE", str(work / "cache"))
    manifest = export_generated(work / "demo-run", seed=0)
    with ChatServer(pixel_judge) as server:
        os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = server.base_url, "sk-loopback-demo"
        code, table, seconds = _cli(["evaluate", "--gallery", "demo", "--generated", str(manifest), "--encoder",
                                     "fp-rank-demo", "--judge", "openai:loopback-thumbnail", "--no-progress",
                                     "--out", str(work / "out")])
        assert code == 0, table
        _, again, again_seconds = _cli(["evaluate", "--gallery", "demo", "--generated", str(manifest), "--encoder",
                                        "fp-rank-demo", "--judge", "openai:loopback-thumbnail", "--no-progress",
                                        "--bootstrap", "0"])
        requests = len(server.requests)
    rng = random.Random(7)
    ratings = work / "ratings.csv"
    with open(ratings, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "rater", "rating"])
        for method in ("faithful", "detail-loss", "drifting"):
            for ident in IDENTITIES:
                for p_idx in range(len(PROMPTS)):
                    mean = TRUE_RATING[_truth(method, ident.label, p_idx)]
                    for rater in ("r1", "r2"):
                        value = min(5.0, max(1.0, rng.gauss(mean, 0.8)))
                        out.writerow([f"{method}/{ident.label}/{p_idx:02d}.png", rater, round(value)])
    code, agreement, agreement_seconds = _cli(["agreement", str(work / "out" / "report.json"), str(ratings),
                                               "--out", str(work / "agreement.json")])
    assert code == 0, agreement
    return "\n".join([
        "# The judge on loopback and agreement with synthetic ratings",
        "",
        "Made by `python benchmarks/judge_agreement_demo.py` (CPU, 2 cores; no GPU was lent). The judge is an",
        "OpenAI-compatible server on 127.0.0.1 whose 'model' is a thumbnail-difference rule, not a",
        "vision-language model: these numbers show the plumbing, not the quality of any real judge.",
        "",
        f"## `fp-rank evaluate --judge openai:loopback-thumbnail` ({seconds:.1f} s, {requests} HTTP requests in both runs)",
        "",
        "```", table.strip(), "```",
        "",
        f"The same run again: {again_seconds:.1f} s, every judgement from the cache:",
        "",
        "```", [line for line in again.splitlines() if line.startswith("judge:")][0], "```",
        "",
        f"## `fp-rank agreement` on synthetic ratings ({agreement_seconds:.1f} s)",
        "",
        "Two simulated raters per image rate 1-5 around what they know of how it was made (faithful 4.6,",
        "detail-loss 3.0, drifting with a sibling's details 1.6, drifting that kept its own 4.4; sd 0.8, rounded).",
        "",
        "```", agreement.strip(), "```",
        "",
    ])


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        text = run(Path(tmp))
    target = ROOT / "benchmarks" / "judge_agreement_demo.md"
    target.write_text(text)
    print(text)
    print(f"wrote {target}")
