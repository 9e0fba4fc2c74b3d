"""The contract of stage ``core``'s ops (arithmetic, reductions, shapes), checked through the
public API (Tensor's operators and methods, ``tinytorch_core`` functions) against NumPy.

Core is the framework itself: it has no other provider, so it has no skeleton (``CONTRACT`` is
None); its suite grades the ops every other stage is built on.
"""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError, check_gradients, expect_close


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _positive(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


def _signed_away_from_zero(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def _cases_check(cases):
    """Each case: (name, function of tensors, NumPy reference of arrays, {input: array})."""
    def forward():
        for name, function, reference, inputs in cases:
            tensors = {k: Tensor(v, dtype=np.float64) for k, v in inputs.items()}
            expect_close(name, function(**tensors), reference(**inputs), rtol=1e-10, atol=1e-12)

    def backward():
        for name, function, _, inputs in cases:
            try:
                check_gradients(function, inputs)
            except ConformanceError as exc:
                raise ConformanceError(f"{name}: {exc}") from None
    return forward, backward


A, B, ROW = _data((3, 4)), _data((3, 4), 1), _data((4,), 2)
DIVISOR = _signed_away_from_zero((3, 4), 11)
# a / DIVISOR kept 0.2 or more from every integer, where the remainder jumps
DIVIDEND = DIVISOR * (np.random.default_rng(12).integers(-3, 4, (3, 4)) + np.random.default_rng(13).uniform(0.2, 0.8, (3, 4)))

ARITHMETIC = [
    ("a + b (broadcast row)", lambda a, b: a + b, lambda a, b: a + b, {"a": A, "b": ROW}),
    ("a - b", lambda a, b: a - b, lambda a, b: a - b, {"a": A, "b": B}),
    ("a * b (broadcast row)", lambda a, b: a * b, lambda a, b: a * b, {"a": A, "b": ROW}),
    ("a / b", lambda a, b: a / b, lambda a, b: a / b, {"a": A, "b": _signed_away_from_zero((3, 4), 3)}),
    ("a ** b", lambda a, b: a ** b, lambda a, b: a ** b, {"a": _positive((3, 4), 4), "b": B}),
    ("-a", lambda a: -a, lambda a: -a, {"a": A}),
    ("a.exp()", lambda a: a.exp(), lambda a: np.exp(a), {"a": A}),
    ("a.log()", lambda a: a.log(), lambda a: np.log(a), {"a": _positive((3, 4), 5)}),
    ("a.sqrt()", lambda a: a.sqrt(), lambda a: np.sqrt(a), {"a": _positive((3, 4), 6)}),
    ("a.abs()", lambda a: a.abs(), lambda a: np.abs(a), {"a": _signed_away_from_zero((3, 4), 7)}),
    ("maximum(a, b)", lambda a, b: tt.maximum(a, b), lambda a, b: np.maximum(a, b), {"a": A, "b": A + 0.5}),
    ("minimum(a, b)", lambda a, b: tt.minimum(a, b), lambda a, b: np.minimum(a, b), {"a": A, "b": A + 0.5}),
    ("a.clip(-1, 1)", lambda a: a.clip(-1.0, 1.0), lambda a: np.clip(a, -1.0, 1.0),
     {"a": np.where(np.abs(np.abs(A) - 1) < 0.1, A * 0.5, A)}),
    ("where(cond, a, b)", lambda a, b: tt.where(Tensor(A > 0), a, b), lambda a, b: np.where(A > 0, a, b), {"a": A, "b": B}),
    ("a @ b (matrices)", lambda a, b: a @ b, lambda a, b: a @ b, {"a": A, "b": _data((4, 2), 8)}),
    ("a @ b (batched)", lambda a, b: a @ b, lambda a, b: a @ b, {"a": _data((2, 3, 4), 9), "b": _data((2, 4, 5), 10)}),
    ("a @ v (matrix-vector)", lambda a, v: a @ v, lambda a, v: a @ v, {"a": A, "v": ROW}),
    ("a % b (the sign of b)", lambda a, b: a % b, lambda a, b: np.remainder(a, b), {"a": DIVIDEND, "b": DIVISOR}),
]

REDUCTIONS = [
    ("a.sum()", lambda a: a.sum(), lambda a: a.sum(), {"a": A}),
    ("a.sum(axis=0, keepdims=True)", lambda a: a.sum(axis=0, keepdims=True), lambda a: a.sum(axis=0, keepdims=True), {"a": A}),
    ("a.mean(axis=1)", lambda a: a.mean(axis=1), lambda a: a.mean(axis=1), {"a": A}),
    ("a.max(axis=1)", lambda a: a.max(axis=1), lambda a: a.max(axis=1), {"a": A}),
    ("a.min(axis=0)", lambda a: a.min(axis=0), lambda a: a.min(axis=0), {"a": A}),
    ("a.var(axis=1)", lambda a: a.var(axis=1), lambda a: a.var(axis=1), {"a": A}),
]

SHAPES = [
    ("a.reshape(2, 6)", lambda a: a.reshape(2, 6), lambda a: a.reshape(2, 6), {"a": A}),
    ("a.transpose(1, 0)", lambda a: a.transpose(1, 0), lambda a: a.transpose(1, 0), {"a": A}),
    ("a.broadcast_to((2, 3, 4))", lambda a: a.broadcast_to((2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)), {"a": A}),
    ("a[1:, ::2]", lambda a: a[1:, ::2], lambda a: a[1:, ::2], {"a": A}),
    ("a[[0, 2, 2]] (repeated rows)", lambda a: a[np.array([0, 2, 2])], lambda a: a[[0, 2, 2]], {"a": A}),
    ("concatenate([a, b], axis=1)", lambda a, b: tt.concatenate([a, b], axis=1),
     lambda a, b: np.concatenate([a, b], axis=1), {"a": A, "b": B}),
    ("stack([a, b])", lambda a, b: tt.stack([a, b]), lambda a, b: np.stack([a, b]), {"a": A, "b": B}),
    ("a.clone()", lambda a: a.clone(), lambda a: a.copy(), {"a": A}),
    ("x[1:3] = w (a recorded write)", lambda w: _written(w), lambda w: _written_reference(w), {"w": _data((2, 4), 11)}),
]


def _written(w):
    x = tt.zeros(4, 4, dtype=np.float64)
    x[1:3] = w
    return x * 2.0


def _written_reference(w):
    x = np.zeros((4, 4))
    x[1:3] = w
    return x * 2.0


arithmetic_forward, arithmetic_backward = _cases_check(ARITHMETIC)


def floor_division():
    """``a // b``: floor(a / b), in floats and in integers (Python's rounding: -5 // 2 is -3)."""
    expect_close("a // b", Tensor(DIVIDEND, dtype=np.float64) // Tensor(DIVISOR, dtype=np.float64),
                 np.floor_divide(DIVIDEND, DIVISOR), rtol=0, atol=0)
    expect_close("int a // 2", Tensor(np.array([5, -5, 7])) // 2, np.array([2, -3, 3]), rtol=0, atol=0)
reductions_forward, reductions_backward = _cases_check(REDUCTIONS)
shapes_forward, shapes_backward = _cases_check(SHAPES)


def dtypes_and_casts():
    t = tt.tensor([1.0, 2.0])
    if t.dtype != np.float32:
        raise ConformanceError(f"tensor([1.0, 2.0]) is {t.dtype}, expected float32 (the default)")
    if (t / np.sqrt(4.0)).dtype != np.float32:
        raise ConformanceError("a NumPy float64 scalar must not widen a float32 tensor")
    w = Tensor(np.array([1.5, -2.0], np.float32), requires_grad=True)
    w.to(np.float64).sum().backward()
    expect_close("grad through .to(float64)", w.grad, np.ones(2))
    if w.grad.dtype != np.float32:
        raise ConformanceError(f"the gradient of a float32 tensor must be float32, got {w.grad.dtype}")


def core_learns():
    """Linear regression from core ops alone: w, b and a hand-written SGD step."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((32, 3)), dtype=np.float64)
    y = Tensor(x.data @ np.array([2.0, -1.0, 0.5]) + 0.3, dtype=np.float64)
    w = Tensor(np.zeros(3), requires_grad=True, dtype=np.float64)
    b = Tensor(0.0, requires_grad=True, dtype=np.float64)
    first = None
    for _ in range(200):
        loss = ((x @ w + b - y) ** 2).mean()
        first = loss.item() if first is None else first
        w.grad = b.grad = None
        loss.backward()
        with tt.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
    if not loss.item() < 1e-3 * first:
        raise ConformanceError(f"linear regression with core ops did not converge: loss {first:.3f} -> {loss.item():.5f}")


CHECKS = [
    Check("ops: add sub mul div pow neg exp log sqrt abs maximum minimum clip where matmul remainder", "forward",
          arithmetic_forward),
    Check("ops: add sub mul div pow neg exp log sqrt abs maximum minimum clip where matmul remainder", "backward",
          arithmetic_backward),
    Check("ops.floor_divide", "forward", floor_division),
    Check("ops: sum mean max min var", "forward", reductions_forward),
    Check("ops: sum mean max min var", "backward", reductions_backward),
    Check("ops: reshape transpose broadcast_to getitem setitem concatenate stack clone", "forward", shapes_forward),
    Check("ops: reshape transpose broadcast_to getitem setitem concatenate stack clone", "backward", shapes_backward),
    Check("ops.cast, dtypes", "contract", dtypes_and_casts),
    Check("core", "training", core_learns),
]

CONTRACT = None  # core is the framework itself: no skeleton
