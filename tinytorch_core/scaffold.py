"""``tinytorch new-plugin NAME``: the folder of a new plugin project, ready to install and test.

The generated project is a small copy of a stage plugin: a pyproject with the entry point in
group ``tinytorch.stages``, a package with an example op (a ``Function`` with forward and
backward, plus the samples it is gradient-checked on), a layer using it, the pluggy hooks that
declare the stage and register both, tests that use the core pytest plugin's fixtures, and a
README. The file templates live in ``tinytorch_core/templates/new_plugin/``.
"""

from __future__ import annotations

import keyword
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import catalog

DEFAULT_REQUIRES = ("nn",)

#: a lower-case identifier whose '_' only separate words: then ``tinytorch-<name with - for _>`` is a
#: valid distribution name (PEP 508: letters or digits at both ends), ``tinytorch_<name>`` a package
#: and ``test_<name>_ops.py`` a file name
_NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
NAME_MAX_LENGTH = 64  # well under the 255 bytes of a file name, with room for prefixes and suffixes
_DISTRIBUTION_PATTERN = re.compile(r"([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)  # PEP 508
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

#: template (relative to templates/new_plugin) -> path in the new project, itself a template
_FILES = (
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("package/__init__.py.tmpl", "{{package}}/__init__.py"),
    ("package/ops.py.tmpl", "{{package}}/ops.py"),
    ("package/layers.py.tmpl", "{{package}}/layers.py"),
    ("package/plugin.py.tmpl", "{{package}}/plugin.py"),
    ("tests/test_ops.py.tmpl", "tests/test_{{name}}_ops.py"),
    ("tests/test_layers.py.tmpl", "tests/test_{{name}}_layers.py"),
)


class ScaffoldError(ValueError):
    """The plugin cannot be created as asked (bad name, unknown stage, folder in the way)."""


@dataclass(frozen=True)
class PluginSpec:
    """The names of a new plugin, all derived from its stage name."""

    name: str  # the stage, and the entry-point name
    requires: tuple[str, ...]

    @property
    def distribution(self) -> str:
        return "tinytorch-" + self.name.replace("_", "-")  # the normalised form pip shows

    @property
    def package(self) -> str:
        return f"tinytorch_{self.name}"

    @property
    def default_folder(self) -> str:
        return self.distribution


@dataclass(frozen=True)
class CreatedPlugin:
    spec: PluginSpec
    path: Path
    files: tuple[str, ...]  # relative to ``path``, in creation order


_ALLOWED = (
    f"a lower-case Python identifier of at most {NAME_MAX_LENGTH} characters (a-z and digits, words "
    "joined by single '_', starting with a letter and ending with a letter or digit)"
)


def _shown(name: str) -> str:
    """``name`` quoted for a message, cut short if long."""
    return repr(name if len(name) <= 40 else name[:40] + "...")


def _shown_path(path) -> str:
    text = str(path)
    return text if len(text) <= 100 else text[:97] + "..."


def validate_name(name: str) -> str:
    """``name`` if it can name a new stage, else a ``ScaffoldError`` that says what would.

    The name becomes the stage, the entry point, the package ``tinytorch_<name>``, file names
    (``tests/test_<name>_ops.py``) and the distribution ``tinytorch-<name>``, so it must be valid as
    each: see ``_NAME_PATTERN`` and ``NAME_MAX_LENGTH``.
    """
    if not isinstance(name, str) or not name:
        raise ScaffoldError(f"the plugin name is empty; give {_ALLOWED}, such as 'swish'")
    if len(name) > NAME_MAX_LENGTH:
        raise ScaffoldError(
            f"{_shown(name)} is not a valid plugin name: it is {len(name)} characters long; give {_ALLOWED}"
        )
    if not _NAME_PATTERN.match(name):
        candidate = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        hint = f"; try '{candidate}'" if candidate and _NAME_PATTERN.match(candidate) else ""
        raise ScaffoldError(
            f"{_shown(name)} is not a valid plugin name: it names the stage, the entry point, the package "
            f"tinytorch_<name> and the distribution tinytorch-<name>, so it must be {_ALLOWED}{hint}"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"'{name}' is a Python keyword; choose another plugin name")
    existing = catalog.get(name)
    if existing is not None:
        kind = "a stage of the TinyTorch curriculum" if existing.is_stage else "a TinyTorch package"
        taken = ", ".join(p.name for p in catalog.PACKAGES)
        raise ScaffoldError(f"'{name}' is {kind} ({existing.distribution}); choose a name not in: {taken}")
    spec = PluginSpec(name, ())
    clash = next((p for p in catalog.PACKAGES if _normalised(p.distribution) == _normalised(spec.distribution)
                  or p.package == spec.package), None)
    if clash is not None:  # unreachable with today's catalog; kept so a new catalog entry cannot slip through
        raise ScaffoldError(f"'{name}' would clash with {clash.distribution} ({clash.package}); choose another name")
    if not _DISTRIBUTION_PATTERN.match(spec.distribution):  # guaranteed by _NAME_PATTERN; checked all the same
        raise ScaffoldError(f"'{name}' gives the distribution name {spec.distribution}, which is not valid")
    return name


def _normalised(distribution: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def validate_requires(requires) -> tuple[str, ...]:
    """The stages a new plugin depends on: catalog stages, without repeats, in curriculum order."""
    requires = tuple(DEFAULT_REQUIRES if requires is None else requires)
    if not requires:
        raise ScaffoldError("--requires needs at least one stage (core, for a plugin that needs only the core)")
    stage_names = [s.name for s in catalog.STAGES]
    unknown = [r for r in requires if r not in stage_names]
    if unknown:
        raise ScaffoldError(
            f"--requires: unknown stage '{unknown[0]}'; the stages are {', '.join(stage_names)} "
            "(to depend on another third-party plugin, add its distribution to the generated "
            "pyproject.toml and its stage to declare(requires=...) in plugin.py by hand)"
        )
    return tuple(sorted(set(requires), key=stage_names.index))


def dependencies(spec: PluginSpec) -> list[str]:
    """Distribution requirements: core, then each required stage."""
    names = ["tinytorch-core"] + [catalog.stage(r).distribution for r in spec.requires if r != "core"]
    return [f"{n}>=0.1.0" for n in dict.fromkeys(names)]


def prerequisites_command(requires) -> str:
    """The one command, run from the TinyTorch repository root, that installs the required stages."""
    folders: dict[str, None] = {}
    for stage in requires:
        for pkg in catalog.prerequisites(stage):
            folders[pkg.folder if pkg.folder == "." else f"./{pkg.folder}"] = None
    return "pip install " + " ".join(folders)


def _tuple_literal(items) -> str:
    inner = ", ".join(f'"{item}"' for item in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


def _context(spec: PluginSpec, folder: str) -> dict[str, str]:
    return {
        "name": spec.name,
        "package": spec.package,
        "distribution": spec.distribution,
        "folder": shlex.quote(folder),  # the README's commands must work for a folder such as 'my plugin'
        "requires": _tuple_literal(spec.requires),
        "requires_text": ", ".join(f"`{r}`" for r in spec.requires),
        "dependencies": ", ".join(f'"{d}"' for d in dependencies(spec)),
        "prerequisites": prerequisites_command(spec.requires),
        "title": "ScaledSoftplus layer and scaled_softplus op",
    }


def _fill(template: str, context: dict[str, str], source: str) -> str:
    def replace(match):
        key = match.group(1)
        if key not in context:
            raise KeyError(f"template {source}: unknown placeholder {{{{{key}}}}}")
        return context[key]

    return _PLACEHOLDER.sub(replace, template)


def render(spec: PluginSpec, folder: str | None = None) -> dict[str, str]:
    """The new project's files: relative path -> text."""
    context = _context(spec, folder or spec.default_folder)
    root = resources.files("tinytorch_core").joinpath("templates", "new_plugin")
    files = {}
    for source, target in _FILES:
        text = root.joinpath(*source.split("/")).read_text(encoding="utf-8")
        files[_fill(target, context, target)] = _fill(text, context, source)
    return files


def create_plugin(name: str, directory=None, requires=None) -> CreatedPlugin:
    """Write the project of plugin ``name`` into ``directory`` (default ``./tinytorch-<name>``).

    Every problem is a ``ScaffoldError``: a bad name or stage, a folder (or file, or link) already
    there, a parent that is a file or cannot be written, a name the file system refuses. A failure
    half-way removes what was created, parent folders included.
    """
    spec = PluginSpec(validate_name(name), validate_requires(requires))
    if directory is not None and not isinstance(directory, (str, os.PathLike)):
        raise ScaffoldError(f"--dir must be a path, got {directory!r}")
    if directory is not None and not os.fspath(directory):
        raise ScaffoldError("--dir is empty; give the folder to create")
    if directory is not None and "\0" in os.fspath(directory):
        raise ScaffoldError("--dir contains a NUL character")
    # "new/.." names the current folder, not a new one: judge the path as the OS will resolve it
    path = Path(os.path.normpath(directory)) if directory is not None else Path(spec.default_folder)
    if os.path.lexists(path):
        raise ScaffoldError(
            f"'{_shown_path(path)}' already exists; new-plugin only creates a new folder (remove it, or pass --dir PATH)"
        )
    first_new = path  # the outermost folder this call creates: removed again if anything fails
    while not os.path.lexists(first_new.parent) and first_new.parent != first_new:
        first_new = first_new.parent
    parent = first_new.parent
    if not os.path.isdir(parent):
        raise ScaffoldError(f"cannot create '{_shown_path(path)}': '{_shown_path(parent)}' is not a folder")
    files = render(spec, folder=path.name)
    try:
        for relative, text in files.items():
            target = path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "x", encoding="utf-8") as handle:  # never overwrite
                handle.write(text)
    except BaseException as exc:
        shutil.rmtree(first_new, ignore_errors=True)  # no half-written project left behind
        if isinstance(exc, OSError):
            raise ScaffoldError(f"cannot create '{_shown_path(path)}': {exc.strerror or exc}") from exc
        raise
    return CreatedPlugin(spec, path, tuple(files))


def _as_install_path(path: Path) -> str:
    """``path`` as pip reads it as a folder, not as a package name (``./tinytorch-x``)."""
    text = str(path)
    return shlex.quote(text if path.is_absolute() or text.startswith(".") else f"./{text}")


def next_steps(created: CreatedPlugin) -> str:
    """What the CLI prints after creating a plugin."""
    spec, path = created.spec, created.path
    shown = _as_install_path(path)
    lines = [
        f"Created plugin '{spec.name}' in {path}/ (distribution {spec.distribution}, package {spec.package}, "
        f"stage {spec.name} requiring {', '.join(spec.requires)}):",
    ]
    lines += [f"  {relative}" for relative in created.files]
    lines += [
        "",
        "Next steps:",
        f"  pip install {shown}      # after TinyTorch itself: {prerequisites_command(spec.requires)} "
        "(from its repository root)",
        f"  pytest {shown}",
        f"  tinytorch check {spec.name}",
        "  tinytorch plugins",
    ]
    return "\n".join(lines)


__all__ = [
    "CreatedPlugin",
    "DEFAULT_REQUIRES",
    "NAME_MAX_LENGTH",
    "PluginSpec",
    "ScaffoldError",
    "create_plugin",
    "dependencies",
    "next_steps",
    "prerequisites_command",
    "render",
    "validate_name",
    "validate_requires",
]
