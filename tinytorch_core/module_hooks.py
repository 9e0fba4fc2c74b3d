"""Forward hooks of a module, as in PyTorch: code that sees, or changes, what a module is called
with before its ``forward`` runs (``register_forward_pre_hook``) and what it returned after
(``register_forward_hook``). Feature extraction and activation statistics use them without
touching the model's code.

A module without hooks pays one attribute read per call (``Module.__call__``). Adding or removing
a hook moves ``MODULE_CLOCK``, as any change of the module does, and ``FORWARD_HOOK_CLOCK``: a
compiled step records again (and refuses: a replay runs kernels, not hooks), also when the hook
came while the step itself ran.
"""

from __future__ import annotations

import warnings

from .checks import true_or_false
from .inplace import InPlaceClock
from .tensor import RemovableHandle

#: counts the forward hooks added or removed on any module (a compiled step's replay needs none)
FORWARD_HOOK_CLOCK = InPlaceClock()


class ForwardHooks:
    """A module's hooks: ``pre`` holds ``(hook, with_kwargs)``, ``post`` ``(hook, with_kwargs, always_call)``."""

    __slots__ = ("pre", "post")

    def __init__(self):
        self.pre, self.post = [], []


class ModuleHooks:
    """The hook methods of ``Module`` (its base; state: ``_forward_hooks``, None until the first hook)."""

    _forward_hooks = None

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False):
        """``hook(module, args)`` runs before ``forward``; it returns None (the arguments stay) or
        new positional arguments (a tuple, or one value). With ``with_kwargs``: ``hook(module, args,
        kwargs)`` returning None or ``(args, kwargs)``. Returns a handle with ``remove()``."""
        where = "register_forward_pre_hook"
        return self._add_hook(where, "pre", hook, prepend, (true_or_false(with_kwargs, "with_kwargs", where),))

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        """``hook(module, args, output)`` runs after ``forward``; it returns None (the output
        stays) or a new output. With ``with_kwargs``: ``hook(module, args, kwargs, output)``. With
        ``always_call`` it runs also when ``forward`` raised (with output None), and the error goes on."""
        where = "register_forward_hook"
        options = (true_or_false(with_kwargs, "with_kwargs", where), true_or_false(always_call, "always_call", where))
        return self._add_hook(where, "post", hook, prepend, options)

    def _add_hook(self, where: str, kind: str, hook, prepend: bool, options: tuple):
        from .module import MODULE_CLOCK  # module.py defines Module on this base: bound late

        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.{where} expects a callable, got {type(hook).__name__}")
        if self._forward_hooks is None:
            object.__setattr__(self, "_forward_hooks", ForwardHooks())  # not a setting: no registry
        hooks = getattr(self._forward_hooks, kind)
        entry = (hook, *options)
        hooks.insert(0 if true_or_false(prepend, "prepend", where) else len(hooks), entry)
        MODULE_CLOCK.tick()
        FORWARD_HOOK_CLOCK.tick()

        def remove():
            if any(e is entry for e in hooks):
                hooks[:] = [e for e in hooks if e is not entry]
                MODULE_CLOCK.tick()
                FORWARD_HOOK_CLOCK.tick()

        return RemovableHandle(remove)


def has_forward_hooks(module) -> bool:
    hooks = module._forward_hooks
    return hooks is not None and bool(hooks.pre or hooks.post)


def call_with_hooks(module, args: tuple, kwargs: dict):
    """``module.forward(*args, **kwargs)`` between its pre-hooks and its forward hooks. When any
    of them raises, the ``always_call`` forward hooks not yet run still run (with the output, if
    there is one yet), and the first error goes on, as in PyTorch."""
    hooks, output, called = module._forward_hooks, None, set()
    try:
        args, kwargs = _run_pre_hooks(module, hooks.pre, args, kwargs)
        output = module.forward(*args, **kwargs)
        for entry in tuple(hooks.post):  # a hook may remove itself
            called.add(id(entry))
            result = _call_forward_hook(entry, module, args, kwargs, output)
            if result is not None:
                output = result
        return output
    except BaseException:
        for entry in tuple(hooks.post):
            if entry[2] and id(entry) not in called:  # always_call
                try:
                    _call_forward_hook(entry, module, args, kwargs, output)
                except Exception as hook_error:  # the first error is the one to see
                    warnings.warn(f"forward hook {_name(entry[0])} (always_call=True) raised {hook_error!r} "
                                  f"while {type(module).__name__} was raising an error", RuntimeWarning, stacklevel=2)
        raise


def _run_pre_hooks(module, pre_hooks: list, args: tuple, kwargs: dict) -> tuple:
    for hook, with_kwargs in tuple(pre_hooks):
        if with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                args, kwargs = _arguments_and_keywords(hook, result)
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    return args, kwargs


def _call_forward_hook(entry: tuple, module, args: tuple, kwargs: dict, output):
    hook, with_kwargs, _ = entry
    return hook(module, args, kwargs, output) if with_kwargs else hook(module, args, output)


def _name(hook) -> str:
    return repr(getattr(hook, "__qualname__", type(hook).__name__))


def _arguments_and_keywords(hook, result) -> tuple:
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise TypeError(f"forward pre-hook {_name(hook)} (with_kwargs=True) must return None or a tuple (args, kwargs), "
                        f"got {type(result).__name__}")
    args = result[0] if isinstance(result[0], tuple) else (result[0],)
    return args, result[1]
