"""Property-based tests of the shape, indexing and reduction ops of PyTorch's names (the companion
of ``test_props_core_ops.py``): hypothesis draws shapes, axes, sizes and indices; every example
checks the forward against NumPy (float64; float32 stays float32) and the gradient against
central finite differences. Derandomized and bounded, as there."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck

PROPS = settings(max_examples=30, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def check(fn, reference, a):
    """``fn`` of a float64 tensor equals ``reference(a)``; float32 stays float32; the gradient of every
    float output matches finite differences."""
    out = fn(Tensor(a, dtype=np.float64))
    outs, expected = (out, reference(a)) if isinstance(out, tuple) else ((out,), (reference(a),))
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected):
        assert o.shape == np.shape(e) and o.dtype == np.float64
        np.testing.assert_allclose(o.data, e, rtol=1e-12, atol=1e-14)
    out32 = fn(Tensor(a, dtype=np.float32))
    assert all(o.dtype == np.float32 for o in (out32 if isinstance(out32, tuple) else (out32,)))
    if a.size:
        assert gradcheck(fn, a)


def axis_of(draw, shape):
    return draw(st.integers(-len(shape), len(shape) - 1))


@PROPS
@given(shape=shapes, seed=seeds, data=st.data())
def test_flip_and_roll(shape, seed, data):
    a = np.random.default_rng(seed).standard_normal(shape)
    axes = tuple(data.draw(st.sets(st.integers(0, len(shape) - 1))))
    check(lambda v: v.flip(axes), lambda x: np.flip(x, axes), a)
    shifts = tuple(data.draw(st.integers(-9, 9)) for _ in axes)
    if axes:
        check(lambda v: v.roll(shifts, axes), lambda x: np.roll(x, shifts, axes), a)
    check(lambda v: v.roll(shifts[0] if shifts else 3), lambda x: np.roll(x, shifts[0] if shifts else 3), a)


@PROPS
@given(shape=shapes, seed=seeds, data=st.data())
def test_repeat_and_expand(shape, seed, data):
    a = np.random.default_rng(seed).standard_normal(shape)
    reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape) + 2)))
    check(lambda v: v.repeat(*reps), lambda x: np.tile(x, reps), a)
    base = a[tuple(slice(0, 1) if data.draw(st.booleans()) else slice(None) for _ in shape)]  # some axes of size 1
    target = tuple(data.draw(st.integers(0, 3)) if s == 1 else -1 for s in base.shape)
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    wanted = lead + tuple(s if t == -1 else t for s, t in zip(base.shape, target))
    check(lambda v: v.expand(*lead, *target), lambda x: np.broadcast_to(x, wanted), base)


@PROPS
@given(shape=shapes, seed=seeds, data=st.data())
def test_split_chunk_unbind_narrow(shape, seed, data):
    a = np.random.default_rng(seed).standard_normal(shape)
    axis = axis_of(data.draw, shape)
    n = shape[axis]
    size = data.draw(st.integers(1, n + 1))
    check(lambda v: v.split(size, axis), lambda x: tuple(np.split(x, list(range(size, n, size)), axis)), a)
    chunks = data.draw(st.integers(1, n + 2))
    step = math.ceil(n / chunks)
    check(lambda v: v.chunk(chunks, axis), lambda x: tuple(np.split(x, list(range(step, n, step)), axis)), a)
    check(lambda v: v.unbind(axis), lambda x: tuple(np.moveaxis(x, axis, 0)), a)
    start = data.draw(st.integers(-n, n))
    length = data.draw(st.integers(0, n - (start % n if start < 0 else start)))
    begin = start + n if start < 0 else start
    check(lambda v: v.narrow(axis, start, length), lambda x: np.take(x, range(begin, begin + length), axis), a)


@PROPS
@given(shape=shapes, seed=seeds, data=st.data())
def test_gather_and_index_select_with_indices_in_range(shape, seed, data):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    axis = axis_of(data.draw, shape) % len(shape)
    index_shape = tuple(data.draw(st.integers(0, 5)) if d == axis else data.draw(st.integers(1, s))
                        for d, s in enumerate(shape))
    index = rng.integers(0, shape[axis], index_shape)
    trimmed = a[tuple(slice(0, s) if d != axis else slice(None) for d, s in enumerate(index_shape))]
    check(lambda v: v.gather(axis, index), lambda x: np.take_along_axis(trimmed, index, axis), a)
    positions = rng.integers(0, shape[axis], data.draw(st.integers(0, 5)))
    check(lambda v: v.index_select(axis, positions), lambda x: np.take(x, positions, axis), a)


@PROPS
@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4), seed=seeds,
       diagonal=st.integers(-4, 4))
def test_triangles(shape, seed, diagonal):
    a = np.random.default_rng(seed).standard_normal(shape)
    check(lambda v: v.tril(diagonal), lambda x: np.tril(x, diagonal), a)
    check(lambda v: v.triu(diagonal), lambda x: np.triu(x, diagonal), a)


@PROPS
@given(shape=shapes, seed=seeds, data=st.data())
def test_cumsum_prod_logsumexp_norm_over_drawn_axes(shape, seed, data):
    a = np.random.default_rng(seed).standard_normal(shape)
    axis = axis_of(data.draw, shape)
    axes = tuple(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))
    keep = data.draw(st.booleans())
    check(lambda v: v.cumsum(axis), lambda x: np.cumsum(x, axis), a)
    check(lambda v: v.prod(axis, keep), lambda x: np.prod(x, axis, keepdims=keep), a)
    lse = lambda x: np.log(np.exp(x).sum(axes, keepdims=keep))  # noqa: E731 - small values: the naive formula
    check(lambda v: v.logsumexp(axes, keep), lse, a)
    p = data.draw(st.sampled_from([1, 2, 3, "fro"]))
    order = 2 if p == "fro" else p
    norm = lambda x: (np.abs(x) ** order).sum(axes, keepdims=keep) ** (1 / order)  # noqa: E731
    check(lambda v: v.norm(p, axes, keep), norm, np.where(np.abs(a) < 0.1, 0.5, a))  # away from |x|'s kink
