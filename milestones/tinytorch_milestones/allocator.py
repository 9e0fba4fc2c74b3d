"""Keep large temporaries in the process heap instead of returning them to the OS.

glibc serves big allocations (im2col matrices, activations, gradients) with ``mmap`` and
unmaps them on free, so a training loop that allocates the same large arrays every step
page-faults all of that memory back in each step. On a small machine this costs as much as
the arithmetic. Raising the mmap threshold and the trim threshold once makes glibc reuse
freed heap memory instead. Nothing changes on other C libraries or platforms.

It changes the whole process, so it is opt-in: importing TinyTorch never calls it. The
milestones CLI calls ``tune_malloc()`` before training, and every worker of bench/run.py calls
it (for each implementation, so the comparison stays fair). Your own training script may call
it too. Set ``TINYTORCH_MALLOC_TUNING=0`` to make it leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters from <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit systems
TRIM_THRESHOLD = 512 * 1024 * 1024

tuned = False


def tune_malloc() -> bool:
    """Apply the thresholds when running on glibc; returns whether they were applied."""
    global tuned
    if tuned or not sys.platform.startswith("linux"):
        return tuned
    if os.environ.get("TINYTORCH_MALLOC_TUNING", "1") in ("0", "false", "no"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return tuned
