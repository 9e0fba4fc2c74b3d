"""In-place writes through views, as in PyTorch: a view (``y[1:3]``, ``y.reshape(...)``, ``y.T``)
knows the tensor whose memory it shares, so a recorded write into the view is a write into that
tensor, and a view read after a write into its tensor reads the new value, gradient included.

Before, ``v = y[1:3]; v *= 2`` with ``y`` in the graph left ``y`` unchanged (it changed without
grad mode), a view read after ``y[1:3] = w`` sent no gradient to ``w``, and every recorded write
into a view was refused. Each test here failed before."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import GraphError
from tinytorch_core.testing import gradcheck


def _float64(values, requires_grad=False):
    return tt.tensor(values, dtype=np.float64, requires_grad=requires_grad)


def test_augmented_assignment_into_a_view_changes_the_tensor_it_views():
    w = _float64([1.0, 2.0, 3.0], requires_grad=True)
    y = w * 1.0
    v = y[1:3]
    v *= 2.0
    assert y.data.tolist() == [1.0, 4.0, 6.0]  # as without grad mode: the view's memory is y's
    (y * y).sum().backward()
    np.testing.assert_allclose(w.grad.data, [2.0, 16.0, 24.0])


@pytest.mark.parametrize("write", ["iadd", "isub", "imul", "itruediv", "add_", "mul_", "copy_", "setitem",
                                   "fill_", "zero_"])
def test_every_in_place_write_through_a_view_matches_finite_differences(write):
    def step(x, w):
        y = x * 1.0
        v = y[1:3, ::2]  # a strided window: rows 1-2, columns 0 and 2
        if write == "iadd":
            v += w
        elif write == "isub":
            v -= w
        elif write == "imul":
            v *= w
        elif write == "itruediv":
            v /= w
        elif write == "add_":
            v.add_(w, alpha=0.5)
        elif write == "mul_":
            v.mul_(w)
        elif write == "copy_":
            v.copy_(w)
        elif write == "setitem":
            v[0] = w[1]
        elif write == "fill_":
            v.fill_(w[0, 0])
        else:
            v.zero_()
            v += w[0, 1]
        return y * y.exp()

    rng = np.random.default_rng(0)
    assert gradcheck(step, rng.standard_normal((4, 3)), rng.uniform(1.0, 2.0, (2, 2)))


def test_writes_through_views_of_views_reach_the_root():
    def step(x, w):
        y = x * 1.0
        window = y.T[1:, :].reshape(2, 2, 2)  # a transpose, a slice, a reshape
        window[:, 0] *= w
        return (y * y).sum(axis=0)

    rng = np.random.default_rng(1)
    assert gradcheck(step, rng.standard_normal((4, 3)), rng.standard_normal(2))


def test_a_view_read_after_a_write_into_its_tensor_reads_the_new_value():
    w = _float64([1.0, 2.0], requires_grad=True)
    y = tt.zeros(3, dtype=np.float64) * 1.0
    v = y[1:3]  # made before the write
    y[1:3] = w
    assert v.requires_grad
    (v * v).sum().backward()
    np.testing.assert_allclose(w.grad.data, [2.0, 4.0])


def test_a_write_through_one_view_reaches_an_overlapping_view():
    def step(x, w):
        y = x * 1.0
        left, right = y[0:2], y[1:3]
        right *= w  # y[1] is in both
        return left.exp() + right

    rng = np.random.default_rng(2)
    assert gradcheck(step, rng.standard_normal(3), rng.standard_normal(2))


def test_a_node_that_saved_the_view_before_a_write_refuses_to_backpropagate():
    c = _float64([1.0, 2.0], requires_grad=True)
    y = _float64([1.0, 2.0, 3.0]) * 1.0
    v = y[0:2]
    z = v * c  # saves v to compute c's gradient
    y[0:2] = _float64([5.0, 6.0], requires_grad=True)
    with pytest.raises(GraphError, match="modified in place"):
        z.sum().backward()


def test_a_write_through_a_view_of_a_parameter_is_refused_like_a_write_into_it():
    p = _float64([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place change of a leaf tensor that requires grad"):
        p[0:2].mul_(2.0)
    with tt.no_grad():
        v = p[0:2]  # made without a graph, written with one: still the parameter's memory
    with pytest.raises(RuntimeError, match="in-place change of a leaf tensor that requires grad"):
        v *= 2.0
    assert p.data.tolist() == [1.0, 2.0, 3.0]
    with tt.no_grad():
        v *= 2.0  # an update, as optimizers make them
    assert p.data.tolist() == [2.0, 4.0, 3.0]


def test_a_recorded_write_into_a_detached_tensor_is_still_refused():
    y = _float64([1.0, 2.0, 3.0], requires_grad=True) * 2.0
    d = y.detach()
    with pytest.raises(GraphError, match="recording an in-place change of a view"):
        d += _float64([1.0, 1.0, 1.0], requires_grad=True)
    with pytest.raises(GraphError, match="recording an in-place change of a view"):
        d[0:2][0:1] = _float64([1.0], requires_grad=True)
    d[0] = 7.0  # no gradient involved: a plain write into the shared memory, as in PyTorch
    assert y.data.tolist() == [7.0, 4.0, 6.0]


def test_an_op_output_that_owns_a_copy_is_not_a_view():
    """``x.T.reshape(-1)`` must copy; its array still has a NumPy base (the copy), and ``+=``
    used to take it for a view and rebind the name to a new tensor."""
    a = _float64([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = _float64([1.0, 1.0, 1.0, 1.0], requires_grad=True)
    r = a.T.reshape(-1)
    assert r.data.base is not None
    same = r
    r += w
    assert r is same
    (r * r).sum().backward()
    np.testing.assert_allclose(w.grad.data, 2.0 * (np.array([1.0, 3.0, 2.0, 4.0]) + 1.0))


def test_a_repeated_index_gives_the_gradient_to_the_write_that_stayed():
    w = _float64([1.0, 2.0], requires_grad=True)
    x = tt.zeros(3, dtype=np.float64)
    x[[1, 1]] += w  # NumPy keeps the second write: x[1] = 0 + 2
    assert x.data.tolist() == [0.0, 2.0, 0.0]
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(w.grad.data, [0.0, 3.0])


def test_repeated_index_writes_match_finite_differences():
    def step(x, w):
        y = x * 1.0
        y[np.array([2, 0, 2])] = w  # row 2 twice
        return y * y

    rng = np.random.default_rng(3)
    assert gradcheck(step, rng.standard_normal((4, 3)), rng.standard_normal((3, 3)))


def test_augmented_assignment_into_a_slice_writes_once():
    w = _float64([1.0, 2.0], requires_grad=True)
    x = _float64([1.0, 1.0, 1.0]) * 1.0
    x[1:3] += w
    assert x.data.tolist() == [1.0, 2.0, 3.0]
    assert _nodes_named("core::setitem", x.grad_fn) == 1  # the add wrote through x[1:3]: no second write
    (x * x).sum().backward()
    np.testing.assert_allclose(w.grad.data, [4.0, 6.0])


def _nodes_named(name, node) -> int:
    seen, stack = set(), [node]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack.extend(t.grad_fn for t in node.inputs if t is not None)
    return sum(n.name == name for n in seen)


def test_a_tensor_forgets_its_dead_views():
    x = tt.zeros(100)
    for start in range(1000):
        x[start % 90:start % 90 + 10].sum()  # a view made and dropped, as a batch slice
    assert len(x._views) < 64
