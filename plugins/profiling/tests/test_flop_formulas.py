"""The FLOP formulas of the ops, against counts done by hand; the profiler reports exactly them."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_core.host.runtime import default_runtime


def tensor(*shape, seed=0, requires_grad=True):
    data = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return Tensor(data, requires_grad=requires_grad)


def profiled_flops(fn):
    """(forward FLOPs, backward FLOPs) of the single op ``fn`` calls, as the profiler saw them."""
    with tt.profiler.profile() as prof:
        out = fn()
        out.backward(np.ones_like(out.data))
    forward = [e for e in prof.events if e.kind == "forward"]
    backward = [e for e in prof.events if e.kind == "backward"]
    assert len(forward) == len(backward) == 1, [e.name for e in prof.events]
    return forward[0].flops, backward[0].flops


def stage_installed(name):
    return default_runtime().stage_status(name)[0] == "loaded"


@pytest.mark.parametrize("a_shape, b_shape, m_n_k_batch", [
    ((3, 4), (4, 5), (3, 5, 4, 1)),
    ((2, 3, 4), (4, 5), (3, 5, 4, 2)),
    ((7, 6), (6,), (7, 1, 6, 1)),
])
def test_matmul_is_two_flops_per_multiply_add(a_shape, b_shape, m_n_k_batch):
    m, n, k, batch = m_n_k_batch
    a, b = tensor(*a_shape), tensor(*b_shape, seed=1)
    forward, backward = profiled_flops(lambda: a @ b)
    assert forward == 2 * batch * m * n * k
    assert backward == 2 * forward  # grad @ b.T and a.T @ grad


def test_matmul_backward_counts_only_the_gradients_it_computes():
    a, b = tensor(3, 4), tensor(4, 5, seed=1, requires_grad=False)
    assert profiled_flops(lambda: a @ b) == (2 * 3 * 5 * 4, 2 * 3 * 5 * 4)


def test_linear_counts_the_product_and_the_bias():
    x, w, b = tensor(6, 4), tensor(3, 4, seed=1), tensor(3, seed=2)
    forward, backward = profiled_flops(lambda: tt.ops.linear(x, w, b))
    assert forward == 2 * 6 * 3 * 4 + 6 * 3
    assert backward == 2 * (2 * 6 * 3 * 4) + 6 * 3  # dx, dW, db


def test_elementwise_and_reductions_count_one_per_element():
    a, b = tensor(4, 5), tensor(4, 5, seed=1)
    assert profiled_flops(lambda: a * b) == (20, 2 * 20)
    assert profiled_flops(lambda: a + b) == (20, None)  # its backward passes the gradient on: no formula
    assert profiled_flops(lambda: a.sum(axis=1))[0] == 20
    assert profiled_flops(lambda: a.reshape(5, 4))[0] == 0  # moving data


@pytest.mark.skipif(not stage_installed("spatial"), reason="needs the spatial stage")
def test_conv2d_counts_a_multiply_add_per_weight_per_output_element():
    x, w, b = tensor(2, 3, 8, 8), tensor(4, 3, 3, 3, seed=1), tensor(4, seed=2)
    forward, backward = profiled_flops(lambda: tt.ops.conv2d(x, w, b, padding=1))
    outputs = 2 * 4 * 8 * 8
    assert forward == 2 * outputs * 3 * 3 * 3 + outputs
    assert backward == 2 * (2 * outputs * 27) + outputs
    grouped = tensor(6, 1, 3, 3, seed=3)  # groups=3: each output channel sees 1 input channel
    x6 = tensor(1, 3, 5, 5, seed=4)
    assert profiled_flops(lambda: tt.ops.conv2d(x6, grouped, None, groups=3))[0] == 2 * (6 * 3 * 3) * 9


@pytest.mark.skipif(not stage_installed("spatial"), reason="needs the spatial stage")
def test_pooling_reads_every_window_element_once():
    x = tensor(2, 3, 8, 8)
    assert profiled_flops(lambda: tt.ops.max_pool2d(x, 2))[0] == 2 * 3 * 4 * 4 * 4


@pytest.mark.skipif(not stage_installed("attention"), reason="needs the attention stage")
def test_attention_counts_its_two_products_and_twice_that_backward():
    q, k, v = tensor(2, 2, 4, 8), tensor(2, 2, 5, 8, seed=1), tensor(2, 2, 5, 3, seed=2)
    forward, backward = profiled_flops(lambda: tt.ops.scaled_dot_product_attention(q, k, v))
    scores = 2 * 2 * 4 * 5  # (B, H, Tq, Tk)
    assert forward == 2 * scores * 8 + 2 * scores * 3  # q k^T over D = 8, then P v over Dv = 3
    assert backward == 2 * forward


@pytest.mark.parametrize("needs, products", [
    ((True, False, False), ("dP", "dq")),
    ((False, True, False), ("dP", "dk")),
    ((False, False, True), ("dV",)),
    ((True, True, False), ("dP", "dq", "dk")),
])
def test_attention_backward_counts_only_the_products_its_gradients_need(needs, products):
    """It counted all four products (twice the forward) when only the query needed a gradient."""
    q, k, v = (tensor(2, 2, 4, 8, requires_grad=needs[0]), tensor(2, 2, 5, 8, seed=1, requires_grad=needs[1]),
               tensor(2, 2, 5, 3, seed=2, requires_grad=needs[2]))
    _, backward = profiled_flops(lambda: tt.ops.scaled_dot_product_attention(q, k, v))
    scores = 2 * 2 * 4 * 5
    size = {"dV": 2 * scores * 3, "dP": 2 * scores * 3, "dq": 2 * scores * 8, "dk": 2 * scores * 8}
    assert backward == sum(size[name] for name in products)


def test_every_registered_op_of_the_reference_stages_states_a_forward_formula():
    missing = [entry.name for entry in default_runtime().ops.values()
               if entry.stage in ("core", "nn", "spatial", "embeddings", "attention") and entry.function.flops is None]
    assert missing == []
