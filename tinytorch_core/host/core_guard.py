"""No plugin may patch core: a changed ``Tensor.__add__``, ``Add.backward`` or ``engine.backward``
could make every op drop its gradient. The host snapshots core's classes and engine functions
before loading and, after each plugin step, undoes any change and refuses the plugin that made it."""

from __future__ import annotations

import types

from .errors import RegistrationError

_ABSENT = object()


class CoreClasses:
    """Every attribute of core's classes (Tensor and its bases ValueReads and TorchNames, Function,
    Module and its base ModuleHooks, Parameter, the engine's ``_Walk`` and every op class of
    core) and every function of core's engine modules, as loading found them."""

    def __init__(self):
        from .. import arguments, engine, function, gradients, hooks, inplace, module_hooks, primitives
        from ..function import Function
        from ..module import Module, Parameter
        from ..tensor import Tensor
        from ..torch_names import TorchNames
        from ..values import ValueReads

        core_ops = [value for value in vars(primitives).values()
                    if isinstance(value, type) and issubclass(value, Function) and value is not Function]
        guarded = (Tensor, ValueReads, TorchNames, Parameter, Function, Module, module_hooks.ModuleHooks,
                   engine._Walk, *core_ops)
        self._attributes = {cls: dict(vars(cls)) for cls in guarded}
        # engine.backward, Function.apply's helpers...: replaced, they could drop every gradient
        self._functions = {module: {name: value for name, value in vars(module).items() if callable(value)}
                           for module in (arguments, engine, function, gradients, hooks, inplace, module_hooks)}

    def accept(self, classes) -> None:
        """Take ``classes`` as they are now: the host itself just named them (``commit``). From here
        on a change to them is a plugin's, and refused (another plugin's op classes included)."""
        for cls in classes:
            self._attributes[cls] = dict(vars(cls))

    def refuse_changes(self, record, when: str) -> None:
        """Undo what ``record``'s plugin changed in core and refuse it, naming the change."""
        patched = self.undo_changes()
        if patched:
            raise RegistrationError(
                f"{record.describe()} changed code it does not own {when} ({', '.join(patched)}); the change "
                "was undone. Plugins register ops and layers through the hooks; they never patch core or "
                "another plugin's ops"
            )

    def undo_changes(self, code_only: bool = False) -> list[str]:
        """Put back every attribute that was replaced, added or deleted since the snapshot; returns
        their names (``Tensor.__add__``, ``engine.backward``). ``code_only``: only functions,
        methods and properties (after loading, another runtime may legitimately name the same op
        classes, and pickling caches ``__slotnames__``)."""
        changed = []
        for cls, attributes in self._attributes.items():
            changed += _restore(cls, attributes, vars(cls), cls.__name__, code_only)
        for module, functions in self._functions.items():
            now = {name: value for name, value in vars(module).items() if callable(value)}
            changed += _restore(module, functions, now, module.__name__.rsplit(".", 1)[-1], code_only)
        return changed


def _is_code(value) -> bool:
    return isinstance(value, (types.FunctionType, staticmethod, classmethod, property))


def _restore(owner, before_by_name: dict, now: dict, shown: str, code_only: bool = False) -> list[str]:
    """Set ``owner``'s attributes back to ``before_by_name`` where ``now`` differs; their names."""
    changed = []
    for name in sorted(set(before_by_name) | set(now)):
        before, after = before_by_name.get(name, _ABSENT), now.get(name, _ABSENT)
        if before is after or (code_only and not (_is_code(before) or _is_code(after))):
            continue
        changed.append(f"{shown}.{name}")
        if before is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, before)
    return changed
