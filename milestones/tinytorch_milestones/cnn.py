"""CNN 1998: convolutions (LeNet) read the same digits as images, better than the MLP."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import generator
from .datasets import ImageSplit, image_data
from .harness import Bars, Check, Experiment, run_experiment
from .mlp import classifier_experiment, data_key, standardized, train_mlp
from .runner import MilestoneOutcome

NAME, YEAR, TITLE = "cnn", 1998, "CNN"
DESCRIPTION = (
    "LeCun et al.'s LeNet idea: a small convolutional network (Conv2d, ReLU, MaxPool2d, twice, then "
    "Linear) reads the digits as 1-channel images. Trained exactly like the MLP (same inputs, loss, "
    "optimizer, batches, epochs), it must beat the MLP on the same split."
)
BARS = Bars(loss_drop_min=0.70, metric_min=0.97)


@dataclass(frozen=True)
class Architecture:
    channels: tuple  # output channels of the two stages
    kernel: int
    padding: int
    convs_per_stage: int = 1  # convolutions (each with a ReLU) before each 2x2 max-pool


DIGITS_ARCH = Architecture(channels=(32, 64), kernel=3, padding=1, convs_per_stage=2)
MNIST_ARCH = Architecture(channels=(16, 32), kernel=5, padding=0)
CIFAR_ARCH = Architecture(channels=(32, 64), kernel=3, padding=1)
CIFAR_BARS = Bars(loss_drop_min=0.30, metric_min=0.60)  # CIFAR-10 (3x32x32 colour images)


def architecture_for(options) -> Architecture:
    if options.mnist_dir:
        return MNIST_ARCH
    return CIFAR_ARCH if getattr(options, "cifar_dir", None) else DIGITS_ARCH


def build_cnn(tt, arch: Architecture, image_shape: tuple, num_classes: int, rng, in_channels: int = 1):
    c1, c2 = arch.channels
    h, w = image_shape
    for _ in range(2):  # each stage: convolutions (size + 2p - k + 1 each), then 2x2 pooling
        for _ in range(arch.convs_per_stage):
            h, w = h + 2 * arch.padding - arch.kernel + 1, w + 2 * arch.padding - arch.kernel + 1
        h, w = h // 2, w // 2
    k, p = arch.kernel, arch.padding
    layers, words, channels = [], [], in_channels
    for out in (c1, c2):
        for _ in range(arch.convs_per_stage):
            layers += [tt.nn.Conv2d(channels, out, k, padding=p, generator=rng), tt.nn.ReLU()]
            words.append(f"Conv({out},{k}x{k})")
            channels = out
        layers.append(tt.nn.MaxPool2d(2))
        words.append("Pool")
    layers += [tt.nn.Flatten(), tt.nn.Linear(c2 * h * w, num_classes, generator=rng)]
    words.append(f"Linear({c2 * h * w},{num_classes})")
    return tt.nn.Sequential(*layers), "-".join(words)


def experiment(options, data: ImageSplit | None = None) -> Experiment:
    """The CNN, its data and its training (``run`` trains it; ``milestones profile`` profiles one
    step of it)."""
    tt = options.symbols()
    data = data or image_data(options)
    rng = generator(options.seed, YEAR)
    x_train, x_test = standardized(data)
    if data.channels == 1:  # (N, H, W) -> (N, 1, H, W)
        x_train, x_test = x_train[:, None], x_test[:, None]
    model, architecture = build_cnn(tt, architecture_for(options), data.image_shape, data.num_classes, rng,
                                    in_channels=data.channels)
    bars = CIFAR_BARS if getattr(options, "cifar_dir", None) else BARS
    return classifier_experiment(options, tt, data, model, x_train, x_test, "CNN", architecture, rng, bars)


def trained_model_key(options) -> tuple:
    """Where a run leaves the trained digits CNN for a later milestone of the same verify (MLPerf)."""
    return ("trained digits cnn", options.seed)


def run(options) -> MilestoneOutcome:
    tt = options.symbols()
    data: ImageSplit = image_data(options)
    trained = experiment(options, data)
    cnn = run_experiment(trained, options.progress)
    if not (options.mnist_dir or getattr(options, "cifar_dir", None)) and cnn.passed:
        options.shared[trained_model_key(options)] = trained.model
    parts = []
    baseline = options.shared.get(data_key(options, data))
    source = "from the MLP milestone of this run"
    if baseline is None:  # run alone: train the MLP milestone's model on the same split here
        mlp_part = train_mlp(options, tt, data, label="MLP baseline (same split)")
        parts.append(mlp_part)
        baseline = mlp_part.metric
        source = "trained here"
    parts.append(cnn)
    beats = bool(np.isfinite(cnn.metric) and np.isfinite(baseline) and cnn.metric > baseline)
    check = Check(
        "CNN beats the MLP on the same split",
        beats,
        f"CNN {100 * cnn.metric:.2f}% vs MLP {100 * baseline:.2f}% ({source})",
    )
    return MilestoneOutcome(parts=parts, checks=[check], data=data.describe())
