"""How a ``Runtime`` loads its plugins, one step after another:

1. import: every entry point of group ``tinytorch.stages`` (sorted by name) is imported and
   registered with pluggy, after core's own hooks (``builtin.py``); a blocked one is skipped;
2. declare: each plugin says which stage it provides (``tinytorch_declare_stage``), or its
   entry-point name does when it names a curriculum stage;
3. activate, prerequisites first: each plugin's registration hooks run, what they register is
   staged, validated and committed as that plugin's.

A plugin that fails at any step is recorded as failed (``runtime.fail``) and the others carry on.
"""

from __future__ import annotations

import difflib
import importlib.metadata as metadata
import re
import threading

from .. import catalog
from . import hookspecs
from .core_guard import CoreClasses
from .errors import RegistrationError
from .providers import blocked_reason, chosen_provider, claim_curriculum_stage
from .records import BLOCKED, FAILED, INACTIVE, LOADED, PluginRecord, core_version, describe_exception
from .records import distribution_of, is_fatal, normalised
from .registry import CommandRegistrar, MilestoneRegistrar, Registrar, Registrations

_STAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_HOOK_NAMES = sorted(
    name for name in dir(hookspecs) if name.startswith("tinytorch_") and callable(getattr(hookspecs, name))
)
BUILTIN_COMMANDS = {"stages", "plugins", "check", "new-plugin"}


def load_all(runtime) -> None:
    """Import, declare and activate every plugin (core first)."""
    from .. import builtin

    runtime.core_classes = CoreClasses()  # plugins register; they never patch these
    core = PluginRecord("core", "tinytorch-core", core_version(), "tinytorch_core.builtin")
    runtime.plugins["core"] = core
    runtime.pm.register(builtin, name="core")
    imported = [core]
    entry_points = runtime.entry_points
    if entry_points is None:
        entry_points = metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
    for ep in sorted(entry_points, key=lambda e: e.name):
        record = import_plugin(runtime, ep)
        if record is not None:
            imported.append(record)
    for record in imported:
        if record.status != FAILED:  # a squatter that stepped aside for the name's owner
            declare_stage(runtime, record)
    pending = [r for r in runtime.plugins.values() if r.status == "pending"]
    for record in sorted(pending, key=lambda r: (r.stage is None, runtime._stage_rank(r), r.name)):
        activate(runtime, record)


# ---- 1. import ---------------------------------------------------------------------------------
def import_plugin(runtime, ep) -> PluginRecord | None:
    """Import one entry point and register it with pluggy; its record, or None if it will not load."""
    dist, version = distribution_of(ep)
    record = PluginRecord(ep.name, dist, version, ep.value)
    if ep.name in runtime.plugins:
        other = runtime.plugins[ep.name]
        if not owns_name(runtime, ep.name, dist) or owns_name(runtime, ep.name, other.distribution):
            runtime.plugins[f"{ep.name}@{dist}"] = record
            runtime.fail(record, f"uses the entry-point name '{ep.name}' already taken by {other.describe()}")
            return None
        # the name is this distribution's (the catalog's package, or the user's choice): the other steps aside
        runtime.fail(other, f"uses the entry-point name '{ep.name}', which belongs to {dist}")
        runtime.plugins[f"{ep.name}@{other.distribution}"] = other
    runtime.plugins[ep.name] = record
    why_blocked = blocked_reason(runtime.environ, ep.name, dist)
    if why_blocked:
        record.status, record.reason = BLOCKED, why_blocked
        return None
    try:
        plugin = runtime.plugin_worker.run("its import", ep.load)
        check_hook_names(plugin)
        runtime.pm.register(plugin, name=ep.name)
        runtime.core_classes.refuse_changes(record, "when imported")
    except BaseException as exc:  # a broken plugin must never take the others down
        if is_fatal(exc):
            raise
        runtime.fail(record, f"failed to load '{ep.value}': {describe_exception(exc)}", exc)
        return None
    return record


def owns_name(runtime, name: str, distribution: str) -> bool:
    """Whether the entry-point name ``name`` is ``distribution``'s: the one TINYTORCH_PROVIDERS
    chose for it, else the catalog's package of that name (``nn`` is tinytorch-nn's)."""
    chosen = chosen_provider(runtime.environ, name)
    if chosen is not None:
        return chosen in (distribution, normalised(distribution))
    package = catalog.get(name)
    return package is not None and normalised(package.distribution) == normalised(distribution)


def check_hook_names(plugin) -> None:
    """A ``tinytorch_*`` function that is no hook would be silently ignored by pluggy: refuse it.
    (Imported modules such as ``tinytorch_nn`` are callable-free, hence no hooks.)"""
    unknown = [
        n for n in dir(plugin)
        if n.startswith("tinytorch_") and n not in _HOOK_NAMES and callable(getattr(plugin, n, None))
    ]
    if not unknown:
        return
    name = unknown[0]
    if name in hookspecs.RENAMED:
        raise RegistrationError(f"unknown hook {name} (it was renamed: did you mean {hookspecs.RENAMED[name]}?)")
    hint = difflib.get_close_matches(name, _HOOK_NAMES, n=1)
    raise RegistrationError(f"unknown hook {name}" + (f" (did you mean {hint[0]}?)" if hint else ""))


def call_hook(runtime, record: PluginRecord, hook_name: str, **kwargs) -> None:
    """Call one plugin's implementation of ``hook_name`` through pluggy.

    Each plugin is called on its own (a subset caller without the others), not all at once with
    ``pm.hook.<name>()``: what it registers is then staged and committed, or refused, as that
    plugin's, and what it raises (or a block past the time limit: ``worker.py``) is its own
    failure, never its neighbours'.
    """
    runtime.plugin_worker.run(hook_name, hook_caller(runtime, record, hook_name), **kwargs)


def hook_caller(runtime, record: PluginRecord, hook_name: str):
    """The caller of ``hook_name`` that reaches ``record``'s plugin alone."""
    others = [plugin for name, plugin in runtime.pm.list_name_plugin() if name != record.name]
    return runtime.pm.subset_hook_caller(hook_name, remove_plugins=others)


# ---- 2. declare --------------------------------------------------------------------------------
def declare_stage(runtime, record: PluginRecord) -> None:
    """Ask the plugin which stage it provides; a curriculum stage's name may be its entry point's."""

    hook_ended = []  # set once the hook returned or timed out: a late call (from a thread left behind) is refused

    def declare(name, *, requires=None, title=None, order=None):
        if hook_ended and threading.get_ident() != loading_thread:
            raise RegistrationError(f"{record.describe()} called declare() after its tinytorch_declare_stage ended")
        if requires is not None and not isinstance(requires, (str, bytes)):
            requires = tuple(requires) if hasattr(requires, "__iter__") else requires  # a generator, used once
        check_declaration(record, name, requires, title, order)
        take_stage(runtime, record, name, requires, title, order)

    loading_thread = threading.get_ident()
    try:
        try:
            call_hook(runtime, record, "tinytorch_declare_stage", declare=declare)
        finally:
            hook_ended.append(True)
        if record.stage is None and _is_curriculum_stage(record.name):
            declare(record.name)  # the entry-point name is the stage's: nothing to repeat
        runtime.core_classes.refuse_changes(record, "while declaring its stage")
    except BaseException as exc:
        if is_fatal(exc):
            raise
        # keep the stage name on the record (so the stage reads "failed", never "not installed"),
        # but free the stage for nobody: a failed declaration leaves no active stage behind
        if record.stage is not None and runtime.stages.get(record.stage) is record:
            del runtime.stages[record.stage]
        runtime.fail(record, f"failed to declare its stage: {describe_exception(exc)}", exc)


def _is_curriculum_stage(name: str) -> bool:
    pkg = catalog.get(name)
    return pkg is not None and pkg.is_stage


def check_declaration(record: PluginRecord, name, requires, title, order) -> None:
    """The arguments of ``declare(...)`` have the right types, and it is called once."""
    who = record.describe()
    if not isinstance(name, str) or not _STAGE_NAME.match(name):
        raise RegistrationError(f"{who}: stage name {name!r} must be a Python identifier (it prefixes op names)")
    if requires is not None and (isinstance(requires, str) or not all(isinstance(r, str) for r in requires)):
        raise RegistrationError(f"{who}: requires= must be a tuple of stage names, got {requires!r}")
    if title is not None and not isinstance(title, str):
        raise RegistrationError(f"{who}: title= must be a string, got {type(title).__name__}")
    if order is not None and (not isinstance(order, int) or isinstance(order, bool)):
        raise RegistrationError(f"{who}: order= must be an int, got {order!r}")
    if record.stage is not None:
        raise RegistrationError(f"{who} declares two stages: {record.stage!r} and {name!r}")


def take_stage(runtime, record: PluginRecord, name: str, requires, title, order) -> None:
    """Make ``record`` the provider of stage ``name``: a curriculum stage's facts come from the
    catalog (and must agree with any given), a stage of its own from the declaration."""
    pkg = catalog.get(name)
    if pkg is not None and pkg.is_stage:
        claim_curriculum_stage(runtime, name, record)  # raises for a provider that is not chosen
    elif name in runtime.stages:
        raise RegistrationError(f"stage '{name}' is declared by both {runtime.stages[name].describe()} and "
                                f"{record.describe()}")
    if pkg is None:
        record.requires = tuple(requires) if requires is not None else ("core",)
        record.order, record.title = order, title or name
    elif not pkg.is_stage:
        raise RegistrationError(f"{record.describe()}: '{name}' is not a stage name")
    elif requires is not None and tuple(requires) != pkg.requires:
        raise RegistrationError(f"{record.describe()}: stage '{name}' requires {pkg.requires} in the catalog, "
                                f"not {tuple(requires)}")
    elif order is not None and order != pkg.order:
        raise RegistrationError(f"{record.describe()}: stage '{name}' has order {pkg.order}")
    else:
        record.requires, record.order, record.title = pkg.requires, pkg.order, pkg.title
    record.stage = name
    runtime.stages[name] = record


# ---- 3. activate -------------------------------------------------------------------------------
def activate(runtime, record: PluginRecord) -> None:
    """Run the plugin's registration hooks once its prerequisites are loaded; commit or refuse."""
    problem = missing_prerequisite(runtime, record)
    if problem:
        record.status, record.reason = INACTIVE, problem
        return
    staged = Registrations()
    registry = Registrar(record, record.stage, staged)
    calls = (("tinytorch_register_ops", {"registry": registry}), ("tinytorch_register_symbols", {"registry": registry}),
             ("tinytorch_register_milestones", {"register": MilestoneRegistrar(record, staged)}),
             ("tinytorch_cli_commands", {"commands": CommandRegistrar(record, staged)}))

    def register():  # the four hooks as one call of the worker (each call costs a thread hand-over, ~0.1 ms)
        for hook_name, kwargs in calls:
            hook_caller(runtime, record, hook_name)(**kwargs)

    try:
        runtime.plugin_worker.run("its registration hooks", register)
        runtime.core_classes.refuse_changes(record, "while registering")
        check_no_conflicts(runtime, record, staged)
    except BaseException as exc:
        if is_fatal(exc):
            raise
        runtime.fail(record, f"failed to register: {describe_exception(exc)}", exc)
        return
    commit(runtime, record, staged)


def missing_prerequisite(runtime, record: PluginRecord) -> str:
    """Why the plugin cannot be activated yet (``requires stage 'nn', which is failed (...)``), or ``""``."""
    for required in record.requires:
        dep = runtime.stages.get(required)
        if dep is not None and dep.status == LOADED:
            continue
        if dep is None:
            dep = runtime.plugins.get(required)
        if dep is record:
            problem = "which is itself: a stage cannot require itself"
        elif dep is not None:
            problem = f"which is {dep.status}" + (f" ({dep.reason})" if dep.reason else "")
        elif catalog.get(required) is not None:
            problem = f"which is not installed (install: {catalog.install_command(required)})"
        else:
            problem = "which is not installed"
        return f"requires stage '{required}', {problem}"
    return ""


def check_no_conflicts(runtime, record: PluginRecord, staged: Registrations) -> None:
    """Refuse the whole plugin if anything it registered is already taken: a refused plugin
    leaves no trace."""
    _check_ops(runtime, record, staged.ops)
    seen: dict = {}
    for sym in staged.symbols:
        owner = runtime.symbols[sym.namespace].get(sym.name) or seen.get((sym.namespace, sym.name))
        if owner is not None:
            raise RegistrationError(
                f"{sym.namespace}.{sym.name} is registered twice: by plugin '{owner.plugin}' "
                f"({owner.distribution} {owner.version}) and by {record.describe()}"
            )
        seen[(sym.namespace, sym.name)] = sym
    for m in staged.milestones:
        if m.name in runtime.milestones:
            raise RegistrationError(f"milestone '{m.name}' is registered twice (again by {record.describe()})")
    for c in staged.commands:
        if c.name in runtime.commands or c.name in BUILTIN_COMMANDS:
            raise RegistrationError(f"command '{c.name}' is already taken (again by {record.describe()})")


def _check_ops(runtime, record: PluginRecord, entries: list) -> None:
    """An op name is registered once, and a Function class under one name only."""
    by_name = dict(runtime.ops)
    by_class = {id(e.function): e for e in runtime.ops.values()}
    for entry in entries:
        owner = by_name.get(entry.name)
        if owner is not None:
            raise RegistrationError(
                f"op '{entry.name}' is registered twice: by plugin '{owner.plugin}' "
                f"({owner.distribution} {owner.version}) and by {record.describe()}"
            )
        other = by_class.get(id(entry.function))
        if other is not None:  # registering it again would rename the other plugin's op
            raise RegistrationError(
                f"{record.describe()} registers {entry.function.__qualname__} as '{entry.name}', but that "
                f"Function class is already op '{other.name}' of plugin '{other.plugin}'; a Function class "
                "is registered under one name only (subclass it to register a variant)"
            )
        by_name[entry.name] = by_class[id(entry.function)] = entry


def commit(runtime, record: PluginRecord, staged: Registrations) -> None:
    """The plugin's registrations become its own, and reachable by name."""
    for entry in staged.ops:
        # the op's class learns its name and registration: errors and anomaly mode name it
        # (plugin, distribution, version) without asking the host
        entry.function.name = entry.name
        entry.function.registration = entry
    runtime.core_classes.accept(entry.function for entry in staged.ops)
    record.registered = staged
    record.status = LOADED
    runtime.index(record)

