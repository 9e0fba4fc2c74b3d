"""The layer classes compression works on, looked up at run time through ``tinytorch_core.nn``.

This stage requires only ``nn``; ``Conv2d`` and the pooling layers belong to ``spatial``, which
may or may not be installed. Reaching them as ``tinytorch_core.nn.Conv2d`` (never by importing
the spatial package) keeps the stage installable without it: a missing stage raises
``MissingStageError``, an ``ImportError``, and its layers simply do not occur in any model.
"""

from __future__ import annotations

import tinytorch_core as tt

__all__ = ["layer_class", "is_layer", "weighted_layer_classes"]


def layer_class(name: str):
    """``tinytorch_core.nn.<name>``, or None when the stage that provides it is not installed."""
    try:
        return getattr(tt.nn, name)
    except ImportError:
        return None


def is_layer(module, *names: str) -> bool:
    """Whether ``module`` is one of the named ``tinytorch_core.nn`` layers (exactly, not a subclass
    that may compute something else)."""
    return any(type(module) is layer_class(name) for name in names)


def weighted_layer_classes() -> tuple:
    """The layers with a ``weight`` matrix or filter bank that quantization and pruning handle."""
    return tuple(c for c in (layer_class("Linear"), layer_class("Conv2d")) if c is not None)
