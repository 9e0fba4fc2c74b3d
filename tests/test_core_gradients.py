"""Gradients of core ops reached through Tensor methods and operators, against finite differences."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core.testing import GradcheckError, central_difference, gradcheck

rng = np.random.default_rng(1)


def r(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, size=shape)


@pytest.mark.parametrize(
    "fn, args",
    [
        (lambda a, b: a + b, (r(3, 1), r(1, 4))),
        (lambda a, b: a - b, (r(2, 3), r(3))),
        (lambda a, b: b - a, (r(2, 3), r(3))),
        (lambda a, b: a * b, (r(2, 3, 4), r(3, 1))),
        (lambda a, b: a / b, (r(3, 4), pos(4))),
        (lambda a, b: b / a, (pos(3, 4), r(4))),
        (lambda a: 3.0 - a, (r(3),)),
        (lambda a: 2.0 / a, (pos(3),)),
        (lambda a: a**3, (r(4),)),
        (lambda a: 2.0**a, (r(4),)),
        (lambda a, b: a**b, (pos(3), r(3))),
        (lambda a: -a, (r(2, 2),)),
        (lambda a, b: a @ b, (r(2, 3, 4), r(4, 5))),
        (lambda a, b: a @ b, (r(4), r(3, 4, 2))),
        (lambda a: a.exp().log(), (r(3, 3),)),
        (lambda a: (a * a + 1.0).sqrt(), (r(5),)),
        (lambda a, b: tt.maximum(a, b), (r(4), r(4) + 3.0)),
        (lambda a: a.sum(axis=(0, 2), keepdims=True), (r(2, 3, 4),)),
        (lambda a: a.mean(axis=-1), (r(2, 3, 4),)),
        (lambda a: a.var(axis=(0, 1)), (r(3, 4, 2),)),
        (lambda a: a.var(ddof=1), (r(6),)),
        (lambda a: a.T @ a, (r(3, 2),)),
        (lambda a: a.permute(2, 0, 1).reshape(4, -1), (r(2, 3, 4),)),
        (lambda a: a.swapaxes(0, 2), (r(2, 3, 4),)),
        (lambda a: a.unsqueeze(1).squeeze(), (r(3, 4),)),
        (lambda a: a.broadcast_to((2, 3, 4)), (r(3, 1),)),
        (lambda a: a[1, :, None], (r(3, 4),)),
        (lambda a: a[np.array([0, 0, 2]), 1:], (r(3, 4),)),
        (lambda a, b: tt.stack([a, b], axis=1), (r(2, 3), r(2, 3))),
        (lambda a, b: tt.concatenate([a, b], axis=0), (r(2, 3), r(1, 3))),
        (lambda a, b: tt.where(a > 0, a, b), (r(4, 4), r(4))),
    ],
)
def test_gradients_match_finite_differences(fn, args):
    assert gradcheck(fn, *args, atol=1e-5, rtol=1e-4)


def test_max_with_ties_splits_the_gradient_evenly():
    x = tt.Tensor([1.0, 3.0, 3.0], requires_grad=True, dtype=np.float64)
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.5, 0.5])


def test_gradcheck_catches_a_wrong_backward_and_names_the_input():
    class WrongSquare(tt.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * a  # should be 2 * a

    with pytest.raises(GradcheckError, match=r"WrongSquare.*input 0"):
        gradcheck(WrongSquare.apply, r(3), label="WrongSquare")


def test_gradcheck_catches_an_op_that_drops_its_gradient():
    class Detaching(tt.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    def dropped(x):
        return tt.Tensor(Detaching.apply(x).data, dtype=np.float64)  # result rebuilt: graph lost

    with pytest.raises(GradcheckError, match="carries no gradient"):
        gradcheck(dropped, r(3))


def test_gradcheck_names_an_op_whose_float_input_gives_only_integer_outputs():
    """A plugin op returning integers for float input was reported as "'NoneType' object has no
    attribute 'backward'" by ``tinytorch check``."""
    class Rounding(tt.Function):
        @staticmethod
        def forward(ctx, a):
            return a.astype(np.int64)

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(GradcheckError, match="returned only int64 output"):
        gradcheck(Rounding.apply, r(3))


def test_cast_gradient_comes_back_in_the_input_dtype():
    x = tt.Tensor([1.0, 2.0], requires_grad=True)  # float32
    (x.to(np.float64) * 3.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_central_difference_estimates_the_slope_and_restores_the_entry():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    slope = central_difference(lambda: float(np.sum(a**3)), a, (1, 0), eps=1e-5)
    assert slope == pytest.approx(3 * 3.0**2, rel=1e-8)  # d(x^3)/dx at x = 3
    np.testing.assert_array_equal(a, [[1.0, 2.0], [3.0, 4.0]])
