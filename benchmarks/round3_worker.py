"""One measurement of the round-3 benchmark (``bench_round3.py``) against one source tree.

Run with ``PYTHONPATH=<tree>``: ``fp_rank`` is imported from that tree (checked), so the same
measurement runs on main before the round and on this checkout, side by side. Prints one JSON
object on its last line.

    python round3_worker.py ranking [--quick]   # rank_metrics vs one pass, every regime, int and str labels
    python round3_worker.py command ARGV...     # which heavy libraries a command imports
    python round3_worker.py walk WORKDIR        # the files one generated image passes through
"""

from __future__ import annotations

import builtins
import io
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: The regimes of the ranking benchmark: (name, Q, N, R, shift, dtype).
REGIMES = [
    ("issue: 2,000 x 50,000, R=10, random scores, float32", 2000, 50000, 10, None, "float32"),
    ("1,000 x 10,000, R=10, shift 4", 1000, 10000, 10, 4.0, "float64"),
    ("1,000 x 10,000, R=1000, shift 4", 1000, 10000, 1000, 4.0, "float64"),
    ("500 x 100,000, R=10, shift 1", 500, 100000, 10, 1.0, "float64"),
    ("500 x 100,000, R=10, shift 4", 500, 100000, 10, 4.0, "float64"),
]
HEAVY = ("torch", "transformers", "datasets", "open_clip", "gradio")


def _tree() -> Path:
    import fp_rank

    tree = Path(os.environ["PYTHONPATH"].split(os.pathsep)[0]).resolve()
    assert Path(fp_rank.__file__).resolve().is_relative_to(tree), (fp_rank.__file__, tree)
    return tree


def _best(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ranking(quick: bool) -> dict[str, Any]:
    """Per regime and label kind: the best of 5 times of ``rank_metrics`` and of one pass (row max)."""
    import numpy as np

    from fp_rank import rank_metrics

    _tree()
    out = {}
    for name, q, n, r, shift, dtype in REGIMES:
        if quick:
            q, n = max(50, q // 20), max(1000, n // 20)
            r = min(r, n // 4)
        rng = np.random.default_rng(0)
        gallery_ids = np.repeat(np.arange(n // r), r)[:n]
        query_ids = rng.integers(0, n // r, q)
        sim = rng.standard_normal((q, n)).astype(dtype)
        if shift is not None:
            sim[gallery_ids[None, :] == query_ids[:, None]] += shift
        for kind in ("int", "str"):
            g = gallery_ids if kind == "int" else [f"identity-{i}" for i in gallery_ids]
            qi = query_ids if kind == "int" else [f"identity-{i}" for i in query_ids]
            rank_metrics(sim[:2], qi[:2], g)  # warm-up: imports, the compiled kernel, the thread pool
            one = _best(lambda: sim.max(axis=1), 5)
            ours = _best(lambda g=g, qi=qi: rank_metrics(sim, qi, g), 5)  # noqa: B023
            out[f"{name} | {kind}"] = {"queries": q, "gallery": n, "relevant": r, "labels": kind,
                                        "rank_metrics_s": ours, "one_pass_s": one, "ratio": ours / one}
    return out


def command(argv: list[str]) -> dict[str, Any]:
    """Run ``python -m <argv>`` in this process; the heavy libraries it imported."""
    import contextlib
    import io
    import runpy

    module, sys.argv = argv[0], argv
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    return {"heavy_imported": sorted(m for m in HEAVY if m in sys.modules)}


def walk(work: Path) -> dict[str, Any]:
    """The project frames on the call stack each time one generated image's file is opened and when
    the ranking first runs after that, merged into one walk (a frame shared with the previous stack
    is not repeated).

    A read on a side thread is joined to the main thread's stack at that moment (the consumer
    waiting for it), so the walk starts at ``evaluate`` either way.
    """
    import fp_rank
    from fp_rank.demo import gallery as demo_gallery
    from fp_rank.demo.synthetic import generated_records

    tree = _tree()
    package = tree / "fp_rank"
    gallery = work / "gallery"
    if not (gallery / "README.md").exists():
        demo_gallery.build(gallery, seed=0)
    (work / "gen").mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for i, rec in enumerate(generated_records(0, methods=("faithful",))[:4]):
        path = work / "gen" / f"{i}.png"
        rec["image"].save(path)
        paths.append(str(path))
        labels.append(rec["identity"])
    target = paths[0]
    main_ident = threading.main_thread().ident
    stacks: dict[str, list[str]] = {}

    def project_frames(frame: Any) -> list[str]:
        out = []
        while frame is not None:
            file = Path(frame.f_code.co_filename)
            if file.is_relative_to(package):
                out.append(f"{file.relative_to(tree).as_posix()}:{frame.f_code.co_name}")
            frame = frame.f_back
        return out[::-1]

    def names_target(frame: Any) -> bool:
        return any(isinstance(v, (str, os.PathLike)) and os.fspath(v) == target for v in frame.f_locals.values())

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and arg in (builtins.open, io.open) and names_target(frame):
            here = project_frames(frame)
            if threading.get_ident() != main_ident:
                here = project_frames(sys._current_frames()[main_ident]) + here
            stacks[f"read {len(stacks) + 1}"] = here
        elif event == "call" and stacks and threading.get_ident() == main_ident:
            file = Path(frame.f_code.co_filename)
            if file.is_relative_to(package):
                folder = file.relative_to(package).parts[0]
                if "ranking" not in stacks and folder == "ranking":
                    stacks["ranking"] = project_frames(frame)

    fp_rank.evaluate(paths[:1], labels[:1], gallery=str(gallery), encoder="fp-rank-demo", cache=False,
                     progress=False)  # warm-up: imports and lazy loads are not the walk
    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        fp_rank.evaluate(paths, labels, gallery=str(gallery), encoder="fp-rank-demo", cache=False, progress=False)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    frames: list[str] = []
    previous: list[str] = []
    for stack in stacks.values():
        common = 0
        while common < min(len(stack), len(previous)) and stack[common] == previous[common]:
            common += 1
        frames += stack[common:]
        previous = stack
    files = [f.split(":")[0] for f in frames]
    visits = [f for i, f in enumerate(files) if i == 0 or f != files[i - 1]]
    return {"stages": list(stacks), "frames": frames, "stops": len(frames), "file_visits": visits,
            "files": len(set(files)), "re_entries": len(visits) - len(set(files))}


def main() -> None:
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "ranking":
        result = ranking("--quick" in rest)
    elif mode == "command":
        result = command(rest)
    else:
        result = walk(Path(rest[0]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
