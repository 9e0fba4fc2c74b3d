"""``tinytorch_milestones.datasets.load_digits``: the bundled digits as the README shows them."""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt
from tinytorch_milestones import datasets
from tinytorch_milestones.datasets import load_digits


def test_load_digits_gives_fixed_train_and_test_splits():
    digits = load_digits()
    x_train, y_train = digits.train
    x_test, y_test = digits.test
    assert x_train.shape == (1438, 8, 8) and x_test.shape == (359, 8, 8)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert y_train.shape == (1438,) and y_test.shape == (359,)
    assert 0.0 <= x_train.min() and x_train.max() == 1.0  # pixel counts 0..16, divided by 16
    # stratified: every digit in both sets, about a fifth of each in the test set
    train_counts, test_counts = np.bincount(y_train, minlength=10), np.bincount(y_test, minlength=10)
    assert (train_counts > 130).all() and (35 <= test_counts).all() and (test_counts <= 37).all()
    assert digits.image_shape == (8, 8) and digits.num_classes == 10
    assert digits.describe() == "digits (UCI 8x8): 1438 train / 359 test images of 8x8"


def test_load_digits_is_the_same_every_time():
    a, b = load_digits(), load_digits()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.train[0] is a.x_train and a.test[1] is a.y_test


def test_load_digits_is_public_and_trains_as_the_readme_shows():
    assert "load_digits" in datasets.__all__
    x, y = load_digits().train
    loader = tt.data.DataLoader(tt.data.TensorDataset(x.reshape(len(x), -1), y), batch_size=64, shuffle=True, generator=0)
    model = tt.nn.Sequential(tt.nn.Linear(64, 32, generator=0), tt.nn.ReLU(), tt.nn.Linear(32, 10, generator=1))
    opt = tt.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = tt.nn.CrossEntropyLoss()
    for epoch in range(3):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
    x_test, y_test = load_digits().test
    accuracy = (model(tt.Tensor(x_test.reshape(len(x_test), -1))).data.argmax(axis=1) == y_test).mean()
    assert accuracy > 0.85  # three epochs already read most digits
