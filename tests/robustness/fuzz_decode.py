"""Mutation fuzzing of the image decoding path (``fp_rank.encoding.to_rgb``).

Valid PNG, JPEG, GIF, WebP, BMP and TIFF files (several modes each, see ``zoo.seed_images``) are
mutated (byte flips, truncation, insertion, deletion, duplicated or zeroed spans, overwritten
header fields; PNG chunk checksums are then repaired with some probability so that the mutation
reaches the decoders instead of stopping at the CRC check) and fed to ``to_rgb``. The only
acceptable outcomes are an 8-bit RGB picture or :class:`~fp_rank.errors.ImageDecodeError`.

The test suite runs a small hypothesis-driven version (``test_fuzz_decode.py``); a long run is::

    python -m tests.robustness.fuzz_decode --n 20000 --seed 0

which prints a summary and exits 1 if anything other than ImageDecodeError escaped (each such
input is saved under ``--save`` for reproduction). ``--engine atheris`` runs a coverage-guided
session instead when the optional ``atheris`` package is installed.
"""

from __future__ import annotations

import argparse
import collections
import random
import struct
import sys
import time
import traceback
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

from fp_rank.images.decode import MAX_ASPECT_RATIO, to_rgb
from fp_rank.errors import ImageDecodeError

#: A mutation: (kind, position as a fraction of the length, a byte value, a span length).
Op = tuple[str, float, int, int]
KINDS = ("flip", "set", "truncate", "insert", "delete", "duplicate", "zero", "int32")

#: Pixel limit used while fuzzing: mutated headers often claim huge sizes, which must be refused
#: from the header; a lower limit keeps accepted-but-large pictures cheap to decode.
FUZZ_MAX_PIXELS = 4_000_000


def apply_ops(data: bytes, ops: Sequence[Op]) -> bytes:
    """Apply mutations in order (pure function of its arguments)."""
    buf = bytearray(data)
    for kind, where, value, span in ops:
        if not buf and kind != "insert":
            continue
        pos = min(int(where * len(buf)), max(len(buf) - 1, 0))
        span = max(1, span)
        if kind == "flip":
            buf[pos] ^= 1 << (value % 8)
        elif kind == "set":
            buf[pos] = value % 256
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = bytes([value % 256]) * span
        elif kind == "delete":
            del buf[pos : pos + span]
        elif kind == "duplicate":
            buf[pos:pos] = buf[pos : pos + span]
        elif kind == "zero":
            buf[pos : pos + span] = bytes(len(buf[pos : pos + span]))
        elif kind == "int32":  # overwrite a 32-bit field (sizes, lengths, offsets) with an extreme value
            extreme = (0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000, value << 16)[span % 6]
            buf[pos : pos + 4] = struct.pack(">I", extreme & 0xFFFFFFFF)
    return bytes(buf)


def repair_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk checksum of a (possibly mutated) PNG, leaving other bytes alone."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    buf = bytearray(data)
    pos = 8
    while pos + 12 <= len(buf):
        length = int.from_bytes(buf[pos : pos + 4], "big")
        end = pos + 8 + length
        if end + 4 > len(buf):
            break
        buf[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(buf[pos + 4 : end])) & 0xFFFFFFFF)
        pos = end + 4
    return bytes(buf)


def mutate(data: bytes, ops: Sequence[Op], fix_crc: bool) -> bytes:
    out = apply_ops(data, ops)
    return repair_png_crcs(out) if fix_crc else out


def check_one(data: bytes) -> str:
    """Decode ``data``; return ``"ok"`` or ``"refused"``; raise anything else that escapes."""
    try:
        img = to_rgb(data, name="fuzz", max_pixels=FUZZ_MAX_PIXELS)
    except ImageDecodeError:
        return "refused"
    w, h = img.size
    if img.mode != "RGB" or min(w, h) < 1 or w * h > FUZZ_MAX_PIXELS or max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        raise AssertionError(f"to_rgb returned mode {img.mode} size {img.size}")
    return "ok"


def random_ops(rng: random.Random) -> list[Op]:
    return [
        (rng.choice(KINDS), rng.random(), rng.randrange(256), rng.choice((1, 2, 3, 4, 5, 8, 16, 64)))
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5, 8)))
    ]


def run_random(n: int, seed: int, save: Path | None) -> int:
    from tests.robustness.zoo import seed_images

    warnings.simplefilter("ignore")  # PIL warns about every odd header it meets; the outcomes are what count
    seeds = seed_images()
    names = sorted(seeds)
    rng = random.Random(seed)
    outcomes: collections.Counter[str] = collections.Counter()
    per_seed: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    escapes: collections.Counter[str] = collections.Counter()
    slowest = (0.0, "")
    start = time.perf_counter()
    for i in range(n):
        name = names[i % len(names)]
        ops = random_ops(rng)
        data = mutate(seeds[name], ops, fix_crc=rng.random() < 0.7)
        t0 = time.perf_counter()
        try:
            result = check_one(data)
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything that escapes
            result = "ESCAPED"
            key = f"{type(exc).__name__}: {str(exc)[:120]}"
            escapes[key] += 1
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                (save / f"escape-{i:06d}-{name}.bin").write_bytes(data)
                (save / f"escape-{i:06d}-{name}.txt").write_text(f"{ops}\n\n{traceback.format_exc()}")
        elapsed = time.perf_counter() - t0
        if elapsed > slowest[0]:
            slowest = (elapsed, f"#{i} ({name})")
        outcomes[result] += 1
        per_seed[name][result] += 1
    total = time.perf_counter() - start
    print(f"fuzz_decode: {n} mutated inputs from {len(names)} seed files, seed={seed}, {total:.1f} s")
    print(f"  decoded to RGB: {outcomes['ok']}, refused with ImageDecodeError: {outcomes['refused']}, "
          f"escaped: {outcomes['ESCAPED']}")
    print(f"  slowest input: {slowest[0] * 1000:.1f} ms {slowest[1]}")
    for name in names:
        c = per_seed[name]
        print(f"  {name:<18} ok {c['ok']:>6}  refused {c['refused']:>6}  escaped {c['ESCAPED']:>4}")
    for key, count in escapes.most_common():
        print(f"  ESCAPE x{count}: {key}")
    return 1 if escapes else 0


def run_atheris(n: int) -> int:  # pragma: no cover - optional engine, not installed in CI
    import atheris  # type: ignore[import-not-found]

    from tests.robustness.zoo import seed_images

    corpus = list(seed_images().values())

    def one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        base = corpus[fdp.ConsumeIntInRange(0, len(corpus) - 1)]
        fix = fdp.ConsumeBool()
        rest = fdp.ConsumeBytes(fdp.remaining_bytes())
        # the fuzzer's bytes overwrite a window of a valid file, so its mutations start from
        # something the decoders accept
        pos = int.from_bytes(rest[:2] or b"\0", "little") % max(len(base), 1)
        check_one(mutate(base[:pos] + rest[2:] + base[pos + max(len(rest) - 2, 0) :], [], fix_crc=fix))

    warnings.simplefilter("ignore")
    atheris.instrument_all()  # coverage feedback from every loaded Python module (PIL's plugins included)
    atheris.Setup([sys.argv[0], f"-runs={n}"], one_input)
    atheris.Fuzz()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of mutated inputs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("random", "atheris"), default="random")
    parser.add_argument("--save", type=Path, default=None, help="folder for inputs that escaped")
    args = parser.parse_args(argv)
    if args.engine == "atheris":
        return run_atheris(args.n)
    return run_random(args.n, args.seed, args.save)


if __name__ == "__main__":
    sys.exit(main())
