"""``Function``: the one way to define a differentiable operation.

A subclass supplies ``forward(ctx, *arrays)`` and ``backward(ctx, *grads)`` as static methods.
``Function.apply`` does the rest, in four steps:

1. unwrap: Tensors become their arrays; note which inputs require grad;
2. forward: run ``forward`` on the arrays, with recording off and NumPy's floating-point
   warnings silenced (IEEE results: ``log(0)`` is ``-inf``, as in PyTorch);
3. record: if grad mode is on and some input requires grad, the context object ``ctx``
   becomes the graph node of the outputs (it keeps its inputs as ``ctx._parents``);
4. wrap: the output arrays become Tensors.

Nobody attaches a backward by hand, so no op can return a result that silently drops its
gradient. The engine (``engine.py``) walks the nodes recorded here.
"""

from __future__ import annotations

import numpy as np

from .anomaly import check_forward
from .arguments import AS_THEY_ARE, array_of_numbers, count_positional_inputs, keyword_arguments, plain_argument
from .errstate import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from .grad_mode import _per_thread
from .inplace import IN_PLACE_CLOCK, link_view, shares_memory_owner
from .observers import FORWARD


class GraphError(RuntimeError):
    """Misuse of the autograd graph (freed graph, in-place change, bad backward)."""


class Function:
    """Base class of differentiable operations. Each call's ``ctx`` is also its graph node."""

    #: qualified op name (``stage::name``) and its ``OpEntry`` (who registered it), both set when
    #: the op is registered
    name: str | None = None
    registration = None
    #: False for ops whose outputs never carry gradients (registration skips gradcheck)
    differentiable: bool = True
    #: for an op whose output is a view of its first input (reshape, transpose, basic indexing):
    #: ``view(array, *options)`` makes that view of any array shaped like the input, so that a
    #: recorded write into the output can go to the input's memory (``inplace.link_view``); an op
    #: that returns a tuple of views (split) is called with the output's position last:
    #: ``view(array, *options, index)``
    view = None
    #: FLOPs of one forward / backward call, as functions of a ``flops.OpCall`` (None: not stated)
    flops = None
    backward_flops = None

    # Per-node state, with class-level defaults (a node sets only what it uses):
    _saved = ()  # what forward saved for backward; None once backward freed it
    _parents = ()  # per positional input: the Tensor if it requires grad, else None
    _n_outputs = 1
    _output_specs = None  # (shape, dtype) per output, for a multi-output node's missing gradients
    _recorded_at = 0  # IN_PLACE_CLOCK.now when the node was recorded
    _inputs = ()  # the forward's arguments, kept only while saved arrays may need checking
    _outputs = ()  # (array, version counter) per output, idem
    _n_inputs, _not_passed = 0, ()  # positional inputs of forward; (False,) each, to pad needs_input_grad
    _retained = None  # {output index: the tensor} of outputs that retain_grad()
    _hooks = None  # {output index: (hook, ...)}: their tensors' register_hook (hooks.py)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._n_inputs = count_positional_inputs(cls.forward)
        cls._not_passed = (False,) * cls._n_inputs  # needs_input_grad's padding

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must define a static forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grads):
        raise GraphError(f"{ctx.display_name()} defines no backward, but a gradient reached its output; give it a "
                         "static backward(ctx, *grads), or detach its output (an op that is not differentiable)")

    # ---- what forward and backward use -------------------------------------------------------
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

    def __getstate__(self) -> dict:
        """A graph node pickles or deep-copies without its tensors' hooks (``register_hook``), as
        a tensor does (``values.py``): a copy must not run the original's code."""
        return {name: value for name, value in self.__dict__.items() if name != "_hooks"}

    # ---- the only way outputs get a graph node -----------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on ``args`` (Tensors, arrays, numbers); see the module docstring."""
        modes = _per_thread.modes  # this thread's grad and anomaly modes, and its observer
        grad_on, ctx, observer = modes.grad, object.__new__(cls), modes.observer
        started = None if observer is None else observer.op_started(cls, FORWARD)  # a profiler
        # 1. unwrap: the arrays forward runs on, and the inputs the graph must reach
        arrays, parents, needs = [], [], []
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                requires = grad_on and a.requires_grad
            else:
                arrays.append(a if type(a) in AS_THEY_ARE else plain_argument(a, cls, len(arrays)))
                requires = False
            parents.append(a if requires else None)
            needs.append(requires)
        ctx.needs_input_grad = tuple(needs) if len(needs) >= cls._n_inputs else (*needs, *cls._not_passed[len(needs):])
        kwargs = keyword_arguments(cls, kwargs, grad_on) if kwargs else kwargs
        record = any(needs)

        # 2. forward: recording off (an op built from other ops records only itself), IEEE results
        modes.grad = False
        errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
            if type(out) is not tuple and (type(out) is not np.ndarray or out.dtype.kind not in "fbiu"):
                out = array_of_numbers(cls, out)  # a number, a NumPy scalar (a loss); never objects
        except Exception as exc:
            named = _forward_failed(exc, ctx, observer, started, arrays, kwargs)
            if named is None:
                raise
            raise named from exc
        finally:
            reset_errstate(errstate)
            modes.grad = grad_on
        if modes.anomaly:
            check_forward(cls, ctx, arrays, out)
        # 3. wrap each output array as a Tensor; 4. record ctx as their graph node
        if type(out) is np.ndarray and out.base is None:  # fast path: one fresh output, -5 % of a W1 step
            result = Tensor._wrap(out, True, ctx, 0) if record and out.dtype.kind == "f" else Tensor._wrap(out)
            if record:
                _record(ctx, parents, args, (result,))
        else:  # a tuple of outputs, or a view
            results = _wrap_outputs(ctx, out if type(out) is tuple else (out,), args, record, type(out) is tuple)
            if record:
                _record(ctx, parents, args, results)
            result = results if type(out) is tuple else results[0]
        if observer is not None:
            observer.forward_finished(started, ctx, arrays, kwargs, result)
        return result


def _wrap_outputs(ctx, outputs: tuple, args, record: bool, several: bool = False) -> tuple:
    """Each output array as a Tensor, whose node is ``ctx`` when the op is recorded (integer
    and bool outputs never carry gradients). ``several``: forward returned a tuple, whose views
    are linked with their position (``Function.view``)."""
    results = []
    for index, array in enumerate(outputs):
        if type(array) is not np.ndarray or array.dtype.kind not in "biuf":
            array = array_of_numbers(type(ctx), array)
        if record and array.dtype.kind == "f":
            result = Tensor._wrap(array, True, ctx, index)
        else:
            result = Tensor._wrap(array)
        if array.base is not None:
            _link_to_viewed_input(result, type(ctx), (*args, index) if several else args)
        results.append(result)
    return tuple(results)


def _forward_failed(exc: Exception, ctx, observer, started, arrays, kwargs) -> Exception | None:
    """A forward raised: tell the observer (if any) and say which op in the error (NumPy's own
    errors, shapes that do not broadcast say, do not). Returns the error to raise instead, or
    None to raise ``exc`` itself."""
    if observer is not None:
        observer.forward_finished(started, ctx, arrays, kwargs, None)
    if isinstance(exc, OverflowError) and not str(exc).startswith(ctx.display_name()):  # NumPy's (int8 + 300)
        return OverflowError(f"{ctx.display_name()}: {exc} (a number the operands' dtype cannot hold)")
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(f"raised in the forward of {ctx.display_name()}")
    return None


def _link_to_viewed_input(view, op, args) -> None:
    """An output that views an input's memory is linked to it (``inplace.link_view``): an in-place
    write through either is seen by the graph nodes that saved the other, and a recorded write into
    the output goes to the input when the op says how it views (``Function.view``)."""
    viewed = args[0] if args else None
    if op.view is not None and isinstance(viewed, Tensor) and shares_memory_owner(view.data, viewed.data):
        link_view(view, viewed, op.view, args[1:])
        return
    for a in args:
        if isinstance(a, Tensor) and shares_memory_owner(view.data, a.data):
            link_view(view, a)  # without a graph link: recorded writes into it are refused
            return


def _record(ctx, parents, args, results) -> None:
    """Make ``ctx`` the graph node of ``results``: what the engine will need from it."""
    ctx._parents = tuple(parents)
    ctx._recorded_at = IN_PLACE_CLOCK.now
    if len(results) > 1:
        ctx._n_outputs = len(results)
        ctx._output_specs = tuple((r.data.shape, r.data.dtype) for r in results)
    if ctx._saved:  # to tell, at backward, whether a saved array was changed in place since
        ctx._inputs = args
        ctx._outputs = [(r.data, r._version_counter) for r in results]


# The one import cycle in core, by design: Tensor's operators are Functions, and a Function's
# outputs are Tensors. tensor.py binds its ops at its end; this module binds Tensor here.
from .tensor import Tensor  # noqa: E402
