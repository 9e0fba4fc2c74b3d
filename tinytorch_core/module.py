"""``Parameter`` and ``Module``: the shared contract every layer of every stage builds on."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .checks import refuse_masked, target_dtype, true_or_false, values_that_do_not_fit
from .grad_mode import _per_thread
from .inplace import InPlaceClock
from .module_hooks import ModuleHooks, call_with_hooks
from .tensor import Tensor

#: moves on every change of what a module holds (parameters, buffers, sub-modules) or of its
#: training mode: a compiled training step (the acceleration stage) recorded at one time is
#: replayed only while this clock has not moved since, one comparison per call
MODULE_CLOCK = InPlaceClock()


class Parameter(Tensor):
    """A tensor that is a trainable weight: it requires grad unless told otherwise."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        if dtype is None and isinstance(data, Tensor):  # Parameter(t) keeps t's dtype, as in PyTorch
            dtype = data.dtype
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__()[len("tensor(") :]


class StateDictError(ValueError, RuntimeError):
    """A state dict that does not fit the module: missing, unexpected or mis-shaped entries (a
    RuntimeError too, what PyTorch raises)."""


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` did not match (PyTorch's return value): ``result.missing_keys``,
    or ``result["missing_keys"]``."""

    missing_keys: list
    unexpected_keys: list

    def __getitem__(self, key):
        return getattr(self, key) if isinstance(key, str) else tuple.__getitem__(self, key)


def _a_setting_changed(attributes: dict, name: str, value) -> bool:
    """Whether assigning ``value`` changes a setting the module already had (``loss.reduction =
    "sum"``, ``act.negative_slope = 0.5``, a new class-weight tensor): a compiled step recorded
    with the old one must record again. Setting the same value again changes nothing."""
    old = attributes.get(name, _ABSENT)
    if old is _ABSENT or old is value:
        return False
    if isinstance(old, (Tensor, np.ndarray)) or isinstance(value, (Tensor, np.ndarray)):
        return True
    if not isinstance(old, _SETTINGS) or type(old) is not type(value):
        return isinstance(old, _SETTINGS)
    try:
        return bool(old != value)
    except (TypeError, ValueError):  # a tuple holding arrays: no plain answer, so count it as a change
        return True


def registry_name(call: str, name) -> str:
    """A name for a registry (a state-dict key's last part): a non-empty string without dots."""
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"{call}: a name must be a non-empty string without dots, got {name!r}")
    return name


_ABSENT = object()
_SETTINGS = (bool, int, float, str, tuple, type(None))


class Module(ModuleHooks):
    """Base class of layers and models.

    Parameters, buffers and sub-modules assigned as attributes register themselves,
    while staying plain attributes so that reading ``self.weight`` in ``forward`` is fast.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -------------------------------------------------------------------
    def _registries(self):
        d = self.__dict__
        if "_parameters" not in d:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning "
                "parameters, buffers or sub-modules"
            )
        return d["_parameters"], d["_buffers"], d["_modules"]

    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Module)) or "_parameters" in self.__dict__:
            params, buffers, modules = self._registries()
            if name in params or name in buffers or name in modules or name == "training" \
                    or isinstance(value, (Parameter, Module)) or _a_setting_changed(self.__dict__, name, value):
                MODULE_CLOCK.tick()
            # a trainable leaf (a Parameter, or a tensor requiring grad swapped in for a gradient
            # check) takes the parameter's place; anything else would silently drop out of
            # parameters(): ``m.weight = m.weight - 0.1`` is refused
            trainable_leaf = isinstance(value, Tensor) and value.requires_grad and value.is_leaf
            if name in modules and value is not None and not isinstance(value, Module):
                raise TypeError(f"cannot assign a {type(value).__name__} to '{name}', a sub-module of "
                                f"{type(self).__name__}: assign a Module (or None)")
            if name in params and value is not None and not trainable_leaf:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to '{name}', a parameter of "
                    f"{type(self).__name__}: assign a Parameter (or None), or change the values in place "
                    f"under no_grad() (with no_grad(): m.{name} -= 0.1)"
                )
            # a name that stays in its registry keeps its place there (state-dict order, as in PyTorch)
            if isinstance(value, Parameter) or (name in params and trainable_leaf):
                params[name] = value
                modules.pop(name, None)
                buffers.pop(name, None)
            elif isinstance(value, Module):
                modules[name] = value
                params.pop(name, None)
                buffers.pop(name, None)
            elif value is None:  # the name keeps its place, holding None (PyTorch's order when set again)
                for registry in (params, modules):
                    if name in registry:
                        registry[name] = None
            else:
                params.pop(name, None)
                modules.pop(name, None)
            if not isinstance(value, (Parameter, Module)) and name in buffers:
                if value is not None and not isinstance(value, Tensor):
                    raise TypeError(f"buffer '{name}' must be a Tensor or None, got {type(value).__name__}")
                buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        object.__delattr__(self, name)  # first: a name that is not there leaves the registries alone
        params, buffers, modules = self._registries()
        for registry in (params, buffers, modules):
            registry.pop(name, None)
        self.__dict__.get("_non_persistent", set()).discard(name)
        self.__dict__.get("_buffer_rebuilders", {}).pop(name, None)
        MODULE_CLOCK.tick()

    def __getattr__(self, name):
        """Called only for a name not found the usual way: a sub-module, parameter or buffer a
        registry holds without an attribute (``Sequential(OrderedDict(fc=...)).fc``)."""
        for registry in ("_modules", "_parameters", "_buffers"):
            held = self.__dict__.get(registry)
            if held is not None and name in held:
                return held[name]
        attribute = getattr(type(self), name, None)
        if isinstance(attribute, property) and attribute.fget is not None:  # its getter raised: raise that error
            return attribute.fget(self)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True, rebuild=None) -> None:
        """A non-trainable state tensor (running statistics) saved in the state dict.

        ``rebuild(dtype)``, for a buffer computed from a formula (a table of sines), returns its
        array computed in ``dtype``: ``Module.to`` calls it instead of casting, so a float32
        table moved to float64 is float64-accurate rather than float32 values widened.
        """
        params, buffers, modules = self._registries()
        registry_name("register_buffer", name)
        if name not in buffers and (name in params or name in modules or name in self.__dict__):
            raise KeyError(f"register_buffer('{name}'): {type(self).__name__} already has an attribute '{name}' "
                           f"({'a parameter' if name in params else 'a sub-module' if name in modules else 'a plain attribute'}); "
                           "delete it first")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer('{name}'): expected a Tensor, got {type(tensor).__name__}")
        if rebuild is not None and not callable(rebuild):
            raise TypeError(f"register_buffer('{name}'): rebuild must be a function of a dtype")
        buffers[name] = tensor
        MODULE_CLOCK.tick()
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)
        else:
            self.__dict__.get("_non_persistent", set()).discard(name)
        if rebuild is not None:
            self.__dict__.setdefault("_buffer_rebuilders", {})[name] = rebuild
        object.__setattr__(self, name, tensor)

    # ---- traversal ------------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = list(module._modules.items())
            for child_name, child in reversed(children):
                if child is not None:
                    stack.append((f"{name}.{child_name}" if name else child_name, child))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_children(self, remove_duplicate: bool = True):
        """The direct sub-modules, each once (one held under two names comes under its first),
        or under every name it has (``remove_duplicate=False``: a Sequential's layers as they run)."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and not (remove_duplicate and id(m) in seen):
                seen.add(id(m))
                yield name, m

    def named_parameters(self, prefix: str = ""):
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))  # a shared (tied) parameter is listed once
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "", persistent_only: bool = False):
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            skip = module.__dict__.get("_non_persistent", ()) if persistent_only else ()
            for name, b in module._buffers.items():
                if b is not None and name not in skip and id(b) not in seen:
                    seen.add(id(b))  # a shared buffer is listed once, as a shared parameter is
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def num_parameters(self) -> int:
        return sum(p.data.size for p in self.parameters())

    # ---- modes and gradients ----------------------------------------------------------------
    def apply(self, fn) -> "Module":
        """Call ``fn`` on every sub-module (children first) and then on this module, as PyTorch
        does; e.g. ``model.apply(init_weights)``. Returns this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def train(self, mode: bool = True) -> "Module":
        mode = true_or_false(mode, "mode", f"{type(self).__name__}.train")  # "False" would train
        switched = [m for m in self.modules() if m.training is not mode]
        for m in switched:
            object.__setattr__(m, "training", mode)
        if switched:  # model.train() at every step changes nothing: compiled steps keep replaying
            MODULE_CLOCK.tick()
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the parameters' gradients (None, or zeros in place with ``set_to_none=False``)."""
        if type(set_to_none) is not bool:  # "False" would read as True; the name is built only then
            set_to_none = true_or_false(set_to_none, "set_to_none", f"{type(self).__name__}.zero_grad")
        observer = _per_thread.modes.observer  # a compiled step's recorder replays this call
        if observer is not None:
            observer.update_called(self.zero_grad, (set_to_none,))
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()
        if observer is not None:
            observer.update_finished()

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        true_or_false(requires_grad, "requires_grad", f"{type(self).__name__}.requires_grad_")
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, dtype) -> "Module":
        """Cast every floating parameter and buffer (float64 for numerical checks); ``"cpu"``: itself."""
        dtype = target_dtype(dtype, "Module.to")
        if dtype is None:
            return self
        if dtype.kind != "f":
            raise TypeError(f"Module.to: expected a floating dtype, got {dtype}")
        for module in self.modules():
            rebuilders = module.__dict__.get("_buffer_rebuilders", {})
            for name, buffer in module._buffers.items():
                if name in rebuilders and buffer is not None and buffer.data.dtype.kind == "f":
                    buffer.data = np.asarray(rebuilders[name](dtype), dtype=dtype)
                    buffer._bump()
        for t in list(self.parameters()) + list(self.buffers()):
            if t.data.dtype.kind == "f" and t.data.dtype != dtype:
                t.data = t.data.astype(dtype)
                t._bump()
                if t.grad is not None:
                    t.grad = Tensor._wrap(t.grad.data.astype(dtype))
        return self

    def float(self) -> "Module":
        """PyTorch's ``model.float()``: ``to(np.float32)``."""
        return self.to(np.float32)

    def double(self) -> "Module":
        """PyTorch's ``model.double()``: ``to(np.float64)``."""
        return self.to(np.float64)

    def half(self) -> "Module":
        return self.to(np.float16)

    # ---- PyTorch's registration and lookup calls ------------------------------------------------
    def add_module(self, name: str, module) -> None:
        """``self.<name> = module`` under a name given as a string (a Module, or None)."""
        registry_name("add_module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): expected a Module or None, got {type(module).__name__}")
        setattr(self, name, module)

    register_module = add_module

    def register_parameter(self, name: str, parameter) -> None:
        """``self.<name> = parameter`` under a name given as a string (a Parameter, or None)."""
        registry_name("register_parameter", name)
        if parameter is not None and not isinstance(parameter, Parameter):
            raise TypeError(f"register_parameter('{name}'): expected a Parameter or None, got {type(parameter).__name__}")
        setattr(self, name, parameter)

    def get_submodule(self, target: str) -> "Module":
        """The sub-module at the dotted path ``target`` ("" is this module)."""
        module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"get_submodule: {type(module).__name__} has no sub-module '{part}' (in '{target}')")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at the dotted path ``target`` ("layer.weight")."""
        path, _, name = target.rpartition(".")
        owner = self.get_submodule(path)
        if owner._parameters.get(name) is None:
            raise AttributeError(f"get_parameter: {type(owner).__name__} has no parameter '{name}' (in '{target}')")
        return owner._parameters[name]

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and persistent buffer, by dotted name, in PyTorch's order:
        module by module, each one's parameters, then its buffers. A tensor shared by two layers
        (tied weights) is listed under each name, as in PyTorch. Copies, not views: changing the
        dict leaves the model alone (in PyTorch it would not)."""
        return OrderedDict((name, tensor.data.copy()) for name, tensor in self._state_tensors())

    def _state_tensors(self):
        """(dotted name, tensor) of every parameter and persistent buffer under every name it
        has, depth first; a module that contains itself is not entered again."""
        stack = [("", self, ())]
        while stack:
            name, module, ancestors = stack.pop()
            prefix = f"{name}." if name else ""
            for key, parameter in module._parameters.items():
                if parameter is not None:
                    yield prefix + key, parameter
            skip = module.__dict__.get("_non_persistent", ())
            for key, buffer in module._buffers.items():
                if buffer is not None and key not in skip:
                    yield prefix + key, buffer
            path = (*ancestors, id(module))
            for child_name, child in reversed(module._modules.items()):
                if child is not None and id(child) not in path:
                    stack.append((prefix + child_name, child, path))

    def load_state_dict(self, state, strict: bool = True) -> "IncompatibleKeys":
        """Copy values in place (optimizers keep their references). Mismatches raise
        ``StateDictError`` listing every missing, unexpected and mis-shaped key."""
        strict = true_or_false(strict, "strict", f"load_state_dict into {type(self).__name__}")
        if not isinstance(state, Mapping):
            raise StateDictError(f"load_state_dict into {type(self).__name__}: expected a dict of arrays "
                                 f"(name -> array), got {type(state).__name__}")
        targets = OrderedDict(self._state_tensors())
        for key, value in state.items():  # np.asarray would drop the mask without a word
            refuse_masked(f"load_state_dict into {type(self).__name__}: '{key}'", value)
        incoming = {k: (v.data if isinstance(v, Tensor) else np.asarray(v)) for k, v in state.items()}
        missing = [k for k in targets if k not in incoming and k not in self._optional_state_keys()]
        unexpected = [k for k in incoming if k not in targets]
        mismatched = [
            f"{k}: checkpoint {incoming[k].shape} vs model {targets[k].data.shape}"
            for k in targets
            if k in incoming and incoming[k].shape != targets[k].data.shape
        ]
        wrong_kind = [
            f"{k}: checkpoint dtype {incoming[k].dtype} vs model {targets[k].data.dtype}"
            for k in targets
            if k in incoming and incoming[k].dtype.kind != targets[k].data.dtype.kind
        ]
        overflowing = [f"{k}: {why}" for k in targets if k in incoming and incoming[k].shape == targets[k].data.shape
                       and (why := values_that_do_not_fit(incoming[k], targets[k].data.dtype))]
        problems = [f"values the model's dtype cannot hold: {overflowing}"] if overflowing else []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if mismatched:
            problems.append(f"shape mismatch: {mismatched}")
        if wrong_kind:
            problems.append(f"dtype mismatch: {wrong_kind}")
        if problems:
            raise StateDictError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for k, t in targets.items():
            if k in incoming:
                t.data[...] = incoming[k]
                t._bump()
        return IncompatibleKeys(missing, unexpected)

    def _optional_state_keys(self) -> set:
        """Dotted names a state dict may leave out (each module's ``optional_state_keys``, such as
        BatchNorm's batch counter, which older checkpoints lack): they keep their values."""
        return {f"{name}.{key}" if name else key
                for name, module in self.named_modules() for key in getattr(module, "optional_state_keys", ())}

    # ---- calling and printing -----------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        observer = _per_thread.modes.observer  # a profiler watching this thread, or None (observers.py)
        hooks = self._forward_hooks  # read once: another thread may remove the last hook meanwhile
        if observer is None and hooks is None:
            return self.forward(*args, **kwargs)
        started, output = None if observer is None else observer.module_started(self), None
        try:
            output = self.forward(*args, **kwargs) if hooks is None else call_with_hooks(self, hooks, args, kwargs)
            return output
        finally:
            if observer is not None:
                observer.module_finished(started, output)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_text}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"



def __getattr__(name: str):
    """``ModuleList``'s home before ``containers.py``: a pickle written then names it here."""
    if name in ("ModuleList", "ModuleDict"):
        from . import containers

        return getattr(containers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
