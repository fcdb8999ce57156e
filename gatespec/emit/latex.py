"""A cell's documentation: its equations forward and backward, as a standalone LaTeX
document or a Markdown page, through the templates in templates/latex and
templates/markdown (they lay out the printed equations and hold no maths)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gatespec import GENERATED_MARK, ir
from gatespec.build import build
from gatespec.derive import Derived, derive
from gatespec.emit import latex_notation as ln
from gatespec.emit.emit import render as render_template
from gatespec.emit.latex_backward import BackwardEquations
from gatespec.emit.latex_forward import Equation, ForwardPrinter, dependency_order
from gatespec.emit.python_module import VERSION
from gatespec.errors import EmitError
from gatespec.parse import ast, parse

FORMATS = ("tex", "md")
LINE_WIDTH = 54  # about the glyphs (as _width counts them) of a 16 cm line, with room to spare


@dataclass
class CellEquations:
    """Everything the pages print, from one parse of the cell file."""

    cell_file: ast.CellFile
    derived: Derived
    forward: ForwardPrinter
    backward: BackwardEquations
    order: list[str]  # the statements' nodes, in the order the forward equations print

    @property
    def cell(self) -> ir.Cell:
        return self.derived.cell

    def forward_equations(self) -> list[Equation]:
        return self.forward.equations()

    def backward_equations(self) -> list[Equation]:
        return [self.backward.print_step(e) for e in self.backward.step_equations(self.order)]

    def parameter_equations(self) -> list[Equation]:
        """One equation per parameter; a weight used again (weight=) adds its uses' sums,
        transposed back where it was used transposed."""
        grads = {g.param: g for g in self.backward.parameter_gradients()}
        out = []
        for name in self.cell.trained_params:
            eq = self.backward.print_parameter(grads[name])
            for v in self.cell.views:
                if v.source == name:
                    term = self.backward.print_parameter(grads[v.name]).rhs[0]
                    eq.rhs.append(rf"+ \Bigl({term}\Bigr)^\top" if v.transpose else f"+ {term}")
            out.append(eq)
        return out


def cell_equations(text: str, path: str) -> CellEquations:
    cf = parse(text, path)
    derived = derive(build(cf))
    forward = ForwardPrinter(cf, derived.cell)
    node_of = {n.label: n.name for n in derived.nodes
               if isinstance(n, ir.Pointwise) and n.kind == "user"}
    order = [node_of[s.target.label] for s in dependency_order(cf.statements)]
    return CellEquations(cf, derived, forward, BackwardEquations(derived, cf, forward), order)


def render(text: str, path: str, fmt: str, backward: bool = True,
           diagram: str | None = None, draw_with: str | None = None) -> str:
    """The page for a cell: `fmt` is "tex" or "md"; `diagram` names the cell's
    diagram files without extension (a Markdown page shows NAME.svg, links NAME.dot);
    `draw_with`, when NAME.svg was not drawn, the command that draws it, shown instead."""
    if fmt not in FORMATS:
        raise EmitError(f"unknown documentation format '{fmt}'")
    eqs = cell_equations(text, path)
    cell = eqs.cell
    context = {
        "mark": f"{GENERATED_MARK} {VERSION} from {Path(cell.path).name} "
                f"(sha256 {cell.source_sha256[:16]}); do not edit",
        "name": cell.name,
        "description": cell.description,
        "source": cell.path,
        "source_text": eqs.cell_file.source.rstrip("\n"),
        "forward": _layout(eqs.forward_equations()),
        "backward": _layout(eqs.backward_equations()) if backward else [],
        "parameter_gradients": _layout(eqs.parameter_equations()) if backward else [],
        "named_maps": [_named_map(c, eqs) for c in eqs.backward.named_calls] if backward else [],
        "has_preactivations": bool(eqs.backward.pre),
        "has_layernorm": any(n.kind == "layernorm" for n in eqs.backward.layernorms),
        "has_rmsnorm": any(n.kind == "rmsnorm" for n in eqs.backward.layernorms),
        "has_softmax": any(n.kind == "softmax" for n in eqs.backward.layernorms),
        "has_cumax": any(n.kind == "cumax" for n in eqs.backward.layernorms),
        "signature": _signature(eqs),
        "parameters": _parameter_rows(cell, eqs.forward.names),
        "diagram": diagram,
        "draw_with": draw_with,
    }
    template = {"tex": "latex/document.tex.jinja", "md": "markdown/page.md.jinja"}[fmt]
    return render_template(template, context)


def _named_map(call, eqs: CellEquations) -> dict:
    """For the note on a linear map whose adjoint has a name of its own."""
    params = [*call.weights, *([call.bias] if call.bias else [])]
    return {"tex": eqs.forward.names.labelled("a", call.printed, 0),
            "params": ", ".join(f"${ln.weight(p, eqs.cell.params)}$" for p in params)}


def _mask_text(symbol: str, m) -> str:
    """One sentence on a mask, in LaTeX maths and plain words."""
    keep = f"{1 - m.rate:g}"
    if m.kind == "zoneout":
        value = f"1 (keep the new value) with probability {keep}, else 0"
    else:
        value = f"$1/{keep}$ with probability {keep}, else 0"
    when = "drawn anew at every step" if m.per == "step" else "drawn once per sequence"
    return (f"${symbol}$ is a random mask of {m.kind}() (rate {m.rate:g}): each unit is "
            f"{value}, {when}; evaluation reads its expectation, {m.mean:g}")


def _signature(eqs: CellEquations) -> dict:
    """The cell's vectors, for the sentence that introduces the equations."""
    cell, names = eqs.cell, eqs.forward.names
    output = eqs.derived.node(cell.output)
    return {
        "input": names.var(cell.input.label, 0),
        # further input sequences: "Inputs $x_t$, $c_t$"
        "word": "Inputs" if cell.extra_inputs else "Input",
        "inputs": [names.var(leaf.label, 0) for leaf in [cell.input, *cell.extra_inputs]],
        # zoneout() and dropout(): what each mask is, and what evaluation reads
        "masks": [_mask_text(names.var(m.name, 0), m) for m in cell.masks],
        "input_size": cell.input.size,
        "states": [{"previous": names.var(s.label, -1), "new": names.var(s.label, 0),
                    "size": s.size} for s in cell.states],
        "output": names.var(output.label.rstrip("'"), 0),
    }


def _parameter_rows(cell: ir.Cell, names: ln.Names) -> list[dict]:
    roles = {"weight": "weight matrix of linear() on the line of {}",
             "bias": "bias of linear() on the line of {}",
             "diag": "per-unit weights of diag() on the line of {}",
             "ln_gain": "gain of layernorm() on the line of {}",
             "ln_bias": "bias of layernorm() on the line of {}",
             "rms_gain": "gain of rmsnorm() on the line of {}",
             "rms_bias": "bias of rmsnorm() on the line of {}",
             "unit_bias": "per-unit bias, bias() on the line of {}",
             "scalar": "learned scalar, scalar() on the line of {}"}
    return [{"tex": names.param(p.name), "name": p.name,
             "shape": "(" + ", ".join(p.shape) + ")",
             "role": roles[p.role].format(p.owner) + _start(p)}
            for p in cell.trained_params.values()]


def _start(p: ir.Param) -> str:
    """The constant a bias() or scalar() starts at; the others start uniform (or as a layer
    norm's, which the page says)."""
    if p.role not in ("unit_bias", "scalar"):
        return ""
    return f", starts at {p.init!r}" if p.init is not None else ", starts uniform"


def _layout(equations: list[Equation]) -> list[dict]:
    """Each equation as {lhs, lines}: its terms, broken into lines that fit the page."""
    out = []
    for eq in equations:
        lines: list[str] = []
        budget = LINE_WIDTH - _width(eq.lhs)
        for term in eq.rhs:
            if lines and _width(lines[-1]) + _width(term) > budget:
                lines.append(term)
            elif lines:
                lines[-1] += " " + term
            else:
                lines.append(term)
        out.append({"lhs": eq.lhs, "lines": lines})
    return out


_INVISIBLE = re.compile(r"\\(boldsymbol|bm|bar|tilde|hat|mathrm|operatorname|mathbf|left|right"
                        r"|,)(?![A-Za-z])")


def _width(tex: str) -> float:
    """About how many glyphs wide a piece of printed maths is: subscripts count less,
    binary operators more (for the space around them)."""
    text = _INVISIBLE.sub("", tex)
    operators = len(re.findall(r"\\odot|\\cdot|(^| )[+=-] ", text))
    text = re.sub(r"\\[A-Za-z]+", "x", text)  # \sigma, \odot, \tanh: about one glyph
    scripts = sum(len(m) for m in re.findall(r"[_^]\{[^{}]*\}|[_^].", text))
    text = re.sub(r"[{}^_ ]", "", text)
    return len(text) - 0.4 * scripts + 1.5 * operators
