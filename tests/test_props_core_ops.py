"""Property-based tests of core's broadcasting and shape ops.

Hypothesis draws shapes, broadcast patterns, axis tuples and indices; every example checks the
forward against NumPy (float64, and that float32 stays float32) and the gradient against
central finite differences (``tinytorch_core.testing.gradcheck``). Values come from a drawn
seed, inside safe domains: denominators and bases away from 0, no ties for maximum/minimum
and max/min. The runs are derandomized (the same examples every time) and bounded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck

PROPS = settings(
    max_examples=60,
    derandomize=True,  # reproducible: the same examples on every run and machine
    deadline=None,
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=[HealthCheck.too_slow],
)

seeds = st.integers(0, 2**32 - 1)
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
shapes_4d = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3)
two_broadcast = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3)
three_broadcast = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=1, max_side=3)


def normal(rng, shape):
    return np.asarray(rng.standard_normal(shape), dtype=np.float64)


def away_from_zero(rng, shape, low=0.5, high=2.0, signed=True):
    magnitude = rng.uniform(low, high, shape)
    values = magnitude * rng.choice([-1.0, 1.0], size=shape) if signed else magnitude
    return np.asarray(values, dtype=np.float64)  # 0-d arrays, not NumPy scalars (those are not weak)


def t64(a):
    return Tensor(a, dtype=np.float64)


def check_forward(fn, reference, *arrays):
    """``fn`` on float64 tensors equals ``reference`` on the arrays; on float32 it stays float32."""
    out = fn(*(t64(a) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in arrays))
    expected = np.asarray(reference(*arrays))
    assert out.shape == expected.shape, (out.shape, expected.shape)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-15)
    out32 = fn(*(Tensor(a, dtype=np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                 for a in arrays))
    assert out32.dtype == np.float32, f"float32 inputs gave {out32.dtype}"


def check(fn, reference, *arrays):
    check_forward(fn, reference, *arrays)
    assert gradcheck(fn, *arrays)


# ---- elementwise arithmetic with broadcasting --------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@PROPS
@given(shapes=two_broadcast, seed=seeds, scalar_side=st.sampled_from([None, "left", "right"]))
def test_add_sub_mul_broadcast(op, shapes, seed, scalar_side):
    rng = np.random.default_rng(seed)
    fn, reference = BINARY[op]
    a, b = (normal(rng, s) for s in shapes.input_shapes)
    if scalar_side == "left":
        k = float(rng.uniform(-2, 2))
        check(lambda y: fn(k, y), lambda y: reference(k, y), b)
    elif scalar_side == "right":
        k = float(rng.uniform(-2, 2))
        check(lambda x: fn(x, k), lambda x: reference(x, k), a)
    else:
        check(fn, reference, a, b)


@PROPS
@given(shapes=two_broadcast, seed=seeds, scalar_numerator=st.booleans())
def test_div_broadcast(shapes, seed, scalar_numerator):
    rng = np.random.default_rng(seed)
    a = normal(rng, shapes.input_shapes[0])
    b = away_from_zero(rng, shapes.input_shapes[1])
    if scalar_numerator:
        k = float(rng.uniform(-2, 2))
        check(lambda y: k / y, lambda y: k / y, b)
    else:
        check(lambda x, y: x / y, np.divide, a, b)


@PROPS
@given(shapes=two_broadcast, seed=seeds, exponent=st.sampled_from(["tensor", "float", "int", "base"]))
def test_pow_broadcast(shapes, seed, exponent):
    rng = np.random.default_rng(seed)
    base = away_from_zero(rng, shapes.input_shapes[0], signed=False)  # positive: log(base) exists
    power = np.asarray(rng.uniform(-2, 2, shapes.input_shapes[1]), dtype=np.float64)
    if exponent == "tensor":
        check(lambda x, y: x**y, np.power, base, power)
    elif exponent == "float":
        k = float(rng.uniform(-2, 2))
        check(lambda x: x**k, lambda x: x**k, base)
    elif exponent == "int":
        k = int(rng.integers(-2, 4))
        signed = normal(rng, shapes.input_shapes[0])  # an integer power is defined for any sign
        signed = np.where(np.abs(signed) < 0.3, 0.7, signed)  # but a negative one not at 0
        check(lambda x: x**k, lambda x: x ** float(k), signed)
    else:
        k = float(rng.uniform(0.5, 2.0))
        check(lambda y: k**y, lambda y: k**y, power)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
@PROPS
@given(shapes=two_broadcast, seed=seeds)
def test_maximum_minimum_broadcast_without_ties(op, shapes, seed):
    rng = np.random.default_rng(seed)
    # quarter and three-quarter offsets from integers: every pair differs by at least 0.4
    a_shape, b_shape = shapes.input_shapes
    a = np.asarray(rng.integers(-3, 3, a_shape) + 0.25 + rng.uniform(-0.05, 0.05, a_shape), dtype=np.float64)
    b = np.asarray(rng.integers(-3, 3, b_shape) + 0.75 + rng.uniform(-0.05, 0.05, b_shape), dtype=np.float64)
    check(getattr(tt, op), getattr(np, op), a, b)


@PROPS
@given(shapes=three_broadcast, seed=seeds, condition_as_tensor=st.booleans())
def test_where_broadcasts_condition_and_both_branches(shapes, seed, condition_as_tensor):
    rng = np.random.default_rng(seed)
    cond_shape, a_shape, b_shape = shapes.input_shapes
    cond = np.asarray(rng.random(cond_shape) > 0.5)
    a, b = normal(rng, a_shape), normal(rng, b_shape)
    condition = Tensor(cond) if condition_as_tensor else cond
    check(lambda x, y: tt.where(condition, x, y), lambda x, y: np.where(cond, x, y), a, b)


# ---- matrix product ---------------------------------------------------------------------------------
@PROPS
@given(
    batches=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3),
    sizes=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    vector=st.sampled_from([None, "left", "right", "both"]),
    seed=seeds,
)
def test_matmul_1d_2d_and_broadcast_batches(batches, sizes, vector, seed):
    rng = np.random.default_rng(seed)
    n, k, m = sizes
    batch_a, batch_b = batches.input_shapes
    a_shape = (k,) if vector in ("left", "both") else batch_a + (n, k)
    b_shape = (k,) if vector in ("right", "both") else batch_b + (k, m)
    a, b = normal(rng, a_shape), normal(rng, b_shape)
    check(lambda x, y: x @ y, np.matmul, a, b)
    check_forward(tt.matmul, np.matmul, a, b)


def test_matmul_refuses_misaligned_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


# ---- reductions over random axis tuples ---------------------------------------------------------------
@st.composite
def shape_and_axis(draw, shapes=small_shapes):
    shape = draw(shapes)
    ndim = len(shape)
    if ndim == 0:
        return shape, draw(st.sampled_from([None, ()]))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    signs = draw(st.lists(st.booleans(), min_size=len(axes), max_size=len(axes)))
    return shape, tuple(a - ndim if negative else a for a, negative in zip(axes, signs))


def reduced_count(shape, axis) -> int:
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return math.prod(shape[a] for a in axes)


@pytest.mark.parametrize("op", ["sum", "mean"])
@PROPS
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), seed=seeds, method=st.booleans())
def test_sum_mean_over_axis_tuples(op, shape_axis, keepdims, seed, method):
    shape, axis = shape_axis
    a = normal(np.random.default_rng(seed), shape)
    if method:
        fn = lambda x: getattr(x, op)(axis=axis, keepdims=keepdims)  # noqa: E731
    else:
        fn = lambda x: getattr(tt.primitives, op)(x, axis=axis, keepdims=keepdims)  # noqa: E731
    check(fn, lambda x: getattr(np, op)(x, axis=axis, keepdims=keepdims), a)


@pytest.mark.parametrize("op", ["max", "min"])
@PROPS
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_max_min_over_axis_tuples_with_distinct_values(op, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    rng = np.random.default_rng(seed)
    size = math.prod(shape)
    # distinct values 0.1 apart: the extreme is unique, finite differences see no kink
    a = (rng.permutation(size) * 0.1 + rng.uniform(-0.01, 0.01, size)).reshape(shape)
    check(lambda x: getattr(x, op)(axis=axis, keepdims=keepdims),
          lambda x: getattr(np, op)(x, axis=axis, keepdims=keepdims), a)


@PROPS
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), ddof=st.sampled_from([0, 1]), seed=seeds)
def test_var_over_axis_tuples(shape_axis, keepdims, ddof, seed):
    shape, axis = shape_axis
    a = normal(np.random.default_rng(seed), shape)
    if reduced_count(shape, axis) <= ddof:
        with pytest.raises(ValueError, match=f"too few for ddof={ddof}"):
            Tensor(a, dtype=np.float64).var(axis=axis, keepdims=keepdims, ddof=ddof)
        return
    check(lambda x: x.var(axis=axis, keepdims=keepdims, ddof=ddof),
          lambda x: np.var(x, axis=axis, keepdims=keepdims, ddof=ddof), a)


# ---- shape ops ------------------------------------------------------------------------------------------
def random_reshape_target(rng, size: int) -> tuple:
    factors = []
    n, p = size, 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    dims = [1] * int(rng.integers(1, 4))
    for f in factors:
        dims[int(rng.integers(len(dims)))] *= f
    if rng.random() < 0.5:
        dims[int(rng.integers(len(dims)))] = -1
    return tuple(dims)


@PROPS
@given(shape=shapes_4d, seed=seeds, as_tuple=st.booleans())
def test_reshape_to_random_factorisations(shape, seed, as_tuple):
    rng = np.random.default_rng(seed)
    a = normal(rng, shape)
    target = random_reshape_target(rng, a.size)
    fn = (lambda x: x.reshape(target)) if as_tuple else (lambda x: x.reshape(*target))
    check(fn, lambda x: x.reshape(target), a)


@PROPS
@given(shape=shapes_4d, seed=seeds, form=st.sampled_from(["transpose", "permute", "function", "reverse"]))
def test_transpose_and_permute_random_permutations(shape, seed, form):
    rng = np.random.default_rng(seed)
    a = normal(rng, shape)
    ndim = a.ndim
    perm = tuple(int(p) - (ndim if rng.random() < 0.5 else 0) for p in rng.permutation(ndim))
    if form == "reverse":
        check(lambda x: x.transpose(), np.transpose, a)
        check(lambda x: x.T, np.transpose, a)
        return
    fn = {
        "transpose": lambda x: x.transpose(*perm),
        "permute": lambda x: x.permute(*perm),
        "function": lambda x: tt.transpose(x, perm),
    }[form]
    if len(perm) == 2 and form != "permute":  # two axes to transpose: PyTorch's swap of them
        check(fn, lambda x: np.swapaxes(x, *perm), a)
    else:
        check(fn, lambda x: np.transpose(x, perm), a)


@PROPS
@given(shape=shapes_4d, seed=seeds, data=st.data())
def test_swapaxes_any_pair_including_negative(shape, seed, data):
    ndim = len(shape)
    i = data.draw(st.integers(-ndim, ndim - 1))
    j = data.draw(st.integers(-ndim, ndim - 1))
    a = normal(np.random.default_rng(seed), shape)
    check(lambda x: x.swapaxes(i, j), lambda x: np.swapaxes(x, i, j), a)


@PROPS
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=2), seed=seeds, data=st.data())
def test_squeeze_all_or_chosen_unit_axes(shape, seed, data):
    a = normal(np.random.default_rng(seed), shape)
    ndim = len(shape)
    ones = [i for i, s in enumerate(shape) if s == 1]
    choice = data.draw(st.sampled_from(["all", "int", "tuple"] if ones else ["all"]))
    if choice == "all":
        check(lambda x: x.squeeze(), np.squeeze, a)
    elif choice == "int":
        axis = data.draw(st.sampled_from(ones)) - (ndim if data.draw(st.booleans()) else 0)
        check(lambda x: tt.squeeze(x, axis), lambda x: np.squeeze(x, axis), a)
    else:
        axes = tuple(data.draw(st.lists(st.sampled_from(ones), unique=True, min_size=1)))
        check(lambda x: x.squeeze(axes), lambda x: np.squeeze(x, axes), a)
    others = [i for i, s in enumerate(shape) if s != 1]
    if others:  # NumPy's axis= refuses an axis of another size; PyTorch's dim leaves it
        with pytest.raises(ValueError, match="only axes of size 1"):
            Tensor(a).squeeze(axis=others[0])
        assert Tensor(a).squeeze(others[0]).shape == shape


@PROPS
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), seed=seeds, data=st.data())
def test_unsqueeze_at_every_position(shape, seed, data):
    a = normal(np.random.default_rng(seed), shape)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(lambda x: x.unsqueeze(axis), lambda x: np.expand_dims(x, axis), a)
    check_forward(lambda x: tt.unsqueeze(x, axis), lambda x: np.expand_dims(x, axis), a)


@PROPS
@given(shape=small_shapes, seed=seeds, data=st.data())
def test_broadcast_to_any_compatible_target(shape, seed, data):
    other = data.draw(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=4, min_side=1, max_side=3))
    target = np.broadcast_shapes(shape, other)
    a = normal(np.random.default_rng(seed), shape)
    check(lambda x: x.broadcast_to(target), lambda x: np.broadcast_to(x, target), a)
    check_forward(lambda x: tt.broadcast_to(x, target), lambda x: np.broadcast_to(x, target), a)


# ---- indexing -------------------------------------------------------------------------------------------
def random_slice(rng, n: int) -> slice:
    def bound():
        return None if rng.random() < 0.3 else int(rng.integers(-n - 1, n + 2))

    step = None if rng.random() < 0.4 else int(rng.choice([-2, -1, 1, 2, 3]))
    return slice(bound(), bound(), step)


def random_index(rng, shape, as_tensor: bool):
    """A mix of slices, ints, integer arrays (shared length, repeats, negatives) or one boolean
    axis mask, with None inserted and an Ellipsis standing for some middle axes."""
    ndim = len(shape)
    covered = int(rng.integers(0, ndim + 1))
    use_ellipsis = rng.random() < 0.4
    if use_ellipsis:
        lead = int(rng.integers(0, covered + 1))
        axes = list(range(lead)) + list(range(ndim - (covered - lead), ndim))
    else:
        axes = list(range(covered))
    mode = rng.choice(["basic", "int_arrays", "mask"])
    array_length = int(rng.integers(1, 5))
    array_axes = set()
    if mode == "int_arrays" and axes:
        array_axes = set(rng.choice(axes, size=min(len(axes), int(rng.integers(1, 3))), replace=False).tolist())
    mask_axis = int(rng.choice(axes)) if mode == "mask" and axes else None
    items = []
    for axis in axes:
        n = shape[axis]
        if axis in array_axes:
            values = rng.integers(-n, n, size=array_length)  # repeats and negatives on purpose
            items.append(Tensor(values) if as_tensor else values)
        elif axis == mask_axis:
            items.append(rng.random(n) < 0.6)
        else:
            items.append(random_slice(rng, n) if rng.random() < 0.6 else int(rng.integers(-n, n)))
    if use_ellipsis:
        items.insert(lead, Ellipsis)
    for _ in range(int(rng.integers(0, 3))):
        items.insert(int(rng.integers(0, len(items) + 1)), None)
    return tuple(items)


def numpy_index(index):
    return tuple(i.data if isinstance(i, Tensor) else i for i in index)


def pytorch_reading(x, index):
    """The reference: PyTorch applies an index's ints first (basic indices), then its arrays; NumPy
    reads those ints as arrays too. (``random_index``'s masks span one axis.)"""
    def is_int(p):
        return isinstance(p, (int, np.integer)) and not isinstance(p, bool)

    if not any(map(is_int, index)) or not any(isinstance(p, np.ndarray) for p in index):
        return x[index]
    ints = tuple(slice(None) if isinstance(p, np.ndarray) else p for p in index)
    rest = tuple(p if isinstance(p, np.ndarray) or p is Ellipsis else slice(None) for p in index if not is_int(p))
    return x[ints][rest]


@PROPS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds, as_tensor=st.booleans())
def test_indexing_slices_ints_none_ellipsis_masks_and_repeated_integer_arrays(shape, seed, as_tensor):
    rng = np.random.default_rng(seed)
    a = normal(rng, shape)
    index = random_index(rng, shape, as_tensor)
    check(lambda x: x[index], lambda x: pytorch_reading(x, numpy_index(index)), a)


@PROPS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds)
def test_indexing_with_a_whole_boolean_mask(shape, seed):
    rng = np.random.default_rng(seed)
    a = normal(rng, shape)
    lead = int(rng.integers(1, len(shape) + 1))
    mask = rng.random(shape[:lead]) < 0.5
    check(lambda x: x[mask], lambda x: x[mask], a)
    check(lambda x: x[Tensor(mask)], lambda x: x[mask], a)


def test_indexing_with_a_python_list_of_repeated_indices_accumulates():
    a = np.arange(4.0)
    assert gradcheck(lambda x: x[[0, 0, 2]], a)


# ---- joining ---------------------------------------------------------------------------------------------
@PROPS
@given(
    base=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
    count=st.integers(1, 4),
    seed=seeds,
    data=st.data(),
)
def test_concatenate_along_any_axis_with_uneven_sizes(base, count, seed, data):
    ndim = len(base)
    axis = data.draw(st.integers(-ndim, ndim - 1))
    rng = np.random.default_rng(seed)
    arrays = []
    for _ in range(count):
        shape = list(base)
        shape[axis] = int(rng.integers(0, 4))  # 0 too: an empty piece contributes nothing
        arrays.append(normal(rng, tuple(shape)))
    check(lambda *xs: tt.concatenate(list(xs), axis=axis), lambda *xs: np.concatenate(xs, axis=axis), *arrays)


@PROPS
@given(shape=small_shapes, count=st.integers(1, 4), seed=seeds, data=st.data())
def test_stack_along_any_new_axis(shape, count, seed, data):
    ndim = len(shape)
    axis = data.draw(st.integers(-ndim - 1, ndim))
    rng = np.random.default_rng(seed)
    arrays = [normal(rng, shape) for _ in range(count)]
    check(lambda *xs: tt.stack(list(xs), axis=axis), lambda *xs: np.stack(xs, axis=axis), *arrays)


def test_joining_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"concatenate: all tensors must match except along the axis"):
        tt.concatenate([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ValueError, match=r"stack: all tensors must have the same shape"):
        tt.stack([Tensor(np.ones((2, 3))), Tensor(np.ones((3, 2)))])
