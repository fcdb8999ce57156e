"""Cell IR → normalised step graph with local partial derivatives (reverse mode).

Two rewrites prepare the graph:
- every function application that is not the root of a statement gets its own
  node, so each activation has a named output its derivative can be written in;
- inside a statement that depends on the state, the terms that depend only on
  the input (input products and biases) are summed in a node of their own, so
  that work is done for all time steps at once, before the loop.

Then each node gets its local partial derivatives with respect to the nodes and
parameter vectors it reads. The adjoint of a node is the sum, over its
consumers, of the consumer's adjoint times that partial; the schedule places
these sums. This is reverse mode over the statement graph: its cost grows
linearly with the number of statements, unlike `diff` of one expanded expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy

from gatespec import ir
from gatespec.build.names import is_reserved
from gatespec.derive.functions import LANGUAGE_FUNCTIONS, PARTIALS, Elementwise
from gatespec.errors import DeriveError


@dataclass
class Derived:
    cell: ir.Cell
    nodes: list[ir.Node]  # normalised, topological order
    static: set[str]  # nodes that depend on the input only
    # partials[v] = [(consumer, d consumer / d v)], consumers in topological order
    partials: dict[str, list[tuple[str, sympy.Expr]]] = field(default_factory=dict)
    # param_partials[p] = [(consumer, d consumer / d p)] for bias and diagonal parameters
    param_partials: dict[str, list[tuple[str, sympy.Expr]]] = field(default_factory=dict)

    def node(self, name: str) -> ir.Node:
        return self._by_name[name]

    def __post_init__(self) -> None:
        self._by_name = {n.name: n for n in self.nodes}
        self._matmuls: dict[str, list[ir.MatMul]] = {}
        for n in self.nodes:
            if isinstance(n, ir.MatMul):
                self._matmuls.setdefault(n.operand, []).append(n)

    def matmuls_of(self, operand: str) -> list[ir.MatMul]:
        return list(self._matmuls.get(operand, []))


def derive(cell: ir.Cell) -> Derived:
    names = {n.name for n in cell.nodes} | set(cell.params)
    nodes = _split_products(_lift_functions(cell.nodes, names), names)
    # New states and the output are computed in the loop even when they read only the
    # input, so that their seeds (the gradients from the next step) enter in one place.
    in_loop = {*cell.updates.values(), cell.output}
    static = _static_nodes(nodes, in_loop)
    nodes = _split_static_terms(nodes, static, names)
    static = _static_nodes(nodes, in_loop)
    d = Derived(cell, nodes, static)
    _local_partials(d)
    return d


def _fresh(base: str, names: set[str]) -> str:
    name, k = base, 2
    while name in names:
        name, k = f"{base}{k}", k + 1
    names.add(name)
    return name


def _owner(node: ir.Node) -> str:
    return node.label.rstrip("'") if node.name.endswith("_new") else node.name


def _lift_functions(nodes: list[ir.Node], names: set[str]) -> list[ir.Node]:
    out: list[ir.Node] = []
    for node in nodes:
        if not isinstance(node, ir.Pointwise):
            out.append(node)
            continue
        lifted: list[ir.Node] = []

        def lift(e: sympy.Expr, root: bool, node=node, lifted=lifted) -> sympy.Expr:
            if not e.args:
                return e
            new = e.func(*(lift(a, False) for a in e.args))
            if isinstance(new, Elementwise) and not root:
                arg = new.args[0] if len(new.args) == 1 else None
                fn = type(new).__name__
                base = (f"{fn}_{arg.name}" if isinstance(arg, sympy.Symbol)
                        else f"{_owner(node)}_{fn}")
                if is_reserved(base):  # `b_softplus` would read as a bias parameter
                    base = f"{fn}_{_owner(node)}"
                name = _fresh(base, names)
                lifted.append(ir.Pointwise(name, name, node.size, new, kind="lifted"))
                return ir.symbol(name)
            return new

        expr = lift(node.expr, True)
        out.extend(lifted)
        out.append(replace(node, expr=expr))
    return out


# The most factors a product may have before it is split into nodes: the partial of a
# product for each of its k factors has k - 1 factors, so one product of 300 gates would
# give gradients of 300 * 299 factors; in pieces of 8 it gives about 300 * 8.
MAX_FACTORS = 8


def _split_products(nodes: list[ir.Node], names: set[str]) -> list[ir.Node]:
    """A long product `g1 * g2 * ... * gN` becomes a chain of nodes of at most
    MAX_FACTORS factors each: p = g1 * ... * g8, p2 = p * g9 * ... * g15, ..."""
    out: list[ir.Node] = []
    for node in nodes:
        if not isinstance(node, ir.Pointwise) or not any(
                len(m.args) > MAX_FACTORS for m in node.expr.atoms(sympy.Mul)):
            out.append(node)
            continue
        pieces: list[ir.Node] = []

        def split(e: sympy.Expr, node=node, pieces=pieces) -> sympy.Expr:
            if not e.args:
                return e
            args = [split(a) for a in e.args]
            new = e if args == list(e.args) else e.func(*args)
            if not isinstance(new, sympy.Mul) or len(new.args) <= MAX_FACTORS:
                return new
            coeff, factors = new.as_coeff_mul()
            head, rest = list(factors[:MAX_FACTORS]), list(factors[MAX_FACTORS:])
            while rest:
                name = _fresh(f"{_owner(node)}_product", names)
                label = f"{_owner(node)}{len(pieces) + 1}"  # the documents' π_{h1}, π_{h2}
                pieces.append(ir.Pointwise(name, label, node.size, sympy.Mul(*head),
                                           kind="product"))
                head, rest = [ir.symbol(name), *rest[:MAX_FACTORS - 1]], rest[MAX_FACTORS - 1:]
            return coeff * sympy.Mul(*head)

        expr = split(node.expr)
        out.extend(pieces)
        out.append(replace(node, expr=expr))
    return out


def _static_nodes(nodes: list[ir.Node], in_loop: set[str]) -> set[str]:
    # A node that reads no node at all (a constant, or parameters only, as in
    # `one = h - h + 1`) stays in the loop: computed before it, it would be a number or
    # an (n,) vector, not a (T, B, n) array that the loop indexes by step.
    static: set[str] = set()
    for n in nodes:
        if isinstance(n, ir.Leaf):
            if n.kind == "input":
                static.add(n.name)
        elif n.name not in in_loop and ir.deps(n) and all(d in static for d in ir.deps(n)):
            static.add(n.name)
    return static


def _is_static_term(term: sympy.Expr, static: set[str]) -> bool:
    # A constant term (no symbols) stays in the loop: hoisted alone it would be a number,
    # not a (T, B, size) array of input-only terms.
    return bool(term.free_symbols) and all(ir.is_param_name(s.name) or s.name in static
                                           for s in term.free_symbols)


def _reads_input(term: sympy.Expr) -> bool:
    """Whether a static term reads a node (the input or a value of it), not only parameters."""
    return any(not ir.is_param_name(s.name) for s in term.free_symbols)


def _split_static_terms(nodes: list[ir.Node], static: set[str], names: set[str]) -> list[ir.Node]:
    """Move the input-only terms of a state-dependent sum into a node computed before the loop."""
    out: list[ir.Node] = []
    for node in nodes:
        if not isinstance(node, ir.Pointwise) or node.name in static:
            out.append(node)
            continue
        expr = node.expr
        root_fn = isinstance(expr, Elementwise) and len(expr.args) == 1
        body = expr.args[0] if root_fn else expr
        if isinstance(body, sympy.Add):
            terms = sympy.Add.make_args(body)
            fixed = [t for t in terms if _is_static_term(t, static)]
            # Parameters alone (`b_ba + b_bp`) are (n,) vectors: hoisted without an input
            # term they would not be the (T, B, n) array that the loop reads at step t.
            if not any(_reads_input(t) for t in fixed):
                fixed = []
            if len(fixed) > 1 or (len(fixed) == 1 and not isinstance(fixed[0], sympy.Symbol)):
                name = _fresh(f"s_{_owner(node)}", names)
                out.append(ir.Pointwise(name, name, node.size, sympy.Add(*fixed), kind="static"))
                rest = [t for t in terms if t not in fixed]
                body = sympy.Add(ir.symbol(name), *rest)
                expr = type(expr)(body) if root_fn else body
        out.append(replace(node, expr=expr))
    return out


def _local_partials(d: Derived) -> None:
    for n in d.nodes:
        d.partials[n.name] = []
    for p, param in d.cell.params.items():
        if param.role in ir.POINTWISE_ROLES:
            d.param_partials[p] = []
    for c in d.nodes:
        if not isinstance(c, ir.Pointwise):
            continue
        wrt = sorted(c.expr.free_symbols, key=lambda s: s.name)
        for s in wrt:
            partial = _partial(c, s)
            if partial == 0:
                continue
            if ir.is_param_name(s.name):
                if s.name not in d.param_partials:
                    raise DeriveError(f"weight matrix {s.name} inside a pointwise expression")
                d.param_partials[s.name].append((c.name, partial))
            else:
                d.partials[s.name].append((c.name, partial))


def _partial(c: ir.Pointwise, s: sympy.Symbol) -> sympy.Expr:
    """d c / d s, with a root activation's derivative written in c's own output."""
    e = c.expr
    if isinstance(e, Elementwise) and type(e) in LANGUAGE_FUNCTIONS.values():
        outer = PARTIALS[type(e)](ir.symbol(c.name), e.args)
        return sympy.Add(*(o * _diff(a, s) for o, a in zip(outer, e.args, strict=True)))
    return _diff(e, s)


def _diff(e: sympy.Expr, s: sympy.Symbol) -> sympy.Expr:
    """sympy.diff, differentiating only the terms and factors that read s: a statement
    of n terms has n partials, and SymPy would differentiate every term for each."""
    if isinstance(e, sympy.Add):
        return sympy.Add(*(_diff(t, s) for t in e.args if s in t.free_symbols))
    if isinstance(e, sympy.Mul):
        args = e.args
        return sympy.Add(*(sympy.Mul(*args[:k], _diff(f, s), *args[k + 1:])
                           for k, f in enumerate(args) if s in f.free_symbols))
    return sympy.diff(e, s)
