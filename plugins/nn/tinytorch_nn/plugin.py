"""pluggy hooks of the 'nn' stage: its ops (with the sample inputs they are gradient-checked
on) and its layers, optimizers, data, init and io symbols, exactly as the catalog lists them.
The entry point's name, ``nn``, says which stage this plugin provides.

Samples are float64 (the differentiable inputs) and cover the hard points: saturated sigmoid
and tanh, logits of -1000, probabilities near 0 and 1, ignored targets, label smoothing,
spatial class layouts, class weights, class-probability targets, inputs of one and three
dimensions. Values stay away from kinks (ReLU at 0) so that central differences are meaningful.
"""

from __future__ import annotations

import numpy as np

from tinytorch_core import Sample, Tensor, hookimpl
from tinytorch_core.host.samples import rand_away_from, randn

import tinytorch_nn

from . import functional as F


def _fixed(x) -> Tensor:
    """A float64 input that is passed through without being gradient-checked."""
    return Tensor(x, dtype=np.float64)


_HARD = np.array([-1000.0, -40.0, -8.0, 8.0, 40.0, 1000.0])


def linear_samples(rng):
    yield Sample(randn(rng, 4, 5), randn(rng, 3, 5), randn(rng, 3))
    yield Sample(randn(rng, 2, 3, 5), randn(rng, 2, 5))  # batched 3-D input, no bias
    yield Sample(randn(rng, 5), randn(rng, 2, 5), randn(rng, 2))  # a single vector
    yield Sample(_fixed(randn(rng, 3, 4)), randn(rng, 2, 4), randn(rng, 2))  # input needs no grad


def relu_samples(rng):
    yield Sample(rand_away_from(rng, (3, 4)))
    yield Sample(rand_away_from(rng, (2, 2, 3)))


def leaky_relu_samples(rng):
    yield Sample(rand_away_from(rng, (3, 4)))
    yield Sample(rand_away_from(rng, (2, 5)), negative_slope=0.2)


def sigmoid_samples(rng):
    yield Sample(randn(rng, 3, 4) * 3)
    yield Sample(_HARD.copy())  # saturated on both sides: no overflow, no NaN


def tanh_samples(rng):
    yield Sample(randn(rng, 3, 4))
    yield Sample(_HARD.copy())


def gelu_samples(rng):
    yield Sample(randn(rng, 3, 4) * 2)
    yield Sample(randn(rng, 3, 4) * 2, approximate="tanh")
    yield Sample(_HARD.copy())
    yield Sample(_HARD.copy(), approximate="tanh")


def _softmax_like_samples(rng):
    yield Sample(randn(rng, 3, 4))
    yield Sample(randn(rng, 2, 3, 4), axis=1)
    yield Sample(np.array([[-1000.0, 0.0, 1.0], [2.0, -1000.0, 3.0]]))  # very negative logits
    yield Sample(randn(rng, 4) * 50, axis=0)
    yield Sample(randn(rng, 2, 3, 2), dim=1)  # PyTorch's name for axis


def dropout_samples(rng):
    # an int seed gives the same mask on every call, so finite differences see one function
    yield Sample(randn(rng, 4, 5), p=0.3, training=True, generator=7)
    yield Sample(randn(rng, 2, 3, 2), p=0.6, training=True, generator=11)
    yield Sample(randn(rng, 3, 3), p=0.5, training=False)
    yield Sample(randn(rng, 2, 3), p=1.0, training=True)


def mse_loss_samples(rng):
    yield Sample(randn(rng, 3, 4), randn(rng, 3, 4))
    yield Sample(randn(rng, 5), _fixed(randn(rng, 5)), reduction="sum")
    yield Sample(randn(rng, 2, 3), randn(rng, 2, 3), reduction="none")


def bce_samples(rng):
    yield Sample(rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0.1, 0.9, (3, 4)))
    yield Sample(rng.uniform(0.05, 0.95, 5), rng.uniform(0.1, 0.9, 5), reduction="none")
    # confident predictions, right and wrong (binary labels are not differentiated)
    yield Sample(np.array([1e-4, 0.9999, 0.02, 0.97]), _fixed([0.0, 1.0, 1.0, 0.0]), reduction="sum")
    yield Sample(rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0.1, 0.9, (3, 4)), weight=rng.uniform(0.5, 2.0, 4))


def bce_with_logits_samples(rng):
    yield Sample(randn(rng, 3, 4) * 3, rng.uniform(0.1, 0.9, (3, 4)))
    yield Sample(randn(rng, 6), rng.uniform(0.1, 0.9, 6), reduction="none")
    yield Sample(_HARD.copy(), _fixed([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]), reduction="sum")
    yield Sample(_HARD.copy(), rng.uniform(0.1, 0.9, 6))
    yield Sample(randn(rng, 3, 4) * 3, rng.uniform(0.1, 0.9, (3, 4)), weight=rng.uniform(0.5, 2.0, (3, 1)),
                 pos_weight=rng.uniform(0.5, 3.0, 4), reduction="sum")


def sigmoid_bce_samples(rng):
    yield Sample(randn(rng, 3, 4) * 3, rng.uniform(0.1, 0.9, (3, 4)))
    yield Sample(randn(rng, 6) * 3, _fixed([0.0, 1.0, 1.0, 0.0, 1.0, 0.0]), reduction="none")
    # confident both ways and right: at +-1000 the clamp is active, and s - t (the gradient
    # passed straight through it) is 0 like the clamped loss's slope. Confident and wrong, s - t
    # is about +-1 there: a convention, not that slope, so no sample (a test covers it).
    yield Sample(np.array([-1000.0, -12.0, -5.0, 5.0, 12.0, 1000.0]), _fixed([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]),
                 reduction="sum")


def cross_entropy_samples(rng):
    yield Sample(randn(rng, 4, 5), rng.integers(0, 5, 4))
    yield Sample(randn(rng, 5, 4), np.array([0, 3, -100, 1, -100]), ignore_index=-100, label_smoothing=0.2)
    yield Sample(randn(rng, 3, 4), rng.integers(0, 4, 3), reduction="none")
    yield Sample(randn(rng, 3, 4), rng.integers(0, 4, 3), reduction="sum", label_smoothing=0.1)
    yield Sample(randn(rng, 2, 3, 2, 2), rng.integers(0, 3, (2, 2, 2)), ignore_index=1)  # (N, C, d1, d2)
    yield Sample(np.array([[-1000.0, 0.0, 2.0], [5.0, -1000.0, -1000.0]]), np.array([0, 1]))
    yield Sample(randn(rng, 4), np.array(2))  # one unbatched sample
    yield from _weighted_cross_entropy_samples(rng)
    yield from _soft_cross_entropy_samples(rng)


def _class_weights(rng, n_classes):
    return rng.uniform(0.2, 2.0, n_classes)  # a keyword argument: passed through, not differentiated


def _weighted_cross_entropy_samples(rng):
    yield Sample(randn(rng, 4, 5), rng.integers(0, 5, 4), weight=_class_weights(rng, 5))
    yield Sample(randn(rng, 5, 4), np.array([0, 3, -100, 1, -100]), ignore_index=-100, label_smoothing=0.2,
                 weight=_class_weights(rng, 4))
    yield Sample(randn(rng, 2, 3, 2, 2), rng.integers(0, 3, (2, 2, 2)), weight=_class_weights(rng, 3),
                 reduction="none", label_smoothing=0.1)


def _probabilities(rng, shape):
    """Class distributions along axis 1, each class at least about 0.05 (float64: gradient-checked)."""
    p = rng.uniform(0.2, 1.0, shape)
    return p / p.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)


def _soft_cross_entropy_samples(rng):
    yield Sample(randn(rng, 4, 5), _probabilities(rng, (4, 5)))  # class probabilities as the target
    yield Sample(randn(rng, 2, 3, 2, 2), _probabilities(rng, (2, 3, 2, 2)), weight=_class_weights(rng, 3),
                 label_smoothing=0.1, reduction="sum")
    yield Sample(randn(rng, 3, 4), _probabilities(rng, (3, 4)), reduction="none", weight=_class_weights(rng, 4))
    yield Sample(randn(rng, 4), _probabilities(rng, (4,)), label_smoothing=0.2)  # one unbatched sample


def nll_loss_samples(rng):
    yield Sample(randn(rng, 4, 5), rng.integers(0, 5, 4))
    yield Sample(randn(rng, 5, 3), np.array([2, -1, 0, -1, 1]), ignore_index=-1, reduction="sum")
    yield Sample(randn(rng, 2, 4, 3), rng.integers(0, 4, (2, 3)), reduction="none")
    yield Sample(randn(rng, 5, 3), np.array([2, -1, 0, 1, 1]), ignore_index=-1, weight=_class_weights(rng, 3))
    yield Sample(randn(rng, 2, 4, 3), rng.integers(0, 4, (2, 3)), reduction="none", weight=_class_weights(rng, 4))


#: (op name, Function, samples, user-facing callable) - the names of the catalog's 'nn' entry
OPS = (
    ("linear", F.LinearFunction, linear_samples, F.linear),
    ("relu", F.ReLUFunction, relu_samples, F.relu),
    ("leaky_relu", F.LeakyReLUFunction, leaky_relu_samples, F.leaky_relu),
    ("sigmoid", F.SigmoidFunction, sigmoid_samples, F.sigmoid),
    ("tanh", F.TanhFunction, tanh_samples, F.tanh),
    ("gelu", F.GELUFunction, gelu_samples, F.gelu),
    ("softmax", F.SoftmaxFunction, _softmax_like_samples, F.softmax),
    ("log_softmax", F.LogSoftmaxFunction, _softmax_like_samples, F.log_softmax),
    ("dropout", F.DropoutFunction, dropout_samples, F.dropout),
    ("mse_loss", F.MSELossFunction, mse_loss_samples, F.mse_loss),
    ("binary_cross_entropy", F.BinaryCrossEntropyFunction, bce_samples, F.binary_cross_entropy),
    ("binary_cross_entropy_with_logits", F.BinaryCrossEntropyWithLogitsFunction, bce_with_logits_samples,
     F.binary_cross_entropy_with_logits),
    ("sigmoid_binary_cross_entropy", F.SigmoidBinaryCrossEntropyFunction, sigmoid_bce_samples,
     F.sigmoid_binary_cross_entropy),
    ("cross_entropy", F.CrossEntropyFunction, cross_entropy_samples, F.cross_entropy),
    ("nll_loss", F.NLLLossFunction, nll_loss_samples, F.nll_loss),
)


@hookimpl
def tinytorch_register_ops(registry):
    for name, function, samples, call in OPS:
        registry.op(f"nn::{name}", function, samples=samples, call=call)


@hookimpl
def tinytorch_register_symbols(registry):
    registry.symbols_from(tinytorch_nn)  # every layer, optimizer, data, init and io name of the catalog
