"""Shared helpers of the benchmarks: timing, peak memory, the machine, synthetic images, argument parsing.

Every benchmark runs in its own process (``run.py`` starts them one by one), so peak-memory
figures never include another benchmark's allocations.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Benchmarks never touch the network: models are built from configs, data is generated.
for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def exact_rss_mode() -> None:
    """Make resident memory track live allocations (call before measuring peak memory).

    glibc keeps freed heap memory and raises its mmap threshold as big blocks are freed, so a
    later allocation can reuse memory without the resident size (and its high-water mark)
    moving. A fixed 64 KB mmap threshold returns every big block to the kernel when freed. It
    also makes big allocations slower (a fresh mapping each time), so benchmarks time first and
    switch this on only for their memory measurements, which come last.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD (fixed: disables the dynamic threshold)
        libc.mallopt(-1, 1 << 16)  # M_TRIM_THRESHOLD
        libc.malloc_trim(0)


def _libc() -> Any:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018  (glibc only)
        libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Hand freed heap pages back to the kernel, so reusing them shows in the resident size."""
    import gc

    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """``--out FILE`` (JSON result), ``--quick`` (smaller sizes, for a smoke run), ``--workdir``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="where to write this benchmark's JSON result")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the machine")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary folder)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def write_result(path: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """Write one benchmark's result as JSON."""
    Path(path).write_text(json.dumps(result, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call, and its result."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_time(fn: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """Median and all wall times of ``repeats`` calls."""
    times = [timed(fn)[0] for _ in range(repeats)]
    return {"median_s": statistics.median(times), "times_s": times}


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, Any]]:
    """Median times of several variants, run round-robin so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn)[0])
    return {name: {"median_s": statistics.median(t), "times_s": t} for name, t in times.items()}


# ---------------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak extra resident memory (bytes) of a block of code, from the kernel's high-water mark.

    Linux resets the high-water mark (``VmHWM``) when ``5`` is written to
    ``/proc/self/clear_refs``; the peak extra memory is then ``VmHWM`` after the block minus
    ``VmRSS`` before it. Elsewhere ``peak_bytes`` stays None.
    """

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self._before: int | None = None

    def __enter__(self) -> PeakMemory:
        release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            self._before = _status_kib("VmRSS")
        except OSError:
            self._before = None
        return self

    def __exit__(self, *exc: object) -> None:
        hwm = _status_kib("VmHWM")
        if self._before is not None and hwm is not None:
            self.peak_bytes = max(0, hwm - self._before) * 1024


def rss_bytes() -> int | None:
    """Current resident memory."""
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else None


# ---------------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """The machine and software the numbers were measured on."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((ln for ln in fh if ln.startswith("flags")), "")
    except OSError:
        flags = ""
    mem = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    import transformers

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags],
        "memory_bytes": mem,
        "load_average_at_start": load,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "transformers": transformers.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }


# ---------------------------------------------------------------------------------- images


def photo_like(height: int, width: int, seed: int) -> Any:
    """A picture with smooth shapes, texture and noise (what photos look like to codecs and filters)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 24), max(2, width // 24), 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    img = img + rng.integers(-10, 11, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def write_photos(folder: Path, sizes: list[tuple[int, int]], fmt: str = "JPEG", seed: int = 0) -> list[str]:
    """Write photo-like images of the given ``(height, width)`` sizes; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    suffix = ".jpg" if fmt == "JPEG" else ".png"
    for i, (h, w) in enumerate(sizes):
        path = folder / f"img_{i:05d}{suffix}"
        photo_like(h, w, seed + i).save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        paths.append(str(path))
    return paths


def fmt_bytes(n: float | None) -> str:
    """Human-readable byte count."""
    if n is None:
        return "n/a"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
