"""The contract of stage ``acceleration`` (compile, CompiledStep, CompileError, the fused op
linear_relu), checked through the public API: a compiled training step gives bitwise the eager
step's losses, gradients and parameters, follows a change of batch shape and of the model's mode,
never skips the check of an integer input (declared valid range or not), and refuses a step whose
work depends on its data; linear_relu computes relu(x @ weight.T + bias) and its gradients."""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError, check_gradients, expect_close, expect_error
from .contract import Helper, Layer, Op


def _model():
    model = tt.nn.Sequential(tt.nn.Linear(4, 6, generator=0), tt.nn.ReLU(), tt.nn.Linear(6, 3, generator=1))
    return model, tt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _batch(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((n, 4)).astype(np.float32)), Tensor(rng.integers(0, 3, n))


def _train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = tt.nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _train(compiled: bool, sizes) -> tuple:
    """Steps on batches of ``sizes`` rows; returns losses, parameter bytes and gradient bytes."""
    model, optimizer = _model()
    step = tt.compile(_train_step) if compiled else _train_step
    losses = [step(model, optimizer, *_batch(n, seed)) for seed, n in enumerate(sizes)]
    params = [p.data.tobytes() for p in model.parameters()]
    grads = [p.grad.data.tobytes() for p in model.parameters()]
    return losses, params, grads


def _expect_same(what: str, sizes) -> None:
    eager, compiled = _train(False, sizes), _train(True, sizes)
    for name, a, b in zip(("losses", "parameters", "gradients"), eager, compiled):
        if a != b:
            raise ConformanceError(f"{what}: the compiled step's {name} differ from the eager step's")


def bitwise_equal_to_eager():
    _expect_same("12 steps on batches of 8", [8] * 12)


def follows_a_shape_change():
    _expect_same("batches of 8, then 5, then 8 again", [8] * 4 + [5] * 4 + [8] * 4)


def replays_without_running_the_step():
    """Later calls replay the recorded kernels: the step's Python body runs only while recording
    (a compile that ran every call eagerly would pass every other check, and speed nothing up)."""
    model, optimizer = _model()
    runs = []

    def counted(x, y):
        runs.append(1)
        return _train_step(model, optimizer, x, y)

    step = tt.compile(counted)
    for seed in range(8):
        step(*_batch(8, seed))
    if len(runs) > 3:
        raise ConformanceError(f"8 calls of a compiled step with one argument signature ran its Python body "
                               f"{len(runs)} times; after the recordings (two with verify=True), calls must replay")


def follows_a_model_change():
    model, optimizer = _model()
    step = tt.compile(_train_step)
    for seed in range(3):
        step(model, optimizer, *_batch(8, seed))
    model[0].extra = tt.nn.Linear(2, 2, generator=2)  # a new sub-module (unused): the step must still be right
    eager_model, eager_optimizer = _model()
    for seed in range(3):
        _train_step(eager_model, eager_optimizer, *_batch(8, seed))
    for seed in range(3, 6):
        a = step(model, optimizer, *_batch(8, seed))
        b = _train_step(eager_model, eager_optimizer, *_batch(8, seed))
        if a != b:
            raise ConformanceError(f"after adding a sub-module, a compiled step's loss is {a}, eager {b}")


def never_skips_an_integer_check():
    x, _ = _batch(5, 0)
    seen, unseen, invalid = (Tensor(np.array(v)) for v in ([0, 1, 0, 1, 0], [2, 1, 0, 2, 2], [0, 1, 3, 1, 0]))
    for options in ({}, {"integer_ranges": {"y": (0, 2)}}):
        model, optimizer = _model()
        eager_model, eager_optimizer = _model()
        step = tt.compile(_train_step, **options)
        for y in (seen, seen, seen, unseen, unseen):
            a, b = step(model, optimizer, x, y), _train_step(eager_model, eager_optimizer, x, y)
            if a != b:
                raise ConformanceError(f"compile({options}): with class targets {y.data.tolist()} the compiled "
                                       f"step's loss is {a}, eager {b}")
        expect_error(IndexError, lambda: step(model, optimizer, x, invalid),
                     f"compile({options}) after replays, a class index out of range (the check of an integer "
                     "input must run as in eager)")


def refuses_data_dependent_steps():
    model, optimizer = _model()

    def branchy(x, y):
        optimizer.zero_grad()
        logits = model(x)
        if x.sum().item() > 0:  # Python control flow on a value
            logits = logits * 2.0
        loss = tt.nn.CrossEntropyLoss()(logits, y)
        loss.backward()
        optimizer.step()
        return loss.item()

    step = tt.compile(branchy)
    x, y = _batch(8, 0)
    try:
        for sign in (1.0, -1.0, 1.0, -1.0):
            step(Tensor(np.abs(x.data) * sign), y)
    except tt.acceleration.CompileError:
        return
    raise ConformanceError("a step that takes a different branch on different data was compiled without an error")


def _away_from_the_kink(x_shape, out_features):
    """float64 x, weight, bias whose pre-activations keep at least 0.1 away from ReLU's kink
    (a central difference across it matches neither side's derivative); both signs occur."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, weight, bias = (rng.standard_normal(shape) for shape in (x_shape, (out_features, x_shape[-1]),
                                                                    (out_features,)))
        pre = x @ weight.T + bias
        if np.abs(pre).min() > 0.1 and (pre > 0).any() and (pre < 0).any():
            return x, weight, bias
    raise AssertionError("no seed below 100 gives pre-activations away from 0")  # not reached for these shapes


def linear_relu_forward():
    x, weight, bias = _away_from_the_kink((4, 3), 2)
    f32 = lambda a: Tensor(a.astype(np.float32))  # noqa: E731
    expect_close("linear_relu(x, weight, bias)", tt.ops.linear_relu(f32(x), f32(weight), f32(bias)),
                 np.maximum(x @ weight.T + bias, 0), rtol=1e-5, atol=1e-5)
    batched = np.random.default_rng(5).standard_normal((2, 4, 3))
    expect_close("linear_relu of a (2, 4, 3) input, no bias", tt.ops.linear_relu(f32(batched), f32(weight)),
                 np.maximum(batched @ weight.T, 0), rtol=1e-5, atol=1e-5)
    expect_error(ValueError, lambda: tt.ops.linear_relu(f32(np.ones((4, 5))), f32(weight)),
                 "linear_relu of 5 features by a (2, 3) weight")


def linear_relu_backward():
    x, weight, bias = _away_from_the_kink((4, 3), 2)
    check_gradients(lambda x, weight, bias: tt.ops.linear_relu(x, weight, bias),
                    {"x": x, "weight": weight, "bias": bias})


CHECKS = [
    Check("ops.linear_relu", "forward", linear_relu_forward),
    Check("ops.linear_relu", "backward", linear_relu_backward),
    Check("acceleration.compile", "contract", bitwise_equal_to_eager),
    Check("acceleration.compile", "contract", replays_without_running_the_step),
    Check("acceleration.compile", "contract", follows_a_shape_change),
    Check("acceleration.compile", "contract", follows_a_model_change),
    Check("acceleration.compile", "contract", never_skips_an_integer_check),
    Check("acceleration.CompileError", "contract", refuses_data_dependent_steps),
]

CONTRACT = [
    Op("linear_relu", "x, weight, bias=None", inputs=("x", "weight", "bias"),
       doc="""relu(x @ weight.T + bias) as one op (a fused kernel): x (..., in), weight (out, in), bias (out,)
    or None -> (..., out). ValueError when x's last axis is not in. Backward: grad * (out > 0), then the
    linear op's gradients of x, weight and bias. compile's replay runs it in place of a Linear-ReLU pair.""",
       sample="Sample(randn(rng, 4, 3), randn(rng, 2, 3), randn(rng, 2))"),
    Helper("acceleration", "compile", "train_step=None, *, verify=True, integer_ranges=None", """Return a
    CompiledStep of train_step(*args) (forward, loss, backward(), optimizer.step(), zero_grad()). Its calls
    give, bitwise, what eager calls give (losses, .grad, parameters); later calls of the same argument shapes
    replay the recorded kernels. A step whose work depends on its data raises CompileError. A replay skips
    the step's checks, so an integer input replays only within the values the recordings saw, or within
    integer_ranges[parameter name] = (low, high) when the step declares its valid range; any other value
    runs the step eagerly, whose checks raise as usual."""),
    Layer("CompiledStep", "train_step, verify=True, integer_ranges=None", namespace="acceleration", base="object",
          doc="""A training step that records itself on its first calls and replays afterwards.""",
          methods=("def __call__(self, *args)",)),
    Layer("CompileError", "", namespace="acceleration", base="RuntimeError",
          doc="""A step that cannot be compiled faithfully; the message says why.""", methods=()),
]
