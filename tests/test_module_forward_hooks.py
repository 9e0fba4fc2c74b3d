"""Forward hooks of modules (``register_forward_pre_hook``, ``register_forward_hook``): what they
see, what their return values change (gradients included), their order, and what is refused."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Module, Parameter
from tinytorch_core.module import MODULE_CLOCK
from tinytorch_core.testing import central_difference


class Scale(Module):
    """``x * w``: one parameter, a forward whose gradient is easy to check."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(np.array([1.5, -0.5]), dtype=np.float64)

    def forward(self, x, shift=0.0):
        return x * self.w + shift


def test_a_forward_hook_sees_arguments_and_output_and_may_replace_the_output():
    m = Scale()
    seen = []
    m.register_forward_hook(lambda module, args, output: seen.append((module, args, output)))
    m.register_forward_hook(lambda module, args, output: output * output)
    x = tt.tensor(np.array([2.0, 3.0]))
    y = m(x)
    assert seen[0][0] is m and seen[0][1][0] is x
    np.testing.assert_allclose(seen[0][2].data, [3.0, -1.5])
    np.testing.assert_allclose(y.data, [9.0, 2.25])


def test_the_gradient_flows_through_what_a_hook_returned():
    m = Scale()
    m.register_forward_hook(lambda module, args, output: output * output)
    x0 = np.array([2.0, 3.0])
    m(tt.tensor(x0)).sum().backward()
    w = m.w.data.copy()
    expected = [central_difference(lambda: float(((x0 * w) ** 2).sum()), w, k) for k in range(2)]
    np.testing.assert_allclose(m.w.grad.data, expected, rtol=1e-7)


def test_a_pre_hook_replaces_the_arguments_a_tuple_or_one_value():
    m = Scale()
    m.register_forward_pre_hook(lambda module, args: args[0] * 2)  # one value
    m.register_forward_pre_hook(lambda module, args: (args[0] + 1,))  # a tuple
    np.testing.assert_allclose(m(tt.tensor(np.array([1.0, 1.0]))).data, [4.5, -1.5])  # (1 * 2 + 1) * w


def test_hooks_with_keywords():
    m = Scale()
    m.register_forward_pre_hook(lambda module, args, kwargs: (args, {**kwargs, "shift": 10.0}), with_kwargs=True)
    seen = []
    m.register_forward_hook(lambda module, args, kwargs, output: seen.append(kwargs), with_kwargs=True)
    y = m(tt.tensor(np.array([0.0, 0.0])), shift=1.0)
    np.testing.assert_allclose(y.data, [10.0, 10.0])
    assert seen == [{"shift": 10.0}]


def test_prepend_puts_a_hook_first():
    m = Scale()
    order = []
    m.register_forward_hook(lambda *a: order.append("second"))
    m.register_forward_hook(lambda *a: order.append("first"), prepend=True)
    m(tt.tensor(np.array([1.0, 1.0])))
    assert order == ["first", "second"]


def test_always_call_runs_when_forward_raises_and_the_error_goes_on():
    m = Scale()
    calls = []
    m.register_forward_hook(lambda module, args, output: calls.append(("always", output)), always_call=True)
    m.register_forward_hook(lambda module, args, output: calls.append(("normal", output)))
    with pytest.raises(ValueError):
        m(tt.tensor(np.ones(3)))  # (3,) against the (2,) weight
    assert calls == [("always", None)]


def test_a_removed_hook_no_longer_runs_and_changes_move_the_module_clock():
    m = Scale()
    calls = []
    before = MODULE_CLOCK.now
    handle = m.register_forward_hook(lambda *a: calls.append(1))
    assert MODULE_CLOCK.now > before
    m(tt.tensor(np.ones(2)))
    clock = MODULE_CLOCK.now
    handle.remove()
    assert MODULE_CLOCK.now > clock
    m(tt.tensor(np.ones(2)))
    assert calls == [1]
    handle.remove()  # twice: nothing left to take off


def test_a_hook_may_remove_itself_while_it_runs():
    m = Scale()
    calls = []

    def once(module, args, output):
        calls.append(1)
        handle.remove()

    handle = m.register_forward_hook(once)
    m(tt.tensor(np.ones(2)))
    m(tt.tensor(np.ones(2)))
    assert calls == [1]


def test_what_a_hook_must_be():
    m = Scale()
    with pytest.raises(TypeError, match="register_forward_hook expects a callable"):
        m.register_forward_hook("print")
    with pytest.raises(TypeError, match="with_kwargs must be True or False"):
        m.register_forward_pre_hook(lambda *a: None, with_kwargs="no")
    m.register_forward_pre_hook(lambda module, args, kwargs: args, with_kwargs=True)
    with pytest.raises(TypeError, match=r"must return None or a tuple \(args, kwargs\)"):
        m(tt.tensor(np.ones(2)))


def test_hooks_on_a_submodule_see_its_calls_inside_a_model():
    model = tt.nn.Sequential(tt.nn.Linear(3, 4, generator=0), tt.nn.ReLU(), tt.nn.Linear(4, 2, generator=0))
    shapes = []
    model[1].register_forward_hook(lambda module, args, output: shapes.append(output.shape))
    model(tt.ones(5, 3))
    assert shapes == [(5, 4)]


def test_always_call_hooks_run_when_a_pre_hook_raises_and_their_own_error_does_not_hide_the_first():
    m = Scale()
    cleanups = []
    m.register_forward_pre_hook(lambda module, args: {}["missing"])
    m.register_forward_hook(lambda module, args, output: cleanups.append(output), always_call=True)
    with pytest.raises(KeyError):
        m(tt.tensor(np.ones(2)))
    assert cleanups == [None]
    broken = Scale()
    broken.register_forward_hook(lambda module, args, output: 1 / 0, always_call=True)
    with pytest.warns(RuntimeWarning, match="always_call=True"), pytest.raises(ValueError):
        broken(tt.tensor(np.ones(3)))  # the forward's shape error, not the hook's ZeroDivisionError


def test_hooks_added_in_one_thread_survive_hooks_added_and_removed_in_another(race):
    m = Scale()

    def keep():
        for _ in range(300):
            m.register_forward_hook(lambda *a: None)

    def churn():
        for _ in range(300):
            m.register_forward_hook(lambda *a: None).remove()

    race(keep, churn)
    assert len(m._forward_hooks.post) == 300


def test_a_module_whose_hooks_are_all_removed_is_back_on_the_plain_path():
    m = Scale()
    m.register_forward_pre_hook(lambda *a: None).remove()
    m.register_forward_hook(lambda *a: None).remove()
    assert m._forward_hooks is None


def test_calls_go_on_while_another_thread_adds_and_removes_the_last_hook(race):
    """The call reads the module's hooks once: it never sees them vanish half-way."""
    m = Scale()
    errors = []

    def churn():
        for _ in range(300):
            m.register_forward_hook(lambda *a: None).remove()

    def call():
        for _ in range(300):
            try:
                m(tt.tensor(np.ones(2)))
            except Exception as exc:  # noqa: BLE001 - any error is the finding
                errors.append(exc)

    race(churn, call)
    assert errors == []
