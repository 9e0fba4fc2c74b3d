"""Tensor construction, metadata, printing, comparisons, and forward results against NumPy."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor


def test_float_data_defaults_to_float32_and_integers_stay_integer():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([[1.0, 2.0]]).dtype == np.float32
    assert Tensor(np.zeros(3, dtype=np.float64)).dtype == np.float32
    assert Tensor(np.zeros(3), dtype=np.float64).dtype == np.float64
    assert Tensor([1, 2, 3]).dtype.kind == "i"
    assert Tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32
    assert Tensor([True, False]).dtype == np.bool_


def test_constructor_copies_its_input():
    source = np.ones(3, dtype=np.float32)
    t = Tensor(source)
    source[0] = 5
    assert t.data[0] == 1


def test_metadata_and_conversions():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert (t.shape, t.ndim, t.numel(), t.size(), t.size(1), t.dim()) == ((2, 3), 2, 6, (2, 3), 3, 2)
    assert t.T.shape == (3, 2)
    assert Tensor([4.0]).item() == 4.0
    assert isinstance(t.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="6 elements"):
        t.item()


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="floating"):
        Tensor([1, 2], requires_grad=True)


def test_detach_shares_data_but_not_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.0).detach()
    assert not y.requires_grad and y.grad_fn is None


def test_repr_shows_data_and_grad_fn():
    x = Tensor([1.0, 2.0], requires_grad=True)
    text = repr(x * 2.0)
    assert "2." in text and "4." in text and "grad_fn=<core::mul>" in text
    assert "requires_grad=True" in repr(x)


def test_comparisons_return_bool_tensors_without_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result in (x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2):
        assert result.dtype == np.bool_ and not result.requires_grad
    np.testing.assert_array_equal((x > 1.5).data, [False, True, True])


def test_tensors_hash_by_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2


def test_numpy_array_on_the_left_dispatches_to_tensor():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], dtype=np.float32) * x
    assert isinstance(y, Tensor) and y.requires_grad


RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4)).astype(np.float32)


@pytest.mark.parametrize(
    "op, reference",
    [
        (lambda t: t + 1, lambda a: a + 1),
        (lambda t: 2 - t, lambda a: 2 - a),
        (lambda t: t * t, lambda a: a * a),
        (lambda t: 1 / (t.abs() + 1), lambda a: 1 / (np.abs(a) + 1)),
        (lambda t: t ** 2, lambda a: a**2),
        (lambda t: -t, lambda a: -a),
        (lambda t: t @ t.T, lambda a: a @ a.T),
        (lambda t: t.exp(), np.exp),
        (lambda t: t.abs().sqrt(), lambda a: np.sqrt(np.abs(a))),
        (lambda t: t.clip(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5)),
        (lambda t: tt.where(t > 0, t, t * 2), lambda a: np.where(a > 0, a, a * 2)),
        (lambda t: t.sum(axis=(0, 1)), lambda a: a.sum(axis=(0, 1))),
        (lambda t: t.mean(axis=1, keepdims=True), lambda a: a.mean(axis=1, keepdims=True)),
        (lambda t: t.max(axis=0), lambda a: a.max(axis=0)),
        (lambda t: t.min(), lambda a: a.min()),
        (lambda t: t.var(axis=1), lambda a: a.var(axis=1)),
        (lambda t: t.reshape(2, -1), lambda a: a.reshape(2, -1)),
        (lambda t: t.permute(1, 0), lambda a: a.transpose(1, 0)),
        (lambda t: t.swapaxes(0, 1), lambda a: a.swapaxes(0, 1)),
        (lambda t: t.unsqueeze(0).squeeze(0), lambda a: a),
        (lambda t: t.broadcast_to((2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4))),
        (lambda t: t[1:, ::2], lambda a: a[1:, ::2]),
        (lambda t: t[None, ..., 1], lambda a: a[None, ..., 1]),
        (lambda t: t[np.array([2, 0, 0])], lambda a: a[np.array([2, 0, 0])]),
        (lambda t: t[t > 0], lambda a: a[a > 0]),
        (lambda t: tt.concatenate([t, t], axis=1), lambda a: np.concatenate([a, a], axis=1)),
        (lambda t: tt.stack([t, t], axis=0), lambda a: np.stack([a, a], axis=0)),
        (lambda t: tt.maximum(t, 0.0), lambda a: np.maximum(a, 0.0)),
    ],
)
def test_forward_matches_numpy_and_keeps_float32(op, reference):
    out = op(Tensor(A))
    expected = reference(A)
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 2))), r"matmul: shapes \(2, 3\) and \(4, 2\)"),
        (lambda: Tensor(np.ones((2, 3))).reshape(4, 2), r"reshape: cannot reshape.*\(2, 3\)"),
        (lambda: Tensor(np.ones((2, 3))).sum(axis=2), "axis 2 is out of range"),
        (lambda: Tensor(np.ones((2, 3))).squeeze(axis=0), "axis 0 has size 2"),
        (lambda: Tensor(np.ones((2, 3))).broadcast_to((4, 2)), r"\(2, 3\) cannot be broadcast to \(4, 2\)"),
        (lambda: tt.concatenate([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))]), "concatenate"),
        (lambda: tt.where(Tensor([1.0]), Tensor([1.0]), 0.0), "bool"),
        (lambda: Tensor(np.ones((2, 3))).permute(0, 0), "permutation"),
    ],
)
def test_bad_shapes_give_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_as_tensor_shares_memory_and_keeps_dtype():
    source = np.arange(4.0)
    t = tt.as_tensor(source)
    assert t.dtype == np.float64 and np.shares_memory(t.data, source)
    assert tt.as_tensor([1, 2]).dtype.kind == "i"


def test_in_place_updates_bump_the_version_and_apply_alpha():
    t = Tensor([1.0, 2.0])
    t.add_(Tensor([1.0, 1.0]), alpha=-2)
    t.sub_(1.0)
    np.testing.assert_allclose(t.data, [-2.0, -1.0])
    first = t._version
    t.add_(1.0)
    assert 0 < first < t._version  # 0 until changed, larger after every change
