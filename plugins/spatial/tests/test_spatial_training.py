"""End-to-end: small CNNs built from the registry (spatial layers with the nn stage's Linear,
ReLU, loss and SGD) learn a seeded synthetic image task; the loss must fall clearly, every
parameter must get a gradient and move."""

import numpy as np
import pytest

import tinytorch_core
from tinytorch_core import Tensor


def stripes(seed=0, per_class=32, size=8):
    """Noisy 8x8 images of three classes: a vertical bar, a horizontal bar, or a diagonal,
    each at a random position."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(per_class):
            image = 0.3 * rng.standard_normal((size, size))
            k = rng.integers(1, size - 1)
            if label == 0:
                image[:, k] += 1.0
            elif label == 1:
                image[k, :] += 1.0
            else:
                image[np.arange(size), (np.arange(size) + k) % size] += 1.0
            images.append(image)
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order][:, None].astype(np.float32), np.array(labels)[order]


def digits_cnn():
    nn = tinytorch_core.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, generator=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, generator=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 3, generator=3),
    )


def batch_norm_cnn():
    nn = tinytorch_core.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, (3, 5), padding=(1, 2), bias=False, generator=4), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AvgPool2d(2), nn.Conv2d(6, 8, 3, stride=2, padding=1, generator=5), nn.ReLU(),
        nn.Flatten(), nn.Linear(32, 3, generator=6),
    )


@pytest.mark.parametrize("make_model, lr", [(digits_cnn, 0.1), (batch_norm_cnn, 0.05)], ids=["digits", "batchnorm"])
def test_cnn_learns_a_synthetic_pattern_task(make_model, lr):
    x, y = stripes()
    model = make_model()
    optimizer = tinytorch_core.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = tinytorch_core.nn.CrossEntropyLoss()
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    inputs = Tensor(x)

    def evaluate():
        model.eval()
        logits = model(inputs)
        model.train()
        return loss_fn(logits, y).item(), (logits.data.argmax(axis=1) == y).mean()

    initial, _ = evaluate()
    for epoch in range(12):
        for start in range(0, len(y), 16):
            optimizer.zero_grad()
            loss = loss_fn(model(Tensor(x[start : start + 16])), y[start : start + 16])
            loss.backward()
            if epoch == 0 and start == 0:
                for name, p in model.named_parameters():
                    assert p.grad is not None and np.any(p.grad.data != 0), f"{name} got no gradient"
            optimizer.step()
    final, accuracy = evaluate()
    assert final < 0.25 * initial, (initial, final)
    assert accuracy > 0.9
    for name, p in model.named_parameters():
        assert not np.array_equal(p.data, before[name]), f"{name} never moved"
        assert p.dtype == np.float32


def test_stage_symbols_are_the_ones_the_model_uses():
    assert tinytorch_core.nn.Conv2d.__module__ == "tinytorch_spatial.layers"
    assert tinytorch_core.nn.Linear.__module__.startswith("tinytorch_nn")
