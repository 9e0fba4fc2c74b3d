"""The benchmark workloads W1..W8 built with the framework itself.

Each workload is the model of ``bench/numpy_reference.py`` (same architecture, same
parameter names, same loss, same learning rate), assembled from the layers, losses and
the optimizer that the stages register, reached through ``tinytorch_core.nn`` /
``tinytorch_core.optim``.  The module attribute names are chosen so that the framework's
state-dict keys are exactly the reference's parameter names; ``load_params`` relies on
that (``load_state_dict(strict=True)`` refuses any mismatch).

Usage (what ``bench/run.py`` and ``tests/test_bench_workloads.py`` do)::

    fw = FRAMEWORK_WORKLOADS["W5"]
    model = fw.build()                       # float32; a missing stage raises StageUnavailableError
    fw.load_params(model, params)            # params: the reference's dict of arrays
    optimizer = fw.make_optimizer(model)     # plain SGD with the reference's lr
    x, y = fw.to_tensors(x_np, y_np)         # done once, outside the timed loop
    loss = fw.step(model, optimizer, x, y)   # forward + loss + backward + update + zero_grad

``bench/`` is not a package: load this file by path (``importlib.util``); it finds its
sibling ``numpy_reference.py`` the same way.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Module, Tensor

__all__ = ["FRAMEWORK_WORKLOADS", "FrameworkWorkload", "load_reference", "step"]


def load_reference():
    """``bench/numpy_reference.py`` as a module (registered once in ``sys.modules``)."""
    name = "tinytorch_bench_numpy_reference"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("numpy_reference.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return module


_ref = load_reference()


# --------------------------------------------------------------------------------------------
# models: attribute names == reference parameter names
# --------------------------------------------------------------------------------------------
class MLPClassifier(Module):
    """Linear layers named ``names`` with ReLU between them, then an output head and a loss.

    ``head`` is ``"sigmoid_bce"`` (the model predicts ``sigmoid(logits)``; the loss is BCE of
    those probabilities, taken from the logits as one ``sigmoid_binary_cross_entropy`` node),
    ``"cross_entropy"`` or ``"mse"``.
    """

    def __init__(self, sizes, names, head: str):
        super().__init__()
        nn = tt.nn  # resolved once here: a missing stage fails at build time, not in the loop
        self._names = tuple(names)
        for name, fan_in, fan_out in zip(names, sizes[:-1], sizes[1:]):
            setattr(self, name, nn.Linear(fan_in, fan_out, generator=0))
        self.relu = nn.ReLU()
        self.head_kind = head
        if head == "sigmoid_bce":
            self.sigmoid = nn.Sigmoid()
            self.criterion = tt.ops.sigmoid_binary_cross_entropy  # on the logits: see loss()
        elif head == "cross_entropy":
            self.criterion = nn.CrossEntropyLoss()
        elif head == "mse":
            self.criterion = nn.MSELoss()
        else:
            raise ValueError(f"MLPClassifier: unknown head {head!r}")
        layers = tuple(getattr(self, n) for n in self._names)
        # plain attributes, not registered again as children (they already are, by name)
        object.__setattr__(self, "_hidden", layers[:-1])
        object.__setattr__(self, "_last", layers[-1])

    def logits(self, x):
        for layer in self._hidden:
            x = self.relu(layer(x))
        return self._last(x)

    def forward(self, x):
        out = self.logits(x)
        return self.sigmoid(out) if self.head_kind == "sigmoid_bce" else out

    def loss(self, x, y):
        if self.head_kind == "sigmoid_bce":  # the explicit fused op, from the logits
            return self.criterion(self.logits(x), y)
        return self.criterion(self(x), y)


class ConvNet(Module):
    """``conv1``-ReLU-MaxPool2d(2)-``conv2``-ReLU-MaxPool2d(2)-Flatten-``fc``, cross-entropy."""

    def __init__(self, in_channels, convs, flat_features: int, n_classes: int):
        super().__init__()
        nn = tt.nn
        channels = in_channels
        names = []
        for name, out_channels, kernel, padding in convs:
            setattr(self, name, nn.Conv2d(channels, out_channels, kernel, padding=padding, generator=0))
            names.append(name)
            channels = out_channels
        self._convs = tuple(getattr(self, n) for n in names)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(flat_features, n_classes, generator=0)
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x):
        for conv in self._convs:
            x = self.pool(self.relu(conv(x)))
        return self.fc(self.flatten(x))

    def loss(self, x, y):
        return self.criterion(self(x), y)


@functools.cache
def _language_model_class():
    """The attention stage's ``GPT`` plus a training loss, as a subclass, so that the state-dict
    keys are GPT's own (``tok_emb.weight``, ``blocks.0.attn.q_proj.weight``, ...). Created on
    first use because the attention stage may not be installed."""

    class LanguageModel(tt.nn.GPT):
        """GPT whose ``loss`` is the cross-entropy averaged over all B*T positions."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.criterion = tt.nn.CrossEntropyLoss()  # no parameters: adds no state-dict key

        def loss(self, tokens, targets):
            logits = self(tokens)
            return self.criterion(logits.reshape(-1, self.vocab_size), targets.reshape(-1))

    return LanguageModel


# --------------------------------------------------------------------------------------------
# the training step (identical for every workload)
# --------------------------------------------------------------------------------------------
def step(model, optimizer, x, y) -> float:
    """One training step: forward + loss + backward + SGD update + zero_grad; returns the
    (pre-update) loss as a float, like the reference's ``step``."""
    loss = model.loss(x, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


# --------------------------------------------------------------------------------------------
# workload table
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameworkWorkload:
    """How to build, load and train one workload with the framework."""

    id: str
    stages: tuple  # the stages the model needs
    _build: Callable[[], Module]

    @property
    def reference(self):
        """The reference's ``WorkloadSpec`` (description, batch size, lr, data, params)."""
        return _ref.WORKLOADS[self.id]

    @property
    def lr(self) -> float:
        return self.reference.lr

    def build(self, dtype=np.float32) -> Module:
        """A fresh model; raises ``tinytorch_core.StageUnavailableError`` if a stage is missing."""
        model = self._build()
        if np.dtype(dtype) != np.float32:
            model.to(dtype)
        return model

    @staticmethod
    def load_params(model: Module, params: dict) -> None:
        """Copy the reference's parameter arrays into ``model`` (strict: same names, same shapes)."""
        model.load_state_dict(params, strict=True)

    def make_optimizer(self, model: Module, lr: float | None = None):
        """Plain SGD (no momentum, no weight decay) with the reference's learning rate."""
        return tt.optim.SGD(model.parameters(), lr=self.lr if lr is None else lr)

    @staticmethod
    def to_tensors(x: np.ndarray, y: np.ndarray):
        """The batch as Tensors of the arrays' own dtypes (float64 stays float64 for the tests)."""
        return Tensor(x, dtype=x.dtype), Tensor(y, dtype=y.dtype)

    step = staticmethod(step)


_MLP_HEADS = {"bce": "sigmoid_bce", "ce": "cross_entropy", "mse": "mse"}


def _mlp(wid):
    m = _ref.WORKLOADS[wid].model  # reference MLP: layer sizes, names, loss
    return lambda: MLPClassifier(m.sizes, m.names, _MLP_HEADS[m.loss])


def _cnn(wid):
    m = _ref.WORKLOADS[wid].model  # reference CNN: input shape, convs, flat size, classes
    return lambda: ConvNet(m.in_shape[0], m.convs, m.flat_features, m.n_classes)


def _lm(wid):
    m = _ref.WORKLOADS[wid].model  # reference Transformer: the hyperparameters
    return lambda: _language_model_class()(
        m.vocab, m.seq_len, m.embed, m.heads, m.n_blocks, m.ffn, causal=m.causal, generator=0
    )


_MLP, _CNN, _LM = ("nn",), ("nn", "spatial"), ("nn", "embeddings", "attention")

FRAMEWORK_WORKLOADS: dict[str, FrameworkWorkload] = {
    w.id: w
    for w in (
        FrameworkWorkload("W1", _MLP, _mlp("W1")),
        FrameworkWorkload("W2", _MLP, _mlp("W2")),
        FrameworkWorkload("W3", _MLP, _mlp("W3")),
        FrameworkWorkload("W4", _CNN, _cnn("W4")),
        FrameworkWorkload("W5", _CNN, _cnn("W5")),
        FrameworkWorkload("W6", _LM, _lm("W6")),
        FrameworkWorkload("W7", _LM, _lm("W7")),
        FrameworkWorkload("W8", _MLP, _mlp("W8")),
    )
}
