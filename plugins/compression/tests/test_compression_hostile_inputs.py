"""Hostile and careless inputs to the compression stage: a clear error or the right answer,
never a NumPy traceback, a RuntimeWarning or a silently wrong model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Tensor
from tinytorch_compression import (FakeQuantize, MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver,
                                   dequantize_tensor, distillation_loss, prune_channels, prune_global_unstructured,
                                   prune_l1_unstructured, quantize, quantize_tensor, remove, sparsity)

rng = np.random.default_rng(0)
X = Tensor(rng.standard_normal((5, 4)).astype(np.float32))


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def mlp():
    return tt.nn.Sequential(tt.nn.Linear(4, 8, generator=0), tt.nn.ReLU(), tt.nn.Linear(8, 2, generator=0))


@pytest.mark.parametrize("call, error, excerpt", [
    (lambda: quantize_tensor(X, float("inf")), ValueError, "positive and finite"),
    (lambda: quantize_tensor(X, None), TypeError, "scale must be a positive number"),
    (lambda: quantize_tensor(X, "a"), TypeError, "scale must be a positive number"),
    (lambda: quantize_tensor(X, 0.1, 1000), ValueError, "zero_point must be a code in -128..127"),
    (lambda: quantize_tensor(X, 0.1, 0, symmetric="yes"), TypeError, "symmetric must be True or False"),
    (lambda: quantize_tensor(X, np.full(4, 0.1), 0, axis=1.0), TypeError, "axis must be None"),
    (lambda: quantize_tensor(Tensor(np.array([np.nan], np.float32)), 0.1), ValueError, "NaN, which has no int8 code"),
    (lambda: dequantize_tensor(np.ones(3, np.int8), 0.1, 2**40), ValueError, "zero_point must be a code"),
    (lambda: tt.ops.fake_quantize(X, float("inf")), ValueError, "positive and finite"),
    (lambda: tt.ops.fake_quantize(X, None), TypeError, "scale must be a positive number"),
    (lambda: tt.ops.fake_quantize(X, 0.1, 500), ValueError, "zero_point must be a code in -128..127"),
    (lambda: tt.ops.fake_quantize(X, 0.1, 0, 0.5, 10), TypeError, "quant_min must be an int"),
    (lambda: tt.ops.fake_quantize(X, np.full(4, 0.1), 0, axis=5), ValueError, "axis 5 is out of range"),
    (lambda: tt.ops.fake_quantize(X, 0.1, np.zeros(5, np.int64), axis=1), ValueError, "must have shape (4,)"),
    (lambda: tt.ops.fake_quantize(X, np.full(4, 0.1), 0), ValueError, "per-tensor scale must be one number"),
    (lambda: FakeQuantize(MinMaxObserver), TypeError, "got the class MinMaxObserver"),
    (lambda: FakeQuantize()([1.0, 2.0]), TypeError, "expected a Tensor, got list"),
    (lambda: MovingAverageMinMaxObserver(None), TypeError, "averaging_constant must be a number"),
    (lambda: PercentileObserver("99"), TypeError, "percentile must be a number"),
    (lambda: MinMaxObserver()(Tensor(np.array([np.nan, 1.0], np.float32))), ValueError, "holds NaN or inf"),
    (lambda: PercentileObserver()(Tensor(np.array([np.inf, 1.0], np.float32))), ValueError, "holds NaN or inf"),
], ids=["inf-scale", "none-scale", "str-scale", "zero-point-range", "symmetric-str", "axis-float", "nan-x",
        "dequantize-zero-point", "fq-inf-scale", "fq-none-scale", "fq-zero-point-range", "fq-float-quant-min",
        "fq-axis-range", "fq-zero-point-shape", "fq-per-tensor-scale-shape", "observer-class", "list-input",
        "averaging-constant-none", "percentile-str", "minmax-nan", "percentile-inf"])
def test_bad_quantization_arguments_are_refused_naming_the_function(call, error, excerpt):
    with pytest.raises(error, match=excerpt.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_fake_quantize_keeps_x_dtype_and_accepts_a_list():
    assert tt.ops.fake_quantize(X, np.array(0.1), 0).dtype == np.float32  # a float64 0-d scale does not widen
    assert tt.ops.fake_quantize([1.0, 2.04], 0.1).data.tolist() == pytest.approx([1.0, 2.0])


def test_a_tiny_observed_range_still_gives_a_usable_scale():
    observer = MinMaxObserver()
    observer(Tensor(np.array([0.0, 1e-40], np.float32)))
    scale, _ = observer.calculate_qparams()
    assert scale == np.finfo(np.float32).eps  # PyTorch's floor; float32(scale) is never 0
    assert tt.ops.fake_quantize(Tensor(np.array([1e-40], np.float32)), scale, -128, axis=None).data[0] == 0


@pytest.mark.parametrize("loader, excerpt", [
    (None, "must yield batches"), (X, "for one batch x, pass \\[x\\]"),
    ([X.data.tolist()], "a calibration batch must be a Tensor"), ([()], "a calibration batch must be a Tensor"),
], ids=["none", "tensor", "nested-list", "empty-tuple"])
def test_quantize_refuses_loaders_it_would_misread(loader, excerpt):
    with pytest.raises(TypeError, match=excerpt):
        quantize(mlp(), loader)


@pytest.mark.parametrize("options, error, excerpt", [
    ({"activation_observer": MinMaxObserver()}, TypeError, "must make a new observer"),
    ({"activation_observer": lambda: MinMaxObserver(axis=1)}, ValueError, "activation_observer must observe along axis None"),
    ({"weight_observer": lambda: MinMaxObserver(symmetric=True, axis=1)}, ValueError, "axis None or 0"),
], ids=["instance", "per-channel-activations", "weights-along-axis-1"])
def test_quantize_refuses_observers_the_integer_layers_cannot_use(options, error, excerpt):
    with pytest.raises(error, match=excerpt):
        quantize(mlp(), [X], **options)


def test_quantized_models_refuse_misfit_inputs_and_handle_empty_batches():
    int8 = quantize(mlp(), [X])
    with pytest.raises(ValueError, match="QuantizedLinear: input codes of shape \\(5, 3\\)"):
        int8(Tensor(np.ones((5, 3), np.float32)))
    with pytest.raises(ValueError, match="NaN, which has no int8 code"):
        int8(Tensor(np.full((1, 4), np.nan, np.float32)))
    model = mlp()
    model[0].weight.data[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize(model, [X])


def test_quantized_convolutions_check_channels_pooling_and_empty_batches():
    nn = tt.nn
    try:
        conv = nn.Sequential(nn.Conv2d(1, 2, 3, generator=0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(18, 2, generator=0))
    except ImportError:
        pytest.skip("stage spatial is not installed")
    images = Tensor(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
    int8 = quantize(conv, [images])
    assert int8(Tensor(np.ones((0, 1, 8, 8), np.float32))).shape == (0, 2)
    with pytest.raises(ValueError, match="QuantizedConv2d: input codes"):
        int8(Tensor(np.ones((2, 3, 8, 8), np.float32)))
    pool = quantize(nn.Sequential(nn.MaxPool2d(4)), [Tensor(np.ones((1, 1, 8, 8), np.float32))])
    with pytest.raises(ValueError, match="kernel 4x4 is larger than the input 2x2"):
        pool(Tensor(np.ones((1, 1, 2, 2), np.float32)))


def test_a_pruned_model_is_quantized_and_channel_pruned_as_its_dense_layers():
    pruned = prune_l1_unstructured(mlp(), 0.5)
    int8 = quantize(pruned, [X])
    assert [type(m).__name__ for m in int8] == ["Quantize", "QuantizedLinear", "QuantizedLinear", "DeQuantize"]
    assert (int8[1].weight.data == 0).sum() >= 16
    smaller = prune_channels(pruned, 0.5)
    assert smaller[0].weight.shape == (4, 4)


@pytest.mark.parametrize("prune", [prune_l1_unstructured, prune_global_unstructured])
def test_pruning_refuses_non_models_empty_models_and_non_finite_weights(prune):
    with pytest.raises(TypeError, match="expected a Module"):
        prune(None, 0.5)
    with pytest.raises(TypeError, match="amount must be a number"):
        prune(mlp(), "0.5")
    with pytest.raises(ValueError, match="no Linear or Conv2d layer to prune"):
        prune(tt.nn.Sequential(tt.nn.ReLU()), 0.5)
    model = mlp()
    model[2].weight.data[0, 0] = np.nan
    with pytest.raises(ValueError, match="layer '2' holds NaN or inf"):
        prune(model, 0.5)


@pytest.mark.parametrize("prune", [prune_l1_unstructured, prune_global_unstructured])
def test_a_pruned_weight_stays_pruned_when_pruned_again_with_a_smaller_amount(prune):
    model = prune(prune(mlp(), 0.75), 0.25)
    optimizer = tt.optim.SGD(model.parameters(), lr=0.5)
    loss = model(X).sum()
    loss.backward()
    optimizer.step()
    assert sparsity(model) == pytest.approx(0.75, abs=0.02)  # before: the extra zeros came back to life


def test_sparsity_and_remove_refuse_non_models_and_models_without_weights():
    with pytest.raises(TypeError, match="sparsity: expected a Module"):
        sparsity([tt.nn.Linear(2, 2)])
    with pytest.raises(TypeError, match="remove: expected a Module"):
        remove(None)
    with pytest.raises(ValueError, match="no Linear or Conv2d weights"):
        sparsity(tt.nn.Linear(0, 4))
    by_layer = sparsity(tt.nn.Sequential(tt.nn.Linear(0, 4), tt.nn.Linear(4, 2)), by_layer=True)
    assert np.isnan(by_layer["0"]) and by_layer["1"] == 0.0


def test_prune_channels_refuses_layers_whose_channels_do_not_line_up():
    nn = tt.nn
    with pytest.raises(ValueError, match="a Flatten between"):  # (N, 3, 8) features flattened: not blocks
        prune_channels(nn.Sequential(nn.Linear(4, 8), nn.Flatten(), nn.Linear(24, 2)), 0.5)
    with pytest.raises(TypeError, match="amount must be a number"):
        prune_channels(mlp(), None)
    model = mlp()
    model[0].weight.data[0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        prune_channels(model, 0.5)
    try:
        conv_then_linear = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(6, 2))
    except ImportError:
        return
    with pytest.raises(ValueError, match="reach a Linear only through a Flatten"):
        prune_channels(conv_then_linear, 0.5)
    with pytest.raises(ValueError, match="are not the inputs of"):
        prune_channels(nn.Sequential(nn.Linear(4, 4), nn.Conv2d(4, 2, 1)), 0.5)


def test_distillation_loss_handles_masked_teachers_empty_batches_and_bad_settings():
    student = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    target = Tensor(np.array([0, 1, 2, 1]))
    masked = np.array([[-np.inf, 1.0, 2.0]] * 4, np.float32)  # class 0 ruled out by the teacher: p = 0 adds nothing
    value = distillation_loss(student, masked, target, temperature=2.0, alpha=1.0)
    log_q = np.log(np.exp(student.data / 2) / np.exp(student.data / 2).sum(1, keepdims=True))
    p = np.exp(masked[:, 1:] / 2) / np.exp(masked[:, 1:] / 2).sum(1, keepdims=True)
    expected = 4 * (p * (np.log(p) - log_q[:, 1:])).sum(1).mean()
    assert value.item() == pytest.approx(expected, rel=1e-5)
    empty = Tensor(np.zeros((0, 3), np.float32), requires_grad=True)
    loss = distillation_loss(empty, np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    assert np.isnan(loss.item())
    loss.backward()
    assert empty.grad.shape == (0, 3)
    assert np.isnan(distillation_loss(student, np.full((4, 3), np.nan, np.float32), target).item())
    with pytest.raises(ValueError, match="C >= 1 classes"):
        distillation_loss(Tensor(np.zeros((2, 0), np.float32)), np.zeros((2, 0), np.float32), target[:2])
    with pytest.raises(ValueError, match="positive finite"):
        distillation_loss(student, masked, target, temperature=float("inf"))
    with pytest.raises(TypeError, match="alpha must be a number"):
        distillation_loss(student, masked, target, alpha=None)


@pytest.mark.parametrize("key, value, excerpt", [
    ("1.weight_scale", np.nan, "every weight scale must be finite and > 0"),
    ("2.weight_scale", 0.0, "every weight scale must be finite and > 0"),
    ("0.output_scale", 0.0, "output scale 0.0 and zero point"),
    ("1.input_scale", -0.01, "input scale -0.0099"),
    ("0.output_scale", np.inf, "output scale inf"),
    ("0.output_zero_point", 5000, "zero point 5000 cannot read int8 codes"),
])
def test_a_quantized_state_dict_with_unusable_qparams_is_refused_not_run(key, value, excerpt):
    """They loaded and ran: wrong outputs and NumPy's divide-by-zero warnings."""
    int8 = quantize(mlp(), [X])
    state = int8.state_dict()
    state[key] = np.full_like(state[key], value)
    int8.load_state_dict(state)
    with pytest.raises(ValueError, match=excerpt):
        int8(X)


def test_integer_codes_that_would_wrap_are_refused_on_load():
    """int64 codes of 1000 wrapped to garbage in the int8 weight; an int32 bias of 2**40 became 0."""
    int8 = quantize(mlp(), [X])
    state = int8.state_dict()
    weight_key = next(k for k, v in state.items() if v.dtype == np.int8)
    state[weight_key] = state[weight_key].astype(np.int64) + 1000
    with pytest.raises(tt.StateDictError, match="outside int8's \\[-128, 127\\]"):
        int8.load_state_dict(state)


def test_quantize_refuses_a_calibration_whose_rank_its_integer_layers_cannot_take():
    """A Linear calibrated on (4, 5, 6) batches quantized fine, and the int8 model then refused
    that same data ("expected a 2-D QuantizedActivation")."""
    model = tt.nn.Sequential(tt.nn.Linear(6, 3, generator=0), tt.nn.ReLU())
    with pytest.raises(ValueError, match=r"layer '0' \(Linear.*calibrated on 3-D input of shape \(4, 5, 6\)"):
        quantize(model, [Tensor(rng.standard_normal((4, 5, 6)).astype(np.float32))])


@pytest.mark.parametrize("kind, bad", [("weight", np.nan), ("bias", np.inf)])
def test_quantize_names_the_layer_whose_parameter_is_not_finite(kind, bad):
    """Calibration ran first and blamed an activation observer ("the observed tensor ... holds NaN")."""
    model = mlp()
    getattr(model[2], kind).data.reshape(-1)[0] = bad
    with pytest.raises(ValueError, match=f"quantize: the {kind} of layer '2' \\(Linear\\) holds NaN or inf"):
        quantize(model, [X])


@pytest.mark.parametrize("temperature", [1e-300, 1e-8, 1.0, 4.0, 1e3, 1e4])
def test_distillation_loss_holds_at_extreme_temperatures(temperature):
    """In float32 the soft term was 0 at T = 1e4 (T**2 times a rounded-away KL) and NaN at T = 1e-300."""
    rng = np.random.default_rng(0)
    student = rng.standard_normal((4, 5)).astype(np.float32)
    teacher = rng.standard_normal((4, 5)).astype(np.float32)
    target = np.array([0, 1, 2, 3])
    got = distillation_loss(Tensor(student, requires_grad=True), teacher, target, temperature=temperature).item()

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    s64, t64 = student.astype(np.float64), teacher.astype(np.float64)
    p, log_p, log_q = np.exp(log_softmax(t64 / temperature)), log_softmax(t64 / temperature), log_softmax(s64 / temperature)
    kl = np.where(p > 0, p * (log_p - log_q), 0.0).sum() / len(student)
    expected = 0.9 * temperature**2 * kl + 0.1 * -log_softmax(s64)[np.arange(4), target].mean()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
