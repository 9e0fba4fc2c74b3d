"""Numerical verification: ``gradcheck`` (float64 central differences) and ``opcheck``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import array_of
from .function import Function
from .grad_mode import no_grad
from .host.samples import Sample
from .tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences (or is missing)."""


class OpCheckError(AssertionError):
    """An op failed its registration checks or a gradcheck on one of its samples."""


def central_difference(objective, array, index, eps: float = 1e-6) -> float:
    """``(f(a + eps) - f(a - eps)) / (2 eps)`` for entry ``index`` of ``array``: the entry is
    changed in place, ``objective()`` (a float) is evaluated at both points, and the entry is
    restored. The one finite-difference step every gradient check here is built on."""
    keep = array[index]
    array[index] = keep + eps
    plus = objective()
    array[index] = keep - eps
    minus = objective()
    array[index] = keep
    return (plus - minus) / (2 * eps)


def _is_float_array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _outputs(result, label):
    outs = result if isinstance(result, tuple) else (result,)
    for o in outs:
        if not isinstance(o, Tensor):
            raise GradcheckError(f"{label}: returned {type(o).__name__}, expected Tensor output(s)")
    return outs


def gradcheck(fn, *args, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
              seed: int = 0, label: str | None = None, **kwargs) -> bool:
    """Compare the gradients ``fn`` computes with central differences, in float64.

    Float ``ndarray`` arguments (and Tensors that require grad) are the differentiable
    inputs; everything else passes through. The scalar checked is ``sum(out * W)`` with
    a fixed random ``W`` per output, so every output element contributes. Raises
    ``GradcheckError`` naming the op, the input and the worst element; returns True.
    """
    label = label or getattr(fn, "__qualname__", repr(fn))
    call_args, inputs = _float64_inputs(args, label)

    # 1. analytic: one forward, then backward of sum(out * W)
    originals = {i: arr.copy() for i, arr in inputs.items()}
    outs = _outputs(fn(*call_args, **kwargs), label)
    _check_inputs_unchanged(label, inputs, originals, call_args)
    weights = _output_weights(label, outs, np.random.default_rng(seed))
    _backward_weighted_sum(outs, weights)

    # 2. numeric: central differences of the same scalar, one input entry at a time
    def objective() -> float:
        with no_grad():
            res = _outputs(fn(*call_args, **kwargs), label)
        return float(sum(np.sum(o.data * w) for o, w in zip(res, weights) if w is not None))

    # 3. compare, input by input
    for i, arr in inputs.items():
        numeric = _numeric_gradient(objective, call_args[i].data, eps)
        _compare_gradient(label, i, call_args[i].grad, numeric, atol, rtol)
    return True


def _float64_inputs(args, label) -> tuple[list, dict[int, np.ndarray]]:
    """The call's arguments with every differentiable one replaced by a float64 Tensor that
    requires grad, and ``{position: that tensor's array}``."""
    call_args = list(args)
    inputs: dict[int, np.ndarray] = {}
    for i, a in enumerate(args):
        if _is_float_array(a) or (isinstance(a, Tensor) and a.requires_grad):
            arr = np.array(array_of(a), dtype=np.float64, order="C")  # C order: perturbed through reshape(-1) views
            inputs[i] = arr
            call_args[i] = Tensor(arr, requires_grad=True, dtype=np.float64)
    if not inputs:
        raise GradcheckError(f"{label}: no differentiable (float ndarray) argument to check")
    return call_args, inputs


def _check_inputs_unchanged(label, inputs, originals, call_args) -> None:
    for i, arr in inputs.items():
        if not np.array_equal(arr, originals[i]) or not np.array_equal(call_args[i].data, originals[i]):
            raise GradcheckError(f"{label}: forward modified its input {i} in place")


def _output_weights(label, outs, rng) -> list:
    """A random weight array per float output (None for the others, which are not checked);
    a float output must stay float64 and carry a gradient."""
    weights = []
    for k, o in enumerate(outs):
        if o.data.dtype.kind != "f":
            weights.append(None)
            continue
        if o.data.dtype != np.float64:
            raise GradcheckError(
                f"{label}: output {k} is {o.data.dtype} for float64 inputs; an op must keep float64"
            )
        if not o.requires_grad:
            raise GradcheckError(
                f"{label}: output {k} carries no gradient although its inputs require grad "
                "(a gradient would silently stop here)"
            )
        weights.append(rng.standard_normal(o.data.shape))
    if all(w is None for w in weights):  # integer outputs only: nothing would reach the inputs
        raise GradcheckError(f"{label}: returned only {', '.join(str(o.data.dtype) for o in outs)} output(s) for "
                             "float64 inputs; a differentiable op returns a floating-point output to check")
    return weights


def _backward_weighted_sum(outs, weights) -> None:
    """Backward of ``sum(out * W)`` over the checked outputs (one output: seed it with W)."""
    live = [(o, w) for o, w in zip(outs, weights) if w is not None]
    if len(live) == 1:
        live[0][0].backward(live[0][1])
        return
    total = None
    for o, w in live:
        term = (o * w).sum()
        total = term if total is None else total + term
    total.backward()


def _numeric_gradient(objective, array: np.ndarray, eps: float) -> np.ndarray:
    """d objective / d array by central differences, entry by entry (``array`` is changed in
    place and restored)."""
    numeric = np.zeros_like(array)
    flat, num_flat = array.reshape(-1), numeric.reshape(-1)
    for j in range(flat.size):
        num_flat[j] = central_difference(objective, flat, j, eps)
    return numeric


def _compare_gradient(label, i, grad, numeric, atol, rtol) -> None:
    shape = numeric.shape
    if grad is None:
        if np.any(np.abs(numeric) > atol):
            raise GradcheckError(
                f"{label}: input {i} {shape} received no gradient, but finite differences "
                f"say it matters (max |d| = {np.abs(numeric).max():.3g})"
            )
        return
    analytic = grad.data
    if analytic.shape != shape:
        raise GradcheckError(f"{label}: gradient of input {i} has shape {analytic.shape}, expected {shape}")
    if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
        err = np.abs(analytic - numeric)
        worst = np.unravel_index(np.argmax(err), err.shape)
        raise GradcheckError(
            f"{label}: gradient of input {i} {shape} does not match finite differences: "
            f"max abs error {err.max():.3g} at index {tuple(int(w) for w in worst)} "
            f"(analytic {analytic[worst]:.6g}, numeric {numeric[worst]:.6g})"
        )


@dataclass(frozen=True)
class OpCheckReport:
    name: str
    plugin: str
    samples_checked: int


def opcheck(name: str, runtime=None, seed: int = 0, **tolerances) -> OpCheckReport:
    """Registration checks plus a gradcheck of every registered sample of op ``name``."""
    from .host.runtime import default_runtime

    rt = runtime or default_runtime()
    entry = rt.op(name)
    fn = entry.function
    if not (isinstance(fn, type) and issubclass(fn, Function)):
        raise OpCheckError(f"{entry.name}: not a Function subclass")
    if entry.differentiable and fn.backward is Function.backward:
        raise OpCheckError(f"{entry.name}: differentiable but defines no backward")
    if entry.samples is None:
        if entry.differentiable:
            raise OpCheckError(f"{entry.name}: differentiable but registered without samples")
        return OpCheckReport(entry.name, entry.plugin, 0)
    samples = list(entry.samples(np.random.default_rng(seed)))
    if not samples:
        raise OpCheckError(f"{entry.name}: its samples callable yielded no sample")
    for k, sample in enumerate(samples):
        if not isinstance(sample, Sample):
            raise OpCheckError(f"{entry.name}: its samples callable yielded {type(sample).__name__} {sample!r:.60} "
                               f"as sample {k}, not a Sample(*args, **kwargs)")
        label = f"{entry.name} sample {k} {sample.describe()}"
        if entry.differentiable:
            try:
                gradcheck(entry.call, *sample.args, label=label, seed=seed + k, **tolerances, **sample.kwargs)
            except GradcheckError as exc:
                raise OpCheckError(str(exc)) from None
        else:
            entry.call(*sample.args, **sample.kwargs)
    return OpCheckReport(entry.name, entry.plugin, len(samples))


class _Distribution:
    def __init__(self, name: str, version: str):
        self.name = name
        self.version = version
        self.metadata = {"Name": name}


class FakeEntryPoint:
    """An in-memory entry point for host tests: ``load()`` returns ``target`` (or calls it when
    ``call=True``, so a test can make loading raise)."""

    def __init__(self, name: str, target, *, distribution: str | None = None, version: str = "0.0.test",
                 call: bool = False, value: str | None = None):
        self.name = name
        self.value = value or f"<test plugin {name}>"
        self.group = "tinytorch.stages"
        self.dist = _Distribution(distribution or f"test-plugin-{name}", version)
        self._target = target
        self._call = call

    def load(self):
        return self._target() if self._call else self._target


def plugin_module(name: str, **hooks):
    """A plugin object whose attributes are the given hook implementations (marked for pluggy)."""
    import types

    from .host.hookspecs import hookimpl

    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def time_limit(seconds: float):
    """Context manager: raise ``TimeoutError`` if the block runs longer than ``seconds``
    (for fuzzing loaders that must refuse bad input instead of hanging). Uses SIGALRM, so it
    works in the main thread on POSIX; elsewhere it is a no-op."""
    import contextlib
    import os
    import signal

    @contextlib.contextmanager
    def limit():
        if not hasattr(signal, "setitimer") or os.name != "posix":
            yield
            return

        def on_alarm(signum, frame):
            raise TimeoutError(f"the block ran for more than {seconds} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return limit()


def registered_symbols(stage: str, runtime=None) -> dict:
    """What the plugin of ``stage`` registered, as ``{namespace: sorted names}`` (ops by short
    name), in the catalog's shape; raises AssertionError if the stage is not loaded."""
    from .host.runtime import default_runtime

    rt = runtime or default_runtime()
    status, record = rt.stage_status(stage)
    if status != "loaded":
        raise AssertionError(f"stage '{stage}' is {status}" + (f": {record.reason}" if record else ""))
    registered: dict = {}
    for dotted in record.symbols:
        namespace, name = dotted.split(".", 1)
        registered.setdefault(namespace, []).append(name)
    if record.ops:
        registered["ops"] = [name.split("::", 1)[1] for name in record.ops]
    return {namespace: sorted(names) for namespace, names in registered.items()}


def assert_registers_catalog(stage: str, runtime=None) -> None:
    """The plugin of ``stage`` registers exactly the symbols the catalog lists for it."""
    from . import catalog

    expected = {ns: sorted(names) for ns, names in catalog.stage(stage).symbols.items()}
    actual = registered_symbols(stage, runtime)
    if actual != expected:
        missing = {ns: sorted(set(v) - set(actual.get(ns, ()))) for ns, v in expected.items()}
        extra = {ns: sorted(set(v) - set(expected.get(ns, ()))) for ns, v in actual.items()}
        raise AssertionError(
            f"stage '{stage}' does not register what the catalog lists: missing "
            f"{ {k: v for k, v in missing.items() if v} }, not in the catalog { {k: v for k, v in extra.items() if v} }"
        )


# ---- untrusted files: what a load costs, and files that are not files --------------------------------
_LOAD_IN_CHILD = """
import importlib, json, resource, sys
module, name = sys.argv[1].split(":")
function = importlib.import_module(module)
for part in name.split("."):
    function = getattr(function, part)
path, options = sys.argv[2], json.loads(sys.argv[3])


def peak_bytes():
    # Linux: the peak of this process alone (VmHWM), after the reset below. ru_maxrss would not do:
    # it carries the parent's peak across fork and exec, hiding any growth below it.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit


try:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM to the current resident size
    method = "VmHWM"
except OSError:
    method = "ru_maxrss"  # elsewhere: may hide growth below the peak the parent passed on
before = peak_bytes()
try:
    result = function(path, **options)
    error, message = None, repr(result)[:200]
except Exception as exc:
    error, message = type(exc).__name__, str(exc)
after = peak_bytes()
print(json.dumps({"error": error, "message": message, "growth": after - before, "method": method}))
"""


def load_in_fresh_interpreter(loader: str, path, timeout: float = 10, **options) -> dict:
    """Call ``loader`` (``"package.module:function"`` or ``"...:Class.method"``) on ``path`` in a
    fresh interpreter: ``{"error": class name or None, "message": the error's message or the
    result's repr, "growth": bytes}``, where
    ``growth`` is how much the peak resident memory grew during the call. A loader of untrusted
    files is tested with it: the growth must stay near what the file legitimately holds, and a
    load that hangs (a FIFO) fails by the timeout instead of hanging the test run. POSIX only."""
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _LOAD_IN_CHILD, loader, os.fspath(path), json.dumps(options)],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{loader}({path!r}) crashed its interpreter: {done.stderr}")
    return json.loads(done.stdout)


def special_file(kind: str, folder, name: str = "file") -> str:
    """A path that is not a regular file, for loader tests: ``"fifo"`` (a named pipe ``name`` made
    in ``folder``: opening it for reading blocks), ``"directory"`` (``folder``) or ``"dev_zero"``
    (endless zeros; the test is skipped where it does not exist)."""
    import os

    if kind == "fifo":
        path = os.path.join(folder, name)
        os.mkfifo(path)
        return path
    if kind == "directory":
        return os.fspath(folder)
    if kind == "dev_zero":
        if not os.path.exists("/dev/zero"):
            import pytest

            pytest.skip("no /dev/zero here")
        return "/dev/zero"
    raise ValueError(f"special_file: kind must be 'fifo', 'directory' or 'dev_zero', got {kind!r}")


#: interpreter noise in a fresh interpreter's peak resident memory
LOAD_MEMORY_ALLOWANCE = 8 * 2**20


def assert_load_cost(outcome: dict, legitimate: int = 0) -> None:
    """A load measured by ``load_in_fresh_interpreter`` grew its peak memory by at most 1.2 times
    the data the file legitimately holds (plus interpreter noise)."""
    limit = 1.2 * legitimate + LOAD_MEMORY_ALLOWANCE
    if outcome["growth"] > limit:
        raise AssertionError(f"the load grew peak memory by {outcome['growth'] / 2**20:.0f} MiB, "
                             f"over {limit / 2**20:.0f} MiB")
