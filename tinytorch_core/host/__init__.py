"""The plugin host: hookspecs, registry, runtime, errors."""

from .errors import (
    BlockedStageError,
    BrokenStageError,
    InactiveStageError,
    MissingStageError,
    PluginLoadError,
    PluginWarning,
    RegistrationError,
    StageUnavailableError,
)
from .hookspecs import ENTRY_POINT_GROUP, hookimpl, hookspec
from .registry import Milestone, OpEntry, SymbolEntry
from .runtime import PluginRecord, Runtime, default_runtime, use_runtime
from .samples import Sample

__all__ = [
    "BlockedStageError", "BrokenStageError", "ENTRY_POINT_GROUP", "InactiveStageError", "Milestone",
    "MissingStageError", "OpEntry", "PluginLoadError", "PluginRecord", "PluginWarning", "RegistrationError",
    "Runtime", "Sample", "StageUnavailableError", "SymbolEntry", "default_runtime", "hookimpl", "hookspec",
    "use_runtime",
]
