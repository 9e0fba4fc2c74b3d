"""Anomaly mode names the op, its plugin and the user's line for the first NaN/Inf."""

import subprocess
import sys

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import AnomalyError, Tensor, detect_anomaly

# No RuntimeWarning filter here: this suite's config makes NumPy's RuntimeWarnings errors, and
# anomaly mode must report the clear AnomalyError without one firing first.


def test_forward_nan_names_op_plugin_and_user_line():
    tt.default_runtime()  # ops are described with their registering plugin
    x = Tensor([-1.0, 4.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        x.log()  # log(-1) is NaN
    message = str(info.value)
    assert "core::log" in message and "plugin 'core'" in message
    assert "1 NaN" in message and "from finite inputs" in message
    assert "test_core_anomaly.py" in message and "test_forward_nan_names_op_plugin_and_user_line" in message


def test_backward_inf_names_the_op_and_its_forward_site():
    x = Tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        y = x.sqrt()  # finite forward, infinite gradient at 0
        with pytest.raises(AnomalyError, match=r"backward of op core::sqrt.*1 Inf.*forward was called at .*test_core_anomaly.py"):
            y.sum().backward()


def test_non_finite_input_is_reported_as_coming_in():
    with detect_anomaly(), pytest.raises(AnomalyError, match="already held non-finite"):
        Tensor([np.nan, 1.0]) * 2.0


def test_off_by_default_and_restored_after_the_block():
    with detect_anomaly():
        pass
    y = Tensor([-1.0]).log()  # no error outside the block
    assert np.isnan(y.data).all()


def test_environment_variable_turns_it_on():
    code = "import tinytorch_core as tt\ntt.Tensor([-1.0]).log()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"TINYTORCH_DETECT_ANOMALY": "1", "PATH": ""})
    assert result.returncode != 0 and "AnomalyError" in result.stderr and "core::log" in result.stderr


@pytest.mark.parametrize("make", [
    lambda: Tensor([np.inf, -np.inf]).mean(),
    lambda: Tensor([3e38, 3e38]).sum(),
    lambda: Tensor([3e38, -3e38]).var(),
], ids=["mean", "sum-overflow", "var-overflow"])
def test_a_reduction_to_one_number_is_checked_too(make):
    """A reduction's forward returns a NumPy scalar, not an array: its NaN/Inf is still caught."""
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"produced 1 (NaN|Inf) in output 0 \(shape \(\)\)"):
        make()


ANOMALIES = {
    "forward": "tt.Tensor([-1.0]).log()",
    "backward": "x = tt.Tensor([0.0, 4.0], requires_grad=True)\ny = x.sqrt()\ny.sum().backward()",
    "reduction": "tt.Tensor([float('inf'), -float('inf')]).mean()",
    "plugin-op": "tt.ops.log_softmax(tt.Tensor([[-float('inf'), -float('inf')]], requires_grad=True), axis=-1)",
}


@pytest.mark.parametrize("code", ANOMALIES.values(), ids=ANOMALIES.keys())
def test_no_numpy_warning_comes_before_the_anomaly_error(code):
    """Run as a learner would, with every warning an error: the first thing seen is the AnomalyError."""
    if "tt.ops" in code and tt.default_runtime().stage_status("nn")[0] != "loaded":
        pytest.skip("stage nn is not installed")
    result = subprocess.run([sys.executable, "-W", "error", "-c", "import tinytorch_core as tt\n" + code],
                            capture_output=True, text=True, env={"TINYTORCH_DETECT_ANOMALY": "1", "PATH": ""})
    assert result.returncode != 0
    assert "RuntimeWarning" not in result.stderr
    assert "tinytorch_core.anomaly.AnomalyError" in result.stderr.splitlines()[-1]
