"""What the engine does with one gradient: where it starts, how it is checked and fitted to the
input it belongs to, and how it is stored in a leaf's ``.grad``.

``engine.py`` walks the graph; these are its steps 1 and 4 for a single array:

- ``seed_gradient``: the root's gradient (ones for a one-element loss, else the one given);
- ``fitted_gradient``: a node's gradient for an input, refused if it is None, complex or text,
  summed back to the input's shape where the forward broadcast it (``unbroadcast``), and cast to
  the input's dtype;
- ``accumulate_leaf``: added to a leaf's ``.grad``, copied first when the array is shared.
"""

from __future__ import annotations

import numpy as np

from .function import GraphError
from .tensor import Tensor


def seed_gradient(root: Tensor, grad) -> np.ndarray:
    """The engine's step 1: the gradient backward starts from (``grad``, or ones for a one-element root)."""
    if not root.requires_grad:
        raise GraphError(
            "backward() was called on a tensor that does not require grad: it was not created with "
            "requires_grad=True, was computed under no_grad(), or holds integer/bool data"
        )
    if grad is None:
        if root.data.size != 1:
            raise GraphError(
                f"backward() of a non-scalar tensor (shape {root.data.shape}) needs a gradient "
                "argument of the same shape, e.g. t.backward(np.ones_like(t.data)), or reduce "
                "it first (t.sum().backward())"
            )
        seed = np.array(1, root.data.dtype).reshape(root.data.shape)  # d(root)/d(root) = 1
        seed.setflags(write=False)  # a backward must never write into its incoming gradient
        return seed
    given = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
    if given.dtype.kind not in "biuf":  # text would be NumPy's "could not convert string to float"
        raise GraphError(f"backward(): the gradient argument must hold numbers, got {type(grad).__name__} of {given.dtype}")
    seed = given.astype(root.data.dtype)
    if seed.shape != root.data.shape:
        raise GraphError(
            f"backward(): the gradient argument has shape {seed.shape}, expected the tensor's "
            f"shape {root.data.shape}"
        )
    return seed


def fitted_gradient(g, tensor: Tensor, node, index: int) -> np.ndarray:
    """The engine's step 4, when a gradient does not already fit its input: check it and fit it
    to the input's shape (un-broadcasting) and dtype."""
    if g is None:
        raise GraphError(
            f"backward of {node.display_name()} returned None for input {index}, which requires "
            "grad; return its gradient (zeros if it truly has none)"
        )
    kind = "masked array" if isinstance(g, np.ma.MaskedArray) else None  # asarray would drop the mask
    g = np.asarray(g)
    if kind or g.dtype.kind not in "biuf":  # a cast would drop the imaginary part, or fail on text
        raise GraphError(
            f"backward of {node.display_name()} returned a {kind or 'gradient'} of dtype {g.dtype} for "
            f"input {index}; return a real (float) array"
        )
    target = tensor.data
    if g.shape != target.shape:
        g = unbroadcast(g, target.shape, node, index)
    if g.dtype != target.dtype:
        if target.dtype.kind != "f":  # set by hand (x.requires_grad = True): an integer .grad would be truncated
            raise GraphError(f"backward: a tensor of dtype {target.dtype} requires grad; only floating-point "
                             "tensors can hold a gradient (requires_grad_() refuses this)")
        g = g.astype(target.dtype)
    return g


def unbroadcast(g, shape, node, index):
    """Sum a gradient computed in the broadcast shape back to the input's shape."""
    original = g.shape
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    if lead >= 0:
        axes = tuple(k for k, s in enumerate(shape) if s == 1 and g.shape[k] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
    if g.shape != shape:
        raise GraphError(
            f"backward of {node.display_name()} returned a gradient of shape {original} for "
            f"input {index}, whose shape is {shape} (not reducible by un-broadcasting)"
        )
    return g


def accumulate_leaf(leaf: Tensor, g, claimed: set) -> None:
    """Add ``g`` to a leaf's ``.grad``. A stored gradient owns its memory (users and optimizers
    change ``.grad`` in place), so ``g`` is copied unless it is a fresh array no one else holds.

    A ``.grad`` from an earlier pass takes the new gradient in place, as in PyTorch: whoever holds
    ``x.grad`` sees the sum. One stored in this pass (``claimed``) may still be pending for another
    branch, so it is summed out of place."""
    if leaf.grad is None:
        # a hook may change .grad in place while g is still pending for another branch: its own copy
        if g.base is not None or id(g) in claimed or not g.flags.writeable or leaf._grad_hooks is not None:
            g = g.copy()
        claimed.add(id(g))
        leaf.grad = Tensor._wrap(g)
    else:
        stored = leaf.grad
        if not isinstance(stored, Tensor) or stored.data.shape != g.shape:  # a .grad set by hand
            raise GraphError(f"backward: a leaf's .grad holds {_describe_grad(stored)}, which the new gradient of "
                             f"shape {g.shape} cannot be added to; set .grad to None or a Tensor of the leaf's shape")
        if id(stored.data) in claimed or not stored.data.flags.writeable or stored.data.dtype != g.dtype:
            leaf.grad = Tensor._wrap(stored.data + g)
        else:
            stored.data += g
            stored._bump()


def _describe_grad(grad) -> str:
    return f"a tensor of shape {grad.data.shape}" if isinstance(grad, Tensor) else f"a {type(grad).__name__}"
