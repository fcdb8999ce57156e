"""The values the JAX module template prints (templates/jax/module.py.jinja)."""

from __future__ import annotations

from gatespec import ir
from gatespec.emit.escape import py_str
from gatespec.emit.jax_lines import JaxLines, prune
from gatespec.emit.lines import _words
from gatespec.emit.printer import CodePrinter
from gatespec.emit.python_module import (
    VERSION,
    _role_text,
    constant_init,
    init_note,
    tuple_text,
    view_fold_lines,
    view_load,
)
from gatespec.schedule import Plan

# flax.linen's cells with the function of a torch.nn layer, their gates in torch's order,
# and which of each gate's Dense layers (on the input, i, or the hidden state, h) has a bias
_FLAX = {
    "LSTM": (("LSTMCell", "OptimizedLSTMCell"), "ifgo", {"sum": "h"}),
    "GRU": (("GRUCell",), "rzn", {"sum": "i", "ih": "i", "hh": "h"}),
}


def tuple_expr(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def unpack(items: list[str], value: str) -> list[str]:
    """`a, b = value`, or nothing when there is nothing to unpack."""
    if not items:
        return []
    return [f"{', '.join(items)}{',' if len(items) == 1 else ''} = {value}"]


def jax_context(plan: Plan, source_name: str) -> dict:
    cell = plan.cell
    lines = JaxLines(plan)
    # a view of a shared or transposed weight is made from it in each pass (jnp ops, which
    # the autodiff reference differentiates); the derived backward folds its gradient back
    param_loads = [view_load(p) for p in cell.params.values()]
    printer = lines.printer(True)

    # forward: the input-only work, then one scan over time
    static_forward = lines.ops_lines(plan.static_forward, loop=False, backward=False)
    loop_forward = lines.ops_lines(plan.loop_forward, loop=True, backward=False)
    out_value = lines.print(printer, ir.symbol(cell.output))
    new_values = [lines.print(printer, ir.symbol(cell.updates[s.label])) for s in cell.states]
    saves = lines.forward_saves_jax()
    body_text = "\n".join([*loop_forward, out_value, *new_values, *(v for v, _ in saves)])
    forward_xs = [n for n in lines.static_names() if n in _words(body_text)]

    # backward: one reverse scan, then the input-only adjoints and the weight gradients
    loop_backward = lines.ops_lines(plan.loop_backward, loop=True, backward=True)
    carry_lines = lines.carry_lines()
    row_lines, rows = lines.backward_ys()
    # rows before the carries: a row may hold a carry's value at this step (`d_x_all = d_q_next`)
    back_body = [*loop_backward, *row_lines, *carry_lines, *rows]
    backward_xs = lines.backward_xs(back_body)
    static_backward = lines.ops_lines(plan.static_backward, loop=False, backward=True)
    weight_grad_lines = lines.weight_grad_lines() + view_fold_lines(cell)
    grads = [lines.dx.zeros(f"T, B, {lines.size_var(leaf.size)}") if e == 0
             else lines.print(lines.printer(False), e)
             for leaf, e in zip(cell.inputs, [plan.input_grad, *plan.extra_input_grads],
                                strict=True)]
    # a cell with further inputs runs on a packed x: its gradient is packed alike
    input_grad = grads[0] if len(grads) == 1 else lines.dx.concat_last(grads)
    after = [*static_backward, *weight_grad_lines, input_grad]
    view_lines = prune(lines.view_lines(), after)
    backward_body = [*back_body, *(src for _, src in backward_xs), *view_lines, *after]

    # what the forward pass keeps for the backward pass: what the backward reads
    candidates = ["x"] if lines.caches_x() else []
    candidates += [n for n in plan.saved_static if n != cell.input.name
                   and not (n in {leaf.name for leaf in cell.inputs} and lines.caches_x())]
    candidates += [f"{s}_all" for s in plan.saved_states]
    candidates += [src for _, src in saves if src.endswith("_all")]
    for op in plan.row_ops:
        if op.context == "static":
            candidates += [name for name, _ in op.saves]
    backward_setup = prune(
        ["T, B = d_outputs.shape[:2]", "dtype = d_outputs.dtype",
         *(f'{k} = residuals["{k}"]' for k in dict.fromkeys(candidates)),
         *lines.size_lines(backward=True), *param_loads, *lines.stack_lines()],
        [*backward_body, "T"])
    residuals = [k for k in dict.fromkeys(candidates)
                 if f'{k} = residuals["{k}"]' in backward_setup]
    # the parts of a packed x, where the input-only work starts (for all steps or one)
    static_forward = prune([*lines.split_lines(), *static_forward], [body_text, *residuals])
    # what the input-only work hands on: the scan's inputs, then the residuals it makes
    made = {t.strip() for line in static_forward if not line.startswith("#")
            for t in line.split(" = ")[0].split(",")}
    inputs_out = [*forward_xs, *(r for r in residuals if r in made and r not in forward_xs)]
    forward_setup = prune(
        ["T, B = x.shape[:2]", "dtype = x.dtype",
         *(lines.size_only_lines() if cell.packed else lines.size_lines()), *param_loads,
         *lines.stack_lines()],
        [*static_forward, *loop_forward, *new_values, "T"])

    params = [{"name": p.name, "role": _role_text(p),
               "shape_text": "(" + ", ".join(p.shape) + ")",
               "shape_tuple": tuple_text(list(p.shape))} for p in cell.trained_params.values()]
    reference_lines = lines.reference_lines()
    reference_printer = CodePrinter(lines.dx.functions, {cell.input.name: "x"})
    reference_split = lines.split_lines()
    return {
        "version": VERSION,
        "cell": cell,
        "source_name": source_name,
        "params": params,
        "name_width": max((len(p["name"]) for p in params), default=0),
        "shape_width": max((len(p["shape_text"]) for p in params), default=0),
        "sizes": tuple_text(cell.sizes),
        "states": tuple_text(cell.state_names),
        "output": py_str(cell.output_label),
        "output_size": plan.derived.node(cell.output).size,
        "init_size": "hidden" if "hidden" in cell.sizes else cell.sizes[-1],
        "constant_init": constant_init(cell),
        "init_note": init_note(cell),
        "helpers": lines.helpers(),
        "state_sizes": [lines.size_var(s.size) for s in cell.states],
        "param_loads": param_loads,
        # forward
        "forward_setup": forward_setup,
        "static_forward": static_forward,
        "carry_unpack": unpack([s.name for s in cell.states], "_carry"),
        "inputs_out": tuple_expr(inputs_out),
        "inputs_unpack": unpack(inputs_out, "_inputs(x)"),
        "n_forward_xs": len(forward_xs),
        "forward_xs_unpack": unpack(forward_xs, "_xs"),
        "forward_xs": tuple_expr(forward_xs),
        "loop_forward": loop_forward,
        "new_state": tuple_expr(new_values),
        "out_value": out_value,
        "saves": tuple_expr([v for v, _ in saves]),
        "save_unpack": unpack([src for _, src in saves], "_ys[1:]"),
        "saved_states": [(k, s.label) for k, s in enumerate(cell.states)
                         if s.label in plan.saved_states],
        "residuals": residuals,
        # backward
        "backward_setup": backward_setup,
        "d_carry_unpack": unpack([f"d_{s.label}_next" for s in cell.states], "_carry"),
        "d_carry": tuple_expr([f"d_{s.label}_next" for s in cell.states]),
        "backward_xs_unpack": unpack([n for n, _ in backward_xs], "_xs"),
        "backward_xs": tuple_expr([src for _, src in backward_xs]),
        "loop_backward": [*loop_backward, *row_lines, *carry_lines],
        "rows": tuple_expr(rows),
        "rows_unpack": unpack(rows, "_ys"),
        "view_lines": view_lines,
        "static_backward": static_backward,
        "weight_grad_lines": weight_grad_lines,
        "input_grad": input_grad,
        # the cell as written, for autodiff
        "reference_lines": reference_lines,
        "reference_new": tuple_expr([lines.print(reference_printer,
                                                 ir.symbol(cell.updates[s.label]))
                                     for s in cell.states]),
        "reference_out": lines.print(reference_printer, ir.symbol(cell.output)),
        "reference_loads": prune(["dtype = x.dtype", *lines.size_only_lines(), *param_loads],
                                 [*reference_lines, *reference_split]),
        "reference_split": prune(reference_split, reference_lines),
        "flax": _flax_layout(cell),
        "size_fields": [s for s in cell.sizes if s != cell.input.size],
    }


def _flax_layout(cell: ir.Cell) -> dict | None:
    """Where each parameter sits in an equivalent flax.linen cell, or None."""
    layout = cell.torch_layout
    if layout is None or layout.layer not in _FLAX or any(
            s not in ("input", "hidden") for s in cell.sizes):  # Flax has no projection
        return None
    cells, gates, bias_at = _FLAX[layout.layer]
    weights = dict(layout.weights)
    if len(weights.get("weight_ih", ())) != len(gates) or any(
            kind not in bias_at for _, _, kind in layout.biases):
        return None
    kernels = [(f"i{g}", w) for g, w in zip(gates, weights["weight_ih"], strict=True)]
    kernels += [(f"h{g}", w) for g, w in zip(gates, weights["weight_hh"], strict=True)]
    biases = [(f"{bias_at[kind]}{gates[k]}", name) for name, k, kind in layout.biases]
    return {"layer": layout.layer, "cells": tuple_text(list(cells)),
            "kernels": kernels, "biases": biases,
            "carry": "c, h" if layout.layer == "LSTM" else "h"}
