"""Misuses of a tensor that gave a wrong answer or a raw NumPy error: an integer leaf made to
require grad by hand, ``numpy()`` of a tensor in the graph, a ``.grad`` set by hand, uint64 beside
signed integers, bool arithmetic PyTorch refuses, and float division by an integer zero."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import GraphError, Tensor


def test_requires_grad_set_by_hand_is_checked_as_requires_grad_does():
    """``i.requires_grad = True`` bypassed ``requires_grad_``'s check (backward stored the
    gradient 2.5 truncated to 2 in an int64 ``.grad``), and ``y.requires_grad = False`` on a
    computed tensor cut the graph: ``x.grad`` came out [3, 5] for [5, 9]."""
    i = Tensor([1, 2])
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        i.requires_grad = True
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="non-leaf tensor; use .detach"):
        y.requires_grad = False
    with pytest.raises(TypeError, match="requires_grad must be True or False, got 'no'"):
        x.requires_grad = "no"
    ((y + 1) * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [5.0, 9.0])
    with pytest.raises(TypeError, match="Tensor: requires_grad must be True or False, got 'yes'"):
        Tensor([1.0], requires_grad="yes")


def test_numpy_of_a_tensor_that_requires_grad_is_refused_as_in_pytorch():
    """A write into the shared array changed what backward read: x.grad came out 10x, silently."""
    x = Tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)
    y = x * 1
    with pytest.raises(RuntimeError, match=r"numpy\(\): the tensor requires grad"):
        y.numpy()
    with pytest.raises(RuntimeError, match="use tensor.detach"):
        x.numpy()
    assert y.detach().numpy().tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("grad, said", [
    (lambda: Tensor(np.ones(3, np.float32)), "is a float32 tensor of shape (3,); expected a float Tensor of shape (2, 3)"),
    (lambda: np.ones((2, 3), np.float32), "is a ndarray; expected"),
    (lambda: "abc", "is a str; expected"),
    (lambda: Tensor(np.ones((2, 3), np.int64)), "is a int64 tensor of shape (2, 3)"),
], ids=["wrong-shape", "array", "text", "integer"])
def test_a_grad_set_by_hand_must_fit_its_parameter(grad, said):
    """A (3,) grad on a (2, 3) weight broadcast into the update: every row moved by it. (A float64
    gradient of a float32 parameter is fine: the update casts it.)"""
    layer = tt.nn.Linear(3, 2)
    layer.bias.grad = Tensor(np.ones(2, np.float32))
    layer.weight.grad = grad()  # parameter 0; the bias (1) must not move either: checked before any update
    before = layer.bias.data.copy()
    for optimizer in (tt.optim.SGD(layer.parameters(), lr=1.0), tt.optim.Adam(layer.parameters())):
        with pytest.raises(TypeError, match=f"{type(optimizer).__name__}.step: the .grad of parameter 0 of group 0 {said}"
                           .replace("(", r"\(").replace(")", r"\)")):
            optimizer.step()
    np.testing.assert_array_equal(layer.bias.data, before)


@pytest.mark.parametrize("grad", [np.ones((2, 3), np.float32), Tensor(np.ones(3, np.float32))], ids=["array", "shape"])
def test_backward_into_a_grad_set_by_hand_that_does_not_fit_is_named(grad):
    layer = tt.nn.Linear(3, 2)
    layer.weight.grad = grad
    with pytest.raises(GraphError, match="backward: a leaf's .grad holds a"):
        layer(tt.ones((1, 3))).sum().backward()


@pytest.mark.parametrize("combine", [
    lambda u, i: u + i, lambda u, i: u - i, lambda u, i: u * i, lambda u, i: tt.maximum(u, i),
    lambda u, i: tt.where(Tensor(np.array([True])), u, i), lambda u, i: tt.cat([u, i]),
], ids=["add", "sub", "mul", "maximum", "where", "cat"])
def test_uint64_beside_a_signed_integer_is_refused_not_rounded_through_float64(combine):
    """NumPy's common type of uint64 and int64 is float64: 2**63 + 5 plus 1 came out rounded."""
    u = Tensor(np.array([2**63 + 5], np.uint64))
    with pytest.raises(TypeError, match="int64 and uint64 have no common integer dtype"):
        combine(u, Tensor([1]))
    assert (u + 1).tolist() == [2**63 + 6]  # a number takes the tensor's dtype


@pytest.mark.parametrize("arithmetic", [lambda m: 1 - m, lambda m: m - 1, lambda m: 2.5 - m, lambda m: Tensor([3, 4]) - True],
                         ids=["int-minus-mask", "mask-minus-int", "float-minus-mask", "int-minus-true"])
def test_subtraction_with_a_bool_is_refused_as_in_pytorch(arithmetic):
    """``1 - mask`` meant ``~mask`` to the writer and gave int64 0/1 values."""
    with pytest.raises(TypeError, match="core::sub: subtraction with a bool tensor is not supported"):
        arithmetic(Tensor(np.array([True, False])))


def test_negation_of_a_bool_names_the_op_and_invert_works_bit_by_bit_on_integers():
    with pytest.raises(TypeError, match="core::neg: negation of a bool tensor is not supported"):
        -Tensor(np.array([True]))
    assert (~Tensor([1, 2])).tolist() == [-2, -3]  # PyTorch's bitwise not
    assert (~Tensor(np.array([True, False]))).tolist() == [False, True]
    with pytest.raises(TypeError, match="~ needs a bool or integer tensor, got float32"):
        ~Tensor([1.0])


def test_float_division_by_an_integer_zero_is_ieee_not_an_error():
    """``x // 0`` with a float x raised 'integer division by zero'; ``x // 0.0`` gave inf."""
    x = Tensor([7.0, -7.0, 0.0])
    assert (x // 0).tolist()[:2] == [np.inf, -np.inf] and np.isnan((x // 0).tolist()[2])
    assert np.isnan((x % 0).data).all()
    with pytest.raises(ZeroDivisionError, match="core::floor_divide: integer division by zero"):
        Tensor([7]) // 0


@pytest.mark.parametrize("make, kind, said", [
    (lambda: Tensor([[1, 2], [3]]), ValueError, "Tensor: setting an array element with a sequence"),
    (lambda: Tensor([np.inf], dtype=np.int64), OverflowError, "Tensor: cannot convert float infinity to integer"),
    (lambda: Tensor([1.0], requires_grad=True).backward("a"), GraphError, "the gradient argument must hold numbers"),
], ids=["ragged", "inf-as-int", "text-gradient"])
def test_numpys_refusals_while_making_a_tensor_name_the_call(make, kind, said):
    with pytest.raises(kind, match=said):
        make()
