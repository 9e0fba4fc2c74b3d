"""What plugins register: ops, symbols (layers, optimizers, ...), milestones, CLI commands."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .. import catalog
from ..function import Function
from .errors import RegistrationError

_MISSING = object()


@dataclass(frozen=True)
class OpEntry:
    name: str  # qualified, "stage::short"
    function: type
    samples: Callable | None
    call: Callable
    differentiable: bool
    plugin: str
    distribution: str
    version: str

    @property
    def short_name(self) -> str:
        return self.name.split("::", 1)[1]

    @property
    def stage(self) -> str:
        return self.name.split("::", 1)[0]


@dataclass(frozen=True)
class SymbolEntry:
    namespace: str
    name: str
    obj: object
    plugin: str
    distribution: str
    version: str


@dataclass(frozen=True)
class Milestone:
    """A historic result a model must reproduce; ``run(options)`` returns the milestone's result."""

    name: str
    year: int
    title: str
    requires: tuple[str, ...]
    run: Callable
    description: str = ""
    order: int = 0
    extended: bool = False  # too slow for the default ``verify``: it runs with ``verify --all``


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    setup: Callable  # setup(argparse.ArgumentParser) -> None
    run: Callable  # run(args, runtime) -> int exit code
    plugin: str = ""


@dataclass
class Registrations:
    """What one plugin registers: staged while its hooks run, kept on its ``PluginRecord`` once committed."""

    ops: list = field(default_factory=list)
    symbols: list = field(default_factory=list)
    milestones: list = field(default_factory=list)
    commands: list = field(default_factory=list)


#: methods a plugin may still call by their old names, and what they are called now
_RENAMED = {"function": "op"}


class Registrar:
    """The object a plugin's ``tinytorch_register_ops`` / ``tinytorch_register_symbols`` hooks receive."""

    def __init__(self, owner, stage: str | None, staged: Registrations):
        self._owner = owner  # PluginRecord
        self._stage = stage or owner.name  # what op names are prefixed with
        self._staged = staged

    def __getattr__(self, name: str):
        if name in _RENAMED:
            raise AttributeError(f"registry.{name}(...) is now registry.{_RENAMED[name]}(...), same arguments")
        raise AttributeError(f"the registry has no method {name!r}; it has op, layer, symbol and symbols_from")

    def op(self, name: str, function, *, samples=None, call=None, differentiable=None) -> None:
        """Register a ``Function`` subclass as op ``name`` (``stage::short``).

        ``samples(rng)`` yields ``Sample`` argument sets (float64) for the automatic gradcheck;
        ``call`` is the user-facing callable (default ``function.apply``) the samples are passed to.
        """
        self._check_op_name(name)
        if differentiable is None:
            differentiable = getattr(function, "differentiable", True)
        self._check_op_class(name, function, differentiable, samples)
        self._staged.ops.append(
            OpEntry(
                name=name,
                function=function,
                samples=samples,
                call=call or function.apply,
                differentiable=bool(differentiable),
                plugin=self._owner.name,
                distribution=self._owner.distribution,
                version=self._owner.version,
            )
        )

    def _check_op_name(self, name) -> None:
        who = self._owner.describe()
        if not isinstance(name, str) or name.count("::") != 1 or not all(name.split("::")):
            raise RegistrationError(f"{who}: op name {name!r} must be qualified as 'stage::name'")
        if name.split("::")[0] != self._stage:
            raise RegistrationError(f"{who}: op {name!r} must be named after its stage: '{self._stage}::...'")
        if name.split("::")[1] in PROBED_NAMES:
            raise RegistrationError(
                f"{who}: op {name!r} would make every tensor answer hasattr(x, {name.split('::')[1]!r}), a "
                "question code asks to tell a dict, list or file from a tensor; choose another name"
            )
        self._check_ownership("ops", name.split("::")[1], f"op {name!r}")

    def _check_op_class(self, name: str, function, differentiable: bool, samples) -> None:
        """A forward always; for a differentiable op also a backward and samples to gradient-check it on."""
        who = self._owner.describe()
        if not (isinstance(function, type) and issubclass(function, Function)):
            raise RegistrationError(f"{who}: op {name!r} must be a Function subclass, got {function!r}")
        if function.forward is Function.forward:
            raise RegistrationError(f"{who}: op {name!r} ({function.__qualname__}) defines no forward")
        if not differentiable:
            return
        if function.backward is Function.backward:
            raise RegistrationError(
                f"{who}: differentiable op {name!r} ({function.__qualname__}) defines no backward; "
                "gradients would silently stop there"
            )
        if samples is None or not callable(samples):
            raise RegistrationError(
                f"{who}: differentiable op {name!r} needs samples=callable(rng) yielding Sample "
                "inputs, so it can be gradient-checked"
            )

    def layer(self, name: str, obj) -> None:
        """Register a layer (reached as ``tinytorch_core.nn.<name>``)."""
        self.symbol("nn", name, obj)

    def symbols_from(self, source) -> None:
        """Register every name the catalog lists for this curriculum stage outside ``ops``, each
        taken from ``source`` (the stage's package or module): the catalog says *which* names, the
        package *what* they are. A listed name ``source`` lacks fails the registration."""
        stage = catalog.get(self._stage)
        if stage is None or not stage.is_stage:
            raise RegistrationError(
                f"{self._owner.describe()}: symbols_from() registers a curriculum stage's catalog names, and "
                f"'{self._stage}' is not a curriculum stage; register with registry.symbol(namespace, name, obj)"
            )
        for namespace, name in stage.symbol_names():
            obj = getattr(source, name, _MISSING)
            if obj is _MISSING:
                raise RegistrationError(
                    f"{self._owner.describe()}: the catalog lists {namespace}.{name} for stage '{stage.name}', "
                    f"but {getattr(source, '__name__', source)!r} has no attribute {name!r}"
                )
            self.symbol(namespace, name, obj)

    def symbol(self, namespace: str, name: str, obj) -> None:
        """Register any public object under ``tinytorch_core.<namespace>.<name>``."""
        if namespace not in catalog.NAMESPACES or namespace == "ops":
            raise RegistrationError(
                f"{self._owner.describe()}: unknown namespace {namespace!r}; use one of "
                f"{[n for n in catalog.NAMESPACES if n != 'ops']} (ops go through registry.op)"
            )
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
            raise RegistrationError(
                f"{self._owner.describe()}: {namespace} symbol name {name!r} must be a Python identifier "
                "not starting with '__' (it is reached as an attribute)"
            )
        self._check_ownership(namespace, name, f"{namespace}.{name}")
        self._staged.symbols.append(
            SymbolEntry(namespace, name, obj, self._owner.name, self._owner.distribution, self._owner.version)
        )

    def _check_ownership(self, namespace: str, name: str, shown: str) -> None:
        """A curriculum stage's provider registers exactly that stage's catalog names; any other
        stage registers only symbols no curriculum stage owns (no plugin can take over
        ``tt.nn.Linear``: it would break every stage and milestone built on it), and ops under
        its own prefix."""
        own_stage = catalog.get(self._stage)
        is_curriculum = own_stage is not None and own_stage.is_stage
        if namespace == "ops":  # ops are qualified by their stage: ``advop::relu`` is not ``nn::relu``
            owner = own_stage if is_curriculum and own_stage.provides("ops", name) else None
        else:
            owner = catalog.stage_providing(namespace, name)
        if owner is not None and owner.name != self._stage:
            raise RegistrationError(
                f"{self._owner.describe()} registers {shown}, which belongs to curriculum stage "
                f"'{owner.name}': only the provider of that stage may register it"
            )
        if is_curriculum and owner is None:
            raise RegistrationError(
                f"{self._owner.describe()} provides curriculum stage '{self._stage}', whose contract does not "
                f"include {shown}; a stage's provider registers exactly its catalog names"
            )


class MilestoneRegistrar:
    def __init__(self, owner, staged: Registrations):
        self._owner = owner
        self._staged = staged

    def __call__(self, milestone: Milestone) -> None:
        who = self._owner.describe()
        if not isinstance(milestone, Milestone):
            raise RegistrationError(f"{who}: register() takes a Milestone, got {milestone!r}")
        problems = [
            f"{field} must be {kind}"
            for field, ok, kind in (
                ("name", isinstance(milestone.name, str) and milestone.name.strip() != "", "a non-empty string"),
                ("year", isinstance(milestone.year, int) and not isinstance(milestone.year, bool), "an int"),
                ("title", isinstance(milestone.title, str), "a string"),
                ("description", isinstance(milestone.description, str), "a string"),
                ("order", isinstance(milestone.order, int) and not isinstance(milestone.order, bool), "an int"),
                ("requires", isinstance(milestone.requires, tuple)
                 and all(isinstance(r, str) for r in milestone.requires), "a tuple of stage names"),
                ("run", callable(milestone.run), "callable"),
            )
            if not ok
        ]
        if problems:
            raise RegistrationError(f"{who}: milestone {milestone.name!r}: {'; '.join(problems)}")
        unknown = [r for r in milestone.requires if catalog.get(r) is None or not catalog.get(r).is_stage]
        if unknown:
            raise RegistrationError(f"{who}: milestone {milestone.name!r} requires {unknown}, which are not "
                                    f"stages; the stages are {[s.name for s in catalog.STAGES]}")
        _check_owned("milestones", milestone.name, f"milestone {milestone.name!r}", self._owner)
        self._staged.milestones.append(milestone)


def _check_owned(kind: str, name: str, shown: str, owner) -> None:
    """A command or milestone name the catalog gives to a package of the project is that
    package's alone: a plugin claiming ``launch`` or ``perceptron`` is refused, not the stage."""
    package = catalog.package_owning(kind, name)
    # a stage's active provider (maybe the learner's own), or the milestones' own plugin
    if package is not None and (owner.stage if package.is_stage else owner.name) != package.name:
        raise RegistrationError(
            f"{owner.describe()} registers {shown}, which belongs to '{package.name}' "
            f"({package.distribution}): only that package may register it"
        )


#: attribute names code probes to recognise dicts, lists and files (``hasattr(x, "items")``); every
#: op is also a Tensor method (``x.relu()``), so an op by one of these names would fool the probe
PROBED_NAMES = frozenset({"keys", "items", "values", "get", "append", "extend", "read", "readline", "readlines",
                          "write", "seek", "tell", "close", "fileno", "flush"})

_COMMAND_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}\Z")


class CommandRegistrar:
    def __init__(self, owner, staged: Registrations):
        self._owner = owner
        self._staged = staged

    def add(self, name: str, *, help: str, setup, run) -> None:  # noqa: A002 - argparse's word
        who = self._owner.describe()
        if not isinstance(name, str) or not _COMMAND_NAME.match(name):
            raise RegistrationError(
                f"{who}: command name {name!r} must be lower-case letters, digits and '-', starting with a letter"
            )
        if not isinstance(help, str):
            raise RegistrationError(f"{who}: command '{name}': help must be a string, got {type(help).__name__}")
        if not (callable(setup) and callable(run)):
            raise RegistrationError(f"{who}: command '{name}': setup and run must be callable")
        _check_owned("commands", name, f"command '{name}'", self._owner)
        self._staged.commands.append(Command(name, help, setup, run, self._owner.name))
