"""Checks of an optimizer state being loaded (``Optimizer.load_state_dict``).

A state is checked as the constructor checks hyperparameters: a NaN moment, a negative second
moment or a step count of 1.5 would otherwise turn the next ``step()`` into NaN weights without a
word, and an entry that names no parameter would silently reset its momentum.
"""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core.checks import values_that_do_not_fit


class StateSpec:
    """What one parameter's state may hold: ``arrays`` maps each array's key to whether it must be
    non-negative; ``counts`` are integer step counts; ``required`` must all be there."""

    def __init__(self, arrays: dict, counts=(), required=()):
        self.arrays, self.counts, self.required = dict(arrays), tuple(counts), frozenset(required)


def restore_state(name: str, params, saved_state, spec) -> dict:
    """The state of each parameter in ``params`` (``(saved index, parameter)`` pairs) from
    ``saved_state``, checked against ``spec`` (a ``StateSpec``; None: only arrays are checked, for
    an optimizer that declares none); arrays are copied in the parameter's dtype."""
    if not isinstance(saved_state, dict):
        raise ValueError(f"{name}.load_state_dict: 'state' must be a dict, got {type(saved_state).__name__}")
    known = {index for index, _ in params}
    unknown = [key for key in saved_state if key not in known]
    if unknown:  # it would be dropped, and that parameter's momentum silently reset
        raise ValueError(f"{name}.load_state_dict: state for parameter(s) {unknown[:5]!r} that no group "
                         f"lists (the groups list {sorted(known, key=repr)[:10]!r})")
    restored = {}
    for index, p in params:
        entry = saved_state.get(index)
        if entry is not None:
            restored[p] = _entry(f"{name}.load_state_dict: state of parameter {index!r}", entry, p, spec)
    return restored


def _entry(where: str, entry, p, spec: StateSpec) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a dict, got {type(entry).__name__}")
    if spec is not None:
        extra, missing = set(entry) - set(spec.arrays) - set(spec.counts), spec.required - set(entry)
        if extra:
            raise ValueError(f"{where} has key(s) {sorted(map(str, extra))} that this optimizer does not keep")
        if missing:
            raise ValueError(f"{where} lacks {sorted(missing)}")
    out = {}
    for key, value in entry.items():
        if spec is None and not isinstance(value, np.ndarray):  # an optimizer that declares no spec
            out[key] = value
            continue
        if spec is not None and key in spec.counts:
            if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or not 0 <= value < 2**53:
                raise ValueError(f"{where}: '{key}' must be an int >= 0 (below 2**53: a float counts it exactly), "
                                 f"got {value!r:.40}")
            out[key] = int(value)
            continue
        if not isinstance(value, np.ndarray) or isinstance(value, np.ma.MaskedArray) or value.dtype.kind not in "iuf":
            raise ValueError(f"{where}: '{key}' must be an array of numbers, got {type(value).__name__}")
        if value.shape != p.data.shape:
            raise ValueError(f"{where}: '{key}' has shape {value.shape}, the parameter has {p.data.shape}")
        non_negative = spec is not None and spec.arrays[key]
        if not np.isfinite(value).all() or (non_negative and (value < 0).any()):
            sign = " and >= 0" if non_negative else ""
            raise ValueError(f"{where}: '{key}' must hold finite numbers{sign}")
        too_large = values_that_do_not_fit(value, p.data.dtype)  # 1e300 would load as inf in float32
        if too_large:
            raise ValueError(f"{where}: '{key}' holds {too_large}")
        out[key] = value.astype(p.data.dtype, copy=True)
    return out
