"""End-to-end: small MLPs built from the registry's layers learn seeded toy problems with every
optimizer (the loss must fall clearly), and every parameter gets a gradient and moves."""

import numpy as np
import pytest

import tinytorch_core
from tinytorch_core import Tensor


def _blobs(seed=0, n_per_class=32, classes=3, features=4):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, features)) * 2.0
    x = np.concatenate([c + 0.6 * rng.standard_normal((n_per_class, features)) for c in centers])
    y = np.repeat(np.arange(classes), n_per_class)
    return x, y


OPTIMIZERS = {
    "SGD": lambda params: tinytorch_core.optim.SGD(params, lr=0.2),
    "SGD-momentum": lambda params: tinytorch_core.optim.SGD(params, lr=0.05, momentum=0.9),
    "SGD-nesterov": lambda params: tinytorch_core.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                                            weight_decay=1e-4),
    "Adam": lambda params: tinytorch_core.optim.Adam(params, lr=0.02),
    "AdamW": lambda params: tinytorch_core.optim.AdamW(params, lr=0.02, weight_decay=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_mlp_learns_blobs_with_each_optimizer(name):
    nn = tinytorch_core.nn
    x, y = _blobs()
    model = nn.Sequential(nn.Linear(4, 16, generator=1), nn.ReLU(), nn.Linear(16, 3, generator=2))
    optimizer = OPTIMIZERS[name](model.parameters())
    loader = tinytorch_core.data.DataLoader(
        tinytorch_core.data.TensorDataset(x, y), batch_size=16, shuffle=True, generator=3
    )
    loss_fn = nn.CrossEntropyLoss()
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    full_x = Tensor(x)

    def full_loss():
        return loss_fn(model(full_x), y).item()

    initial = full_loss()
    for _ in range(15):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            for n, p in model.named_parameters():
                assert p.grad is not None and np.any(p.grad.data != 0), n
            optimizer.step()
    final = full_loss()
    assert final < 0.5 * initial, (initial, final)
    accuracy = (model(full_x).data.argmax(axis=1) == y).mean()
    assert accuracy > 0.9
    for n, p in model.named_parameters():
        assert not np.array_equal(p.data, before[n]), f"{n} never moved"


def test_xor_with_tanh_and_bce_with_logits_and_a_schedule():
    nn = tinytorch_core.nn
    x = Tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    model = nn.Sequential(nn.Linear(2, 8, generator=5), nn.Tanh(), nn.Linear(8, 1, generator=6))
    optimizer = tinytorch_core.optim.Adam(model.parameters(), lr=0.05)
    schedule = tinytorch_core.optim.StepLR(optimizer, step_size=150, gamma=0.5)
    loss_fn = nn.BCEWithLogitsLoss()
    initial = loss_fn(model(x), y).item()
    for _ in range(300):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        tinytorch_core.optim.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        schedule.step()
    assert loss.item() < 0.1 * initial
    predictions = (model(x).data > 0).astype(float)
    np.testing.assert_array_equal(predictions, y)
    assert schedule.get_last_lr() == [0.05 * 0.25]


def test_regression_with_mse_gelu_and_dropout():
    nn = tinytorch_core.nn
    rng = np.random.default_rng(8)
    x = rng.uniform(-2, 2, (64, 1))
    y = np.sin(x)
    model = nn.Sequential(nn.Linear(1, 32, generator=9), nn.GELU(), nn.Dropout(0.1, generator=10),
                          nn.Linear(32, 1, generator=11))
    optimizer = tinytorch_core.optim.AdamW(model.parameters(), lr=0.02)
    loss_fn = nn.MSELoss()
    xt = Tensor(x)
    model.eval()
    initial = loss_fn(model(xt), y).item()
    model.train()
    for _ in range(200):
        optimizer.zero_grad()
        loss_fn(model(xt), y).backward()
        optimizer.step()
    model.eval()
    assert loss_fn(model(xt), y).item() < 0.1 * initial
