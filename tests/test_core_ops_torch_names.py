"""The core ops of PyTorch's names (``primitives/elementwise.py``, ``indexing.py``, ``layout.py``,
``scans.py``, ``norms.py``): values against NumPy references, gradients against central finite
differences (float64), float32 kept float32, and each one reachable as ``tt.<name>`` and
``x.<name>()`` where PyTorch has both. Seeded; the same numbers on every run."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.testing import gradcheck

rng = np.random.default_rng(20240611)


def r(*shape):
    return rng.standard_normal(shape)


def t64(a, requires_grad=False):
    return Tensor(np.asarray(a, np.float64), requires_grad=requires_grad, dtype=np.float64)


# ---- elementwise -------------------------------------------------------------------------------------
ELEMENTWISE = {  # name: (NumPy reference, domain of the gradient check)
    "sin": (np.sin, lambda s: r(*s)),
    "cos": (np.cos, lambda s: r(*s)),
    "square": (np.square, lambda s: r(*s)),
    "reciprocal": (np.reciprocal, lambda s: rng.uniform(0.3, 2.0, s) * rng.choice([-1, 1], s)),
    "rsqrt": (lambda a: 1 / np.sqrt(a), lambda s: rng.uniform(0.2, 3.0, s)),
    "log1p": (np.log1p, lambda s: rng.uniform(-0.7, 2.0, s)),
    "expm1": (np.expm1, lambda s: r(*s)),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_smooth_elementwise_values_and_gradients(name):
    reference, draw = ELEMENTWISE[name]
    a = draw((3, 4))
    assert np.allclose(getattr(tt, name)(t64(a)).data, reference(a), rtol=1e-14, atol=0)
    assert getattr(t64(a), name)().dtype == np.float64 and getattr(Tensor(a), name)().dtype == np.float32
    assert gradcheck(getattr(tt, name), a)


def test_log1p_and_expm1_are_exact_where_the_naive_formulas_round_to_zero():
    tiny = np.array([1e-18, -1e-17])
    assert np.array_equal(tt.log1p(t64(tiny)).data, tiny) and np.array_equal(tt.expm1(t64(tiny)).data, tiny)


@pytest.mark.parametrize("name, reference", [("floor", np.floor), ("ceil", np.ceil), ("trunc", np.trunc),
                                             ("round", np.round), ("sign", np.sign)])
def test_step_functions_have_zero_gradient_as_in_pytorch(name, reference):
    a = np.array([-2.5, -1.7, -0.2, 0.3, 1.5, 2.5, 3.49])
    x = t64(a, requires_grad=True)
    out = getattr(x, name)()
    assert np.array_equal(out.data, reference(a))  # round: halves to even (2.5 -> 2), as PyTorch
    out.backward(np.ones(7))
    assert np.array_equal(x.grad.data, np.zeros(7))


def test_round_decimals_sign_of_nan_and_integer_steps():
    assert np.allclose(tt.round(t64([1.2345, -0.0151]), decimals=2).data, [1.23, -0.02])
    assert tt.sign(t64([np.nan, -0.0, -3.0])).tolist() == [0.0, 0.0, -1.0]  # PyTorch's sign of NaN is 0
    whole = Tensor(np.array([-3, 0, 7]))
    for name in ("floor", "ceil", "trunc", "round", "sign", "square"):
        out = getattr(whole, name)()
        assert out.dtype == np.int64, name
    assert whole.square().tolist() == [9, 0, 49] and whole.sign().tolist() == [-1, 0, 1]
    assert Tensor(np.array([True, False])).square().tolist() == [1, 0]


def test_isnan_isinf_isfinite():
    special = t64([0.0, np.nan, np.inf, -np.inf, -1e308])
    assert tt.isnan(special).tolist() == [False, True, False, False, False]
    assert special.isinf().tolist() == [False, False, True, True, False]
    assert special.isfinite().tolist() == [True, False, False, False, True]
    ints = Tensor(np.arange(3))
    assert ints.isnan().tolist() == [False] * 3 and ints.isfinite().tolist() == [True] * 3
    assert tt.isnan(t64([1.0], requires_grad=True)).requires_grad is False


# ---- indexing ----------------------------------------------------------------------------------------
def test_gather_reads_along_a_dim_and_adds_gradients_of_repeated_reads():
    a = r(3, 4)
    index = np.array([[0, 0, 3], [1, 2, 1]])
    out = tt.gather(t64(a), 1, Tensor(index))
    assert np.array_equal(out.data, np.take_along_axis(a[:2], index, axis=1))  # index smaller along dim 0
    x = t64(a, requires_grad=True)
    x.gather(-1, Tensor(index)).sum().backward()
    expected = np.zeros((3, 4))
    expected[0, 0], expected[0, 3], expected[1, 1], expected[1, 2] = 2, 1, 2, 1
    assert np.array_equal(x.grad.data, expected)
    assert gradcheck(lambda v: tt.gather(v, 0, np.array([[2, 0, 1, 1], [0, 0, 2, 1]])), a)


def test_index_select_and_its_gradient():
    a = r(2, 5, 3)
    index = np.array([4, 0, 4])
    assert np.array_equal(tt.index_select(t64(a), 1, Tensor(index)).data, a[:, index])
    assert gradcheck(lambda v: v.index_select(-2, Tensor(index)), a)
    assert t64(a).index_select(0, Tensor(np.zeros(0, np.int64))).shape == (0, 5, 3)


def test_masked_fill_broadcasts_the_mask_and_differentiates_a_0d_value():
    a, mask = r(3, 4), rng.random(4) > 0.5
    out = tt.masked_fill(t64(a), Tensor(mask), -1.0)
    assert np.array_equal(out.data, np.where(mask, -1.0, a))
    x, value = t64(a, requires_grad=True), t64(2.0, requires_grad=True)
    x.masked_fill(Tensor(mask), value).sum().backward()
    assert np.array_equal(x.grad.data, np.broadcast_to(~mask, (3, 4)).astype(float))
    assert value.grad.item() == 3 * mask.sum()
    assert gradcheck(lambda v, w: v.masked_fill(Tensor(mask), w), a, np.array(0.5))
    assert Tensor(np.arange(4)).masked_fill(Tensor(mask), 9).dtype == np.int64  # the tensor's dtype stays
    assert Tensor(a).masked_fill(Tensor(mask), -np.inf).dtype == np.float32


@pytest.mark.parametrize("name", ["tril", "triu"])
@pytest.mark.parametrize("diagonal", [-2, 0, 1, 5])
def test_triangles_of_matrices_and_batches(name, diagonal):
    a = r(2, 4, 5)
    assert np.array_equal(getattr(tt, name)(t64(a), diagonal).data, getattr(np, name)(a, diagonal))
    assert gradcheck(lambda v: getattr(v, name)(diagonal), a)
    assert np.isnan(getattr(t64([[np.nan, np.nan], [np.nan, np.nan]]), name)().data).sum() == 3  # 0, not 0 * NaN


# ---- layout and pieces -------------------------------------------------------------------------------
def test_flip_roll_repeat_match_numpy_and_finite_differences():
    a = r(2, 3, 4)
    assert np.array_equal(tt.flip(t64(a), (0, -1)).data, np.flip(a, (0, 2)))
    assert np.array_equal(t64(a).flip(1, 2).data, np.flip(a, (1, 2)))
    assert np.array_equal(tt.roll(t64(a), 5).data, np.roll(a, 5))
    assert np.array_equal(t64(a).roll((1, -2), (0, 2)).data, np.roll(a, (1, -2), (0, 2)))
    assert np.array_equal(t64(a).repeat(2, 1, 1, 3).data, np.tile(a, (2, 1, 1, 3)))
    assert gradcheck(lambda v: v.flip(0, 2), a)
    assert gradcheck(lambda v: v.roll(-7, 1), a)
    assert gradcheck(lambda v: v.roll(3), a)
    assert gradcheck(lambda v: v.repeat(3, 1, 2), a[0])
    assert gradcheck(lambda v: v.repeat(2, 2, 1, 1), a)


def test_flip_roll_and_repeat_are_copies_as_in_pytorch():
    x = t64(np.arange(4.0))
    for out in (x.flip(0), x.roll(1), x.repeat(1)):
        out[0] = 100.0
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("chunks, sizes", [(1, [7]), (2, [4, 3]), (3, [3, 3, 1]), (4, [2, 2, 2, 1]), (6, [2, 2, 2, 1]),
                                           (7, [1] * 7), (9, [1] * 7)])
def test_chunk_sizes_follow_pytorch(chunks, sizes):
    pieces = t64(r(2, 7)).chunk(chunks, 1)
    assert isinstance(pieces, tuple) and [p.shape[1] for p in pieces] == sizes


def test_split_by_size_by_sections_and_unbind():
    a = r(5, 6)
    assert [p.shape for p in tt.split(t64(a), 2)] == [(2, 6), (2, 6), (1, 6)]
    pieces = t64(a).split([1, 0, 5], dim=-1)
    assert [p.shape for p in pieces] == [(5, 1), (5, 0), (5, 5)]
    assert np.array_equal(np.concatenate([p.data for p in pieces], axis=1), a)
    rows = tt.unbind(t64(a))
    assert len(rows) == 5 and rows[2].shape == (6,) and np.array_equal(rows[2].data, a[2])
    assert [p.shape for p in t64(np.zeros((0, 2))).chunk(3)] == [(0, 2)] * 3  # PyTorch's empty chunks
    assert t64(np.zeros((2, 0))).unbind(1) == ()


@pytest.mark.parametrize("cut, used", [
    (lambda v: v.split(2, 1), (0, 2)),
    (lambda v: v.chunk(3, -1), (1,)),
    (lambda v: v.unbind(1), (3,)),
    (lambda v: v.unbind(0), (0, 1, 2)),
])
def test_pieces_get_gradients_when_only_some_are_used(cut, used):
    a = r(3, 5)
    assert gradcheck(lambda v: tuple(cut(v)[i] for i in used), a)
    x = t64(a, requires_grad=True)
    pieces = cut(x)
    sum(pieces[i].sum() for i in used).backward()
    assert x.grad.shape == a.shape and x.grad.data.sum() == sum(pieces[i].data.size for i in used)


def test_narrow_is_a_view_with_pytorchs_start_rule():
    x = t64(np.arange(10.0))
    assert x.narrow(0, -3, 2).tolist() == [7.0, 8.0] and tt.narrow(x, 0, 10, 0).shape == (0,)
    assert x.narrow(0, Tensor(np.array(2)), 3).tolist() == [2.0, 3.0, 4.0]
    assert gradcheck(lambda v: tt.narrow(v, -1, 1, 2), r(3, 4))
    piece = x.narrow(0, 1, 2)
    piece[0] = -1.0
    assert x[1].item() == -1.0


def test_expand_and_friends():
    a = r(3, 1)
    out = t64(a).expand(2, -1, 4)
    assert out.shape == (2, 3, 4) and np.array_equal(out.data, np.broadcast_to(a, (2, 3, 4)))
    assert t64(a).expand((3, 5)).shape == (3, 5) and t64(a).expand_as(tt.zeros(2, 3, 2)).shape == (2, 3, 2)
    assert gradcheck(lambda v: v.expand(2, 3, 4), a)
    x = t64(np.arange(6.0))
    assert x.view_as(tt.zeros(2, 3)).shape == (2, 3) and x.type_as(tt.zeros(1)).dtype == np.float32


def test_new_factories_take_this_tensors_dtype_and_no_gradient():
    x = t64(r(2), requires_grad=True)
    assert x.new_zeros(2, 3).dtype == np.float64 and x.new_zeros((2, 3)).shape == (2, 3)
    assert x.new_ones(4).tolist() == [1.0] * 4 and x.new_full((2,), 3).tolist() == [3.0, 3.0]
    copied = x.new_tensor(x)
    assert copied.dtype == np.float64 and not copied.requires_grad and copied.data is not x.data
    assert Tensor(np.arange(3)).new_tensor([1.7]).dtype == np.int64
    assert x.new_zeros(2, dtype=np.float32).dtype == np.float32 and x.new_ones(1, requires_grad=True).requires_grad


# ---- running sums, products, norms, logsumexp ----------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_cumsum(dim):
    a = r(2, 3, 4)
    assert np.allclose(tt.cumsum(t64(a), dim).data, np.cumsum(a, axis=dim), rtol=1e-14)
    assert gradcheck(lambda v: v.cumsum(dim), a)
    assert Tensor(np.arange(4, dtype=np.uint8)).cumsum(0).dtype == np.int64  # PyTorch's integer sums


@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": -1, "keepdim": True}, {"axis": (0, 2)}])
def test_prod_values_and_gradients(kwargs):
    a = r(2, 3, 4)
    numpy_kwargs = {"axis": kwargs.get("dim", kwargs.get("axis")), "keepdims": kwargs.get("keepdim", False)}
    assert np.allclose(tt.prod(t64(a), **kwargs).data, np.prod(a, **numpy_kwargs), rtol=1e-13)
    assert gradcheck(lambda v: v.prod(**kwargs), a)


def test_prod_gradient_with_zeros_is_the_product_of_the_others():
    x = t64([[2.0, 0.0, 3.0, 0.5], [0.0, 4.0, 0.0, 1.0], [1.0, 2.0, 3.0, 4.0]], requires_grad=True)
    x.prod(1).sum().backward()
    expected = [[0.0, 3.0, 0.0, 0.0],  # one zero: only the zero gets the product of the others
                [0.0, 0.0, 0.0, 0.0],  # two zeros: every product of the others holds a zero
                [24.0, 12.0, 8.0, 6.0]]
    assert x.grad.tolist() == expected
    assert np.isfinite(x.grad.data).all()
    assert t64(np.zeros((3, 0))).prod(1).tolist() == [1.0, 1.0, 1.0]


def test_logsumexp_is_stable_and_its_gradient_is_the_softmax():
    a = r(3, 4) * 500  # exp(500 * 3) overflows; the shift by the maximum keeps every value finite
    expected = a.max(1) + np.log(np.exp(a - a.max(1, keepdims=True)).sum(1))
    assert np.allclose(tt.logsumexp(t64(a), 1).data, expected, rtol=1e-14)
    x = t64(a, requires_grad=True)
    x.logsumexp(-1).sum().backward()
    softmax = np.exp(a - expected[:, None])
    assert np.allclose(x.grad.data, softmax, rtol=1e-12, atol=1e-300)
    assert gradcheck(lambda v: v.logsumexp((0, 2), keepdim=True), r(2, 3, 4))
    assert t64([[-np.inf, -np.inf]]).logsumexp(1).item() == -np.inf
    assert t64(np.zeros((2, 0))).logsumexp(1).tolist() == [-np.inf, -np.inf]
    assert Tensor(np.full((2, 3), 80.0)).logsumexp(1).dtype == np.float32


@pytest.mark.parametrize("p", [1, 2, 3, 1.5, math.inf, "fro"])
def test_norm_values_and_gradients(p):
    a = rng.uniform(0.2, 1.5, (3, 4)) * rng.choice([-1, 1], (3, 4))
    order = 2 if p == "fro" else p
    assert np.allclose(t64(a).norm(p).data, np.linalg.norm(a.ravel(), order), rtol=1e-13)
    assert np.allclose(tt.norm(t64(a), p, 1, True).data, np.linalg.norm(a, order, axis=1, keepdims=True), rtol=1e-13)
    assert gradcheck(lambda v: v.norm(p, dim=(0, 1)), a)  # continuous draws: no ties for the inf-norm's max
    assert gradcheck(lambda v: v.norm(p, dim=-1), a)


@pytest.mark.parametrize("p", [1, 2, 3, math.inf, "fro"])
def test_the_norm_of_a_zero_vector_has_gradient_zero_not_nan(p):
    x = t64([[0.0, 0.0, 0.0], [3.0, -4.0, 0.0]], requires_grad=True)
    out = x.norm(p, dim=1)
    out.sum().backward()
    assert out[0].item() == 0.0
    assert x.grad[0].tolist() == [0.0, 0.0, 0.0] and np.isfinite(x.grad.data).all()


def test_the_inf_norm_shares_its_gradient_among_ties():
    x = t64([1.0, -3.0, 3.0], requires_grad=True)
    x.norm(math.inf).backward()
    assert x.grad.tolist() == [0.0, -0.5, 0.5]  # as PyTorch


# ---- names ------------------------------------------------------------------------------------------
NAMES = ("flip roll repeat split chunk unbind narrow tril triu gather index_select masked_fill cumsum prod logsumexp "
         "norm sin cos square reciprocal rsqrt sign floor ceil round trunc isnan isinf isfinite log1p expm1").split()


@pytest.mark.parametrize("name", NAMES)
def test_each_name_is_a_tensor_method(name):
    assert callable(getattr(t64([1.0]), name))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "repeat"])  # torch.repeat does not exist either
def test_each_name_with_a_pytorch_function_is_a_tt_function(name):
    assert callable(getattr(tt, name)) and name in tt.__all__
