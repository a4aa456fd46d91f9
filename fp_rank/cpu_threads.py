"""How torch's CPU threads wait for work, and why fp-rank's own processes ask them to sleep.

torch's CPU builds run their intra-op threads on OpenMP (GNU ``libgomp`` in the PyPI wheels).
Unless told otherwise, an OpenMP thread that finishes its share of a parallel region keeps a
core busy for a while, spinning, in case more work comes at once. While a model waits for the
next batch, those spinning threads take the cores that decode and preprocess it: the prefetch
thread, the leakage guard's side thread and ``num_workers`` worker processes. With a cheap
model (tiny backbones, or a GPU doing the forward pass) the run is decode-bound and the spinning
costs throughput directly (``benchmarks/bench_round2.py``, section *workers*, on 2 cores: the
main process's CPU time for 256 images with one worker fell from 0.96 s to 0.06 s, and the rate
at W = 2 went from 0.88 to 0.93 of twice the one-worker rate; BENCHMARKS.md has the run). A
forward-bound model is not slowed by sleeping threads (DINOv2-base's bare forward pass is within
noise either way).

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
        The waiting policy in effect for this process's torch: the variable's value, or None
        when torch was imported before with no policy set (the runtime's default, spinning).
    """
    if WAIT_POLICY in os.environ:
        return os.environ[WAIT_POLICY]
    if "torch" in sys.modules:
        return None
    os.environ[WAIT_POLICY] = "PASSIVE"
    return "PASSIVE"


def waits_passively() -> bool:
    """Whether this process's OpenMP threads sleep when idle (``OMP_WAIT_POLICY=PASSIVE``)."""
    return os.environ.get(WAIT_POLICY, "").strip().upper() == "PASSIVE"
