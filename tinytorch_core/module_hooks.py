"""Forward hooks of a module, as in PyTorch: code that sees, or changes, what a module is called
with before its ``forward`` runs (``register_forward_pre_hook``) and what it returned after
(``register_forward_hook``). Feature extraction and activation statistics use them without
touching the model's code.

A module without hooks (or whose hooks were all removed) pays one attribute read per call
(``Module.__call__``). Adding or removing
a hook moves ``MODULE_CLOCK``, as any change of the module does, and ``FORWARD_HOOK_CLOCK``: a
compiled step records again (and refuses: a replay runs kernels, not hooks), also when the hook
came while the step itself ran.
"""

from __future__ import annotations

import threading
import warnings
from typing import NamedTuple

from .checks import true_or_false
from .inplace import InPlaceClock
from .tensor import RemovableHandle

#: counts the forward hooks added or removed on any module (a compiled step's replay needs none)
FORWARD_HOOK_CLOCK = InPlaceClock()


class ForwardHooks(NamedTuple):
    """A module's hooks, never changed in place (a call in progress keeps the ones it started with):
    ``pre`` holds ``(hook, with_kwargs)``, ``post`` ``(hook, with_kwargs, always_call)``."""

    pre: tuple = ()
    post: tuple = ()


#: hooks are added and removed by reading a module's ForwardHooks and writing a new one: one at a time
_CHANGING_HOOKS = threading.Lock()


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
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.{where} expects a callable, got {type(hook).__name__}")
        entry, first = (hook, *options), true_or_false(prepend, "prepend", where)
        with _CHANGING_HOOKS:
            hooks = self._forward_hooks or ForwardHooks()
            kept = getattr(hooks, kind)
            self._set_hooks(hooks._replace(**{kind: (entry, *kept) if first else (*kept, entry)}))

        def remove():
            with _CHANGING_HOOKS:
                hooks = self._forward_hooks
                kept = getattr(hooks, kind) if hooks is not None else ()
                if any(e is entry for e in kept):
                    self._set_hooks(hooks._replace(**{kind: tuple(e for e in kept if e is not entry)}))

        return RemovableHandle(remove)

    def _set_hooks(self, hooks: ForwardHooks) -> None:
        """The module's hooks become ``hooks`` (None when there are none: ``Module.__call__``'s fast
        path); the module clocks move, so a compiled step records again."""
        from .module import MODULE_CLOCK  # module.py defines Module on this base: bound late

        object.__setattr__(self, "_forward_hooks", hooks if hooks.pre or hooks.post else None)  # not a setting
        MODULE_CLOCK.tick()
        FORWARD_HOOK_CLOCK.tick()


def has_forward_hooks(module) -> bool:
    return module._forward_hooks is not None


def call_with_hooks(module, hooks: ForwardHooks, args: tuple, kwargs: dict):
    """``module.forward(*args, **kwargs)`` between the pre-hooks and forward hooks of ``hooks``
    (the module's, as the call found them). When any
    of them raises, the ``always_call`` forward hooks not yet run still run (with the output, if
    there is one yet), and the first error goes on, as in PyTorch."""
    output, called = None, set()
    try:
        args, kwargs = _run_pre_hooks(module, hooks.pre, args, kwargs)
        output = module.forward(*args, **kwargs)
        for entry in hooks.post:
            called.add(id(entry))
            result = _call_forward_hook(entry, module, args, kwargs, output)
            if result is not None:
                output = result
        return output
    except BaseException:
        for entry in hooks.post:
            if entry[2] and id(entry) not in called:  # always_call
                try:
                    _call_forward_hook(entry, module, args, kwargs, output)
                except Exception as hook_error:  # the first error is the one to see
                    warnings.warn(f"forward hook {_name(entry[0])} (always_call=True) raised {hook_error!r} "
                                  f"while {type(module).__name__} was raising an error", RuntimeWarning, stacklevel=2)
        raise


def _run_pre_hooks(module, pre_hooks: tuple, args: tuple, kwargs: dict) -> tuple:
    for hook, with_kwargs in pre_hooks:
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
