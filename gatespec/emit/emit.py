"""Plan → files, through Jinja templates (StrictUndefined: a missing value is a bug, not a blank)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

from gatespec.emit.dialects import NUMPY
from gatespec.emit.lines import ModuleLines, prune_assignments
from gatespec.errors import EmitError
from gatespec.schedule import Plan

VERSION = "0.1.0"


def template_dir() -> Path:
    """Templates ship inside the wheel as gatespec/templates; in a source tree they are ../templates."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "numpy").is_dir():
            return candidate
    try:
        return Path(str(resources.files("gatespec.templates")))
    except ModuleNotFoundError as exc:
        raise EmitError("gatespec's templates are missing from this installation") from exc


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def emit_numpy(plan: Plan, source_name: str) -> str:
    cell = plan.cell
    lines = ModuleLines(plan, NUMPY)
    static_forward = lines.ops_lines(plan.static_forward, loop=False, backward=False)
    loop_forward = lines.ops_lines(plan.loop_forward, loop=True, backward=False)
    loop_backward = lines.ops_lines(plan.loop_backward, loop=True, backward=True)
    static_backward = lines.ops_lines(plan.static_backward, loop=False, backward=True)
    params = [
        {
            "name": p.name,
            "role": _role_text(p),
            "shape_text": "(" + ", ".join(p.shape) + ")",
            "shape_tuple": _tuple(list(p.shape)),
        }
        for p in cell.params.values()
    ]
    param_loads = [f'{p.name} = params["{p.name}"]' for p in cell.params.values()]
    cache_loads = [f'{k} = cache["{k}"]' for k, _ in lines.cache_entries()]
    backward_loads = lines.backward_loads()
    carry_lines = lines.carry_lines()
    weight_grad_lines = lines.weight_grad_lines()
    input_grad = _input_grad(lines, plan)
    backward_allocs = lines.backward_allocs()
    backward_body = [*backward_allocs, *backward_loads, *loop_backward, *carry_lines,
                     *static_backward, *weight_grad_lines, input_grad]
    backward_setup = prune_assignments(
        [*cache_loads, *lines.size_lines(), *param_loads, *lines.stack_lines()],
        [*backward_body, "d_outputs = np.zeros((T, B, "
         f"{lines.size_var(plan.derived.node(cell.output).size)}), dtype)",
         *(f"np.zeros((B, {lines.size_var(s.size)}), dtype)" for s in cell.states)])
    context = {
        "version": VERSION,
        "cell": cell,
        "source_name": source_name,
        "params": params,
        "name_width": max((len(p["name"]) for p in params), default=0),
        "shape_width": max((len(p["shape_text"]) for p in params), default=0),
        "sizes": _tuple(cell.sizes),
        "states": _tuple(cell.state_names),
        "output": f'"{cell.output_label}"',
        "init_size": "hidden" if "hidden" in cell.sizes else cell.sizes[-1],
        "size_var": lines.size_var,
        "state_sizes": ", ".join(lines.size_var(s.size) for s in cell.states),
        "final_state": _tuple_expr([f"{s.label}_all[T]" for s in cell.states]),
        "d_state0": _tuple_expr([f"d_{s.label}_next" for s in cell.states]),
        "forward_setup": prune_assignments(
            [*lines.size_lines(), *param_loads, *lines.stack_lines()],
            [*lines.forward_allocs(), *lines.forward_cache_allocs(), *static_forward,
             *loop_forward, *lines.forward_saves(), lines.outputs_expr(),
             f"state0 = {lines.size_var(cell.states[0].size)}"],
        ) + lines.forward_allocs(),
        "forward_cache_allocs": lines.forward_cache_allocs(),
        "forward_cache_saves": lines.forward_cache_saves(),
        "static_forward": static_forward,
        "loop_forward": loop_forward,
        "forward_saves": lines.forward_saves(),
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
    }
    try:
        return environment().get_template("numpy/module.py.jinja").render(context)
    except jinja2.TemplateError as exc:
        raise EmitError(f"numpy template failed: {exc}") from exc


def _tuple_expr(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(f'"{i}"' for i in items) + ("," if len(items) == 1 else "") + ")"


def _role_text(p) -> str:
    return {
        "weight": f"weight matrix, linear() on the line of {p.owner}",
        "bias": f"bias, linear() on the line of {p.owner}",
        "diag": f"per-unit weights, diag() on the line of {p.owner}",
    }[p.role]


def _input_grad(lines: ModuleLines, plan: Plan) -> str:
    e = plan.input_grad
    if e == 0:
        return f"np.zeros((T, B, size_{plan.cell.input.size}), dtype)"
    return lines.print(lines.printer(False, True), e)
