"""The contract of stage ``nn`` (layers, activations, losses, optimizers, data, init, saving),
checked through the public API against formulas written here."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError, check_gradients, expect_close, expect_error, expect_learned, train
from .contract import Helper, Layer, Op


def _data(shape, seed=0, away_from_zero=False):
    values = np.random.default_rng(seed).standard_normal(shape)
    if away_from_zero:  # kinks (relu at 0) make finite differences meaningless there
        values = np.where(np.abs(values) < 0.1, values + 0.3, values)
    return values


def _f32(array):
    return Tensor(np.asarray(array, dtype=np.float32))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _erf(x):
    return np.vectorize(math.erf)(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


#: elementwise and row-wise ops: (name, keyword arguments, reference)
ACTIVATIONS = [
    ("relu", {}, lambda x: np.maximum(x, 0.0)),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x)),
    ("sigmoid", {}, _sigmoid),
    ("tanh", {}, np.tanh),
    ("gelu", {}, lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))),
    ("softmax", {"axis": -1}, _softmax),
    ("log_softmax", {"axis": -1}, lambda x: np.log(_softmax(x))),
]


def _activation_forward(name, kwargs, reference):
    def check():
        x = _data((3, 5), 1)
        expect_close(f"{name}(x)", getattr(tt.ops, name)(_f32(x), **kwargs), reference(x), rtol=1e-4, atol=1e-5)
    return check


def _activation_backward(name, kwargs):
    def check():
        check_gradients(lambda x: getattr(tt.ops, name)(x, **kwargs), {"x": _data((3, 5), 2, away_from_zero=True)})
    return check


# ---- linear, dropout ----------------------------------------------------------------------------------------
def linear_forward():
    x, w, b = _data((4, 3)), _data((2, 3), 1), _data(2, 2)
    expect_close("linear(x, weight, bias)", tt.ops.linear(_f32(x), _f32(w), _f32(b)), x @ w.T + b, rtol=1e-5, atol=1e-5)
    expect_close("linear of a (2, 4, 3) input", tt.ops.linear(_f32(_data((2, 4, 3))), _f32(w)),
                 _data((2, 4, 3)) @ w.T, rtol=1e-5, atol=1e-5)
    expect_error(ValueError, lambda: tt.ops.linear(_f32(_data((4, 5))), _f32(w)), "linear of 5 features by a (2, 3) weight")


def linear_backward():
    check_gradients(lambda x, weight, bias: tt.ops.linear(x, weight, bias),
                    {"x": _data((4, 3)), "weight": _data((2, 3), 1), "bias": _data(2, 2)})


def dropout_contract():
    x = _f32(np.ones((200, 50)))
    expect_close("dropout(p=0)", tt.ops.dropout(x, p=0.0), np.ones((200, 50)))
    expect_close("dropout(training=False)", tt.ops.dropout(x, p=0.5, training=False), np.ones((200, 50)))
    expect_close("dropout(p=1)", tt.ops.dropout(x, p=1.0), np.zeros((200, 50)))
    out = tt.ops.dropout(x, p=0.25, generator=0).data
    kept = out != 0
    expect_close("kept entries of dropout(p=0.25), scaled by 1 / (1 - p)", out[kept], np.full(kept.sum(), 1 / 0.75))
    if not 0.70 < kept.mean() < 0.80:
        raise ConformanceError(f"dropout(p=0.25) kept {kept.mean():.0%} of the entries, expected about 75 %")
    expect_error(ValueError, lambda: tt.ops.dropout(x, p=1.5), "dropout(p=1.5)")


# ---- losses ---------------------------------------------------------------------------------------------
def _bce(p, t):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def losses_forward():
    x, t = _data((4, 3)), _data((4, 3), 1)
    for reduction, reduce in (("mean", np.mean), ("sum", np.sum), ("none", lambda a: a)):
        expect_close(f"mse_loss(reduction={reduction!r})", tt.ops.mse_loss(_f32(x), _f32(t), reduction=reduction),
                     reduce((x - t) ** 2), rtol=1e-5, atol=1e-5)
    p, labels = _sigmoid(x), (t > 0).astype(float)
    expect_close("binary_cross_entropy", tt.ops.binary_cross_entropy(_f32(p), _f32(labels)), _bce(p, labels).mean(),
                 rtol=1e-4, atol=1e-5)
    expect_close("binary_cross_entropy_with_logits", tt.ops.binary_cross_entropy_with_logits(_f32(x), _f32(labels)),
                 _bce(p, labels).mean(), rtol=1e-4, atol=1e-5)
    classes = np.array([0, 2, 1, 2])
    log_p = np.log(_softmax(x))
    expect_close("cross_entropy(logits, classes)", tt.ops.cross_entropy(_f32(x), Tensor(classes)),
                 -log_p[np.arange(4), classes].mean(), rtol=1e-4, atol=1e-5)
    expect_close("nll_loss(log_probabilities, classes)", tt.ops.nll_loss(_f32(log_p), Tensor(classes)),
                 -log_p[np.arange(4), classes].mean(), rtol=1e-4, atol=1e-5)
    expect_close("sigmoid_binary_cross_entropy(logits, targets)",
                 tt.ops.sigmoid_binary_cross_entropy(_f32(x), _f32(labels)), _bce(p, labels).mean(), rtol=1e-4, atol=1e-5)
    expect_error(ValueError, lambda: tt.ops.mse_loss(_f32(x), _f32(t[:, :2])), "mse_loss of different shapes")
    expect_error(TypeError, lambda: tt.ops.cross_entropy(_f32(x), _f32(classes)), "cross_entropy with float classes")
    expect_error(IndexError, lambda: tt.ops.cross_entropy(_f32(x), Tensor(np.array([0, 3, 1, 2]))),
                 "cross_entropy with class 3 of 3")


def losses_backward():
    x, t = _data((4, 3), 3), _data((4, 3), 4)
    labels = (t > 0).astype(float)
    classes = np.array([0, 2, 1, 2])
    check_gradients(lambda input: tt.ops.mse_loss(input, Tensor(t)), {"input": x})
    check_gradients(lambda input: tt.ops.binary_cross_entropy(input, Tensor(labels)), {"input": _sigmoid(x)})
    check_gradients(lambda input: tt.ops.binary_cross_entropy_with_logits(input, Tensor(labels)), {"input": x})
    check_gradients(lambda input: tt.ops.cross_entropy(input, Tensor(classes)), {"input": x})
    check_gradients(lambda input: tt.ops.nll_loss(input, Tensor(classes)), {"input": np.log(_softmax(x))})


# ---- layers ---------------------------------------------------------------------------------------------
def linear_layer():
    layer = tt.nn.Linear(3, 2)
    shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    if shapes != {"weight": (2, 3), "bias": (2,)}:
        raise ConformanceError(f"Linear(3, 2) has parameters {shapes}, expected weight (2, 3) and bias (2,)")
    bound = 1 / math.sqrt(3)
    if np.abs(layer.weight.data).max() > bound:
        raise ConformanceError(f"Linear(3, 2) weights must start in U(-1/sqrt(3), 1/sqrt(3)), got up to "
                               f"{np.abs(layer.weight.data).max():.3f}")
    x = _data((4, 3))
    expect_close("Linear forward", layer(_f32(x)), x @ layer.weight.data.T + layer.bias.data, rtol=1e-5, atol=1e-5)


def activation_layers():
    x = _data((3, 5), 5)
    for layer, name, kwargs in ((tt.nn.ReLU(), "relu", {}), (tt.nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}),
                                (tt.nn.Sigmoid(), "sigmoid", {}), (tt.nn.Tanh(), "tanh", {}), (tt.nn.GELU(), "gelu", {}),
                                (tt.nn.Softmax(axis=-1), "softmax", {"axis": -1}),
                                (tt.nn.LogSoftmax(axis=-1), "log_softmax", {"axis": -1})):
        reference = dict((n, r) for n, _, r in ACTIVATIONS)[name]
        expect_close(f"{type(layer).__name__} forward", layer(_f32(x)), reference(x), rtol=1e-4, atol=1e-5)


def container_layers():
    first, second = tt.nn.Linear(3, 4), tt.nn.Linear(4, 2)
    model = tt.nn.Sequential(first, tt.nn.ReLU(), tt.nn.Identity(), second)
    if len(list(model.parameters())) != 4:
        raise ConformanceError("Sequential(Linear, ReLU, Identity, Linear) must list the 4 parameters of its layers")
    x = _data((5, 3))
    hidden = np.maximum(x @ first.weight.data.T + first.bias.data, 0)
    expect_close("Sequential forward", model(_f32(x)), hidden @ second.weight.data.T + second.bias.data,
                 rtol=1e-5, atol=1e-5)
    dropout = tt.nn.Dropout(0.5)
    dropout.eval()
    expect_close("Dropout in evaluation mode", dropout(_f32(x)), x, atol=1e-6)


def loss_layers():
    x, classes = _data((4, 3)), np.array([0, 2, 1, 2])
    t = _data((4, 3), 1)
    labels = (t > 0).astype(float)
    pairs = (
        (tt.nn.MSELoss(), tt.ops.mse_loss, x, t),
        (tt.nn.BCELoss(), tt.ops.binary_cross_entropy, _sigmoid(x), labels),
        (tt.nn.BCEWithLogitsLoss(), tt.ops.binary_cross_entropy_with_logits, x, labels),
    )
    for layer, op, a, b in pairs:
        expect_close(f"{type(layer).__name__} forward", layer(_f32(a), _f32(b)), op(_f32(a), _f32(b)).data)
    expect_close("CrossEntropyLoss forward", tt.nn.CrossEntropyLoss()(_f32(x), Tensor(classes)),
                 tt.ops.cross_entropy(_f32(x), Tensor(classes)).data)
    expect_close("NLLLoss forward", tt.nn.NLLLoss()(_f32(x), Tensor(classes)), tt.ops.nll_loss(_f32(x), Tensor(classes)).data)


# ---- optimizers, schedules, clipping -------------------------------------------------------------------------
def _one_parameter(value, grad):
    p = tt.Parameter(np.array(value, dtype=np.float64), dtype=np.float64)
    p.grad = Tensor(np.array(grad, dtype=np.float64), dtype=np.float64)
    return p


def optimizers():
    p = _one_parameter([1.0, -2.0], [0.5, 0.25])
    sgd = tt.optim.SGD([p], lr=0.1, momentum=0.9)
    sgd.step()
    sgd.step()  # same gradient twice: velocity g, then 0.9 g + g
    expect_close("SGD(lr=0.1, momentum=0.9) after two steps", p, np.array([1.0, -2.0]) - 0.1 * 2.9 * np.array([0.5, 0.25]))
    p = _one_parameter([1.0, -2.0], [0.5, 0.25])
    adam = tt.optim.Adam([p], lr=0.1)
    adam.step()  # the first Adam step moves each entry by lr * sign(g) (bias-corrected m / sqrt(v))
    expect_close("Adam(lr=0.1) after one step", p, np.array([0.9, -2.1]), rtol=1e-6, atol=1e-6)
    p = _one_parameter([1.0, -2.0], [0.0, 0.0])
    adamw = tt.optim.AdamW([p], lr=0.1, weight_decay=0.5)
    adamw.step()  # decoupled decay: p - lr * wd * p, with no gradient
    expect_close("AdamW(lr=0.1, weight_decay=0.5) with zero gradient", p, np.array([1.0, -2.0]) * (1 - 0.05),
                 rtol=1e-6, atol=1e-6)


def adaptive_optimizers():
    p = _one_parameter([1.0, -2.0], [0.5, 0.25])
    rmsprop = tt.optim.RMSprop([p], lr=0.01)
    rmsprop.step()  # square_avg = (1 - alpha) g^2: the first step is lr g / sqrt(0.01 g^2) = 10 lr sign(g)
    expect_close("RMSprop(lr=0.01) after one step", p, np.array([0.9, -2.1]), rtol=1e-6, atol=1e-6)
    p = _one_parameter([1.0, -2.0], [0.5, 0.25])
    adagrad = tt.optim.Adagrad([p], lr=0.1)
    adagrad.step()
    adagrad.step()  # same gradient twice: sum = g^2, then 2 g^2; steps lr sign(g), then lr sign(g) / sqrt(2)
    expect_close("Adagrad(lr=0.1) after two steps", p, np.array([1.0, -2.0]) - 0.1 * (1 + 1 / math.sqrt(2)),
                 rtol=1e-6, atol=1e-6)


def schedules():
    p = _one_parameter([1.0], [0.0])
    for make, formula in (
        (lambda o: tt.optim.StepLR(o, step_size=2, gamma=0.5), lambda e: 0.8 * 0.5 ** (e // 2)),
        (lambda o: tt.optim.MultiStepLR(o, milestones=[1, 3], gamma=0.5), lambda e: 0.8 * 0.5 ** ((e >= 1) + (e >= 3))),
        (lambda o: tt.optim.ExponentialLR(o, gamma=0.9), lambda e: 0.8 * 0.9**e),
        (lambda o: tt.optim.CosineAnnealingLR(o, T_max=4), lambda e: 0.8 * (1 + math.cos(math.pi * e / 4)) / 2),
        (lambda o: tt.optim.LinearWarmup(o, warmup_steps=4), lambda e: 0.8 * min(1.0, (e + 1) / 4)),
    ):
        optimizer = tt.optim.SGD([p], lr=0.8)
        scheduler = make(optimizer)
        seen = []
        for _ in range(5):
            seen.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
        expect_close(f"learning rates of {type(scheduler).__name__} over 5 epochs", seen, [formula(e) for e in range(5)])


def clipping():
    a, b = _one_parameter([0.0, 0.0], [3.0, 0.0]), _one_parameter([0.0], [4.0])
    total = tt.optim.clip_grad_norm_([a, b], max_norm=1.0)
    if abs(total - 5.0) > 1e-6:
        raise ConformanceError(f"clip_grad_norm_ returned {total}, expected the norm before clipping, 5.0")
    expect_close("gradients after clip_grad_norm_(max_norm=1)", np.concatenate([a.grad.data, b.grad.data]),
                 np.array([0.6, 0.0, 0.8]), rtol=1e-5, atol=1e-6)
    c = _one_parameter([0.0, 0.0, 0.0], [3.0, -0.5, -4.0])
    tt.optim.clip_grad_value_([c], clip_value=1.0)
    expect_close("gradients after clip_grad_value_(clip_value=1)", c.grad.data, np.array([1.0, -0.5, -1.0]))


# ---- data, init, saving ----------------------------------------------------------------------------------------
def data_loading():
    x, y = np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5)
    dataset = tt.data.TensorDataset(Tensor(x), Tensor(y))
    if len(dataset) != 5:
        raise ConformanceError(f"TensorDataset of 5 rows has length {len(dataset)}")
    batches = list(tt.data.DataLoader(dataset, batch_size=2))
    sizes = [len(b[1].data) for b in batches]
    if sizes != [2, 2, 1]:
        raise ConformanceError(f"DataLoader(batch_size=2) of 5 rows gave batches of {sizes}, expected [2, 2, 1]")
    expect_close("the first batch", batches[0][0], x[:2])
    if [len(b[1].data) for b in tt.data.DataLoader(dataset, batch_size=2, drop_last=True)] != [2, 2]:
        raise ConformanceError("DataLoader(drop_last=True) must drop the incomplete last batch")
    seen = np.concatenate([b[1].data for b in tt.data.DataLoader(dataset, batch_size=2, shuffle=True, generator=0)])
    if sorted(seen.tolist()) != list(range(5)):
        raise ConformanceError(f"DataLoader(shuffle=True) must visit every row once per epoch, got {seen.tolist()}")
    chosen = [b[1].data.tolist() for b in tt.data.DataLoader(dataset, batch_size=2, sampler=[4, 0, 2])]
    if chosen != [[4, 0], [2]]:
        raise ConformanceError(f"DataLoader(batch_size=2, sampler=[4, 0, 2]) gave rows {chosen}, expected [[4, 0], [2]]")


def initialisers():
    w = Tensor(np.zeros((200, 300), np.float32))
    bound = math.sqrt(6.0 / (200 + 300))
    tt.init.xavier_uniform_(w, generator=0)
    if np.abs(w.data).max() > bound * 1.0001 or np.abs(w.data).max() < 0.9 * bound:
        raise ConformanceError(f"xavier_uniform_ of (200, 300) must fill U(-{bound:.4f}, {bound:.4f})")
    for name, expected_std in (("xavier_normal_", math.sqrt(2.0 / 500)), ("kaiming_normal_", math.sqrt(2.0 / 300))):
        getattr(tt.init, name)(w, generator=0)
        if abs(w.data.std() - expected_std) > 0.05 * expected_std:
            raise ConformanceError(f"{name} of (200, 300) has std {w.data.std():.4f}, expected {expected_std:.4f}")
    tt.init.kaiming_uniform_(w, generator=0)
    if np.abs(w.data).max() > math.sqrt(6.0 / 300) * 1.0001:
        raise ConformanceError("kaiming_uniform_ of (200, 300) must stay within sqrt(6 / fan_in)")
    tt.init.ones_(w)
    if not np.all(w.data == 1.0):
        raise ConformanceError("ones_ must fill the tensor with ones")
    tt.init.zeros_(w)
    if np.any(w.data != 0.0):
        raise ConformanceError("zeros_ must fill the tensor with zeros")


def saving():
    model = tt.nn.Linear(3, 2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        tt.io.save(model.state_dict(), path)
        state = tt.io.load(path)
    if sorted(state) != ["bias", "weight"]:
        raise ConformanceError(f"io.load(io.save(state)) gave keys {sorted(state)}")
    expect_close("the loaded weight", np.asarray(state["weight"]), model.weight.data)


# ---- training: an MLP learns XOR ------------------------------------------------------------------------
def xor_learns():
    x = Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32))
    y = Tensor(np.array([[0], [1], [1], [0]], np.float32))
    model = tt.nn.Sequential(tt.nn.Linear(2, 8, generator=0), tt.nn.Tanh(), tt.nn.Linear(8, 1, generator=1))
    optimizer = tt.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = tt.nn.BCEWithLogitsLoss()
    first, last = train(lambda: loss_fn(model(x), y), optimizer, 300)
    accuracy = float(((model(x).data > 0) == (y.data > 0.5)).mean())
    expect_learned("an MLP on XOR", first, last, loss_ratio=0.2, accuracy=accuracy, min_accuracy=1.0)


CHECKS = [
    Check("ops.linear", "forward", linear_forward),
    Check("ops.linear", "backward", linear_backward),
    *[Check(f"ops.{name}", "forward", _activation_forward(name, kwargs, ref)) for name, kwargs, ref in ACTIVATIONS],
    *[Check(f"ops.{name}", "backward", _activation_backward(name, kwargs)) for name, kwargs, _ in ACTIVATIONS],
    Check("ops.dropout", "contract", dropout_contract),
    Check("ops: the losses", "forward", losses_forward),
    Check("ops: the losses", "backward", losses_backward),
    Check("nn.Linear", "contract", linear_layer),
    Check("nn: the activation layers", "forward", activation_layers),
    Check("nn.Sequential, nn.Identity, nn.Dropout", "contract", container_layers),
    Check("nn: the loss layers", "forward", loss_layers),
    Check("optim.SGD, optim.Adam, optim.AdamW", "contract", optimizers),
    Check("optim.RMSprop, optim.Adagrad", "contract", adaptive_optimizers),
    Check("optim: the schedules", "contract", schedules),
    Check("optim.clip_grad_norm_, optim.clip_grad_value_", "contract", clipping),
    Check("data.TensorDataset, data.DataLoader", "contract", data_loading),
    Check("init", "contract", initialisers),
    Check("io.save, io.load", "contract", saving),
    Check("nn", "training", xor_learns),
]


def _loss(name, doc):
    return Op(name, "input, target, reduction='mean'", inputs=("input",), doc=doc,
              sample="Sample(randn(rng, 4, 3), rng.random((4, 3)))")


CONTRACT = [
    Op("linear", "x, weight, bias=None", inputs=("x", "weight", "bias"),
       doc="""x @ weight.T + bias: x (..., in), weight (out, in), bias (out,) or None -> (..., out).
    ValueError when x's last axis is not in. Backward: the gradients of x, weight and bias.""",
       sample="Sample(randn(rng, 4, 3), randn(rng, 2, 3), randn(rng, 2))"),
    *[Op(name, "x" + "".join(f", {k}={v!r}" for k, v in ({"negative_slope": 0.01} if name == "leaky_relu" else
                                                         {"axis": -1} if "softmax" in name else
                                                         {"approximate": "none"} if name == "gelu" else {}).items()),
         inputs=("x",), doc=f"""The {name} of x, elementwise (softmaxes along ``axis``); float input only
    (TypeError for integers). Backward: its derivative times the incoming gradient.""",
         sample="Sample(randn(rng, 3, 4))") for name, _, _ in ACTIVATIONS],
    Op("dropout", "x, p=0.5, training=True, generator=None", inputs=("x",),
       doc="""Zero each entry with probability p and scale the others by 1 / (1 - p); the identity when
    training is False or p is 0. ValueError for p outside [0, 1].""",
       sample="Sample(randn(rng, 3, 4), 0.0)"),
    _loss("mse_loss", """mean (or sum, or none) of (input - target)**2; ValueError for different shapes."""),
    _loss("binary_cross_entropy", """-(t log p + (1 - t) log(1 - p)), reduced; input p and target t in [0, 1]."""),
    _loss("binary_cross_entropy_with_logits", """binary cross-entropy of sigmoid(input), computed stably from the
    logits."""),
    _loss("sigmoid_binary_cross_entropy", """binary cross-entropy of sigmoid(input) from the logits (the fused
    node the BCE of a sigmoid's output becomes)."""),
    Op("cross_entropy", "logits, target, ignore_index=-100, label_smoothing=0.0, reduction='mean'", inputs=("logits",),
       doc="""-log softmax(logits)[target] per row, reduced: logits (N, C), target (N,) integer classes
    (TypeError for floats, IndexError out of range).""",
       sample="Sample(randn(rng, 4, 3), np.array([0, 2, 1, 2]))"),
    Op("nll_loss", "input, target, ignore_index=-100, reduction='mean'", inputs=("input",),
       doc="""-input[row, target] per row, reduced: input holds log-probabilities (N, C).""",
       sample="Sample(randn(rng, 4, 3), np.array([0, 2, 1, 2]))"),
    Layer("Linear", "in_features, out_features, bias=True, generator=None",
          doc="""Parameters weight (out, in) and bias (out,), U(-1/sqrt(in), 1/sqrt(in)) at start;
    forward(x) = linear(x, weight, bias)."""),
    Layer("Sequential", "*modules", doc="""Applies its modules in order; lists their parameters."""),
    Layer("Identity", "", doc="""forward(x) = x."""),
    Layer("Dropout", "p=0.5, generator=None", doc="""dropout(x, p) while training, the identity after eval()."""),
    *[Layer(cls, signature, doc=f"""forward(x) = {op}(x{args}).""") for cls, signature, op, args in (
        ("ReLU", "", "relu", ""), ("LeakyReLU", "negative_slope=0.01", "leaky_relu", ", negative_slope"),
        ("Sigmoid", "", "sigmoid", ""), ("Tanh", "", "tanh", ""), ("GELU", "approximate='none'", "gelu", ", approximate"),
        ("Softmax", "axis=-1", "softmax", ", axis"), ("LogSoftmax", "axis=-1", "log_softmax", ", axis"))],
    *[Layer(cls, "reduction='mean'", doc=f"""forward(input, target) = {op}(input, target, reduction).""",
            methods=("def forward(self, input, target)",)) for cls, op in (
        ("MSELoss", "mse_loss"), ("BCELoss", "binary_cross_entropy"),
        ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"), ("CrossEntropyLoss", "cross_entropy"),
        ("NLLLoss", "nll_loss"))],
    *[Layer(cls, signature, namespace="optim", base="object", doc=doc,
            methods=("def step(self)", "def zero_grad(self)")) for cls, signature, doc in (
        ("SGD", "params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False",
         """Stochastic gradient descent: v = momentum v + g; p -= lr v (v = g without momentum)."""),
        ("Adam", "params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0",
         """Adam with bias correction: p -= lr m_hat / (sqrt(v_hat) + eps)."""),
        ("AdamW", "params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2",
         """Adam with decoupled weight decay: p -= lr weight_decay p before the Adam step."""),
        ("RMSprop", "params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False",
         """sq = alpha sq + (1 - alpha) g**2; p -= lr g / (sqrt(sq) + eps) (state starts at zero)."""),
        ("Adagrad", "params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10",
         """s = s + g**2 (s starts at initial_accumulator_value); p -= lr g / (sqrt(s) + eps)."""))],
    *[Layer(cls, signature, namespace="optim", base="object", doc=doc, methods=("def step(self)",)) for cls, signature, doc in (
        ("StepLR", "optimizer, step_size, gamma=0.1", """lr = base_lr gamma**(epoch // step_size)."""),
        ("MultiStepLR", "optimizer, milestones, gamma=0.1",
         """lr = base_lr gamma**(number of milestones <= epoch)."""),
        ("ExponentialLR", "optimizer, gamma", """lr = base_lr gamma**epoch."""),
        ("CosineAnnealingLR", "optimizer, T_max, eta_min=0.0",
         """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2."""),
        ("LinearWarmup", "optimizer, warmup_steps", """lr = base_lr min(1, (epoch + 1) / warmup_steps)."""))],
    Helper("optim", "clip_grad_norm_", "parameters, max_norm, norm_type=2.0",
           """Scale the gradients in place so their joint norm is at most max_norm; return the norm before."""),
    Helper("optim", "clip_grad_value_", "parameters, clip_value",
           """Clamp every gradient into [-clip_value, clip_value], in place."""),
    Layer("Dataset", "", namespace="data", base="object", doc="""The protocol: __len__ and __getitem__.""",
          methods=("def __len__(self)", "def __getitem__(self, index)")),
    Layer("TensorDataset", "*tensors", namespace="data", base="object",
          doc="""Rows of equally long tensors: item i is (t[i] for t in tensors).""",
          methods=("def __len__(self)", "def __getitem__(self, index)")),
    Layer("DataLoader", "dataset, batch_size=1, shuffle=False, drop_last=False, generator=None, sampler=None",
          namespace="data", base="object", doc="""Batches of batch_size rows, in order or shuffled per epoch; drop_last
    drops a short last batch; a sampler (an iterable of indices with a length) chooses the rows and their order.""",
          methods=("def __len__(self)", "def __iter__(self)")),
    *[Helper("init", name, signature, doc) for name, signature, doc in (
        ("xavier_uniform_", "tensor, gain=1.0, generator=None", """Fill with U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))."""),
        ("xavier_normal_", "tensor, gain=1.0, generator=None", """Fill with N(0, gain**2 2 / (fan_in + fan_out))."""),
        ("kaiming_uniform_", "tensor, a=0.0, mode='fan_in', nonlinearity='leaky_relu', generator=None",
         """Fill with U(-b, b), b = gain sqrt(3 / fan)."""),
        ("kaiming_normal_", "tensor, a=0.0, mode='fan_in', nonlinearity='leaky_relu', generator=None",
         """Fill with N(0, gain**2 / fan)."""),
        ("zeros_", "tensor, generator=None", """Fill with zeros."""),
        ("ones_", "tensor, generator=None", """Fill with ones."""))],
    Helper("io", "save", "state, path", """Save a state dict (name -> array) to path; never pickles."""),
    Helper("io", "load", "path", """Load a state dict saved by save; refuse anything else."""),
]
