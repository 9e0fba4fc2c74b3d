"""Anomaly mode names the op, its plugin and the user's line for the first NaN/Inf."""

import subprocess
import sys

import numpy as np
import pytest

import tinytorch_core as tt
from tinytorch_core import AnomalyError, Tensor, detect_anomaly

# NumPy's own RuntimeWarnings (errors under this suite's config) would fire before the check
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


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
