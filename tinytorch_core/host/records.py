"""What the host knows about each plugin, and the small facts it reads off an entry point."""

from __future__ import annotations

import importlib.metadata as metadata
import re
from dataclasses import dataclass, field

from .registry import Registrations

LOADED, FAILED, BLOCKED, INACTIVE, NOT_INSTALLED = "loaded", "failed", "blocked", "inactive", "not installed"


@dataclass
class PluginRecord:
    """One plugin (entry point) and what became of it.

    ``registered`` holds what the plugin registered (its ``OpEntry``/``SymbolEntry``/... objects);
    the runtime's name indexes (``runtime.ops``, ``runtime.symbols``...) are built from it.
    """

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
    registered: Registrations = field(default_factory=Registrations)

    def describe(self) -> str:
        return f"plugin '{self.name}' ({self.distribution} {self.version})"

    # the names of what it registered, as ``tinytorch plugins`` lists them
    @property
    def ops(self) -> list[str]:
        return [entry.name for entry in self.registered.ops]

    @property
    def symbols(self) -> list[str]:
        return [f"{entry.namespace}.{entry.name}" for entry in self.registered.symbols]

    @property
    def milestones(self) -> list[str]:
        return [milestone.name for milestone in self.registered.milestones]

    @property
    def commands(self) -> list[str]:
        return [command.name for command in self.registered.commands]


def is_fatal(exc: BaseException) -> bool:
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
        if is_fatal(inner):
            raise
        return f"{name} (its message could not be shown: {type(inner).__name__})"
    return f"{name}: {text}" if text else name


def split_list(value: str) -> set[str]:
    """The items of an environment variable's list (commas or spaces)."""
    return {item for item in re.split(r"[,\s]+", value.strip()) if item}


def distribution_of(ep) -> tuple[str, str]:
    """(distribution name, version) of an entry point, or placeholders when its metadata is broken."""
    try:
        dist = getattr(ep, "dist", None)
        if dist is None:
            return "unknown distribution", "?"
        return str(dist.metadata["Name"] or dist.name), str(dist.version)
    except BaseException as exc:  # broken metadata must not stop the host from naming the plugin
        if is_fatal(exc):
            raise
        return "unknown distribution", "?"


def normalised(distribution: str) -> str:
    """PEP 503 normalised distribution name (``Tinytorch_Spatial`` -> ``tinytorch-spatial``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def core_version() -> str:
    try:
        return metadata.version("tinytorch-core")
    except metadata.PackageNotFoundError:
        return "0+source"
