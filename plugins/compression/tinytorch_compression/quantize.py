"""Post-training INT8 quantization: calibrate, then convert layer by layer.

``quantize(model, calibration_loader)`` takes a trained float ``Sequential`` and returns a new
``Sequential`` that runs on int8 codes from end to end:

1. *Calibrate*: run the float model on a few batches, an activation observer at every boundary
   (the input, and the output of every layer), which learns each activation's range.
2. *Convert*, walking the layers in order: ``Quantize`` first (float input -> codes); each
   ``Linear`` / ``Conv2d`` becomes its integer version, its weights quantized per output channel,
   a ``ReLU`` right after it fused in; ``ReLU``, ``MaxPool2d`` and ``Flatten`` work on the codes
   as they are (they keep the scale); ``Dropout`` and ``Identity`` vanish (inference); any other
   layer runs in float between a dequantize and a quantize; ``DeQuantize`` last.

The float model is not changed. The quantized model is for inference: it records no gradients.
"""

from __future__ import annotations

import copy
from functools import partial

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor, no_grad
from tinytorch_core.checks import positive_int

from .integer_layers import (DeQuantize, FloatStep, IntegerFlatten, IntegerMaxPool2d, IntegerReLU, Quantize,
                             QuantizedConv2d, QuantizedLinear)
from .layer_types import is_layer
from .observers import MinMaxObserver, _Observer
from .pruning import Pruned

__all__ = ["quantize", "sequential_layers", "sequential_named_layers"]

#: weights: symmetric, one scale per output channel (axis 0 of a Linear or Conv2d weight)
per_channel_weights = partial(MinMaxObserver, symmetric=True, axis=0)


def quantize(model, calibration_loader, activation_observer=None, weight_observer=None, num_batches=None):
    """An int8 copy of the float ``Sequential`` ``model`` (see the module docstring).

    ``calibration_loader`` yields batches: input Tensors, or tuples whose first item is the input
    (a ``DataLoader`` of (x, y) works); ``num_batches`` limits how many are used.
    ``activation_observer`` and ``weight_observer`` make a new observer when called (a class, or a
    ``functools.partial`` of one with options); the weight observer must be symmetric. By default:
    ``MinMaxObserver`` per tensor for activations, symmetric per output channel for weights."""
    activation_observer = _observer_factory(activation_observer or MinMaxObserver, "activation_observer", (None,))
    weight_observer = _observer_factory(weight_observer or per_channel_weights, "weight_observer", (None, 0))
    named = sequential_named_layers(model, "quantize")
    names, layers = [name for name, _ in named], [_dense(layer) for _, layer in named]
    _check_finite_parameters(names, layers)  # before calibration, whose activations a NaN weight would poison
    observers, input_shapes = calibrate(layers, calibration_loader, activation_observer, num_batches)
    for name, layer, shapes in zip(names, layers, input_shapes):
        _check_input_rank(name, layer, shapes)
    steps = [Quantize(*observers[0].calculate_qparams())]
    qparams = observers[0].calculate_qparams()  # of the codes flowing into the next layer
    index = 0
    while index < len(layers):
        layer = layers[index]
        fused = index + 1 < len(layers) and is_layer(layers[index + 1], "ReLU") and _is_weighted(layer)
        after = observers[index + 1 + fused].calculate_qparams()  # the output's qparams, past a fused ReLU
        where = f"quantize: layer '{names[index]}' ({layer!r})"
        step = _integer_step(layer, qparams, after, weight_observer, fused, where)
        if step is not None:
            steps.append(step)
            if isinstance(step, (QuantizedLinear, QuantizedConv2d, FloatStep)):
                qparams = after  # integer-preserving steps keep the scale they were given
        index += 1 + fused
    steps.append(DeQuantize())
    return tt.nn.Sequential(*steps).eval()


def _check_finite_parameters(names, layers) -> None:
    """Every weight and bias is finite, or an error naming the layer (calibration would report a
    NaN activation in some observer instead)."""
    for name, layer in zip(names, layers):
        for kind in ("weight", "bias"):
            value = getattr(layer, kind, None)
            if isinstance(value, tt.Tensor) and value.data.dtype.kind == "f" and not np.isfinite(value.data).all():
                raise ValueError(f"quantize: the {kind} of layer '{name}' ({type(layer).__name__}) holds NaN or inf; "
                                 "int8 codes need finite values")


def _observer_factory(factory, what: str, axes: tuple):
    """``factory`` checked by making one observer: a class or function giving an observer whose
    axis is one of ``axes`` (activations: per tensor; weights: also per output channel, axis 0)."""
    if isinstance(factory, _Observer) or not callable(factory):
        raise TypeError(f"quantize: {what} must make a new observer when called (a class such as MinMaxObserver, "
                        f"or functools.partial of one), got {type(factory).__name__} {factory!r}")
    observer = factory()
    if not isinstance(observer, _Observer):
        raise TypeError(f"quantize: {what}() must return an observer, got {type(observer).__name__}")
    if observer.axis not in axes:
        raise ValueError(f"quantize: {what} must observe along axis {' or '.join(map(str, axes))} (None: per "
                         f"tensor), got axis={observer.axis}; the integer layers use one scale per activation "
                         "and one per output channel of a weight")
    return factory


def _dense(layer):
    """A ``Pruned`` layer as its plain layer with the mask baked in (its zeros are quantized as zeros)."""
    return layer.unwrapped() if isinstance(layer, Pruned) else layer


def _is_weighted(layer) -> bool:
    return is_layer(layer, "Linear", "Conv2d")


def _pools_on_codes(layer) -> bool:
    """A max pooling the integer version computes: no padding (its -inf has no code), no ceil mode."""
    return is_layer(layer, "MaxPool2d") and layer.padding == (0, 0) and not layer.ceil_mode


def _integer_input_rank(layer):
    """The rank of input the integer version of ``layer`` takes (None: any): a Linear's (N, features),
    a convolution's or pooling's batch of images."""
    if is_layer(layer, "Linear"):
        return 2
    if is_layer(layer, "Conv2d") or _pools_on_codes(layer):
        return 4
    return None


def _check_input_rank(name: str, layer, shapes: dict) -> None:
    """Refuse now what the quantized model would refuse on the very data it was calibrated on: the
    float layer took other ranks (a Linear applies to the last axis of any input)."""
    rank = _integer_input_rank(layer)
    other = sorted(ndim for ndim in shapes if ndim != rank)
    if rank is not None and other:
        expected = "(N, features) batches" if rank == 2 else "(N, C, H, W) batches of images"
        raise ValueError(
            f"quantize: layer '{name}' ({layer!r}) was calibrated on {other[0]}-D input of shape "
            f"{shapes[other[0]]}; its integer version takes {rank}-D {expected} only. Reshape the data to "
            f"{rank}-D (e.g. merge the leading axes into N) to calibrate and to run the int8 model"
        )


def _integer_step(layer, qparams, after, weight_observer, fused_relu: bool, where: str):
    """The step of the quantized model that replaces ``layer`` (None: it does nothing at inference);
    ``where`` names the layer in the errors of its conversion."""
    if is_layer(layer, "Linear"):
        return QuantizedLinear.from_float(layer, qparams, after, weight_observer, relu=fused_relu, where=where)
    if is_layer(layer, "Conv2d"):
        return QuantizedConv2d.from_float(layer, qparams, after, weight_observer, relu=fused_relu, where=where)
    if is_layer(layer, "Dropout", "Identity"):
        return None
    if is_layer(layer, "ReLU"):
        return IntegerReLU()
    if _pools_on_codes(layer):
        return IntegerMaxPool2d(layer.kernel_size, layer.stride)
    if is_layer(layer, "Flatten") and (layer.start_axis, layer.end_axis) == (1, -1):
        return IntegerFlatten()
    return FloatStep(copy.deepcopy(layer), after)


def sequential_layers(model, where: str) -> list:
    """The layers of a ``Sequential`` in order, nested ``Sequential``s opened up."""
    return [layer for _, layer in sequential_named_layers(model, where)]


def sequential_named_layers(model, where: str, prefix: str = "") -> list:
    """(name, layer) of every layer of a ``Sequential`` in order, nested ``Sequential``s opened up;
    the names are the model's own (state-dict prefixes such as ``"1.0"``), for the error messages."""
    if not is_layer(model, "Sequential"):
        raise TypeError(f"{where}: expected a tinytorch_core.nn.Sequential model (its layers in the order they "
                        f"run), got {type(model).__name__}")
    named = []
    for name, layer in model.named_children(remove_duplicate=False):  # in the order they run, repeats too
        if is_layer(layer, "Sequential"):
            named.extend(sequential_named_layers(layer, where, f"{prefix}{name}."))
        else:
            named.append((f"{prefix}{name}", layer))
    return named


def calibrate(layers, loader, activation_observer, num_batches=None) -> tuple:
    """Observers of the input and of every layer's output, fed the float model's activations on
    the calibration batches (in eval mode: dropout off; the model's mode is restored after); and,
    per layer, the shapes of the inputs it was given, one for each rank (ndim -> shape)."""
    limit = None if num_batches is None else positive_int(num_batches, "num_batches", "quantize")
    if isinstance(loader, (Tensor, np.ndarray)) or not hasattr(loader, "__iter__"):
        raise TypeError(f"quantize: calibration_loader must yield batches (a list of Tensors, a DataLoader), got "
                        f"{type(loader).__name__}; for one batch x, pass [x]")
    observers = [activation_observer() for _ in range(len(layers) + 1)]
    input_shapes = [{} for _ in layers]
    modes = [layer.training for layer in layers]
    for layer in layers:
        layer.eval()
    seen = 0
    try:
        with no_grad():
            for batch in loader:
                if limit is not None and seen >= limit:
                    break
                _observe_batch(layers, observers, input_shapes, _input_of(batch))
                seen += 1
    finally:
        for layer, mode in zip(layers, modes):
            layer.train(mode)
    if seen == 0:
        raise ValueError("quantize: the calibration loader yielded no batch; calibration needs data")
    return observers, input_shapes


def _observe_batch(layers, observers, input_shapes, x) -> None:
    observers[0](x)
    for layer, observer, shapes in zip(layers, observers[1:], input_shapes):
        shapes.setdefault(x.ndim, tuple(x.shape))
        x = layer(x)
        observer(x)


def _input_of(batch):
    """A batch's input: the batch itself, or the first item of an (x, y, ...) tuple or list."""
    x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    if isinstance(x, np.ndarray):
        x = Tensor(x)
    if not isinstance(x, Tensor):  # a nested list would be ambiguous: a batch, or (x, y)?
        raise TypeError(f"quantize: a calibration batch must be a Tensor or an (x, y, ...) tuple starting with "
                        f"one, got {type(batch).__name__} holding {type(x).__name__}")
    return x

