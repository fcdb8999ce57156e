"""What the CPU backend's templates print: the C++ loop lines of CppLines with the arrays,
scratch matrices and sizes each direction uses, and the Python driver's lines around them."""

from __future__ import annotations

import re

from gatespec import ir
from gatespec.emit.cpp_lines import CppLines
from gatespec.emit.dialects import TORCH
from gatespec.emit.kernel_printers import cpp_printer
from gatespec.emit.lines import prune_assignments
from gatespec.emit.python_module import module_context, tuple_text
from gatespec.schedule import Plan

_ASSIGNED = re.compile(r"(\w+) = ")


def cpp_context(plan: Plan, source_name: str) -> dict:
    cell = plan.cell
    lines = CppLines(plan)
    context = module_context(plan, TORCH, source_name, lines)
    forward_body = [*context["loop_forward"], *context["forward_saves"]]
    forward = [*prune_assignments(lines.state_loads(), forward_body), *forward_body]
    finished = []
    for s in cell.states:
        size = lines.size_var(s.size)
        finished.append(f"copy_(B - rows, {size}, from_row_({lines.seq(f'{s.label}_all', 't + 1')}, "
                        f"rows), from_row_({lines.seq(f'{s.label}_all', 't')}, rows));")
    output_is_state = plan.kind_of(cell.output) == "state_new"
    if not output_is_state:
        size = lines.size_var(plan.derived.node(cell.output).size)
        finished.append(f"zero_(B - rows, {size}, from_row_({lines.seq('outputs', 't')}, rows));")
    backward = [*context["backward_loads"], *context["loop_backward"], *context["carry_lines"]]
    kernels = []
    printer = cpp_printer()
    for k in lines.kernels:
        kernels.append({**k.__dict__, "printed": [(n, printer.expr(e)) for n, e in k.statements]})
    grad_buffers = [line.split(" = ")[0] for line in context["backward_allocs"]
                    if "torch.empty" in line]
    context.update(
        kernels=kernels,
        forward=_direction(lines, forward, finished),
        backward=_direction(lines, backward, []),
        output_is_state=output_is_state,
        grad_buffers=grad_buffers,
        saved_buffers=[line.split(" = ")[0] for line in context["forward_cache_allocs"]],
        epsilon=repr(ir.EPSILON),
        row_kinds=sorted({op.node.kind for op in plan.row_ops}),
        uses_functional="F." in "\n".join([*context["static_forward"],
                                           *context["static_backward"]]),
        carry_names=lines.carry_names,
        tuple_of=lambda names: tuple_text(list(names)),
    )
    return context


def _direction(lines: CppLines, body: list[str], finished: list[str]) -> dict:
    """One direction's C++: arrays from Python (prefixed a_), scratch and step locals
    (prefixed l_, so no cell name meets a C++ name), and the sizes they read."""
    text = "\n".join([*body, *finished])
    words = set(re.findall(r"\w+", text))
    arrays = [a for a in lines.arrays if a in words]
    assigned = [m.group(1) for line in body if (m := _ASSIGNED.match(line))]
    # a scratch matrix of the other direction may name a value this one loads (`ln_c`)
    temps = [(t, w) for t, w in lines.temps.items() if t in words and t not in assigned]
    words |= set(re.findall(r"\w+", " ".join(w for _, w in temps)))
    temp_names = {t for t, _ in temps}
    local = list(dict.fromkeys(n for n in assigned if n not in temp_names and n not in arrays))
    renames = {**{a: f"a_{a}" for a in arrays}, **{n: f"l_{n}" for n in [*local, *temp_names]}}

    def rename(code: str) -> str:
        return re.sub(r"(?<![.\w])\w+\b", lambda m: renames.get(m.group(0), m.group(0)), code)

    sizes = sorted(w for w in words if w.startswith("size_"))
    return {
        "python_arrays": arrays,
        "arrays": [renames[a] for a in arrays],
        "temps": [(renames[t], rename(w)) for t, w in temps],
        "locals": [renames[n] for n in local],
        "lines": [("//" + line[1:]) if line.startswith("#") else rename(line) for line in body],
        "finished": [rename(line) for line in finished],
        "python_sizes": sizes,
        "sizes": sizes,
    }
