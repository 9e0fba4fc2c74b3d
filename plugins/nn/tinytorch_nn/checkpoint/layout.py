"""Nested state (an optimizer's, a whole training run's) in a flat file of named arrays.

safetensors stores a flat map name -> array, plus text metadata. ``flatten`` walks a state and
puts every array under its dotted path (``optimizer.state.0.exp_avg``); the structure around the
arrays, with every plain value in it (numbers, strings, booleans, None), becomes the *layout*: a
JSON text stored in the file's metadata under ``LAYOUT_KEY``. ``unflatten`` rebuilds the state from
the layout and the arrays. A layout node is one of::

    {"tensor": name}                an array, stored under ``name``
    {"value": v}                    a number, string, boolean or None
    {"list": [node, ...]}           a list (or {"tuple": [...]}: a tuple)
    {"dict": [[key, node], ...]}    a dict, in order; keys are strings, or integers (an optimizer
                                    numbers its parameters)

A plain model state dict is one ``dict`` node of ``tensor`` nodes: the layout only keeps its order,
and any other safetensors reader (PyTorch's) sees the arrays under their usual names.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from tinytorch_core import Tensor

from .errors import MAX_ENTRIES, name_problem
from .safetensors_file import DTYPES

__all__ = ["LAYOUT_KEY", "MAX_DEPTH", "flatten", "unflatten"]

LAYOUT_KEY = "tinytorch.layout"
MAX_DEPTH = 32  # levels of nesting (a training checkpoint uses four)
_PLAIN = (bool, int, float, str, type(None))
_MAX_INT_BITS = 13_000  # under Python's 4,300-digit limit on turning an int into text
_CONTAINERS = {"list": list, "tuple": tuple}
_SAVEABLE = set(DTYPES.values())  # in little-endian byte order; safetensors swaps big-endian arrays


# ---- saving: state -> (arrays, layout) ---------------------------------------------------------------
def flatten(state) -> tuple[dict, str]:
    """``(arrays by dotted name, layout as JSON text)`` for ``state``, a mapping of names to
    arrays, Tensors, plain values, and dicts, lists and tuples of them."""
    if not isinstance(state, Mapping):
        raise TypeError(f"save: expected a mapping of names to arrays, got {type(state).__name__}")
    for key in state:
        if not isinstance(key, str) or not key:
            raise TypeError(f"save: state dict keys must be non-empty strings, got {key!r}")
    arrays: dict = {}
    layout = _node(state, "", arrays, depth=0)
    if len(arrays) > MAX_ENTRIES:
        raise ValueError(f"save: {len(arrays)} arrays is more than the {MAX_ENTRIES} a checkpoint may hold")
    return arrays, json.dumps(layout, separators=(",", ":"))


def _node(value, name: str, arrays: dict, depth: int) -> dict:
    if depth > MAX_DEPTH:
        raise ValueError(f"save: '{name}' is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, (Tensor, np.ndarray)):
        if name in arrays:
            raise ValueError(f"save: two arrays would both be stored as {name!r} (e.g. 'b' inside 'a', 'a.b' at the top)")
        arrays[name] = _saveable(name, value)
        return {"tensor": name}
    if isinstance(value, np.generic):  # a NumPy scalar is kept as the Python number it holds
        value = value.item()
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:  # Python refuses to write it as text
        raise ValueError(f"save: entry '{name}' is an integer of {value.bit_length()} bits; a checkpoint writes its "
                         f"numbers as JSON text, at most {_MAX_INT_BITS} bits (4,000 digits)")
    if isinstance(value, _PLAIN):
        return {"value": value}
    if isinstance(value, Mapping):
        return {"dict": [[key, _node(v, _child(name, key), arrays, depth + 1)] for key, v in value.items()]}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_node(v, _child(name, k), arrays, depth + 1) for k, v in enumerate(value)]}
    raise TypeError(
        f"save: entry '{name}' is a {type(value).__name__}; a checkpoint holds arrays, Tensors, numbers, "
        "strings, booleans and None, in dicts, lists and tuples"
    )


def _child(name: str, key) -> str:
    """The dotted name of ``name[key]``; keys are names (``fc1.weight``) or indices (``0``)."""
    if _is_index(key):
        problem = None
    elif isinstance(key, str):
        problem = name_problem(key)
    else:
        problem = "is not a string or an integer >= 0"
    if problem:
        raise ValueError(f"save: entry name {key!r} {problem}; load would refuse it")
    return _join(name, key)


def _is_index(key) -> bool:
    return isinstance(key, int) and not isinstance(key, bool) and key >= 0


def _join(name: str, key) -> str:
    return f"{name}.{key}" if name else str(key)


def _saveable(name: str, value) -> np.ndarray:
    """``value`` as a C-ordered array of a dtype safetensors stores."""
    array = value.data if isinstance(value, Tensor) else value
    if array.dtype.newbyteorder("<") not in _SAVEABLE:
        raise TypeError(
            f"save: entry '{name}' has dtype {array.dtype}; only numeric and bool arrays are saved "
            "(bool, int8-64, uint8-64, float16/32/64)"
        )
    # safetensors copies the raw buffer: it must be in C order (np.ascontiguousarray would turn a
    # 0-d array into 1-d)
    return array if array.flags.c_contiguous else array.copy(order="C")


# ---- loading: (arrays, layout) -> state --------------------------------------------------------------
def unflatten(layout_text: str, arrays: dict, fail) -> OrderedDict:
    """The state ``flatten`` was given, from its layout and the arrays read; every array must be
    used exactly once. ``fail(why)`` raises."""
    try:
        layout = json.loads(layout_text)
    except (ValueError, RecursionError) as exc:
        fail(f"its layout ({LAYOUT_KEY} in the metadata) is not valid JSON ({type(exc).__name__})")
    used: set = set()
    state = _rebuild(layout, "", arrays, used, fail, depth=0)
    if not isinstance(state, dict):
        fail(f"its layout ({LAYOUT_KEY}) does not describe a state dict")
    unused = [name for name in arrays if name not in used]
    if unused:
        fail(f"its layout ({LAYOUT_KEY}) does not place the array {unused[0]!r}")
    return state


def _rebuild(node, path: str, arrays: dict, used: set, fail, depth: int):
    """The value of the layout ``node`` found at the dotted ``path``."""
    if depth > MAX_DEPTH:
        fail(f"its layout ({LAYOUT_KEY}) is nested more than {MAX_DEPTH} levels deep")
    if not (isinstance(node, dict) and len(node) == 1):
        fail(f"its layout ({LAYOUT_KEY}) holds a node that is not one of tensor, value, list, tuple, dict")
    (kind, content), = node.items()
    if kind == "tensor":
        if content != path or content not in arrays or content in used:
            fail(f"its layout ({LAYOUT_KEY}) places the array {str(content)[:80]!r} at {path[:80]!r}, "
                 "where the file holds no array (or places it twice)")
        used.add(content)
        return arrays[content]
    if kind == "value" and isinstance(content, _PLAIN):
        return content
    if kind in _CONTAINERS and isinstance(content, list):
        items = (_rebuild(item, _join(path, k), arrays, used, fail, depth + 1) for k, item in enumerate(content))
        return _CONTAINERS[kind](items)
    if kind == "dict" and isinstance(content, list):
        return _rebuild_dict(content, path, arrays, used, fail, depth)
    fail(f"its layout ({LAYOUT_KEY}) holds a malformed {str(kind)[:20]!r} node")


def _rebuild_dict(pairs: list, path: str, arrays: dict, used: set, fail, depth: int) -> OrderedDict:
    result = OrderedDict()
    for pair in pairs:
        key = pair[0] if isinstance(pair, list) and len(pair) == 2 else None
        if not (_is_index(key) or (isinstance(key, str) and name_problem(key) is None)):
            fail(f"its layout ({LAYOUT_KEY}) holds a dict entry that is not a [name or index, node] pair")
        if key in result:
            fail(f"its layout ({LAYOUT_KEY}) repeats the key {str(key)[:80]!r}")
        result[key] = _rebuild(pair[1], _join(path, key), arrays, used, fail, depth + 1)
    return result
