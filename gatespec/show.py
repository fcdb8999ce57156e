"""`gatespec show`: a plan as plain text: parameters, forward statements, adjoints."""

from __future__ import annotations

from gatespec.derive import functions as fn
from gatespec.derive.functions import DESCRIPTIONS
from gatespec.derive.scans import Scan, find_scans
from gatespec.emit.escape import terminal_text
from gatespec.emit.printer import CodePrinter
from gatespec.schedule import BlockOp, GemmOp, Plan, RowOp


def _printer() -> CodePrinter:
    """Spell every function by its name in the cell language (helpers by their own names)."""
    spell = {}
    for cls in fn.Elementwise.__subclasses__():
        arity = cls.nargs.args[0] if hasattr(cls.nargs, "args") else 1
        spell[cls] = f"{cls.__name__}(" + ", ".join(f"{{{k}}}" for k in range(arity)) + ")"
    return CodePrinter(spell)


def render_plan(plan: Plan) -> str:
    cell = plan.cell
    pr = _printer()
    out = [f"cell {cell.name}: {terminal_text(cell.description)}", ""]
    out.append("sizes:  " + ", ".join(cell.sizes))
    out.append(f"input:  {cell.input.label} [{cell.input.size}]")
    for leaf in cell.extra_inputs:  # read as given by every layer and direction
        out.append(f"input:  {leaf.label} [{leaf.size}] (not stacked: every layer reads it)")
    for m in cell.masks:  # drawn by the generated code, an input sequence inside it
        keep = f"{1 - m.rate:g}"
        what = (f"1 (keeps the new value) w.p. {keep}" if m.kind == "zoneout"
                else f"1/{keep} w.p. {keep}")
        out.append(f"mask:   {m.name} [{m.size}] {m.kind}(rate={m.rate:g}) on the line of "
                   f"{m.owner}, one per {m.per}: {what}, else 0; evaluation reads "
                   f"E[m] = {m.mean:g}")
    out.append("states: " + ", ".join(f"{s.label} [{s.size}]" for s in cell.states))
    out.append(f"output: {cell.output_label}")
    out.append("")
    out.extend(_scan_lines(cell))
    out.append("")
    out.append("parameters:")
    width = max((len(p) for p in cell.trained_params), default=0)
    for p in cell.trained_params.values():
        init = "" if p.init is None else f" starts at {p.init!r}"
        out.append(f"  {p.name.ljust(width)}  ({', '.join(p.shape)})  {p.role}{init} "
                   f"(line {p.line}, {p.owner})")
    if cell.views:
        out.append("")
        out.append("weights used again (views made before the time loop; their gradients "
                   "add into the weight):")
        for p in cell.views:
            value = f"{p.source}.T" if p.transpose else p.source
            out.append(f"  {p.name} = {value}  ({', '.join(p.shape)})  weight= on the line "
                       f"of {p.owner} (line {p.line})")
    out.append("")
    out.append("names: x_prev = x_{t-1}, x_new = x_t for a state x; m_ab = W_ab @ b; "
               "s_a = input-only terms; d_v = dL/dv")
    sections = [
        ("forward, once for all time steps", plan.static_forward),
        ("forward, each time step", plan.loop_forward),
        ("backward, each time step (t = T-1 .. 0)", plan.loop_backward),
        ("backward, once for all time steps", plan.static_backward),
    ]
    summed = _input_only_sums(plan)
    for title, ops in sections:
        if not ops:
            continue
        out.append("")
        out.append(f"{title}:")
        for op in ops:
            if isinstance(op, GemmOp):
                g = op.gemm
                if op.backward:
                    out.append(f"  d_{g.operand}_gemm = d_[{', '.join(g.outputs)}] @ "
                               f"[{', '.join(g.weights)}]   (one GEMM)")
                elif op.addend:
                    # the epilogue fusion: the block below no longer shows the s_k it adds
                    sums = [summed.get(m, m) for m in op.addend.outputs]
                    out.append(f"  [{', '.join(g.outputs)}] = [{', '.join(sums)}] + "
                               f"{g.operand} @ [{', '.join(g.weights)}]^T   (one GEMM, started from the "
                               f"input-only sums: {g.outputs[0]} = {sums[0]} + "
                               f"{g.weights[0]} @ {g.operand})")
                else:
                    out.append(f"  [{', '.join(g.outputs)}] = {g.operand} @ "
                               f"[{', '.join(g.weights)}]^T   (one GEMM)")
            elif isinstance(op, RowOp):
                ln = op.node
                if op.backward:
                    out.append(f"  {op.operand_grad} = {ln.kind}_backward(d_{ln.name})   "
                               "(a reduction over the units)")
                else:
                    out.append(f"  {ln.name} = {ln.kind}({ln.operand})"
                               + (f" * {ln.gain}" if ln.gain else "")
                               + (f" + {ln.bias}" if ln.bias else "")
                               + "   (a reduction over the units)")
            else:
                for sym, e in op.block.assigns:
                    out.append(f"  {sym.name} = {pr.expr(e)}")
                for st in op.block.stores:
                    target = f"d_{st.gemm.outputs[st.index]}" if st.gemm else st.buffer
                    out.append(f"  {target} = {pr.expr(st.value)}")
    out.append("")
    out.append("state gradients passed to the previous step: " + ", ".join(
        f"d_{k}_next = {pr.expr(v)}" for k, v in plan.carries.items()))
    out.append("weight gradients: one GEMM per stacked weight after the loop; "
               "bias and diagonal gradients: sums over time and batch")
    saved = [*plan.saved_static, *(f"{s} history" for s in plan.saved_states), *plan.saved_loop]
    out.append("saved for backward: " + ", ".join(saved))
    used = sorted({n for n in DESCRIPTIONS if n in _text(out)})
    if used:
        out.append("")
        out.append("functions:")
        out.extend(f"  {n}: {DESCRIPTIONS[n]}" for n in used)
    return "\n".join(out) + "\n"


def _scan_lines(cell) -> list[str]:
    """Which states are linear recurrences (s = a * s_prev + b, a and b reading no state)."""
    lines = ["linear recurrences (parallel over time with a scan):"]
    for label, verdict in find_scans(cell).items():
        if isinstance(verdict, Scan):
            kind = "its update does not read it" if verdict.constant else \
                f"{label}' = a * {label} + b, a and b read no state"
            lines.append(f"  {label}: yes ({kind})")
        else:
            lines.append(f"  {label}: no, {verdict.why}")
    return lines


def _input_only_sums(plan: Plan) -> dict[str, str]:
    """hoisted product slice m_ax -> the input-only sum s_a computed in its place"""
    return {base.name: target.name for op in plan.static_forward if isinstance(op, BlockOp)
            for target, base in op.block.inplace.items()}


def _text(lines: list[str]) -> str:
    return "\n".join(lines)
