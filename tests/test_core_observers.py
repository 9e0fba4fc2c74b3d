"""The observer seam: what Function.apply, the engine and Module.__call__ report, in order, to the
calling thread's observer; nothing reaches it outside ``observing``; a raising forward or module
still reports its end."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Module, Observer, Tensor, observing
from tinytorch_core.grad_mode import current_modes
from tinytorch_core.primitives.arithmetic import Exp, Mul


class Recorder(Observer):
    def __init__(self):
        self.calls = []

    def op_started(self, function, phase):
        self.calls.append(("start", function.__name__, phase))
        return len(self.calls)

    def forward_finished(self, token, ctx, inputs, options, outputs):
        shapes = None if outputs is None else outputs.shape
        self.calls.append(("forward done", token, type(ctx).__name__, len(inputs), dict(options), shapes))

    def backward_finished(self, token, node, output_grads, input_grads):
        self.calls.append(("backward done", token, type(node).__name__, [g is None for g in input_grads]))

    def module_started(self, module):
        self.calls.append(("module", type(module).__name__))
        return "m"

    def module_finished(self, token, output):
        self.calls.append(("module done", token, None if output is None else output.shape))

    def pass_started(self, name):
        self.calls.append(("pass", name))
        return "p"

    def pass_finished(self, token):
        self.calls.append(("pass done", token))


def test_forward_backward_and_the_pass_are_reported_in_order():
    a = Tensor(np.ones(3), requires_grad=True)
    recorder = Recorder()
    with observing(recorder):
        y = (a * 2.0).exp().sum(axis=0)
        y.backward()
    assert recorder.calls == [
        ("start", "Mul", "forward"), ("forward done", 1, "Mul", 2, {}, (3,)),
        ("start", "Exp", "forward"), ("forward done", 3, "Exp", 1, {}, (3,)),
        ("start", "Sum", "forward"), ("forward done", 5, "Sum", 1, {"axis": (0,), "keepdims": False}, ()),
        ("pass", "backward"),
        ("start", "Sum", "backward"), ("backward done", 8, "Sum", [False]),
        ("start", "Exp", "backward"), ("backward done", 10, "Exp", [False]),
        ("start", "Mul", "backward"), ("backward done", 12, "Mul", [False, True]),
        ("pass done", "p"),
    ]


def test_a_raising_forward_and_module_still_report_their_end():
    class Broken(Module):
        def forward(self, x):
            return x.mean()  # of zero elements: refused inside the forward

    recorder = Recorder()
    with observing(recorder), pytest.raises(ValueError):
        Broken()(Tensor(np.ones((0,))))
    assert recorder.calls == [("module", "Broken"), ("start", "Mean", "forward"),
                              ("forward done", 2, "Mean", 1, {"axis": None, "keepdims": False}, None),
                              ("module done", "m", None)]


def test_nothing_is_reported_outside_the_block_or_from_other_observers_threads():
    recorder = Recorder()
    with observing(recorder):
        assert current_modes().observer is recorder
        inner = Recorder()
        with observing(inner):
            Tensor(np.ones(2)) + 1.0
        assert current_modes().observer is recorder
    Tensor(np.ones(2)) + 1.0
    assert recorder.calls == [] and [c[0] for c in inner.calls] == ["start", "forward done"]
    assert current_modes().observer is None


def test_observing_wants_an_observer():
    with pytest.raises(TypeError, match="expects an Observer"):
        with observing(object()):
            pass


def test_ops_state_their_flops_with_the_function():
    from tinytorch_core.flops import OpCall

    assert Mul.flops(OpCall(inputs=((4, 5), (4, 5)), outputs=((4, 5),))) == 20
    assert Exp.flops(OpCall(inputs=((3,),), outputs=((3,),))) == 3
    assert tt.Function.flops is None  # an op without a formula states none
