"""Layers, loss modules, registration with the host, and the opcheck of every registered op."""

import math

import numpy as np
import pytest

from tinytorch_core.testing import assert_registers_catalog

import tinytorch_core
import tinytorch_nn as nn
from tinytorch_core import Module, Tensor, catalog
from tinytorch_core.testing import gradcheck
from tinytorch_nn import functional as F


def _x(rng, *shape):
    return Tensor(rng.standard_normal(shape))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ---- registration ----------------------------------------------------------------------------
def test_core_namespaces_resolve_to_this_plugin():
    assert tinytorch_core.nn.Linear is nn.Linear
    assert tinytorch_core.nn.CrossEntropyLoss is nn.CrossEntropyLoss
    assert tinytorch_core.optim.AdamW is nn.AdamW
    assert tinytorch_core.data.DataLoader is nn.DataLoader
    assert tinytorch_core.init.kaiming_uniform_ is nn.kaiming_uniform_
    assert tinytorch_core.io.save is nn.save
    assert tinytorch_core.ops.cross_entropy is F.cross_entropy


def test_registers_exactly_the_catalog_names(tinytorch_runtime):
    assert_registers_catalog("nn", tinytorch_runtime)


@pytest.mark.parametrize("name", catalog.stage("nn").symbols["ops"])
def test_opcheck(name, opcheck):
    report = opcheck(f"nn::{name}")
    assert report.samples_checked >= 2


# ---- Linear ----------------------------------------------------------------------------------
def test_linear_shapes_init_range_and_forward(rng):
    layer = nn.Linear(400, 30, generator=0)
    assert layer.weight.shape == (30, 400) and layer.bias.shape == (30,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    bound = 1 / math.sqrt(400)
    for p in (layer.weight, layer.bias):
        assert np.all(np.abs(p.data) <= bound)
    # U(-b, b) has standard deviation b / sqrt(3)
    assert abs(layer.weight.data.std() - bound / math.sqrt(3)) < 0.03 * bound
    x = _x(rng, 5, 400)
    np.testing.assert_allclose(layer(x).data, x.data @ layer.weight.data.T + layer.bias.data, rtol=1e-5)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert repr(layer) == "Linear(in_features=400, out_features=30, bias=True)"


def test_linear_is_reproducible_from_a_seed_and_without_bias():
    a, b, c = nn.Linear(6, 3, generator=1), nn.Linear(6, 3, generator=1), nn.Linear(6, 3, generator=2)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    no_bias = nn.Linear(6, 3, bias=False, generator=1)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]
    assert nn.Linear(6, 3, dtype=np.float64).weight.dtype == np.float64


def test_linear_gradients_for_input_and_parameters(rng):
    layer = nn.Linear(4, 3, generator=3).to(np.float64)
    assert gradcheck(lambda x: layer(x), rng.standard_normal((5, 4)))
    layer.zero_grad()  # gradcheck's backward reached the parameters too
    x = rng.standard_normal((5, 4))
    out = layer(Tensor(x, dtype=np.float64))
    g = rng.standard_normal((5, 3))
    out.backward(g)
    np.testing.assert_allclose(layer.weight.grad.data, g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.data, g.sum(axis=0), rtol=1e-12)


def test_linear_rejects_bad_sizes():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 3)
    with pytest.raises(ValueError, match="in_features=4"):
        nn.Linear(4, 2)(Tensor(np.zeros((2, 5))))


# ---- containers ------------------------------------------------------------------------------
def test_sequential_naming_indexing_and_forward(rng):
    model = nn.Sequential(nn.Linear(4, 8, generator=0), nn.ReLU(), nn.Linear(8, 2, generator=1))
    assert len(model) == 3
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(model[1], nn.ReLU) and model[-1] is model[2]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and len(tail) == 2 and tail[1] is model[2]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    x = _x(rng, 3, 4)
    np.testing.assert_allclose(model(x).data, model[2](model[1](model[0](x))).data)
    with pytest.raises(IndexError, match="out of range"):
        model[3]
    with pytest.raises(TypeError, match="Modules"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    assert len(nn.Sequential([nn.ReLU(), nn.Tanh()])) == 2


def test_identity_returns_its_input():
    x = Tensor([1.0, 2.0])
    assert nn.Identity()(x) is x


# ---- dropout layer ---------------------------------------------------------------------------
def test_dropout_layer_train_and_eval():
    x = Tensor(np.ones((100, 100)))
    layer = nn.Dropout(0.3, generator=4)
    first, second = layer(x).data, layer(x).data
    assert not np.array_equal(first, second)  # the layer's stream advances
    assert abs((first == 0).mean() - 0.3) < 0.02
    twin = nn.Dropout(0.3, generator=4)
    np.testing.assert_array_equal(twin(x).data, first)
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(-0.1)


def test_model_train_eval_reaches_dropout():
    model = nn.Sequential(nn.Linear(3, 3, generator=0), nn.Dropout(0.5, generator=0))
    model.eval()
    assert model[1].training is False
    x = Tensor(np.ones((2, 3)))
    np.testing.assert_allclose(model(x).data, model[0](x).data)


# ---- activation and loss modules ---------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, fn",
    [
        (nn.ReLU(), F.relu),
        (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
        (nn.Sigmoid(), F.sigmoid),
        (nn.Tanh(), F.tanh),
        (nn.GELU(), F.gelu),
        (nn.GELU("tanh"), lambda x: F.gelu(x, "tanh")),
        (nn.Softmax(axis=0), lambda x: F.softmax(x, 0)),
        (nn.LogSoftmax(), F.log_softmax),
    ],
)
def test_activation_modules_match_functions(layer, fn, rng):
    x = _x(rng, 3, 4)
    np.testing.assert_array_equal(layer(x).data, fn(x).data)


def test_loss_modules_match_functions(rng):
    x, y = _x(rng, 4, 3), rng.integers(0, 3, 4)
    y[1] = -1
    np.testing.assert_array_equal(
        nn.CrossEntropyLoss(ignore_index=-1, label_smoothing=0.1)(x, y).data,
        F.cross_entropy(x, y, ignore_index=-1, label_smoothing=0.1).data,
    )
    np.testing.assert_array_equal(
        nn.NLLLoss(ignore_index=-1, reduction="sum")(x, y).data, F.nll_loss(x, y, -1, reduction="sum").data
    )
    t = Tensor(rng.uniform(0, 1, (4, 3)))
    np.testing.assert_array_equal(nn.MSELoss("none")(x, t).data, F.mse_loss(x, t, "none").data)
    np.testing.assert_array_equal(nn.BCEWithLogitsLoss()(x, t).data, F.binary_cross_entropy_with_logits(x, t).data)
    p = F.sigmoid(x)
    np.testing.assert_array_equal(nn.BCELoss("sum")(p, t).data, F.binary_cross_entropy(p, t, "sum").data)
    with pytest.raises(ValueError, match="MSELoss: reduction"):
        nn.MSELoss(reduction="avg")


# ---- state dicts through save / load -------------------------------------------------------------
class TwoLayer(Module):
    def __init__(self, seed):
        super().__init__()
        self.fc1 = nn.Linear(5, 7, generator=seed)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(7, 2, generator=seed + 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_state_dict_round_trip_through_save_and_load(tmp_path, rng):
    source, target = TwoLayer(0), TwoLayer(10)
    x = _x(rng, 3, 5)
    assert not np.allclose(source(x).data, target(x).data)
    path = tmp_path / "model.npz"
    nn.save(source.state_dict(), path)
    loaded = nn.load(path)
    assert list(loaded) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(v.dtype == np.float32 for v in loaded.values())
    target.load_state_dict(loaded)
    np.testing.assert_array_equal(source(x).data, target(x).data)
