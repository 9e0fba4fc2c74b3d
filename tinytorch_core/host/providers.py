"""Which plugins may load, and which one provides a curriculum stage two plugins offer.

Two environment variables decide: ``TINYTORCH_DISABLE_PLUGINS`` / ``TINYTORCH_LOAD_PLUGINS`` block
plugins by entry-point or distribution name; ``TINYTORCH_PROVIDERS=stage=distribution,...``
chooses a stage's provider (else the catalog's reference distribution, else the only candidate).
"""

from __future__ import annotations

from .. import catalog
from .errors import RegistrationError
from .records import split_list


def blocked_reason(environ, name: str, dist: str) -> str:
    """Why the plugin ``name`` of distribution ``dist`` must not load, and how to let it, or ``""``.
    (The plugin is installed: telling the user to install it would send them the wrong way.)"""
    disabled = split_list(environ.get("TINYTORCH_DISABLE_PLUGINS", ""))
    listed = [n for n in dict.fromkeys((name, dist)) if n in disabled]
    if listed:
        names = " and ".join(f"'{n}'" for n in listed)
        return (f"disabled by TINYTORCH_DISABLE_PLUGINS; to enable it, remove {names} from "
                "TINYTORCH_DISABLE_PLUGINS or unset that variable")
    allow = environ.get("TINYTORCH_LOAD_PLUGINS")
    if allow is not None and not ({name, dist} & split_list(allow)):
        return (f"not listed in TINYTORCH_LOAD_PLUGINS; to enable it, add '{name}' to "
                "TINYTORCH_LOAD_PLUGINS or unset that variable")
    return ""


def chosen_provider(environ, stage: str) -> str | None:
    """The distribution (or entry-point name) ``TINYTORCH_PROVIDERS=stage=dist,...`` names for ``stage``."""
    for item in split_list(environ.get("TINYTORCH_PROVIDERS", "")):
        key, _, value = item.partition("=")
        if key == stage and value:
            return value
    return None


def malformed_choices(environ) -> list:
    """The items of ``TINYTORCH_PROVIDERS`` that are not ``stage=distribution`` (ignored, so said)."""
    return [item for item in split_list(environ.get("TINYTORCH_PROVIDERS", ""))
            if not all(part.strip() for part in item.partition("=")[::2]) or "=" not in item]


def is_preferred(environ, stage: str, record) -> bool | None:
    """True: the user chose this plugin (or chose none, and it is the reference provider);
    False: the user chose another one; None: no choice was made and it is not the reference."""
    chosen = chosen_provider(environ, stage)
    if chosen is not None:
        return chosen in (record.distribution, record.name)
    if record.distribution == catalog.stage(stage).distribution:
        return True
    return None


def claim_curriculum_stage(runtime, stage: str, record) -> None:
    """One provider per curriculum stage, chosen the same way whatever the entry points are
    called: the one named by ``TINYTORCH_PROVIDERS``, else the reference distribution, else
    the only candidate. Two candidates and no choice: both are refused, naming each other.

    Raises ``RegistrationError`` when ``record`` does not get the stage; fails the current
    holder when ``record`` takes it back."""
    how = f"choose one with TINYTORCH_PROVIDERS={stage}=<distribution>"
    runtime.candidates.setdefault(stage, []).append(record)
    mine = is_preferred(runtime.environ, stage, record)
    if mine is False:
        raise RegistrationError(
            f"{record.describe()} provides stage '{stage}', but TINYTORCH_PROVIDERS chooses "
            f"{chosen_provider(runtime.environ, stage)!r} for it"
        )
    current = runtime.stages.get(stage)
    if current is None:
        if mine is None and stage in runtime.contested:
            raise RegistrationError(
                f"{record.describe()} provides stage '{stage}', which {runtime.contested[stage]} also provide; {how}"
            )
        return
    _settle(runtime, stage, record, current, mine, how)


def _settle(runtime, stage: str, record, current, mine: bool | None, how: str) -> None:
    """``record`` and ``current`` both provide ``stage``: the preferred one keeps it; with no
    preference neither does (no silent pick by entry-point name)."""
    theirs = is_preferred(runtime.environ, stage, current)
    kind = "chosen" if chosen_provider(runtime.environ, stage) else "reference"
    if mine and not theirs:  # the chosen or reference provider takes the stage back
        del runtime.stages[stage]
        runtime.fail(current, f"provides stage '{stage}', which {record.describe()} provides as the "
                              f"{kind} provider; {how}")
        return
    if theirs and not mine:
        raise RegistrationError(
            f"{record.describe()} provides stage '{stage}', which {current.describe()} provides as the "
            f"{kind} provider; {how}"
        )
    del runtime.stages[stage]
    runtime.contested[stage] = f"{current.describe()} and {record.describe()}"
    runtime.fail(current, f"provides stage '{stage}', which {record.describe()} also provides; {how}")
    raise RegistrationError(f"{record.describe()} provides stage '{stage}', which {current.describe()} "
                            f"also provides; {how}")
