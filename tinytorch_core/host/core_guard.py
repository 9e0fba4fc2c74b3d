"""No plugin may patch core's classes: a changed ``Tensor.__add__`` could make every op drop its
gradient. The host snapshots the classes before loading and, after each plugin step, undoes any
change and refuses the plugin that made it."""

from __future__ import annotations

from .errors import RegistrationError

_ABSENT = object()


class CoreClasses:
    """Every attribute of core's classes, as loading found them."""

    def __init__(self):
        from ..function import Function
        from ..module import Module, Parameter
        from ..tensor import Tensor

        self._attributes = {cls: dict(vars(cls)) for cls in (Tensor, Parameter, Function, Module)}

    def refuse_changes(self, record, when: str) -> None:
        """Undo what ``record``'s plugin changed in core's classes and refuse it, naming the change."""
        patched = self.undo_changes()
        if patched:
            raise RegistrationError(
                f"{record.describe()} changed core's classes {when} ({', '.join(patched)}); the change "
                "was undone. Plugins register ops and layers through the hooks; they never patch Tensor"
            )

    def undo_changes(self) -> list[str]:
        """Put back every attribute that was replaced, added or deleted since the snapshot; returns
        their names (``Tensor.__add__``)."""
        changed = []
        for cls, attributes in self._attributes.items():
            now = vars(cls)
            for name in sorted(set(attributes) | set(now)):
                before, after = attributes.get(name, _ABSENT), now.get(name, _ABSENT)
                if before is after:
                    continue
                changed.append(f"{cls.__name__}.{name}")
                if before is _ABSENT:
                    delattr(cls, name)
                else:
                    setattr(cls, name, before)
        return changed
