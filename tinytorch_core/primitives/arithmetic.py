"""Elementwise and matrix-product primitives. Backward may return a gradient in the
broadcast shape: the engine sums it back to each input's shape. The checks and dtype
promotion before each one are in ``operators.py``."""

from __future__ import annotations

import numpy as np

from ..checks import not_floating
from .. import flops as count  # FLOP formulas
from ..function import Function, GraphError


class Add(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad if ctx.needs_input_grad[1] else None


class Mul(Function):
    flops = staticmethod(count.per_output_element)
    backward_flops = staticmethod(count.per_output_element_per_gradient)

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        # only what backward reads, as in PyTorch: y * 3 keeps nothing of y, so y += 1 after it is legal
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)  # a only for b's gradient
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        ga = grad / b if need_a else None
        gb = -grad * a / (b * b) if need_b else None
        return ga, gb


class Pow(Function):
    """``a ** b``. Where the power is undefined (a negative base, a fractional exponent) the
    result is NaN, and 0 to a negative power is inf, as in PyTorch; neither warns."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        if np.asarray(b).dtype.kind in "iu" and np.asarray(a).dtype.kind in "iu" and np.any(np.asarray(b) < 0):
            raise ValueError(f"{Pow.display_name()}: an integer to a negative integer power is not an integer; "
                             "cast to float first (x.float() ** -1)")
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if need_a:
                # d(a**b)/da = b * a**(b-1), and 0 where b == 0: a**0 is the constant 1, also at
                # a = 0, where the formula alone gives 0 * inf = NaN
                slope = b * a ** (b - 1)
                ga = grad * np.where(np.equal(b, 0), 0, slope)
            if need_b:
                # d(a**b)/db = a**b * log(a): NaN for a < 0 (undefined there), and 0 at a = 0 for
                # b >= 0, where a**b is 0 or 1 to the right of the exponent
                slope = out * np.log(a)
                flat_at_zero = np.logical_and(np.equal(a, 0), np.greater_equal(b, 0))
                gb = grad * np.where(flat_at_zero, 0, slope)
        return ga, gb


class Neg(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        if a.dtype == np.bool_:  # NumPy's error names no op
            raise TypeError("core::neg: negation of a bool tensor is not supported; invert it with ~")
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        if a.dtype.kind != "f":
            raise not_floating(ctx, a)
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        if a.dtype.kind != "f":
            raise not_floating(ctx, a)
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Sqrt(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        if a.dtype.kind != "f":
            raise not_floating(ctx, a)
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * 0.5 / out


class Abs(Function):
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        sign = (a > 0).astype(grad.dtype) - (a < 0)  # 0 at 0 and at NaN (np.sign(NaN) is NaN), as in PyTorch
        return grad * sign


class FloorDivide(Function):
    """``floor(a / b)`` (``a // b``): piecewise constant, so it has no useful gradient; as in
    PyTorch, a backward through it is an error rather than a silent zero."""

    differentiable = False  # registration checks its forward only
    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        refuse_integer_division_by_zero(FloorDivide, a, b)
        return np.floor_divide(a, b)

    @staticmethod
    def backward(ctx, grad):
        raise GraphError("floor division (//) has no derivative (it is constant between the integers); "
                         "take the gradient through a / b, or detach() the operands")


def refuse_integer_division_by_zero(op, a, b) -> None:
    """Integers have no inf: NumPy's ``7 // 0`` is a silent 0 (a float result is inf or NaN, as IEEE says)."""
    b = np.asarray(b)
    if np.result_type(a, b).kind in "iub" and not b.all():
        raise ZeroDivisionError(f"{op if isinstance(op, str) else op.display_name()}: integer division by zero")


class Remainder(Function):
    """``a - b * floor(a / b)`` (``a % b``, the sign of ``b``, as Python and PyTorch). Backward:
    ``grad`` for ``a``, ``-floor(a / b) * grad`` for ``b``."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        refuse_integer_division_by_zero(Remainder, a, b)
        ctx.save_for_backward(a, b)
        return np.remainder(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad, -np.floor_divide(a, b) * grad


class Maximum(Function):
    """Elementwise maximum. Each operand gets the gradient where the other is not larger: at ties
    it is split evenly, and beside a NaN (neither is larger) both get it, as in PyTorch."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        half_at_ties = 0.5 * (a == b)
        return grad * (~(a < b) - half_at_ties), grad * (~(b < a) - half_at_ties)


class Minimum(Function):
    """Elementwise minimum: ``Maximum``'s rule, mirrored."""

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        half_at_ties = 0.5 * (a == b)
        return grad * (~(a > b) - half_at_ties), grad * (~(b > a) - half_at_ties)


class Clip(Function):
    """``min(max(a, low), high)`` (either bound may be None, or a tensor).

    Backward, by the chain rule of that formula: the gradient goes to ``a`` inside the closed
    interval, to ``low`` where ``a`` was raised to it, to ``high`` where the result was cut to it.
    """

    flops = staticmethod(count.per_output_element)

    @staticmethod
    def forward(ctx, a, low, high):
        ctx.save_for_backward(a, low, high)  # saved, not kept aside: a bound changed in place is caught
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        a, low, high = ctx.saved_tensors
        _, need_low, need_high = ctx.needs_input_grad
        raised = a if low is None else np.maximum(a, low)  # max(a, low)
        kept = True if high is None else raised <= high  # min(raised, high) took raised
        grad_a = grad * (kept if low is None else (a >= low) & kept)
        grad_low = grad * ((a < low) & kept) if need_low else None
        grad_high = grad * ~kept if need_high else None
        return grad_a, grad_low, grad_high


class Where(Function):
    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)  # saved, not kept aside: a condition changed in place is caught
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        _, need_a, need_b = ctx.needs_input_grad
        zero = np.zeros((), dtype=grad.dtype)
        ga = np.where(cond, grad, zero) if need_a else None
        gb = np.where(cond, zero, grad) if need_b else None
        return None, ga, gb


class Compare(Function):
    """``function(a, b)`` for a comparison or logical ufunc (``np.less``, ``np.logical_and``...):
    a bool result, which carries no gradient. It is an op all the same, so that a compiled step
    recomputes it on each batch (an accuracy computed inside the step)."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, b, function):
        return np.asarray(function(a, b))


class LogicalNot(Function):
    """``~a``: logical for a bool tensor, bit by bit for an integer one (an op for the same reason
    as ``Compare``)."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a):
        return ~a


class ArgExtreme(Function):
    """The index of the largest (``largest=True``) or smallest entry along ``axis``: integers,
    no gradient; an op for the same reason as ``Compare``."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, axis, keepdims, largest):
        find = a.argmax if largest else a.argmin
        return np.asarray(find(axis=axis, keepdims=keepdims))


class AnyAll(Function):
    """Whether every entry (``every=True``) or any entry along ``axis`` is nonzero: a bool
    result, no gradient; an op for the same reason as ``Compare``."""

    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, axis, keepdims, every):
        test = a.all if every else a.any
        return np.asarray(test(axis=axis, keepdims=keepdims))


class Cast(Function):
    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a, dtype):
        if np.dtype(dtype).kind not in "biuf":
            raise TypeError(f"cast: tensors hold float, int or bool data, not {np.dtype(dtype)}")
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # the engine casts back to the input's dtype


class Clone(Function):
    flops = staticmethod(count.no_arithmetic)

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class MatMul(Function):
    """``a @ b`` for 1-D, 2-D and batched operands (NumPy matmul semantics)."""

    flops = staticmethod(count.matmul)
    backward_flops = staticmethod(count.matmul_backward)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:
            return (grad @ b.T if need_a else None), (a.T @ grad if need_b else None)
        if a.ndim == 1 and b.ndim == 1:
            return (grad * b if need_a else None), (grad * a if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if need_a:
            ga = g2 @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if need_b:
            gb = a2.swapaxes(-1, -2) @ g2
            if b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb
