"""What keeps a grade honest: the code graded is the provider's own, and the grader is the one
this package wrote.

A learner's plugin is imported into the grading process, so it could pass by borrowing the
reference or by changing the grader. Three checks stand against the easy ways:

- ``reference_code_in``: nothing the provider registered, and nothing its modules hold, comes
  from the stage's reference package (``from tinytorch_spatial import conv2d`` re-exported, or a
  class derived from the reference's);
- ``reference_hidden``: while the suite runs, the reference package cannot be imported (a kernel
  that imports it at call time fails the check that called it);
- ``GraderSnapshot``: the grader's own functions, as they were when this package was imported, are
  still the ones in place after the provider loaded (a plugin that replaces ``_run`` or
  ``run_milestone`` to report a pass is caught);
- ``patched_since_loading``: core's classes and every plugin's op classes are as the host
  committed them (a plugin whose op, once called, replaced nn's ReLU backward is caught, and the
  change undone).

Python runs the provider in-process, so a determined forger can still get around these; they
close the one-line ways.
"""

from __future__ import annotations

import importlib.abc
import sys
import types
from contextlib import contextmanager

from tinytorch_core import catalog
from tinytorch_core.host.records import normalised


def reference_code_in(stage: str, record) -> list[str]:
    """The names of what ``record``'s provider of ``stage`` took from the stage's reference
    package (empty for the reference itself, or for a provider whose code is its own)."""
    reference = catalog.stage(stage)
    if record is None or stage == "core" or normalised(record.distribution) == normalised(reference.distribution):
        return []  # (every op derives from core's Function: core's own provenance cannot be told this way)
    package = reference.package
    borrowed = []
    for entry in record.registered.ops:
        for obj in (entry.function, entry.call):
            if _comes_from(obj, package):
                borrowed.append(f"op {entry.name} ({_qualified(obj)})")
                break
    for entry in record.registered.symbols:
        if _comes_from(entry.obj, package):
            borrowed.append(f"{entry.namespace}.{entry.name} ({_qualified(entry.obj)})")
    own_root = record.target.split(":")[0].split(".")[0]
    for name, module in list(sys.modules.items()):
        if (name == own_root or name.startswith(own_root + ".")) and isinstance(module, types.ModuleType):
            for attribute, value in list(vars(module).items()):
                if _comes_from(value, package):
                    borrowed.append(f"{name}.{attribute} ({_qualified(value)})")
    return sorted(set(borrowed))


def _comes_from(obj, package: str) -> bool:
    """Whether ``obj`` (a module, class or function) is defined in ``package``, or is a class
    derived from one that is."""
    if isinstance(obj, types.ModuleType):
        return _in_package(obj.__name__, package)
    if isinstance(obj, type):
        return any(_in_package(getattr(cls, "__module__", "") or "", package) for cls in obj.__mro__)
    return callable(obj) and _in_package(getattr(obj, "__module__", "") or "", package)


def _in_package(module_name: str, package: str) -> bool:
    return module_name == package or module_name.startswith(package + ".")


def _qualified(obj) -> str:
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", type(obj).__name__)
    return f"{getattr(obj, '__module__', '?')}.{name}"


class _Refuse(importlib.abc.MetaPathFinder):
    """Refuses to import ``package`` (and its submodules) while installed."""

    def __init__(self, package: str, stage: str):
        self.package, self.stage = package, stage

    def find_spec(self, fullname, path=None, target=None):
        if _in_package(fullname, self.package):
            raise ImportError(f"{fullname} is the reference implementation of stage {self.stage}; it cannot be "
                              "imported while a provider of that stage is graded")
        return None


@contextmanager
def reference_hidden(stage: str, record):
    """Inside the block, ``import`` of the stage's reference package fails (for a provider that is
    not the reference itself); its modules come back afterwards."""
    reference = catalog.stage(stage)
    if record is None or normalised(record.distribution) == normalised(reference.distribution) or stage == "core":
        yield
        return
    hidden = {name: module for name, module in sys.modules.items() if _in_package(name, reference.package)}
    for name in hidden:
        del sys.modules[name]
    finder = _Refuse(reference.package, stage)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(hidden)


class GraderSnapshot:
    """The functions and classes of the grader's modules, as they were when taken."""

    def __init__(self, *modules: types.ModuleType):
        self.taken = {module: dict(vars(module)) for module in modules}

    def value(self, module: types.ModuleType, name: str):
        """What ``module.name`` was when the snapshot was taken."""
        return self.taken[module].get(name)

    def changed(self) -> list[str]:
        """``module.name`` of each function or class replaced (or removed) since the snapshot."""
        changed = []
        for module, before in self.taken.items():
            now = vars(module)
            for name, value in before.items():
                if (callable(value) or isinstance(value, type)) and now.get(name) is not value:
                    changed.append(f"{module.__name__}.{name}")
        return changed


def patched_since_loading(runtime) -> list[str]:
    """The names (``ReLUFunction.backward``, ``engine.backward``) of core's and the plugins' op code
    replaced since the host loaded the plugins, each put back as it was (the host's own guard,
    which checks while plugins load, run again)."""
    guard = getattr(runtime, "core_classes", None)
    return guard.undo_changes(code_only=True) if guard is not None else []
