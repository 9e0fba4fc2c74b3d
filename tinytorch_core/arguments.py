"""How ``Function.apply`` sees what it is given (its step 1) and what forward returns.

- ``plain_argument``: a non-Tensor positional argument as forward sees it (a NumPy scalar as
  its Python number, a list as its array; complex, object and masked data refused);
- ``keyword_arguments``: keyword options, with a Tensor used as its array (and refused when it
  requires grad, since an option is never differentiated);
- ``array_of_numbers``: a forward's output that is a number or a NumPy scalar, as a 0-d array;
- ``count_positional_inputs``: how many inputs a forward takes, for ``needs_input_grad``.
"""

from __future__ import annotations

import inspect

import numpy as np

from . import function  # its Tensor and GraphError, looked up at call time (function.py imports this module)
from .checks import array_from_list, refuse_masked


def array_of_numbers(op, value) -> np.ndarray:
    """A forward's output that is not an array, as one: a number or a NumPy scalar becomes a 0-d
    array; None, text or objects (a kernel that forgot its ``return``) are a ``GraphError``."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        what = f"an array of {array.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        raise function.GraphError(f"forward of {op.display_name()} returned {what}; a forward returns arrays of "
                         "numbers (bool, int or float; one, or a tuple of them)")
    return array


#: argument types forward gets unchanged (the usual numbers and options), without a closer look
AS_THEY_ARE = frozenset({int, float, bool, str, tuple, slice, type(None)})


def plain_argument(value, op, position):
    """A non-Tensor argument as forward sees it: a NumPy scalar as the Python number it holds
    (see dtypes.py), a list of numbers as its array, an array subclass as a plain array
    (``np.matrix`` would turn ``*`` into a matrix product). Complex, object or text data, and
    masked arrays (whose mask no op would honour), are refused: the result would be wrong or
    could not be a tensor."""
    if type(value) is np.ndarray and value.dtype.kind in "biuf":  # the usual raw operand (a target)
        return value
    if isinstance(value, np.generic):
        value = value.item()
    elif type(value) is list:
        return array_from_list(op.display_name(), position, value)
    if isinstance(value, np.ndarray):
        refuse_masked(f"{op.display_name()}: argument {position}", value)
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{op.display_name()}: argument {position} holds {value.dtype} data; ops take "
                            "float, int or bool arrays")
    elif isinstance(value, complex):
        raise TypeError(f"{op.display_name()}: argument {position} is the complex number {value!r}; ops take "
                        "real numbers")
    return value


def keyword_arguments(cls, kwargs: dict, grad_on: bool) -> dict:
    """Keyword arguments are options: a Tensor passed as one is used as its array, never
    differentiated, so one that requires grad is refused rather than silently cut off."""
    if not any(isinstance(value, (function.Tensor, np.generic)) for value in kwargs.values()):
        return kwargs  # the usual case: plain options
    for key, value in kwargs.items():
        if grad_on and isinstance(value, function.Tensor) and value.requires_grad:
            raise TypeError(
                f"{cls.display_name()}: keyword argument '{key}' is a tensor that requires grad; "
                "pass differentiable inputs positionally so they get a gradient"
            )
    return {key: value.data if isinstance(value, function.Tensor) else value.item() if isinstance(value, np.generic) else value
            for key, value in kwargs.items()}


def count_positional_inputs(forward) -> int:
    """How many inputs ``forward(ctx, ...)`` takes positionally (0 with ``*args``: no fixed count)."""
    try:
        parameters = list(inspect.signature(forward).parameters.values())[1:]  # after ctx
    except (TypeError, ValueError):  # a forward without a readable signature (a builtin, say)
        return 0
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 0
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)
