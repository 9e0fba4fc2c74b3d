"""The plugin host: discovers plugins, isolates their failures, and resolves symbols.

All host state lives in a ``Runtime``. ``default_runtime()`` is created on first use
and loads every plugin once; tests build their own runtimes (optionally from fake
entry points) so that no registration leaks from one test into another.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata as metadata
import os
import re
import threading
import warnings
from dataclasses import dataclass, field

import pluggy

from .. import catalog
from . import hookspecs
from .errors import (
    BlockedStageError,
    BrokenStageError,
    InactiveStageError,
    MissingStageError,
    PluginLoadError,
    PluginWarning,
    RegistrationError,
)
from .registry import (
    CommandRegistrar,
    MilestoneRegistrar,
    OpEntry,
    Registrar,
    StagedRegistrations,
)

LOADED, FAILED, BLOCKED, INACTIVE, NOT_INSTALLED = "loaded", "failed", "blocked", "inactive", "not installed"
_STAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_HOOK_NAMES = {
    name for name in dir(hookspecs) if name.startswith("tinytorch_") and callable(getattr(hookspecs, name))
}


@dataclass
class PluginRecord:
    """One plugin (entry point) and what became of it."""

    name: str
    distribution: str
    version: str
    target: str
    status: str = "pending"
    reason: str = ""
    stage: str | None = None
    requires: tuple[str, ...] = ()
    title: str = ""
    order: int | None = None
    ops: list = field(default_factory=list)
    symbols: list = field(default_factory=list)
    milestones: list = field(default_factory=list)
    commands: list = field(default_factory=list)

    def describe(self) -> str:
        return f"plugin '{self.name}' ({self.distribution} {self.version})"


def _fatal(exc: BaseException) -> bool:
    """Whether a plugin's exception must propagate instead of being isolated.

    Only ``KeyboardInterrupt`` (the user's Ctrl-C) does. ``SystemExit``, ``GeneratorExit`` and any
    other ``BaseException`` a plugin raises (``sys.exit()`` at import, say) is that plugin's
    failure: the host records it and carries on with the others.
    """
    return isinstance(exc, KeyboardInterrupt)


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of what a plugin raised, even when its ``__str__`` or ``__repr__`` raises too."""
    name = type(exc).__name__
    try:
        if isinstance(exc, SystemExit):
            return f"SystemExit({exc.code!r}) (the plugin called sys.exit)"
        text = str(exc)
    except BaseException as inner:  # a hostile exception: say so instead of crashing on it
        if _fatal(inner):
            raise
        return f"{name} (its message could not be shown: {type(inner).__name__})"
    return f"{name}: {text}" if text else name


def _split_list(value: str) -> set[str]:
    return {item for item in re.split(r"[,\s]+", value.strip()) if item}


def _distribution_of(ep) -> tuple[str, str]:
    try:
        dist = getattr(ep, "dist", None)
        if dist is None:
            return "unknown distribution", "?"
        return str(dist.metadata["Name"] or dist.name), str(dist.version)
    except BaseException as exc:  # broken metadata must not stop the host from naming the plugin
        if _fatal(exc):
            raise
        return "unknown distribution", "?"


def _normalised(distribution: str) -> str:
    """PEP 503 normalised distribution name (``Tinytorch_Spatial`` -> ``tinytorch-spatial``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def core_version() -> str:
    try:
        return metadata.version("tinytorch-core")
    except metadata.PackageNotFoundError:
        return "0+source"


class Runtime:
    """Plugin manager, registries and stage states for one process (or one test)."""

    def __init__(self, entry_points=None, *, environ=None):
        self._entry_points = entry_points  # None: discover installed distributions
        self._environ = os.environ if environ is None else environ
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
        self.ops: dict[str, OpEntry] = {}
        self.symbols: dict[str, dict] = {ns: {} for ns in catalog.NAMESPACES if ns != "ops"}
        self.milestones: dict = {}
        self.commands: dict = {}
        #: every plugin failure of this load, in order: (record, the original exception or None)
        self.failures: list[tuple[PluginRecord, BaseException | None]] = []
        #: curriculum stages two unchosen providers claimed: nobody gets them (stage -> who)
        self._contested: dict[str, str] = {}
        #: every installed plugin that declared a curriculum stage, chosen or not (stage -> records)
        self.candidates: dict[str, list[PluginRecord]] = {}
        self._strict_error: PluginLoadError | None = None

    # ---- loading --------------------------------------------------------------------------
    @property
    def strict(self) -> bool:
        return self._environ.get("TINYTORCH_STRICT_PLUGINS", "") not in ("", "0")

    def load(self) -> "Runtime":
        """Load every plugin once; every later call returns the same state.

        In strict mode (``TINYTORCH_STRICT_PLUGINS=1``) every call, the first and each later one,
        raises the same ``PluginLoadError`` while a plugin has failed: loading always runs to the
        end and records every plugin's state first, so the error, ``stage_status`` and the
        ``tinytorch stages`` table agree on what is installed and what is broken.
        """
        if not self._loaded or self._loading:  # not loaded yet, or another thread is loading
            with self._load_lock:
                if not self._loaded:
                    self._load_once()
        self.raise_if_strict()
        return self

    def _load_once(self) -> None:
        self._loading = True  # before _loaded: other threads then wait for the lock
        self._loaded = True
        try:
            self._load_all()
        except BaseException:  # interrupted (Ctrl-C): the next access starts again from scratch
            self._reset()
            raise
        finally:
            self._loading = False
        if not self.strict:
            for record, _exc in self.failures:
                warnings.warn(self._failure_message(record), PluginWarning, stacklevel=3)

    def strict_error(self) -> PluginLoadError | None:
        """The ``PluginLoadError`` strict mode raises (the same object every time), or None."""
        if not (self.strict and self.failures and self._loaded):
            return None
        if self._strict_error is None:
            record, exc = self.failures[0]
            message = self._failure_message(record)
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

    def _load_all(self) -> None:
        from .. import builtin

        self._core_classes = _core_class_attributes()  # plugins register; they never patch these
        core = PluginRecord("core", "tinytorch-core", core_version(), "tinytorch_core.builtin")
        self.plugins["core"] = core
        self.pm.register(builtin, name="core")
        objects = {"core": builtin}
        eps = self._entry_points
        if eps is None:
            eps = metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
        for ep in sorted(eps, key=lambda e: e.name):
            dist, version = _distribution_of(ep)
            record = PluginRecord(ep.name, dist, version, ep.value)
            if ep.name in self.plugins:
                other = self.plugins[ep.name]
                record.status = FAILED
                self.plugins[f"{ep.name}@{dist}"] = record
                self._fail(record, f"uses the entry-point name '{ep.name}' already taken by {other.describe()}")
                continue
            self.plugins[ep.name] = record
            why_blocked = self._blocked_reason(ep.name, dist)
            if why_blocked:
                record.status, record.reason = BLOCKED, why_blocked
                continue
            try:
                obj = ep.load()
                unknown = [n for n in dir(obj) if n.startswith("tinytorch_") and n not in _HOOK_NAMES]
                if unknown:
                    hint = difflib.get_close_matches(unknown[0], sorted(_HOOK_NAMES), n=1)
                    raise RegistrationError(
                        f"unknown hook {unknown[0]}" + (f" (did you mean {hint[0]}?)" if hint else "")
                    )
                self.pm.register(obj, name=ep.name)
                self._refuse_core_patches(record, "when imported")
            except BaseException as exc:  # a broken plugin must never take the others down
                if _fatal(exc):
                    raise
                self._fail(record, f"failed to load '{ep.value}': {describe_exception(exc)}", exc)
                continue
            objects[ep.name] = obj
        for name in objects:
            self._declare(self.plugins[name])
        ordered = sorted(
            (r for r in self.plugins.values() if r.status == "pending"),
            key=lambda r: (r.stage is None, self._stage_rank(r), r.name),
        )
        for record in ordered:
            self._activate(record)

    def _blocked_reason(self, name: str, dist: str) -> str:
        disabled = _split_list(self._environ.get("TINYTORCH_DISABLE_PLUGINS", ""))
        if name in disabled or dist in disabled:
            return "disabled by TINYTORCH_DISABLE_PLUGINS"
        allow = self._environ.get("TINYTORCH_LOAD_PLUGINS")
        if allow is not None and not ({name, dist} & _split_list(allow)):
            return "not listed in TINYTORCH_LOAD_PLUGINS"
        return ""

    def _impls(self, hook_name: str, plugin: str):
        hook = getattr(self.pm.hook, hook_name)
        return [impl for impl in hook.get_hookimpls() if impl.plugin_name == plugin]

    def _declare(self, record: PluginRecord) -> None:
        def declare(name, *, requires=None, title=None, order=None):
            if not isinstance(name, str) or not _STAGE_NAME.match(name):
                raise RegistrationError(
                    f"{record.describe()}: stage name {name!r} must be a Python identifier (it prefixes op names)"
                )
            if requires is not None and (isinstance(requires, str) or not all(isinstance(r, str) for r in requires)):
                raise RegistrationError(f"{record.describe()}: requires= must be a tuple of stage names, got {requires!r}")
            if title is not None and not isinstance(title, str):
                raise RegistrationError(f"{record.describe()}: title= must be a string, got {type(title).__name__}")
            if order is not None and (not isinstance(order, int) or isinstance(order, bool)):
                raise RegistrationError(f"{record.describe()}: order= must be an int, got {order!r}")
            if record.stage is not None:
                raise RegistrationError(f"{record.describe()} declares two stages: {record.stage!r} and {name!r}")
            pkg = catalog.get(name)
            if pkg is not None and pkg.is_stage:
                self._claim_curriculum_stage(name, record)  # raises for a provider that is not chosen
            elif name in self.stages:
                raise RegistrationError(
                    f"stage '{name}' is declared by both {self.stages[name].describe()} and {record.describe()}"
                )
            if pkg is not None:
                if not pkg.is_stage:
                    raise RegistrationError(f"{record.describe()}: '{name}' is not a stage name")
                if requires is not None and tuple(requires) != pkg.requires:
                    raise RegistrationError(
                        f"{record.describe()}: stage '{name}' requires {pkg.requires} in the catalog, "
                        f"not {tuple(requires)}"
                    )
                if order is not None and order != pkg.order:
                    raise RegistrationError(f"{record.describe()}: stage '{name}' has order {pkg.order}")
                record.requires, record.order, record.title = pkg.requires, pkg.order, pkg.title
            else:
                record.requires = tuple(requires) if requires is not None else ("core",)
                record.order, record.title = order, title or name
            record.stage = name
            self.stages[name] = record

        try:
            for impl in self._impls("tinytorch_declare_stage", record.name):
                impl.function(declare=declare)
            self._refuse_core_patches(record, "while declaring its stage")
        except BaseException as exc:
            if _fatal(exc):
                raise
            # keep the stage name on the record (so the stage reads "failed", never "not installed"),
            # but free the stage for nobody: a failed declaration leaves no active stage behind
            if record.stage is not None and self.stages.get(record.stage) is record:
                del self.stages[record.stage]
            self._fail(record, f"failed to declare its stage: {describe_exception(exc)}", exc)

    # ---- who provides a curriculum stage ----------------------------------------------------
    def chosen_provider(self, stage: str) -> str | None:
        """The distribution (or entry-point name) ``TINYTORCH_PROVIDERS=stage=dist,...`` names for ``stage``."""
        for item in _split_list(self._environ.get("TINYTORCH_PROVIDERS", "")):
            key, _, value = item.partition("=")
            if key == stage and value:
                return value
        return None

    def _is_preferred_provider(self, stage: str, record: PluginRecord) -> bool | None:
        """True: the user chose this plugin (or chose none, and it is the reference provider);
        False: the user chose another one; None: no choice was made and it is not the reference."""
        chosen = self.chosen_provider(stage)
        if chosen is not None:
            return chosen in (record.distribution, record.name)
        if record.distribution == catalog.stage(stage).distribution:
            return True
        return None

    def _claim_curriculum_stage(self, stage: str, record: PluginRecord) -> None:
        """One provider per curriculum stage, chosen the same way whatever the entry points are
        called: the one named by ``TINYTORCH_PROVIDERS``, else the reference distribution, else
        the only candidate. Two candidates and no choice: both are refused, naming each other."""
        how = f"choose one with TINYTORCH_PROVIDERS={stage}=<distribution>"
        self.candidates.setdefault(stage, []).append(record)
        mine = self._is_preferred_provider(stage, record)
        if mine is False:
            raise RegistrationError(
                f"{record.describe()} provides stage '{stage}', but TINYTORCH_PROVIDERS chooses "
                f"{self.chosen_provider(stage)!r} for it"
            )
        current = self.stages.get(stage)
        if current is None:
            if mine is None and stage in self._contested:
                raise RegistrationError(
                    f"{record.describe()} provides stage '{stage}', which {self._contested[stage]} "
                    f"also provide; {how}"
                )
            return
        theirs = self._is_preferred_provider(stage, current)
        if mine and not theirs:  # the chosen or reference provider takes the stage back
            del self.stages[stage]
            self._fail(current, f"provides stage '{stage}', which {record.describe()} provides as the "
                                f"{'chosen' if self.chosen_provider(stage) else 'reference'} provider; {how}")
            return
        if theirs and not mine:
            raise RegistrationError(
                f"{record.describe()} provides stage '{stage}', which {current.describe()} provides as the "
                f"{'chosen' if self.chosen_provider(stage) else 'reference'} provider; {how}"
            )
        # neither (or, impossibly, both) preferred: no silent pick by entry-point name
        del self.stages[stage]
        self._contested[stage] = f"{current.describe()} and {record.describe()}"
        self._fail(current, f"provides stage '{stage}', which {record.describe()} also provides; {how}")
        raise RegistrationError(f"{record.describe()} provides stage '{stage}', which {current.describe()} "
                                f"also provides; {how}")

    def _stage_rank(self, record: PluginRecord, depth: int = 0) -> int:
        if record.order is not None:
            return record.order
        if depth > 20:
            return 10_000
        deps = [self.stages[r] for r in record.requires if r in self.stages]
        return 1 + max((self._stage_rank(d, depth + 1) for d in deps), default=0)

    def _activate(self, record: PluginRecord) -> None:
        for required in record.requires:
            problem = self._requirement_problem(required)
            if problem:
                record.status = INACTIVE
                record.reason = f"requires stage '{required}', {problem}"
                return
        staged = StagedRegistrations()
        registrar = Registrar(record, record.stage, staged)
        calls = (
            ("tinytorch_register_ops", {"registry": registrar}),
            ("tinytorch_register_layers", {"registry": registrar}),
            ("tinytorch_register_milestones", {"register": MilestoneRegistrar(record, staged)}),
            ("tinytorch_cli_commands", {"commands": CommandRegistrar(record, staged)}),
        )
        try:
            for hook_name, kwargs in calls:
                for impl in self._impls(hook_name, record.name):
                    impl.function(**kwargs)
            self._refuse_core_patches(record, "while registering")
            self._commit(record, staged)
        except BaseException as exc:
            if _fatal(exc):
                raise
            self._fail(record, f"failed to register: {describe_exception(exc)}", exc)
            return
        record.status = LOADED

    def _requirement_problem(self, required: str) -> str:
        dep = self.stages.get(required)
        if dep is not None and dep.status == LOADED:
            return ""
        if dep is None:
            dep = self.plugins.get(required)
        if dep is None:
            if catalog.get(required) is not None:
                return f"which is not installed (install: {catalog.install_command(required)})"
            return "which is not installed"
        return f"which is {dep.status}" + (f" ({dep.reason})" if dep.reason else "")

    def _commit(self, record: PluginRecord, staged: StagedRegistrations) -> None:
        # validate everything first so a refused plugin leaves no trace
        seen_ops: dict = {}
        registered_classes = {id(e.function): e for e in self.ops.values()}
        for entry in staged.ops:
            owner = self.ops.get(entry.name) or seen_ops.get(entry.name)
            if owner is not None:
                raise RegistrationError(
                    f"op '{entry.name}' is registered twice: by plugin '{owner.plugin}' "
                    f"({owner.distribution} {owner.version}) and by {record.describe()}"
                )
            other = registered_classes.get(id(entry.function))
            if other is not None:  # registering it again would rename the other plugin's op
                raise RegistrationError(
                    f"{record.describe()} registers {entry.function.__qualname__} as '{entry.name}', but that "
                    f"Function class is already op '{other.name}' of plugin '{other.plugin}'; a Function class "
                    "is registered under one name only (subclass it to register a variant)"
                )
            registered_classes[id(entry.function)] = entry
            seen_ops[entry.name] = entry
        seen_symbols: dict = {}
        for sym in staged.symbols:
            key = (sym.namespace, sym.name)
            owner = self.symbols[sym.namespace].get(sym.name) or seen_symbols.get(key)
            if owner is not None:
                raise RegistrationError(
                    f"{sym.namespace}.{sym.name} is registered twice: by plugin '{owner.plugin}' "
                    f"({owner.distribution} {owner.version}) and by {record.describe()}"
                )
            seen_symbols[key] = sym
        for m in staged.milestones:
            if m.name in self.milestones:
                raise RegistrationError(f"milestone '{m.name}' is registered twice (again by {record.describe()})")
        for c in staged.commands:
            if c.name in self.commands or c.name in _BUILTIN_COMMANDS:
                raise RegistrationError(f"command '{c.name}' is already taken (again by {record.describe()})")
        for entry in staged.ops:
            entry.function.name = entry.name
            self.ops[entry.name] = entry
        for sym in staged.symbols:
            self.symbols[sym.namespace][sym.name] = sym
        for m in staged.milestones:
            self.milestones[m.name] = m
        for c in staged.commands:
            self.commands[c.name] = c
        record.ops = [e.name for e in staged.ops]
        record.symbols = [f"{s.namespace}.{s.name}" for s in staged.symbols]
        record.milestones = [m.name for m in staged.milestones]
        record.commands = [c.name for c in staged.commands]

    def _refuse_core_patches(self, record: PluginRecord, when: str) -> None:
        """A plugin that changed core's classes (``Tensor.__add__ = ...``) could make every op drop
        its gradient: undo the change and refuse the plugin, naming what it changed."""
        patched = _undo_changes(self._core_classes)
        if patched:
            raise RegistrationError(
                f"{record.describe()} changed core's classes {when} ({', '.join(patched)}); the change "
                "was undone. Plugins register ops and layers through the hooks; they never patch Tensor"
            )

    def _fail(self, record: PluginRecord, reason: str, exc: BaseException | None = None) -> None:
        """Record a plugin's failure; ``load`` warns (or, strict, raises) once every plugin is done."""
        record.status, record.reason = FAILED, reason
        with contextlib.suppress(Exception):
            if self.pm.get_plugin(record.name) is not None and record.name != "core":
                self.pm.unregister(name=record.name)
        self.failures.append((record, exc))

    def _failure_message(self, record: PluginRecord) -> str:
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
            if _normalised(record.distribution) == _normalised(pkg.distribution):
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
                stage = name.split("::")[0]
                raise self._unavailable("ops", name.split("::")[1], qualified=name, stage_hint=stage)
            return entry
        owner = catalog.stage_providing("ops", name)
        if owner is not None and f"{owner.name}::{name}" in self.ops:
            # a short name is the curriculum's: a third-party op of that name needs its qualified name
            return self.ops[f"{owner.name}::{name}"]
        matches = [e for e in self.ops.values() if e.short_name == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AttributeError(
                f"op '{name}' is ambiguous: {[m.name for m in matches]}; use its qualified name"
            )
        raise self._unavailable("ops", name)

    def resolve(self, namespace: str, name: str):
        """``tinytorch_core.<namespace>.<name>``: a registered symbol, or a precise error."""
        if namespace == "ops":
            return self.op(name).call
        self.load()
        entry = self.symbols[namespace].get(name)
        if entry is not None:
            return entry.obj
        raise self._unavailable(namespace, name)

    def names(self, namespace: str) -> list[str]:
        self.load()
        if namespace == "ops":
            return sorted({e.short_name for e in self.ops.values()})
        return sorted(self.symbols[namespace])

    def _unavailable(self, namespace: str, name: str, qualified: str | None = None, stage_hint=None):
        shown = qualified or f"tinytorch_core.{namespace}.{name}"
        pkg = catalog.stage_providing(namespace, name)
        stage = pkg.name if pkg is not None else stage_hint
        if stage is not None and (pkg is not None or stage in self.stages or catalog.get(stage)):
            status, record = self.stage_status(stage)
            if status == NOT_INSTALLED:
                return MissingStageError.for_symbol(shown, stage)
            if status == FAILED:
                return BrokenStageError(
                    f"{shown} comes from stage '{stage}', which is installed ({record.distribution} "
                    f"{record.version}) but broken: it {record.reason}",
                    stage=stage,
                    symbol=shown,
                )
            if status == BLOCKED:
                return BlockedStageError(
                    f"{shown} comes from stage '{stage}', which is installed but {record.reason}",
                    stage=stage,
                    symbol=shown,
                )
            if status == INACTIVE:
                return InactiveStageError(
                    f"{shown} comes from stage '{stage}', which is installed but inactive: it {record.reason}",
                    stage=stage,
                    symbol=shown,
                )
            if pkg is not None:
                return AttributeError(
                    f"{shown}: stage '{stage}' is loaded but did not register it (a bug in {record.describe()})"
                )
        known = set(self.names(namespace)) | set(catalog.names_in(namespace))
        hint = difflib.get_close_matches(name, sorted(known), n=3)
        suggestion = f"; did you mean {', '.join(hint)}?" if hint else ""
        unavailable = [
            f"{r.name} ({r.status}: {r.reason})" for r in self.plugins.values() if r.status in (FAILED, INACTIVE, BLOCKED)
        ]
        note = f". Installed plugins that are not loaded, one of which may provide it: {'; '.join(unavailable)}" if unavailable else ""
        return AttributeError(f"{shown}: no stage provides '{name}'{suggestion}{note}")


_BUILTIN_COMMANDS = {"stages", "plugins", "check", "new-plugin"}

_ABSENT = object()


def _core_class_attributes() -> dict:
    """Every attribute of core's classes, as loading found them."""
    from ..function import Function
    from ..module import Module, Parameter
    from ..tensor import Tensor

    return {cls: dict(vars(cls)) for cls in (Tensor, Parameter, Function, Module)}


def _undo_changes(recorded: dict) -> list[str]:
    """Put back every attribute of the recorded classes that was replaced, added or deleted since;
    returns their names (``Tensor.__add__``)."""
    changed = []
    for cls, attributes in recorded.items():
        now = vars(cls)
        for name in sorted(set(attributes) | set(now)):
            before, after = attributes.get(name, _ABSENT), now.get(name, _ABSENT)
            if before is after:
                continue
            changed.append(f"{cls.__name__}.{name}")
            if before is _ABSENT:
                delattr(cls, name)
            else:
                setattr(cls, name, before)
    return changed

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
