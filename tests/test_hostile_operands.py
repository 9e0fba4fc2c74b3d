"""Operands and options that used to give wrong answers or unclear errors: column-major logits
in cross-entropy, axes that are not ints (a 0-d tensor used to reduce over nothing), 0-d inputs
with axis 0, 0-d tensors joined."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import central_difference


@pytest.mark.parametrize("loss, options", [("cross_entropy", {}), ("cross_entropy", {"label_smoothing": 0.1}),
                                           ("nll_loss", {})])
def test_class_losses_give_the_right_gradient_for_column_major_logits(loss, options):
    stored = np.random.default_rng(0).standard_normal((5, 4))  # stored.T: column-major (4, 5) logits
    target = np.array([1, 0, 3, 2])
    w = Tensor(stored, requires_grad=True, dtype=np.float64)
    getattr(tt.ops, loss)(w.T, target, **options).backward()

    def objective():
        return getattr(tt.ops, loss)(Tensor(np.ascontiguousarray(stored.T), dtype=np.float64), target, **options).data.item()

    expected = np.array([[central_difference(objective, stored, (i, j)) for j in range(4)] for i in range(5)])
    np.testing.assert_allclose(w.grad.data, expected, atol=1e-6)  # was off by 1/N at every target


@pytest.mark.parametrize("call", [
    lambda x: tt.ops.sum(x, axis=Tensor(1)),
    lambda x: tt.ops.mean(x, axis=1.0),
    lambda x: x.var(np.array(1)),
    lambda x: x.max(axis=Tensor(0)),
    lambda x: x.squeeze(Tensor(0)),
    lambda x: x.unsqueeze(Tensor(0)),
    lambda x: x.unsqueeze(True),
    lambda x: x.swapaxes(True, 0),
    lambda x: x.transpose(2.0, 0, 1),
    lambda x: tt.stack([x, x], axis=True),
    lambda x: tt.concatenate([x, x], axis=1.0),
])
def test_an_axis_that_is_not_an_int_is_refused_naming_the_op(call):
    x = Tensor(np.arange(24.0).reshape(1, 4, 6))
    with pytest.raises(TypeError, match=r"^\w+: axis must be an int"):
        call(x)


@pytest.mark.parametrize("op", ["sum", "mean", "var", "max", "min"])
def test_axis_0_of_a_0d_tensor_is_the_tensor_itself(op):
    x = Tensor(np.float64(3.0), requires_grad=True)
    out = getattr(tt.ops, op)(x, axis=0)
    assert out.shape == () and out.data == (0.0 if op == "var" else 3.0)
    out.backward()
    assert x.grad.data == (0.0 if op == "var" else 1.0)


def test_0d_tensors_are_stacked_not_concatenated():
    assert tt.stack([Tensor(1.0), Tensor(2.0)]).shape == (2,)
    with pytest.raises(ValueError, match="concatenate: 0-d tensors have no axis to join along"):
        tt.concatenate([Tensor(1.0), Tensor(2.0)])


# ---- array subclasses, masked arrays, complex / object / text data ---------------------------------
def _matrix(array):
    with warnings.catch_warnings():  # np.matrix itself warns that it is deprecated
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix(array)


@pytest.mark.parametrize("call", [
    lambda a: tt.ops.mul(Tensor(np.asarray(a)), a),  # np.matrix's * is a matrix product
    lambda a: Tensor(np.asarray(a)) * a,
    lambda a: tt.ops.pow(a, 2),
    lambda a: tt.ops.gelu(a),
    lambda a: tt.ops.getitem(a, 0),  # a matrix row stays 2-D
    lambda a: tt.ops.sum(a),
    lambda a: tt.ops.softmax(a, axis=1),
])
def test_an_array_subclass_computes_what_a_plain_array_computes(call):
    plain = np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(call(_matrix(plain)).data, call(plain).data)


def test_masked_arrays_are_refused_not_unmasked():
    masked = np.ma.masked_array(np.arange(4.0), [1, 0, 0, 0])
    with pytest.raises(TypeError, match="core::add: argument 0: a masked array's mask would be ignored"):
        tt.ops.add(masked, 1.0)
    with pytest.raises(TypeError, match="Tensor: a masked array's mask would be ignored"):
        Tensor(masked)


@pytest.mark.parametrize("call, message", [
    (lambda x: x * np.array([1j, 0, 0]), "argument 1 holds complex128 data"),
    (lambda x: x * 2j, "argument 1 is the complex number 2j"),
    (lambda x: x + np.array([1.0, 2.0, 3.0], dtype=object), "argument 1 holds object data"),
    (lambda x: x.to(np.complex128), "cast: tensors hold float, int or bool data, not complex128"),
    (lambda x: x.to(object), "cast: tensors hold float, int or bool data, not object"),
    (lambda x: tt.ops.mse_loss(x, np.ones(3) + 0j), "mse_loss: target must hold numbers, got complex128"),
    (lambda x: tt.ops.binary_cross_entropy(x.sigmoid(), np.array(["a", "b", "c"])),
     "binary_cross_entropy: target must hold numbers"),
])
def test_complex_object_and_text_data_are_refused_naming_the_op(call, message):
    """They used to leave the graph (a complex result cannot require grad) or warn and drop
    the imaginary part."""
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(TypeError, match=message.replace("(", r"\(")):
        call(x)


def test_a_spatial_op_refuses_text_data_naming_the_op():
    try:
        conv = tt.ops.conv2d
    except tt.StageUnavailableError:
        pytest.skip("conv2d comes with stage spatial")
    with pytest.raises(TypeError, match="conv2d: input: expected float, int or bool data"):
        conv(np.full((1, 1, 3, 3), "a"), np.ones((1, 1, 1, 1)))


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_weights_that_require_grad_are_refused_not_dropped(loss):
    logits = Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    weight = Tensor(np.array([0.5, 1.0, 1.5]), requires_grad=True)
    with pytest.raises(TypeError, match=f"{loss}: the class weights require grad"):
        getattr(tt.ops, loss)(logits, np.array([0, 1, 2, 1]), weight=weight)
    with tt.no_grad():  # nothing to drop: accepted
        getattr(tt.ops, loss)(logits, np.array([0, 1, 2, 1]), weight=weight)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(3, 0), (0, 3)])
def test_softmax_of_an_empty_axis_is_empty(op, shape):
    """Was NumPy's "zero-size array to reduction operation maximum"."""
    x = Tensor(np.zeros(shape), requires_grad=True)
    out = getattr(tt.ops, op)(x, axis=1)
    out.sum().backward()
    assert out.shape == shape and x.grad.shape == shape
    with np.errstate(all="raise"):
        probabilities = tt.ops.softmax(Tensor(np.array([[np.nan, 1.0], [-np.inf, 0.0]])), axis=1).data
    assert np.isnan(probabilities[0]).all() and probabilities[1].tolist() == [0.0, 1.0]


# ---- in-place changes the graph does not need to refuse ------------------------------------------
def test_an_op_keeps_only_what_its_backward_reads_so_later_in_place_changes_stay_legal():
    """y * 3 and y / 2 keep nothing of y (PyTorch's rule), so y.add_(1) after them is legal; y * y
    keeps y, so the change is still refused."""
    x = Tensor(np.arange(4.0), requires_grad=True, dtype=np.float64)
    y = x * 1.0
    z = y * 3.0 + y / 2.0
    y.add_(1.0)
    (z.sum() + y.sum()).backward()
    np.testing.assert_array_equal(x.grad.data, np.full(4, 4.5))
    y = x * 1.0
    z = y * y
    y.add_(1.0)
    with pytest.raises(tt.GraphError, match="modified in place"):
        z.sum().backward()


def test_subtracting_a_tensor_from_itself_in_place_is_legal():
    x = Tensor(np.arange(4.0), requires_grad=True, dtype=np.float64)
    y = x * 2.0
    y -= y
    (y * x).sum().backward()  # d/dx (x * (2x - 2x)) = 0
    np.testing.assert_array_equal(y.data, np.zeros(4))
    np.testing.assert_array_equal(x.grad.data, np.zeros(4))


# ---- what backward reads must not change unseen ----------------------------------------------------
def _float64(values):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True, dtype=np.float64)


@pytest.mark.parametrize("change", [
    "max output", "min output", "where condition", "clip bound",
])
def test_changing_in_place_what_backward_reads_is_refused(change):
    """Each gave a wrong gradient (NaN for max/min, the new condition or bound for where/clip)."""
    x = _float64([[1.0, 5.0, 2.0], [7.0, 3.0, 4.0]])
    if change in ("max output", "min output"):
        out = x.max(axis=1) if change == "max output" else x.min(axis=1)
        with tt.no_grad():
            out.add_(100.0)  # the output viewed the array backward compares against
    elif change == "where condition":
        condition = x > 2.0
        out = tt.ops.where(condition, x, 0.0)
        condition[0, 0] = True
    else:
        low = Tensor(np.array(2.5), dtype=np.float64)
        out = x.clip(low, None)
        low.fill_(0.0)
    with pytest.raises(tt.GraphError, match="modified in place"):
        out.sum().backward()


def test_an_index_array_changed_after_indexing_does_not_move_the_gradient():
    x = _float64([1.0, 2.0, 3.0])
    index = np.array([0, 1])
    picked = x[index]
    index[0] = 2
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 0.0])


def test_a_hook_that_clips_one_gradient_leaves_the_other_branch_alone():
    a, b = _float64([3.0, 4.0]), _float64([1.0, 1.0])
    a.register_post_accumulate_grad_hook(lambda p: tt.optim.clip_grad_norm_([p], 1.0))
    ((a + b * 2.0) * Tensor(np.array([3.0, 4.0]), dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [6.0, 8.0])  # was [1.2, 1.6]: a's clip reached b's pending gradient


def test_fill_with_a_tensor_that_requires_grad_records_it():
    y = _float64([1.0, 2.0, 3.0]) * 1.0
    w = _float64(2.0)
    y.fill_(w)
    (y * Tensor(np.array([1.0, 2.0, 3.0]), dtype=np.float64)).sum().backward()
    assert w.grad.data == 6.0


def test_a_0d_bound_does_not_widen_clip():
    x = Tensor(np.array([0.1, 0.6, 2.0], np.float32))
    assert x.clip(Tensor(np.array(0.5), dtype=np.float64)).dtype == np.float32


@pytest.mark.parametrize("keepdims", ["no", Tensor(np.array(True)), 1])
def test_keepdims_must_be_a_bool(keepdims):
    with pytest.raises(TypeError, match="sum: keepdims must be True or False"):
        tt.ops.sum(Tensor(np.ones((2, 3))), axis=1, keepdims=keepdims)


def test_a_recorded_write_into_a_detached_tensor_is_refused_like_any_view():
    """It shares the memory of a tensor whose graph would not see the write (the error message
    always said so; the check missed it, and y's gradient was silently wrong)."""
    a = _float64([1.0, 2.0, 3.0])
    y = a * 2.0
    with pytest.raises(tt.GraphError, match="recording an in-place change of a view"):
        y.detach()[0:1] = _float64([9.0])
    detached = y.detach()
    with tt.no_grad():  # a plain write is still a write into the shared memory, as in PyTorch
        detached[0] = 5.0
    assert y.data.tolist() == [5.0, 4.0, 6.0]


@pytest.mark.parametrize("call, number", [(lambda: tt.ones(2, dtype=np.int8) + 300, "300"),
                                          (lambda: tt.ones(2, dtype=np.int32) * 2**40, str(2**40)),
                                          (lambda: tt.ones(2, dtype=np.uint8) - (-1), "-1"),
                                          (lambda: tt.ones(2, dtype=np.int64) + 2**70, "")])
def test_a_number_the_dtype_cannot_hold_is_refused_naming_the_op(call, number):
    """The op was named only in a note under NumPy's message."""
    with pytest.raises(OverflowError, match=r"core::(add|mul|sub): .*" + number + r".*a number the operands' dtype cannot hold"):
        call()


@pytest.mark.parametrize("write, error, message", [
    (lambda: tt.tensor(np.arange(3)).mul_(2.5), TypeError, "mul_: Cannot cast"),
    (lambda: tt.tensor(np.array([True, False])).add_(1), TypeError, "add_: Cannot cast"),
    (lambda: tt.tensor(np.arange(3, dtype=np.int8)).add_(300), OverflowError, "add_: Python integer 300"),
    (lambda: tt.zeros(3).__setitem__(5, 1.0), IndexError, "__setitem__: index 5 is out of bounds"),
    (lambda: tt.zeros(3).copy_(np.ones(2)), ValueError, r"copy_: source shape \(2,\) does not fit"),
    (lambda: tt.zeros(3).fill_("a"), ValueError, "fill_: could not convert"),
])
def test_a_plain_in_place_write_that_numpy_refuses_names_the_write(write, error, message):
    """NumPy's own errors named no op (and copy_ of a shape that does not broadcast raised
    NumPy's broadcast error)."""
    with pytest.raises(error, match=message):
        write()


def test_an_empty_list_indexes_nothing_as_in_numpy():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, dtype=np.float64)
    assert x[[]].shape == (0, 3) and x[:, []].shape == (2, 0)
    (x[[]].sum() + x[0].sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    y = tt.zeros(3)
    y[[]] = 5.0
    assert y.data.tolist() == [0.0, 0.0, 0.0]


def test_clip_bounds_that_require_grad_get_their_gradient():
    """The forward ran, then backward failed: clip returned None for the bounds' gradients."""
    from tinytorch_core.testing import gradcheck

    rng = np.random.default_rng(6)
    x = rng.uniform(-2.0, 2.0, (3, 5))
    assert gradcheck(lambda a, low, high: a.clip(low, high), x, np.full((3, 1), -0.5), np.full((1, 5), 0.7))
    a = Tensor([-1.0, 0.5, 2.0], requires_grad=True, dtype=np.float64)
    low = Tensor([0.0, 0.0, 0.0], requires_grad=True, dtype=np.float64)
    high = Tensor(1.0, requires_grad=True, dtype=np.float64)
    a.clip(low, high).sum().backward()
    assert (a.grad.data.tolist(), low.grad.data.tolist(), high.grad.item()) == ([0.0, 1.0, 0.0], [1.0, 0.0, 0.0], 1.0)


def test_max_and_min_of_a_nan_send_the_gradient_to_the_nan():
    """NaN == NaN is False: no position 'attained' the NaN maximum and every gradient was NaN."""
    x = Tensor([1.0, np.nan, 3.0], requires_grad=True, dtype=np.float64)
    x.max().backward()
    assert x.grad.data.tolist() == [0.0, 1.0, 0.0]
    y = Tensor([[1.0, np.nan], [3.0, 2.0]], requires_grad=True, dtype=np.float64)
    y.min(axis=1).sum().backward()
    assert y.grad.data.tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_a_0d_tensor_reduces_over_axis_minus_1_as_over_axis_0():
    x = Tensor(3.0, requires_grad=True, dtype=np.float64)
    for name in ("sum", "mean", "max", "min"):
        assert getattr(x, name)(axis=-1).item() == 3.0
    for name in ("max", "min"):  # PyTorch's dim: values and indices
        assert getattr(x, name)(dim=-1).values.item() == 3.0 and getattr(x, name)(-1).indices.item() == 0


def test_nan_gradients_follow_pytorchs_conventions():
    """At a NaN input, PyTorch's relu and maximum pass the gradient on and abs gives 0 (NumPy's
    sign of NaN is NaN). Values from torch 2.x: relu [1, 1, 0], abs [0, 1, -1]."""
    x = Tensor([np.nan, 1.0, -1.0], requires_grad=True, dtype=np.float64)
    tt.ops.relu(x).sum().backward()
    assert x.grad.data.tolist() == [1.0, 1.0, 0.0]
    x.grad = None
    x.abs().sum().backward()
    assert x.grad.data.tolist() == [0.0, 1.0, -1.0]
    a = Tensor([np.nan, 1.0, 2.0, 3.0], requires_grad=True, dtype=np.float64)
    b = Tensor([0.0, np.nan, 2.0, 1.0], requires_grad=True, dtype=np.float64)
    tt.maximum(a, b).sum().backward()  # beside a NaN both operands get it; ties split it
    assert a.grad.data.tolist() == [1.0, 1.0, 0.5, 1.0] and b.grad.data.tolist() == [1.0, 1.0, 0.5, 0.0]
    a.grad = b.grad = None
    tt.minimum(a, b).sum().backward()
    assert a.grad.data.tolist() == [1.0, 1.0, 0.5, 0.0] and b.grad.data.tolist() == [1.0, 1.0, 0.5, 1.0]
