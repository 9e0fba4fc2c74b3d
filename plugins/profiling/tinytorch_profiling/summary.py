"""``summary(model, input)``: a model's layers as one forward pass sees them (like torchinfo).

One forward pass runs under a profiler (no graph, eval mode, the model's mode restored after);
each module call gives a row (a layer used twice has two): its path, output shape, the parameters
it holds itself (in its first call's row), the FLOPs of the ops run inside that call (its
children's included), and the bytes of its output (the activation it hands on). The totals count each parameter once, and the activation memory of the leaf
layers: what a training step keeps for backward, roughly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinytorch_core import Module, Tensor, no_grad

from .profiler import FORWARD, MODULE, Profiler
from .report import escape, format_bytes, format_count, format_shapes, render


@dataclass
class LayerRow:
    path: str  # "(Sequential)" for the model itself, "0", "blocks.0.attn" below it
    type: str
    depth: int
    output_shapes: tuple
    parameters: int  # held by this module itself, not its children
    flops: int | None  # ops run inside it, children included; None when an op states no formula
    output_bytes: int


@dataclass
class ModelSummary:
    rows: list[LayerRow]
    parameters: int
    trainable_parameters: int
    parameter_bytes: int
    flops: int | None  # one forward pass
    activation_bytes: int  # outputs of the leaf layers
    input_shapes: tuple

    def __str__(self) -> str:
        from rich.table import Table

        grid = Table(title=f"Model summary for input {format_shapes(self.input_shapes)}")
        for header in ("Layer", "Type", "Output shape", "Params", "FLOPs", "Output memory"):
            grid.add_column(header, justify="left" if header in ("Layer", "Type", "Output shape") else "right")
        for r in self.rows:
            grid.add_row(escape("  " * r.depth + r.path), r.type, format_shapes(r.output_shapes),
                         f"{r.parameters:,}" if r.parameters else "", format_count(r.flops),
                         format_bytes(r.output_bytes))
        totals = (f"parameters: {self.parameters:,} ({self.trainable_parameters:,} trainable, "
                  f"{format_bytes(self.parameter_bytes)}); forward FLOPs: {format_count(self.flops)}; "
                  f"activations of the leaf layers: {format_bytes(self.activation_bytes)}")
        return render(grid, 132) + totals + "\n"


def summary(model, *inputs) -> ModelSummary:
    """Run ``model(*inputs)`` once, without a graph, and describe every layer it called."""
    if not isinstance(model, Module):
        raise TypeError(f"summary(): expected a Module, got {type(model).__name__}")
    if not inputs:
        raise TypeError("summary(): give the input(s) the model is called with, e.g. summary(model, x)")
    tensors = [x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in inputs]
    was_training = model.training
    model.eval()
    try:
        with no_grad(), Profiler(profile_memory=False) as profiler:
            model(*tensors)
    finally:
        model.train(was_training)
    rows = _layer_rows(model, profiler.events)
    parameters = list(model.parameters())
    leaves = [r for r in rows if not any(other.path.startswith(f"{r.path}.") for other in rows) and r.depth > 0]
    return ModelSummary(
        rows=rows,
        parameters=sum(p.data.size for p in parameters),
        trainable_parameters=sum(p.data.size for p in parameters if p.requires_grad),
        parameter_bytes=sum(p.data.nbytes for p in parameters),
        flops=_flops_inside(profiler.events, lambda op: True),
        activation_bytes=sum(r.output_bytes for r in (leaves or rows)),
        input_shapes=tuple(t.shape for t in tensors),
    )


def _layer_rows(model: Module, events: list) -> list[LayerRow]:
    """One row per module call, in the order of the calls: a module called twice (one layer used at
    two places) has two rows; its parameters are counted in the first."""
    modules = {(name or f"({type(model).__name__})"): m for name, m in model.named_modules()}
    rows, counted = [], set()
    for event in sorted((e for e in events if e.kind == MODULE), key=lambda e: e.start_ns):
        module = modules.get(event.name)
        first_call = event.name not in counted
        counted.add(event.name)

        def inside(op, call=event):  # an op of this call: run while it ran, in it or in its children
            within = call.start_ns <= op.start_ns <= call.end_ns
            return within and (not call.depth or op.module == call.name or op.module.startswith(f"{call.name}."))

        rows.append(LayerRow(
            path=event.name,
            type=event.module_type,
            depth=event.depth,
            output_shapes=event.output_shapes,
            parameters=(sum(p.data.size for p in module._parameters.values() if p is not None)
                        if module is not None and first_call else 0),
            flops=_flops_inside(events, inside),
            output_bytes=event.output_bytes,
        ))
    return rows


def _flops_inside(events: list, inside) -> int | None:
    """FLOPs of the forward ops ``inside`` accepts; None if one states no formula."""
    total = 0
    for event in events:
        if event.kind == FORWARD and inside(event):
            if event.flops is None:
                return None
            total += event.flops
    return total
