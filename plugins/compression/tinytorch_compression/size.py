"""How many bytes a model's state takes, by dtype: what its checkpoint holds, before the header."""

from __future__ import annotations

from dataclasses import dataclass

from tinytorch_core import Module

__all__ = ["ModelSize", "model_size"]


@dataclass(frozen=True)
class ModelSize:
    total: int  # bytes
    by_dtype: dict  # dtype name ("float32", "int8", ...) -> bytes

    def __str__(self) -> str:
        parts = ", ".join(f"{dtype} {size:,}" for dtype, size in sorted(self.by_dtype.items()))
        return f"{self.total:,} bytes ({parts})"


def model_size(model) -> ModelSize:
    """The bytes of every parameter and persistent buffer of ``model`` (its state dict), by dtype."""
    if not isinstance(model, Module):
        raise TypeError(f"model_size: expected a Module, got {type(model).__name__}")
    by_dtype: dict = {}
    for array in model.state_dict().values():
        by_dtype[array.dtype.name] = by_dtype.get(array.dtype.name, 0) + array.nbytes
    return ModelSize(sum(by_dtype.values()), by_dtype)
