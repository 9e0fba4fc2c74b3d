"""Finding what was registered: an op by its short name, and the precise error for a name that
cannot be used (not installed, broken, blocked, inactive, or unknown with a "did you mean")."""

from __future__ import annotations

import difflib

from .. import catalog
from .errors import (BlockedStageError, BrokenStageError, InactiveStageError, MissingStageError,
                     StageStillLoadingError)
from .records import BLOCKED, FAILED, INACTIVE, LOADED, NOT_INSTALLED


def short_name_index(ops: dict) -> dict:
    """Short name -> its ``OpEntry``, or the list of qualified names when it is ambiguous.

    A short name the catalog gives a curriculum stage is that stage's op (a third-party op of
    the same name needs its qualified name); any other short name is the one op that has it.
    """
    by_short: dict = {}
    for entry in ops.values():
        by_short.setdefault(entry.short_name, []).append(entry)
    index = {}
    for short, entries in by_short.items():
        owner = catalog.stage_providing("ops", short)
        curriculum = [e for e in entries if owner is not None and e.stage == owner.name]
        if curriculum:
            index[short] = curriculum[0]
        else:
            index[short] = entries[0] if len(entries) == 1 else [e.name for e in entries]
    return index


def unavailable(runtime, namespace: str, name: str, qualified: str | None = None, stage_hint=None):
    """The error for ``tinytorch_core.<namespace>.<name>`` that no loaded plugin registered."""
    shown = qualified or f"tinytorch_core.{namespace}.{name}"
    pkg = catalog.stage_providing(namespace, name)
    stage = pkg.name if pkg is not None else stage_hint
    if stage is not None and (pkg is not None or stage in runtime.stages or catalog.get(stage)):
        error = _stage_error(runtime, shown, stage, catalog_owned=pkg is not None)
        if error is not None:
            return error
    return _unknown_name_error(runtime, namespace, name, shown)


def _stage_error(runtime, shown: str, stage: str, catalog_owned: bool):
    """Why ``stage``, which should provide ``shown``, does not: one error class per reason."""
    status, record = runtime.stage_status(stage)
    if runtime.loading_now() and status != LOADED:  # the stage may well be installed: it is not loaded *yet*
        return StageStillLoadingError(
            f"{shown} comes from stage '{stage}', which is not loaded yet: plugins are still loading. A "
            "plugin may use another stage's symbols when its own functions run (a forward, a command), "
            f"not at import or while it registers; import them from the stage's package instead "
            f"(tinytorch_{stage}) and declare requires=('{stage}',)",
            stage=stage, symbol=shown,
        )
    if status == NOT_INSTALLED:
        return MissingStageError.for_symbol(shown, stage)
    if status == FAILED:
        return BrokenStageError(
            f"{shown} comes from stage '{stage}', which is installed ({record.distribution} "
            f"{record.version}) but broken: it {record.reason}",
            stage=stage, symbol=shown,
        )
    if status == BLOCKED:
        return BlockedStageError(f"{shown} comes from stage '{stage}', which is installed but {record.reason}",
                                 stage=stage, symbol=shown)
    if status == INACTIVE:
        return InactiveStageError(
            f"{shown} comes from stage '{stage}', which is installed but inactive: it {record.reason}",
            stage=stage, symbol=shown,
        )
    if catalog_owned:
        return AttributeError(f"{shown}: stage '{stage}' is loaded but did not register it (a bug in "
                              f"{record.describe()})")
    return None


def _unknown_name_error(runtime, namespace: str, name: str, shown: str) -> AttributeError:
    """No stage provides ``name``: suggest close names, and list the plugins that are not loaded."""
    known = set(runtime.names(namespace)) | set(catalog.names_in(namespace))
    hint = difflib.get_close_matches(name, sorted(known), n=3)
    suggestion = f"; did you mean {', '.join(hint)}?" if hint else ""
    unavailable_plugins = [
        f"{r.name} ({r.status}: {r.reason})" for r in runtime.plugins.values() if r.status in (FAILED, INACTIVE, BLOCKED)
    ]
    note = ""
    if unavailable_plugins:
        note = f". Installed plugins that are not loaded, one of which may provide it: {'; '.join(unavailable_plugins)}"
    return AttributeError(f"{shown}: no stage provides '{name}'{suggestion}{note}")
