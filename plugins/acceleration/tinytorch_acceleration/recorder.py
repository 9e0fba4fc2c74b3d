"""Recording a training step: an observer that watches one eager call and writes its program.

The recorder sees, through core's observer seam (``tinytorch_core.observers``), every op's
forward (its ``Function``, ctx, input arrays, options and outputs), every node's backward (the
gradients it got and returned), the start of each backward pass, each module call and each
optimizer update. It gives every array a slot:

- an output of an op recorded earlier: that op's output slot;
- the array of a Tensor (or an array) passed to the step: bound to that argument per call;
- the array of a parameter or buffer of a module the step called, or of a leaf tensor that
  requires grad: bound to that tensor's ``.data`` per call (optimizers update it in place);
- anything else: a constant, kept as recorded (a mask built once, ``np.arange`` positions), as a
  read-only copy (a kernel or hook that writes into what it got must not change later replays).

A replay runs only ops, backward passes (with their hooks) and reported updates. The recorder
refuses a step that changes a tensor in place anywhere else (``x /= 2`` on an input, ``p.grad *=
0.5`` between ``backward()`` and ``step()``, a decay of the weights after ``step()``): every
in-place change ticks core's ``IN_PLACE_CLOCK``, and the clock must not move between those.

Backward is recorded by doing what the engine does (``engine._Walk.run``, step 4) on the recorded
gradients: which input receives which gradient, fitted how, summed into which pending slot in
which order, or accumulated into which parameter's ``.grad``.
"""

from __future__ import annotations

import numbers

import numpy as np

from tinytorch_core import Module, Observer, Tensor
from tinytorch_core.inplace import IN_PLACE_CLOCK, REWRITTEN, node_seen_by
from tinytorch_core.module_hooks import has_forward_hooks
from tinytorch_core.observers import BACKWARD
from tinytorch_core.primitives.arithmetic import Cast
from tinytorch_nn.optim import Optimizer

from .errors import CompileError
from .fusion import fuse
from .program import PASS, PASS_END, BackwardStep, Delivery, Fit, ForwardStep, Program, UpdateStep, releasing

#: a slot holding at least this many bytes is emptied after its last use; smaller arrays stay in
#: the slots until the replay ends (emptying costs a Python call, holding them costs no memory to speak of)
RELEASE_BYTES = 64 * 1024


class Recorder(Observer):
    """Watches one eager call of a step and builds its ``Program``."""

    def __init__(self, args: tuple):
        self.template = [None, None]  # slots 0, 1: the current backward pass's claimed gradients, outer callbacks
        self.description = []
        self.steps = []  # per instruction to be: what it does and which slots it touches (program.py)
        self.sizes = {}  # slot -> bytes it holds (outputs, ctxs' saved arrays, gradient sums)
        self.slot_of = {}  # id(array or ctx) -> slot
        self.held = []  # every array and ctx seen: keeps their ids unique while recording
        self.arg_bindings, self.tensor_bindings, self.bound = [], [], {}  # bound: id(array) -> tensor
        self.pending = {}  # (id(node), output index) -> slot of that output's gradient sum
        self.watched = {}  # id(tensor) -> (tensor, id(data), version) of module parameters/buffers
        self.read_outside = {}  # id(tensor) -> (tensor, data, version): arrays taken outside ops (data_read)
        self.watched_constants = []  # (array, its bytes): a writable array an op read as a constant
        self.covered = set()  # ids of the modules whose tensors are watched (with every submodule)
        self.depth = 0  # ops running inside an op (a forward built from other ops) are not recorded
        self.in_pass = False  # inside a backward pass: hooks and callbacks run live on replays too
        self.in_update = False  # between update_called and update_finished
        self.clock = IN_PLACE_CLOCK.now  # in-place changes seen so far (by ops, passes and updates)
        self.produced = set()  # slots of op outputs
        self.argument_arrays = []  # to tell a copy of an argument from a constant
        self.aliases = []  # (i, j): inputs i and j are one array, so the ops read one slot for both
        self.read_before = None  # the number of steps recorded when the step first read a value
        self.unreplayable = None  # what the call did with gradients that a replay would not: refused at its end
        first_input_of = {}
        for index, arg in enumerate(args):
            array = arg.data if isinstance(arg, Tensor) else arg
            if isinstance(array, np.ndarray):
                if id(array) in first_input_of:
                    self.aliases.append((first_input_of[id(array)], index))
                first_input_of.setdefault(id(array), index)
                self.arg_bindings.append((self._new_slot(array), index))
                self.argument_arrays.append(array)

    # ---- slots ------------------------------------------------------------------------------------
    def _new_slot(self, key_object=None, value=None) -> int:
        self.template.append(value)
        slot = len(self.template) - 1
        if key_object is not None:
            self.slot_of[id(key_object)] = slot
            self.held.append(key_object)
        return slot

    def _slot(self, value) -> int:
        """The slot of an op's input: produced, bound or constant (see the module docstring)."""
        if isinstance(value, np.ndarray):
            slot = self.slot_of.get(id(value))
            if slot is not None:
                return slot
            tensor = self.bound.get(id(value))
            if tensor is not None:
                slot = self._new_slot(value)
                self.tensor_bindings.append((slot, tensor, value.shape, value.dtype, tensor.requires_grad))
                return slot
        if isinstance(value, np.ndarray):
            self._refuse_a_copy_of_an_argument(value)
            if value.flags.writeable:  # a tensor held in a closure (a scale changed with mul_ between calls)
                self.watched_constants.append((value, value.tobytes()))
        slot = self._new_slot(value, _read_only_copy(value))  # a constant
        self.description.append(("constant", slot, _comparable(value)))
        return slot

    def _refuse_a_copy_of_an_argument(self, array) -> None:
        """A constant holding an argument's values is, almost surely, a copy the step made of it
        (``Tensor(x)`` of a NumPy batch copies): a replay would keep this call's batch for good."""
        if array.size < 2 or array.dtype.kind == "b" or (array == array.flat[0]).all():
            return  # too plain to tell a copy from a constant (a mask equal to a causal mask passed in, say)
        for argument in self.argument_arrays:
            if argument.dtype == array.dtype and argument.shape == array.shape and np.array_equal(argument, array):
                raise CompileError(
                    "compile: the step copied one of its arguments into a new array (Tensor(x) of a NumPy "
                    "batch copies it); a replay would keep this call's copy. Pass tensors, or wrap with "
                    "tt.as_tensor(x), which shares the array"
                )

    def _bind(self, tensor) -> None:
        """``tensor`` lives across calls: its array is read from it on every replay."""
        if tensor is not None and id(tensor.data) not in self.slot_of:
            self.bound.setdefault(id(tensor.data), tensor)

    # ---- what the observer is told ----------------------------------------------------------------
    def module_started(self, module: Module):
        self._check_clock()
        if has_forward_hooks(module):  # Python around the forward: a replay runs the kernels only
            self.unreplayable = self.unreplayable or (
                f"calls {type(module).__name__}, whose forward hooks (register_forward_hook) a replay "
                "would not run")
        if id(module) in self.covered:  # a submodule of a module already seen: its tensors are bound
            return
        # every tensor of the module and its submodules: a forward may read a submodule's
        # parameter without calling it (GPT reads its position table)
        for sub_module in module.modules():
            self.covered.add(id(sub_module))
            for tensor in (*sub_module._parameters.values(), *sub_module._buffers.values()):
                if tensor is not None:
                    self._bind(tensor)
                    self.watched.setdefault(id(tensor), (tensor, id(tensor.data), tensor._version))

    def op_started(self, function, phase):
        if not self.depth:
            self._check_clock()
        self.depth += 1

    def forward_finished(self, token, ctx, inputs, options, outputs) -> None:
        self.depth -= 1
        if self.depth or outputs is None:
            return
        self.clock = IN_PLACE_CLOCK.now  # what the op changed in place, a replay changes again
        if function_casts_floats_to_integers(type(ctx), inputs, outputs):
            raise CompileError(
                "compile: the step casts floating-point data to integers (y.long() of float labels); a "
                "replay could not check the integers (class indices, token ids) against their range. "
                "Pass integer tensors to the step"
            )
        for parent in ctx._parents:
            if parent is not None and parent._node is None:
                self._bind(parent)
        arg_slots = tuple(self._slot(value) for value in inputs)
        option_slots = tuple((k, self._slot(v)) for k, v in options.items() if isinstance(v, np.ndarray))
        constants = {k: v for k, v in options.items() if not isinstance(v, np.ndarray)}
        results = outputs if type(outputs) is tuple else (outputs,)
        ctx_slot = self._new_slot(ctx)
        self.sizes[ctx_slot] = self._private_bytes(ctx)
        out_slots = tuple(self._new_slot(t.data) for t in results)
        self.sizes.update((slot, t.data.nbytes) for slot, t in zip(out_slots, results) if t.data.base is None)
        self.produced.update(out_slots)
        function = type(ctx)
        self.steps.append(ForwardStep(function, ctx.needs_input_grad, arg_slots, constants, option_slots,
                                      ctx_slot, out_slots))
        self.description.append(("forward", function, ctx.needs_input_grad, arg_slots,
                                 _comparable(constants), option_slots, out_slots))

    def _private_bytes(self, ctx) -> int:
        """The bytes of the arrays ``ctx`` saved for backward that only it holds: not an input or
        output of an op (their own slots count those), not a view of another array."""
        return sum(a.nbytes for a in (ctx._saved or ())
                   if type(a) is np.ndarray and a.base is None and id(a) not in self.slot_of)

    def pass_started(self, name):
        self._check_clock()
        if name != BACKWARD:  # autograd.grad returns gradients; a replay fills .grad
            self.unreplayable = self.unreplayable or f"calls autograd.{name}(), whose gradients a replay would not return"
        self.pending, self.in_pass = {}, True
        self.steps.append(PASS)
        return len(self.steps) - 1  # the token pass_finished gets back: where the pass starts

    def pass_finished(self, start: int) -> None:
        self.in_pass, self.clock = False, IN_PLACE_CLOCK.now  # hooks' changes: a replay runs the hooks
        self.watched = {key: (t, id(t.data), t._version) for key, (t, _, _) in self.watched.items()}
        if not any(type(step) is BackwardStep for step in self.steps[start:]):
            raise CompileError(
                "compile: the step called backward() on a leaf tensor (one no op computed); its seed goes "
                "straight to .grad with no op a replay could run. Call backward() on a computed tensor, "
                "or run this step eagerly"
            )
        self._mark_last_deliveries(start)
        self.steps.append(PASS_END)
        self.description.append(("pass end",))

    def _mark_last_deliveries(self, start: int) -> None:
        """Mark each leaf's last gradient of the pass that began at step ``start``: the engine
        runs the leaf's post-accumulate-grad hooks right after it."""
        seen = set()
        for position in range(len(self.steps) - 1, start, -1):
            step = self.steps[position]
            if type(step) is not BackwardStep:
                continue
            marked = list(step.deliveries)
            for k in range(len(marked) - 1, -1, -1):
                target = marked[k].target
                if type(target) is not int and id(target) not in seen:
                    seen.add(id(target))
                    marked[k] = marked[k]._replace(last=True)
            self.steps[position] = step._replace(deliveries=tuple(marked))
        self.description.append(("pass",))

    def backward_finished(self, token, node, output_grads, input_grads) -> None:
        self.depth -= 1
        if self.depth:
            return
        if node._retained is not None or node._hooks:  # refused when the call ends
            self.unreplayable = self.unreplayable or (
                "calls retain_grad() on a computed tensor, whose .grad a replay would not fill" if node._retained
                else "registers a hook on a computed tensor (register_hook), which a replay would not run")
        grad_sources = [self._grad_source(node, index, g) for index, g in enumerate(output_grads)]
        deliveries = tuple(self._deliveries(node, input_grads))
        ctx_slot = self.slot_of[id(node)]
        self.steps.append(BackwardStep(type(node), ctx_slot, tuple(grad_sources), deliveries))
        self.description.append(("backward", ctx_slot, tuple(grad_sources),
                                 tuple((d.index, d.fit and d.fit.describe(), _target_key(d.target), d.first)
                                       for d in deliveries)))

    def update_called(self, function, args: tuple) -> None:
        if self.in_pass:  # called by a grad hook, which a replay runs itself: recording it would run it twice
            return
        self._check_clock()
        self.in_update = True
        if getattr(function, "__name__", "") == "step" and args and args[0] is not None:
            raise CompileError("compile: optimizer.step(closure) is not supported inside a compiled step; "
                               "compute the loss and call backward() in the step itself")
        self.check_unrecorded_writes()
        self.steps.append(UpdateStep(_replayed_update(function), args))
        self.description.append(("update", function, tuple(_comparable(a) for a in args)))
        self.watched, self.covered = {}, set()  # the update changes parameters: watch from the next module call on

    def update_finished(self) -> None:
        if self.in_update:
            self.in_update, self.clock = False, IN_PLACE_CLOCK.now  # the update's changes: replayed with it

    def data_read(self, tensor) -> None:
        """Code outside ops took the array of a tensor the step neither made nor was given (a
        loss's class weights held by the loss): what it computed from it may be a constant of the
        program, valid while that tensor keeps its array and version (``Program.bind`` checks)."""
        if self.depth or not isinstance(tensor, Tensor):
            return
        data = tensor.data
        if id(data) in self.slot_of or (id(data) in self.bound and tensor.requires_grad):
            return  # made or given by the step, or a parameter (its reads outside ops are shape checks)
        # a module's buffer too (a loss's class weights): ops read it anew, but not this code
        self.read_outside.setdefault(id(tensor), (tensor, data, tensor._version))

    def value_read(self, tensor) -> None:
        if not (self.depth or self.in_update or self.in_pass) and self.read_before is None:
            self.read_before = len(self.steps)  # ops' and hooks' own reads are replayed with them

    def _check_read_then_continued(self) -> None:
        """Refuse a step that read a value (``loss.item()``, ``if loss > 0``) and then ran a
        backward pass or an update: whether they run may hang on a decision a replay cannot make
        again. Ops after a read (an accuracy computed for the return value) are allowed."""
        later = self.steps[self.read_before:] if self.read_before is not None else ()
        if any(step is PASS or type(step) is UpdateStep for step in later):
            raise CompileError(
                "compile: the step read a tensor's value (item(), bool(), tolist(), numpy(), any() or "
                "all()) and then ran backward() or an update; a replay runs them whatever the value is, "
                "so a Python decision made on it (skip a NaN batch, clip on a threshold) would not be "
                "made again. Read values after the optimizer update (return loss.item()), or run this "
                "step eagerly. This call ran eagerly to the end: its update is applied, do not repeat it"
            )

    def _check_clock(self) -> None:
        """Refuse an in-place change made since the last op, pass or update ended: outside
        what a replay runs, so a replay would skip it."""
        if IN_PLACE_CLOCK.now != self.clock and not self.in_pass and not self.in_update:
            self.check_unrecorded_writes()  # a module's tensor: the more precise message
            raise CompileError(
                "compile: the step changed a tensor in place outside ops, backward() and optimizer "
                "calls (x /= 2 on an input, h += 1 or h[i] = v on an intermediate, p.grad *= 0.5 "
                "before step(), a weight decay written after step()); a replay would skip that "
                "change. Write it out of place (h = h + 1), or run this step eagerly"
            )

    # ---- backward, as the engine does it ----------------------------------------------------------
    def _grad_source(self, node, index: int, g):
        """Where the gradient of output ``index`` of ``node`` comes from: a pending sum's slot, a
        constant (the seed of ``backward()``) or, None here, zeros (``(shape, dtype)``)."""
        slot = self.pending.get((id(node), index))
        if slot is not None:
            return slot
        if g is None:
            return node._output_specs[index]
        return self._slot(g)

    def _deliveries(self, node, input_grads):
        """step 4 of the engine: per input that requires grad, (index, fit, target, first)."""
        for index, tensor in enumerate(node._parents):
            if tensor is None:
                continue
            g, target = input_grads[index], tensor.data
            fit = None
            if type(g) is not np.ndarray or g.shape != target.shape or g.dtype != target.dtype:
                fit = Fit(np.shape(g), np.asarray(g).dtype, target.shape, target.dtype)
            source, out_index = node_seen_by(node, tensor) if REWRITTEN else (tensor._node, tensor._out_index)
            if source is None:
                yield Delivery(index, fit, self._leaf(tensor), False)
                continue
            key = (id(source), out_index)
            first = key not in self.pending
            if first:
                self.pending[key] = self._new_slot()
                self.sizes[self.pending[key]] = np.asarray(g).nbytes
            yield Delivery(index, fit, self.pending[key], first)

    def _leaf(self, tensor):
        """A leaf receiving a gradient must outlive the call: a parameter (or another tensor the
        step reads, not one it is given: each call gets new arguments)."""
        if tensor._hooks is not None:
            self.unreplayable = self.unreplayable or "reaches a parameter with a tensor hook (register_hook), which a replay would not run"
        if id(tensor.data) in self.bound:
            return tensor
        raise CompileError(
            f"compile: backward reached a leaf tensor of shape {tensor.data.shape} that requires grad "
            "and is an argument of the step; a compiled step computes gradients of parameters only "
            "(pass inputs that do not require grad, or run this step eagerly)"
        )

    # ---- the end of the recording -----------------------------------------------------------------
    def check_unrecorded_writes(self) -> None:
        """Refuse a step that changed a module's tensor outside ops and optimizer updates (running
        statistics updated in Python, a manual ``p.data[...] = ...``): a replay would skip it."""
        for tensor, data_id, version in self.watched.values():
            if id(tensor.data) != data_id or tensor._version != version:
                raise CompileError(
                    f"compile: the step changed a module's tensor of shape {tensor.data.shape} in place "
                    "outside ops and optimizer updates (BatchNorm running statistics, a manual write "
                    "into .data); a replay would skip that change. Run this step eagerly"
                )

    def program(self, result_value) -> Program:
        self._check_clock()
        if self.unreplayable:
            raise CompileError(f"compile: the step {self.unreplayable}. Run this step eagerly, or move that out "
                               "of it. This call ran eagerly to the end: its update is applied, do not repeat it")
        self._check_read_then_continued()
        self.check_unrecorded_writes()
        result, described = self._result(result_value)
        self.description.append(("result", described))
        kept = set(_result_slots(described))
        steps = fuse(self.steps, kept)
        instructions = [releasing(step.instruction(), released) if released else step.instruction()
                        for step, released in zip(steps, self._releases(steps, kept))]
        outside = tuple(self.read_outside.values())
        return Program(self.template, self.arg_bindings, self.tensor_bindings, instructions, result,
                       self.description, tuple(self.aliases), outside, tuple(self.watched_constants))

    def _releases(self, steps: list, kept: set) -> list:
        """Per instruction, the large slots (op outputs, ctxs' saved arrays, gradient sums, of at
        least ``RELEASE_BYTES``) that no later instruction and not the result use: emptied right
        after it, so a replay holds no more memory than an eager step, which frees each array when
        its last consumer is done (a replay holding all of W7's activations was 5 % slower than eager)."""
        last_use = {}
        for index, step in enumerate(steps):
            for slot in step.slots():
                last_use[slot] = index
        releases = [[] for _ in steps]
        for slot, index in last_use.items():
            if slot not in kept and self.sizes.get(slot, 0) >= RELEASE_BYTES:
                releases[index].append(slot)
        return [tuple(r) for r in releases]

    def _result(self, value):
        """slots -> the step's return value: a Tensor (detached), a float matched to a
        one-element array an op computed (``loss.item()``), None, or a tuple of those."""
        if value is None:
            return (lambda slots: None), None
        if isinstance(value, Tensor) and id(value.data) in self.slot_of:
            slot = self.slot_of[id(value.data)]
            return (lambda slots: Tensor._wrap(slots[slot])), ("tensor", slot)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            slot = self._matching_scalar(float(value))
            return (lambda slots: slots[slot].item()), ("number", slot)
        if type(value) is tuple:
            parts = [self._result(v) for v in value]
            return (lambda slots: tuple(f(slots) for f, _ in parts)), ("tuple", tuple(d for _, d in parts))
        raise CompileError(
            f"compile: the step returned {type(value).__name__}; a compiled step may return None, a "
            "tensor an op computed, a number read from one (loss.item()), or a tuple of those"
        )

    def _matching_scalar(self, value: float) -> int:
        """The last one-element array an op computed whose value is ``value`` (the loss)."""
        for array in reversed(self.held):
            if isinstance(array, np.ndarray) and array.size == 1 and self.slot_of[id(array)] in self.produced:
                item = array.item()
                if item == value or (item != item and value != value):
                    return self.slot_of[id(array)]
        raise CompileError(
            f"compile: the step returned the number {value}, which no op computed; return the loss "
            "tensor or loss.item()"
        )


def _replayed_update(function):
    """What a replay calls for the update ``function``: an optimizer's ``update`` for its
    ``step`` (the same arithmetic without ``step``'s no_grad and error-state setup, which the
    replay already holds); anything else as recorded."""
    owner = getattr(function, "__self__", None)
    if isinstance(owner, Optimizer) and getattr(function, "__func__", None) is Optimizer.step:
        return lambda closure: owner.update()  # closure: the None a compiled step's step() passes
    return function


def function_casts_floats_to_integers(function, inputs, outputs) -> bool:
    """``function`` is core's cast, from floating-point input to integer output."""
    return (function is Cast and isinstance(inputs[0], np.ndarray) and inputs[0].dtype.kind == "f"
            and outputs.data.dtype.kind in "iu")


def _read_only_copy(value):
    """An array constant as a read-only copy; anything else as it is."""
    if not isinstance(value, np.ndarray):
        return value
    frozen = value.copy()
    frozen.setflags(write=False)
    return frozen


def _result_slots(described):
    """Every slot the step's return value reads."""
    if not described:
        return
    kind, payload = described
    if kind == "tuple":
        for part in payload:
            yield from _result_slots(part)
    else:
        yield payload


def _target_key(target):
    return target if type(target) is int else ("leaf", id(target))


def _comparable(value):
    """A form of ``value`` that compares by content (arrays: shape, dtype and bytes)."""
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.dtype.str, value.tobytes())
    if isinstance(value, dict):
        return tuple((k, _comparable(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_comparable(v) for v in value))
    if isinstance(value, Tensor):
        return ("tensor", id(value))
    if isinstance(value, slice):  # an index such as x[:T]; slices are unhashable before Python 3.12
        return ("slice", _comparable(value.start), _comparable(value.stop), _comparable(value.step))
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return value
