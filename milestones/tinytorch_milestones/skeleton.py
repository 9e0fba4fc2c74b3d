"""``tinytorch implement STAGE NAME``: a learner's own provider of a curriculum stage, as stubs.

The project has every op and layer of the stage's contract, each with its contract as the
docstring and a body that raises ``NotImplementedError("TODO: ...")``; the hooks that declare it
a provider of the stage; a pyproject; and a README that says how to build, install, select and
grade it. Graded as generated, it scores 0 (every check "not implemented"); each stub the
learner fills in turns its checks green.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import textwrap
from pathlib import Path

from tinytorch_core import catalog

from .conformance import SUITES
from .conformance.contract import Helper, Layer, Op

_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")


class SkeletonError(ValueError):
    """The skeleton cannot be written as asked."""


def contract(stage: str) -> list:
    if stage not in SUITES:
        raise SkeletonError(f"no contract for stage {stage!r} yet; learner skeletons exist for: "
                            f"{', '.join(sorted(SUITES))}")
    items = importlib.import_module(SUITES[stage]).CONTRACT
    if items is None:
        raise SkeletonError(f"stage {stage!r} is the framework itself and has no other provider; "
                            "implement one of: " + ", ".join(s for s in sorted(SUITES) if s != stage))
    return items


def _signature_call(signature: str) -> str:
    """``x, weight, bias=None`` -> ``x, weight, bias`` (the arguments to pass on)."""
    return ", ".join(part.split("=")[0].strip() for part in signature.split(","))


def _function_class(op: Op) -> str:
    return "".join(word.capitalize() for word in op.name.split("_")) + "Function"


def render(stage: str, name: str) -> dict:
    """``{relative path: text}`` of the skeleton of ``stage`` named ``name`` (a package name)."""
    if not _NAME.match(name) or len(name) > 64:
        raise SkeletonError(f"{name!r} is not a valid name: lower-case letters, digits and single '_' "
                            "between words, starting with a letter (it names the package)")
    if catalog.get(name) is not None:
        raise SkeletonError(f"{name!r} is a TinyTorch package name; choose your own, e.g. my_{stage}")
    items = contract(stage)
    ops = [i for i in items if isinstance(i, Op)]
    layers = [i for i in items if isinstance(i, Layer)]
    helpers = [i for i in items if isinstance(i, Helper)]
    return {
        "pyproject.toml": _pyproject(stage, name),
        "README.md": _readme(stage, name),
        f"{name}/__init__.py": f'"""My own provider of TinyTorch stage \'{stage}\'."""\n',
        f"{name}/functional.py": _functional(stage, ops),
        f"{name}/samples.py": _samples(stage, ops),
        f"{name}/layers.py": _layers(stage, layers, helpers),
        f"{name}/plugin.py": _plugin(stage, ops),
    }


def _functional(stage: str, ops: list) -> str:
    """One Function stub and one user-facing function per op."""
    functional = [f'"""Stage {stage}: the ops, as stubs for you to implement (contract in each docstring)."""',
                  "", "import numpy as np", "", "from tinytorch_core import Function", ""]
    for op in ops:
        cls = _function_class(op)
        if op.differentiable:
            functional += ["", f"class {cls}(Function):",
                           f'    """The Function of {op.name}: forward on arrays, backward with one gradient per input."""',
                           "", "    @staticmethod", f"    def forward(ctx, {op.signature}):",
                           f'        raise NotImplementedError("TODO: {op.name} forward (save what backward needs with '
                           f'ctx.save_for_backward)")', "", "    @staticmethod", "    def backward(ctx, grad):",
                           f'        raise NotImplementedError("TODO: {op.name} backward (return one gradient per '
                           f'forward input, None for non-tensors)")']
        else:
            functional += ["", f"class {cls}(Function):",
                           f'    """The Function of {op.name}: forward on arrays only (its outputs carry no gradient)."""',
                           "", "    differentiable = False", "", "    @staticmethod",
                           f"    def forward(ctx, {op.signature}):",
                           f'        raise NotImplementedError("TODO: {op.name} forward")']
        functional += ["", "", f"def {op.name}({op.signature}):", f'    """{op.doc}\n    """',
                       f"    return {cls}.apply({_signature_call(op.signature)})", ""]
    return "\n".join(functional).rstrip() + "\n"


def _samples(stage: str, ops: list) -> str:
    """A samples function per op, from the contract's sample inputs."""
    samples = ['"""Inputs each op is gradient-checked on (``tinytorch check ' + stage + '``)."""', "",
               "import numpy as np  # noqa: F401", "", "from tinytorch_core import Sample",
               "from tinytorch_core.host.samples import randn", ""]
    for op in (op for op in ops if op.differentiable):
        samples += ["", f"def {op.name}_samples(rng):", f"    yield {op.sample}", ""]
    return "\n".join(samples).rstrip() + "\n"


def _layers(stage: str, layers: list, helpers: list) -> str:
    """A stub class per layer and a stub function per helper (optimizers, init, ...)."""
    layer_lines = [f'"""Stage {stage}: the layers, as stubs for you to implement."""', "",
                   "from tinytorch_core import Module, Parameter, Tensor  # noqa: F401", "",
                   "from . import functional as F  # noqa: F401", ""]
    for layer in layers:
        layer_lines += ["", f"class {layer.name}({layer.base}):", f'    """{layer.doc}\n    """', "",
                        f"    def __init__({', '.join(filter(None, ['self', layer.signature]))}):"]
        if layer.base != "object":
            layer_lines.append("        super().__init__()")
        layer_lines += [f'        raise NotImplementedError("TODO: {layer.name}.__init__")', ""]
        for method in layer.methods:
            *decorators, definition = method.splitlines()
            method_name = definition.split("(")[0].replace("def ", "").strip()
            layer_lines += [f"    {line}" for line in decorators]
            layer_lines += [f"    {definition}:",
                            f'        raise NotImplementedError("TODO: {layer.name}.{method_name}")', ""]
    for helper in helpers:
        layer_lines += ["", f"def {helper.name}({helper.signature}):", f'    """{helper.doc}"""',
                        f'    raise NotImplementedError("TODO: {helper.namespace}.{helper.name}")', ""]
    return "\n".join(layer_lines).rstrip() + "\n"


def _plugin(stage: str, ops: list) -> str:
    """The hooks: declare the stage, register each op and every catalog name of the stage."""
    registrations = "\n".join(
        f'    registry.op("{stage}::{op.name}", F.{_function_class(op)}, '
        + (f"samples=samples.{op.name}_samples, " if op.differentiable else "")
        + f"call=F.{op.name})" for op in ops) or f"    pass  # stage {stage} has no ops"
    plugin = textwrap.dedent(f'''\
        """The hooks that make this package a provider of stage '{stage}'."""

        from tinytorch_core import hookimpl

        from . import functional as F
        from . import layers, samples


        @hookimpl
        def tinytorch_declare_stage(declare):
            declare("{stage}")


        @hookimpl
        def tinytorch_register_ops(registry):
        {{registrations}}


        @hookimpl
        def tinytorch_register_symbols(registry):
            registry.symbols_from(layers)  # every catalog name of stage '{stage}' outside ops, from layers.py
        ''').replace("{registrations}", registrations)
    return plugin


def _pyproject(stage: str, name: str) -> str:
    distribution = name.replace("_", "-")
    requires = [catalog.get(r).distribution for r in catalog.stage(stage).requires]
    pyproject = textwrap.dedent(f'''\
        [build-system]
        requires = ["hatchling>=1.18"]
        build-backend = "hatchling.build"

        [project]
        name = "{distribution}"
        version = "0.1.0"
        description = "My own implementation of TinyTorch stage '{stage}'"
        requires-python = ">=3.10"
        dependencies = {json.dumps(["numpy>=1.24", *requires])}

        # the host finds the provider through this entry point (any name but the stage's own)
        [project.entry-points."tinytorch.stages"]
        {name} = "{name}.plugin"

        [tool.hatch.build.targets.wheel]
        packages = ["{name}"]
        ''')
    return pyproject


def _readme(stage: str, name: str) -> str:
    distribution = name.replace("_", "-")
    pkg = catalog.stage(stage)
    readme = textwrap.dedent(f'''\
        # {distribution}: my own stage '{stage}'

        Every op and layer of stage '{stage}' is here as a stub whose docstring is its contract.
        Fill them in (`{name}/functional.py`, then `{name}/layers.py`), then:

        ```bash
        pip install -e .                          # install it (from this folder)
        tinytorch stages                          # '{stage}' provided by {distribution}?
        tinytorch grade {stage}                   # the conformance suite, a line per check, a score
        ```

        If the reference `{pkg.distribution}` is installed too, choose yours:
        `export TINYTORCH_PROVIDERS={stage}={distribution}`. The milestones then run on your code,
        and their report names it.
        ''')
    return readme


def write(stage: str, name: str, directory=None) -> Path:
    files = render(stage, name)
    root = Path(directory or name)
    if root.exists():
        raise SkeletonError(f"{str(root)!r} already exists; choose another --dir")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", help=f"the curriculum stage to implement ({', '.join(sorted(SUITES))})")
    parser.add_argument("name", help="your package name, e.g. my_spatial (its distribution is my-spatial)")
    parser.add_argument("--dir", default=None, help="where to write the project (default: ./NAME)")


def run(args, runtime) -> int:
    try:
        root = write(args.stage, args.name, args.dir)
    except (SkeletonError, OSError) as exc:
        print(f"tinytorch implement: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the skeleton of stage '{args.stage}' to {root}; next: see {root / 'README.md'}")
    return 0
