"""Module-level ``__getattr__`` for the namespaces that resolve through the registry."""

from __future__ import annotations


def namespace_resolver(namespace: str):
    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        from .runtime import default_runtime

        return default_runtime().resolve(namespace, name)

    def __dir__():
        from .runtime import default_runtime

        return default_runtime().names(namespace)

    return __getattr__, __dir__
