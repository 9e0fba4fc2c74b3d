"""Core's differentiable primitives and the table that registers them as ``core::*`` ops."""

from __future__ import annotations

import numpy as np

from .. import function  # its Tensor, looked up at call time (core's one import cycle)
from ..checks import axis_or_dim, keepdims_or_keepdim, normalize_axes, normalize_axis, shape_of
from .arithmetic import (
    Abs,
    Add,
    AnyAll,
    ArgExtreme,
    Compare,
    LogicalNot,
    Cast,
    Clip,
    Clone,
    Div,
    Exp,
    FloorDivide,
    Log,
    MatMul,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Remainder,
    Sqrt,
    Sub,
    Where,
    refuse_integer_division_by_zero,
)
from .operators import (
    abs,
    add,
    bitwise,
    clip,
    compare,
    div,
    exp,
    floor_divide,
    log,
    matmul,
    maximum,
    minimum,
    mul,
    pow,
    remainder,
    sqrt,
    sub,
    where,
)
from .elementwise import (ELEMENTWISE_OPS, ceil, cos, expm1, floor, isfinite, isinf, isnan, log1p, reciprocal,
                          round, rsqrt, sign, sin, square, trunc)
from .indexing import INDEXING_OPS, gather, index_select, masked_fill, tril, triu
from .layout import LAYOUT_OPS, chunk, expand, flip, narrow, repeat, roll, split, unbind
from .norms import logsumexp, norm
from .reduction import ExtremeAlong, Max, Mean, Min, Sum, ValuesAndIndices, Var
from .scans import CumSum, Prod, cumsum
from .shape import (
    BroadcastTo,
    Concatenate,
    GetItem,
    Reshape,
    SetItem,
    Stack,
    Transpose,
    broadcast_to,
    concatenate,
    flatten,
    index_operand,
    ints_first,
    permute,
    reshape,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unsqueeze,
    view,
)


def _reducer(fn_class, op):
    def reduce(x, axis=None, keepdims=False, *, dim=None, keepdim=None, **kwargs):
        if isinstance(dim, (tuple, list)) and not dim:
            dim = None  # PyTorch's dim=(): every axis (NumPy's axis=() reduces none)
        axis = axis_or_dim(axis, dim, op)
        keepdims = keepdims_or_keepdim(keepdims, keepdim, op)
        ndim = len(shape_of(x))
        return fn_class.apply(x, axis=normalize_axes(axis, ndim, op), keepdims=keepdims, **kwargs)

    reduce.__name__ = reduce.__qualname__ = op
    reduce.__doc__ = (f"{op} over ``axis`` (int, tuple or None) with optional ``keepdims``; "
                      "PyTorch's ``dim``/``keepdim`` are accepted too.")
    return reduce


sum = _reducer(Sum, "sum")  # noqa: A001 - the framework's own reduction, as in NumPy
mean = _reducer(Mean, "mean")
prod = _reducer(Prod, "prod")
_largest = _reducer(Max, "max")
_smallest = _reducer(Min, "min")


def max(x, dim=None, keepdim=None, *, axis=None, keepdims=None):  # noqa: A001
    """The largest entry, in the spelling of either library:

    - ``max(x)`` and NumPy's ``max(x, axis=..., keepdims=...)``: the values (ties share the gradient);
    - PyTorch's ``max(x, dim)``: ``(values, indices)`` along ``dim`` (the gradient goes to the index);
    - PyTorch's ``max(x, other)`` with a tensor ``other``: the elementwise ``maximum``.
    """
    return _extreme(x, dim, keepdim, axis, keepdims, largest=True)


def min(x, dim=None, keepdim=None, *, axis=None, keepdims=None):  # noqa: A001
    """The smallest entry: ``max``'s four spellings, for the minimum."""
    return _extreme(x, dim, keepdim, axis, keepdims, largest=False)


def _extreme(x, dim, keepdim, axis, keepdims, largest: bool):
    op = "max" if largest else "min"
    if isinstance(dim, function.Tensor):
        return (maximum if largest else minimum)(x, dim)
    keep = keepdims_or_keepdim(False if keepdims is None else keepdims, keepdim, op)
    if dim is None:
        return (_largest if largest else _smallest)(x, axis, keep)
    if axis is not None:
        raise TypeError(f"{op}: pass axis (NumPy: the values) or dim (PyTorch: values and indices), not both")
    ndim = len(shape_of(x))
    if ndim == 0:  # PyTorch's 0-d rule: dim 0 of a scalar is the scalar itself, at index 0
        normalize_axis(dim, 1, op)
        values, indices = ExtremeAlong.apply(reshape(x, 1), 0, keep, largest)
        return ValuesAndIndices(reshape(values, ()), reshape(indices, ()))
    return ValuesAndIndices(*ExtremeAlong.apply(x, normalize_axis(dim, ndim, op), keep, largest))
_variance = _reducer(Var, "var")


def var(x, dim=None, unbiased=None, keepdim=None, *, axis=None, keepdims=None, ddof=None, correction=None):
    """Variance, divided by ``n - ddof``. Each library keeps its default: NumPy's ``ddof=0`` with
    ``axis=``, PyTorch's ``n - 1`` otherwise (``var(x)``, ``var(x, 1)``, ``dim=``); ``unbiased`` and
    ``correction`` are PyTorch's names for ``ddof`` (pass one of the three). The positional order is
    PyTorch's, ``var(x, dim, unbiased, keepdim)``, and ``var(x, False)`` is ``unbiased=False``."""
    if isinstance(dim, (bool, np.bool_)):  # PyTorch's var(x, unbiased)
        if unbiased is not None:
            raise TypeError("var: a bool first argument is PyTorch's unbiased; pass dim as an int")
        dim, unbiased = None, dim
    given = {name: value for name, value in (("ddof", ddof), ("unbiased", unbiased), ("correction", correction))
             if value is not None}
    if len(given) > 1:
        raise TypeError(f"var: pass one of ddof, unbiased and correction, not {' and '.join(given)}")
    if unbiased is not None and not isinstance(unbiased, (bool, np.bool_)):
        raise TypeError(f"var: unbiased must be True or False, got {unbiased!r}")
    ddof = int(unbiased) if unbiased is not None else next(iter(given.values()), 0 if axis is not None else 1)
    return _variance(x, axis, bool(keepdims), dim=dim, keepdim=keepdim, ddof=ddof)


def core_op_table():
    """(short name, Function, samples, user-facing callable or None for ``apply``): the first ops,
    then those of PyTorch's names (``torch_names_op_table``)."""
    from . import arithmetic_samples as ars
    from . import reduction as rd
    from . import shape as sh

    return [
        ("add", Add, ars.binary_samples, add),
        ("sub", Sub, ars.binary_samples, sub),
        ("mul", Mul, ars.binary_samples, mul),
        ("div", Div, ars.div_samples, div),
        ("pow", Pow, ars.pow_samples, pow),
        ("neg", Neg, ars.unary_samples, None),
        ("exp", Exp, ars.unary_samples, exp),
        ("log", Log, ars.positive_samples, log),
        ("sqrt", Sqrt, ars.positive_samples, sqrt),
        ("abs", Abs, ars.kinked_samples, abs),
        ("maximum", Maximum, ars.maxmin_samples, maximum),
        ("minimum", Minimum, ars.maxmin_samples, minimum),
        ("clip", Clip, ars.clip_samples, clip),
        ("where", Where, ars.where_samples, where),
        ("floor_divide", FloorDivide, ars.floor_divide_samples, floor_divide),
        ("remainder", Remainder, ars.remainder_samples, remainder),
        ("cast", Cast, ars.cast_samples, None),
        ("clone", Clone, ars.unary_samples, None),
        ("matmul", MatMul, ars.matmul_samples, matmul),
        ("sum", Sum, rd.reduction_samples, sum),
        ("mean", Mean, rd.reduction_samples, mean),
        ("max", Max, rd.extreme_samples, max),
        ("min", Min, rd.extreme_samples, min),
        ("var", Var, rd.var_samples, var),
        ("reshape", Reshape, sh.reshape_samples, reshape),
        ("transpose", Transpose, sh.transpose_samples, None),
        ("broadcast_to", BroadcastTo, sh.broadcast_samples, broadcast_to),
        ("getitem", GetItem, sh.getitem_samples, None),
        ("setitem", SetItem, sh.setitem_samples, None),
        ("concatenate", Concatenate, sh.concatenate_samples, None),
        ("stack", Stack, sh.stack_samples, None),
    ] + torch_names_op_table()


def torch_names_op_table():
    """The ops PyTorch users reach for beyond the first ones: elementwise math, indexing, layout,
    running sums and products, norms."""
    from . import norms as nm
    from . import scans as sc

    return [
        *ELEMENTWISE_OPS,
        *INDEXING_OPS,
        *LAYOUT_OPS,
        ("cumsum", CumSum, sc.cumsum_samples, cumsum),
        ("prod", Prod, sc.prod_samples, prod),
        ("logsumexp", nm.LogSumExp, nm.logsumexp_samples, logsumexp),
        ("norm", nm.Norm, nm.norm_samples, norm),
    ]


# Core's ops are named from this table at import, so that errors and anomaly reports name them
# (``core::log``) before any runtime has loaded; registration later writes the same names (the
# one exception to "registration names an op": every other op gets its name only there).
for _short, _function, _samples, _call in core_op_table():
    _function.name = f"core::{_short}"

__all__ = [
    "Abs", "Add", "BroadcastTo", "Cast", "Clip", "Clone", "Concatenate", "Div", "Exp", "ExtremeAlong", "FloorDivide",
    "GetItem", "Log", "MatMul", "Max", "Maximum", "Mean", "Min", "Minimum", "Mul", "Neg", "Pow", "Remainder",
    "Reshape", "SetItem", "Sqrt", "Stack", "Sub", "Sum", "Transpose", "ValuesAndIndices", "Var", "Where",
    "abs", "add", "bitwise", "broadcast_to", "clip", "compare", "concatenate", "div", "exp", "flatten", "floor_divide",
    "index_operand", "ints_first", "log", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "permute",
    "pow", "remainder", "reshape", "sqrt", "squeeze", "stack", "sub", "sum", "swapaxes", "transpose", "unsqueeze",
    "var", "view", "where",
    # PyTorch's names (elementwise.py, indexing.py, layout.py, scans.py, norms.py)
    "CumSum", "Prod", "ceil", "chunk", "cos", "cumsum", "expand", "expm1", "flip", "floor", "gather", "index_select",
    "isfinite", "isinf", "isnan", "log1p", "logsumexp", "masked_fill", "narrow", "norm", "prod", "reciprocal",
    "repeat", "roll", "round", "rsqrt", "sign", "sin", "split", "square", "tril", "triu", "trunc", "unbind",
]
