"""A recorded training step as a flat program over *slots*, and its replay.

A slot is one entry of a Python list that holds, during a replay, one value the step works
on: an input array (``x.data``), a parameter's array, a constant, the output array of an op,
the ``ctx`` of an op (what its backward needs), or a pending gradient sum. The program is a
list of *instructions*, each a small function of the slots, made once when the step is
recorded:

- ``forward_instruction``: ``Function.forward(fresh ctx, *arrays, **options)``, as
  ``Function.apply`` runs it, with no unwrapping, no Tensors and no graph node;
- ``backward_instruction``: ``Function.backward(ctx, *grads)``, then the engine's deliveries in
  the recorded order: each gradient fitted to its input (un-broadcast, cast) and stored in, or
  added to, the pending sum of the op that made the input, or accumulated into a parameter's
  ``.grad``; the same additions in the same order give bitwise the same sums. After a
  parameter's last gradient of the pass, its post-accumulate-grad hooks run, as in the engine;
- ``pass_instruction`` / ``pass_end_instruction``: a backward pass's start and end; the end runs
  what hooks queued with ``queue_callback`` (data-parallel training's all-reduce waits there);
- ``update_instruction``: an optimizer's ``step``/``zero_grad`` or ``clip_grad_norm_``, called
  as recorded (the very same code as eager, so the same arithmetic; version counters move).

The recorder first writes each instruction as a *step*, a record of what it does and which slots
it touches (``ForwardStep``, ``BackwardStep``, ``PASS``, ``UpdateStep``); ``fusion.py`` may replace
pairs of steps by one fused op's; then every step becomes its instruction. An instruction after
which a large array (an activation, a ctx's saved arrays, a gradient sum) has no further use also
empties its slot (``releasing``), as the eager engine drops them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinytorch_core import Tensor
from tinytorch_core.engine import _run_grad_hooks  # the engine's own code: same bits, same hooks
from tinytorch_core.gradients import accumulate_leaf
from tinytorch_core.errstate import IGNORE_FLOATING_POINT_ERRORS, reset_errstate, set_errstate
from tinytorch_core.grad_mode import current_modes


class Program:
    """One recorded step: the slots' starting values, what to bind per call, the instructions
    and how to build the return value."""

    def __init__(self, template, arg_bindings, tensor_bindings, instructions, result, description, aliases=(),
                 outside_reads=(), watched_constants=()):
        self.template = template  # constants in their slots, None elsewhere
        self.arg_bindings = arg_bindings  # (slot, index of the step's argument) per input array
        self.tensor_bindings = tensor_bindings  # (slot, tensor, shape, dtype, requires_grad)
        self.instructions = instructions
        self.result = result  # slots -> the value the step returns
        self.description = description  # what two recordings of the same step must share
        # (i, j): inputs i and j were one array when recorded, so the ops read one slot for both; a
        # call with two arrays there needs its own recording (the other way round replays right)
        self.aliases = aliases
        # (tensor, array, version) of each tensor whose array code outside ops read (a loss's class
        # weights): what it computed is a constant here, so any change to the tensor records again
        self.outside_reads = outside_reads
        # (array, bytes when recorded) of each writable array an op read as a constant (a tensor
        # held in a closure or a plain attribute): changed since, the step records again
        self.watched_constants = watched_constants

    def bind(self, args) -> list | None:
        """Fresh slots holding this call's arrays; None if a bound tensor no longer fits the
        recording (its array changed shape or dtype, it stopped/started requiring grad, or it got a
        tensor hook, which the recording then refuses), two
        inputs that were one array no longer are, or a tensor read outside ops, or an array an op
        read as a constant, changed."""
        for tensor, array, version in self.outside_reads:
            if tensor.data is not array or tensor._version != version:
                return None
        for array, recorded in self.watched_constants:
            if array.tobytes() != recorded:
                return None
        for i, j in self.aliases:
            if _array(args[i]) is not _array(args[j]):
                return None
        slots = self.template.copy()
        for slot, index in self.arg_bindings:
            arg = args[index]
            slots[slot] = arg.data if isinstance(arg, Tensor) else arg
        for slot, tensor, shape, dtype, requires_grad in self.tensor_bindings:
            array = tensor.data
            if array.shape != shape or array.dtype != dtype or tensor.requires_grad != requires_grad or tensor._hooks:
                return None
            slots[slot] = array
        return slots

    def replay(self, slots: list):
        """Run the instructions on bound slots, as ``Function.apply`` runs forwards and the engine
        backwards: recording off, NumPy's floating-point warnings off."""
        modes = current_modes()
        grad_on, modes.grad = modes.grad, False
        callbacks = modes.pass_callbacks
        errstate = set_errstate(IGNORE_FLOATING_POINT_ERRORS)
        try:
            for run in self.instructions:
                run(slots)
        except BaseException:
            modes.pass_callbacks = callbacks  # a hook raised inside a pass: its list must not stay
            raise
        finally:
            reset_errstate(errstate)
            modes.grad = grad_on
        return self.result(slots)


def _array(value):
    return value.data if isinstance(value, Tensor) else value


# ---- steps: what each instruction does, before it is made ----------------------------------------
class ForwardStep(NamedTuple):
    """An op's forward: ``function.forward(ctx, *slots[arg_slots], **options)``."""

    function: type
    needs_input_grad: tuple
    arg_slots: tuple
    options: dict  # options that are not arrays, as recorded
    option_slots: tuple  # (name, slot) of options that are arrays
    ctx_slot: int
    out_slots: tuple

    def slots(self) -> tuple:
        return (*self.arg_slots, *(s for _, s in self.option_slots), self.ctx_slot, *self.out_slots)

    def instruction(self):
        return forward_instruction(self.function, self.needs_input_grad, self.arg_slots, self.options,
                                   self.option_slots, self.ctx_slot, self.out_slots)


class BackwardStep(NamedTuple):
    """A node's backward and the deliveries of its input gradients (see ``backward_instruction``)."""

    function: type
    ctx_slot: int
    grad_sources: tuple
    deliveries: tuple

    def slots(self) -> tuple:
        return (self.ctx_slot, *(s for s in self.grad_sources if type(s) is int),
                *(delivery.target for delivery in self.deliveries if type(delivery.target) is int))

    def instruction(self):
        return backward_instruction(self.function, self.ctx_slot, self.grad_sources, self.deliveries)


class PassStep(NamedTuple):
    """The start of a backward pass."""

    def slots(self) -> tuple:
        return ()

    def instruction(self):
        return pass_instruction


class PassEndStep(NamedTuple):
    """The end of a backward pass: the callbacks its hooks queued."""

    def slots(self) -> tuple:
        return ()

    def instruction(self):
        return pass_end_instruction


PASS, PASS_END = PassStep(), PassEndStep()


class UpdateStep(NamedTuple):
    """A call outside the graph (an optimizer's update, ``zero_grad``), made as recorded."""

    function: object
    args: tuple

    def slots(self) -> tuple:
        return ()

    def instruction(self):
        return update_instruction(self.function, self.args)


# ---- forward -----------------------------------------------------------------------------------
def fetcher(indices: tuple):
    """slots -> the tuple of the values at ``indices``."""
    if len(indices) == 1:
        (only,) = indices
        return lambda slots: (slots[only],)
    if not indices:
        return lambda slots: ()
    from operator import itemgetter

    return itemgetter(*indices)


def forward_instruction(function, needs_input_grad, arg_slots, options, option_slots, ctx_slot, out_slots):
    """Run ``function.forward`` on the slots ``arg_slots``; its ctx goes to ``ctx_slot``, its
    output array(s) to ``out_slots`` (one per output, like the Tensors ``apply`` returns)."""
    forward, new, fetch = function.forward, object.__new__, fetcher(arg_slots)
    single = out_slots[0] if len(out_slots) == 1 else None

    def run(slots):
        ctx = new(function)
        ctx.needs_input_grad = needs_input_grad
        kwargs = {**options, **{key: slots[s] for key, s in option_slots}} if option_slots else options
        out = forward(ctx, *fetch(slots), **kwargs)
        slots[ctx_slot] = ctx
        if single is not None and type(out) is not tuple:
            slots[single] = out if type(out) is np.ndarray else np.asarray(out)
        else:
            for slot, array in zip(out_slots, out if type(out) is tuple else (out,)):
                slots[slot] = array if type(array) is np.ndarray else np.asarray(array)

    return run


# ---- backward ----------------------------------------------------------------------------------
class Fit:
    """What the engine's ``_fit`` does to one gradient of known shape: ``np.asarray``, the sums
    of un-broadcasting (leading axes, then axes of size 1), the cast to the input's dtype."""

    __slots__ = ("lead_axes", "one_axes", "dtype")

    def __init__(self, grad_shape: tuple, grad_dtype, shape: tuple, dtype):
        lead = len(grad_shape) - len(shape)
        self.lead_axes = tuple(range(lead)) if lead > 0 else None
        kept = grad_shape[lead:] if lead > 0 else grad_shape
        ones = tuple(k for k, s in enumerate(shape) if s == 1 and kept[k] != 1) if lead >= 0 else ()
        self.one_axes = ones or None
        self.dtype = None if grad_dtype == dtype else dtype

    def __call__(self, g):
        g = np.asarray(g)
        if self.lead_axes is not None:
            g = g.sum(axis=self.lead_axes)
        if self.one_axes is not None:
            g = g.sum(axis=self.one_axes, keepdims=True)
        return g if self.dtype is None else g.astype(self.dtype)

    def describe(self) -> tuple:
        return self.lead_axes, self.one_axes, self.dtype


class Delivery(NamedTuple):
    """Where one input gradient of a backward goes (the engine's step 4)."""

    index: int  # which of the backward's gradients
    fit: Fit | None  # how to fit it to the input, or None when it already fits
    target: object  # a pending sum's slot (int), or the leaf tensor whose .grad receives it
    first: bool  # a slot target: store (the first gradient of the sum) rather than add
    last: bool = False  # a leaf target: its last gradient of the pass (its grad hooks run next)


def backward_instruction(function, ctx_slot, grad_sources, deliveries):
    """Run ``function.backward(ctx, *output grads)`` and deliver its input gradients.

    ``grad_sources``: per output, a slot or ``(shape, dtype)`` (no gradient reached it: zeros,
    as the engine gives). ``deliveries``: ``Delivery`` records in the engine's order; ``first``
    stores into the pending slot, otherwise adds to it (the engine's ``pending + g``); a tensor
    target is a leaf: ``gradients.accumulate_leaf`` into its ``.grad``, then, after its ``last`` gradient,
    its hooks (registered before or after the recording: they are looked up on each replay).
    """
    backward = function.backward
    plain = all(type(source) is int for source in grad_sources)
    fetch = fetcher(tuple(grad_sources)) if plain else None

    def output_grads(slots):
        return [slots[s] if type(s) is int else np.zeros(*s) for s in grad_sources]

    def run(slots):
        grads = backward(slots[ctx_slot], *(fetch(slots) if plain else output_grads(slots)))
        if type(grads) is not tuple:
            grads = (grads,)
        claimed = slots[0]  # ids of arrays already stored as a .grad in this pass (the engine's set)
        for index, fit, target, first, last in deliveries:
            g = grads[index] if fit is None else fit(grads[index])
            if type(target) is int:
                slots[target] = g if first else slots[target] + g
            else:
                accumulate_leaf(target, g, claimed)
                if last and target._grad_hooks is not None:
                    run_hooks(slots, target)

    return run


def releasing(run, released: tuple):
    """``run``, then empty the slots ``released``: their arrays are used by no later instruction
    (an eager step frees them there too), so a replay holds no more memory than eager."""

    def run_and_release(slots):
        run(slots)
        for slot in released:
            slots[slot] = None

    return run_and_release


#: slot 1 while no hook has run in the current pass (most passes: nothing to set up or run)
NO_HOOK_RAN = object()


def pass_instruction(slots):
    """A backward pass starts: the engine's fresh set of claimed gradient arrays (slot 0)."""
    slots[0], slots[1] = set(), NO_HOOK_RAN


def run_hooks(slots, leaf) -> None:
    """``leaf``'s post-accumulate-grad hooks; before the pass's first, a fresh list for what they
    queue with ``queue_callback`` (the list outside the pass waits in slot 1)."""
    if slots[1] is NO_HOOK_RAN:
        modes = current_modes()
        slots[1], modes.pass_callbacks = modes.pass_callbacks, []
    _run_grad_hooks(leaf)


def pass_end_instruction(slots):
    """A backward pass ends: the callbacks its hooks queued run, as the engine runs them."""
    if slots[1] is not NO_HOOK_RAN:
        modes = current_modes()
        for callback in modes.pass_callbacks:
            callback()
        modes.pass_callbacks = slots[1]


# ---- updates outside the graph -------------------------------------------------------------------
def update_instruction(function, args: tuple):
    """Call ``function(*args)`` (an optimizer's ``step``, say) exactly as the step did."""

    def run(slots):
        function(*args)

    return run
