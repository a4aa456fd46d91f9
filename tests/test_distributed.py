"""Data-parallel encoding: two processes under torchrun (gloo, CPU) give what one process gives."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fp_rank import distributed, load_encoder
from fp_rank.errors import ImageDecodeError
from fp_rank.evaluation.embed import encode_sharded

# The same script runs once in this process (a plain run) and under torchrun with 2 processes.
WORKER = r'''
import json, os, sys
import numpy as np
from fp_rank import distributed, evaluate, load_encoder
from fp_rank.cli import main as cli_main
from fp_rank.errors import ImageDecodeError

args = json.loads(sys.argv[1])
from fp_rank.evaluation import embed
embed.GENERATED_CHUNK = 8  # several cached chunks of generated images, shared round robin by the ranks
man = json.loads(open(args["manifest"]).read())
ctx, _ = distributed.setup()
out = {"world_size": ctx.world_size, "encoders": {}}
for number, name in enumerate(args["encoders"]):
    kw = dict(methods=man["methods"], gallery=args["gallery"], encoder=name, batch_size=args["batch_size"],
              cache=args["cache_dir"], on_invalid="skip", progress=False)
    report = evaluate(man["files"], man["identities"], **kw)
    entry = {
        "ap": [row["ap"] for row in report.queries],
        "index": [row["index"] for row in report.queries],
        "map": {f"{r.method}": r.map for r in report.results},
        "skipped": report.skipped,
        "cache": report.metadata["cache"],
        "distributed": report.metadata["distributed"],
    }
    if number == 0:  # the cache is read by every rank: a second run encodes no gallery image
        again = evaluate(man["files"], man["identities"], **kw)
        entry["cache_again"] = again.metadata["cache"]
        entry["ap_again"] = [row["ap"] for row in again.queries]
    enc = load_encoder(name)
    res = embed.encode_sharded(enc, man["files"], batch_size=args["batch_size"], progress=False, on_invalid="skip")
    entry["kept"] = res.kept.tolist()
    entry["encode_skipped"] = res.skipped
    if ctx.is_main:
        np.save(os.path.join(args["out"], f"emb{number}.npy"), res.embeddings)
    out["encoders"][name] = entry
# an unreadable image on one rank's shard is raised on every rank (nobody waits forever)
try:
    evaluate(man["files"], man["identities"], methods=man["methods"], gallery=args["gallery"],
             encoder=args["encoders"][0], batch_size=args["batch_size"], cache=args["cache_dir"],
             on_invalid="error", progress=False)
    raised = None
except ImageDecodeError as exc:
    raised = str(exc)
with open(os.path.join(args["out"], f"raised{ctx.rank}.txt"), "w") as fh:
    fh.write(raised or "")
# ranks that hold different inputs fail clearly, on every rank, before encoding
from fp_rank.errors import InputError
n_files = len(man["files"]) - (1 if ctx.rank == 1 else 0)
try:
    evaluate(man["files"][:n_files], man["identities"][:n_files], methods=man["methods"][:n_files],
             gallery=args["gallery"], encoder=args["encoders"][0], batch_size=args["batch_size"],
             cache=args["cache_dir"], on_invalid="skip", progress=False)
    mismatch = ""
except InputError as exc:
    mismatch = str(exc)
with open(os.path.join(args["out"], f"mismatch{ctx.rank}.txt"), "w") as fh:
    fh.write(mismatch)
# the command line: only rank 0 writes the report
cli_main(["evaluate", "--gallery", args["gallery"], "--generated", args["csv"], "--encoder", args["encoders"][0],
          "--bootstrap", "0", "--no-progress", "--cache", args["cache_dir"], "--on-invalid", "skip",
          "--batch-size", str(args["batch_size"]), "--out", os.path.join(args["out"], "cli.json")])
if ctx.is_main:
    with open(os.path.join(args["out"], "out.json"), "w") as fh:
        json.dump(out, fh)
'''


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory: pytest.TempPathFactory, demo_generated: list[dict], demo_gallery_dir: Path) -> dict[str, Any]:
    """45 generated images on disk plus a duplicate and an unreadable file, as a manifest and a CSV."""
    root = tmp_path_factory.mktemp("distributed")
    files, identities, methods = [], [], []
    for i, record in enumerate(demo_generated[::10]):
        path = root / f"gen_{i:02d}.png"
        record["image"].save(path)
        files.append(str(path))
        identities.append(record["identity"])
        methods.append(record["method"])
    files.append(files[3])  # the same image twice: encoded once
    identities.append(identities[3])
    methods.append(methods[3])
    bad = root / "corrupt.png"
    bad.write_bytes(b"this is not an image")
    files.insert(17, str(bad))
    identities.insert(17, identities[0])
    methods.insert(17, methods[0])
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"files": files, "identities": identities, "methods": methods}))
    csv = root / "run.csv"
    csv.write_text("file,identity,method\n" + "".join(f"{f},{i},{m}\n" for f, i, m in zip(files, identities, methods)))
    script = root / "worker.py"
    script.write_text(WORKER)
    return {"root": root, "manifest": manifest, "csv": csv, "script": script, "gallery": demo_gallery_dir}


def _args(inputs: dict[str, Any], encoders: list[str], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    return json.dumps(
        {
            "manifest": str(inputs["manifest"]),
            "csv": str(inputs["csv"]),
            "gallery": str(inputs["gallery"]),
            "encoders": encoders,
            "batch_size": 4,
            "cache_dir": str(out / "cache"),
            "out": str(out),
        }
    )


@pytest.fixture(scope="module")
def both_runs(run_inputs: dict[str, Any], tiny_dinov2_dir: Path) -> dict[str, Path]:
    """The worker run in this process, and under torchrun with 2 CPU processes (gloo)."""
    encoders = ["fp-rank-demo", str(tiny_dinov2_dir)]
    root = run_inputs["root"]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(run_inputs["script"]), _args(run_inputs, encoders, root / "two"),
    ]
    launched = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    saved = sys.argv
    old_env = {k: os.environ.pop(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK") if k in os.environ}
    try:  # the plain run overlaps with the launched one
        sys.argv = [str(run_inputs["script"]), _args(run_inputs, encoders, root / "one")]
        runpy.run_path(str(run_inputs["script"]), run_name="__main__")
    finally:
        sys.argv = saved
        os.environ.update(old_env)
    try:
        output, _ = launched.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        launched.kill()
        output, _ = launched.communicate()
        pytest.fail(f"torchrun did not finish in 300 s:\n{output[-3000:]}")
    assert launched.returncode == 0, output[-3000:]
    return {"one": root / "one", "two": root / "two"}


def test_two_processes_give_the_same_embeddings_and_metrics(both_runs: dict[str, Path], tiny_dinov2_dir: Path) -> None:
    one = json.loads((both_runs["one"] / "out.json").read_text())
    two = json.loads((both_runs["two"] / "out.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2
    for number, name in enumerate(["fp-rank-demo", str(tiny_dinov2_dir)]):
        a, b = one["encoders"][name], two["encoders"][name]
        assert b["distributed"] == {"world_size": 2, "backend": "gloo"}
        emb_a = np.load(both_runs["one"] / f"emb{number}.npy")
        emb_b = np.load(both_runs["two"] / f"emb{number}.npy")
        assert emb_a.shape == emb_b.shape == (46, emb_a.shape[1])  # 47 files, one unreadable
        assert np.abs(emb_a - emb_b).max() <= 1e-6
        assert a["kept"] == b["kept"] and a["encode_skipped"] == b["encode_skipped"]
        assert a["index"] == b["index"]
        if np.array_equal(emb_a, emb_b):  # same vectors: the very same numbers
            assert a["ap"] == b["ap"] and a["map"] == b["map"]
        else:
            assert np.allclose(a["ap"], b["ap"], atol=1e-9)
        assert a["skipped"] == b["skipped"] and len(a["skipped"]) == 1
        assert a["skipped"][0]["file"].endswith("corrupt.png") and a["skipped"][0]["index"] == "17"
        # 47 files: one unreadable, one the copy of another: 46 distinct, 46 queries scored
        assert a["cache"]["generated_images_distinct"] == b["cache"]["generated_images_distinct"] == 46
        assert b["cache"]["generated_images_encoded"] == 46
        assert b["cache"]["gallery_images_encoded"] == a["cache"]["gallery_images_encoded"] > 0


def test_cache_hits_are_agreed_by_every_rank(both_runs: dict[str, Path]) -> None:
    two = json.loads((both_runs["two"] / "out.json").read_text())["encoders"]["fp-rank-demo"]
    assert two["cache_again"]["gallery_images_encoded"] == 0
    assert two["cache_again"]["gallery_images_from_cache"] == two["cache"]["gallery_images_encoded"]
    assert two["ap_again"] == two["ap"]


def test_an_unreadable_image_raises_on_every_rank(both_runs: dict[str, Path]) -> None:
    for rank in (0, 1):
        message = (both_runs["two"] / f"raised{rank}.txt").read_text()
        assert "corrupt.png" in message
    assert "corrupt.png" in (both_runs["one"] / "raised0.txt").read_text()


def test_ranks_with_different_inputs_fail_clearly(both_runs: dict[str, Path]) -> None:
    for rank in (0, 1):
        message = (both_runs["two"] / f"mismatch{rank}.txt").read_text()
        assert "ranks hold different generated images" in message and "rank 1: 46" in message
    assert (both_runs["one"] / "mismatch0.txt").read_text() == ""


def test_generated_chunks_come_from_the_cache_on_every_rank(both_runs: dict[str, Path]) -> None:
    for run in ("one", "two"):
        entry = json.loads((both_runs[run] / "out.json").read_text())["encoders"]["fp-rank-demo"]
        again = entry["cache_again"]
        assert entry["cache"]["generated_images_from_cache"] == 0
        # every chunk of 8 comes from the cache, except the one holding the unreadable file (never stored)
        assert again["generated_images_from_cache"] == entry["cache"]["generated_images_encoded"] - 8
        assert again["generated_images_encoded"] == 8


def test_only_rank_zero_writes_and_the_report_matches(both_runs: dict[str, Path]) -> None:
    one = json.loads((both_runs["one"] / "cli.json").read_text())
    two = json.loads((both_runs["two"] / "cli.json").read_text())
    assert sorted(p.name for p in both_runs["two"].glob("cli*")) == ["cli.json"]
    assert two["metadata"]["distributed"]["world_size"] == 2
    assert [r["map"] for r in one["results"]] == [r["map"] for r in two["results"]]
    assert [q["ap"] for q in one["queries"]] == [q["ap"] for q in two["queries"]]


@pytest.mark.parametrize(("n", "batch", "world"), [(0, 4, 2), (1, 4, 2), (7, 2, 2), (45, 4, 2), (45, 4, 3), (10, 32, 4)])
def test_shards_are_whole_batches_covering_every_item_once(n: int, batch: int, world: int) -> None:
    shards = [distributed.shard_indices(n, batch, rank, world) for rank in range(world)]
    together = np.sort(np.concatenate(shards)) if n else np.zeros(0)
    assert together.tolist() == list(range(n))
    for rank, shard in enumerate(shards):
        batches = sorted({int(i) // batch for i in shard})
        assert batches == list(range(rank, -(-n // batch), world))


def test_a_plain_process_encodes_everything_itself(demo_generated: list[dict]) -> None:
    enc = load_encoder("fp-rank-demo")
    images = [r["image"] for r in demo_generated[:9]]
    ctx, device = distributed.setup("cpu")
    assert not ctx.active and ctx.is_main and device == "cpu"
    direct = enc.encode(images, batch_size=4, progress=False)
    shared = encode_sharded(enc, images, batch_size=4, progress=False)
    assert np.array_equal(direct.embeddings, shared.embeddings)
    assert distributed.all_true(True) and not distributed.all_true(False)


def test_errors_are_rebuilt_with_their_type() -> None:
    record = distributed._error_record(ImageDecodeError("a.png", "file not found"), rank=1)
    rebuilt = distributed._rebuild_error(record)
    assert isinstance(rebuilt, ImageDecodeError) and "a.png" in str(rebuilt)
    other = distributed._rebuild_error(distributed._error_record(MemoryError("out of memory"), rank=1))
    assert isinstance(other, RuntimeError) and "rank 1" in str(other)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_accelerate_launch_runs_the_cli_on_two_cpu_processes(both_runs: dict[str, Path], run_inputs: dict[str, Any]) -> None:
    """``accelerate launch --multi_gpu`` (torch elastic underneath) works without GPUs, with gloo."""
    pytest.importorskip("accelerate")
    out = both_runs["two"].parent / "accelerate"
    out.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", "fp_rank", "evaluate", "--gallery", str(run_inputs["gallery"]), "--generated", str(run_inputs["csv"]),
        "--encoder", "fp-rank-demo", "--bootstrap", "0", "--no-progress", "--on-invalid", "skip", "--batch-size", "4",
        "--cache", str(out / "cache"), "--out", str(out / "cli.json"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    launched = json.loads((out / "cli.json").read_text())
    single = json.loads((both_runs["one"] / "cli.json").read_text())
    assert launched["metadata"]["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert [q["ap"] for q in launched["queries"]] == [q["ap"] for q in single["queries"]]
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone reports


_GATHER_SCRIPT = r"""
import json, os, sys
import numpy as np
import torch.distributed as dist
from fp_rank import distributed
distributed._GATHER_PIECE_ELEMENTS = 3 * 4  # pieces of 3 rows of 4 values: many rounds
ctx, _ = distributed.setup()
rng = np.random.default_rng(0)
n, dim = 29, 4
full = rng.standard_normal((n, dim)).astype(np.float32)
order = rng.permutation(n)
# uneven shards of scattered global indices: rank 0 gets 20 rows, rank 1 gets 9
mine = order[:20] if ctx.rank == 0 else order[20:]
kept, emb, skipped = distributed.gather_encoded(mine.astype(np.int64), full[mine], [], None)
out = {"kept": kept.tolist(), "equal": bool(np.array_equal(emb, full[np.sort(order)]))}
with open(os.path.join(sys.argv[1], f"rank{ctx.rank}.json"), "w") as fh:
    json.dump(out, fh)
dist.destroy_process_group()
"""


def test_the_streamed_gather_puts_uneven_scattered_shards_in_input_order(tmp_path: Path) -> None:
    script = tmp_path / "gather.py"
    script.write_text(_GATHER_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got == {"kept": list(range(29)), "equal": True}
