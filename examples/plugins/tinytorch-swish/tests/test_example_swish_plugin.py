"""The plugin as the host sees it, and a small depthwise-separable network that learns."""

import numpy as np

import tinytorch_core as tt
import tinytorch_swish
from tinytorch_core import Runtime


def test_plugin_is_loaded_as_stage_swish_after_spatial(tinytorch_runtime):
    record = tinytorch_runtime.plugins["swish"]
    assert record.status == "loaded", record.reason
    assert (record.stage, record.requires, record.distribution) == ("swish", ("spatial",), "tinytorch-swish")
    assert record.ops == ["swish::swish", "swish::depthwise_conv2d"]
    assert record.symbols == ["nn.Swish", "nn.DepthwiseConv2d"]


def test_symbols_resolve_through_tinytorch_core(tinytorch_runtime):
    assert tt.nn.Swish is tinytorch_swish.Swish
    assert tt.nn.DepthwiseConv2d is tinytorch_swish.DepthwiseConv2d
    assert tt.ops.swish is tinytorch_swish.swish
    assert tt.ops.depthwise_conv2d is tinytorch_swish.depthwise_conv2d


def test_both_ops_pass_opcheck(opcheck):
    assert opcheck("swish::swish").samples_checked == 6
    assert opcheck("swish::depthwise_conv2d").samples_checked == 5


def test_without_spatial_the_plugin_is_inactive_and_says_why():
    runtime = Runtime(environ={"TINYTORCH_DISABLE_PLUGINS": "spatial"}).load()
    record = runtime.plugins["swish"]
    assert record.status == "inactive"
    assert "requires stage 'spatial'" in record.reason and "disabled by TINYTORCH_DISABLE_PLUGINS" in record.reason
    assert "swish::swish" not in runtime.ops and "DepthwiseConv2d" not in runtime.names("nn")


def test_a_depthwise_separable_network_learns(tinytorch_runtime):
    rng = np.random.default_rng(0)
    # two classes of 6x6 two-channel images: a bright vertical or a bright horizontal bar in channel 0
    n = 32
    images = rng.normal(0.0, 0.3, (n, 2, 6, 6)).astype(np.float32)
    labels = np.arange(n) % 2
    rows = rng.integers(1, 5, n)
    for i in range(n):  # building the data set, not a kernel
        if labels[i]:
            images[i, 0, rows[i], :] += 2.0
        else:
            images[i, 0, :, rows[i]] += 2.0
    model = tt.nn.Sequential(
        tt.nn.DepthwiseConv2d(2, 3, padding=1, multiplier=2, generator=1),
        tt.nn.Conv2d(4, 4, 1, generator=2),
        tt.nn.Swish(learnable=True),
        tt.nn.Flatten(),
        tt.nn.Linear(4 * 6 * 6, 2, generator=3),
    )
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    optimizer = tt.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = tt.nn.CrossEntropyLoss()
    x = tt.Tensor(images)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and np.any(p.grad.data != 0), name
        optimizer.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.25 * losses[0]
    accuracy = float((model(x).data.argmax(axis=1) == labels).mean())
    assert accuracy == 1.0
    for name, p in model.named_parameters():
        assert not np.array_equal(p.data, before[name]), f"{name} did not move"
