"""Backward equations in the article's notation, from the derived local partials.

The adjoint of a value, δv = ∂L/∂v, is the sum over v's consumers of the
consumer's adjoint times the local partial (Derived.partials), plus Wᵀ δ(product)
for each matrix product that reads v. It is printed per user variable:

- every statement's target v gets δv_t; the helper nodes gatespec adds (lifted
  activations, input-only sums, linear-map operands) are folded into the
  adjoints of the variables they belong to;
- a statement whose root is an activation, v = f(a_v), also gets the adjoint of
  its pre-activation, δa_{v,t} = δv_t ⊙ f'; the weights of its linear maps read it;
- a state's new value s_t collects ∂L/∂s_t (the loss's direct dependence on it),
  its consumers in step t and the consumers of its previous value in step t+1
  (the latter written with index t+1, as in Greff et al. 2017);
- a linear map whose adjoint is none of these (torch's GRU: r ⊙ (W h + b)) gets
  a name of its own, after its bias: δa_{nh,t};
- a layer norm ℓ = LN_{α,β}(u) = α ⊙ û + β, named by its gain's subscript v, gets
  the adjoint of its normalised input, δû_{v,t} = α ⊙ δℓ_{v,t}, and then its
  input's, δu_{v,t} = (δû − ⟨δû⟩ − û ⟨δû ⊙ û⟩) / s_{v,t} (⟨·⟩ the mean over the
  units, s the input's deviation); δℓ_{v,t} gets an equation of its own only when
  it is not already one named adjoint. The readers of u take δu_{v,t}. These
  equations follow those of the statement whose line holds the layer norm;
- weight gradients are sums over time: δW = Σ_t δa_t operand_tᵀ; biases and
  diagonal weights sum their adjoints; a layer norm's gain sums δℓ ⊙ û, its bias δℓ.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from gatespec import ir
from gatespec.derive import Derived
from gatespec.derive.functions import LANGUAGE_FUNCTIONS, PARTIALS, Elementwise
from gatespec.emit.latex_forward import Equation, ForwardPrinter
from gatespec.emit.latex_notation import Names
from gatespec.emit.latex_sympy import (
    RevCumsum,
    SympyLatex,
    Transposed,
    UnitMean,
    UnitSum,
    shift,
)
from gatespec.errors import EmitError
from gatespec.parse import ast


@dataclass
class StepEquation:
    """δ(lhs) at step t = the sum of the terms (SymPy, over the symbols of this module)."""

    lhs: sympy.Symbol
    terms: list[sympy.Expr]


@dataclass
class ParamGradient:
    """δ(param) = Σ_t summand_t, times operand_tᵀ for a weight matrix."""

    param: str
    summand: sympy.Expr
    operand: str | None = None  # the operand's node, for a weight matrix
    operand_ast: ast.Expr | None = None


@dataclass
class _Preactivation:
    node: str  # the statement's node
    arg: sympy.Expr  # the activation's argument
    outer: sympy.Expr  # f'(arg), written in the node's own output


@dataclass
class _Call:
    label: str  # `i`, or `nh` when a line has several linear maps
    owner: str
    weights: tuple[str, ...]
    bias: str | None
    operands: tuple[ast.Expr, ...]
    matmuls: list[str]
    printed: str = ""  # the label of its adjoint, when it has one of its own


def _same(a: sympy.Expr, b: sympy.Expr) -> bool:
    return sympy.expand(a - b) == 0


class BackwardEquations:
    def __init__(self, derived: Derived, cell_file: ast.CellFile, forward: ForwardPrinter):
        self.d = derived
        self.cell = derived.cell
        self.forward = forward
        self.order = {n.name: k for k, n in enumerate(derived.nodes)}
        self.user = {n.name for n in derived.nodes
                     if isinstance(n, ir.Pointwise) and n.kind == "user"}
        # the pieces of a long product (derive splits one of more than 8 factors) are named
        # π, with adjoints of their own: written out, every factor's adjoint would repeat
        # all the others
        self.pieces = {n.name for n in derived.nodes
                       if isinstance(n, ir.Pointwise) and n.kind == "product"}
        self.new_state = {new: label for label, new in self.cell.updates.items()}
        self.pre = {p.node: p for p in map(self._preactivation, sorted(self.user)) if p}
        self.calls = self._calls(cell_file)
        self.call_of = {m: c for c in self.calls for m in c.matmuls}
        self.layernorms = [n for n in derived.nodes if isinstance(n, ir.Row)]
        self.row_labels = _row_labels(self.layernorms)
        self.printer = SympyLatex(derived, forward.names, self._adjoint_latex,
                                  self._auxiliary_latex)
        self._adj: dict[str, sympy.Expr] = {}
        self._call_ref: dict[str, sympy.Expr] = {}
        self.named_calls: list[_Call] = []  # calls that need an adjoint of their own

    # -- what is named ------------------------------------------------------------------
    def _preactivation(self, name: str) -> _Preactivation | None:
        e = self.d.node(name).expr
        if not (isinstance(e, Elementwise) and type(e) in LANGUAGE_FUNCTIONS.values()
                and len(e.args) == 1) or isinstance(e.args[0], sympy.Symbol):
            return None
        (outer,) = PARTIALS[type(e)](ir.symbol(name), e.args)
        return _Preactivation(name, e.args[0], outer)

    def _calls(self, cf: ast.CellFile) -> list[_Call]:
        by_weight = {m.weight: m.name for m in self.d.nodes if isinstance(m, ir.MatMul)}
        found = []
        for stmt in cf.statements:
            found.extend(_linear_calls(stmt.value))
        per_owner: dict[str, int] = {}
        calls = []
        for c in found:
            params = self.cell.call_params[(c.span.line, c.span.column)]
            owner = self.cell.params[params[0]].owner
            per_owner[owner] = per_owner.get(owner, 0) + 1
            weights = params[:len(c.args)]
            bias = params[len(c.args)] if len(params) > len(c.args) else None
            calls.append(_Call(owner, owner, weights, bias, c.args,
                               [by_weight[w] for w in weights]))
        for c in calls:  # several maps on one line: name each after its operands, as its bias
            if per_owner[c.owner] > 1:
                c.label = c.owner + "".join(w[len("W_" + c.owner):] for w in c.weights)
        return calls

    # -- adjoints -----------------------------------------------------------------------
    @staticmethod
    def adjoint(name: str) -> sympy.Symbol:
        return sympy.Symbol(f"d:{name}")

    @staticmethod
    def pre_adjoint(name: str) -> sympy.Symbol:
        return sympy.Symbol(f"d:a:{name}")

    @staticmethod
    def seed(name: str) -> sympy.Symbol:
        return sympy.Symbol(f"dL:{name}")

    # A layer norm's values and adjoints, by the name of its node.
    @staticmethod
    def ln_hat(name: str) -> sympy.Symbol:
        """Its normalised input û = (u − ⟨u⟩) / s."""
        return sympy.Symbol(f"lnhat:{name}")

    @staticmethod
    def ln_std(name: str) -> sympy.Symbol:
        """Its input's deviation s = sqrt(⟨(u − ⟨u⟩)²⟩ + ε), one number per step."""
        return sympy.Symbol(f"lnstd:{name}")

    @staticmethod
    def ln_soft(name: str) -> sympy.Symbol:
        """A cumax's softmax p, whose sums from the first unit are its output."""
        return sympy.Symbol(f"lnsoft:{name}")

    @staticmethod
    def ln_soft_adjoint(name: str) -> sympy.Symbol:
        return sympy.Symbol(f"d:lnsoft:{name}")

    @staticmethod
    def ln_output_adjoint(name: str) -> sympy.Symbol:
        return sympy.Symbol(f"d:ln:{name}")

    @staticmethod
    def ln_hat_adjoint(name: str) -> sympy.Symbol:
        return sympy.Symbol(f"d:lnhat:{name}")

    @staticmethod
    def ln_input_adjoint(name: str) -> sympy.Symbol:
        """What reaches the layer norm's input through it."""
        return sympy.Symbol(f"d:lnin:{name}")

    def _adjoint_latex(self, kind: str, name: str, step: int) -> str:
        """How the printer writes the adjoint symbols made here."""
        if kind == "d":
            return r"\delta" + self.printer.value(name, step)
        if kind == "a":
            return r"\delta" + self.forward.names.labelled("a", self._label(name), step)
        if kind == "call":
            return r"\delta" + self.forward.names.labelled("a", name, step)
        if kind in _LN_ADJOINTS:
            return r"\delta" + self._ln_value(_LN_ADJOINTS[kind], name, step)
        return rf"\frac{{\partial L}}{{\partial {self.printer.value(name, step)}}}"

    def _auxiliary_latex(self, name: str, step: int) -> str:
        """How the printer writes a layer norm's output (its node) and its values."""
        kind, _, node = name.rpartition(":")
        return self._ln_value(_LN_VALUES[kind], node, step)

    def _ln_value(self, kind: str, name: str, step: int) -> str:
        return Names.layer_norm_value(kind, self.row_labels[name], step)

    def _label(self, node: str) -> str:
        return self.d.node(node).label.rstrip("'")

    def ref(self, name: str) -> sympy.Expr:
        """What stands for a node's adjoint in its readers' sums: its own symbol if it
        is named, else its sum written out."""
        if name in self.user or name in self.pieces:
            return self.adjoint(name)
        if name in self.call_of:
            return self.call_ref(self.call_of[name])
        return self.adj(name)

    def terms(self, name: str) -> list[sympy.Expr]:
        """d consumer/d node times the consumer's adjoint, one per consumer, in step order."""
        found = [(self.order[c], self.contribution(c, name, p))
                 for c, p in self.d.partials[name]]
        found += [(self.order[m.name], Transposed(ir.symbol(m.weight), self.ref(m.name)))
                  for m in self.d.matmuls_of(name)]
        found += [(self.order[n.name], self.ln_input_adjoint(n.name))
                  for n in self.layernorms if n.operand == name]
        return [t for _, t in sorted(found, key=lambda item: item[0])]

    def contribution(self, consumer: str, name: str, partial: sympy.Expr) -> sympy.Expr:
        pre = self.pre.get(consumer)
        if pre is None:
            return self.ref(consumer) * partial
        inner = sympy.diff(pre.arg, ir.symbol(name))
        if not _same(pre.outer * inner, partial):
            raise EmitError(f"d{consumer}/d{name}: {partial} is not {pre.outer} * {inner}")
        return self.pre_adjoint(consumer) * inner

    def adj(self, name: str) -> sympy.Expr:
        if name not in self._adj:
            self._adj[name] = sympy.Add(*self.terms(name))
        return self._adj[name]

    def ln_ref(self, node: ir.Row) -> sympy.Expr:
        """The adjoint of a layer norm's output: one named adjoint as it is, else δℓ."""
        total = self.adj(node.name)
        return total if isinstance(total, sympy.Symbol) else self.ln_output_adjoint(node.name)

    def layernorm_equations(self, node: ir.Row) -> list[StepEquation]:
        """δℓ (when it needs a name), then the adjoint of the input by kind: a layer norm
        δû = α ⊙ δℓ, δu = (δû − ⟨δû⟩ − û ⟨δû ⊙ û⟩) / s (an RMS norm without ⟨δû⟩);
        a softmax δu = ℓ ⊙ (δℓ − sum(δℓ ⊙ ℓ)); a cumax δp = rcumsum(δℓ), then p's."""
        out = []
        d_out = self.ln_ref(node)
        if d_out == self.ln_output_adjoint(node.name):
            out.append(StepEquation(d_out, _collect(self.terms(node.name))))
        d_in = self.ln_input_adjoint(node.name)
        if node.gain:
            d_hat, hat = self.ln_hat_adjoint(node.name), self.ln_hat(node.name)
            out.append(StepEquation(d_hat, [ir.symbol(node.gain) * d_out]))
            centred = d_hat - hat * UnitMean(d_hat * hat)
            if node.kind == "layernorm":
                centred = d_hat - UnitMean(d_hat) - hat * UnitMean(d_hat * hat)
            out.append(StepEquation(d_in, [sympy.Mul(centred, 1 / self.ln_std(node.name))]))
        elif node.kind == "softmax":
            y = ir.symbol(node.name)
            out.append(StepEquation(d_in, [y * (d_out - UnitSum(d_out * y))]))
        else:  # cumax: the softmax p's adjoint sums the output's from each unit on
            d_p, p = self.ln_soft_adjoint(node.name), self.ln_soft(node.name)
            out.append(StepEquation(d_p, [RevCumsum(d_out)]))
            out.append(StepEquation(d_in, [p * (d_p - UnitSum(d_p * p))]))
        return out

    def _pieces_of(self, name: str) -> list[str]:
        """The product pieces a statement reads, through one another: last piece first."""
        found, todo = [], [name]
        while todo:
            for dep in ir.deps(self.d.node(todo.pop())):
                if dep in self.pieces and dep not in found:
                    found.append(dep)
                    todo.append(dep)
        return sorted(found, key=lambda n: -self.order[n])

    def _layernorms_of(self, owner: str) -> list[ir.Row]:
        """The layer norms on a statement's line, each after those that read it."""
        pending = [n for n in self.layernorms if n.owner == owner]
        out = []
        while pending:
            waiting = {self.ln_input_adjoint(n.name) for n in pending}
            ready = next(n for n in pending
                         if not self.adj(n.name).free_symbols & waiting)
            pending.remove(ready)
            out.append(ready)
        return out

    def call_ref(self, call: _Call) -> sympy.Expr:
        """The adjoint of a linear map's output: the same for each of its products."""
        if call.label not in self._call_ref:
            first, *rest = (self.adj(m) for m in call.matmuls)
            if any(not _same(first, other) for other in rest):
                raise EmitError(f"the products of linear() on the line of {call.owner} "
                                "have different adjoints")
            if isinstance(first, sympy.Symbol):
                self._call_ref[call.label] = first
            else:
                self._call_ref[call.label] = sympy.Symbol(f"d:call:{self._own_label(call)}")
                self.named_calls.append(call)
        return self._call_ref[call.label]

    def _own_label(self, call: _Call) -> str:
        """A name for a linear map's output that no pre-activation a_{v,t} has: its
        line's name, else the line's name and the operands' (as for biases), primed
        until it is free."""
        taken = {self._label(n) for n in self.pre}
        label = call.label
        if label in taken:
            label = call.owner + "".join(w[len("W_" + call.owner):] for w in call.weights)
        while label in taken:
            label += "'"
        call.printed = label
        return label

    # -- equations ----------------------------------------------------------------------
    def carried(self, state: str) -> list[sympy.Expr]:
        """What step t+1 reads of a state's value s_t: the adjoint of its previous value
        there, written with index t+1. At t = 0 it is the initial state's gradient."""
        previous = next(s.name for s in self.cell.states if s.label == state)
        return [shift(t) for t in self.terms(previous)]

    def node_equation(self, name: str) -> StepEquation:
        terms: list[sympy.Expr] = []
        if name == self.cell.output or name in self.new_state:
            terms.append(self.seed(name))
        terms += self.terms(name)
        if name in self.new_state:
            terms += self.carried(self.new_state[name])
        return StepEquation(self.adjoint(name), _collect(terms))

    def step_equations(self, forward_order: list[str]) -> list[StepEquation]:
        """Adjoints of the statements' targets (given as nodes in forward order),
        in reverse: each reads only those before it, and the previous step's."""
        for call in self.calls:  # find the linear maps that need a name of their own
            self.call_ref(call)
        out = []
        for name in reversed(forward_order):
            out.append(self.node_equation(name))
            pre = self.pre.get(name)
            if pre:
                out.append(StepEquation(self.pre_adjoint(name), [self.adjoint(name) * pre.outer]))
            for piece in self._pieces_of(name):
                out.append(StepEquation(ir.symbol(piece), [self.d.node(piece).expr]))
                out.append(StepEquation(self.adjoint(piece), _collect(self.terms(piece))))
            for node in self._layernorms_of(self._label(name)):
                out += self.layernorm_equations(node)
            for call in self.named_calls:
                if call.owner == self._label(name):
                    out.append(StepEquation(self.call_ref(call), self.terms(call.matmuls[0])))
        for leaf in [self.cell.input, *self.cell.extra_inputs]:  # masks have no gradient
            out.append(StepEquation(self.adjoint(leaf.name), self.terms(leaf.name)))
        return out

    def parameter_gradients(self) -> list[ParamGradient]:
        """In the order of the parameter table."""
        found: dict[str, ParamGradient] = {}
        for call in self.calls:
            adjoint = self.call_ref(call)
            for weight, operand, mm in zip(call.weights, call.operands, call.matmuls,
                                           strict=True):
                found[weight] = ParamGradient(weight, adjoint, self.d.node(mm).operand, operand)
            if call.bias:
                self._check_bias(call)
                found[call.bias] = ParamGradient(call.bias, adjoint)
        for node in self.layernorms:
            if not node.gain:
                continue
            found[node.gain] = ParamGradient(node.gain,
                                             self.ln_ref(node) * self.ln_hat(node.name))
            if node.bias:
                found[node.bias] = ParamGradient(node.bias, self.ln_ref(node))
        for name, param in self.cell.params.items():
            if param.role in ("diag", "unit_bias", "scalar"):
                total = sympy.Add(*(self.contribution(c, name, p)
                                    for c, p in self.d.param_partials[name]))
                found[name] = ParamGradient(name, total)
        return [found[p] for p in self.cell.params]

    def _check_bias(self, call: _Call) -> None:
        """A bias enters its map's sum with coefficient one: its adjoint is the map's."""
        total = sympy.Add(*(self.contribution(c, call.bias, p)
                            for c, p in self.d.param_partials[call.bias]))
        if not _same(total, self.adj(call.matmuls[0])):
            raise EmitError(f"the adjoint of {call.bias} is not that of its linear map")

    # -- printing -----------------------------------------------------------------------
    def print_step(self, eq: StepEquation) -> Equation:
        printed = [self.printer.expr(t) for t in eq.terms if t != 0]
        return Equation(self.printer.expr(eq.lhs), _signed(printed or ["0"]))

    def print_parameter(self, g: ParamGradient) -> Equation:
        summand = self.printer.expr(g.summand)
        if g.operand_ast is not None:
            summand += r"\," + self.forward.operand(g.operand_ast) + r"^\top"
        if self.cell.params[g.param].role == "scalar":  # one number: summed over the units too
            summand = rf"\sum_j \bigl[{summand}\bigr]_j"
        return Equation(r"\delta" + self.forward.names.param(g.param), [rf"\sum_t {summand}"])


# The layer-norm symbols: adjoint kinds (`d:KIND:NAME`) and value kinds (`KIND:NAME`, the
# output being the node itself), and how latex_notation names the vectors.
_LN_ADJOINTS = {"ln": "out", "lnhat": "hat", "lnin": "in", "lnsoft": "soft"}
_LN_VALUES = {"": "out", "lnhat": "hat", "lnstd": "std", "lnsoft": "soft"}


def _row_labels(rows: list[ir.Row]) -> dict[str, str]:
    """The subscript that names each row reduction in the equations: a normalisation's
    gain's (`alpha_ix` -> `ix`; unique, as the gain is), else its line's name, primed
    until no other row has it (`softmax(cumax(u))` on one line)."""
    labels = {n.name: n.gain.partition("_")[2] for n in rows if n.gain}
    for n in rows:
        if not n.gain:
            label = n.owner
            while label in labels.values():
                label += "'"
            labels[n.name] = label
    return labels


def _collect(terms: list[sympy.Expr]) -> list[sympy.Expr]:
    """Terms that share their one adjoint factor and differ in a single vector become
    one: δh ⊙ (n - h), not δh ⊙ n - δh ⊙ h (derive may split a statement in two).
    Longer partials stay separate terms, between which a long line can break."""
    groups: dict[sympy.Expr, list[sympy.Expr]] = {}
    for t in terms:
        coeff, factors = t.as_coeff_mul()
        adjoints = [f for f in factors if _is_adjoint_factor(f)]
        rest = [f for f in factors if not _is_adjoint_factor(f)]
        if len(adjoints) == 1 and len(rest) <= 1 and coeff in (1, -1):
            groups.setdefault(adjoints[0], []).append(coeff * sympy.Mul(*rest))
        else:
            groups.setdefault(t, []).append(sympy.Integer(1))
    return [key * sympy.Add(*rests) for key, rests in groups.items()]


def _is_adjoint_factor(f: sympy.Expr) -> bool:
    return (isinstance(f, sympy.Symbol) and f.name.startswith(("d:", "dL:"))) or isinstance(
        f, Transposed)


def _signed(printed: list[str]) -> list[str]:
    """["a", "-b", "c"] -> ["a", "- b", "+ c"]."""
    out = [printed[0]]
    for p in printed[1:]:
        out.append(f"- {p[1:]}" if p.startswith("-") else f"+ {p}")
    return out


def _linear_calls(e: ast.Expr):
    return (n for n in ast.walk(e, keywords=False)
            if isinstance(n, ast.Call) and n.func == "linear")
