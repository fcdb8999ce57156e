"""Plan → a module that builds the cell's forward pass as an ONNX graph.

The input-only work (the hoisted GEMM and what reads only the input) runs once over the
whole sequence; the step is the body of an ONNX Scan over time. The printed lines are
calls on a small graph builder the template defines (`_g.op("Sigmoid", a)` returns the
name of the tensor it makes), so a statement reads like the NumPy module's.
"""

from __future__ import annotations

import sympy

from gatespec import ir
from gatespec.derive import functions as fn
from gatespec.emit.dialects import NUMPY
from gatespec.emit.printer import inexact_fraction, number_text
from gatespec.emit.python_module import module_context, tuple_text
from gatespec.errors import EmitError
from gatespec.schedule import STATIC, Plan

# How each function of the language is spelt in ONNX operators: a format string over the
# printed argument(s), or a helper of the generated module (HELPERS) where an argument is
# read twice or the spelling depends on the dtype.
SPELLINGS: dict[type, str] = {
    fn.Sigmoid: '_g.op("Sigmoid", {0})',
    fn.Tanh: '_g.op("Tanh", {0})',
    fn.Relu: '_g.op("Relu", {0})',
    fn.Exp: '_g.op("Exp", {0})',
    fn.Log: '_g.op("Log", {0})',
    fn.Softplus: "_softplus(_g, {0})",
    fn.LogSigmoid: '_g.op("Neg", _softplus(_g, _g.op("Neg", {0})))',
    fn.HardSigmoid: ('_g.op("Clip", _g.op("Add", _g.op("Div", {0}, _g.const(6)), _g.const(0.5)), '
                     "_g.const(0), _g.const(1))"),
    fn.HardTanh: '_g.op("Clip", {0}, _g.const(-1), _g.const(1))',
    fn.Abs: '_g.op("Abs", {0})',
    fn.Sqrt: '_g.op("Sqrt", {0})',
    fn.Softsign: "_softsign(_g, {0})",
    fn.Silu: "_silu(_g, {0})",
    fn.Max: '_g.op("Max", {0}, {1})',
    fn.Min: '_g.op("Min", {0}, {1})',
}

HELPERS = {
    "_softplus": (
        "def _softplus(_g, a):\n"
        '    """log(1 + exp(a)): ONNX\'s Softplus where onnxruntime has it (float32), else\n'
        '    max(a, 0) + log(1 + exp(-|a|)), which overflows for no a."""\n'
        "    if _g.dtype == np.float32:\n"
        '        return _g.op("Softplus", a)\n'
        '    tail = _g.op("Log", _g.op("Add", _g.const(1), _g.op("Exp", _g.op("Neg", _g.op("Abs", a)))))\n'
        '    return _g.op("Add", _g.op("Relu", a), tail)\n'
    ),
    "_softsign": (
        "def _softsign(_g, a):\n"
        '    """a / (1 + |a|), in operators every dtype has."""\n'
        '    return _g.op("Div", a, _g.op("Add", _g.const(1), _g.op("Abs", a)))\n'
    ),
    "_layernorm": (
        "def _layernorm(_g, u, gain, bias=None):\n"
        '    """Layer normalisation over the last axis as the NumPy module computes it: centred\n'
        "    first, then the mean square (onnxruntime's LayerNormalization takes E[u^2] - E[u]^2,\n"
        '    which loses digits when the mean is large against the spread)."""\n'
        '    centred = _g.op("Sub", u, _g.mean(u))\n'
        '    variance = _g.mean(_g.op("Mul", centred, centred))\n'
        f'    deviation = _g.op("Sqrt", _g.op("Add", variance, _g.const({ir.EPSILON!r})))\n'
        '    y = _g.op("Mul", _g.op("Mul", centred, _g.op("Div", _g.const(1), deviation)), gain)\n'
        '    return y if bias is None else _g.op("Add", y, bias)\n'
    ),
    "_rmsnorm": (
        "def _rmsnorm(_g, u, gain, bias=None):\n"
        '    """RMS normalisation over the last axis, as the NumPy module computes it."""\n'
        '    square = _g.mean(_g.op("Mul", u, u))\n'
        f'    root = _g.op("Sqrt", _g.op("Add", square, _g.const({ir.EPSILON!r})))\n'
        '    y = _g.op("Mul", _g.op("Mul", u, _g.op("Div", _g.const(1), root)), gain)\n'
        '    return y if bias is None else _g.op("Add", y, bias)\n'
    ),
    "_softmax": (
        "def _softmax(_g, u):\n"
        '    """Softmax over the last axis (opset 13 on: over that axis alone)."""\n'
        '    return _g.op("Softmax", u, axis=-1)\n'
    ),
    "_cumax": (
        "def _cumax(_g, u):\n"
        '    """cumsum(softmax(u)) over the last axis (Shen et al. 2019)."""\n'
        '    return _g.op("CumSum", _g.op("Softmax", u, axis=-1), _g.ints(-1))\n'
    ),
    "_silu": (
        "def _silu(_g, a):\n"
        '    """a * sigmoid(a)."""\n'
        '    return _g.op("Mul", a, _g.op("Sigmoid", a))\n'
    ),
}

_MAX_DEPTH = 4  # nested builder calls per printed line; deeper parts get a temporary
_POWER_BY_PRODUCTS = 4  # a**k as k - 1 products up to this k, as NumPy's power does


class OnnxPrinter:
    """Prints element-wise SymPy expressions as nested builder calls, one statement a time.

    `names` maps symbols to the Python text that holds their tensor's name; parameters are
    read through `_g.param(...)`, numbers through `_g.const(...)`."""

    def __init__(self, names: dict[str, str]):
        self.names = names
        self.lines: list[str] = []
        self.temps = 0
        self.helpers: set[str] = set()

    def statement(self, target: str, e: sympy.Expr) -> None:
        text, _ = self._print(e)
        if text.startswith("_g.op(") and text.endswith(")"):  # name the tensor after the node
            text = f'{text[:-1]}, out="{target}")'
        self.lines.append(f"{target} = {text}")

    def _bind(self, text: str, depth: int) -> tuple[str, int]:
        """A printed value as a temporary when it is a call: read twice, or nested deeply."""
        if depth == 0:
            return text, 0
        self.temps += 1
        name = f"_t{self.temps}"
        self.lines.append(f"{name} = {text}")
        return name, 0

    def _op(self, op: str, *args: tuple[str, int]) -> tuple[str, int]:
        parts, depth = [], 0
        for text, d in args:
            if d >= _MAX_DEPTH:
                text, d = self._bind(text, d)
            parts.append(text)
            depth = max(depth, d)
        return f'_g.op("{op}", {", ".join(parts)})', depth + 1

    def _const(self, value: sympy.Expr) -> tuple[str, int]:
        return f"_g.const({number_text(value)})", 0

    def _print(self, e: sympy.Expr) -> tuple[str, int]:
        if isinstance(e, sympy.Symbol):
            if e.name in self.names:
                return self.names[e.name], 0
            if ir.is_param_name(e.name):
                return f'_g.param("{e.name}")', 0
            return e.name, 0
        if e.is_Rational:
            return self._const(e)
        if isinstance(e, sympy.Add):
            return self._add(e)
        if isinstance(e, sympy.Mul):
            return self._mul(e)
        if isinstance(e, sympy.Pow):
            return self._pow(e)
        spelling = SPELLINGS.get(type(e))
        if spelling is None:
            raise EmitError(f"the ONNX target cannot express {type(e).__name__} in a forward pass")
        nest = spelling.split("{0}")[0].count("(")  # calls around the first argument
        texts, top = [], 1
        for text, depth in (self._print(a) for a in e.args):
            if depth + nest > _MAX_DEPTH:
                text, depth = self._bind(text, depth)
            texts.append(text)
            top = max(top, depth + nest)
        self.helpers.update(h for h in HELPERS if f"{h}(" in spelling)
        return spelling.format(*texts), top

    def _sum(self, terms: list[sympy.Expr]) -> tuple[str, int]:
        printed = [self._print(t) for t in terms]
        if len(printed) == 1:
            return printed[0]
        if len(printed) == 2:
            return self._op("Add", *printed)
        return self._op("Sum", *printed)  # one n-ary node, not a chain hundreds deep

    def _add(self, e: sympy.Add) -> tuple[str, int]:
        positive, negative = [], []
        for term in e.args:
            coeff, rest = term.as_coeff_Mul()
            if coeff.is_Rational and coeff < 0:
                negative.append(-term)
            else:
                positive.append(term)
        if not positive:
            return self._op("Neg", self._sum(negative))
        if not negative:
            return self._sum(positive)
        return self._op("Sub", self._sum(positive), self._sum(negative))

    def _mul(self, e: sympy.Mul) -> tuple[str, int]:
        coeff, factors = e.as_coeff_mul()
        sign = coeff < 0
        coeff = -coeff if sign else coeff
        numerator, denominator = [], []
        if coeff != 1:
            if inexact_fraction(coeff) or coeff.is_Integer:
                numerator.append(self._const(coeff))
            else:  # h / 3, not h * 0.333...
                if coeff.p != 1:
                    numerator.append(self._const(sympy.Integer(coeff.p)))
                denominator.append(self._const(sympy.Integer(coeff.q)))
        for f in factors:
            if isinstance(f, sympy.Pow) and f.exp.is_Integer and f.exp < 0:
                denominator.append(self._print(f.base ** -f.exp))
            else:
                numerator.append(self._print(f))
        value = self._product(numerator) if numerator else self._const(sympy.Integer(1))
        if denominator:
            value = self._op("Div", value, self._product(denominator))
        return self._op("Neg", value) if sign else value

    def _product(self, factors: list[tuple[str, int]]) -> tuple[str, int]:
        value = factors[0]
        for f in factors[1:]:
            value = self._op("Mul", value, f)
        return value

    def _pow(self, e: sympy.Pow) -> tuple[str, int]:
        base, exp = e.args
        if exp.is_Integer and exp < 0:
            return self._op("Div", self._const(sympy.Integer(1)), self._print(base ** -exp))
        if exp == sympy.Rational(1, 2):
            return self._op("Sqrt", self._print(base))
        printed = self._print(base)
        if exp.is_Integer and exp <= _POWER_BY_PRODUCTS:
            factor = self._bind(*printed)
            return self._product([factor] * int(exp))
        return self._op("Pow", printed, self._const(exp))


def _with_inputs(nodes: list[ir.Node], roots: set[str]) -> set[str]:
    """The roots and every node they read, directly or not."""
    needed = set(roots)
    for node in reversed(nodes):
        if node.name in needed:
            needed.update(ir.deps(node))
    return needed


def onnx_context(plan: Plan, source_name: str) -> dict:
    """The printed functions `_input_only(_g, x)` and `_step(_g, ...)` and their signatures."""
    d = plan.derived
    cell = plan.cell
    x = cell.input.name
    # the docstring's and constants' values, as the NumPy module prints them
    context = module_context(plan, NUMPY, source_name)
    # what the step must produce, and everything it and the input-only part need for it
    results = [*(cell.updates[s.label] for s in cell.states), cell.output]
    needed = _with_inputs(d.nodes, set(results))
    unbatched = set(cell.params)
    for n in d.nodes:
        if isinstance(n, ir.Pointwise) and all(f.name in unbatched for f in n.expr.free_symbols):
            unbatched.add(n.name)
    loop_nodes = [n for n in d.nodes if n.name in needed and n.name not in d.static
                  and not isinstance(n, ir.Leaf)]
    scanned = []  # input-only values the step reads, one (B, n) slice per step
    for n in d.nodes:
        if n.name in d.static and any(n.name in ir.deps(m) for m in loop_nodes):
            scanned.append(n.name)
    static_needed = _with_inputs(d.nodes, set(scanned))
    static_nodes = [n for n in d.nodes if n.name in static_needed and n.name in d.static
                    and not isinstance(n, ir.Leaf)]
    gemm_of = {out: g for g in plan.gemms for out in g.outputs}
    names = {x: "x"}
    # a graph is for inference: each mask is its expectation, made before the input-only work
    expectations = [f'{m.name} = _g.expectation({m.mean!r}, "{m.size}", out="{m.name}")'
                    for m in cell.masks if m.name in static_needed]

    def label_of(name: str) -> str:
        return d.node(name).label

    hoisted = _print_nodes(static_nodes, gemm_of, names, needed | static_needed, label_of)
    step = _print_nodes(loop_nodes, gemm_of, names, needed, label_of)
    returns = []
    for name in results:
        text = names.get(name, name)
        if name in unbatched:  # parameters or constants only: one row, made (B, n)
            text = f'_g.batched({text}, "{d.node(name).size}")'
        returns.append(text)
    states = returns[:len(cell.states)]
    scanned_vars = [names.get(n, n) for n in scanned]
    return {
        **context,
        "hoisted_lines": [*expectations, *hoisted.lines],
        "input_args": ", ".join(["x", *(leaf.name for leaf in cell.extra_inputs)]),
        "step_lines": step.lines,
        "scanned": scanned,
        "scanned_names": tuple_text(scanned),
        "hoisted_return": ", ".join(scanned_vars) + ("," if len(scanned) == 1 else ""),
        "step_args": ", ".join([s.name for s in cell.states] + scanned_vars),
        "step_states": ", ".join(states) + ("," if len(states) == 1 else ""),
        "step_output": returns[-1],
        "onnx_helpers": [HELPERS[h] for h in sorted(hoisted.helpers | step.helpers)],
        "views": cell.views,
    }


def _print_nodes(nodes: list[ir.Node], gemm_of: dict, names: dict[str, str],
                 needed: set[str], label_of) -> OnnxPrinter:
    printer = OnnxPrinter(names)
    done: set[str] = set()
    for node in nodes:
        if isinstance(node, ir.MatMul):
            g = gemm_of[node.name]
            if g.key in done:
                continue
            done.add(g.key)
            operand = printer._print(ir.symbol(g.operand))[0]
            weights = ", ".join(f'"{w}"' for w in g.weights)
            product = f'_g.op("MatMul", {operand}, _g.transposed({weights}))'
            where = "once for all steps" if g.context == STATIC else "each step"
            printer.lines.append(f"# GEMM: {', '.join(g.weights)} times "
                                 f"{label_of(g.operand)}, {where}")
            if g.stacked:
                outs = [o if o in needed else "_" for o in g.outputs]
                printer.lines.append(f"{', '.join(outs)} = _g.split({product}, "
                                     f"{tuple_text(g.out_sizes)})")
            else:
                printer.lines.append(f'{node.name} = {product[:-1]}, out="{node.name}")')
        elif isinstance(node, ir.Row):
            operand = printer._print(ir.symbol(node.operand))[0]
            scale = [f'_g.param("{p}")' for p in (node.gain, node.bias) if p]
            printer.lines.append(f"# {node.spec.title} of {node.operand} over its units")
            printer.lines.append(f'{node.name} = _{node.kind}(_g, {", ".join([operand, *scale])})')
            printer.helpers.add(f"_{node.kind}")
        elif isinstance(node, ir.Pointwise):
            printer.statement(node.name, node.expr)
    return printer
