"""What a stage's skeleton is generated from: each catalog op and layer with its signature and
its contract (shapes, dtypes, errors, the formula), written next to the suite that checks it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    name: str  # the op's short name in the catalog (``conv2d``)
    signature: str  # the user-facing function's parameters
    inputs: tuple  # the parameters that are tensors (each may need a gradient)
    doc: str
    sample: str  # a Python expression of one gradient-check Sample (``rng``, ``randn`` in scope)
    differentiable: bool = True  # False: forward only, registered without samples (no gradcheck)


@dataclass(frozen=True)
class Layer:
    name: str  # the layer's name in the catalog (``Conv2d``)
    signature: str  # ``__init__``'s parameters after self
    doc: str
    namespace: str = "nn"  # where the catalog lists it (``text`` for a tokenizer)
    base: str = "Module"  # the class it derives from (``object`` for a plain class)
    #: the methods to stub besides ``__init__``, each ``"def name(self, ...)"`` (decorators on the lines before)
    methods: tuple = ("def forward(self, x)",)


@dataclass(frozen=True)
class Helper:
    namespace: str  # where the catalog lists it (``init``, ``io``, ``optim``)
    name: str
    signature: str
    doc: str
