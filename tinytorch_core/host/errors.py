"""Errors and warnings of the plugin host. Each unavailable-stage case has its own class and message."""

from __future__ import annotations

from .. import catalog


class StageUnavailableError(ImportError):
    """A symbol's stage cannot be used. Subclasses say why.

    An ImportError rather than an AttributeError: ``from tinytorch_core.nn import Conv2d``
    turns any AttributeError into a bare "cannot import name", losing the install command.
    (Inheriting from both is impossible on Python >= 3.10: their C layouts conflict.)
    """

    def __init__(self, message: str, *, stage: str | None = None, symbol: str | None = None):
        super().__init__(message)
        self.stage = stage
        self.symbol = symbol

    def __str__(self) -> str:  # AttributeError/ImportError would otherwise format oddly
        return self.args[0] if self.args else ""


def _stage_words(stage: str) -> str:
    pkg = catalog.get(stage)
    if pkg is not None and pkg.is_stage:
        return f"stage {pkg.order} '{stage}' ({pkg.title}; distribution {pkg.distribution})"
    return f"stage '{stage}'"


class MissingStageError(StageUnavailableError):
    """The stage that provides the symbol is not installed."""

    @classmethod
    def for_symbol(cls, symbol: str, stage: str) -> "MissingStageError":
        return cls(
            f"{symbol} arrives in {_stage_words(stage)}, which is not installed. "
            f"Install it from the repository root with: {catalog.install_command(stage)}",
            stage=stage,
            symbol=symbol,
        )


class BrokenStageError(StageUnavailableError):
    """The stage is installed but its plugin failed to load or register."""


class BlockedStageError(StageUnavailableError):
    """The stage is installed but disabled by TINYTORCH_DISABLE_PLUGINS / TINYTORCH_LOAD_PLUGINS."""


class InactiveStageError(StageUnavailableError):
    """The stage is installed but a prerequisite stage is missing, broken or blocked."""


class StageStillLoadingError(StageUnavailableError):
    """Plugin code (an import or a hook) reached a stage's symbol while plugins are still loading."""


class RegistrationError(ValueError):
    """A plugin registered something the host refuses (duplicate, no backward, no samples...)."""


class PluginLoadError(RuntimeError):
    """Raised instead of a warning when TINYTORCH_STRICT_PLUGINS=1.

    Chained (``__cause__``) from what the plugin raised, ``SystemExit`` included. ``record`` is the
    first failed plugin's ``PluginRecord``, ``records`` every failed one.
    """

    def __init__(self, message: str, *, record=None, records=()):
        super().__init__(message)
        self.record = record
        self.records = list(records)


class PluginWarning(UserWarning):
    """A plugin could not be used; the rest of the framework still works."""
