"""The values a Python module template prints, shared by the NumPy and PyTorch targets."""

from __future__ import annotations

from gatespec import __version__
from gatespec.emit.dialects import Dialect
from gatespec.emit.escape import py_str
from gatespec.emit.lines import ModuleLines, drop_unused_bindings, prune_assignments
from gatespec.emit.scan_lines import ScanLines, scan_refusal
from gatespec.schedule import Plan

VERSION = __version__


def module_context(plan: Plan, dialect: Dialect, source_name: str,
                   lines: ModuleLines | None = None, rows: bool = False) -> dict:
    """Everything a Python module template (NumPy, PyTorch, Triton) prints. rows: each step
    computes only the active rows of a variable-length batch (ModuleLines)."""
    cell = plan.cell
    lines = lines or ModuleLines(plan, dialect, rows)
    static_forward = lines.ops_lines(plan.static_forward, loop=False, backward=False)
    loop_forward = lines.ops_lines(plan.loop_forward, loop=True, backward=False)
    forward_saves = lines.forward_saves()
    loop_forward = drop_unused_bindings(loop_forward, lines.bindings, forward_saves)
    loop_backward = lines.ops_lines(plan.loop_backward, loop=True, backward=True)
    loop_backward = drop_unused_bindings(loop_backward, lines.bindings, lines.carry_lines())
    static_backward = lines.ops_lines(plan.static_backward, loop=False, backward=True)
    refusal = scan_refusal(lines)
    scan_forward = scan_backward = []
    if refusal is None:
        scan_forward, scan_backward = ScanLines(lines).forward(), ScanLines(lines).backward()
    params = [
        {
            "name": p.name,
            "role": _role_text(p),
            "shape_text": "(" + ", ".join(p.shape) + ")",
            "shape_tuple": tuple_text(list(p.shape)),
        }
        for p in cell.trained_params.values()
    ]
    # each pass makes the views of shared and transposed weights (weight=) before its time
    # loop, so the loop and the kernels see ordinary weights; the backward pass adds their
    # gradients into the weights' (view_fold_lines)
    param_loads = [lines.param_load(p) for p in cell.params.values()]
    cache_loads = [f'{k} = cache["{k}"]' for k, _ in lines.cache_entries()]
    backward_loads = lines.backward_loads()
    carry_lines = lines.carry_lines()
    weight_grad_lines = lines.weight_grad_lines() + view_fold_lines(cell)
    input_grad = _input_grad(lines, plan)
    # a view of a gradient buffer that nothing reads (its bias has bias=false) is dropped
    backward_allocs = prune_assignments(lines.backward_allocs(), [
        *backward_loads, *loop_backward, *carry_lines, *static_backward, *weight_grad_lines,
        input_grad])
    output_size = lines.size_var(plan.derived.node(cell.output).size)
    backward_body = [*backward_allocs, *backward_loads, *loop_backward, *carry_lines,
                     *scan_backward, *static_backward, *weight_grad_lines, input_grad]
    backward_setup = prune_assignments(
        [*cache_loads, *lines.size_lines(backward=True), *param_loads, *lines.stack_lines()],
        # the NumPy backward makes zeros for gradients passed as None; torch passes zeros
        [*backward_body, *([dialect.zeros(f"T, B, {output_size}"),
                            *(dialect.zeros(f"B, {lines.size_var(s.size)}") for s in cell.states)]
                           if dialect.name == "numpy" else [])])
    context = {
        "version": VERSION,
        "cell": cell,
        "source_name": source_name,
        "params": params,
        "name_width": max((len(p["name"]) for p in params), default=0),
        "shape_width": max((len(p["shape_text"]) for p in params), default=0),
        "sizes": tuple_text(cell.sizes),
        "states": tuple_text(cell.state_names),
        "output": py_str(cell.output_label),
        "init_size": "hidden" if "hidden" in cell.sizes else cell.sizes[-1],
        "size_var": lines.size_var,
        "state_sizes": ", ".join(lines.size_var(s.size) for s in cell.states),
        "final_state": _tuple_expr([f"{s.label}_all[T]" for s in cell.states]),
        "d_state0": _tuple_expr([f"d_{s.label}_next" for s in cell.states]),
        "forward_setup": prune_assignments(
            [*lines.size_lines(), *param_loads, *lines.stack_lines()],
            [*lines.forward_allocs(), *lines.forward_cache_allocs(), *static_forward,
             *loop_forward, *forward_saves, *scan_forward, lines.outputs_expr(),
             *(v for _, v in lines.cache_entries()),
             f"state0 = {lines.size_var(cell.states[0].size)}"],
        ) + lines.forward_allocs(),
        "forward_cache_allocs": lines.forward_cache_allocs(),
        # each step's previous state values, where the step reads them
        "state_loads": prune_assignments([f"{s.name} = {s.label}_all[{lines.at('t')}]"
                                          for s in cell.states],
                                         [*loop_forward, *forward_saves]),
        "static_forward": static_forward,
        "scan_refusal": refusal,
        "scan_forward": scan_forward,
        "scan_backward": scan_backward,
        "loop_forward": loop_forward,
        "forward_saves": forward_saves,
        "cache_entries": lines.cache_entries(),
        "outputs_expr": lines.outputs_expr(),
        "output_size": plan.derived.node(cell.output).size,
        "backward_setup": backward_setup,
        "backward_allocs": backward_allocs,
        "backward_loads": backward_loads,
        "loop_backward": loop_backward,
        "carry_lines": carry_lines,
        "static_backward": static_backward,
        "weight_grad_lines": weight_grad_lines,
        "input_grad": input_grad,
        "helpers": lines.helpers(),
        # parameters that start at a constant instead of uniform noise (layer-norm gain, bias)
        "constant_init": constant_init(cell),
        "init_note": init_note(cell),
        "has_scalars": any(p.role == "scalar" for p in cell.params.values()),
        "zeros": dialect.zeros,
        "rows": lines.rows,
        "carry_forward": lines.carry_forward_lines(),
        "zero_saved": lines.zero_saved_lines(),
        "carry_split": lines.carry_split_lines(backward_allocs),
        "carry_join": lines.carry_join_lines(),
        "lines": lines,
    }
    return context


def view_load(p) -> str:
    """A parameter's load at the top of a pass; a view is made from its weight."""
    if p.role != "view":
        return f'{p.name} = params["{p.name}"]'
    return f'{p.name} = params["{p.source}"]' + (".T" if p.transpose else "")


def view_fold_lines(cell) -> list[str]:
    """Each view's gradient added into its weight's (transposed back where it is a transpose)."""
    return [f'd_params["{p.source}"] = d_params["{p.source}"] + d_params["{p.name}"]'
            + (".T" if p.transpose else "") for p in cell.views]


def _tuple_expr(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def tuple_text(items: list[str]) -> str:
    """A tuple of strings as Python source."""
    return "(" + ", ".join(py_str(i) for i in items) + ("," if len(items) == 1 else "") + ")"


# a normalisation's gain starts at 1, its bias at 0
_NORM_ROLES = ("ln_gain", "ln_bias", "rms_gain", "rms_bias")


def constant_init(cell) -> str:
    """The parameters that start at a constant instead of uniform noise, as a dict's source:
    layer-norm gains (1) and biases (0), and bias() or scalar() with its init (a scalar 1)."""
    return "{" + ", ".join(f"{py_str(p.name)}: {init!r}" for p in cell.params.values()
                           if (init := initial_value(p)) is not None) + "}"


def initial_value(p) -> float | None:
    if p.role in _NORM_ROLES:
        return 1.0 if p.role.endswith("_gain") else 0.0
    return p.init


def init_note(cell) -> str:
    """What an init docstring adds to `uniform ...` for the parameters that start at a constant."""
    parts = []
    if any(p.role in _NORM_ROLES for p in cell.params.values()):
        parts.append("normalisation gains and biases start at 1 and 0")
    fixed = [f"{p.name} at {p.init!r}" for p in cell.params.values() if p.init is not None]
    if fixed:
        parts.append(", ".join(fixed))
    return "; ".join(parts)


def _role_text(p) -> str:
    if p.role in ("unit_bias", "scalar"):
        start = f"starts at {p.init!r}" if p.init is not None else "starts uniform"
        what = "per-unit bias, bias()" if p.role == "unit_bias" else "learned scalar, scalar()"
        return f"{what} on the line of {p.owner} ({start})"
    return {
        "weight": f"weight matrix, linear() on the line of {p.owner}",
        "ln_gain": f"layer-norm gain, layernorm() on the line of {p.owner} (starts at 1)",
        "ln_bias": f"layer-norm bias, layernorm() on the line of {p.owner} (starts at 0)",
        "rms_gain": f"RMS-norm gain, rmsnorm() on the line of {p.owner} (starts at 1)",
        "rms_bias": f"RMS-norm bias, rmsnorm() on the line of {p.owner} (starts at 0)",
        "bias": f"bias, linear() on the line of {p.owner}",
        "diag": f"per-unit weights, diag() on the line of {p.owner}",
        "view": f"{p.source}{'.T' if p.transpose else ''}, weight= on the line of {p.owner}",
    }[p.role]


def _input_grad(lines: ModuleLines, plan: Plan) -> str:
    grads = [_one_input_grad(lines, leaf, e) for leaf, e in
             zip(plan.cell.inputs, [plan.input_grad, *plan.extra_input_grads], strict=True)]
    return grads[0] if len(grads) == 1 else lines.packed_input_grad(grads)


def _one_input_grad(lines: ModuleLines, leaf, e) -> str:
    if e == 0:
        return lines.dx.zeros(f"T, B, {lines.size_var(leaf.size)}")
    return lines.print(lines.printer(False, True), e)
