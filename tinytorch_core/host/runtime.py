"""The plugin host: discovers plugins, isolates their failures, and resolves symbols.

All host state lives in a ``Runtime``. ``default_runtime()`` is created on first use
and loads every plugin once; tests build their own runtimes (optionally from fake
entry points) so that no registration leaks from one test into another. How loading
goes, step by step, is ``loading.py``; who provides a contested stage, ``providers.py``;
the errors for names that cannot be used, ``lookup.py``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings

import pluggy

from .. import catalog
from . import hookspecs, loading
from .errors import PluginLoadError, PluginWarning
from .lookup import short_name_index, unavailable
from .namespace import Namespace
from .providers import chosen_provider, malformed_choices
from .records import (  # noqa: F401 - re-exported: the CLI and tests read them from here
    BLOCKED,
    FAILED,
    INACTIVE,
    LOADED,
    NOT_INSTALLED,
    PluginRecord,
    describe_exception,
    normalised,
)
from .registry import OpEntry
from .worker import PluginWorker

#: seconds one plugin's import or hook may run before it is refused (``TINYTORCH_PLUGIN_TIMEOUT``)
DEFAULT_PLUGIN_TIMEOUT = 15.0


class Runtime:
    """Plugin manager, registries and stage states for one process (or one test)."""

    def __init__(self, entry_points=None, *, environ=None):
        self.entry_points = entry_points  # None: discover installed distributions
        self.environ = os.environ if environ is None else environ
        self._inspecting = 0  # inside ``inspecting()``: no strict-mode error
        # one thread loads while the others wait (reentrant: a plugin's import may use the runtime)
        self._load_lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        """Empty state: nothing loaded, nothing registered (also after an interrupted load)."""
        self._loaded = False
        self._loading = False
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.stages: dict[str, PluginRecord] = {}
        # what each plugin registered lives on its record (``record.registered``); these dicts
        # index the loaded plugins' registrations by name (see ``index``)
        self.ops: dict[str, OpEntry] = {}
        self.symbols: dict[str, dict] = {ns: {} for ns in catalog.NAMESPACES if ns != "ops"}
        self.milestones: dict = {}
        self.commands: dict = {}
        self._ops_by_short_name: dict | None = None  # ``tt.ops.relu``: built on first use, reset by ``index``
        #: every plugin failure of this load, in order: (record, the original exception or None)
        self.failures: list[tuple[PluginRecord, BaseException | None]] = []
        #: curriculum stages two unchosen providers claimed: nobody gets them (stage -> who)
        self.contested: dict[str, str] = {}
        #: every installed plugin that declared a curriculum stage, chosen or not (stage -> records)
        self.candidates: dict[str, list[PluginRecord]] = {}
        self._strict_error: PluginLoadError | None = None

    # ---- loading --------------------------------------------------------------------------
    def loading_now(self) -> bool:
        """Whether plugins are being loaded right now (their own code is running)."""
        return self._loading

    @property
    def plugin_timeout(self) -> float:
        """Seconds one plugin's import or hook may run (``TINYTORCH_PLUGIN_TIMEOUT``, default 15)."""
        text = self.environ.get("TINYTORCH_PLUGIN_TIMEOUT", "")
        try:
            seconds = float(text) if text else DEFAULT_PLUGIN_TIMEOUT
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= threading.TIMEOUT_MAX:  # 1e10 would overflow the wait
            warnings.warn(f"TINYTORCH_PLUGIN_TIMEOUT={text!r} is not a number of seconds > 0 and at most "
                          f"{threading.TIMEOUT_MAX:g}; using "
                          f"{DEFAULT_PLUGIN_TIMEOUT:g}", PluginWarning, stacklevel=2)
            seconds = DEFAULT_PLUGIN_TIMEOUT
        return seconds

    @property
    def strict(self) -> bool:
        return self.environ.get("TINYTORCH_STRICT_PLUGINS", "") not in ("", "0")

    def load(self) -> "Runtime":
        """Load every plugin once; every later call returns the same state.

        In strict mode (``TINYTORCH_STRICT_PLUGINS=1``) every call, the first and each later one,
        raises the same ``PluginLoadError`` while a plugin has failed: loading always runs to the
        end and records every plugin's state first, so the error, ``stage_status`` and the
        ``tinytorch stages`` table agree on what is installed and what is broken.
        """
        if not self._loaded or self._loading:  # not loaded yet, or another thread is loading
            if self._loading and threading.get_ident() in self.plugin_worker.idents:
                return self  # a plugin's own code, run for this load: the state as it stands (no deadlock)
            with self._load_lock:
                if not self._loaded:
                    self._load_once()
        self.raise_if_strict()
        return self

    def _load_once(self) -> None:
        self.plugin_worker = PluginWorker(self.plugin_timeout)  # runs each plugin's code, with a time limit
        for item in malformed_choices(self.environ):
            warnings.warn(f"TINYTORCH_PROVIDERS: {item!r} is not stage=distribution; it is ignored", PluginWarning,
                          stacklevel=3)
        self._loading = True  # before _loaded: other threads then wait for the lock
        self._loaded = True
        try:
            with contextlib.redirect_stdout(sys.stderr):  # a plugin that prints must not corrupt `--json` output
                loading.load_all(self)
        except BaseException:  # interrupted (Ctrl-C): the next access starts again from scratch
            self._reset()
            raise
        finally:
            self._loading = False
            self.plugin_worker.close()
        if not self.strict:
            for record, _exc in self.failures:
                warnings.warn(self.failure_message(record), PluginWarning, stacklevel=3)

    def strict_error(self) -> PluginLoadError | None:
        """The ``PluginLoadError`` strict mode raises (the same object every time), or None."""
        if not (self.strict and self.failures and self._loaded):
            return None
        if self._strict_error is None:
            record, exc = self.failures[0]
            message = self.failure_message(record)
            others = [r.describe() for r, _ in self.failures[1:]]
            if others:
                message += f" {len(others)} more plugin(s) failed too: {'; '.join(others)}."
            error = PluginLoadError(message, record=record, records=[r for r, _ in self.failures])
            error.__cause__ = exc
            self._strict_error = error
        return self._strict_error

    def raise_if_strict(self) -> None:
        """Raise the strict-mode ``PluginLoadError`` (unless loading or inspecting)."""
        if not self.failures or self._loading or self._inspecting:  # the usual case: one cheap test
            return
        error = self.strict_error()
        if error is not None:
            raise error.with_traceback(None)

    @contextlib.contextmanager
    def inspecting(self):
        """Read the recorded state without the strict-mode error (``tinytorch stages`` shows what failed)."""
        self._inspecting += 1
        try:
            self.load()
            yield self
        finally:
            self._inspecting -= 1

    def index(self, record: PluginRecord) -> None:
        """Make a committed plugin's registrations reachable by name."""
        registered = record.registered
        self.ops.update((entry.name, entry) for entry in registered.ops)
        for sym in registered.symbols:
            self.symbols[sym.namespace][sym.name] = sym
        self.milestones.update((m.name, m) for m in registered.milestones)
        self.commands.update((c.name, c) for c in registered.commands)
        self._ops_by_short_name = None

    # ---- who provides a stage ---------------------------------------------------------------
    def chosen_provider(self, stage: str) -> str | None:
        """The distribution (or entry-point name) ``TINYTORCH_PROVIDERS=stage=dist,...`` names for ``stage``."""
        return chosen_provider(self.environ, stage)

    def _stage_rank(self, record: PluginRecord, depth: int = 0) -> int:
        if record.order is not None:
            return record.order
        if depth > 20:
            return 10_000
        deps = [self.stages[r] for r in record.requires if r in self.stages]
        return 1 + max((self._stage_rank(d, depth + 1) for d in deps), default=0)

    def fail(self, record: PluginRecord, reason: str, exc: BaseException | None = None) -> None:
        """Record a plugin's failure; ``load`` warns (or, strict, raises) once every plugin is done."""
        record.status, record.reason = FAILED, reason
        with contextlib.suppress(Exception):  # pluggy knows it by name: only if the name is this record's
            if self.plugins.get(record.name) is record and self.pm.get_plugin(record.name) is not None \
                    and record.name != "core":
                self.pm.unregister(name=record.name)
        self.failures.append((record, exc))

    def failure_message(self, record: PluginRecord) -> str:
        stage = self._stage_of(record)
        if self.strict:
            tail = "TINYTORCH_STRICT_PLUGINS=1 makes this an error; unset it to load the other plugins with a warning."
        else:
            tail = "Everything else still works; set TINYTORCH_STRICT_PLUGINS=1 to raise instead."
        return f"tinytorch: {record.describe()} for stage '{stage}' {record.reason}. {tail}"

    def _stage_of(self, record: PluginRecord) -> str:
        """The stage a plugin provides, or would have: declared, else known from its distribution."""
        if record.stage is not None:
            return record.stage
        for pkg in catalog.STAGES:
            if normalised(record.distribution) == normalised(pkg.distribution):
                return pkg.name
        return record.name

    # ---- queries ----------------------------------------------------------------------------
    def stage_status(self, stage: str) -> tuple[str, PluginRecord | None]:
        self.load()
        record = self.stages.get(stage) or self.plugins.get(stage)
        if record is None:  # installed but failed before (or while) declaring its stage
            record = next((r for r in self.plugins.values() if r.status != LOADED and self._stage_of(r) == stage), None)
        if record is None:
            return NOT_INSTALLED, None
        return record.status, record

    def missing_symbols(self, stage: str) -> list[str]:
        """The catalog names of curriculum ``stage`` that its active provider did not register."""
        self.load()
        missing = []
        for namespace, names in catalog.stage(stage).symbols.items():
            for name in names:  # only the stage's provider may register these names (Registrar)
                present = f"{stage}::{name}" in self.ops if namespace == "ops" else name in self.symbols[namespace]
                if not present:
                    missing.append(f"{namespace}.{name}")
        return missing

    def op(self, name: str) -> OpEntry:
        """An op by qualified (``spatial::conv2d``) or short (``conv2d``) name."""
        self.load()
        if "::" in name:
            entry = self.ops.get(name)
            if entry is None:
                stage, short = name.split("::", 1)
                raise unavailable(self, "ops", short, qualified=name, stage_hint=stage)
            return entry
        if self._ops_by_short_name is None:
            self._ops_by_short_name = short_name_index(self.ops)
        entry = self._ops_by_short_name.get(name)
        if entry is None:
            raise unavailable(self, "ops", name)
        if isinstance(entry, list):
            raise AttributeError(f"op '{name}' is ambiguous: {entry}; use its qualified name")
        return entry

    def resolve(self, namespace: str, name: str):
        """``tinytorch_core.<namespace>.<name>``: a registered symbol, or a precise error."""
        if namespace == "ops":
            return self.op(name).call
        self.load()
        entry = self.symbols[namespace].get(name)
        if entry is not None:
            return entry.obj
        raise unavailable(self, namespace, name)

    def names(self, namespace: str) -> list[str]:
        self.load()
        if namespace == "ops":
            return sorted({e.short_name for e in self.ops.values()})
        return sorted(self.symbols[namespace])

    def namespace(self, namespace: str) -> Namespace:
        """``tinytorch_core.<namespace>`` of this runtime: ``runtime.namespace("nn").Linear``."""
        return Namespace(self, namespace)


_default: Runtime | None = None
_default_lock = threading.Lock()


def current_runtime() -> Runtime:
    """The process-wide runtime, created (not loaded) on first use."""
    global _default
    if _default is None:
        with _default_lock:  # two threads asking first still share one runtime
            if _default is None:
                _default = Runtime()
    return _default


def default_runtime() -> Runtime:
    """The process-wide runtime, created and loaded on first use."""
    return current_runtime().load()


@contextlib.contextmanager
def use_runtime(runtime: Runtime):
    """Make ``runtime`` the default inside the block (tests, tools)."""
    global _default
    previous = _default
    _default = runtime
    try:
        yield runtime
    finally:
        _default = previous
