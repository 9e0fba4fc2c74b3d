"""Containers of sub-modules: ``ModuleList`` (by position) and ``ModuleDict`` (by name). Each
registers what it holds, so parameters, state dicts, ``train()`` and ``to()`` reach it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .module import MODULE_CLOCK, Module, registry_name


class ModuleList(Module):
    """A list of sub-modules, registered as ``0``, ``1``, ... so their parameters are found."""

    def __init__(self, modules=None):
        super().__init__()
        self._items: list[Module] = []
        if isinstance(modules, Module) or not (modules is None or hasattr(modules, "__iter__")):
            raise TypeError(f"ModuleList takes an iterable of Modules, got {type(modules).__name__}")
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(module).__name__}")
        self._modules[str(len(self._items))] = module
        self._items.append(module)
        MODULE_CLOCK.tick()
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index``; the ones after it are renamed, as in PyTorch."""
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(module).__name__}")
        items = list(self._items)
        items.insert(index, module)
        self._renumber(items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(self._items[index])
        if not isinstance(index, (int, np.integer)) or isinstance(index, (bool, np.bool_)):
            raise TypeError(f"ModuleList indices must be int or slice, got {type(index).__name__}")
        if not -len(self._items) <= index < len(self._items):
            raise IndexError(f"ModuleList index {index} is out of range for {len(self._items)} module(s)")
        return self._items[index]

    def __setitem__(self, index: int, module: Module) -> None:
        """Replace the module at ``index``; it keeps its name."""
        self[index]  # noqa: B018 - the index checks of __getitem__
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(module).__name__}")
        items = list(self._items)
        items[index] = module
        self._renumber(items)

    def __delitem__(self, index) -> None:
        """Remove the module(s) at ``index`` (an int or a slice); the rest are renumbered 0, 1, ..."""
        if not isinstance(index, slice):
            self[index]  # noqa: B018 - the index checks of __getitem__
        items = list(self._items)
        del items[index]
        self._renumber(items)

    def __add__(self, other) -> "ModuleList":
        if not isinstance(other, ModuleList):
            return NotImplemented
        return ModuleList([*self._items, *other._items])

    def _renumber(self, items) -> None:
        self._items = []
        self._modules.clear()
        self.extend(items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)


class ModuleDict(Module):
    """Sub-modules by name, in insertion order (PyTorch's ``ModuleDict``): ``layers["encoder"]``."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r} (it holds {list(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        """Held in the registry only, not as an attribute: a key such as "train" must not hide the
        method (``layers.encoder`` still reads it, through ``Module.__getattr__``)."""
        registry_name("ModuleDict", key)
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict holds Modules, got {type(module).__name__} for {key!r}")
        if key in self.__dict__:  # md.head = A made an attribute too: the registry must stay what it reads
            if not isinstance(self.__dict__[key], Module):
                raise KeyError(f"ModuleDict: {key!r} is an attribute of the ModuleDict itself, not a free key")
            del self.__dict__[key]
        self._modules[key] = module
        MODULE_CLOCK.tick()  # a compiled step records again

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - the key check of __getitem__
        del self._modules[key]
        self.__dict__.pop(key, None)
        MODULE_CLOCK.tick()

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        """Add (or replace) the modules of a dict or of (name, module) pairs."""
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        for key, module in pairs:
            self[key] = module

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            del self[key]
