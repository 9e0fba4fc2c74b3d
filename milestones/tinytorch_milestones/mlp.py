"""MLP 1986: backpropagation trains a hidden layer that reads handwritten digits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import chunked_loss, class_accuracy, generator, seed_of
from .datasets import ImageSplit, image_data
from .harness import Bars, Experiment, epochs_of, run_experiment
from .runner import MilestoneOutcome

NAME, YEAR, TITLE = "mlp", 1986, "MLP"
DESCRIPTION = (
    "Rumelhart, Hinton and Williams: backpropagation through a hidden layer. An MLP with one "
    "hidden ReLU layer classifies the 8x8 UCI digits (or MNIST with --mnist-dir): cross-entropy, Adam."
)
# label smoothing 0.1 floors the cross-entropy at ~0.50 nats (10 classes), so a drop of 70 %
# (2.30 -> 0.69) is a fall most of the way to that floor
BARS = Bars(loss_drop_min=0.70, metric_min=0.95)
TRAIN_LOSS_EXAMPLES = 10_000  # the fixed training subset whose loss is compared before/after


@dataclass(frozen=True)
class Training:
    """How the MLP and the CNN are trained: the same recipe, so only the architecture differs."""

    epochs: int
    batch: int
    lr: float
    label_smoothing: float


DIGITS_TRAINING = Training(epochs=8, batch=32, lr=1e-3, label_smoothing=0.1)
MNIST_TRAINING = Training(epochs=2, batch=64, lr=1e-3, label_smoothing=0.1)
CIFAR_TRAINING = Training(epochs=2, batch=64, lr=1e-3, label_smoothing=0.1)
CIFAR_BARS = Bars(loss_drop_min=0.15, metric_min=0.30)  # an MLP on CIFAR-10 pixels: a sanity bar
HIDDEN = 128


def training_recipe(options) -> Training:
    if options.mnist_dir:
        return MNIST_TRAINING
    return CIFAR_TRAINING if getattr(options, "cifar_dir", None) else DIGITS_TRAINING


def standardized(data: ImageSplit) -> tuple:
    """Train and test images standardised per pixel with the training set's statistics
    (the std is floored so that always-blank border pixels stay near zero)."""
    mean = data.x_train.mean(axis=0)
    std = data.x_train.std(axis=0) + 0.1
    return ((data.x_train - mean) / std).astype(np.float32), ((data.x_test - mean) / std).astype(np.float32)


def cross_entropy(tt, label_smoothing: float = 0.0):
    criterion = tt.nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def loss_fn(model, x, y):
        return criterion(model(x), y)

    return loss_fn


def classifier_experiment(options, tt, data: ImageSplit, model, x_train, x_test, label, architecture, rng, bars):
    """The training both image milestones share: same data, loss, optimizer, batches, epochs."""
    recipe = training_recipe(options)
    architecture += (f"; cross-entropy (label smoothing {recipe.label_smoothing:g}); Adam lr {recipe.lr:g}; "
                     f"batch {recipe.batch}; {recipe.epochs} epochs")
    loss_fn = cross_entropy(tt, recipe.label_smoothing)
    loader = tt.data.DataLoader(
        tt.data.TensorDataset(x_train, data.y_train), batch_size=recipe.batch, shuffle=True,
        generator=seed_of(rng),
    )
    n_loss = min(len(x_train), TRAIN_LOSS_EXAMPLES)
    return Experiment(
        label=label,
        architecture=architecture,
        model=model,
        optimizer=tt.optim.Adam(model.parameters(), lr=recipe.lr),
        loss_fn=loss_fn,
        batches=epochs_of(loader, recipe.epochs),
        steps=recipe.epochs * len(loader),
        evaluate=lambda m: class_accuracy(m, x_test, data.y_test, chunk=512),
        train_loss=lambda m: chunked_loss(m, loss_fn, x_train[:n_loss], data.y_train[:n_loss], chunk=512),
        bars=bars,
        metric_name="test acc",
        eval_every=len(loader),
        seed=options.seed,
    )


def data_key(options, data: ImageSplit) -> tuple:
    return ("mlp accuracy", options.seed, data.name)


def train_mlp(options, tt, data: ImageSplit, label: str = ""):
    """Train the MLP on ``data``; the CNN milestone calls this for its baseline if needed."""
    part = run_experiment(mlp_experiment(options, tt, data, label), options.progress)
    options.shared[data_key(options, data)] = part.metric
    return part


def experiment(options) -> Experiment:
    """The MLP on the milestone's images, for ``milestones profile``."""
    tt = options.symbols()
    return mlp_experiment(options, tt, image_data(options))


def mlp_experiment(options, tt, data: ImageSplit, label: str = "") -> Experiment:
    rng = generator(options.seed, YEAR)
    x_train, x_test = standardized(data)
    features = data.features
    x_train = x_train.reshape(len(x_train), features)
    x_test = x_test.reshape(len(x_test), features)
    model = tt.nn.Sequential(
        tt.nn.Linear(features, HIDDEN, generator=rng), tt.nn.ReLU(),
        tt.nn.Linear(HIDDEN, data.num_classes, generator=rng),
    )
    architecture = f"Linear({features},{HIDDEN}) + ReLU + Linear({HIDDEN},{data.num_classes})"
    bars = CIFAR_BARS if getattr(options, "cifar_dir", None) else BARS
    return classifier_experiment(options, tt, data, model, x_train, x_test, label or "MLP", architecture, rng, bars)


def run(options) -> MilestoneOutcome:
    tt = options.symbols()
    data = image_data(options)
    part = train_mlp(options, tt, data)
    return MilestoneOutcome(parts=[part], data=data.describe())
