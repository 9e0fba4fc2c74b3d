"""Perceptron 1957: a single neuron separates two point clouds."""

from __future__ import annotations

from .common import binary_accuracy, chunked_loss, generator, seed_of
from .datasets import two_blobs
from .harness import Bars, Experiment, epochs_of, run_experiment
from .runner import MilestoneOutcome

NAME, YEAR, TITLE = "perceptron", 1957, "Perceptron"
DESCRIPTION = (
    "Rosenblatt's perceptron: one Linear neuron with a sigmoid, trained with binary cross-entropy "
    "and SGD, separates two 2-D Gaussian blobs (separable by construction)."
)
BARS = Bars(loss_drop_min=0.90, metric_min=1.0)
EPOCHS, BATCH, LR = 30, 20, 0.5


def bce_loss(tt):
    criterion = tt.nn.BCELoss()

    def loss_fn(model, x, y):
        return criterion(model(x).reshape(-1), y)

    return loss_fn


def run(options) -> MilestoneOutcome:
    part = run_experiment(experiment(options), options.progress)
    return MilestoneOutcome(parts=[part], data="two Gaussian blobs: 200 train / 200 test points")


def experiment(options) -> Experiment:
    """The perceptron, its data and its training (``run`` trains it; ``milestones profile``
    profiles one step of it)."""
    tt = options.symbols()
    rng = generator(options.seed, YEAR)
    x_train, y_train = two_blobs(rng, 200)
    x_test, y_test = two_blobs(rng, 200)
    model = tt.nn.Sequential(tt.nn.Linear(2, 1, generator=rng), tt.nn.Sigmoid())
    loss_fn = bce_loss(tt)
    loader = tt.data.DataLoader(
        tt.data.TensorDataset(x_train, y_train), batch_size=BATCH, shuffle=True, generator=seed_of(rng)
    )
    return Experiment(
        label="perceptron",
        architecture="Linear(2,1) + Sigmoid; BCE; SGD lr 0.5",
        model=model,
        optimizer=tt.optim.SGD(model.parameters(), lr=LR),
        loss_fn=loss_fn,
        batches=epochs_of(loader, EPOCHS),
        steps=EPOCHS * len(loader),
        evaluate=lambda m: binary_accuracy(m, x_test, y_test),
        train_loss=lambda m: chunked_loss(m, loss_fn, x_train, y_train),
        bars=BARS,
        metric_name="test acc",
        eval_every=len(loader),
        seed=options.seed,
    )
