"""In-place writes through views, as in PyTorch: a view (``y[1:3]``, ``y.reshape(...)``, ``y.T``)
knows the tensor whose memory it shares, so a recorded write into the view is a write into that
tensor, and a view read after a write into its tensor reads the new value, gradient included.

Before, ``v = y[1:3]; v *= 2`` with ``y`` in the graph left ``y`` unchanged (it changed without
grad mode), a view read after ``y[1:3] = w`` sent no gradient to ``w``, and every recorded write
into a view was refused. Each test here failed before."""

from __future__ import annotations

import tracemalloc

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


def test_a_buffer_written_row_by_row_while_a_view_of_it_lives_costs_linear_memory():
    """Each write used to leave a full-size helper view of the root among its views, so every
    later write re-gathered all of them: 400 rows took 1 GB and 3.6 s."""
    w = _float64([1.0, 1.0, 1.0, 1.0], requires_grad=True)
    rows = 300
    h = tt.zeros(rows, 4, dtype=np.float64)
    first = h[0]
    tracemalloc.start()
    try:
        for t in range(rows):
            h[t] = w * float(t)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak  # a few graph nodes per row (about 4 MiB here)
    assert [ref() for ref in h._views if ref() is not None] == [first]
    (h * h).sum().backward()
    np.testing.assert_allclose(w.grad.data, 2.0 * sum(t * t for t in range(rows)))


def test_a_write_through_a_deep_chain_of_views_needs_no_recursion():
    y = tt.zeros(8, dtype=np.float64) * 1.0
    v = y
    for _ in range(3000):  # deeper than Python's recursion limit
        v = v[:]
    y.add_(_float64(np.ones(8), requires_grad=True))  # a write into the root re-reads v
    v.mul_(_float64(np.full(8, 2.0), requires_grad=True))
    assert y.data.tolist() == [2.0] * 8


@pytest.mark.parametrize("rebind", ["root", "view"])
def test_a_write_into_a_view_whose_data_was_reassigned_is_refused(rebind):
    """The write landed on the wrong elements (the view's recipe, applied to the new layout)."""
    y = _float64([0.0, 1.0, 2.0, 3.0]) * 1.0
    v = y[0:2]
    if rebind == "root":
        y.data = y.data[::-1]
    else:
        v.data = y.data[2:4]
    with pytest.raises(GraphError, match="was reassigned after the view was made"):
        v *= _float64([10.0, 10.0], requires_grad=True)


def test_a_write_through_a_view_of_a_0d_tensor():
    y = _float64(3.0) * 1.0
    v = y.reshape(1)
    w = _float64([2.0], requires_grad=True)
    v *= w
    y.backward()
    assert y.item() == 6.0
    np.testing.assert_allclose(w.grad.data, [3.0])


def test_the_in_place_clock_never_runs_back_when_threads_write(race):
    """``now`` was set after ``next()``: two threads could leave it at the older tick, and a node
    recorded after a write then looked older than it (its gradient went to the node before)."""
    wrong = []

    def train():
        for _ in range(1500):
            x = _float64([2.0, 2.0, 2.0], requires_grad=True)
            w = _float64([5.0, 5.0, 5.0], requires_grad=True)
            y = x * 1.0
            y[0:3].mul_(w)
            (y * 3.0).sum().backward()
            if w.grad is None or x.grad.data.tolist() != [15.0] * 3:
                wrong.append(None if w.grad is None else w.grad.data.tolist())

    race(train, train, train, train)
    assert wrong == []


def test_transpose_of_two_axes_swaps_them_as_in_pytorch():
    """``x.transpose(0, 1)`` of a matrix read (0, 1) as NumPy's identity permutation: a silent no-op
    (``k.transpose(-2, -1)`` in attention code)."""
    x = _float64(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.transpose(0, 1).shape == x.transpose(-2, -1).shape == (3, 2)
    assert x.permute(0, 1).shape == (2, 3)  # a permutation of every axis, as in both libraries
    (x.transpose(0, 1) * _float64(np.arange(6.0).reshape(3, 2))).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]])
    y = tt.zeros(2, 3, 4)
    assert y.transpose(0, 2).shape == (4, 3, 2) and y.transpose(2, 0, 1).shape == (4, 2, 3)


def test_view_refuses_a_layout_it_would_have_to_copy():
    """``y.T.view(-1)`` copied, so a write into it was silently lost."""
    y = tt.zeros(2, 3)
    with pytest.raises(ValueError, match="cannot be viewed as .* without a copy; use reshape"):
        y.T.view(-1)
    y.view(3, 2)[0, 0] = 1.0
    assert y.data[0, 0] == 1.0


def test_a_0d_integer_tensor_index_is_an_int_index():
    """It was a NumPy advanced index: a copy, so a write through it was lost."""
    y = _float64([[1.0, 2.0], [3.0, 4.0]]) * 1.0
    row = y[tt.tensor(1)]
    row *= 10.0
    assert y.data.tolist() == [[1.0, 2.0], [30.0, 40.0]]


def test_views_a_user_made_leaves_follow_writes_into_their_root():
    """``v`` holds ``w``'s values after the write; it stayed a leaf and ``w`` lost that gradient."""
    y = _float64([1.0, 2.0, 3.0]) * 1.0
    w = _float64([5.0, 6.0], requires_grad=True)
    v = y[1:3]
    v.requires_grad_()
    y[0:2] = w
    (v * 1.0).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [0.0, 1.0])
    t = (_float64([1.0, 2.0, 3.0]) * 1.0)
    leaf = t[0:2]
    leaf.requires_grad_()
    t[0:2] = leaf  # was taken for ``x[i] += w``'s write-back: nothing recorded, no gradient
    (t * t).sum().backward()
    np.testing.assert_array_equal(leaf.grad.data, [2.0, 4.0])


def test_a_write_re_reads_only_the_views_it_touches():
    """Every live view of the root used to be re-read after each write: writing each of n rows
    through its own view cost n * n gathers (400 rows: 3.4 s)."""
    y = tt.zeros(50, 4, dtype=np.float64) * 1.0
    w = _float64(np.random.default_rng(4).standard_normal((50, 4)), requires_grad=True)
    rows = [y[i] for i in range(50)]
    column = y[:, 0]  # overlaps every row
    untouched, column_before = rows[1].grad_fn, column.grad_fn
    rows[0] += w[0]
    assert rows[1].grad_fn is untouched
    assert column.grad_fn is not column_before and column.requires_grad
    for i in range(1, 50):
        rows[i] += w[i]
    ((y * y).sum() + column.sum()).backward()
    np.testing.assert_allclose(w.grad.data, 2.0 * w.data + np.array([1.0, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("index, ints_first", [
    ((0, slice(None), [0, 1, 2]), lambda a: a[0][:, [0, 1, 2]]),  # NumPy put the array axis first
    ((slice(None), 0, [0, 1]), lambda a: a[:, 0][:, [0, 1]]),
    (([0, 1], slice(None), 0), lambda a: a[:, :, 0][[0, 1]]),
    ((0, Ellipsis, [1, 3]), lambda a: a[0][..., [1, 3]]),
    (([1, 0], 0, [0, 2]), lambda a: a[:, 0][[1, 0], [0, 2]]),
])
def test_an_int_beside_index_arrays_indexes_in_pytorchs_axis_order(index, ints_first):
    """PyTorch applies the ints first; NumPy moved the array axes to the front (on square shapes
    a silent transpose of the result)."""
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(_float64(a)[index].data, ints_first(a))


def test_writes_with_an_int_beside_index_arrays_match_finite_differences():
    def step(x):
        z = x * 1.0
        z[0, :, [0, 2]] = z[1, :, [1, 3]] * 2.0
        return z * z

    assert gradcheck(step, np.random.default_rng(5).standard_normal((2, 3, 4)))
