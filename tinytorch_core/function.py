"""``Function``: the one way to define a differentiable operation.

A subclass supplies ``forward(ctx, *arrays)`` and ``backward(ctx, *grads)`` as
static methods. ``apply`` unwraps Tensors to arrays, runs ``forward`` with
recording off, and, when grad mode is on and some input requires grad, makes
the context object the graph node of the outputs. Nobody attaches a backward
by hand, so no op can return a result that silently drops its gradient.
"""

from __future__ import annotations

import inspect

import numpy as np

from .anomaly import check_forward
from .backend import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from .grad_mode import _per_thread

_ndarray = np.ndarray


class GraphError(RuntimeError):
    """Misuse of the autograd graph (freed graph, in-place change, bad backward)."""


def _shares_owner(a, b) -> bool:
    """True when array ``a`` is ``b`` or a view of the memory ``b`` owns or views."""
    if a is b:
        return True
    base = a.base
    return base is not None and (base is b or base is b.base)


class Function:
    """Base class of differentiable operations. Instances are both ``ctx`` and graph node."""

    #: qualified op name (``stage::name``), set when the op is registered
    name: str | None = None
    #: False for ops whose outputs never carry gradients (registration skips gradcheck)
    differentiable: bool = True

    # per-node state; class-level defaults spare ``apply`` an attribute store per node
    _saved = ()
    # (IN_PLACE_CLOCK then, inputs, output array(s), output version counter(s)), set when the
    # node saved arrays: what backward needs to tell whether one was changed in place
    _recorded = None
    _n_outputs = 1
    _output_meta = None
    # the in-place clock when the node was recorded: which node an input written in place since
    # then had at that time (tensor.REWRITTEN)
    _created_at = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._n_forward_inputs = _count_positional_inputs(cls.forward)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must define a static forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("Function subclasses must define a static backward(ctx, *grads)")

    # ---- context API used inside forward/backward ----------------------------------------
    def save_for_backward(self, *arrays) -> None:
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise GraphError(
                f"{self.display_name()}: saved arrays were already freed by an earlier backward; "
                "pass retain_graph=True to the first backward() to backpropagate twice"
            )
        return self._saved

    @property
    def inputs(self) -> tuple:
        """The graph node's inputs: the Tensor for each positional argument that requires grad,
        None for the others (for inspecting and walking a graph)."""
        return self._parents

    @classmethod
    def display_name(cls) -> str:
        return cls.name or cls.__qualname__

    def __repr__(self) -> str:
        return f"<{self.display_name()}>"

    # ---- the only way outputs get a graph node ---------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        # Hot path of every op: plain loops and locals, no generators.
        modes = _per_thread.modes  # this thread's grad and anomaly modes
        grad_on = modes.grad
        raw = []
        parents = []
        needs = []
        any_needs = False
        for a in args:
            if isinstance(a, Tensor):
                raw.append(a.data)
                if grad_on and a.requires_grad:
                    parents.append(a)
                    needs.append(True)
                    any_needs = True
                    continue
            elif isinstance(a, np.generic):
                raw.append(a.item())  # a NumPy scalar acts as the Python number it holds (dtypes.py)
            else:
                raw.append(a)
            parents.append(None)
            needs.append(False)
        if kwargs:
            for key, value in kwargs.items():
                if isinstance(value, Tensor):
                    if grad_on and value.requires_grad:
                        raise TypeError(
                            f"{cls.display_name()}: keyword argument '{key}' is a tensor that requires "
                            "grad; pass differentiable inputs positionally so they get a gradient"
                        )
                    kwargs[key] = value.data
                elif isinstance(value, np.generic):
                    kwargs[key] = value.item()

        ctx = object.__new__(cls)
        if len(needs) < cls._n_forward_inputs:  # one entry per forward input, passed or not
            needs += [False] * (cls._n_forward_inputs - len(needs))
        ctx.needs_input_grad = tuple(needs)
        modes.grad = False  # forward never records
        errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)  # IEEE results (inf, nan), no RuntimeWarning
        try:
            out = cls.forward(ctx, *raw, **kwargs) if kwargs else cls.forward(ctx, *raw)
        except Exception as exc:
            # NumPy's own errors (shapes that do not broadcast, an index out of bounds) do not
            # say which op failed: name it (a traceback note; costs nothing when nothing is raised)
            if hasattr(exc, "add_note"):
                exc.add_note(f"raised in the forward of {cls.display_name()}")
            raise
        finally:
            reset_errstate(errstate)
            modes.grad = grad_on
        if modes.anomaly:
            check_forward(cls, ctx, raw, out)

        if type(out) is not tuple:
            if type(out) is not _ndarray:
                out = np.asarray(out)
            if not any_needs or out.dtype.kind != "f":  # integer/bool results carry no gradient
                result = _make_tensor(out)
                if out.base is not None:
                    _share_version_with_inputs(result, args)
                return result
            ctx._parents = tuple(parents)
            ctx._created_at = IN_PLACE_CLOCK.now
            result = _make_tensor(out, True, ctx, 0)
            if out.base is not None:
                _share_version_with_inputs(result, args)
            if ctx._saved:  # backward looks only if the in-place clock moves (_saved_changed_in_place)
                ctx._recorded = (IN_PLACE_CLOCK.now, args, out, result._version_counter)
            return result
        return _wrap_outputs(ctx, out, args, parents, any_needs)


def _count_positional_inputs(forward) -> int:
    """How many inputs ``forward(ctx, ...)`` takes positionally (0 with ``*args``: no fixed count)."""
    parameters = list(inspect.signature(forward).parameters.values())[1:]  # after ctx
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 0
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


def _wrap_outputs(ctx, out, args, parents, any_needs):
    """The general case of ``apply``: a forward that returned several arrays."""
    outputs = tuple(o if type(o) is _ndarray else np.asarray(o) for o in out)
    if not any_needs:
        results = tuple(Tensor._wrap(o) for o in outputs)
        for t in results:
            _share_version_with_inputs(t, args)
        return results
    ctx._parents = tuple(parents)
    ctx._created_at = IN_PLACE_CLOCK.now
    ctx._n_outputs = len(outputs)
    ctx._output_meta = tuple((o.shape, o.dtype) for o in outputs)
    results = []
    for index, o in enumerate(outputs):
        if o.dtype.kind == "f":
            t = Tensor._wrap(o, True, ctx, index)
        else:
            t = Tensor._wrap(o)
        _share_version_with_inputs(t, args)
        results.append(t)
    if ctx._saved:
        ctx._recorded = (IN_PLACE_CLOCK.now, args, outputs, tuple(t._version_counter for t in results))
    return tuple(results)


def _share_version_with_inputs(output: Tensor, args) -> None:
    """A view shares its input's version counter, so in-place writes through either are seen."""
    data = output.data
    for a in args:
        if isinstance(a, Tensor) and _shares_owner(data, a.data):
            output._version_counter = a._version_counter
            return


def _saved_changed_in_place(ctx: Function) -> bool:
    """Whether a tensor whose array ``ctx`` saved was changed in place after ``ctx`` was recorded.

    A saved array belongs to every input or output tensor whose array it is, or whose memory it
    views; an array that owns its memory and is nobody's is private to the node and cannot be
    changed from outside.
    """
    recorded_at, args, out, out_counter = ctx._recorded
    if ctx._output_meta is None:
        owners = [(out, out_counter)]
    else:
        owners = list(zip(out, out_counter))
    owners += [(a.data, a._version_counter) for a in args if isinstance(a, Tensor)]
    changed = [data for data, counter in owners if counter[0] > recorded_at]
    for arr in ctx._saved:
        if type(arr) is not _ndarray:
            continue
        for data in changed:
            if data is arr or (arr.base is not None and _shares_owner(arr, data)):
                return True
    return False


# Tensor's operators are built from Functions defined in modules that import this one: bind it last.
from .tensor import IN_PLACE_CLOCK, Tensor  # noqa: E402

_make_tensor = Tensor._wrap
