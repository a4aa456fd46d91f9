"""How torch's CPU threads wait for work, and why fp-rank's own processes ask them to sleep.

torch's CPU builds run their intra-op threads on OpenMP (GNU ``libgomp`` in the PyPI wheels).
Unless told otherwise, an OpenMP thread that finishes its share of a parallel region keeps a
core busy for a while, spinning, in case more work comes at once. While a model waits for the
next batch, those spinning threads take the cores that decode and preprocess it: the prefetch
thread, the leakage guard's side thread and ``num_workers`` worker processes. With a cheap model
on the CPU the run is decode-bound and the spinning costs throughput. Measured on 2 cores
(``benchmarks/bench_round2.py``, BENCHMARKS.md section 8): the main process's CPU time over 256
images with one worker fell from 0.96 s to 0.06 s; in-process decoding (W = 0) went from 157 to
164 images/s and the paper-sized flow's encode-once limit from 4.07 s to 3.89 s; W = 1 and W = 2
moved within the noise (135 / 238 against 134 / 251 images/s). DINOv2-base's bare forward pass
was not slowed there (6.74 against 6.85 images/s); on hosts with many cores waking sleeping
threads costs more per parallel region, which was not measured.

The policy is read once, when the OpenMP runtime loads with torch, so it can only be chosen
before torch is imported. The ``fp-rank`` command and the Space set ``OMP_WAIT_POLICY=PASSIVE``
at start-up unless the environment already names a policy; a script using the library can do the
same by setting the variable before its first ``import torch``. Nothing here changes a number:
the embeddings do not depend on how threads wait.
"""

from __future__ import annotations

import os
import sys

#: The environment variable OpenMP runtimes read for the waiting policy (``ACTIVE`` or ``PASSIVE``).
WAIT_POLICY = "OMP_WAIT_POLICY"


def prefer_passive_waiting() -> str | None:
    """Ask torch's OpenMP threads to sleep when idle, if it is still possible and nobody chose.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` in this process's environment when the variable is unset and
    torch is not imported yet (the runtime reads it when it loads). A value the user set is
    kept. Child processes (DataLoader workers, ``torchrun`` ranks) inherit it.

    Returns:
        The policy the environment names now (torch honours it only if it was set before torch
        loaded), or None when torch was imported already and no policy is set (the runtime's
        default, spinning).
    """
    if WAIT_POLICY in os.environ:
        return os.environ[WAIT_POLICY]
    if "torch" in sys.modules:
        return None
    os.environ[WAIT_POLICY] = "PASSIVE"
    return "PASSIVE"


def waits_passively() -> bool:
    """Whether the environment asks OpenMP threads to sleep when idle (``OMP_WAIT_POLICY=PASSIVE``;
    it took effect only if it was set before torch loaded)."""
    return os.environ.get(WAIT_POLICY, "").strip().upper() == "PASSIVE"
