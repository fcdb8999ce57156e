"""`equivalent torch.nn.LSTM gates i f g o`: check the claim, and resolve where each
parameter sits in the framework layer's stacked weights."""

from __future__ import annotations

import sympy

from gatespec import ir
from gatespec.errors import CheckError, Span

# layer -> number of gates stacked in its weights
TORCH_LAYERS = {"torch.nn.LSTM": 4, "torch.nn.GRU": 3, "torch.nn.RNN": 1}


def resolve_torch(layer: str, gates: tuple[str, ...], span: Span, cell: ir.Cell) -> ir.TorchLayout:
    if layer not in TORCH_LAYERS:
        raise CheckError(f"unknown equivalent '{layer}'; known: {', '.join(TORCH_LAYERS)}", span)
    if len(gates) != TORCH_LAYERS[layer]:
        raise CheckError(f"{layer} stacks {TORCH_LAYERS[layer]} gates; {len(gates)} are named",
                         span)
    state = _carried_state(cell)
    if state is None:
        raise CheckError(f"{layer} outputs its state at every step; this cell's output "
                         f"'{cell.output_label}' is neither a state nor copied into one", span)
    x, r = cell.input.label, state.label
    params = cell.trained_params
    if cell.views:  # a torch.nn layer's weights are all its own
        raise CheckError(f"{layer} has no shared or transposed weights; this cell uses "
                         f"weight= ({cell.views[0].name} = {cell.views[0].source}"
                         f"{'.T' if cell.views[0].transpose else ''}): not the same function",
                         span)

    def need(name: str, why: str) -> str:
        if name not in params:
            raise CheckError(f"{layer} needs parameter '{name}' ({why}), which this cell lacks",
                             span)
        return name

    weight_ih = tuple(need(f"W_{g}{x}", f"gate {g} reads the input") for g in gates)
    weight_hh = tuple(need(f"W_{g}{r}", f"gate {g} reads {r}") for g in gates)
    biases: list[tuple[str, int, str]] = []
    for k, g in enumerate(gates):
        if f"b_{g}" in params:
            biases.append((f"b_{g}", k, "sum"))
        elif f"b_{g}{x}" in params and f"b_{g}{r}" in params:
            biases += [(f"b_{g}{x}", k, "ih"), (f"b_{g}{r}", k, "hh")]
        else:
            raise CheckError(f"{layer} has a bias for gate {g}; this cell has none", span)
    weights = [("weight_ih", weight_ih), ("weight_hh", weight_hh)]
    if state.size != "hidden":
        projection = [p.name for p in params.values() if p.owner == r and p.role == "weight"]
        if layer != "torch.nn.LSTM" or state.size != "proj" or len(projection) != 1:
            raise CheckError(f"{layer} keeps {r} at hidden size (or, for LSTM, a proj size "
                             f"made by one projection weight)", span)
        weights.append(("weight_hr", (projection[0],)))
    placed = {n for _, names in weights for n in names} | {b for b, _, _ in biases}
    for p in params:
        if p not in placed:
            raise CheckError(f"parameter '{p}' has no place in {layer}: not the same function",
                             span)
    options: tuple[tuple[str, str], ...] = ()
    if layer == "torch.nn.RNN":
        update = next(n for n in cell.nodes if n.name == cell.output)
        kind = type(update.expr).__name__ if isinstance(update, ir.Pointwise) else ""
        if kind not in ("tanh", "relu"):
            raise CheckError("torch.nn.RNN applies tanh or relu to its update", span)
        options = (("nonlinearity", kind),)
    return ir.TorchLayout(layer.rsplit(".", 1)[1], tuple(weights), tuple(biases), options)


def _carried_state(cell: ir.Cell) -> ir.Leaf | None:
    """The state a torch layer carries and returns at every step: the output, or a state
    whose update copies the output (`h' = y` with `output y`)."""
    copies = {n.name: n.expr.name for n in cell.nodes
              if isinstance(n, ir.Pointwise) and isinstance(n.expr, sympy.Symbol)}
    for s in cell.states:
        new = cell.updates[s.label]
        if new == cell.output or copies.get(new) == cell.output:
            return s
    return None
