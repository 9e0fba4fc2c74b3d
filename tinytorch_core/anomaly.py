"""Anomaly mode: the first NaN or Inf produced in forward or backward raises an error that names
the op (qualified name and registering plugin) and the line of user code that called it.

Turn it on with ``with tinytorch_core.detect_anomaly():`` (also a decorator; this thread only, like
grad mode) or for a whole run with ``TINYTORCH_DETECT_ANOMALY=1``. It costs a finiteness scan of every op's output, so it is
off by default; when off, the hot path pays one attribute read per op.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .grad_mode import _ModeSwitch


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared; the message names the op, its plugin and the calling line."""


class detect_anomaly(_ModeSwitch):
    """Check every op's outputs and gradients for NaN/Inf inside the block (this thread only)."""

    _mode = "anomaly"
    _target = True


_FRAMEWORK_DIRS: tuple[str, ...] | None = None


def _framework_dirs() -> tuple[str, ...]:
    global _FRAMEWORK_DIRS
    if _FRAMEWORK_DIRS is None:
        from . import catalog

        _FRAMEWORK_DIRS = tuple(f"{os.sep}{stage.package}{os.sep}" for stage in catalog.STAGES)
    return _FRAMEWORK_DIRS


def user_call_site() -> str:
    """``file:line in function`` of the innermost frame outside the framework's packages."""
    dirs = _framework_dirs()
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not any(d in filename for d in dirs):
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "<framework internals>"


def _op_words(fn) -> str:
    name = fn.display_name()
    # the plugin host leaves each registered op's ``OpEntry`` on its class (host/loading.py: commit)
    entry = getattr(fn, "registration", None)
    if entry is not None:
        return f"op {name} (registered by plugin '{entry.plugin}', {entry.distribution} {entry.version})"
    return f"op {name}"


def _bad_values(arr) -> str | None:
    """"2 NaN, 1 Inf" for a floating array or scalar holding them, else None. Only ``isfinite``
    and ``isnan`` look at the values: arithmetic on them would warn before the clear error."""
    # a reduction's forward often returns a NumPy scalar (np.float32), not a 0-d array
    if not isinstance(arr, (np.ndarray, np.generic)) or arr.dtype.kind != "f":
        return None
    finite = np.isfinite(arr)
    if finite.all():
        return None
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(arr.size - finite.sum()) - n_nan
    return ", ".join(p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} Inf" if n_inf else "") if p)


def check_forward(fn, ctx, raw_inputs, out) -> None:
    ctx._call_site = site = user_call_site()
    outputs = out if type(out) is tuple else (out,)
    for k, o in enumerate(outputs):
        bad = _bad_values(o)
        if bad:
            inputs_bad = [i for i, a in enumerate(raw_inputs) if _bad_values(a)]
            origin = (
                f"its input(s) {inputs_bad} already held non-finite values"
                if inputs_bad
                else "from finite inputs"
            )
            raise AnomalyError(
                f"forward of {_op_words(fn)} produced {bad} in output {k} (shape {o.shape}), {origin}; "
                f"called at {site}"
            )


def check_backward(node, index: int, grad) -> None:
    bad = _bad_values(grad)
    if bad:
        site = getattr(node, "_call_site", "an unknown site (the forward ran outside anomaly mode)")
        raise AnomalyError(
            f"backward of {_op_words(type(node))} produced {bad} in the gradient of input {index} "
            f"(shape {grad.shape}); its forward was called at {site}"
        )
