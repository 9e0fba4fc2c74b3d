"""Python lists (and, for elementwise ops, tuples) of numbers passed to an op act as the arrays
NumPy makes of them; lists it cannot make one numeric array of are refused with the op's name.
Before, ``tt.ops.add([1, 2], [3, 4])`` concatenated the lists, ``tt.ops.mul([1, 2], 3)``
repeated one, and most other ops raised AttributeError."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor, default_runtime

OPS = sorted(name for name, entry in default_runtime().ops.items() if entry.samples is not None)


def _as_lists(args):
    return [a.tolist() if isinstance(a, np.ndarray) else a for a in args]


@pytest.mark.parametrize("name", OPS)
def test_every_op_takes_lists_as_arrays_or_refuses_them_clearly(name):
    entry = default_runtime().ops[name]
    sample = next(iter(entry.samples(np.random.default_rng(0))))
    with tt.no_grad():
        expected = entry.call(*sample.args, **sample.kwargs)
        try:
            got = entry.call(*_as_lists(sample.args), **sample.kwargs)
        except (TypeError, ValueError) as exc:  # refused: the message names the op
            assert name.split("::")[1] in str(exc) or name in str(exc), str(exc)
            return
    expected, got = (v if isinstance(v, tuple) else (v,) for v in (expected, got))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("call, expected", [
    (lambda: tt.ops.add([1.0, 2.0], [3.0, 4.0]), [4.0, 6.0]),  # was [1, 2, 3, 4]: the lists joined
    (lambda: tt.ops.mul([1.0, 2.0], 3), [3.0, 6.0]),  # was [1, 2, 1, 2, 1, 2]
    (lambda: tt.ops.add((1.0, 2.0), (3.0,)), [4.0, 5.0]),  # was a tuple of three tensors
    (lambda: tt.ops.sub([[1.0], [2.0]], [1.0, 2.0]), [[0.0, -1.0], [1.0, 0.0]]),  # broadcasting
    (lambda: tt.ops.linear([[1.0, 2.0]], [[1.0, 1.0]], [0.5]), [[3.5]]),
    (lambda: tt.ops.mean([1.0, 2.0]), 1.5),
])
def test_lists_of_numbers_compute_what_their_arrays_compute(call, expected):
    np.testing.assert_array_equal(call().data, np.array(expected))


def test_a_list_of_tensors_is_refused_not_detached():
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(TypeError, match=r"core::add: argument 0 is a list holding Tensor values.*tt\.stack"):
        tt.ops.add([t, t], 1.0)
    with pytest.raises(TypeError, match="nn::linear: argument 1 is a list holding Tensor"):
        tt.ops.linear([[1.0, 2.0]], [t])


def test_a_ragged_or_non_numeric_list_is_refused_naming_the_op():
    with pytest.raises(ValueError, match="core::add: argument 0 is a list that is not rectangular"):
        tt.ops.add([[1.0], [2.0, 3.0]], 1.0)
    with pytest.raises(TypeError, match="core::mul: argument 0 is a list holding str"):
        tt.ops.mul(["a", "b"], 2)
