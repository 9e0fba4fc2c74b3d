"""Checks for bench/numpy_reference.py, the hand-written NumPy reference models.

* hand-derived gradients vs. central finite differences (float64) for W1..W8,
* SGD ``step`` lowers the loss on a fixed batch,
* independent loop-based forward passes agree with the vectorised ones (conv /
  pool / flatten conventions, attention, causal mask), and max-pool ties send
  the gradient to the first maximum.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch_core.testing import central_difference

_PATH = Path(__file__).resolve().parents[1] / "bench" / "numpy_reference.py"


def _load_module():
    name = "tinytorch_bench_numpy_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


ref = _load_module()

ALL_IDS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"]
# smaller batches keep the whole file fast; the model shapes are the real ones
SMALL_BATCH = {"W1": 16, "W2": 4, "W3": 8, "W4": 4, "W5": 2, "W6": 4, "W7": 1, "W8": 4}
STEP_BATCH = {**SMALL_BATCH, "W7": 2}  # one 64-token sequence is too noisy for a smooth descent

EXPECTED_NAMES = {
    "W1": ["fc.weight", "fc.bias"],
    "W2": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
    "W3": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
    "W4": ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"],
    "W5": ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"],
    "W8": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
}


def _transformer_names(n_blocks):
    names = ["tok_emb.weight", "pos_emb.weight"]
    for i in range(n_blocks):
        p = f"blocks.{i}."
        names += [p + "ln1.weight", p + "ln1.bias"]
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            names += [p + f"attn.{proj}.weight", p + f"attn.{proj}.bias"]
        names += [p + "ln2.weight", p + "ln2.bias"]
        names += [p + "ff.fc1.weight", p + "ff.fc1.bias", p + "ff.fc2.weight", p + "ff.fc2.bias"]
    return names + ["ln_f.weight", "ln_f.bias", "head.weight", "head.bias"]


EXPECTED_NAMES["W6"] = _transformer_names(1)
EXPECTED_NAMES["W7"] = _transformer_names(2)


def _setup(wid, dtype, seed=0, batch=SMALL_BATCH):
    spec = ref.WORKLOADS[wid]
    rng = np.random.default_rng(seed)
    params = spec.make_params(rng, dtype=dtype)
    x, y = spec.make_batch(rng, batch_size=batch[wid], dtype=dtype)
    if wid in ("W6", "W7"):
        # LayerNorm affine params start at ones/zeros; perturb them so that their
        # gradients (and the ones that flow through them) are checked in general position
        for name, p in params.items():
            if name.split(".")[-2].startswith("ln"):
                p += rng.uniform(-0.3, 0.3, size=p.shape).astype(dtype)
    return spec, params, x, y


# --------------------------------------------------------------------------- #
# registry / API
# --------------------------------------------------------------------------- #
def test_registry_has_all_workloads():
    assert list(ref.WORKLOADS) == ALL_IDS
    expected_batch = {"W1": 100, "W2": 4, "W3": 32, "W4": 32, "W5": 64, "W6": 16, "W7": 32, "W8": 256}
    for wid, spec in ref.WORKLOADS.items():
        assert spec.id == wid
        assert spec.batch_size == expected_batch[wid]
        assert isinstance(spec.description, str) and spec.description


@pytest.mark.parametrize("wid", ALL_IDS)
def test_param_names_shapes_and_float32(wid):
    spec = ref.WORKLOADS[wid]
    rng = np.random.default_rng(1)
    params = spec.make_params(rng)
    assert list(params) == EXPECTED_NAMES[wid]
    assert all(p.dtype == np.float32 for p in params.values())
    x, y = spec.make_batch(rng)
    assert x.shape[0] == spec.batch_size
    loss, grads = spec.loss_and_grads(params, x, y)
    assert isinstance(loss, float) and math.isfinite(loss)
    assert list(grads) == list(params)
    for name, g in grads.items():
        assert g.shape == params[name].shape, name
        assert g.dtype == np.float32, name
        assert np.all(np.isfinite(g)), name


# --------------------------------------------------------------------------- #
# finite differences
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("wid", ALL_IDS)
def test_gradients_match_finite_differences(wid):
    spec, params, x, y = _setup(wid, np.float64, seed=123)
    if wid == "W7":
        # the model accepts sequences shorter than its context; 16 of the 64 positions keep
        # this check fast (full-length behaviour is covered by the tests further down)
        x, y = x[:, :16].copy(), y[:, :16].copy()
    loss, grads = spec.loss_and_grads(params, x, y)
    grads = {k: v.copy() for k, v in grads.items()}
    assert all(g.dtype == np.float64 for g in grads.values())

    rng = np.random.default_rng(7)
    eps = 1e-6
    n_nonzero = n_checked = 0
    for name, p in params.items():
        flat = p.reshape(-1)  # view: writes go into params[name]
        # pos_emb rows past the sequence length get no gradient: sample the used rows
        size = x.shape[1] * p.shape[1] if name == "pos_emb.weight" else flat.size
        picks = rng.choice(size, size=min(5, size), replace=False)
        if wid in ("W6", "W7") and name == "tok_emb.weight":
            # only rows of tokens present in the batch have non-zero gradients; check some of them too
            e = p.shape[1]
            rows = rng.choice(np.unique(x), size=3, replace=False)
            picks = np.concatenate([picks, rows * e + rng.integers(0, e, size=3)])
        for idx in picks:
            numeric = central_difference(lambda: spec.loss_and_grads(params, x, y)[0], flat, idx, eps)
            analytic = grads[name].reshape(-1)[idx]
            assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6), (name, int(idx), analytic, numeric)
            n_nonzero += abs(numeric) > 1e-6
            n_checked += 1
    # the check is meaningful only if a good share of the sampled gradients are non-zero
    assert n_nonzero >= 0.5 * n_checked, (n_nonzero, n_checked)
    # the loss is unchanged after the probes
    assert spec.loss_and_grads(params, x, y)[0] == pytest.approx(loss, rel=1e-12)


# --------------------------------------------------------------------------- #
# SGD step
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("wid", ALL_IDS)
def test_step_decreases_loss(wid, dtype):
    spec, params, x, y = _setup(wid, dtype, seed=5, batch=STEP_BATCH)
    before = {k: v.copy() for k, v in params.items()}
    first, first_grads = spec.loss_and_grads(params, x, y)
    first_grads = {k: v.copy() for k, v in first_grads.items()}

    losses = [spec.step(params, x, y, spec.lr) for _ in range(20)]
    final, _ = spec.loss_and_grads(params, x, y)

    assert losses[0] == pytest.approx(first, rel=1e-5)  # step reports the pre-update loss
    assert all(math.isfinite(v) for v in losses)
    assert final < 0.97 * first, (first, losses, final)
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 15  # (mostly) monotone
    assert all(p.dtype == np.dtype(dtype) for p in params.values())

    # the first update is exactly p - lr * g
    spec2, params2, x2, y2 = _setup(wid, dtype, seed=5, batch=STEP_BATCH)
    spec2.step(params2, x2, y2, spec.lr)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name in params2:
        np.testing.assert_allclose(params2[name], before[name] - spec.lr * first_grads[name], rtol=tol, atol=tol)


def test_loss_and_grads_returns_fresh_arrays():
    spec, params, x, y = _setup("W4", np.float64)
    _, g1 = spec.loss_and_grads(params, x, y)
    snapshot = {k: v.copy() for k, v in g1.items()}
    x2, y2 = spec.make_batch(np.random.default_rng(99), batch_size=SMALL_BATCH["W4"], dtype=np.float64)
    spec.step(params, x2, y2, 0.1)
    spec.loss_and_grads(params, x2, y2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], snapshot[k])


# --------------------------------------------------------------------------- #
# independent (loop-based, slow) forward passes: check the conventions
# --------------------------------------------------------------------------- #
def _naive_conv2d(x, w, b, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), x.dtype)
    xp[:, :, pad : pad + h, pad : pad + wd] = x
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    out = np.zeros((n, o, ho, wo), x.dtype)
    for oc in range(o):
        for i in range(ho):
            for j in range(wo):
                out[:, oc, i, j] = np.sum(xp[:, :, i : i + kh, j : j + kw] * w[oc], axis=(1, 2, 3)) + b[oc]
    return out


def _naive_maxpool2(x):
    n, c, h, w = x.shape
    out = np.empty((n, c, h // 2, w // 2), x.dtype)
    for i in range(h // 2):
        for j in range(w // 2):
            out[:, :, i, j] = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(2, 3))
    return out


def _naive_ce(logits, target):
    total = 0.0
    for row, t in zip(logits, target):
        m = row.max()
        total += -(row[t] - m - math.log(np.exp(row - m).sum()))
    return total / len(target)


@pytest.mark.parametrize("wid", ["W4", "W5"])
def test_cnn_forward_matches_naive_nchw(wid):
    spec, params, x, y = _setup(wid, np.float64, seed=3)
    pads = {"W4": 1, "W5": 0}[wid]
    a = x
    for layer in ("conv1", "conv2"):
        a = _naive_conv2d(a, params[layer + ".weight"], params[layer + ".bias"], pads)
        a = _naive_maxpool2(np.maximum(a, 0.0))
    flat = a.reshape(a.shape[0], -1)
    logits = flat @ params["fc.weight"].T + params["fc.bias"]
    loss, _ = spec.loss_and_grads(params, x, y)
    assert loss == pytest.approx(_naive_ce(logits, y), rel=1e-10)


def _naive_layernorm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def _naive_transformer_loss(params, tokens, targets, n_blocks, heads, causal, per_position=False):
    bsz, t = tokens.shape
    h = params["tok_emb.weight"][tokens] + params["pos_emb.weight"][:t]
    e = h.shape[-1]
    hd = e // heads

    def lin(v, name):
        return v @ params[name + ".weight"].T + params[name + ".bias"]

    for bi in range(n_blocks):
        p = f"blocks.{bi}."
        a = _naive_layernorm(h, params[p + "ln1.weight"], params[p + "ln1.bias"])
        q, k, v = (lin(a, p + f"attn.{n}_proj") for n in "qkv")
        merged = np.zeros_like(h)
        for hh in range(heads):
            sl = slice(hh * hd, (hh + 1) * hd)
            for bb in range(bsz):
                s = q[bb, :, sl] @ k[bb, :, sl].T / math.sqrt(hd)
                if causal:
                    s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
                w = np.exp(s - s.max(-1, keepdims=True))
                w /= w.sum(-1, keepdims=True)
                merged[bb, :, sl] = w @ v[bb, :, sl]
        h = h + lin(merged, p + "attn.out_proj")
        a = _naive_layernorm(h, params[p + "ln2.weight"], params[p + "ln2.bias"])
        f = lin(a, p + "ff.fc1")
        f = 0.5 * f * (1 + np.tanh(math.sqrt(2 / math.pi) * (f + 0.044715 * f**3)))
        h = h + lin(f, p + "ff.fc2")
    z = _naive_layernorm(h, params["ln_f.weight"], params["ln_f.bias"])
    logits = lin(z, "head")
    if per_position:
        return np.array(
            [[_naive_ce(logits[bb, i : i + 1], targets[bb, i : i + 1]) for i in range(t)] for bb in range(bsz)]
        )
    return _naive_ce(logits.reshape(bsz * t, -1), targets.reshape(-1))


@pytest.mark.parametrize("wid,n_blocks,causal", [("W6", 1, False), ("W7", 2, True)])
def test_transformer_forward_matches_naive(wid, n_blocks, causal):
    spec, params, x, y = _setup(wid, np.float64, seed=4)
    loss, _ = spec.loss_and_grads(params, x, y)
    expected = _naive_transformer_loss(params, x, y, n_blocks, 4, causal)
    assert loss == pytest.approx(expected, rel=1e-10)


def test_causal_mask_blocks_future_tokens():
    # causal: the loss of the first T-1 positions of a length-T sequence equals the
    # loss of the model run on the length-(T-1) prefix alone (later tokens are invisible)
    spec, params, x, y = _setup("W7", np.float64, seed=8)
    t = x.shape[1]
    per_pos = _naive_transformer_loss(params, x, y, 2, 4, True, per_position=True)
    prefix_loss, _ = spec.loss_and_grads(params, x[:, : t - 1], y[:, : t - 1])
    assert prefix_loss == pytest.approx(per_pos[:, : t - 1].mean(), rel=1e-10)
    # ... and changing the last token changes the full-sequence loss
    x2 = x.copy()
    x2[:, -1] = (x2[:, -1] + 1) % 64
    assert spec.loss_and_grads(params, x2, y)[0] != spec.loss_and_grads(params, x, y)[0]

    # the non-causal W6 model does not have this property
    spec6, params6, x6, y6 = _setup("W6", np.float64, seed=8)
    t6 = x6.shape[1]
    per_pos6 = _naive_transformer_loss(params6, x6, y6, 1, 4, False, per_position=True)
    prefix6, _ = spec6.loss_and_grads(params6, x6[:, : t6 - 1], y6[:, : t6 - 1])
    assert abs(prefix6 - per_pos6[:, : t6 - 1].mean()) > 1e-6


def test_maxpool_ties_route_gradient_to_first_max():
    # one window per (n, c); NHWC layout, values chosen to create ties
    y = np.array(
        [
            [[1.0, 1.0], [1.0, 1.0]],  # all tie -> (0,0)
            [[0.0, 2.0], [2.0, 2.0]],  # tie among last three -> (0,1)
            [[0.0, 1.0], [3.0, 3.0]],  # tie in bottom row -> (1,0)
            [[0.0, 1.0], [2.0, 3.0]],  # unique -> (1,1)
        ]
    )  # (4, 2, 2) = (N, H, W)
    y = y[..., None]  # C = 1
    out, idx = ref.maxpool2x2_nhwc_forward(y)
    assert out.reshape(-1).tolist() == [1.0, 2.0, 3.0, 3.0]
    assert idx.reshape(-1).tolist() == [0, 1, 2, 3]
    dy = ref.maxpool2x2_nhwc_backward(np.full(out.shape, 5.0), idx, y.shape)
    expected = np.zeros_like(y)
    expected[0, 0, 0] = expected[1, 0, 1] = expected[2, 1, 0] = expected[3, 1, 1] = 5.0
    np.testing.assert_array_equal(dy, expected)


def test_bce_clamp_and_cross_entropy_values():
    z = np.array([[0.3], [-1.2], [40.0], [-40.0]])
    y = np.array([[1.0], [0.0], [1.0], [1.0]])
    loss, dz = ref.bce_with_probs(z, y)
    p = np.clip(1 / (1 + np.exp(-z)), 1e-7, 1 - 1e-7)
    expected = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert loss == pytest.approx(expected, rel=1e-12)
    # saturated entries are clamped: no gradient flows through them
    assert dz[2, 0] == 0.0 and dz[3, 0] == 0.0
    assert dz[0, 0] == pytest.approx((1 / (1 + math.exp(-0.3)) - 1) / 4, rel=1e-12)

    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    target = np.array([1, 2])
    loss, d = ref.cross_entropy(logits, target)
    assert math.isfinite(loss)
    assert loss == pytest.approx(_naive_ce(logits, target), rel=1e-12)
    np.testing.assert_allclose(d.sum(axis=1), 0.0, atol=1e-15)
