"""``tt.autograd.grad``: gradients returned, not stored. Checked against finite differences,
and against what must stay untouched (``.grad``, post-accumulate hooks)."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import GraphError
from tinytorch_core.testing import central_difference


def _leaf(values):
    return tt.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def _numeric_grad(f, x0):
    x = x0.copy()
    return np.array([central_difference(lambda: f(x), x, k) for k in range(x.size)])


def test_gradients_of_several_inputs_match_finite_differences_and_leave_grad_alone():
    a, b = _leaf([0.5, -1.0, 2.0]), _leaf([1.5, 0.25, -0.5])
    b.grad = tt.tensor(np.array([7.0, 7.0, 7.0]))
    loss = (a * b).exp().sum() + (a * a).sum()
    ga, gb = tt.autograd.grad(loss, [a, b])
    a0, b0 = a.data.copy(), b.data.copy()
    np.testing.assert_allclose(ga.data, _numeric_grad(lambda v: float(np.exp(v * b0).sum() + (v * v).sum()), a0), rtol=1e-7)
    np.testing.assert_allclose(gb.data, _numeric_grad(lambda v: float(np.exp(a0 * v).sum()), b0), rtol=1e-7)
    assert a.grad is None
    np.testing.assert_array_equal(b.grad.data, [7.0, 7.0, 7.0])
    assert not ga.requires_grad


def test_the_gradient_of_a_computed_tensor():
    x = _leaf([1.0, 2.0])
    m = x * 2
    (gm,) = tt.autograd.grad((m * m).sum(), m)
    np.testing.assert_allclose(gm.data, [4.0, 8.0])
    assert x.grad is None


def test_several_outputs_and_their_seeds():
    x = _leaf([1.0, 2.0])
    (g,) = tt.autograd.grad([(x * 2).sum(), (x * 3).sum()], x)
    np.testing.assert_array_equal(g.data, [5.0, 5.0])
    (g,) = tt.autograd.grad(x * x, x, grad_outputs=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(g.data, [2.0, 40.0])
    (g,) = tt.autograd.grad(x, x, grad_outputs=tt.tensor(np.array([3.0, 4.0])))
    np.testing.assert_array_equal(g.data, [3.0, 4.0])


def test_a_non_scalar_output_needs_its_seed():
    x = _leaf([1.0, 2.0])
    with pytest.raises(GraphError, match=r"output 0 has shape \(2,\); pass its gradient in grad_outputs"):
        tt.autograd.grad(x * 2, x)
    with pytest.raises(GraphError, match="output 0 does not require grad"):
        tt.autograd.grad(tt.ones(2).sum(), x)
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        tt.autograd.grad(x * 2, x, grad_outputs=[None, None])


def test_an_unused_input_is_an_error_unless_allowed():
    x, unused = _leaf([1.0, 2.0]), _leaf([3.0])
    with pytest.raises(GraphError, match="input 1 was not used"):
        tt.autograd.grad((x * x).sum(), [x, unused])
    gx, gu = tt.autograd.grad((x * x).sum(), [x, unused], allow_unused=True)
    assert gu is None
    _, zeros = tt.autograd.grad((x * x).sum(), [x, unused], materialize_grads=True)
    np.testing.assert_array_equal(zeros.data, [0.0])


def test_inputs_must_require_grad_and_be_tensors():
    x = _leaf([1.0])
    with pytest.raises(GraphError, match="input 0 does not require grad"):
        tt.autograd.grad((x * 2).sum(), tt.ones(1))
    with pytest.raises(TypeError, match="inputs must be a Tensor"):
        tt.autograd.grad((x * 2).sum(), [])
    with pytest.raises(TypeError, match="outputs must be a Tensor"):
        tt.autograd.grad(np.ones(1), x)
    with pytest.raises(NotImplementedError, match="create_graph"):
        tt.autograd.grad((x * 2).sum(), x, create_graph=True)


def test_the_graph_is_freed_unless_retained():
    x = _leaf([1.0, 2.0])
    loss = (x * x).sum()
    first = tt.autograd.grad(loss, x, retain_graph=True)
    second = tt.autograd.grad(loss, x)
    np.testing.assert_array_equal(first[0].data, second[0].data)
    with pytest.raises(GraphError, match="a second time"):
        tt.autograd.grad(loss, x)


def test_tensor_hooks_run_and_post_accumulate_hooks_do_not():
    x = _leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    post = []
    x.register_post_accumulate_grad_hook(lambda t: post.append(t))
    (g,) = tt.autograd.grad((x * 3).sum(), x)
    np.testing.assert_array_equal(g.data, [30.0, 30.0])
    assert post == [] and x.grad is None


def test_an_input_named_twice_gets_its_gradient_twice_and_results_do_not_share_memory():
    x = _leaf([1.0, 2.0])
    g1, g2 = tt.autograd.grad(x.sum(), [x, x])
    g1.data += 1
    np.testing.assert_array_equal(g2.data, [1.0, 1.0])


def test_retained_gradients_are_filled_as_by_backward():
    """As in PyTorch: retain_grad() keeps a computed tensor's gradient of any pass."""
    x = _leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    tt.autograd.grad((y * y).sum(), x)
    np.testing.assert_array_equal(y.grad.data, [4.0, 8.0])


def test_only_the_part_of_the_graph_below_the_outputs_that_leads_to_the_inputs_runs():
    """As in PyTorch: hooks further down do not fire, and that part of the graph is not freed."""
    x = _leaf([1.0, 2.0])
    calls = []
    h = x * 2.0
    h.register_hook(lambda g: calls.append("below z"))
    z = h.exp()
    (gz,) = tt.autograd.grad((z * z).sum(), z)
    np.testing.assert_allclose(gz.data, 2 * z.data)
    assert calls == []
    z.sum().backward()  # the graph below z is still there
    assert calls == ["below z"]
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(2 * x.data))
