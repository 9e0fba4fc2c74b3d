"""Unstructured magnitude pruning: zero the smallest weights, and keep them zero while training.

A pruned layer is wrapped in ``Pruned``, which holds the trainable ``weight_orig`` and a 0/1
``weight_mask`` and gives the wrapped layer ``weight = weight_orig * weight_mask`` afresh at
every call (PyTorch's parametrization, without hooks). An optimizer step may change
``weight_orig`` anywhere; the weight the layer computes with is still exactly zero where the
mask is, and the mask's zeros also zero the gradient that reaches ``weight_orig`` there.

- ``prune_l1_unstructured(model, amount)``: each Linear / Conv2d loses the ``amount`` fraction
  of its weights with the smallest magnitude;
- ``prune_global_unstructured(model, amount)``: one threshold for all of them, so layers with
  many small weights give up more;
- ``sparsity(model)``: the fraction of those weights that are zero (``by_layer=True``: per layer);
- ``remove(model)``: bake ``weight_orig * weight_mask`` into a plain weight; the model is plain again.

Each returns a new model and leaves the one it was given as it was: build the optimizer on the
pruned model. ``amount`` is the fraction of weights zero afterwards, counting earlier pruning.

A layer used twice (``Sequential(layer, ReLU(), layer)``) stays one layer: it is pruned once, and
its one ``Pruned`` wrapper is used twice. Distinct layers that hold one weight Parameter (tied
weights) are refused: each wrapper would get a ``weight_orig`` of its own, and they would drift apart.
A mask loaded from a state dict must hold only 0 and 1 (checked before its next use).
"""

from __future__ import annotations

import copy
import numbers

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Module, Parameter, Tensor
from tinytorch_core.checks import true_or_false

from .layer_types import is_layer, weighted_layer_classes

__all__ = ["Pruned", "prune_global_unstructured", "prune_l1_unstructured", "remove", "sparsity"]


class Pruned(Module):
    """``layer`` (a Linear or Conv2d) computing with ``weight_orig * weight_mask``; ``name`` is the
    layer's name in the model, for the error messages."""

    def __init__(self, layer, mask, name: str = ""):
        super().__init__()
        weight = layer.weight
        mask = np.asarray(mask, dtype=weight.data.dtype)
        if mask.shape != weight.shape:
            raise ValueError(f"Pruned: mask of shape {mask.shape} for a weight of shape {tuple(weight.shape)}")
        del layer.weight  # from now on a plain attribute, set from the mask at every call
        self.layer = layer
        self.layer_name = str(name)
        self.weight_orig = Parameter(weight.data * mask)
        self.register_buffer("weight_mask", Tensor(mask))
        self._mask_checked = None  # (mask tensor, its version, its array) when last found to be 0/1
        self.layer.weight = self.weight

    @property
    def weight(self):
        """The weight the layer computes with: zero wherever the mask is."""
        return self.weight_orig * self.checked_mask()

    def checked_mask(self):
        """``weight_mask``, refused unless it holds only 0 and 1: a state dict may set it to anything,
        and a mask of 0.5 would halve the weights (with ``sparsity`` still counting them as kept),
        NaN would poison them. Checked again only when the mask has changed since (loaded, assigned)."""
        mask = self.weight_mask
        seen = self._mask_checked
        if seen is not None and seen[0] is mask and seen[1] == mask._version and seen[2] is mask.data:
            return mask
        values = mask.data
        stray = values[(values != 0) & (values != 1)]  # NaN is neither
        if stray.size:
            named = f"layer '{self.layer_name}' ({self.layer!r})" if self.layer_name else f"({self.layer!r})"
            raise ValueError(
                f"Pruned {named}: weight_mask must hold only 0 and 1 (a weight is pruned or kept), got "
                f"{stray.size} other value(s), e.g. {stray[0]}: a damaged or hand-edited state dict?"
            )
        self._mask_checked = (mask, mask._version, values)
        return mask

    def forward(self, *args, **kwargs):
        self.layer.weight = self.weight  # weight_orig may have changed since the last call
        return self.layer(*args, **kwargs)

    def unwrapped(self):
        """The layer with the masked weight as its own plain Parameter again."""
        layer = copy.deepcopy(self.layer)
        layer.weight = Parameter(self.weight.data.copy())
        return layer


def prune_l1_unstructured(model, amount):
    """A copy of ``model`` whose every Linear / Conv2d has its smallest-magnitude ``amount``
    fraction of weights zeroed (each layer on its own)."""
    amount = _checked_amount(amount, "prune_l1_unstructured")
    model = copy.deepcopy(model)
    layers = _prunable_layers(model, "prune_l1_unstructured")
    masks = {id(m): _smallest_zeroed(np.abs(_weight_of(m)), amount) & _mask_of(m) for m in layers.values()}
    return _rebuilt(model, lambda m: _wrapped(m, masks[id(m)], layers) if id(m) in masks else None)


def prune_global_unstructured(model, amount):
    """A copy of ``model`` with the ``amount`` fraction of all its Linear / Conv2d weights zeroed:
    the smallest magnitudes over every layer together."""
    amount = _checked_amount(amount, "prune_global_unstructured")
    model = copy.deepcopy(model)
    layers = _prunable_layers(model, "prune_global_unstructured")
    magnitudes = [np.abs(_weight_of(m)) for m in layers.values()]
    joint = _smallest_zeroed(np.concatenate([w.ravel() for w in magnitudes]), amount)
    ends = np.cumsum([w.size for w in magnitudes])[:-1]
    parts = zip(layers.values(), magnitudes, np.split(joint, ends))
    masks = {id(m): part.reshape(w.shape) & _mask_of(m) for m, w, part in parts}
    return _rebuilt(model, lambda m: _wrapped(m, masks[id(m)], layers) if id(m) in masks else None)


def remove(model):
    """A copy of ``model`` with every ``Pruned`` layer replaced by its layer, the mask baked in."""
    _check_module(model, "remove")
    return _rebuilt(copy.deepcopy(model), lambda m: m.unwrapped() if isinstance(m, Pruned) else None)


def sparsity(model, by_layer: bool = False):
    """The fraction of zero weights over all Linear / Conv2d layers (pruned or not); with
    ``by_layer``, a dict of each layer's fraction by its name in the model."""
    _check_module(model, "sparsity")
    by_layer = true_or_false(by_layer, "by_layer", "sparsity")
    weights = {name: _weight_of(m) for name, m in prunable_modules(model)}
    if not sum(w.size for w in weights.values()):
        raise ValueError(f"sparsity: {type(model).__name__} has no Linear or Conv2d weights to measure")
    if by_layer:  # a layer without weights has no fraction: NaN, the mean of nothing
        return {name: float(np.count_nonzero(w == 0) / w.size) if w.size else float("nan") for name, w in weights.items()}
    zeros = sum(int(np.count_nonzero(w == 0)) for w in weights.values())
    return zeros / sum(w.size for w in weights.values())


def prunable_modules(module, prefix: str = "", seen=None):
    """(name, module) of every Linear, Conv2d or ``Pruned`` in ``module``, each once: a pruned
    layer's inner layer is not listed again, and a layer used twice is listed by its first name."""
    seen = set() if seen is None else seen
    if id(module) in seen:
        return
    seen.add(id(module))
    if isinstance(module, Pruned) or isinstance(module, weighted_layer_classes()):
        yield prefix, module
        return
    for name, child in module.named_children(remove_duplicate=False):
        yield from prunable_modules(child, f"{prefix}.{name}" if prefix else name, seen)


def weight_parameter(module):
    """The Parameter that holds a prunable layer's weight (a ``Pruned`` layer's ``weight_orig``)."""
    return module.weight_orig if isinstance(module, Pruned) else module.weight


def tied_weights(named):
    """The names of the first two distinct layers among ``named`` ((name, layer) pairs) that hold one
    weight Parameter, or None."""
    owners = {}
    for name, module in named:
        first_name, owner = owners.setdefault(id(weight_parameter(module)), (name, module))
        if owner is not module:
            return first_name, name
    return None


def _weight_of(module):
    return module.weight.data


def _mask_of(module):
    """What stays: a pruned weight stays pruned whatever a later, smaller ``amount`` asks."""
    return module.checked_mask().data.astype(bool) if isinstance(module, Pruned) else True


def _check_module(model, where: str) -> None:
    if not isinstance(model, Module):
        raise TypeError(f"{where}: expected a Module (a model or a layer), got {type(model).__name__}")


def _prunable_layers(model, where: str) -> dict:
    """The Linear / Conv2d (or ``Pruned``) layers of ``model`` by name, each once, with finite weights
    of their own (distinct layers tied to one weight Parameter are refused)."""
    _check_module(model, where)
    layers = dict(prunable_modules(model))
    if not layers:
        raise ValueError(f"{where}: {type(model).__name__} has no Linear or Conv2d layer to prune")
    tied = tied_weights(layers.items())
    if tied is not None:
        raise ValueError(f"{where}: layers '{tied[0]}' and '{tied[1]}' share one weight Parameter (tied weights); "
                         "each pruned layer gets a weight_orig of its own, so pruning would untie them. Prune "
                         "a model whose layers own their weights (a layer used twice is fine)")
    for name, m in layers.items():
        if not np.isfinite(_weight_of(m)).all():
            raise ValueError(f"{where}: the weight of layer {name or type(m).__name__!r} holds NaN or inf; "
                             "magnitude pruning ranks finite weights")
    return layers


def _wrapped(module, mask, layers: dict):
    """``module`` wrapped in a new ``Pruned`` with ``mask``, named as in ``layers`` (name -> layer)."""
    name = next(n for n, m in layers.items() if m is module)
    return Pruned(module.unwrapped() if isinstance(module, Pruned) else module, mask, name)


def _smallest_zeroed(magnitudes, amount: float):
    """A 0/1 mask of ``magnitudes``'s shape with exactly round(amount * size) zeros, on the smallest."""
    flat = magnitudes.ravel()
    count = int(round(amount * flat.size))
    mask = np.ones(flat.size, dtype=bool)
    if count:
        mask[np.argpartition(flat, count - 1)[:count]] = False
    return mask.reshape(magnitudes.shape)


def _checked_amount(amount, where: str) -> float:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"{where}: amount must be a number, a fraction in [0, 1] of the weights to zero, got {amount!r}")
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"{where}: amount must be a fraction in [0, 1] (of the weights to zero), got {amount!r}")
    return float(amount)


def _rebuilt(module, replace, done=None):
    """``module`` with every sub-module ``m`` for which ``replace(m)`` gives a module swapped for it.
    A ``Sequential`` is rebuilt (it runs its layers from its own list), any other container changed in place.
    A module used twice is replaced once (``done``: id -> its replacement), so it stays shared."""
    done = {} if done is None else done
    if id(module) not in done:
        done[id(module)] = _rebuilt_once(module, replace, done)
    return done[id(module)]


def _rebuilt_once(module, replace, done):
    replacement = replace(module)
    if replacement is not None:
        return replacement
    if is_layer(module, "Sequential"):  # its names kept: the state-dict keys stay the same
        return tt.nn.Sequential({name: _rebuilt(layer, replace, done)
                                 for name, layer in module.named_children(remove_duplicate=False)})
    for name, child in list(module.named_children(remove_duplicate=False)):
        setattr(module, name, _rebuilt(child, replace, done))
    return module
