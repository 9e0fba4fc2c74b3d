"""Fusion: a recorded program's pairs of steps replaced by one fused op's steps (``fused.py``).

One rule today, Linear then ReLU. It applies where the recording shows that nothing else can
tell the difference:

- forward: ``linear``'s output is read by the ReLU alone (not by another op, not returned);
- backward (if the step has one): ReLU's backward hands its gradient, unchanged in shape and
  dtype, to ``linear``'s output and to nothing else, and ``linear``'s backward reads it alone.

Then the linear forward's step becomes the fused forward, writing the ReLU's output slot, and
the linear backward's step becomes the fused backward, reading the gradient the ReLU's backward
read. The ReLU's two steps go. Every other step keeps its place, so every gradient sum adds the
same terms in the same order: the replay's results stay bitwise the eager step's.
"""

from __future__ import annotations

from collections import Counter

from tinytorch_nn.activations import ReLUFunction
from tinytorch_nn.linear import LinearFunction

from .fused import LinearReLUFunction
from .program import BackwardStep, ForwardStep


def fuse(steps: list, kept: set) -> list:
    """``steps`` with every fusable Linear-ReLU pair fused; ``kept``: the slots the step returns."""
    readers = Counter(slot for step in steps for slot in step.slots())
    producer = {}  # output slot -> index of the forward step that writes it
    backward_of = {}  # ctx slot -> index of its backward step (None if it has several)
    for index, step in enumerate(steps):
        if type(step) is ForwardStep:
            producer.update((slot, index) for slot in step.out_slots)
        elif type(step) is BackwardStep:
            backward_of[step.ctx_slot] = None if step.ctx_slot in backward_of else index
    fused = list(steps)
    for relu_index, relu in enumerate(steps):
        if not _is_plain_forward(relu, ReLUFunction):
            continue
        (pre_activation,) = relu.arg_slots
        linear_index = producer.get(pre_activation)
        if linear_index is None:
            continue
        linear = steps[linear_index]
        if not _is_plain_forward(linear, LinearFunction) or pre_activation in kept or readers[pre_activation] != 2:
            continue
        backwards = _fusable_backwards(steps, readers, backward_of, linear, relu)
        if backwards is None:
            continue
        fused[linear_index] = linear._replace(function=LinearReLUFunction, out_slots=relu.out_slots)
        fused[relu_index] = None
        if backwards:
            relu_backward_index, linear_backward_index = backwards
            linear_backward = steps[linear_backward_index]
            fused[linear_backward_index] = linear_backward._replace(
                function=LinearReLUFunction, grad_sources=steps[relu_backward_index].grad_sources)
            fused[relu_backward_index] = None
    return [step for step in fused if step is not None]


def _is_plain_forward(step, function) -> bool:
    """A forward of ``function`` with one output and no options."""
    return (type(step) is ForwardStep and step.function is function and len(step.out_slots) == 1
            and not step.options and not step.option_slots)


def _fusable_backwards(steps, readers, backward_of, linear, relu):
    """``()`` when neither op has a backward; ``(relu's, linear's)`` step indices when both
    have exactly one and the gradient between them goes from one to the other only; else None."""
    relu_backward_index = backward_of.get(relu.ctx_slot, "absent")
    linear_backward_index = backward_of.get(linear.ctx_slot, "absent")
    if relu_backward_index == "absent" and linear_backward_index == "absent":
        return ()
    if relu_backward_index in (None, "absent") or linear_backward_index in (None, "absent"):
        return None
    relu_backward, linear_backward = steps[relu_backward_index], steps[linear_backward_index]
    if len(relu_backward.deliveries) != 1 or type(relu_backward.grad_sources[0]) is not int:
        return None
    handed_on = relu_backward.deliveries[0]
    handed = handed_on.target
    if handed_on.fit is not None or type(handed) is not int or not handed_on.first:
        return None
    if linear_backward.grad_sources != (handed,) or readers[handed] != 2:
        return None
    return relu_backward_index, linear_backward_index
