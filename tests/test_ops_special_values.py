"""No op warns on input it accepts: every registered op of every installed stage, on its own
samples with one entry replaced by +inf, -inf, NaN, 0 or a huge value, forward and backward.

An op may refuse such input with a clear error (BCE refuses probabilities outside [0, 1]); what
it may not do is let a NumPy ``RuntimeWarning`` escape ("overflow encountered in exp"), which
either floods the user's terminal or, under ``-W error``, turns into a crash deep in a kernel.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor

SPECIAL_VALUES = {"+inf": np.inf, "-inf": -np.inf, "nan": np.nan, "zero": 0.0, "huge": 1e30, "-huge": -1e30}


def _registered_differentiable_ops():
    runtime = tt.default_runtime()
    return sorted(name for name, entry in runtime.ops.items() if entry.samples is not None)


def _with_special_value(args, value):
    """The sample's arguments with the first entry of every float array set to ``value``."""
    changed = []
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size:
            a = a.astype(np.float32)
            a.flat[0] = value
        elif isinstance(a, np.ndarray) and a.dtype.kind == "f":
            a = a.astype(np.float32)
        changed.append(a)
    return changed


@pytest.mark.parametrize("value_name", sorted(SPECIAL_VALUES))
@pytest.mark.parametrize("op_name", _registered_differentiable_ops())
def test_no_op_warns_on_special_values(op_name, value_name):
    entry = tt.default_runtime().op(op_name)
    for sample in entry.samples(np.random.default_rng(0)):
        args = _with_special_value(sample.args, SPECIAL_VALUES[value_name])
        inputs = [Tensor(a, requires_grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                  for a in args]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any warning fails the test with its message
            try:
                out = entry.call(*inputs, **sample.kwargs)
            except (ValueError, TypeError, IndexError, FloatingPointError) as refused:
                assert not isinstance(refused, Warning)
                continue  # a clear refusal of the input is allowed
            outputs = out if isinstance(out, tuple) else (out,)
            for o in outputs:
                if isinstance(o, Tensor) and o.requires_grad and entry.differentiable:  # floor_divide: forward only
                    o.backward(np.ones_like(o.data), retain_graph=True)  # split: one pass per piece, one node


def _with_integers(args):
    """The sample's float arrays as int64 arrays (rounded), everything else unchanged."""
    return [np.round(a * 3).astype(np.int64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in args]


@pytest.mark.parametrize("op_name", [name for name in _registered_differentiable_ops() if name != "core::cast"])
def test_integer_input_is_refused_with_type_error_or_never_widened(op_name):
    """One rule for every op on integer tensors: an op whose result is integer too (relu, max,
    reshape) computes it; a floating-point op (exp, sigmoid, softmax, a loss) raises TypeError
    naming the op, never ValueError from deep in a kernel, and never quietly answers in float64
    (an integer tensor meeting a float number, or a true division, gives float32, as in PyTorch)."""
    entry = tt.default_runtime().op(op_name)
    for sample in entry.samples(np.random.default_rng(0)):
        args = [Tensor(a) if isinstance(a, np.ndarray) else a for a in _with_integers(sample.args)]
        if not any(isinstance(a, Tensor) and a.dtype.kind in "iu" for a in args):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                out = entry.call(*args, **sample.kwargs)
            except TypeError as refused:
                assert "float" in str(refused) or "integer" in str(refused) or "dtype" in str(refused), str(refused)
                continue
            except ValueError as refused:  # integer values outside the op's domain (BCE targets)
                said = " ".join([str(refused), *getattr(refused, "__notes__", [])])
                assert said.startswith(entry.short_name) or entry.name in said, said
                continue
        outputs = out if isinstance(out, tuple) else (out,)
        for o in outputs:
            assert o.dtype != np.float64, f"{op_name} turned integer input into float64 instead of refusing it"


@pytest.mark.parametrize("make", [
    lambda ps: tt.optim.SGD(ps, lr=0.1),
    lambda ps: tt.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: tt.optim.Adam(ps, lr=0.1),
    lambda ps: tt.optim.AdamW(ps, lr=0.1),
], ids=["sgd", "sgd-momentum", "adam", "adamw"])
def test_optimizers_do_not_warn_on_non_finite_gradients(make):
    m = tt.nn.Linear(2, 1)
    opt = make(m.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            m.weight.grad = Tensor(np.array([[np.inf, np.nan]], np.float32))
            m.bias.grad = Tensor(np.array([-np.inf], np.float32))
            opt.step()
    assert not np.isfinite(m.weight.data).any()
