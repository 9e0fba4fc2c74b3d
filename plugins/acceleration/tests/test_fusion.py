"""The fused Linear-ReLU kernel: the pair's bits, as an op and inside a replay, and only where
nothing else can tell the difference."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor, default_runtime
from tinytorch_core.testing import opcheck
from tinytorch_acceleration.fused import LinearReLUFunction, linear_relu


def _arrays(seed, x_shape, out_features, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal((out_features, x_shape[-1])).astype(dtype)
    bias = rng.standard_normal(out_features).astype(dtype)
    return x, weight, bias


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape,with_bias", [((6, 5), True), ((2, 3, 5), True), ((5,), True), ((6, 5), False)])
def test_the_fused_op_gives_the_pairs_bits_forward_and_backward(dtype, x_shape, with_bias):
    x, weight, bias = _arrays(0, x_shape, 4, dtype)
    bias = bias if with_bias else None
    upstream = np.random.default_rng(1).standard_normal((*x_shape[:-1], 4)).astype(dtype)
    results = []
    for fused in (True, False):
        xt, wt = Tensor(x, requires_grad=True), Tensor(weight, requires_grad=True)
        bt = None if bias is None else Tensor(bias, requires_grad=True)
        out = linear_relu(xt, wt, bt) if fused else tt.ops.relu(tt.ops.linear(xt, wt, bt))
        (out * Tensor(upstream)).sum().backward()
        grads = [t.grad.data.tobytes() for t in (xt, wt, bt) if t is not None]
        results.append((out.data.tobytes(), out.data.dtype, grads))
    assert results[0] == results[1]


def test_a_bias_of_another_dtype_is_refused_as_linear_refuses_it():
    x, weight, bias = _arrays(0, (3, 4), 2, np.float32)
    for op in (linear_relu, tt.ops.linear):
        with pytest.raises(TypeError, match="the operands must share one dtype, got input float32, weight float32, "
                                            "bias float64"):
            op(Tensor(x), Tensor(weight), Tensor(bias, dtype=np.float64))
    ctx = object.__new__(LinearReLUFunction)  # the kernel itself, handed a wider bias directly
    with pytest.raises(TypeError, match="must share one dtype"):
        LinearReLUFunction.forward(ctx, x, weight, bias.astype(np.float64))


def test_the_fused_op_names_itself_in_errors():
    x, weight, _ = _arrays(0, (3, 4), 2, np.float32)
    with pytest.raises(ValueError, match="linear_relu: input of shape"):
        linear_relu(Tensor(x[:, :3]), Tensor(weight))
    with pytest.raises(ValueError, match=r"linear_relu: bias must have shape \(2,\)"):
        linear_relu(Tensor(x), Tensor(weight), Tensor(np.zeros(3, np.float32)))
    with pytest.raises(TypeError, match="float"):
        linear_relu(Tensor(np.ones((3, 4), np.int64)), Tensor(weight))


def test_the_fused_op_is_registered_and_gradient_checked():
    entry = default_runtime().ops["acceleration::linear_relu"]
    assert entry.function is LinearReLUFunction and tt.ops.linear_relu is linear_relu
    assert opcheck("acceleration::linear_relu").samples_checked == 3


# ---- inside a replay ----------------------------------------------------------------------------------
class TwoLayers(tt.nn.Module):
    """Linear-ReLU-Linear; ``mode`` adds a second reader of the first Linear's output."""

    def __init__(self, mode="plain"):
        super().__init__()
        self.fc1, self.fc2, self.mode = tt.nn.Linear(5, 8, generator=0), tt.nn.Linear(8, 3, generator=1), mode

    def forward(self, x):
        pre = self.fc1(x)
        hidden = tt.ops.relu(pre)
        if self.mode == "pre also read":  # the pre-activation has a second consumer: no fusion
            hidden = hidden + pre * 0.5
        return self.fc2(hidden)


def _step(model, optimizer, x, y):
    loss = tt.nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _train(mode, compiled, steps=12):
    model = TwoLayers(mode)
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)
    step = tt.compile(_step) if compiled else _step
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((16, 5)).astype(np.float32))
    y = Tensor(rng.integers(0, 3, 16))
    losses = [step(model, optimizer, x, y) for _ in range(steps)]
    return losses, [p.data.tobytes() for p in model.parameters()], step


@pytest.mark.parametrize("mode,fused", [("plain", True), ("pre also read", False)])
def test_a_replay_fuses_linear_relu_only_where_nothing_else_reads_the_pre_activation(mode, fused, monkeypatch):
    import tinytorch_acceleration.recorder as recorder

    fusions = []
    real_fuse = recorder.fuse

    def counting_fuse(steps, kept):
        out = real_fuse(steps, kept)
        fusions.append(sum(getattr(s, "function", None) is LinearReLUFunction for s in out))
        return out

    monkeypatch.setattr(recorder, "fuse", counting_fuse)
    eager_losses, eager_params, _ = _train(mode, compiled=False)
    losses, params, step = _train(mode, compiled=True)
    assert step.replays == 10
    assert fusions and all(n == (2 if fused else 0) for n in fusions)  # the fused forward and backward
    assert losses == eager_losses and params == eager_params


def test_a_step_returning_the_pre_activation_is_not_fused():
    model = TwoLayers()
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        pre = model.fc1(x)
        loss = model.fc2(tt.ops.relu(pre)).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return pre

    compiled = tt.compile(step)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
    eager_model = TwoLayers()
    eager_optimizer = tt.optim.SGD(eager_model.parameters(), lr=0.1)
    for _ in range(5):
        got = compiled(x)
        pre = eager_model.fc1(x)
        eager_model.fc2(tt.ops.relu(pre)).sum().backward()
        eager_optimizer.step()
        eager_optimizer.zero_grad()
        assert got.data.tobytes() == pre.data.tobytes()
    assert compiled.replays == 3


@pytest.mark.parametrize("mode", ["plain", "pre also read"])
def test_a_forward_only_step_gives_the_eager_bits(mode):
    model = TwoLayers(mode)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))

    @tt.compile
    def infer(x):
        return model(x)

    with tt.no_grad():
        outputs = [infer(x).data.tobytes() for _ in range(4)]
        expected = model(x).data.tobytes()
    assert infer.replays == 2 and set(outputs) == {expected}
