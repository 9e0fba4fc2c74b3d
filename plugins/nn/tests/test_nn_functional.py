"""Functional ops: values against direct formulas, gradients against finite differences
(including the numerically hard points), dtypes, and the error messages."""

import math
import warnings

import numpy as np
import pytest

from tinytorch_core import GraphError, Tensor, no_grad
from tinytorch_core.testing import gradcheck
import tinytorch_core as tt
from tinytorch_nn import functional as F

RNG_SEED = 1234


@pytest.fixture
def rng():
    return np.random.default_rng(RNG_SEED)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


HARD = np.array([-1000.0, -60.0, -20.0, -3.0, 3.0, 20.0, 60.0, 1000.0])


# ---- linear ---------------------------------------------------------------------------------
def test_linear_matches_numpy_and_gradients(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    out = F.linear(Tensor(x, dtype=np.float64), Tensor(w, dtype=np.float64), Tensor(b, dtype=np.float64))
    np.testing.assert_allclose(out.data, x @ w.T + b, rtol=1e-12)
    assert gradcheck(F.linear, x, w, b)
    assert gradcheck(F.linear, rng.standard_normal((2, 3, 5)), w)
    assert gradcheck(F.linear, rng.standard_normal(5), w, b)


def test_linear_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"in_features=5"):
        F.linear(Tensor(np.zeros((2, 4))), Tensor(np.zeros((3, 5))))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.linear(Tensor(np.zeros((2, 5))), Tensor(np.zeros((3, 5))), Tensor(np.zeros(4)))
    with pytest.raises(ValueError, match="2-D"):
        F.linear(Tensor(np.zeros((2, 5))), Tensor(np.zeros(5)))


# ---- activations ------------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "softmax": F.softmax,
    "log_softmax": F.log_softmax,
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradients(name, rng):
    x = rng.uniform(0.2, 2.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))  # away from ReLU's kink
    assert gradcheck(ACTIVATIONS[name], x)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu", "gelu_tanh", "softmax", "log_softmax", "leaky_relu"])
def test_activation_gradients_at_large_magnitudes(name):
    assert gradcheck(ACTIVATIONS[name], HARD.copy())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_keep_float32_and_stay_finite_at_1000(name):
    x = Tensor(HARD.astype(np.float32), requires_grad=True)
    y = ACTIVATIONS[name](x)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y.data))
    y.backward(np.ones_like(y.data))
    assert x.grad.dtype == np.float32 and np.all(np.isfinite(x.grad.data))


def test_sigmoid_values_in_both_tails():
    x = np.array([-1000.0, -700.0, -40.0, -1.0, 0.0, 1.0, 40.0, 1000.0])
    y = F.sigmoid(Tensor(x, dtype=np.float64)).data
    expected = [math.exp(-700), 1 / (1 + math.exp(40)), 1 / (1 + math.e), 0.5, 1 / (1 + math.exp(-1)), 1.0, 1.0]
    np.testing.assert_allclose(y[1:], expected, rtol=1e-14, atol=0)
    # below the smallest normal number the result is exp(x) as a subnormal number (a few digits
    # fewer), and the true sigmoid(-1000), about 5e-435, rounds to 0; no warning either way
    np.testing.assert_allclose(F.sigmoid(Tensor([-720.0], dtype=np.float64)).data, math.exp(-720), rtol=1e-9)
    assert y[0] == 0.0
    y32 = F.sigmoid(Tensor([-1000.0, -80.0, -40.0, 40.0])).data
    np.testing.assert_allclose(y32[1:], [math.exp(-80), math.exp(-40), 1.0], rtol=1e-6)
    assert y32[0] == 0.0


def test_gelu_exact_matches_erf_formula_and_tanh_form_differs():
    x = np.linspace(-6, 6, 101)
    exact = F.gelu(Tensor(x, dtype=np.float64)).data
    expected = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(exact, expected, rtol=1e-14, atol=1e-15)
    approx = F.gelu(Tensor(x, dtype=np.float64), approximate="tanh").data
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    np.testing.assert_allclose(approx, 0.5 * x * (1 + np.tanh(inner)), rtol=1e-14)
    assert 1e-5 < np.max(np.abs(approx - exact)) < 1e-2  # a different formula, close to the exact one


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(Tensor([1.0]), approximate="fast")


def test_softmax_and_log_softmax_with_extreme_logits():
    x = np.array([[-1000.0, 0.0, 1.0], [1000.0, 999.0, -1000.0]])
    p = F.softmax(Tensor(x, dtype=np.float64)).data
    logp = F.log_softmax(Tensor(x, dtype=np.float64)).data
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    e = np.exp([-1.0, 0.0])
    np.testing.assert_allclose(p[0, 1:], e / e.sum(), rtol=1e-14)
    np.testing.assert_allclose(logp[0], [-1000 - np.log(e.sum()) - 1, -1 - np.log(e.sum()) + 0, -np.log(e.sum())],
                               rtol=1e-14)
    assert np.all(np.isfinite(logp))


def test_softmax_axis(rng):
    x = rng.standard_normal((2, 3, 4))
    p = F.softmax(Tensor(x, dtype=np.float64), axis=1).data
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert gradcheck(F.log_softmax, x, axis=0)
    with pytest.raises(ValueError, match="axis 3"):
        F.softmax(Tensor(x), axis=3)


# ---- dropout ------------------------------------------------------------------------------------
def test_dropout_scales_kept_values_and_is_reproducible():
    x = Tensor(np.ones((200, 50)))
    y = F.dropout(x, 0.25, True, generator=5).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_array_equal(F.dropout(x, 0.25, True, generator=5).data, y)
    assert not np.array_equal(F.dropout(x, 0.25, True, generator=6).data, y)


def test_dropout_gradient_is_the_mask(rng):
    x = Tensor(rng.standard_normal((6, 7)), requires_grad=True, dtype=np.float64)
    y = F.dropout(x, 0.5, True, generator=3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, (y.data != 0) * 2.0)
    assert gradcheck(F.dropout, rng.standard_normal((4, 3)), p=0.4, training=True, generator=9)


def test_dropout_identity_and_extremes():
    x = Tensor(np.arange(6.0))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x
    assert np.all(F.dropout(x, 1.0, training=True).data == 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.dropout(x, 1.5)


# ---- regression and binary losses -----------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_values_and_gradients(reduction, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out = F.mse_loss(Tensor(a, dtype=np.float64), b, reduction=reduction).data
    sq = (a - b) ** 2
    expected = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert gradcheck(F.mse_loss, a, b, reduction=reduction)


def test_mse_loss_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):
        F.mse_loss(Tensor(np.zeros((3, 1))), np.zeros(3))


def test_losses_reject_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(Tensor(np.zeros(3)), np.zeros(3), reduction="average")


def test_binary_cross_entropy_values_gradients_and_clamp(rng):
    p, t = rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))
    out = F.binary_cross_entropy(Tensor(p, dtype=np.float64), t).data
    np.testing.assert_allclose(out, np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))), rtol=1e-12)
    assert gradcheck(F.binary_cross_entropy, p, rng.uniform(0.1, 0.9, (3, 4)))
    assert gradcheck(F.binary_cross_entropy, np.array([1e-4, 0.9999]), Tensor([1.0, 0.0], dtype=np.float64))
    # exact 0 and 1: each log floored at -100 and p (1 - p) at 1e-12, PyTorch's floors (torch 2.x
    # gives these numbers): finite loss, finite and correctly signed gradient
    for dtype in (np.float32, np.float64):
        x = Tensor([0.0, 1.0, 1e-9], requires_grad=True, dtype=dtype)
        loss = F.binary_cross_entropy(x, np.array([1.0, 0.0, 1.0]), reduction="none")
        np.testing.assert_allclose(loss.data, [100.0, 100.0, -np.log(dtype(1e-9))], rtol=1e-6)
        loss.sum().backward()
        np.testing.assert_allclose(x.grad.data, [-1e12, 1e12, -1e9], rtol=1e-5)
        assert F.BCE_LOG_FLOOR == -100.0


def test_binary_cross_entropy_rejects_values_outside_0_1():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*1\.5.*sigmoid"):
        F.binary_cross_entropy(Tensor([0.2, 1.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target must be probabilities.*-1"):
        F.binary_cross_entropy(Tensor([0.2, 0.5]), np.array([-1.0, 1.0]))
    with pytest.raises(ValueError, match=r"input must be probabilities.*nan"):
        F.binary_cross_entropy(Tensor([np.nan, 0.5]), np.array([0.0, 1.0]))
    # the registered op checks its input itself, for callers that skip the functional wrapper
    with pytest.raises(ValueError, match=r"input must be probabilities.*-0\.5"):
        F.BinaryCrossEntropyFunction.apply(Tensor([-0.5, 0.5]), np.array([0.0, 1.0]))
    # edge values: -0.0 is a fine probability; the smallest negative number, the float just
    # above 1 and inf are not
    F.binary_cross_entropy(Tensor([0.5, 0.5]), np.array([-0.0, 1.0]))
    for bad in (-np.finfo(np.float64).tiny, np.nextafter(1.0, 2.0), np.inf):
        with pytest.raises(ValueError, match="target must be probabilities"):
            F.binary_cross_entropy(Tensor([0.5, 0.5], dtype=np.float64), np.array([bad, 1.0]))


def test_bce_with_logits_equals_bce_of_sigmoid_and_is_stable(rng):
    x, t = rng.standard_normal((3, 5)) * 3, rng.uniform(0, 1, (3, 5))
    with_logits = F.binary_cross_entropy_with_logits(Tensor(x, dtype=np.float64), t, reduction="none").data
    p = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(with_logits, -(t * np.log(p) + (1 - t) * np.log(1 - p)), rtol=1e-10)
    assert gradcheck(F.binary_cross_entropy_with_logits, x, rng.uniform(0.1, 0.9, (3, 5)))
    # wrong and confident at +-1000: the exact loss is 1000, the gradient is +-1 per element
    hard = Tensor(np.array([1000.0, -1000.0], dtype=np.float32), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(hard, np.array([0, 1]), reduction="sum")
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.data, 2000.0)
    loss.backward()
    np.testing.assert_allclose(hard.grad.data, [1.0, -1.0])
    assert gradcheck(F.binary_cross_entropy_with_logits, HARD.copy(), Tensor(np.tile([0.0, 1.0], 4), dtype=np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sigmoid_binary_cross_entropy_is_bce_of_sigmoid_as_one_node(rng, dtype, reduction):
    x, t = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    results = []
    for loss_of in (F.sigmoid_binary_cross_entropy, lambda x, t, reduction: F.binary_cross_entropy(F.sigmoid(x), t, reduction)):
        logits = Tensor(x, requires_grad=True, dtype=dtype)
        target = Tensor(t, requires_grad=True, dtype=dtype)
        loss = loss_of(logits, target, reduction=reduction)
        loss.sum().backward()
        results.append((loss, logits.grad.data, target.grad.data))
    (fused, fused_dx, fused_dt), (chain, chain_dx, chain_dt) = results
    assert type(fused.grad_fn) is F.SigmoidBinaryCrossEntropyFunction
    assert type(chain.grad_fn) is F.BinaryCrossEntropyFunction  # BCE records itself, never the fused op
    assert fused.dtype == dtype
    np.testing.assert_array_equal(fused.data, chain.data)  # the same kernel on the same probabilities
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fused_dx, chain_dx, **tol)
    np.testing.assert_allclose(fused_dt, chain_dt, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_binary_cross_entropy_keeps_pushing_back_where_the_clamp_is_active(dtype):
    # confident and wrong (first two), confident and right (last two): sigmoid(40) rounds to 1,
    # so log(1 - s) is floored at -100. The value is the floored one; the gradient stays s - t,
    # the push back of the exact loss, where the two-node chain's vanishes with the sigmoid's slope.
    x, t = np.array([-40.0, 40.0, -40.0, 40.0]), np.array([1.0, 0.0, 0.0, 1.0])
    logits = Tensor(x, requires_grad=True, dtype=dtype)
    loss = F.sigmoid_binary_cross_entropy(logits, t, reduction="sum")
    chain_logits = Tensor(x, requires_grad=True, dtype=dtype)
    chain = F.binary_cross_entropy(F.sigmoid(chain_logits), t, reduction="sum")
    np.testing.assert_array_equal(loss.data, chain.data)
    np.testing.assert_allclose(loss.data, 40.0 + 100.0, rtol=1e-6)  # -log(sigmoid(-40)) and the floor
    loss.backward()
    np.testing.assert_allclose(logits.grad.data, [-1.0, 1.0, 0.0, 0.0], atol=1e-6)
    chain.backward()
    assert np.abs(chain_logits.grad.data[:2]).max() < 0.05  # the chain's push back all but vanishes


def test_sigmoid_binary_cross_entropy_and_bce_of_sigmoid_match_finite_differences(rng):
    def bce_of_sigmoid(x, t):
        return F.binary_cross_entropy(F.sigmoid(x), t)

    for loss_of in (F.sigmoid_binary_cross_entropy, bce_of_sigmoid):
        assert gradcheck(loss_of, rng.standard_normal((3, 4)) * 3, rng.uniform(0.1, 0.9, (3, 4)))
        assert gradcheck(loss_of, np.array([-12.0, -5.0, 5.0, 12.0]), Tensor([1.0, 0.0, 1.0, 0.0], dtype=np.float64))


def test_bce_of_a_sigmoid_output_keeps_in_place_changes_loud(rng):
    x, t = rng.standard_normal(5), rng.uniform(0, 1, 5)
    # changed before the loss: the sigmoid's own check refuses to backpropagate
    logits = Tensor(x, requires_grad=True)
    p = F.sigmoid(logits)
    with no_grad():
        p.mul_(0.5)
    loss = F.binary_cross_entropy(p, t)
    assert type(loss.grad_fn) is F.BinaryCrossEntropyFunction
    with pytest.raises(GraphError, match="modified in place"):
        loss.backward()
    # changed after the loss, before backward: the BCE node saved it, and notices
    logits = Tensor(x, requires_grad=True)
    p = F.sigmoid(logits)
    loss = F.binary_cross_entropy(p, t)
    assert type(loss.grad_fn) is F.BinaryCrossEntropyFunction
    with no_grad():
        p.mul_(0.5)
    with pytest.raises(GraphError, match="modified in place"):
        loss.backward()


def test_sigmoid_binary_cross_entropy_checks_its_operands():
    logits = Tensor([0.5, -1.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"sigmoid_binary_cross_entropy: input shape \(2,\) and target shape \(3,\)"):
        F.sigmoid_binary_cross_entropy(logits, np.zeros(3))
    with pytest.raises(ValueError, match=r"sigmoid_binary_cross_entropy: target must be probabilities.*2\.0"):
        F.sigmoid_binary_cross_entropy(logits, np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="sigmoid_binary_cross_entropy: reduction"):
        F.sigmoid_binary_cross_entropy(logits, np.array([0.0, 1.0]), reduction="average")
    # integer 0/1 labels are computed in the logits' precision
    assert F.sigmoid_binary_cross_entropy(logits, np.array([0, 1])).dtype == np.float32


# ---- classification losses ---------------------------------------------------------------------
def _log_softmax(x, axis=1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def test_cross_entropy_matches_direct_formula(rng):
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    logp = _log_softmax(x)
    out = F.cross_entropy(Tensor(x, dtype=np.float64), t, reduction="none").data
    np.testing.assert_allclose(out, -logp[np.arange(6), t], rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(Tensor(x, dtype=np.float64), t).data, out.mean(), rtol=1e-12)
    assert gradcheck(F.cross_entropy, x, t)
    assert gradcheck(F.cross_entropy, x, t, reduction="none")


def test_cross_entropy_gradient_is_softmax_minus_onehot(rng):
    x, t = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    logits = Tensor(x, requires_grad=True, dtype=np.float64)
    F.cross_entropy(logits, t, reduction="sum").backward()
    np.testing.assert_allclose(logits.grad.data, np.exp(_log_softmax(x)) - np.eye(3)[t], rtol=1e-12)


def test_cross_entropy_ignore_index_leaves_entries_out_of_the_mean(rng):
    x = rng.standard_normal((5, 4))
    t = np.array([1, -100, 3, -100, 0])
    out = F.cross_entropy(Tensor(x, dtype=np.float64), t, ignore_index=-100).data
    keep = t != -100
    np.testing.assert_allclose(out, -_log_softmax(x)[keep][np.arange(3), t[keep]].mean(), rtol=1e-12)
    logits = Tensor(x, requires_grad=True, dtype=np.float64)
    F.cross_entropy(logits, t, ignore_index=-100).backward()
    assert np.all(logits.grad.data[~keep] == 0)
    assert gradcheck(F.cross_entropy, x, t, ignore_index=-100)


def test_minus_100_is_ignored_by_default_as_in_pytorch(rng):
    x, t = rng.standard_normal((4, 3)), np.array([2, -100, 0, -100])
    keep = t != -100
    expected = -_log_softmax(x)[keep][np.arange(2), t[keep]].mean()
    for loss in (F.cross_entropy(Tensor(x, dtype=np.float64), t),
                 F.nll_loss(Tensor(_log_softmax(x), dtype=np.float64), t),
                 tt.nn.CrossEntropyLoss()(Tensor(x, dtype=np.float64), t)):
        np.testing.assert_allclose(loss.data, expected, rtol=1e-12)
    assert repr(tt.nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"
    with pytest.raises(IndexError, match="class index -1, .*ignore_index=-100"):
        F.cross_entropy(Tensor(x), np.array([2, -1, 0, 1]))
    with pytest.raises(IndexError, match="class index -100"):  # ignore_index=None ignores nothing
        F.cross_entropy(Tensor(x), t, ignore_index=None)


def test_cross_entropy_label_smoothing_matches_pytorch_definition(rng):
    x, t, eps = rng.standard_normal((4, 5)), rng.integers(0, 5, 4), 0.1
    logp = _log_softmax(x)
    expected = ((1 - eps) * -logp[np.arange(4), t] + eps * -logp.mean(axis=1)).mean()
    np.testing.assert_allclose(F.cross_entropy(Tensor(x, dtype=np.float64), t, label_smoothing=eps).data, expected,
                               rtol=1e-12)
    t2 = np.array([0, 2, 7, 1])
    keep = t2 != 7
    expected = ((1 - eps) * -logp[keep][np.arange(3), t2[keep]] + eps * -logp[keep].mean(axis=1)).mean()
    out = F.cross_entropy(Tensor(x, dtype=np.float64), t2, ignore_index=7, label_smoothing=eps)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    assert gradcheck(F.cross_entropy, x, t2, ignore_index=7, label_smoothing=0.3, reduction="sum")


def test_cross_entropy_spatial_layout_equals_flattened(rng):
    x, t = rng.standard_normal((2, 3, 4, 2)), rng.integers(0, 3, (2, 4, 2))
    spatial = F.cross_entropy(Tensor(x, dtype=np.float64), t, reduction="none").data
    flat = F.cross_entropy(Tensor(np.moveaxis(x, 1, -1).reshape(-1, 3), dtype=np.float64), t.reshape(-1),
                           reduction="none").data
    np.testing.assert_allclose(spatial, flat.reshape(2, 4, 2), rtol=1e-12)
    assert gradcheck(F.cross_entropy, x, t, label_smoothing=0.2)


def test_cross_entropy_very_negative_logits():
    x = np.array([[-1000.0, 0.0, 3.0], [5.0, -1000.0, -1000.0], [-1000.0, -1000.0, 0.0]])
    t = np.array([0, 1, 2])
    out = F.cross_entropy(Tensor(x, dtype=np.float64), t, reduction="none").data
    np.testing.assert_allclose(out, [1003 + np.log1p(np.exp(-3)), 1005.0, 0.0], rtol=1e-12, atol=1e-300)
    assert gradcheck(F.cross_entropy, x, t)
    f32 = F.cross_entropy(Tensor(x.astype(np.float32)), t)
    assert f32.dtype == np.float32 and np.isfinite(f32.item())


def test_cross_entropy_unbatched_sample(rng):
    x = rng.standard_normal(5)
    out = F.cross_entropy(Tensor(x, dtype=np.float64), np.array(3))
    np.testing.assert_allclose(out.data, -_log_softmax(x, axis=0)[3])
    assert gradcheck(F.cross_entropy, x, np.array(3), reduction="none")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64])
def test_cross_entropy_accepts_every_integer_target_dtype_and_range_checks_it(dtype, rng):
    x = rng.standard_normal((3, 4))
    expected = F.cross_entropy(Tensor(x, dtype=np.float64), np.array([0, 3, 1])).item()
    assert F.cross_entropy(Tensor(x, dtype=np.float64), np.array([0, 3, 1], dtype=dtype)).item() == expected
    with pytest.raises(IndexError, match=r"class index 4.*C=4"):
        F.cross_entropy(Tensor(x), np.array([0, 4, 1], dtype=dtype))
    if np.issubdtype(dtype, np.signedinteger):  # a negative class index is out of range too
        with pytest.raises(IndexError, match=r"class index -1.*C=4"):
            F.cross_entropy(Tensor(x), np.array([0, -1, 1], dtype=dtype))


def test_cross_entropy_errors_name_the_problem():
    logits = Tensor(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="integer class indices.*float32"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0], dtype=np.float32))
    with pytest.raises(ValueError, match=r"target shape \(3, 1\).*expected target shape \(3,\)"):
        F.cross_entropy(logits, np.zeros((3, 1), dtype=int))
    with pytest.raises(IndexError, match=r"class index 4.*C=4"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match=r"class index -1.*C=4"):
        F.cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(IndexError, match=r"class index 9"):
        F.cross_entropy(logits, np.array([0, 9, -100]), ignore_index=-100)
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(logits, np.array([0, 1, 2]), label_smoothing=1.5)


def test_nll_loss_of_log_softmax_equals_cross_entropy(rng):
    x, t = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    t[2] = -1
    logits = Tensor(x, dtype=np.float64)
    a = F.nll_loss(F.log_softmax(logits, axis=1), t, ignore_index=-1).data
    b = F.cross_entropy(logits, t, ignore_index=-1).data
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert gradcheck(F.nll_loss, x, t, ignore_index=-1)
    assert gradcheck(F.nll_loss, rng.standard_normal((2, 4, 3)), rng.integers(0, 4, (2, 3)), reduction="none")
    with pytest.raises(TypeError, match="nll_loss"):
        F.nll_loss(logits, t.astype(float))


def test_mean_over_no_counted_entries_is_nan_without_warning():
    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([-1, -1]), ignore_index=-1)
    assert np.isnan(loss.item())
    loss.backward()
    assert np.all(logits.grad.data == 0)


# ---- the flat-index fast path of the class losses compared with their plain path -------------
@pytest.mark.parametrize("loss_of", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("options", [{}, {"reduction": "none"}, {"reduction": "sum", "ignore_index": 2},
                                     {"label_smoothing": 0.2}, {"weight": np.array([0.5, 2.0, 1.0, 3.0])},
                                     {"weight": np.array([0.5, 2.0, 1.0, 3.0]), "reduction": "none"},
                                     {"weight": np.array([1.5, 0.2, 1.0, 1.0]), "ignore_index": 2,
                                      "label_smoothing": 0.2}])
def test_class_loss_fast_path_equals_plain_path(rng, monkeypatch, loss_of, options):
    from tinytorch_nn import classification_losses

    if loss_of is F.nll_loss and "label_smoothing" in options:
        return
    x, t = rng.standard_normal((5, 4)), np.array([0, 2, 3, 2, 1])
    results = []
    for flat in (True, False):  # (N, C) logits take the fast path unless it is switched off
        if not flat:
            monkeypatch.setattr(classification_losses, "_flat_positions", lambda x, target: None)
        logits = Tensor(x, requires_grad=True, dtype=np.float64)
        loss = loss_of(logits, t, **options)
        loss.sum().backward()
        results.append((loss.data, logits.grad.data))
        assert gradcheck(loss_of, x, t, **options)
    (fast, fast_grad), (plain, plain_grad) = results
    np.testing.assert_allclose(fast, plain, rtol=1e-14)
    np.testing.assert_allclose(fast_grad, plain_grad, rtol=1e-14, atol=1e-16)
