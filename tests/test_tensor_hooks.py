"""Tensor hooks (``register_hook``): what they see, what their return value changes, and what
they are refused. Expected gradients come from finite differences of the function the hooks
make the engine differentiate."""

import copy
import pickle
import sys

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import GraphError
from tinytorch_core.testing import central_difference


def _leaf(values, dtype=np.float64):
    return tt.tensor(np.array(values, dtype=dtype), requires_grad=True)


def _numeric_grad(f, x0):
    """d f / d x at ``x0``, by central differences (``f`` maps an array to a float)."""
    x = x0.copy()
    return np.array([central_difference(lambda: f(x), x, k) for k in range(x.size)])


def test_a_leaf_hook_sees_the_sum_of_the_pass_once_and_its_result_is_the_grad():
    x = _leaf([1.0, -2.0, 0.5])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    loss = (x * 2).sum() + (x * x).sum() + x.exp().sum()  # three edges into x
    loss.backward()
    x0 = x.data.copy()
    expected = _numeric_grad(lambda v: float((2 * v).sum() + (v * v).sum() + np.exp(v).sum()), x0)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], expected, rtol=1e-7)
    np.testing.assert_allclose(x.grad.data, 10 * expected, rtol=1e-7)


def test_a_hook_on_a_computed_tensor_changes_every_gradient_below_it():
    x = _leaf([0.3, -1.2])
    y = x * x
    y.register_hook(lambda g: g * 3)
    (y.exp()).sum().backward()
    # the engine now differentiates exp(y) as if dy carried a factor 3
    expected = 3 * _numeric_grad(lambda v: float(np.exp(v * v).sum()), x.data.copy())
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-7)


def test_hooks_run_in_the_order_they_were_registered_and_none_keeps_the_gradient():
    x = _leaf([1.0, 2.0])
    y = x * 1.0
    calls = []
    y.register_hook(lambda g: calls.append("a") or g + 1)
    y.register_hook(lambda g: calls.append("b"))  # None: the gradient stays
    y.register_hook(lambda g: calls.append("c") or g * 2)
    y.sum().backward()
    assert calls == ["a", "b", "c"]
    np.testing.assert_array_equal(x.grad.data, [4.0, 4.0])  # (1 + 1) * 2


def test_retain_grad_keeps_the_gradient_after_the_hooks():
    x = _leaf([1.0, 2.0])
    z = x * 2
    z.retain_grad()
    z.register_hook(lambda g: g * 5)
    z.sum().backward()
    np.testing.assert_array_equal(z.grad.data, [5.0, 5.0])
    np.testing.assert_array_equal(x.grad.data, [10.0, 10.0])


def test_post_accumulate_hooks_see_the_grad_the_tensor_hooks_made():
    x = _leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 4)
    after = []
    x.register_post_accumulate_grad_hook(lambda t: after.append(t.grad.numpy().copy()))
    (x * 3).sum().backward()
    np.testing.assert_array_equal(after[0], [12.0, 12.0])


def test_a_removed_hook_no_longer_runs():
    x = _leaf([1.0])
    y = x * 1.0
    leaf_handle = x.register_hook(lambda g: g * 10)
    computed_handle = y.register_hook(lambda g: g * 100)
    leaf_handle.remove()
    computed_handle.remove()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0])


def test_a_hook_gets_a_read_only_gradient():
    """The array may be pending for another branch: writing into it would change that one too."""
    x = _leaf([1.0, 2.0])
    x.register_hook(lambda g: g.add_(1))
    with pytest.raises(ValueError, match="read-only") as raised:
        (x * 2).sum().backward()
    if sys.version_info >= (3, 11):  # notes on exceptions arrived in 3.11
        assert "return a new one instead" in "\n".join(raised.value.__notes__)


def test_hooks_registered_before_an_in_place_change_see_the_old_value_s_gradient():
    """As in PyTorch: a = x * 1; a.mul_(3): the hook belongs to a's first value, whose gradient is 3."""
    x = _leaf([1.0, 2.0])
    a = x * 1.0
    seen = []
    a.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 100)
    a.mul_(3)
    a.sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [300.0, 300.0])


@pytest.mark.parametrize("returned, match", [
    (lambda g: g.sum(), "changed the shape of the gradient"),
    (lambda g: g.to(np.float32), "changed the dtype of the gradient"),
    (lambda g: [1.0, 2.0], "returned a list"),
    (lambda g: g.numpy().view(np.recarray), "returned a recarray"),  # a subclass: np.matrix's * is a matrix product
])
def test_a_hook_that_returns_something_else_is_named(returned, match):
    x = _leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(returned)
    with pytest.raises(GraphError, match=match):
        y.sum().backward()


def test_a_hook_that_raises_leaves_the_engine_usable():
    x = _leaf([1.0, 2.0])
    handle = x.register_hook(lambda g: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        (x * 2).sum().backward()
    handle.remove()
    assert tt.is_grad_enabled()
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_a_hook_needs_a_tensor_that_requires_grad_and_a_callable():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tt.ones(2).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="expects a callable"):
        _leaf([1.0]).register_hook("not a function")


def test_a_hook_on_the_root_changes_the_seed():
    x = _leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.register_hook(lambda g: g * 0.5)
    loss.backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 2.0])


def test_hooks_on_a_leaf_root():
    x = _leaf([1.5])
    x.register_hook(lambda g: g * 2)
    x.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0])


def test_the_returned_gradient_is_not_the_array_the_hook_holds():
    """A leaf's .grad owns its memory: an optimizer writing into it must not change the hook's array."""
    kept = np.array([5.0, 5.0])
    x = _leaf([1.0, 2.0])
    x.register_hook(lambda g: kept)
    x.sum().backward()
    x.grad.data *= 0
    np.testing.assert_array_equal(kept, [5.0, 5.0])


def test_a_removed_hook_on_a_computed_tensor_leaves_no_trace():
    """Nothing is left that a compiled step's recording would refuse."""
    x = _leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g).remove()
    assert not y._node._hooks


def test_a_leaf_hook_removed_during_the_pass_strands_no_contribution():
    x = _leaf([1.0, 1.0])
    handle = x.register_hook(lambda g: g * 10)
    first, second = x * 2.0, x * 3.0
    first.register_hook(lambda g: handle.remove())
    (first.sum() + second.sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [5.0, 5.0])  # as in PyTorch: the removed hook does not run


@pytest.mark.parametrize("post_hook", [False, True])
def test_a_leaf_hook_registered_during_the_pass_acts_from_the_next_pass_whole(post_hook):
    """Never half applied: the contributions that came before it are in .grad already."""
    x = _leaf([1.0, 1.0])
    if post_hook:  # every data-parallel parameter has one
        x.register_post_accumulate_grad_hook(lambda t: None)
    first, second = x * 2.0, x * 3.0

    def add_a_leaf_hook(g):
        x.register_hook(lambda h: h * 10)

    first.register_hook(add_a_leaf_hook)
    (first.sum() + second.sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [5.0, 5.0])
    x.grad = None
    (x * 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [10.0, 10.0])


def test_what_a_leaf_hook_kept_is_not_changed_by_later_passes():
    x = _leaf([1.0, 1.0])
    kept = []
    x.register_hook(lambda g: kept.append(g))
    for scale in (1.0, 2.0, 3.0):
        (x * scale).sum().backward()
    assert [k.numpy().tolist() for k in kept] == [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])


def test_hooks_added_in_one_thread_survive_hooks_added_and_removed_in_another(race):
    """Without the registration lock about half were lost (one thread's tuple overwrote the other's)."""
    x = _leaf([1.0])

    def keep():
        for _ in range(300):
            x.register_hook(lambda g: None)

    def churn():
        for _ in range(300):
            x.register_hook(lambda g: None).remove()

    race(keep, churn)
    assert len(x._hooks) == 300


def test_copies_of_a_model_leave_hooks_behind_and_pickle():
    """As in PyTorch: a deep copy (an EMA or teacher model) must not run the original's hooks."""
    layer = tt.nn.Linear(3, 2, generator=0)
    layer.weight.register_hook(lambda g: g * 0)
    layer.weight.register_post_accumulate_grad_hook(lambda t: None)
    copied = copy.deepcopy(layer)
    assert copied.weight._hooks is None and copied.weight._grad_hooks is None
    copied(tt.ones(4, 3)).sum().backward()
    assert np.abs(copied.weight.grad.data).sum() > 0
    restored = pickle.loads(pickle.dumps(layer))  # the lambdas stay behind
    np.testing.assert_array_equal(restored.weight.data, layer.weight.data)


def test_a_tensor_with_views_pickles_and_its_copy_stands_alone():
    x = tt.ones(4)
    view = x[1:3]
    restored_x, restored_view = pickle.loads(pickle.dumps([x, view]))
    restored_view[0] = 5.0
    np.testing.assert_array_equal(restored_x.data, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(restored_view.data, [5.0, 1.0])
    shallow = copy.copy(x)  # shares the array: keeps the version counter that guards it
    assert shallow.data is x.data and shallow._version_counter is x._version_counter
