"""A hostile and careless user's inputs that gave wrong answers or raw errors: flags given the
text "False", a tampered optimizer state, iterating a 0-d tensor, unbounded generation, a
schedule that reaches an infinite rate, and calls whose NumPy errors named nothing. Each test
failed before its fix. RuntimeWarnings are errors in this suite (pyproject.toml)."""

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor


def _param():
    return tt.nn.Parameter(np.ones(2, np.float32))


def _x4():
    return Tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32))


def _q():
    return Tensor(np.random.default_rng(1).standard_normal((1, 2, 8)).astype(np.float32))


#: calls whose True/False option read the text "False" as True (bool("False") is True)
FLAG_CALLS = {
    "DataLoader shuffle": lambda v: tt.data.DataLoader([1, 2], shuffle=v),
    "DataLoader drop_last": lambda v: tt.data.DataLoader([1, 2], drop_last=v),
    "attention causal": lambda v: tt.nn.functional.scaled_dot_product_attention(_q(), _q(), _q(), causal=v),
    "MultiHeadAttention causal": lambda v: tt.nn.MultiHeadAttention(8, 2, generator=0)(_q(), causal=v),
    "TransformerBlock causal": lambda v: tt.nn.TransformerBlock(8, 2, 16, causal=v),
    "GPT causal": lambda v: tt.nn.GPT(10, 4, 8, 2, 1, 16, causal=v),
    "batch_norm2d training": lambda v: tt.nn.functional.batch_norm2d(_x4(), training=v),
    "Module.train": lambda v: tt.nn.Linear(2, 2).train(v),
    "Module.requires_grad_": lambda v: tt.nn.Linear(2, 2).requires_grad_(v),
    "Tensor.requires_grad_": lambda v: Tensor(np.ones(2, np.float32)).requires_grad_(v),
    "zeros requires_grad": lambda v: tt.zeros(2, requires_grad=v),
    "load_state_dict strict": lambda v: tt.nn.Linear(2, 2).load_state_dict({}, strict=v),
    "backward retain_graph": lambda v: (Tensor(np.ones(2, np.float32), requires_grad=True) * 2).sum().backward(
        retain_graph=v),
    "Optimizer.zero_grad": lambda v: tt.optim.SGD([_param()], lr=0.1).zero_grad(v),
    "RMSprop centered": lambda v: tt.optim.RMSprop([_param()], centered=v),
    "RMSprop maximize": lambda v: tt.optim.RMSprop([_param()], maximize=v),
    "Adagrad maximize": lambda v: tt.optim.Adagrad([_param()], maximize=v),
    "Module.zero_grad": lambda v: tt.nn.Linear(2, 2).zero_grad(v),
}


@pytest.mark.parametrize("call", sorted(FLAG_CALLS))
def test_a_flag_given_text_is_refused(call):
    with pytest.raises(TypeError, match="must be True or False, got 'False'"):
        FLAG_CALLS[call]("False")


def test_flags_of_the_later_stages_are_refused_as_text():
    pytest.importorskip("tinytorch_compression")
    with pytest.raises(TypeError, match="by_layer must be True or False"):
        tt.compression.sparsity(tt.nn.Linear(2, 2), by_layer="no")


def test_a_tampered_optimizer_state_that_overflows_the_parameter_dtype_is_refused():
    """A float64 moment of 1e300 passed the finiteness check, loaded as inf into float32, and one
    step made every weight -inf."""
    p = _param()
    optimizer = tt.optim.Adam([p], lr=0.1)
    p.grad = Tensor(np.ones(2, np.float32))
    optimizer.step()
    state = optimizer.state_dict()
    (entry,) = state["state"].values()
    entry["exp_avg"] = np.full(2, 1e300)
    with pytest.raises(ValueError, match="'exp_avg' holds a value of magnitude 1e\\+300, beyond float32's largest"):
        tt.optim.Adam([_param()], lr=0.1).load_state_dict(state)
    entry["exp_avg"] = np.ones(2, bool)
    with pytest.raises(ValueError, match="'exp_avg' must be an array of numbers"):
        tt.optim.Adam([_param()], lr=0.1).load_state_dict(state)


def test_iterating_a_zero_d_tensor_is_an_error_not_an_empty_loop():
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(tt.tensor(5.0))
    rows = list(Tensor(np.arange(6.0).reshape(3, 2)))
    assert len(rows) == 3 and [r.data.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]


def test_gpt_generate_refuses_a_token_count_no_memory_holds_at_once():
    model = tt.nn.GPT(10, 4, 8, 2, 1, 16, generator=0)
    with pytest.raises(MemoryError, match="GPT.generate: max_new_tokens=1000000000000"):
        model.generate(np.array([1, 2]), 10**12)
    out = model.generate(np.array([1, 2]), 6, temperature=0)  # past max_len=4: the window slides
    assert out.shape == (8,) and out[:2].tolist() == [1, 2]


def test_a_schedule_that_reaches_an_infinite_rate_is_refused():
    optimizer = tt.optim.SGD([_param()], lr=0.1)
    scheduler = tt.optim.StepLR(optimizer, step_size=1, gamma=1e300)
    scheduler.step()
    with pytest.raises(ValueError, match="StepLR: the schedule reached the learning rate inf"):
        scheduler.step()


def test_numpy_errors_name_the_call():
    with pytest.raises(ValueError, match=r"arange\(0, 5, 0\): .*nonzero step"):
        tt.arange(0, 5, 0)
    with pytest.raises(ValueError, match=r"arange\(0, inf\)"):
        tt.arange(0, float("inf"))
    with pytest.raises(ValueError, match="generator: a seed must be an int >= 0, got -1"):
        tt.randn(2, generator=-1)
    with pytest.raises(ValueError, match="manual_seed: a seed must be an int >= 0"):
        tt.manual_seed(-1)
    with pytest.raises(ValueError, match=r"cross_entropy: the input \(0, 0\) has no classes"):
        tt.nn.functional.cross_entropy(Tensor(np.zeros((0, 0), np.float32)), Tensor(np.zeros(0, np.int64)))


def test_attention_over_zero_features_scores_every_key_equally():
    """1 / sqrt(0) raised ZeroDivisionError; the dot product over no features is 0."""
    q = Tensor(np.zeros((1, 2, 0), np.float32))
    v = Tensor(np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32))
    out = tt.nn.functional.scaled_dot_product_attention(q, q, v)
    np.testing.assert_allclose(out.data, [[[2.0, 3.0], [2.0, 3.0]]])


def test_values_beyond_a_dtype_become_inf_without_a_warning():
    """NumPy's 'overflow encountered in cast' escaped; PyTorch gives inf silently in tensor() and
    arithmetic (a fill value that does not fit, ``full``'s, it refuses: see
    test_core_ops_narrow_dtypes_and_bounds.py)."""
    assert np.isinf(tt.tensor([1e40]).data).all() and np.isinf(Tensor([1e40]).data).all()
    t = Tensor(np.zeros(2, np.float32))
    t[0] = 1e40
    t += 1e40
    assert np.isinf(t.data).all()


def test_review_of_this_round_edge_cases():
    """Cases the round's own review found: an old checkpoint of a model holding a weighted loss,
    big-endian data into a float32 layer, a value with leading size-1 axes written into one
    element or through a mask, attention over no keys, uint64 against int64, a schedule that
    goes below zero (PyTorch carries on)."""
    model = tt.nn.Sequential(tt.nn.Linear(2, 2, generator=0), tt.nn.CrossEntropyLoss(weight=np.ones(2, np.float32)))
    old = {k: v for k, v in model.state_dict().items() if k != "1.weight"}  # saved before weights were buffers
    assert model.load_state_dict(old).missing_keys == []
    big_endian = tt.tensor(np.arange(3.0).astype(">f4"))
    assert big_endian.dtype == np.float32 and tt.nn.Linear(3, 2)(big_endian.reshape(1, 3)).dtype == np.float32
    y = Tensor(np.zeros((2, 3)))
    y[0, 0] = Tensor(np.array([[5.0]], np.float32))
    y[Tensor(np.array([[False, True, False], [False, False, True]]))] = Tensor(np.array([[7.0]], np.float32))
    assert y.data.tolist() == [[5.0, 7.0, 0.0], [0.0, 0.0, 7.0]]
    q = Tensor(np.ones((1, 2, 4), np.float32))
    empty_keys = Tensor(np.ones((1, 0, 4), np.float32))
    out = tt.nn.functional.scaled_dot_product_attention(q, empty_keys, Tensor(np.ones((1, 0, 3), np.float32)))
    assert out.shape == (1, 2, 3) and not out.data.any()
    big = tt.tensor(np.array([2**63, 5], np.uint64))
    assert (big == tt.tensor(np.array([-1, 5]))).data.tolist() == [False, True]
    optimizer = tt.optim.SGD([_param()], lr=0.1)
    step_lr, cosine = tt.optim.StepLR(optimizer, 2, 0.5), tt.optim.CosineAnnealingLR(optimizer, 6, eta_min=0.01)
    for _ in range(12):
        step_lr.step()
        cosine.step()
    assert optimizer.param_groups[0]["lr"] < 0  # as in PyTorch; only an infinite or NaN rate is refused
