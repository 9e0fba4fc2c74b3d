"""The benchmark's framework models (bench/workloads.py) against the NumPy reference.

For every workload W1..W8, in float64 on a small batch: the framework's loss and the
gradient of every parameter equal the reference's hand-derived ``loss_and_grads``, and one
SGD step of the framework moves every parameter exactly as one reference ``step`` does.
This checks the reference against the framework and the framework against the reference.
If PyTorch is installed, bench/torch_reference.py is checked the same way (skipped otherwise).

bench/ is not a package: its files are loaded by path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch_core import StageUnavailableError

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str, filename: str):
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, BENCH / filename)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return module


workloads = _load("tinytorch_bench_workloads", "workloads.py")
ref = workloads.load_reference()

ALL_IDS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"]
# small batches keep the file fast; the model shapes are the real ones
SMALL_BATCH = {"W1": 16, "W2": 4, "W3": 8, "W4": 4, "W5": 2, "W6": 4, "W7": 2, "W8": 4}
RTOL = 1e-7
# absolute floor for entries that are zero in exact arithmetic (e.g. the key-projection bias:
# softmax is invariant to a per-query constant, so its gradient is pure rounding noise, ~1e-17)
ATOL = 1e-12


def _setup(wid, seed=0):
    spec = ref.WORKLOADS[wid]
    rng = np.random.default_rng(seed)
    params = spec.make_params(rng, dtype=np.float64)
    x, y = spec.make_batch(rng, batch_size=SMALL_BATCH[wid], dtype=np.float64)
    if wid in ("W6", "W7"):
        # LayerNorm starts at ones/zeros: move it so that its gradients are checked in general position
        for name, p in params.items():
            if name.split(".")[-2].startswith("ln"):
                p += rng.uniform(-0.3, 0.3, size=p.shape)
    return spec, params, x, y


def _zero_in_exact_arithmetic(wid) -> int:
    """How many parameters have a gradient that is exactly zero in exact arithmetic: one key
    bias per transformer block."""
    return ref.WORKLOADS[wid].model.n_blocks if wid in ("W6", "W7") else 0


def _framework_model(wid, params):
    fw = workloads.FRAMEWORK_WORKLOADS[wid]
    try:
        model = fw.build(np.float64)
    except StageUnavailableError as exc:
        pytest.skip(f"{wid} needs stage(s) {', '.join(fw.stages)}: {exc}")
    fw.load_params(model, params)
    return fw, model


def _assert_close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


@pytest.mark.parametrize("wid", ALL_IDS)
def test_state_dict_names_are_the_reference_names(wid):
    spec, params, _, _ = _setup(wid)
    _, model = _framework_model(wid, params)
    state = model.state_dict()
    assert list(state) == list(params)
    for name, value in state.items():
        assert value.dtype == np.float64, name
        np.testing.assert_array_equal(value, params[name], err_msg=name)  # load_params copied exactly


@pytest.mark.parametrize("wid", ALL_IDS)
def test_loss_and_every_gradient_match_the_reference(wid):
    spec, params, x, y = _setup(wid)
    fw, model = _framework_model(wid, params)
    ref_loss, ref_grads = spec.loss_and_grads(params, x, y)

    xt, yt = fw.to_tensors(x, y)
    loss = model.loss(xt, yt)
    assert loss.dtype == np.float64
    loss.backward()

    assert loss.item() == pytest.approx(ref_loss, rel=RTOL)
    named = dict(model.named_parameters())
    assert list(named) == list(ref_grads)
    nonzero = 0
    for name, p in named.items():
        assert p.grad is not None, f"{wid}: {name} got no gradient"
        assert p.grad.data.dtype == np.float64, name
        _assert_close(p.grad.data, ref_grads[name], f"{wid}: gradient of {name}")
        nonzero += bool(np.any(np.abs(ref_grads[name]) > 1e-8))
    # the comparison means something only if gradients are not trivially zero
    assert nonzero == len(named) - _zero_in_exact_arithmetic(wid)


@pytest.mark.parametrize("wid", ALL_IDS)
def test_one_sgd_step_matches_the_reference_step(wid):
    spec, params, x, y = _setup(wid, seed=1)
    fw, model = _framework_model(wid, params)
    optimizer = fw.make_optimizer(model)
    xt, yt = fw.to_tensors(x, y)
    before = {k: v.copy() for k, v in params.items()}

    ref_loss = spec.step(params, x, y, spec.lr)  # updates params in place
    loss = fw.step(model, optimizer, xt, yt)

    assert isinstance(loss, float)
    assert loss == pytest.approx(ref_loss, rel=RTOL)
    moved = 0
    for name, p in model.named_parameters():
        assert p.grad is None, f"step must leave gradients zeroed ({name})"
        _assert_close(p.data, params[name], f"{wid}: {name} after one step")
        moved += not np.array_equal(params[name], before[name])
    assert moved >= len(params) - _zero_in_exact_arithmetic(wid)


def test_workload_table_mirrors_the_reference():
    assert list(workloads.FRAMEWORK_WORKLOADS) == list(ref.WORKLOADS) == ALL_IDS
    for wid, fw in workloads.FRAMEWORK_WORKLOADS.items():
        assert fw.lr == ref.WORKLOADS[wid].lr
        assert fw.stages[0] == "nn"


# ---- the PyTorch models, when PyTorch is installed --------------------------------------------
@pytest.mark.parametrize("wid", ALL_IDS)
def test_torch_reference_matches_the_numpy_reference(wid):
    torch = pytest.importorskip("torch")
    tr = _load("tinytorch_bench_torch_reference", "torch_reference.py")
    spec, params, x, y = _setup(wid, seed=2)
    model = tr.build(wid, np.float64)
    tr.load_params(model, params)
    ref_loss, ref_grads = spec.loss_and_grads(params, x, y)

    loss = model.loss(*tr.to_tensors(x, y))
    loss.backward()
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(ref_loss, rel=RTOL)
    for name, p in model.named_parameters():
        _assert_close(p.grad.numpy(), ref_grads[name], f"{wid} (torch): gradient of {name}")
