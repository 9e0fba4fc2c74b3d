"""The PyTorch options of the nn ops: ``dim=`` on softmax and log-softmax, class ``weight`` on
cross-entropy and NLL, and class-probability ("soft") targets in cross-entropy. Each is checked
against an independent formula written here, a hand-computed case, and finite differences."""

import math

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck
from tinytorch_nn import CrossEntropyLoss, LogSoftmax, NLLLoss, Softmax
from tinytorch_nn import functional as F


@pytest.fixture
def rng():
    return np.random.default_rng(4321)


pytestmark = pytest.mark.filterwarnings("error")  # a warning in any test here is a failure


def _f64(x, requires_grad=False):
    return Tensor(x, dtype=np.float64, requires_grad=requires_grad)


def _log_softmax(x, axis=1):
    """log p by the textbook formula, with nothing shared with the op under test."""
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---- softmax(dim=...) ------------------------------------------------------------------------
def test_softmax_and_log_softmax_take_dim_as_axis(rng):
    x = rng.standard_normal((2, 3, 4))
    expected = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(F.softmax(_f64(x), dim=1).data, expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(_f64(x), dim=1).data, np.log(expected), rtol=1e-12)
    np.testing.assert_allclose(F.softmax(_f64(x), dim=-1).data, F.softmax(_f64(x), axis=-1).data, rtol=0)
    # no axis: the last one up to 2-D (PyTorch's implicit choice too); from 3-D on PyTorch would pick dim 0
    # (3-D) or 1 (4-D): the axis must be given
    np.testing.assert_allclose(F.softmax(_f64(x[0])).data, F.softmax(_f64(x[0]), 1).data, rtol=0)
    for call in (F.softmax, F.log_softmax, Softmax(), LogSoftmax()):
        with pytest.raises(ValueError, match="give the axis .* for an input of 3 dimensions"):
            call(_f64(x))
    assert gradcheck(F.softmax, x, dim=1)
    assert gradcheck(F.log_softmax, x, dim=0)


def test_softmax_known_answer():
    # softmax([0, ln 2, ln 5]) = [1, 2, 5] / 8
    x = np.array([[0.0, math.log(2.0)], [math.log(5.0), 0.0]])
    np.testing.assert_allclose(F.softmax(_f64(x), dim=0).data, [[1 / 6, 2 / 3], [5 / 6, 1 / 3]], rtol=1e-12)


def test_softmax_dim_is_a_method_keyword_and_a_layer_argument(rng):
    x = _f64(rng.standard_normal((3, 4)))
    np.testing.assert_allclose(x.softmax(dim=0).data, F.softmax(x, axis=0).data, rtol=0)
    np.testing.assert_allclose(x.softmax(1).data, F.softmax(x, axis=1).data, rtol=0)
    np.testing.assert_allclose(x.log_softmax(dim=0).data, F.log_softmax(x, axis=0).data, rtol=0)
    np.testing.assert_allclose(Softmax(dim=0)(x).data, F.softmax(x, axis=0).data, rtol=0)
    np.testing.assert_allclose(LogSoftmax(dim=0)(x).data, F.log_softmax(x, axis=0).data, rtol=0)
    assert repr(Softmax(dim=0)) == "Softmax(axis=0)" and repr(LogSoftmax()) == "LogSoftmax(axis=None)"


def test_softmax_axis_and_dim_together_is_an_error():
    x = Tensor(np.zeros((2, 3)))
    for call in (lambda: F.softmax(x, axis=0, dim=0), lambda: F.log_softmax(x, 1, dim=1),
                 lambda: Softmax(axis=0, dim=0), lambda: LogSoftmax(axis=0, dim=1)):
        with pytest.raises(TypeError, match="axis or dim"):
            call()
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        F.softmax(x, dim=2)


# ---- class weights ---------------------------------------------------------------------------
def _weighted_ce(x, t, w, eps=0.0, keep=None):
    """PyTorch's weighted, label-smoothed cross-entropy per entry, and its mean's divisor."""
    logp = _log_softmax(x)
    n_classes = x.shape[1]
    rows = np.arange(len(t))
    per_entry = (1 - eps) * w[t] * -logp[rows, t] + eps / n_classes * (w * -logp).sum(axis=1)
    keep = np.ones(len(t), bool) if keep is None else keep
    return per_entry * keep, w[t][keep].sum()


def test_class_weights_known_answer():
    # equal logits: -log p = ln 2 for each entry, times its class weight; the mean divides by 1 + 3
    x, t, w = np.zeros((2, 2)), np.array([0, 1]), np.array([1.0, 3.0])
    assert F.cross_entropy(_f64(x), t, weight=w).item() == pytest.approx(math.log(2))
    assert F.cross_entropy(_f64(x), t, weight=w, reduction="sum").item() == pytest.approx(4 * math.log(2))
    np.testing.assert_allclose(F.cross_entropy(_f64(x), t, weight=w, reduction="none").data,
                               [math.log(2), 3 * math.log(2)], rtol=1e-12)
    assert F.nll_loss(_f64([[-1.0, -2.0], [-3.0, -4.0]]), t, weight=w).item() == pytest.approx((1 + 12) / 4)


@pytest.mark.parametrize("eps", [0.0, 0.25])
def test_weighted_cross_entropy_matches_pytorch_formula(rng, eps):
    x, t, w = rng.standard_normal((6, 4)), rng.integers(0, 4, 6), rng.uniform(0.1, 3.0, 4)
    per_entry, divisor = _weighted_ce(x, t, w, eps)
    out = F.cross_entropy(_f64(x), t, weight=w, label_smoothing=eps, reduction="none").data
    np.testing.assert_allclose(out, per_entry, rtol=1e-12)
    mean = F.cross_entropy(_f64(x), t, weight=w, label_smoothing=eps).item()
    assert mean == pytest.approx(per_entry.sum() / divisor, rel=1e-12)
    for reduction in ("mean", "sum", "none"):
        assert gradcheck(F.cross_entropy, x, t, weight=w, label_smoothing=eps, reduction=reduction)


def test_weighted_cross_entropy_leaves_ignored_targets_out_of_the_divisor(rng):
    x, w = rng.standard_normal((5, 3)), np.array([0.5, 2.0, 1.0])
    t = np.array([2, -1, 0, 1, -1])
    keep = t != -1
    per_entry, divisor = _weighted_ce(x, np.where(keep, t, 0), w, 0.1, keep)
    out = F.cross_entropy(_f64(x), t, weight=w, ignore_index=-1, label_smoothing=0.1)
    assert out.item() == pytest.approx(per_entry.sum() / divisor, rel=1e-12)
    assert divisor == pytest.approx(1.0 + 0.5 + 2.0)
    assert gradcheck(F.cross_entropy, x, t, weight=w, ignore_index=-1, label_smoothing=0.1)


def test_weighted_class_losses_spatial_and_unbatched(rng):
    x, t, w = rng.standard_normal((2, 3, 4)), rng.integers(0, 3, (2, 4)), rng.uniform(0.1, 3.0, 3)
    flat_x, flat_t = np.moveaxis(x, 1, -1).reshape(-1, 3), t.reshape(-1)
    for loss_of in (F.cross_entropy, F.nll_loss):
        spatial = loss_of(_f64(x), t, weight=w).item()
        assert spatial == pytest.approx(loss_of(_f64(flat_x), flat_t, weight=w).item(), rel=1e-12)
        assert gradcheck(loss_of, x, t, weight=w)
        assert gradcheck(loss_of, x[0, :, 0], t[0, 0], weight=w, reduction="none")  # one (C,) sample
    # nll of log-softmax is cross-entropy, weights included
    a = F.nll_loss(F.log_softmax(_f64(flat_x), dim=1), flat_t, weight=w).item()
    assert a == pytest.approx(F.cross_entropy(_f64(flat_x), flat_t, weight=w).item(), rel=1e-12)


def test_class_weights_keep_float32_and_reach_the_loss_modules(rng):
    x, t, w = rng.standard_normal((4, 3)).astype(np.float32), np.array([0, 2, 1, 2]), np.array([1.0, 0.5, 2.0])
    for module, loss_of in ((CrossEntropyLoss(weight=w, label_smoothing=0.1), F.cross_entropy),
                            (NLLLoss(weight=w, reduction="sum"), F.nll_loss)):
        logits = Tensor(x, requires_grad=True)
        out = module(logits, t)
        out.backward()
        assert out.dtype == np.float32 and logits.grad.dtype == np.float32
        options = {"label_smoothing": 0.1} if loss_of is F.cross_entropy else {"reduction": "sum"}
        assert out.item() == loss_of(Tensor(x), t, weight=w, **options).item()
    assert "weight=(1, 0.5, 2)" in repr(CrossEntropyLoss(weight=w))


def test_class_weight_errors_name_the_problem():
    x, t = Tensor(np.zeros((3, 4))), np.array([0, 1, 2])
    for loss_of in (F.cross_entropy, F.nll_loss):
        with pytest.raises(ValueError, match=r"weight must have shape \(C,\) = \(4,\).*got shape \(3,\)"):
            loss_of(x, t, weight=np.ones(3))
        with pytest.raises(TypeError, match="weight must be a floating-point array.*int64"):
            loss_of(x, t, weight=np.ones(4, dtype=np.int64))
        with pytest.raises(ValueError, match="finite and non-negative"):
            loss_of(x, t, weight=np.array([1.0, -1.0, 1.0, 1.0]))
        with pytest.raises(ValueError, match="finite and non-negative"):
            loss_of(x, t, weight=np.array([1.0, np.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match="class axis"):
        F.cross_entropy(Tensor(np.array(1.0)), np.array(0), weight=np.ones(1))
    # PyTorch's positional weight lands on ignore_index here: the error names the keyword
    with pytest.raises(TypeError, match="ignore_index must be an int.*weight="):
        CrossEntropyLoss(np.ones(4))
    with pytest.raises(TypeError, match="ignore_index must be an int.*weight="):
        F.nll_loss(x, t, np.ones(4))


# ---- class-probability targets ---------------------------------------------------------------
def _probabilities(rng, shape, axis=1):
    p = rng.uniform(0.0, 1.0, shape)
    return p / p.sum(axis=axis, keepdims=True)


def test_soft_targets_known_answer():
    # equal logits: log p = -ln 4 for each class, whatever the distribution
    x, t = np.zeros((2, 4)), np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    assert F.cross_entropy(_f64(x), t).item() == pytest.approx(math.log(4))
    # logits (0, ln 3): p = (1/4, 3/4); target (1/2, 1/2): loss = (ln 4 + ln 4/3) / 2
    out = F.cross_entropy(_f64([0.0, math.log(3.0)]), np.array([0.5, 0.5]))
    assert out.item() == pytest.approx((math.log(4) + math.log(4 / 3)) / 2)


def test_soft_targets_match_the_formula_and_one_hot_rows_match_class_indices(rng):
    x, t = rng.standard_normal((5, 4)), _probabilities(rng, (5, 4))
    expected = -(t * _log_softmax(x)).sum(axis=1)
    np.testing.assert_allclose(F.cross_entropy(_f64(x), t, reduction="none").data, expected, rtol=1e-12)
    assert F.cross_entropy(_f64(x), t).item() == pytest.approx(expected.mean(), rel=1e-12)
    classes = rng.integers(0, 4, 5)
    one_hot = np.eye(4)[classes]
    for eps in (0.0, 0.2):
        soft = F.cross_entropy(_f64(x), one_hot, label_smoothing=eps).item()
        assert soft == pytest.approx(F.cross_entropy(_f64(x), classes, label_smoothing=eps).item(), rel=1e-12)
    assert gradcheck(F.cross_entropy, x, t)  # the target is differentiated too
    assert gradcheck(F.cross_entropy, x, t, reduction="none")


def test_soft_targets_with_smoothing_and_weights_follow_pytorch(rng):
    x, t, w, eps = rng.standard_normal((4, 3)), _probabilities(rng, (4, 3)), rng.uniform(0.1, 3.0, 3), 0.3
    smoothed = (1 - eps) * t + eps / 3
    per_entry = -(w * smoothed * _log_softmax(x)).sum(axis=1)
    out = F.cross_entropy(_f64(x), t, weight=w, label_smoothing=eps)
    assert out.item() == pytest.approx(per_entry.mean(), rel=1e-12)  # the mean divides by N, not by weights
    assert gradcheck(F.cross_entropy, x, t, weight=w, label_smoothing=eps)
    assert gradcheck(F.cross_entropy, x, t, weight=w, label_smoothing=eps, reduction="sum")


def test_soft_targets_spatial_unbatched_and_target_gradient(rng):
    x, t = rng.standard_normal((2, 3, 4)), _probabilities(rng, (2, 3, 4))
    flat = F.cross_entropy(_f64(np.moveaxis(x, 1, -1).reshape(-1, 3)), np.moveaxis(t, 1, -1).reshape(-1, 3))
    assert F.cross_entropy(_f64(x), t).item() == pytest.approx(flat.item(), rel=1e-12)
    assert gradcheck(F.cross_entropy, x, t, label_smoothing=0.1)
    assert gradcheck(F.cross_entropy, x[0, :, 0], t[0, :, 0], reduction="none")
    logits, target = _f64(x[:, :, 0], True), _f64(t[:, :, 0], True)
    F.cross_entropy(logits, target).backward()
    np.testing.assert_allclose(target.grad.data, -_log_softmax(x[:, :, 0]) / 2, rtol=1e-12)
    p = np.exp(_log_softmax(x[:, :, 0]))
    np.testing.assert_allclose(logits.grad.data, (p - t[:, :, 0]) / 2, rtol=1e-12)


def test_soft_targets_promote_as_every_loss_and_work_in_the_module(rng):
    """A float64 target with float32 logits gives a float64 loss, as in PyTorch and as the other
    losses do (it was float32); the logits' gradient stays float32."""
    x, t = rng.standard_normal((3, 4)).astype(np.float32), _probabilities(rng, (3, 4))  # float64 target
    logits = Tensor(x, requires_grad=True)
    out = CrossEntropyLoss(label_smoothing=0.1)(logits, t)
    out.backward()
    assert out.dtype == np.float64 and logits.grad.dtype == np.float32
    assert out.item() == pytest.approx(F.cross_entropy(_f64(x), t, label_smoothing=0.1).item(), rel=1e-12)
    same = CrossEntropyLoss(label_smoothing=0.1)(Tensor(x), t.astype(np.float32))
    assert same.dtype == np.float32


def test_soft_target_errors_name_the_problem(rng):
    x = Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="ignore_index=2 names a class index.*probabilities"):
        F.cross_entropy(x, np.full((3, 4), 0.25), ignore_index=2)
    F.cross_entropy(x, np.full((3, 4), 0.25), ignore_index=-100)  # the default, as PyTorch leaves it unused
    for bad in ([1.5, -0.5, 0.0, 0.0], [np.nan, 1.0, 0.0, 0.0], [np.inf, 1.0, 0.0, 0.0], [5.0, 1.0, 0.0, 0.0]):
        with pytest.raises(ValueError, match=r"class probabilities in the target must lie in \[0, 1\]"):
            F.cross_entropy(x, np.array([bad] * 3))  # NaN, inf and 5 gave a loss of NaN, inf or 4.16
    with pytest.raises(TypeError, match=r"integer class indices.*probabilities.*input's shape \(3, 4\)"):
        F.cross_entropy(x, np.full((3, 2), 0.5))
    with pytest.raises(TypeError, match="nll_loss takes no class probabilities"):
        F.nll_loss(x, np.full((3, 4), 0.25))


# ---- binary cross-entropy: weight and pos_weight -----------------------------------------------------
def _softplus(x):
    return np.logaddexp(0.0, x)


def test_bce_with_logits_weight_and_pos_weight_follow_pytorchs_formula():
    """``-w [p t log s + (1 - t) log(1 - s)]``: PyTorch's definition, written out with NumPy."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((4, 3)) * 4, rng.uniform(0, 1, (4, 3))
    weight, pos_weight = rng.uniform(0.5, 2.0, (4, 1)), np.array([0.5, 2.0, 3.0])
    expected = weight * (pos_weight * t * _softplus(-x) + (1 - t) * _softplus(x))
    as64 = lambda a: tt.Tensor(a, dtype=np.float64)  # noqa: E731
    got = F.binary_cross_entropy_with_logits(as64(x), as64(t), "none", weight=as64(weight), pos_weight=as64(pos_weight))
    np.testing.assert_allclose(got.data, expected, rtol=1e-12)
    layer = tt.nn.BCEWithLogitsLoss(pos_weight=as64(pos_weight))
    np.testing.assert_allclose(layer(as64(x), as64(t)).item(), (pos_weight * t * _softplus(-x) + (1 - t) * _softplus(x)).mean())
    p = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(tt.nn.BCELoss(reduction="sum", weight=as64(weight))(as64(p), as64(t)).item(),
                               (weight * -(t * np.log(p) + (1 - t) * np.log1p(-p))).sum(), rtol=1e-10)
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=as64(weight), pos_weight=as64(pos_weight)),
                     x, t)


def test_bce_weights_that_do_not_fit_are_refused():
    x, t = tt.Tensor(np.zeros((2, 3))), tt.Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast to the input's shape \(2, 3\)"):
        F.binary_cross_entropy_with_logits(x, t, pos_weight=tt.Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="weight requires grad; it is a constant of the loss here"):
        F.binary_cross_entropy(tt.Tensor(np.full((2, 3), 0.5)), t, weight=tt.Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(ValueError, match="weight must be finite"):
        F.binary_cross_entropy_with_logits(x, t, weight=tt.Tensor(np.array([1.0, np.nan, 1.0])))


def test_bce_keeps_the_precision_of_a_tiny_loss():
    """The form with one product cancelled: p = 1 - 6e-8 (float32) and t = 1 gave a loss of 0."""
    p = 1 - 6e-8
    loss = F.binary_cross_entropy(tt.Tensor(np.array([p], np.float32)), tt.Tensor(np.array([1.0], np.float32)))
    np.testing.assert_allclose(loss.item(), -math.log(np.float32(p)), rtol=1e-3)
    tiny = F.binary_cross_entropy(tt.Tensor(np.array([1 - 1e-13]), dtype=np.float64), tt.Tensor(np.array([1.0]), dtype=np.float64))
    np.testing.assert_allclose(tiny.item(), -math.log(1 - 1e-13), rtol=1e-9)  # of the float 1 - 1e-13 rounds to


def test_a_weight_in_pytorchs_positional_place_is_named():
    """``F.binary_cross_entropy(p, t, w)`` read w as the reduction: NumPy's 'ufunc equal' error."""
    p, t = tt.Tensor([0.5, 0.5]), tt.Tensor([1.0, 0.0])
    with pytest.raises(TypeError, match="reduction must be one of .* got a Tensor; pass weights as weight="):
        F.binary_cross_entropy(p, t, tt.Tensor([2.0, 1.0]))
    with pytest.raises(TypeError, match="got a ndarray"):
        tt.nn.BCEWithLogitsLoss(np.ones(2))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_a_mean_over_class_weights_summing_to_zero_has_a_nan_gradient_as_its_loss(label_smoothing):
    """The loss was NaN (0 / 0) but its gradient zeros, or with smoothing the finite gradient of
    reduction='sum': an optimizer stepped on a NaN loss."""
    x = _f64(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    target, weight = np.array([0, 0, 1, 1]), np.array([0.0, 0.0, 1.0])
    loss = F.cross_entropy(x, target, weight=weight, label_smoothing=label_smoothing)
    loss.backward()
    assert math.isnan(loss.item()) and np.isnan(x.grad.data).all()  # PyTorch: NaN and NaN


def test_entries_ignored_keep_a_zero_gradient_when_the_mean_is_nan():
    x = _f64(np.random.default_rng(0).standard_normal((3, 3)), requires_grad=True)
    loss = F.cross_entropy(x, np.array([0, -100, 1]), weight=np.array([0.0, 1.0, 1.0]) * 0)
    loss.backward()
    assert np.isnan(x.grad.data[[0, 2]]).all() and (x.grad.data[1] == 0).all()  # PyTorch's


def test_an_ignored_entry_with_nan_logits_counts_for_nothing():
    """NaN * 0 is NaN: the mean loss and every gradient came out NaN (PyTorch gives 1.386 here)."""
    x = _f64(np.zeros((2, 4)), requires_grad=True)
    x.data[1] = np.nan
    loss = F.cross_entropy(x, np.array([0, -100]))
    loss.backward()
    assert loss.item() == pytest.approx(math.log(4))
    assert np.isfinite(x.grad.data).all() and (x.grad.data[1] == 0).all()
