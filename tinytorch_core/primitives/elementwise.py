"""Elementwise math with PyTorch's names: trigonometry, powers, ``log1p``/``expm1``, the step
functions (``sign``, ``floor``, ``ceil``, ``round``, ``trunc``) and the tests for special values
(``isnan``, ``isinf``, ``isfinite``).

Each backward is the derivative of one variable, times the incoming gradient (the chain rule).
The step functions are flat between their jumps: their derivative is 0 wherever it exists, and
PyTorch gives 0 at the jumps too, so their backward is a zero gradient, never an error. The
functions only real numbers have (``sin``, ``rsqrt``, ...) refuse integer tensors, as
``exp`` and ``log`` do; the others keep an integer tensor's dtype, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from .. import flops as count  # FLOP formulas
from ..checks import not_floating
from ..function import Function
from ..host.samples import Sample, rand_away_from, randn


def _floating(ctx, a: np.ndarray) -> np.ndarray:
    """``a``, when it holds floats; else the error of an op that only real numbers have."""
    if a.dtype.kind != "f":
        raise not_floating(ctx, a)
    return a


class Sin(Function):
    """``sin(a)``; backward: d sin(a)/da = cos(a)."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(_floating(ctx, a))
        return np.sin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * np.cos(a)


class Cos(Function):
    """``cos(a)``; backward: d cos(a)/da = -sin(a)."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(_floating(ctx, a))
        return np.cos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * -np.sin(a)


class Square(Function):
    """``a * a``; backward: d a²/da = 2a. A bool tensor squares to int64 (True² = 1), as in PyTorch."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        if a.dtype == np.bool_:
            a = a.astype(np.int64)
        ctx.save_for_backward(a)
        return np.square(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * 2 * a


class Reciprocal(Function):
    """``1 / a``; backward: d(1/a)/da = -1/a² = -out²."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        out = np.reciprocal(_floating(ctx, a))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * -(out * out)


class Rsqrt(Function):
    """``1 / sqrt(a)``; backward: d a^(-1/2)/da = -1/2 a^(-3/2) = -out³ / 2."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        out = 1 / np.sqrt(_floating(ctx, a))  # 1 / sqrt(0) is inf, as in PyTorch
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (-0.5 * out * out * out)


class Log1p(Function):
    """``log(1 + a)``, exact for tiny ``a`` (where ``1 + a`` would round to 1);
    backward: d log(1 + a)/da = 1 / (1 + a)."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(_floating(ctx, a))
        return np.log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (1 + a)


class Expm1(Function):
    """``exp(a) - 1``, exact for tiny ``a``; backward: d(exp(a) - 1)/da = exp(a) = out + 1."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        out = np.expm1(_floating(ctx, a))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out + 1)


# ---- step functions: zero gradient ---------------------------------------------------------------
class _Step(Function):
    """A step function of ``a``: flat between its jumps, so d step(a)/da = 0 (PyTorch's 0 at the
    jumps too). Integers are already whole: they come back as they are (a copy)."""

    flops = staticmethod(count.per_output_element)
    step = staticmethod(np.floor)  # the NumPy function of each subclass

    @classmethod
    def _forward(cls, ctx, a, *options):
        if a.dtype == np.bool_:  # NumPy's floor of a bool is a float16; PyTorch refuses it
            raise TypeError(f"{cls.display_name()}: expected a number tensor, got bool data")
        if a.dtype.kind in "iu":
            return a.copy()
        return cls.step(a, *options)

    @staticmethod
    def backward(ctx, grad):
        return np.zeros_like(grad), None  # None: for round's ``decimals``


class Floor(_Step):
    step = staticmethod(np.floor)

    @staticmethod
    def forward(ctx, a):
        return Floor._forward(ctx, a)


class Ceil(_Step):
    step = staticmethod(np.ceil)

    @staticmethod
    def forward(ctx, a):
        return Ceil._forward(ctx, a)


class Trunc(_Step):
    """Toward zero: ``trunc(-1.7)`` is -1."""

    step = staticmethod(np.trunc)

    @staticmethod
    def forward(ctx, a):
        return Trunc._forward(ctx, a)


class Round(_Step):
    """To the nearest value with ``decimals`` decimals, halves to even (``round(2.5)`` is 2), as
    PyTorch and NumPy round."""

    step = staticmethod(np.round)

    @staticmethod
    def forward(ctx, a, decimals=0):
        if not isinstance(decimals, int) or isinstance(decimals, bool):
            raise TypeError(f"{Round.display_name()}: decimals must be an int, got {decimals!r}")
        if decimals and a.dtype.kind != "f":  # round(1234, -2) would not be the identity; PyTorch refuses it
            raise TypeError(f"{Round.display_name()}: decimals={decimals} needs a floating-point tensor, "
                            f"got {a.dtype} data")
        if decimals and a.dtype.char == "e":  # a * 10**decimals would overflow float16: round in float32
            return Round._forward(ctx, a.astype(np.float32), decimals).astype(a.dtype)
        return Round._forward(ctx, a, decimals)


class Sign(_Step):
    """-1, 0 or 1 by the sign of ``a``; 0 for NaN, as in PyTorch (NumPy's ``sign`` keeps NaN); a
    bool tensor is its own sign."""

    @staticmethod
    def forward(ctx, a):
        if a.dtype == np.bool_:
            return a.copy()
        if a.dtype.kind != "f":
            return np.sign(a)
        return (a > 0).astype(a.dtype) - (a < 0)  # NaN is neither: 0


# ---- tests for special values: bool results, no gradient -----------------------------------------
class _ValueTest(Function):
    """Which entries are NaN (infinite, finite): a bool tensor, which carries no gradient (an op
    all the same, as ``Compare``). Integers and bools are never NaN or infinite."""

    differentiable = False
    flops = staticmethod(count.no_arithmetic)
    test = staticmethod(np.isnan)
    integers_pass = False  # the answer for an integer or bool entry

    @classmethod
    def _forward(cls, a):
        if a.dtype.kind != "f":
            return np.full(a.shape, cls.integers_pass)
        return cls.test(a)


class IsNan(_ValueTest):
    test = staticmethod(np.isnan)

    @staticmethod
    def forward(ctx, a):
        return IsNan._forward(a)


class IsInf(_ValueTest):
    test = staticmethod(np.isinf)

    @staticmethod
    def forward(ctx, a):
        return IsInf._forward(a)


class IsFinite(_ValueTest):
    test = staticmethod(np.isfinite)
    integers_pass = True

    @staticmethod
    def forward(ctx, a):
        return IsFinite._forward(a)


# ---- front-ends: ``tt.sin(x)`` and ``x.sin()`` -----------------------------------------------------
def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def square(x):
    return Square.apply(x)


def reciprocal(x):
    return Reciprocal.apply(x)


def rsqrt(x):
    return Rsqrt.apply(x)


def log1p(x):
    return Log1p.apply(x)


def expm1(x):
    return Expm1.apply(x)


def sign(x):
    return Sign.apply(x)


def floor(x):
    return Floor.apply(x)


def ceil(x):
    return Ceil.apply(x)


def trunc(x):
    return Trunc.apply(x)


def round(x, decimals: int = 0):  # noqa: A001 - PyTorch's name
    return Round.apply(x, decimals)


def isnan(x):
    return IsNan.apply(x)


def isinf(x):
    return IsInf.apply(x)


def isfinite(x):
    return IsFinite.apply(x)


# ---- sample inputs ----------------------------------------------------------------------------------
def smooth_samples(rng):
    yield Sample(randn(rng, 3, 4))
    yield Sample(randn(rng, 2, 3, 2) * 3)


def nonzero_samples(rng):
    """Away from 0, where ``1 / a`` has its pole."""
    yield Sample(rand_away_from(rng, (3, 4)))
    yield Sample(rand_away_from(rng, (5,), low=0.5, high=3.0))


def rsqrt_samples(rng):
    yield Sample(rand_away_from(rng, (3, 4), signed=False))
    yield Sample(rand_away_from(rng, (2, 3), low=0.5, high=4.0, signed=False))


def log1p_samples(rng):
    yield Sample(rng.uniform(-0.8, 2.0, (3, 4)))
    yield Sample(rng.uniform(-1e-3, 1e-3, (5,)))  # where log1p is exact and log(1 + a) is not


def step_samples(rng):
    """Kept 0.1 or more from every jump (the integers and, for ``round``, the halves)."""
    whole = rng.integers(-4, 5, (3, 4))
    yield Sample(whole + rng.uniform(0.1, 0.4, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4)))
    yield Sample(whole[0] + rng.uniform(0.6, 0.9, (4,)))


def round_samples(rng):
    yield from step_samples(rng)
    yield Sample(rng.integers(-40, 40, (3, 3)) / 10 + 0.03, decimals=1)  # 0.03 from a jump of the tenths


def value_test_samples(rng):
    """Forward only (a bool result); the special values themselves are the tests' to put in."""
    yield Sample(randn(rng, 3, 4))


ELEMENTWISE_OPS = [
    ("sin", Sin, smooth_samples, sin),
    ("cos", Cos, smooth_samples, cos),
    ("square", Square, smooth_samples, square),
    ("reciprocal", Reciprocal, nonzero_samples, reciprocal),
    ("rsqrt", Rsqrt, rsqrt_samples, rsqrt),
    ("log1p", Log1p, log1p_samples, log1p),
    ("expm1", Expm1, smooth_samples, expm1),
    ("sign", Sign, nonzero_samples, sign),
    ("floor", Floor, step_samples, floor),
    ("ceil", Ceil, step_samples, ceil),
    ("trunc", Trunc, step_samples, trunc),
    ("round", Round, round_samples, round),
    ("isnan", IsNan, value_test_samples, isnan),
    ("isinf", IsInf, value_test_samples, isinf),
    ("isfinite", IsFinite, value_test_samples, isfinite),
]
