"""Operands and options that used to give wrong answers or unclear errors: column-major logits
in cross-entropy, axes that are not ints (a 0-d tensor used to reduce over nothing), 0-d inputs
with axis 0, 0-d tensors joined."""

from __future__ import annotations

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
