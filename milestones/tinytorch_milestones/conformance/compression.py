"""The contract of stage ``compression`` (INT8 quantization, pruning, distillation), checked through
the public API. References are computed here: int64 products, NumPy formulas, sorted magnitudes."""

from __future__ import annotations

import numpy as np

import tinytorch_core as tt
from tinytorch_core import Tensor

from . import Check, ConformanceError, check_gradients, expect_close, expect_error, expect_learned, train
from .contract import Helper, Layer, Op

C = tt.compression


def _mlp(seed=0, sizes=(6, 10, 3)):
    rng = np.random.default_rng(seed)
    return tt.nn.Sequential(tt.nn.Linear(sizes[0], sizes[1], generator=rng), tt.nn.ReLU(),
                            tt.nn.Linear(sizes[1], sizes[2], generator=rng))


def _affine_reference(low, high):
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255
    return scale, int(np.clip(-128 - np.rint(low / scale), -128, 127))


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


# ---- observers ---------------------------------------------------------------------------------------------
def min_max_observer():
    observer = C.MinMaxObserver()
    observer(Tensor(np.array([-1.0, 2.0], np.float32)))
    observer(Tensor(np.array([-3.0, 1.0], np.float32)))
    scale, zero_point = observer.calculate_qparams()
    expected_scale, expected_zero = _affine_reference(-3.0, 2.0)
    expect_close("MinMaxObserver scale after [-1, 2], [-3, 1]", scale, expected_scale, rtol=1e-5)
    _expect(int(zero_point) == expected_zero, f"MinMaxObserver zero point {zero_point}, expected {expected_zero}")
    per_channel = C.MinMaxObserver(symmetric=True, axis=0)
    per_channel(Tensor(np.array([[1.0, -4.0], [0.5, 0.25]], np.float32)))
    scale, zero_point = per_channel.calculate_qparams()
    expect_close("per-channel symmetric scales (max |x| / 127 per row)", scale, [4.0 / 127, 0.5 / 127], rtol=1e-5)
    _expect(np.all(np.asarray(zero_point) == 0), f"symmetric zero points must be 0, got {zero_point}")
    expect_error(RuntimeError, lambda: C.MinMaxObserver().calculate_qparams(), "qparams before observing anything")


def moving_average_observer():
    observer = C.MovingAverageMinMaxObserver(averaging_constant=0.5)
    observer(Tensor(np.array([-1.0, 2.0], np.float32)))
    observer(Tensor(np.array([-3.0, 1.0], np.float32)))
    scale, zero_point = observer.calculate_qparams()
    expected_scale, expected_zero = _affine_reference(-2.0, 1.5)  # -1 + 0.5 (-3 + 1), 2 + 0.5 (1 - 2)
    expect_close("MovingAverageMinMaxObserver(0.5) scale", scale, expected_scale, rtol=1e-5)
    _expect(int(zero_point) == expected_zero, f"MovingAverageMinMaxObserver zero point {zero_point}, "
                                              f"expected {expected_zero}")


def percentile_observer():
    data = Tensor(np.concatenate([np.linspace(-1, 1, 999), [100.0]]).astype(np.float32))
    observer = C.PercentileObserver(percentile=99.0)
    observer(data)
    scale, _ = observer.calculate_qparams()
    _expect(scale < 2.5 / 255, f"PercentileObserver(99) scale {scale}: the outlier 100 should be clipped "
                               f"(min-max would give {101 / 255:.3f})")


# ---- integer arithmetic ------------------------------------------------------------------------------------
def quantize_dequantize():
    q = C.quantize_tensor(Tensor(np.array([-1.0, 0.0, 0.26, 100.0], np.float32)), 0.1, 3)
    codes = np.asarray(q.data if isinstance(q, Tensor) else q)
    _expect(codes.dtype == np.int8, f"quantize_tensor gives dtype {codes.dtype}, expected int8")
    _expect(codes.tolist() == [-7, 3, 6, 127], f"quantize_tensor codes {codes.tolist()}, expected [-7, 3, 6, 127]")
    back = C.dequantize_tensor(q, 0.1, 3)
    expect_close("dequantize_tensor", back, [-1.0, 0.0, 0.3, 12.4], rtol=1e-6)
    expect_error(TypeError, lambda: C.quantize_tensor(Tensor(np.array([1, 2])), 0.1, 0), "quantize_tensor of integers")


def int8_matmul_exact():
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, size=(8, 5000)).astype(np.int8)
    b = rng.integers(-128, 128, size=(5000, 6)).astype(np.int8)
    a[0], b[:, 0] = 127, 127
    a[0, 0] = 126  # the first dot product is 80,644,873: odd and past 2**24, so no float32 sum can hold it
    product = np.asarray(getattr(C.int8_matmul(a, b), "data", C.int8_matmul(a, b)))
    reference = a.astype(np.int64) @ b.astype(np.int64)
    _expect(product.dtype == np.int32, f"int8_matmul gives dtype {product.dtype}, expected int32")
    if not np.array_equal(product, reference):
        raise ConformanceError(f"int8_matmul is not exact: off by {np.abs(product - reference).max()} "
                               "(largest difference from the int64 product)")


# ---- fake quantization ---------------------------------------------------------------------------------------
def fake_quantize_forward():
    x = Tensor(np.array([-20.0, -0.26, 0.04, 0.51, 20.0]), dtype=np.float64)
    expect_close("fake_quantize(x, 0.1, 2)", tt.ops.fake_quantize(x, 0.1, 2), [-13.0, -0.3, 0.0, 0.5, 12.5])


def fake_quantize_backward():
    x = Tensor(np.array([-20.0, -0.26, 0.04, 0.51, 20.0]), requires_grad=True, dtype=np.float64)
    tt.ops.fake_quantize(x, 0.1, 2).sum().backward()
    expect_close("straight-through grad of x (1 inside the range, 0 where clamped)", x.grad, [0, 1, 1, 1, 0])
    codes = np.random.default_rng(1).integers(-100, 100, size=(3, 4))
    inside = Tensor((codes + 0.25) * 0.1, dtype=np.float64)  # a quarter step from every rounding boundary
    check_gradients(lambda scale: tt.ops.fake_quantize(inside, scale, 3), {"scale": np.array(0.1)})


def fake_quantize_layer():
    layer = C.FakeQuantize(C.MinMaxObserver())
    x = Tensor(np.linspace(-1.0, 3.0, 11).astype(np.float32))
    out = layer(x)
    scale, zero_point = _affine_reference(-1.0, 3.0)
    expected = (np.clip(np.rint(x.data / scale) + zero_point, -128, 127) - zero_point) * scale
    expect_close("FakeQuantize(MinMaxObserver()) in training mode", out, expected, rtol=1e-5, atol=1e-6)


# ---- quantize ------------------------------------------------------------------------------------------------
def quantize_model():
    model = _mlp(2, (20, 32, 5))
    x = np.random.default_rng(2).standard_normal((64, 20)).astype(np.float32)
    quantized = C.quantize(model, [Tensor(x)])
    with tt.no_grad():
        expected = model.eval()(Tensor(x)).data
    got = quantized(Tensor(x))
    expect_close("quantize(model) outputs vs the float model", got, expected, atol=0.05 * np.abs(expected).max(),
                 rtol=0)
    int8_bytes = sum(a.nbytes for a in quantized.state_dict().values() if a.dtype == np.int8)
    _expect(int8_bytes == 20 * 32 + 32 * 5, f"the quantized state dict holds {int8_bytes} int8 bytes; expected "
                                            f"the {20 * 32 + 32 * 5} weights as int8")
    _expect(model[0].weight.dtype == np.float32, "quantize changed the float model")


# ---- pruning -------------------------------------------------------------------------------------------------
def l1_unstructured():
    model = _mlp()
    pruned = C.prune_l1_unstructured(model, 0.3)
    weights = [m.weight.data for m in (model[0], model[2])]
    _expect(np.all(model[0].weight.data != 0), "prune_l1_unstructured changed the model it was given")
    for k, (w, p) in enumerate(zip(weights, (pruned[0], pruned[2]))):
        zeroed = p.weight.data == 0
        _expect(int(zeroed.sum()) == round(0.3 * w.size), f"layer {k}: {int(zeroed.sum())} zeros, expected "
                                                         f"{round(0.3 * w.size)}")
        _expect(np.abs(w[zeroed]).max() <= np.abs(w[~zeroed]).min(), f"layer {k}: not the smallest magnitudes zeroed")


def global_unstructured():
    model = _mlp()
    with tt.no_grad():
        model[2].weight.data[...] *= 0.01  # all small: a global threshold takes this layer first
    pruned = C.prune_global_unstructured(model, 0.5)
    expect_close("sparsity after 50 % global pruning", C.sparsity(pruned), 0.5)
    _expect(np.all(pruned[2].weight.data == 0), "global pruning must zero the layer of small weights first")
    optimizer = tt.optim.Adam(pruned.parameters(), lr=0.1)
    x, y = Tensor(np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)), Tensor(np.arange(16) % 3)
    zeros = pruned[0].weight.data == 0
    train(lambda: tt.ops.cross_entropy(pruned(x), y), optimizer, 3, every_parameter=False)  # a zeroed layer blocks the rest
    _expect(np.all(pruned[0].weight.data[zeros] == 0), "pruned weights moved after optimizer steps")


def remove_masks():
    pruned = C.prune_l1_unstructured(_mlp(), 0.5)
    plain = C.remove(pruned)
    _expect(type(plain[0]) is tt.nn.Linear and type(plain[2]) is tt.nn.Linear, "remove must give plain Linear layers back")
    x = Tensor(np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32))
    expect_close("remove(pruned) outputs vs the pruned model", plain(x), pruned(x).data)
    expect_close("sparsity after remove", C.sparsity(plain), 0.5)


def channels():
    model = _mlp()
    small = C.prune_channels(model, 0.5)
    shapes = [tuple(p.shape) for p in small.parameters()]
    _expect(shapes == [(5, 6), (5,), (3, 5), (3,)], f"prune_channels(mlp 6-10-3, 0.5) parameters {shapes}, "
                                                    "expected a dense 6-5-3 MLP")
    kept = np.sort(np.argsort(-np.linalg.norm(model[0].weight.data, axis=1))[:5])
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    hidden = np.maximum(x @ model[0].weight.data[kept].T + model[0].bias.data[kept], 0)
    expect_close("prune_channels output (the 5 largest-norm neurons kept)", small(Tensor(x)),
                 hidden @ model[2].weight.data[:, kept].T + model[2].bias.data, rtol=1e-5)


# ---- distillation and size -------------------------------------------------------------------------------------
def _distillation_reference(student, teacher, target, t, alpha):
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(log_softmax(teacher / t))
    kl = (p * (np.log(p) - log_softmax(student / t))).sum(axis=1).mean()
    return alpha * t * t * kl + (1 - alpha) * -log_softmax(student)[np.arange(len(target)), target].mean()


def distillation_forward():
    rng = np.random.default_rng(4)
    student, teacher, target = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    value = C.distillation_loss(Tensor(student, dtype=np.float64), Tensor(teacher, dtype=np.float64), target,
                                temperature=3.0, alpha=0.7)
    expect_close("distillation_loss (T=3, alpha=0.7)", value, _distillation_reference(student, teacher, target, 3.0, 0.7),
                 rtol=1e-9)


def distillation_backward():
    rng = np.random.default_rng(5)
    teacher, target = Tensor(rng.standard_normal((5, 4)), dtype=np.float64), np.array([0, 3, 1, 1, 2])
    check_gradients(lambda student: C.distillation_loss(student, teacher, target, temperature=2.0, alpha=0.5),
                    {"student": rng.standard_normal((5, 4))})


def sizes():
    size = C.model_size(tt.nn.Sequential(tt.nn.Linear(10, 4, generator=0)))
    _expect(size.total == 176 and dict(size.by_dtype) == {"float32": 176},
            f"model_size of Linear(10, 4): {size}, expected 176 bytes, all float32")


# ---- training: quantization-aware training learns through the straight-through estimator ---------------------
def qat_learns():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = tt.nn.Sequential(C.FakeQuantize(), tt.nn.Linear(4, 8, generator=rng), tt.nn.ReLU(), C.FakeQuantize(),
                             tt.nn.Linear(8, 2, generator=rng))
    optimizer = tt.optim.Adam(model.parameters(), lr=0.05)
    first, last = train(lambda: tt.ops.cross_entropy(model(Tensor(x)), Tensor(y)), optimizer, 60)
    accuracy = float((model.eval()(Tensor(x)).data.argmax(axis=1) == y).mean())
    expect_learned("a fake-quantized MLP", first, last, loss_ratio=0.3, accuracy=accuracy, min_accuracy=0.95)


CHECKS = [
    Check("compression.MinMaxObserver", "contract", min_max_observer),
    Check("compression.MovingAverageMinMaxObserver", "forward", moving_average_observer),
    Check("compression.PercentileObserver", "forward", percentile_observer),
    Check("compression.quantize_tensor, compression.dequantize_tensor", "forward", quantize_dequantize),
    Check("compression.int8_matmul", "forward", int8_matmul_exact),
    Check("ops.fake_quantize", "forward", fake_quantize_forward),
    Check("ops.fake_quantize", "backward", fake_quantize_backward),
    Check("compression.FakeQuantize", "forward", fake_quantize_layer),
    Check("compression.quantize", "contract", quantize_model),
    Check("compression.prune_l1_unstructured", "contract", l1_unstructured),
    Check("compression.prune_global_unstructured, compression.sparsity", "contract", global_unstructured),
    Check("compression.remove", "contract", remove_masks),
    Check("compression.prune_channels", "forward", channels),
    Check("compression.distillation_loss", "forward", distillation_forward),
    Check("compression.distillation_loss", "backward", distillation_backward),
    Check("compression.model_size", "contract", sizes),
    Check("compression", "training", qat_learns),
]

_OBSERVED = ("def forward(self, x)", "def calculate_qparams(self)")
_QPARAMS = """forward(x) records x's range and returns x; calculate_qparams() -> (scale, zero_point) of
    int8: affine (symmetric=False) maps [min(low, 0), max(high, 0)] onto -128..127, scale = width / 255,
    zero_point = -128 - round(low / scale); symmetric: scale = max|x| / 127, zero point 0, codes -127..127.
    axis=None: per tensor (Python float, int); axis=k: one per index of axis k (1-D arrays).
    RuntimeError before anything was observed."""

CONTRACT = [
    Op("fake_quantize", "x, scale, zero_point=0, quant_min=-128, quant_max=127, axis=None", inputs=("x", "scale"),
       doc="""scale * (clamp(round(x / scale) + zero_point, quant_min, quant_max) - zero_point), in x's dtype.
    Backward: x gets the straight-through gradient (passed where round(x / scale) + zero_point is inside
    [quant_min, quant_max], 0 where clamped); scale gets its true derivative q - zero_point (q the clamped code),
    summed to scale's shape (per channel along axis).""",
       sample="Sample(np.array([[-30.0, 40.0], [25.0, -50.0]]), np.array(0.1), 0)"),
    Layer("MinMaxObserver", "symmetric=False, axis=None", namespace="compression", methods=_OBSERVED,
          doc="The range is the min and max of everything observed. " + _QPARAMS),
    Layer("MovingAverageMinMaxObserver", "averaging_constant=0.01, symmetric=False, axis=None",
          namespace="compression", methods=_OBSERVED,
          doc="""The first batch sets the range; then low += c (batch_min - low), high likewise. """ + _QPARAMS),
    Layer("PercentileObserver", "percentile=99.99, symmetric=False, axis=None", namespace="compression",
          methods=_OBSERVED, doc="""The range is the running mean over batches of each batch's
    (100 - percentile)-th and percentile-th percentiles: outliers are clipped. """ + _QPARAMS),
    Layer("FakeQuantize", "observer=None", namespace="compression",
          doc="""forward(x): in training mode observe x (default observer: MovingAverageMinMaxObserver()), then
    fake_quantize(x, scale, zero_point) with the observer's qparams and range (-127..127 if symmetric);
    in eval mode the last qparams, without observing."""),
    Helper("compression", "quantize_tensor", "x, scale, zero_point=0, axis=None, symmetric=False",
           """int8 Tensor clamp(round(x / scale) + zero_point) (-127..127 if symmetric); TypeError for non-float x."""),
    Helper("compression", "dequantize_tensor", "q, scale, zero_point=0, axis=None",
           """float32 Tensor scale * (q - zero_point) of an int8 q."""),
    Helper("compression", "int8_matmul", "a, b",
           """The exact int32 product of int8 matrices (M, K) @ (K, N), for any K (float32 BLAS in exact blocks)."""),
    Helper("compression", "quantize", "model, calibration_loader, activation_observer=None, weight_observer=None, "
           "num_batches=None",
           """An int8 copy of a float Sequential: calibrate activations on the loader's batches, int8 weights
    (per channel), int8 x int8 -> int32 layers requantizing between layers; float input, float output."""),
    Helper("compression", "prune_l1_unstructured", "model, amount",
           """A copy of model whose every Linear/Conv2d has its round(amount * size) smallest |w| zeroed,
    kept zero through optimizer steps (the model given is unchanged)."""),
    Helper("compression", "prune_global_unstructured", "model, amount",
           """Like prune_l1_unstructured, one magnitude threshold over all the layers together."""),
    Helper("compression", "prune_channels", "model, amount",
           """A smaller dense Sequential: every Linear/Conv2d but the last keeps its ceil((1 - amount) * out)
    largest-L2-norm output channels (in order), the next layer the matching inputs."""),
    Helper("compression", "sparsity", "model, by_layer=False",
           """Fraction of zero weights over the Linear/Conv2d layers (by_layer: a dict by layer name)."""),
    Helper("compression", "remove", "model",
           """A copy of a pruned model with plain layers, the masks baked into the weights."""),
    Helper("compression", "distillation_loss", "student_logits, teacher_logits, target, temperature=4.0, alpha=0.9",
           """alpha T**2 KL(softmax(teacher / T) || softmax(student / T)) (batch mean) + (1 - alpha) cross_entropy(student,
    target); no gradient to the teacher."""),
    Helper("compression", "model_size", "model",
           """An object with total (bytes of the state dict) and by_dtype ({"float32": bytes, "int8": ...})."""),
]
