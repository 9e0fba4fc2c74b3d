"""PyTorch habits a learner arrives with: each works, with PyTorch's meaning, or says the
TinyTorch way. Gradients through the aliases are checked against finite differences."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import MissingStageError, Runtime, Tensor, use_runtime
from tinytorch_core.testing import gradcheck


def sample(*shape, seed=0):
    return tt.Tensor(np.random.default_rng(seed).standard_normal(shape))


def test_size_numel_and_dim_have_pytorchs_meaning():
    x = sample(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.numel() == 24 and x.dim() == 3
    with pytest.raises(ValueError, match="size: axis 3 is out of range"):
        x.size(3)


def test_view_float_double_long_int_bool():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.view(3, 2).shape == (3, 2) and x.view(-1).shape == (6,)
    assert x.float().dtype == np.float32 and x.double().dtype == np.float64
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.long().tolist() == [[0, 1, 2], [3, 4, 5]]
    assert Tensor([7.0]).item() == 7.0


def test_dtype_names():
    assert (tt.float32, tt.float, tt.float64, tt.double) == (np.float32, np.float32, np.float64, np.float64)
    assert (tt.int64, tt.long, tt.int32, tt.int, tt.bool) == (np.int64, np.int64, np.int32, np.int32, np.bool_)
    assert tt.zeros(2, dtype=tt.float64).dtype == np.float64
    assert sample(2).to(tt.float16).dtype == np.float16


@pytest.mark.parametrize("name", ["sum", "mean"])
def test_dim_and_keepdim_on_reductions(name):
    x = sample(2, 3, 4)
    torch_default = {"ddof": 1} if name == "var" else {}  # PyTorch's var divides by n - 1
    numpy_result = getattr(np, name)(x.data, axis=1, keepdims=True, **torch_default)
    assert np.allclose(getattr(x, name)(dim=1, keepdim=True).data, numpy_result)
    assert np.allclose(getattr(tt.primitives, name)(x, dim=1, keepdim=True).data, numpy_result)
    assert getattr(x, name)(dim=(0, 2)).shape == (3,)
    with pytest.raises(TypeError, match=f"{name}: pass axis or dim"):
        getattr(x, name)(1, dim=1)
    with pytest.raises(TypeError, match=f"{name}: pass keepdims or keepdim"):
        getattr(x, name)(dim=1, keepdims=True, keepdim=True)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_along_a_dim_give_values_and_indices(name):
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, np.nan, 0.0]]), requires_grad=True)
    values, indices = getattr(x, name)(1)
    expected = {"max": ([3.0, np.nan], [1, 1]), "min": ([1.0, np.nan], [0, 1])}[name]
    assert np.array_equal(values.data, expected[0], equal_nan=True) and indices.tolist() == expected[1]
    assert indices.dtype == np.int64 and not indices.requires_grad
    values.sum().backward()  # the gradient goes to the index alone, the first on ties (PyTorch's rule)
    assert x.grad.tolist() == ([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]] if name == "max" else [[1.0, 0, 0], [0, 1.0, 0]])
    kept = getattr(x, name)(dim=-1, keepdim=True)
    assert kept.values.shape == kept.indices.shape == (2, 1)
    numpy_style = getattr(x, name)(axis=1)  # NumPy's spelling: the values alone
    assert isinstance(numpy_style, Tensor) and numpy_style.shape == (2,)
    assert getattr(x, name)().shape == ()
    scalar_values, scalar_index = getattr(Tensor(np.array(2.0)), name)(0)
    assert scalar_values.item() == 2.0 and scalar_index.item() == 0
    elementwise = getattr(Tensor([1.0, 5.0]), name)(Tensor([4.0, 2.0]))  # torch.max(a, b)
    assert elementwise.tolist() == ([4.0, 5.0] if name == "max" else [1.0, 2.0])
    with pytest.raises(TypeError, match=f"{name}: pass axis .* or dim"):
        getattr(x, name)(1, axis=1)
    with pytest.raises(TypeError, match=f"{name}: axis must be an int"):
        getattr(x, name)(dim=(0, 1))
    with pytest.raises(ValueError, match=f"{name}: axis 1 of shape \\(2, 0\\) is empty"):
        getattr(tt.zeros(2, 0), name)(1)


def test_max_along_a_dim_agrees_with_finite_differences():
    rng = np.random.default_rng(4)
    assert gradcheck(lambda a: a.max(dim=0).values * 2.0, rng.standard_normal((4, 3)))
    assert gradcheck(lambda a: a.min(2, keepdim=True).values, rng.standard_normal((2, 3, 4)))


def test_squeeze_dim_leaves_other_sizes_as_pytorch_does():
    x = sample(2, 1, 3)
    assert x.squeeze(0).shape == (2, 1, 3) and x.squeeze(dim=1).shape == (2, 3) and x.squeeze((0, 1)).shape == (2, 3)
    with pytest.raises(ValueError, match="squeeze: axis 0 has size 2"):
        x.squeeze(axis=0)  # NumPy's spelling keeps NumPy's rule


def test_gradients_flow_through_the_aliases():
    assert gradcheck(lambda a: a.sum(dim=1, keepdim=True) * a.mean(dim=0), np.random.default_rng(1).standard_normal((3, 4)))
    assert gradcheck(lambda a, b: tt.cat([a, b], dim=1).max(dim=1).values, np.random.default_rng(2).standard_normal((3, 2)),
                     np.random.default_rng(3).standard_normal((3, 2)) + 5.0)


def test_cat_and_stack_take_dim():
    a, b = sample(2, 3), sample(2, 3, seed=1)
    assert tt.cat([a, b], dim=1).shape == (2, 6) and tt.cat([a, b]).shape == (4, 3)
    assert tt.stack([a, b], dim=2).shape == (2, 3, 2)
    assert np.array_equal(tt.cat([a, b], dim=0).data, np.concatenate([a.data, b.data]))
    with pytest.raises(TypeError, match="concatenate: pass axis or dim"):
        tt.cat([a, b], 0, dim=0)


def test_flatten_start_and_end_dim():
    x = sample(2, 3, 4, 5)
    assert x.flatten().shape == (120,)
    assert x.flatten(1).shape == (2, 60)
    assert x.flatten(start_dim=1, end_dim=2).shape == (2, 12, 5)
    assert x.flatten(-3, -2).shape == (2, 12, 5)
    with pytest.raises(ValueError, match="flatten: start axis 2 comes after end axis 1"):
        x.flatten(start_dim=2, end_dim=1)


def test_registered_ops_are_tensor_methods_without_patching():
    x = sample(3, 4)
    assert "relu" not in vars(Tensor)  # resolved through the registry, never added to the class
    assert np.allclose(x.relu().data, np.maximum(x.data, 0))
    assert np.allclose(x.softmax(-1).data.sum(axis=-1), 1.0)
    assert np.allclose(x.log_softmax(0).data, tt.ops.log_softmax(x, 0).data)
    with pytest.raises(AttributeError, match="'Tensor' object has no attribute 'relux'.*did you mean relu"):
        x.relux()
    assert not hasattr(x, "__array_interface__")  # protocol probes stay plain AttributeErrors


def test_an_op_method_of_a_missing_stage_says_how_to_install_it():
    x = sample(3, 4)
    with use_runtime(Runtime(entry_points=[])):  # core alone: stage nn is not installed
        with pytest.raises(MissingStageError, match="pip install"):
            x.relu()


def test_nn_functional_is_the_ops_namespace():
    import tinytorch_core.nn.functional as F

    x = sample(2, 5)
    assert F.relu is tt.ops.relu
    assert np.allclose(F.cross_entropy(x, np.array([1, 4])).data, tt.ops.cross_entropy(x, np.array([1, 4])).data)
    assert tt.nn.functional is F


def test_module_apply_visits_children_first_then_the_module():
    model = tt.nn.Sequential(tt.nn.Linear(2, 3), tt.nn.ReLU(), tt.nn.Linear(3, 1))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Linear", "Sequential"]

    def zero_biases(m):
        if isinstance(m, tt.nn.Linear):
            with tt.no_grad():
                m.bias.zero_()

    model.apply(zero_biases)
    assert all(not m.bias.data.any() for m in (model[0], model[2]))


def test_var_keeps_each_librarys_default_and_takes_pytorchs_names():
    """``x.var(dim=1)`` divided by n (NumPy's default) where PyTorch divides by n - 1; so did
    ``x.var(1)`` and ``x.var()``."""
    x = Tensor([[1.0, 2.0, 4.0], [0.0, 3.0, 9.0]], dtype=np.float64)
    np.testing.assert_allclose(x.var(dim=1).data, [7 / 3, 21.0])
    np.testing.assert_allclose(x.var(1).data, [7 / 3, 21.0])
    np.testing.assert_allclose(x.var().data, np.var(x.data, ddof=1))
    np.testing.assert_allclose(tt.ops.var(x).data, np.var(x.data, ddof=1))
    assert x.var(dim=1, keepdim=True).shape == (2, 1) and x.var(axis=(0, 1), keepdims=True).shape == (1, 1)
    with pytest.raises(TypeError, match="var: pass axis or dim"):
        x.var(1, axis=1)
    np.testing.assert_allclose(x.var(axis=1).data, [14 / 9, 14.0])  # NumPy's name: NumPy's ddof=0
    np.testing.assert_allclose(x.var(dim=1, unbiased=False).data, [14 / 9, 14.0])
    np.testing.assert_allclose(x.var(1, correction=1).data, [7 / 3, 21.0])
    np.testing.assert_allclose(tt.ops.var(x, dim=1).data, [7 / 3, 21.0])
    with pytest.raises(TypeError, match="var: pass one of ddof, unbiased and correction"):
        x.var(dim=1, ddof=1, unbiased=True)
    with pytest.raises(TypeError, match="unbiased must be True or False"):
        x.var(dim=1, unbiased="yes")
    # PyTorch's positional order (dim, unbiased, keepdim): x.var(0, False) was keepdim=False, n - 1
    np.testing.assert_allclose(x.var(1, False).data, [14 / 9, 14.0])
    assert x.var(1, True, True).shape == (2, 1) and tt.ops.var(x, 0, False).shape == (3,)
    np.testing.assert_allclose(x.var(False).data, np.var(x.data))  # var(unbiased): every entry


def test_pytorch_keyword_names_on_arg_reductions_and_axes():
    x = Tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    assert x.argmax(dim=1).tolist() == [1, 0] and x.argmin(dim=1, keepdim=True).tolist() == [[0], [1]]
    assert x.unsqueeze(dim=0).shape == (1, 2, 3) and x.unsqueeze(dim=0).squeeze(dim=0).shape == (2, 3)
    assert x.clamp(1.0, 3.0).tolist() == [[1.0, 3.0, 2.0], [3.0, 1.0, 3.0]]



def test_positional_arguments_follow_pytorchs_order():
    """SGD(params, lr, momentum, dampening, weight_decay, nesterov) and MultiHeadAttention(embed_dim,
    num_heads, dropout, bias): a weight decay given by position turned Nesterov on."""
    p = tt.Parameter(np.array([1.0, 2.0]), dtype=np.float64)
    optimizer = tt.optim.SGD([p], 0.1, 0.9, 0.0, 0.01)
    for _ in range(3):
        optimizer.zero_grad()
        (p * p).sum().backward()
        optimizer.step()
    np.testing.assert_allclose(p.data, [0.0581942, 0.1163884], rtol=1e-6)  # torch 2.x, same calls
    attention = tt.nn.MultiHeadAttention(8, 2, 0.1)
    assert attention.dropout == 0.1 and attention.q_proj.bias is not None


@pytest.mark.parametrize("make, message", [
    (lambda: tt.nn.Linear(3, 2, 0.5), "Linear: bias must be True or False"),
    (lambda: tt.nn.MultiHeadAttention(8, 2, 0.0, 0.5), "MultiHeadAttention: bias must be True or False"),
    (lambda: tt.optim.SGD([tt.Parameter(np.ones(2))], 0.1, 0.9, 0.0, 0.0, 0.01), "SGD: nesterov must be True or False"),
    (lambda: tt.optim.Adam([tt.Parameter(np.ones(2))], amsgrad=1), "Adam: amsgrad must be True or False"),
])
def test_a_flag_given_a_number_is_refused(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_and_or_are_bitwise_on_integers_as_in_pytorch():
    a = Tensor(np.array([1, 2, -3]))
    assert (a & 2).tolist() == [0, 2, 0] and (a | 4).tolist() == [5, 6, -3] and (a & 2).dtype == np.int64
    assert ((a > 0) & (a < 2)).tolist() == [True, False, False]
    with pytest.raises(TypeError, match="& needs bool or integer operands, got float32"):
        Tensor([1.0]) & 1
    with pytest.raises(TypeError, match="\\| needs bool or integer operands, got float64"):
        a | 1.5


def test_factories_choose_pytorchs_dtypes():
    """torch.tensor keeps an array's dtype; torch.full picks from the value; float aranges are
    float32; nn.Parameter(t) keeps t's dtype. Tensor(...) stays torch.Tensor(...): float32."""
    assert tt.tensor(np.ones(2)).dtype == np.float64 and tt.tensor([1.5]).dtype == np.float32
    assert tt.tensor(np.float64(1.5)).dtype == np.float64 and tt.tensor(np.ones(2, np.float16)).dtype == np.float16
    assert tt.tensor(Tensor(np.ones(2), dtype=np.float64)).dtype == np.float64
    assert Tensor(np.ones(2)).dtype == np.float32
    assert (tt.full((2,), 3).dtype, tt.full((2,), True).dtype, tt.full((2,), 1.5).dtype) == (np.int64, np.bool_, np.float32)
    assert tt.arange(0, 2, 0.5).dtype == np.float32 and tt.arange(5).dtype == np.int64
    assert tt.Parameter(Tensor(np.ones(2), dtype=np.float64)).dtype == np.float64


def test_pytorch_positional_calls_that_would_mean_something_else_are_refused():
    """Dropout(0.5, True) is PyTorch's inplace=True; it became generator seed 1. PyTorch's 4th
    positional argument of MultiHeadAttention is key_padding_mask (True = padding), where ours
    was mask (True = may attend): a silent inversion."""
    with pytest.raises(TypeError, match="positional argument"):
        tt.nn.Dropout(0.5, True)
    # a seed is a keyword: PyTorch's 4th positional argument is max_norm (Embedding) or device
    # (Linear); an int there became a seed. Likewise padding_mode (Conv2d), add_bias_kv (attention)
    for make in (lambda: tt.nn.Embedding(5, 3, None, 1.0), lambda: tt.nn.Linear(2, 3, True, 0),
                 lambda: tt.nn.MultiHeadAttention(8, 2, 0.0, True, 0),
                 lambda: tt.data.DataLoader([1, 2], 1, False, [0, 1])):
        with pytest.raises(TypeError, match="positional argument"):
            make()
    attention = tt.nn.MultiHeadAttention(8, 2, generator=0)
    x = sample(2, 2, 8)
    with pytest.raises(TypeError, match="positional argument"):
        attention(x, x, x, tt.ones(2, 2, dtype=tt.bool))


def test_expand_style_minus_one_and_extremes_over_a_non_empty_axis_of_an_empty_tensor():
    x = sample(3, 1)
    assert x.broadcast_to((2, -1, 4)).shape == (2, 3, 4)  # -1 keeps the axis's size (PyTorch's expand)
    with pytest.raises(ValueError, match="cannot be broadcast"):
        x.broadcast_to((-1, -1, 4))  # a new leading axis has no size to keep
    empty = tt.zeros(0, 3)
    assert empty.max(axis=1).shape == (0,) and empty.min(1).values.shape == (0,)  # nothing reduced over 0 rows
    with pytest.raises(ValueError, match="reduction over an empty axis"):
        empty.max(axis=0)


def test_dim_of_no_axes_reduces_every_axis_and_unsigned_sums_are_int64_as_in_pytorch():
    x = sample(2, 3)
    assert x.sum(dim=()).shape == () and x.mean(dim=[]).shape == () and x.var(dim=()).shape == ()
    assert x.sum(axis=()).shape == (2, 3)  # NumPy's axis=() reduces none
    assert Tensor(np.full(300, 255, np.uint8)).sum().item() == 76500
    assert Tensor(np.ones(3, np.uint8)).sum().dtype == np.int64  # NumPy's uint64 mixes badly with int64


def test_attention_takes_pytorchs_positional_order():
    """sdpa(q, k, v, None, 0.1) read 0.1 as causal=True: a causal mask and no dropout."""
    q = Tensor(np.random.default_rng(0).standard_normal((1, 4, 8)), dtype=np.float64)
    plain = tt.ops.scaled_dot_product_attention(q, q, q)
    np.testing.assert_array_equal(tt.ops.scaled_dot_product_attention(q, q, q, None, 0.0).data, plain.data)
    causal = tt.ops.scaled_dot_product_attention(q, q, q, None, 0.0, True)
    np.testing.assert_array_equal(causal.data, tt.ops.scaled_dot_product_attention(q, q, q, is_causal=True).data)
    assert not np.allclose(causal.data, plain.data)
    half = tt.ops.scaled_dot_product_attention(q, q, q, None, 0.0, False, 0.5)
    np.testing.assert_array_equal(half.data, tt.ops.scaled_dot_product_attention(q, q, q, scale=0.5).data)


def test_more_of_pytorchs_dtypes_and_defaults():
    """cat of int and float32 was float64 (NumPy's rule); where of two Python floats and as_tensor
    of Python floats were float64; SGD had no default lr; .to('cpu') was an unknown dtype."""
    ints, floats = tt.tensor(np.array([1, 2])), tt.tensor(np.array([0.5, 1.5], np.float32))
    assert tt.cat([ints, floats]).dtype == np.float32 and tt.stack([floats, ints]).dtype == np.float32
    condition = tt.tensor(np.array([True, False]))
    assert tt.where(condition, 1.0, 0.0).dtype == np.float32 and tt.where(condition, 1, 0).dtype == np.int64
    assert tt.as_tensor([1.0, 2.0]).dtype == np.float32 and tt.as_tensor(np.ones(2)).dtype == np.float64
    assert tt.optim.SGD([tt.Parameter(np.ones(2))]).defaults["lr"] == 1e-3
    assert floats.to("cpu") is floats and tt.nn.Linear(2, 2).to("cpu").weight.dtype == np.float32
    with pytest.raises(ValueError, match="expected a dtype or the device 'cpu'"):
        floats.to("cuda")
    with pytest.raises(ValueError, match="got None"):
        floats.to(None)  # np.dtype(None) is float64


def test_layer_norm_refuses_pytorchs_normalized_shape_argument():
    """F.layer_norm(x, (E,)) read the tuple as the weight; silently when E == 1."""
    with pytest.raises(TypeError, match="layer_norm: weight must be a tensor, got the tuple"):
        tt.ops.layer_norm(sample(2, 1), (1,))


def test_floor_division_and_remainder_follow_python_and_pytorch():
    """No // or % existed. Values from torch 2.x: the remainder takes the divisor's sign."""
    a = Tensor(np.array([5, -5, 7]))
    assert (a // 2).tolist() == [2, -3, 3] and (a % 3).tolist() == [2, 1, 1]
    assert (7 // Tensor(np.array([2, -2]))).tolist() == [3, -4] and (7 % Tensor(np.array([3, -3]))).tolist() == [1, -2]
    x = Tensor([5.0, -5.0, 7.5], requires_grad=True, dtype=np.float64)
    (x % 2).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    assert gradcheck(lambda p, q: p % q, np.array([2.7, -3.3, 5.6]), np.array([1.5, 1.5, -2.0]))
    with pytest.raises(tt.GraphError, match="floor division .* has no derivative"):
        (x // 2).sum().backward()


def test_integer_arithmetic_that_has_no_integer_answer_is_refused_naming_the_op():
    """7 // 0 was a silent 0 (NumPy's); 2 ** -1 on integers and bool - bool raised NumPy's
    errors, naming no op."""
    ints = Tensor(np.array([1, 2]))
    with pytest.raises(ZeroDivisionError, match="core::floor_divide: integer division by zero"):
        ints // 0
    with pytest.raises(ZeroDivisionError, match="core::remainder: integer division by zero"):
        ints % Tensor(np.array([1, 0]))
    with pytest.raises(ValueError, match="core::pow: an integer to a negative integer power"):
        2 ** Tensor(np.array([-1, 3]))
    flags = Tensor(np.array([True, False]))
    with pytest.raises(TypeError, match="core::sub: subtraction with a bool tensor is not supported"):
        flags - flags
    assert np.isinf((tt.ones(2) // 0.0).data).all() and (ints ** 2).tolist() == [1, 4]  # floats: IEEE


def test_a_float64_target_promotes_the_loss_as_in_pytorch():
    """A float32 input and a float64 target gave a float32 loss (the target was cast down);
    PyTorch computes it in float64. Integer labels still take the input's dtype."""
    F = tt.nn.functional
    x = Tensor(np.array([0.1, 0.7], np.float32), requires_grad=True)
    target = np.array([0.0, 1.0])
    loss = F.mse_loss(x, Tensor(target, dtype=np.float64))
    assert loss.dtype == np.float64
    loss.backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, (x.data.astype(np.float64) - target), rtol=1e-6)
    assert F.binary_cross_entropy_with_logits(x, Tensor(target, dtype=np.float64)).dtype == np.float64
    assert F.mse_loss(x, Tensor(np.array([0, 1]))).dtype == np.float32


def test_any_and_all_are_bool_tensors_with_dim_as_in_pytorch():
    """They returned a Python bool and took no axis."""
    x = Tensor(np.array([[1, 0], [1, 1]]))
    assert isinstance(x.all(), Tensor) and x.all().dtype == np.bool_ and not x.all()
    np.testing.assert_array_equal(x.all(dim=1).data, [False, True])
    np.testing.assert_array_equal(x.any(0, keepdim=True).data, [[True, True]])
    np.testing.assert_array_equal((x == 0).any(axis=1).data, [True, False])
    with pytest.raises(ValueError, match="any"):
        x.any(dim=2)


def test_an_element_picked_with_ints_is_a_view_as_in_pytorch():
    """x[0] of a 1-D tensor (and y[1, 0]) was NumPy's detached scalar: writes through it were
    lost, later writes into x unseen, and a backward after y.zero_() used the stale value."""
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    z = x[0]
    x[0] = 5.0
    assert z.item() == 5.0
    y = Tensor(np.arange(4.0).reshape(2, 2))
    y[1, 0].fill_(9.0)
    y[-1].add_(100.0)
    np.testing.assert_array_equal(y.data, [[0.0, 1.0], [109.0, 103.0]])
    leaf = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    doubled = leaf * 2
    first = doubled[0]
    doubled.zero_()
    first.backward()
    assert first.item() == 0.0 and not leaf.grad.data.any()


def test_comparisons_follow_the_promotion_rule_as_in_pytorch():
    """They compared in NumPy's common dtype: float32 0.1 == a float64 0-d 0.1 was False, while
    (x - z) == 0 was True."""
    x = Tensor(np.array([0.1], np.float32))
    z = tt.tensor(np.float64(0.1))
    assert (x == z).data.tolist() == [True] and (x - z == 0).data.tolist() == [True]
    big = Tensor(np.array([16777217]))
    assert (big == 16777216.0).data.tolist() == [True]
    assert (Tensor(np.array([3], np.uint8)) < -1).data.tolist() == [False]  # a Python int compares exactly
    assert (x == None) is False and (x != None) is True  # noqa: E711 - PyTorch's answer to ==/!= None


def test_matmul_of_a_tensor_and_an_array_of_another_dtype_is_refused():
    with pytest.raises(TypeError, match="matmul: both tensors must have the same dtype, got float32 and float64"):
        Tensor(np.ones((2, 2), np.float32)) @ np.ones((2, 2))


def test_a_later_backward_adds_into_the_same_grad_tensor_as_in_pytorch():
    """A second backward replaced .grad with a new tensor: a held x.grad kept the first sum."""
    x = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    (x * 2).sum().backward()
    held = x.grad
    (x * 3).sum().backward()
    assert held is x.grad and held.data.tolist() == [5.0, 5.0, 5.0]
    y = Tensor(np.ones(2), requires_grad=True, dtype=np.float64)  # within one pass: summed, not aliased
    ((y * 2) + (y * 3)).sum().backward()
    assert y.grad.data.tolist() == [5.0, 5.0]


def test_setitem_of_a_value_with_leading_size_one_axes_has_its_gradient():
    """y[1] = v with v of shape (1, 5): the forward worked, the backward refused the (5,) gradient."""
    y = Tensor(np.zeros((3, 5)), dtype=np.float64)
    v = Tensor(np.ones((1, 5)), requires_grad=True, dtype=np.float64)
    y = y * 1.0
    y[1] = v
    (y * Tensor(np.arange(15.0).reshape(3, 5), dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(v.grad.data, [[5.0, 6.0, 7.0, 8.0, 9.0]])

