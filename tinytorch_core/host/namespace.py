"""Attribute access that resolves through the registry: ``tinytorch_core.nn.Linear`` and friends."""

from __future__ import annotations


class Namespace:
    """``tinytorch_core.<namespace>`` as seen by one runtime: ``Namespace(runtime, "nn").Linear``
    (what the milestones use to run on the runtime they are given)."""

    def __init__(self, runtime, namespace: str):
        self._runtime, self._namespace = runtime, namespace

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._runtime.resolve(self._namespace, name)

    def __dir__(self):
        return self._runtime.names(self._namespace)


def namespace_resolver(namespace: str):
    """Module-level ``__getattr__`` and ``__dir__`` for ``tinytorch_core.<namespace>``, resolved in
    the default runtime (which ``use_runtime`` may swap, so it is looked up on every access)."""

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        from .runtime import default_runtime

        return default_runtime().resolve(namespace, name)

    def __dir__():
        from .runtime import default_runtime

        return default_runtime().names(namespace)

    return __getattr__, __dir__
