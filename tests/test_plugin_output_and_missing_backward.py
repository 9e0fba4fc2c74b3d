"""A plugin that prints while it loads does not write into the command's output (``--json``
stayed unparsable), and an op without a backward that a gradient reaches is named."""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import Function, GraphError
from tinytorch_core.host.runtime import Runtime
from tinytorch_core.testing import FakeEntryPoint, plugin_module


def test_what_a_plugin_prints_while_loading_goes_to_stderr(capsys):
    def declare(declare):
        print("hello from a chatty plugin")

    module = plugin_module("chatty", tinytorch_declare_stage=declare)
    runtime = Runtime([FakeEntryPoint("chatty", module, distribution="chatty", version="0.1")], environ={})
    runtime.load()
    captured = capsys.readouterr()
    assert "hello from a chatty plugin" not in captured.out and "hello from a chatty plugin" in captured.err


def test_an_op_without_a_backward_is_named_when_a_gradient_reaches_it():
    class Triple(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

    x = tt.tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(GraphError, match="Triple defines no backward, but a gradient reached its output"):
        Triple.apply(x).sum().backward()
