"""Best-effort control of OpenBLAS threads (milestones and benchmarks use it).

The milestones multiply small matrices (tens to hundreds of rows). For those, a
multi-threaded BLAS mostly synchronises threads, and on a busy 2-core machine the
threads wait for each other: a full ``verify`` measured 204 s with OpenBLAS's default
threads against 22 s with one thread on the same loaded machine. So ``run`` and
``verify`` use one BLAS thread unless the user chose otherwise: an explicit
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` is respected, and
``TINYTORCH_BLAS_THREADS`` (a number, or ``auto`` to leave BLAS alone) overrides.
One thread also makes the numbers independent of the machine's core count.
A count outside 1..``MAX_THREADS`` is refused with a warning and BLAS left as it is (the
setter takes a C int, and OpenBLAS silently caps what it gets at its build's limit), and the
note reports the count OpenBLAS really uses after the change.

The thread count is changed through OpenBLAS's own ``*_set_num_threads`` entry point
(what ``threadpoolctl`` does), found among the libraries this process has loaded.
Where that is impossible (no OpenBLAS, no ``/proc``), nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import warnings

#: the most threads TINYTORCH_BLAS_THREADS may ask for (OpenBLAS builds allow 64 to 512)
MAX_THREADS = 256

_SETTERS = (
    "openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
)
_GETTERS = (
    "openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
)


def _openblas_functions():
    """(setter, getter) of the loaded OpenBLAS, or (None, None)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            maps = fh.read()
    except OSError:
        return None, None
    paths = sorted({line.split()[-1] for line in maps.splitlines()
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
        getter = next((getattr(lib, g) for g in _GETTERS if hasattr(lib, g)), None)
        if setter is not None and getter is not None:
            getter.restype = ctypes.c_int
            return setter, getter
    return None, None


def openblas_threads() -> int | None:
    """Threads the loaded OpenBLAS will use, or None where it cannot be asked."""
    _, getter = _openblas_functions()
    return None if getter is None else int(getter())


def requested_threads() -> int | None:
    """The BLAS thread count to use, or None to leave BLAS as it is."""
    value = os.environ.get("TINYTORCH_BLAS_THREADS", "").strip().lower()
    if value == "auto":
        return None
    if value:
        return _thread_count(value)
    if any(os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        return None  # the user already decided
    return 1


def _thread_count(value: str) -> int | None:
    """TINYTORCH_BLAS_THREADS's ``value`` as a count from 1 to ``MAX_THREADS``, or None (with a
    warning) to leave BLAS alone: a count out of range is a mistake, not a request to round."""
    try:
        count = int(value)
    except ValueError:
        warnings.warn(f"TINYTORCH_BLAS_THREADS={value!r} is neither a number nor 'auto'; BLAS is left as it is",
                      RuntimeWarning, stacklevel=3)
        return None
    if not 1 <= count <= MAX_THREADS:
        warnings.warn(f"TINYTORCH_BLAS_THREADS={value!r} is not a thread count from 1 to {MAX_THREADS}; "
                      "BLAS is left as it is", RuntimeWarning, stacklevel=3)
        return None
    return count


@contextlib.contextmanager
def blas_threads():
    """Use ``requested_threads()`` BLAS threads inside the block; yields a description."""
    wanted = requested_threads()
    setter, getter = _openblas_functions() if wanted is not None else (None, None)
    if setter is None:
        yield "BLAS threads unchanged"
        return
    previous = int(getter())
    setter(ctypes.c_int(wanted))
    used = int(getter())  # what OpenBLAS took: at most its build's limit
    capped = "" if used == wanted else f", not the {wanted} asked for: this OpenBLAS's limit"
    try:
        yield f"OpenBLAS threads: {used}{capped} (small matrices; TINYTORCH_BLAS_THREADS=auto leaves BLAS alone)"
    finally:
        setter(ctypes.c_int(previous))
