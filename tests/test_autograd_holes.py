"""Regression tests for the autograd holes of hardening round 2: every one of them let a
parameter silently stop training, or let a dtype or a warning leak. Each test failed before its
fix."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import GraphError, Tensor
from tinytorch_core.grad_mode import current_modes
from tinytorch_core.testing import gradcheck

# ---- writing a tensor that requires grad into another tensor ------------------------------------


def test_writing_into_a_slice_records_the_write_so_the_value_gets_its_gradient():
    w = tt.tensor([2.0], requires_grad=True)
    x = tt.zeros(3)
    x[0:1] = w
    (x * tt.tensor([3.0, 4.0, 5.0])).sum().backward()
    assert x.grad_fn is not None
    np.testing.assert_array_equal(w.grad.data, [3.0])


def _write_rows(base, rows):
    out = tt.zeros(*base.shape, dtype=np.float64)
    out.copy_(base)
    out[1:3] = rows  # rows broadcast over the slice
    return out * out


def test_recorded_slice_write_matches_finite_differences():
    rng = np.random.default_rng(0)
    assert gradcheck(_write_rows, rng.standard_normal((4, 3)), rng.standard_normal(3))


def _accumulate(values):
    out = tt.zeros(3, dtype=np.float64)
    for i in range(3):
        out[i] = values[i] * (i + 1.0)
    out += values.exp()
    out *= values
    out -= 1.5
    out /= 2.0
    return out


def test_writes_add_up_across_a_loop_of_in_place_changes():
    assert gradcheck(_accumulate, np.array([0.3, -0.7, 1.1]))


@pytest.mark.parametrize("write", ["copy_", "fill_", "add_", "iadd", "mul_", "setitem-index-array"])
def test_every_in_place_change_records_a_value_that_requires_grad(write):
    w = tt.tensor([1.5, -2.0], requires_grad=True)
    x = tt.ones(2)
    if write == "copy_":
        x.copy_(w)
        expected = [1.0, 1.0]
    elif write == "fill_":
        x.copy_(w)
        x.fill_(3.0)  # overwrites everything: no gradient reaches w any more
        expected = [0.0, 0.0]
    elif write == "add_":
        x.add_(w, alpha=2.0)
        expected = [2.0, 2.0]
    elif write == "iadd":
        x += w
        expected = [1.0, 1.0]
    elif write == "mul_":
        x.mul_(w)
        expected = [1.0, 1.0]
    else:
        x[np.array([1, 0])] = w
        expected = [1.0, 1.0]
    x.sum().backward()
    np.testing.assert_allclose(w.grad.data, expected)


def test_consumers_recorded_before_a_write_keep_the_value_they_saw():
    a = tt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = a * 2.0
    y = h.exp()  # reads h before the write
    h[0] = tt.tensor(5.0, dtype=np.float64)
    (y.sum() + h.sum()).backward()
    expected = 2.0 * np.exp([2.0, 4.0]) + np.array([0.0, 2.0])
    np.testing.assert_allclose(a.grad.data, expected)


def test_recording_a_write_into_a_view_writes_into_the_tensor_it_views():
    w = tt.tensor([1.0], requires_grad=True)
    base = tt.zeros(2, 3)
    base[0][0:1] = w  # refused before views knew their base (tests/test_views_in_place.py)
    (base * 3.0).sum().backward()
    assert base.data[0, 0] == 1.0
    np.testing.assert_array_equal(w.grad.data, [3.0])


def test_writing_into_an_integer_tensor_a_value_that_requires_grad_is_refused():
    with pytest.raises(TypeError, match="only floating-point tensors carry gradients"):
        tt.zeros(3, dtype=np.int64)[0:1] = tt.tensor([1.0], requires_grad=True)


def test_writes_without_gradients_stay_plain_numpy_writes():
    x = tt.zeros(3)
    x[1] = 2.0
    x += 1.0
    assert x.grad_fn is None and not x.requires_grad
    np.testing.assert_array_equal(x.data, [1.0, 3.0, 1.0])


# ---- in-place operators on a Parameter ----------------------------------------------------------


def test_in_place_operator_on_a_parameter_outside_no_grad_raises():
    m = tt.nn.Linear(2, 2)
    weight = m.weight
    for update in (lambda: m.weight.__isub__(0.1), lambda: m.weight.__iadd__(0.1),
                   lambda: m.weight.__imul__(0.5), lambda: m.weight.__itruediv__(2.0)):
        with pytest.raises(RuntimeError, match="in-place change of a leaf tensor that requires grad"):
            update()
    assert m.weight is weight


def test_in_place_operator_on_a_parameter_under_no_grad_acts_in_place():
    m = tt.nn.Linear(2, 2)
    weight = m.weight
    before = weight.data.copy()
    with tt.no_grad():
        m.weight -= 0.1
        m.weight *= 2.0
    assert m.weight is weight and isinstance(m.weight, tt.Parameter)
    assert any(p is weight for p in m.parameters())
    np.testing.assert_allclose(weight.data, (before - 0.1) * 2.0, rtol=1e-6)


# ---- grad mode and anomaly mode are per thread ---------------------------------------------------


def _while_another_thread_holds(mode, action):
    """Run ``action()`` in one thread while a second thread sits inside ``with mode():``;
    returns what ``action`` returned and whether the mode was still set in the holding thread."""
    entered, done = threading.Event(), threading.Event()
    seen = {}

    def holder():
        with mode():
            entered.set()
            done.wait(10)
            seen["held"] = (tt.is_grad_enabled(), current_modes().anomaly)

    def actor():
        entered.wait(10)
        try:
            seen["result"] = action()
        finally:
            done.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=actor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return seen["result"], seen["held"]


def test_no_grad_in_one_thread_does_not_switch_recording_off_in_another():
    def train_a_little():
        x = tt.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        enabled, records = tt.is_grad_enabled(), y.requires_grad
        y.backward()
        return enabled, records, x.grad.data.copy()

    (enabled, records, grad), (grad_held, _) = _while_another_thread_holds(tt.no_grad, train_a_little)
    assert (enabled, records, grad_held) == (True, True, False)
    np.testing.assert_array_equal(grad, [2.0, 4.0])
    assert tt.is_grad_enabled()


def test_two_threads_train_their_own_models_at_once():
    def train(seed, results):
        try:
            results[seed] = fit(seed)
        except BaseException as exc:  # a thread's exception would otherwise vanish
            results[seed] = exc

    def fit(seed):
        rng = np.random.default_rng(seed)
        model = tt.nn.Linear(3, 1, generator=seed)
        x = tt.tensor(rng.standard_normal((16, 3)).astype(np.float32))
        y = tt.tensor(rng.standard_normal((16, 1)).astype(np.float32))
        losses = []
        for _ in range(200):
            loss = tt.ops.mse_loss(model(x), y)
            for p in model.parameters():
                p.grad = None
            loss.backward()
            with tt.no_grad():
                for p in model.parameters():
                    p -= 0.05 * p.grad.data
            losses.append(loss.item())
        return losses

    results = {}
    threads = [threading.Thread(target=train, args=(seed, results)) for seed in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [1, 2, 3, 4]
    for losses in results.values():
        assert isinstance(losses, list), repr(losses)
        assert losses[-1] < 0.8 * losses[0]


def test_anomaly_mode_is_per_thread():
    def log_of_zero():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return tt.tensor([0.0]).log().data[0]  # -inf, and no AnomalyError in this thread

    value, (_, anomaly_held) = _while_another_thread_holds(tt.detect_anomaly, log_of_zero)
    assert value == -np.inf and anomaly_held


# ---- pow's gradient at the edges -------------------------------------------------------------------


def test_power_zero_has_zero_gradient_at_zero():
    x = tt.tensor([0.0, 2.0, -1.0], requires_grad=True)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])


def test_exponent_gradient_is_nan_where_the_base_is_negative():
    a = tt.tensor([-2.0, 0.0, 3.0], requires_grad=True, dtype=np.float64)
    b = tt.tensor([2.0, 2.0, 0.5], requires_grad=True, dtype=np.float64)
    (a**b).sum().backward()
    assert np.isnan(b.grad.data[0])
    assert b.grad.data[1] == 0.0  # 0 ** b for b >= 0: flat to the right
    np.testing.assert_allclose(b.grad.data[2], 3.0**0.5 * np.log(3.0))
    np.testing.assert_allclose(a.grad.data, [-4.0, 0.0, 0.5 * 3.0**-0.5])


# ---- max-pool windows that lie on -inf entries and padding -------------------------------------------


@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_window_of_minus_inf_sends_its_gradient_to_the_first_real_entry(channels_last):
    data = np.full((1, 2, 4, 4), -np.inf, np.float32)
    if channels_last:
        data = np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    x = tt.tensor(data, requires_grad=True)
    tt.nn.MaxPool2d(3, stride=2, padding=1)(x).sum().backward()
    expected = np.zeros((4, 4), np.float32)
    expected[:2, :2] = 1.0  # windows start at rows/columns -1 and 1: first real entries (0|1, 0|1)
    for c in range(2):
        np.testing.assert_array_equal(x.grad.data[0, c], expected)


# ---- numbers and 0-d tensors never widen a tensor ----------------------------------------------------

PROMOTIONS = [
    ("t / np.sqrt(4.0)", np.float32),
    ("np.float64(2.0) * t", np.float32),
    ("t - np.float64(1.0)", np.float32),
    ("t ** np.float64(2.0)", np.float32),
    ("t + tt.tensor(1.0, dtype=np.float64)", np.float32),
    ("t.sum() / np.prod(t.shape)", np.float32),
    ("tt.maximum(t, np.float64(0.0))", np.float32),
    ("tt.where(t > 0, t, np.float64(0.0))", np.float32),
    ("t.clip(np.float64(-1.0), np.float64(1.0))", np.float32),
    ("tt.tensor([1, 2, 3]) * 1.5", np.float32),
    ("tt.tensor([1, 2, 3]) / tt.tensor([2, 2, 2])", np.float32),
    ("tt.tensor([1, 2, 3], dtype=np.int32) + np.int64(1)", np.int32),
    ("tt.tensor([1, 2, 3], dtype=np.int32) + t", np.float32),
    ("t + tt.tensor([1.0, 2.0, 3.0], dtype=np.float64)", np.float64),  # dimensioned float64 may widen
    ("tt.tensor(2.0, dtype=np.float64) * tt.tensor(3.0)", np.float64),  # 0-d with 0-d: NumPy's rule
]


@pytest.mark.parametrize("expression, dtype", PROMOTIONS, ids=[e for e, _ in PROMOTIONS])
def test_dtype_promotion_follows_the_rule(expression, dtype):
    t = tt.tensor([0.5, -1.0, 2.0])
    assert eval(expression).dtype == dtype


def test_float32_layer_accepts_a_tensor_scaled_by_a_numpy_scalar():
    layer = tt.nn.Linear(3, 2)
    x = tt.randn(4, 3) / np.sqrt(4.0)
    assert layer(x).dtype == np.float32


def test_gradient_reaches_a_float64_zero_d_operand_in_its_own_dtype():
    t = tt.tensor([1.0, 2.0], requires_grad=True)
    s = tt.tensor(3.0, dtype=np.float64, requires_grad=True)
    (t * s).sum().backward()
    assert s.grad.dtype == np.float64 and s.grad.item() == pytest.approx(3.0)
    assert t.grad.dtype == np.float32


# ---- a float64 model gets a float64-accurate positional table ---------------------------------------


def test_sinusoidal_encoding_after_to_float64_is_float64_accurate():
    from tinytorch_embeddings.layers import sinusoidal_table

    m = tt.nn.SinusoidalPositionalEncoding(64, 16).to(np.float64)
    x = tt.zeros(1, 64, 16, dtype=np.float64)
    assert m.pe.dtype == np.float64
    np.testing.assert_allclose(m(x).data[0], sinusoidal_table(64, 16), rtol=0, atol=1e-15)
    back = m.to(np.float32)
    assert back.pe.dtype == np.float32


# ---- no warnings on +inf; one rule for integer input of floating-point ops ------------------------


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "cross_entropy", "binary_cross_entropy_with_logits"])
def test_no_warning_on_infinite_logits(op):
    F = tt.ops
    x = tt.tensor([[np.inf, 1.0, 0.0], [2.0, 1.0, 0.0]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if op == "cross_entropy":
            out = F.cross_entropy(x, tt.tensor([0, 1]))
        elif op == "binary_cross_entropy_with_logits":
            out = F.binary_cross_entropy_with_logits(x, tt.tensor(np.ones((2, 3), np.float32)))
        else:
            out = getattr(F, op)(x, axis=-1)
        out.sum().backward()


def test_no_warning_in_gelu_backward_at_infinity():
    x = tt.tensor([np.inf, -np.inf, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tt.ops.gelu(x).sum().backward()


@pytest.mark.parametrize("op", ["sigmoid", "tanh", "gelu", "softmax", "log_softmax"])
def test_floating_point_ops_refuse_integer_tensors_with_type_error(op):
    with pytest.raises(TypeError, match=f"nn::{op}: expected a floating-point tensor, got int64"):
        getattr(tt.ops, op)(tt.tensor([1, 2, 3]))


@pytest.mark.parametrize("method", ["exp", "log", "sqrt", "mean"])
def test_core_floating_point_ops_refuse_integer_tensors_with_type_error(method):
    with pytest.raises(TypeError, match="expected a floating-point tensor, got int64"):
        getattr(tt.tensor([1, 2, 3]), method)()


def test_threads_that_first_touch_the_stages_at_once_all_see_them_installed():
    """The runtime loads plugins once: a thread arriving while another is loading waits for it
    instead of seeing a half-loaded runtime (\"stage 'nn' is not installed\")."""
    import subprocess
    import sys

    script = (
        "import threading, tinytorch_core as tt\n"
        "start = threading.Barrier(6)\n"
        "errors = []\n"
        "def use():\n"
        "    start.wait()\n"
        "    try:\n"
        "        tt.nn.Linear(2, 1)\n"
        "    except Exception as exc:\n"
        "        errors.append(repr(exc))\n"
        "threads = [threading.Thread(target=use) for _ in range(6)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(errors)\n"
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]", done.stdout


def test_assigning_a_plain_tensor_to_a_parameter_name_is_refused():
    m = tt.nn.Linear(2, 2)
    weight = m.weight
    with pytest.raises(TypeError, match="cannot assign a Tensor to 'weight', a parameter of Linear"):
        m.weight = m.weight - 0.1
    assert m.weight is weight and any(p is weight for p in m.parameters())
    m.bias = None  # removing a parameter stays allowed
    assert len(list(m.parameters())) == 1


def test_augmented_assignment_into_an_indexed_position_records_the_value():
    w = tt.tensor([2.0, 3.0], requires_grad=True)
    x = tt.ones(3)
    x[0] += w[0] * 2.0
    x[1:3] *= w
    (x * tt.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_allclose(x.data, [5.0, 2.0, 3.0])
    np.testing.assert_allclose(w.grad.data, [2.0 + 10.0, 100.0])


def test_a_leaf_that_requires_grad_may_stand_in_for_a_parameter():
    m = tt.nn.Linear(2, 1)
    stand_in = tt.tensor(np.ones((1, 2), np.float32), requires_grad=True)
    m.weight = stand_in  # a gradient check swaps the weight this way
    assert any(p is stand_in for p in m.parameters())
    with pytest.raises(TypeError, match="a parameter of Linear"):
        m.weight = tt.zeros(1, 2)  # does not require grad: it could never train


def _add_into_positions(a):
    h = a * 2.0
    h[0] += 1.0  # h requires grad: recorded, as in PyTorch
    h[1:] *= a[1:]
    return h


def test_augmented_assignment_into_a_tensor_that_requires_grad_matches_finite_differences():
    assert gradcheck(_add_into_positions, np.array([0.5, -1.5, 2.0]))
