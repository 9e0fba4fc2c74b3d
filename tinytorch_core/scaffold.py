"""``tinytorch new-plugin NAME``: the folder of a new plugin project, ready to install and test.

The generated project is a small copy of a stage plugin: a pyproject with the entry point in
group ``tinytorch.stages``, a package with an example op (a ``Function`` with forward and
backward, plus the samples it is gradient-checked on), a layer using it, the pluggy hooks that
declare the stage and register both, tests that use the core pytest plugin's fixtures, and a
README. The file templates live in ``tinytorch_core/templates/new_plugin/``.
"""

from __future__ import annotations

import keyword
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import catalog

DEFAULT_REQUIRES = ("nn",)

_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
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


def validate_name(name: str) -> str:
    """``name`` if it can name a new stage, else a ``ScaffoldError`` that says what would."""
    if not isinstance(name, str) or not name:
        raise ScaffoldError("the plugin name is empty; give a lower-case Python identifier such as 'swish'")
    if not _NAME_PATTERN.match(name):
        candidate = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_")
        hint = f"; try '{candidate}'" if candidate and _NAME_PATTERN.match(candidate) else ""
        raise ScaffoldError(
            f"'{name}' is not a valid plugin name: it names the stage, the entry point and the package "
            f"tinytorch_<name>, so it must be a lower-case Python identifier (a-z, digits, '_', starting "
            f"with a letter){hint}"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"'{name}' is a Python keyword; choose another plugin name")
    existing = catalog.get(name)
    if existing is not None:
        kind = "a stage of the TinyTorch curriculum" if existing.is_stage else "a TinyTorch package"
        taken = ", ".join(p.name for p in catalog.PACKAGES)
        raise ScaffoldError(f"'{name}' is {kind} ({existing.distribution}); choose a name not in: {taken}")
    return name


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
        "folder": folder,
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
    """Write the project of plugin ``name`` into ``directory`` (default ``./tinytorch-<name>``)."""
    spec = PluginSpec(validate_name(name), validate_requires(requires))
    path = Path(directory) if directory is not None else Path(spec.default_folder)
    if path.exists():
        raise ScaffoldError(
            f"'{path}' already exists; new-plugin only creates a new folder (remove it, or pass --dir PATH)"
        )
    files = render(spec, folder=path.name)
    try:
        for relative, text in files.items():
            target = path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # no half-written project left behind
        raise
    return CreatedPlugin(spec, path, tuple(files))


def _as_install_path(path: Path) -> str:
    """``path`` as pip reads it as a folder, not as a package name (``./tinytorch-x``)."""
    text = str(path)
    return text if path.is_absolute() or text.startswith(".") else f"./{text}"


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
