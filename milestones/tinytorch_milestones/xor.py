"""XOR 1969: a single layer cannot learn XOR (Minsky and Papert); a hidden layer can."""

from __future__ import annotations

import math

from .common import binary_accuracy, chunked_loss, generator
from .datasets import xor_data
from .harness import Bars, Experiment, run_experiment
from .perceptron import bce_loss
from .runner import MilestoneOutcome

NAME, YEAR, TITLE = "xor", 1969, "XOR"
DESCRIPTION = (
    "Minsky and Papert's objection: a single-layer perceptron cannot represent XOR (it stays at "
    "<= 75 % and its loss cannot go below ln 2); a 2-layer MLP fits it exactly."
)
# the best linear model of XOR predicts 0.5 everywhere: its BCE is exactly ln 2
LINEAR_BARS = Bars(final_loss_min=0.69, metric_max=0.75)
MLP_BARS = Bars(loss_drop_min=0.90, final_loss_max=0.05, metric_min=1.0)
LINEAR_STEPS, MLP_STEPS, HIDDEN = 300, 400, 8


def full_batches(x, y, steps):
    for _ in range(steps):
        yield x, y


def run(options) -> MilestoneOutcome:
    tt = options.symbols()
    rng = generator(options.seed, YEAR)
    linear = tt.nn.Sequential(tt.nn.Linear(2, 1, generator=rng), tt.nn.Sigmoid())
    single = run_experiment(fit(options, "single layer (must fail)", "Linear(2,1) + Sigmoid; BCE; SGD lr 0.5", linear,
                                tt.optim.SGD(linear.parameters(), lr=0.5), LINEAR_STEPS, LINEAR_BARS),
                            options.progress)
    single.notes.append(f"ln 2 = {math.log(2):.4f}: the loss of predicting 0.5 for every point")
    two_layer = run_experiment(mlp_experiment(options, rng), options.progress)
    return MilestoneOutcome(parts=[single, two_layer], data="the 4 XOR points")


def experiment(options) -> Experiment:
    """The 2-layer MLP that fits XOR, for ``milestones profile``."""
    return mlp_experiment(options, generator(options.seed, YEAR))


def mlp_experiment(options, rng) -> Experiment:
    tt = options.symbols()
    mlp = tt.nn.Sequential(
        tt.nn.Linear(2, HIDDEN, generator=rng), tt.nn.Tanh(), tt.nn.Linear(HIDDEN, 1, generator=rng), tt.nn.Sigmoid()
    )
    return fit(options, "2-layer MLP", f"Linear(2,{HIDDEN}) + Tanh + Linear({HIDDEN},1) + Sigmoid; BCE; Adam lr 0.05",
               mlp, tt.optim.Adam(mlp.parameters(), lr=0.05), MLP_STEPS, MLP_BARS)


def fit(options, label, architecture, model, optimizer, steps, bars) -> Experiment:
    """Train on the 4 points, full batch, and judge by accuracy on them."""
    x, y = xor_data()
    loss_fn = bce_loss(options.symbols())
    return Experiment(
        label=label,
        architecture=architecture,
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn,
        batches=full_batches(x, y, steps),
        steps=steps,
        evaluate=lambda m: binary_accuracy(m, x, y),
        train_loss=lambda m: chunked_loss(m, loss_fn, x, y),
        bars=bars,
        metric_name="acc (4 points)",
        eval_every=25,
        seed=options.seed,
    )
