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


def _split_list(value: str) -> set[str]:
    return {item for item in re.split(r"[,\s]+", value.strip()) if item}


def _distribution_of(ep) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown distribution", "?"
    return dist.metadata["Name"] or dist.name, dist.version


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
        self._loaded = False
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.stages: dict[str, PluginRecord] = {}
        self.ops: dict[str, OpEntry] = {}
        self.symbols: dict[str, dict] = {ns: {} for ns in catalog.NAMESPACES if ns != "ops"}
        self.milestones: dict = {}
        self.commands: dict = {}

    # ---- loading --------------------------------------------------------------------------
    @property
    def strict(self) -> bool:
        return self._environ.get("TINYTORCH_STRICT_PLUGINS", "") not in ("", "0")

    def load(self) -> "Runtime":
        if self._loaded:
            return self
        self._loaded = True
        from .. import builtin

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
            except Exception as exc:  # a broken plugin must never take the others down
                self._fail(record, f"failed to load '{ep.value}': {type(exc).__name__}: {exc}", exc)
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
        return self

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
            if record.stage is not None:
                raise RegistrationError(f"{record.describe()} declares two stages: {record.stage!r} and {name!r}")
            if name in self.stages:
                raise RegistrationError(
                    f"stage '{name}' is declared by both {self.stages[name].describe()} and {record.describe()}"
                )
            pkg = catalog.get(name)
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
        except Exception as exc:
            self._fail(record, f"failed to declare its stage: {type(exc).__name__}: {exc}", exc)
            if record.stage is not None and self.stages.get(record.stage) is record:
                del self.stages[record.stage]

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
            self._commit(record, staged)
        except Exception as exc:
            self._fail(record, f"failed to register: {type(exc).__name__}: {exc}", exc)
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
        for entry in staged.ops:
            owner = self.ops.get(entry.name) or seen_ops.get(entry.name)
            if owner is not None:
                raise RegistrationError(
                    f"op '{entry.name}' is registered twice: by plugin '{owner.plugin}' "
                    f"({owner.distribution} {owner.version}) and by {record.describe()}"
                )
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

    def _fail(self, record: PluginRecord, reason: str, exc: BaseException | None = None) -> None:
        record.status, record.reason = FAILED, reason
        with contextlib.suppress(Exception):
            if self.pm.get_plugin(record.name) is not None and record.name != "core":
                self.pm.unregister(name=record.name)
        stage = record.stage or record.name
        message = (
            f"tinytorch: {record.describe()} for stage '{stage}' {reason}. "
            "Everything else still works; set TINYTORCH_STRICT_PLUGINS=1 to raise instead."
        )
        if self.strict:
            raise PluginLoadError(message) from exc
        warnings.warn(message, PluginWarning, stacklevel=3)

    # ---- queries ----------------------------------------------------------------------------
    def stage_status(self, stage: str) -> tuple[str, PluginRecord | None]:
        self.load()
        record = self.stages.get(stage) or self.plugins.get(stage)
        if record is None:
            return NOT_INSTALLED, None
        return record.status, record

    def op(self, name: str) -> OpEntry:
        """An op by qualified (``spatial::conv2d``) or short (``conv2d``) name."""
        self.load()
        if "::" in name:
            entry = self.ops.get(name)
            if entry is None:
                stage = name.split("::")[0]
                raise self._unavailable("ops", name.split("::")[1], qualified=name, stage_hint=stage)
            return entry
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

_default: Runtime | None = None


def default_runtime() -> Runtime:
    """The process-wide runtime, created and loaded on first use."""
    global _default
    if _default is None:
        _default = Runtime()
    return _default.load()


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
