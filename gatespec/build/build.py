"""Syntax tree → cell IR: resolve names, check the cell, infer sizes, create parameters.

Every user mistake raises CheckError at the line and column where it is.
`linear(...)` becomes one MatMul node per operand plus a bias; `diag(v)` becomes
a per-unit weight vector times `v`; the rest maps one to one onto SymPy.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, replace

import sympy

from gatespec import ir
from gatespec.build.layouts import resolve_torch
from gatespec.build.names import cell_name_problem, is_reserved, name_problem, size_name_problem
from gatespec.build.sizes import SCALAR, Sizes
from gatespec.derive.functions import ARITY, LANGUAGE_FUNCTIONS, OUT_OF_RANGE, fold, out_of_range
from gatespec.errors import CheckError, Span
from gatespec.parse import ast
from gatespec.parse.limits import MAX_EXPONENT

STRUCTURAL = ("linear", "diag", "clip", "zoneout", "dropout", "bias", "scalar",
              *ir.ROW_KINDS)


@dataclass
class _Ref:
    """A linear()'s weight=W_name(.T), resolved once every statement is built."""

    name: str
    transpose: bool
    span: Span
    shape: tuple  # (out, in) size variables of the product it makes
    owner: str
    line: int
    matmul: str  # the product's node
    call: tuple[int, int]


@dataclass
class _Def:
    """A name a statement may read: the input, a state's previous or new value, an intermediate."""

    node: str  # IR node name
    size: int
    span: Span


def build(cell_file: ast.CellFile) -> ir.Cell:
    return _Builder(cell_file).run()


def _suggest(name: str, choices) -> str | None:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else None


class _Builder:
    def __init__(self, cf: ast.CellFile):
        self.cf = cf
        self.sizes = Sizes()
        self.nodes: list[ir.Node] = []
        self.params: dict[str, ir.Param] = {}
        self.param_spans: dict[str, Span] = {}
        self.param_sizes: dict[str, tuple] = {}
        self.defs: dict[str, _Def] = {}  # user label (h, h', i) -> definition
        self.taken: set[str] = set()  # every IR node name
        self.call_params: dict[tuple[int, int], tuple[str, ...]] = {}
        self.refs: list[_Ref] = []
        self.masks: list[tuple[ir.Mask, int]] = []  # with the size variable of each
        self.param_units: dict[str, int] = {}  # a scalar -> the size it broadcasts over

    # -- declarations ---------------------------------------------------------------
    def run(self) -> ir.Cell:
        cf = self.cf
        if cf.name is None:
            raise CheckError("the cell has no name: start the file with `cell NAME`",
                             Span(cf.path, 1, 1, cf.source))
        problem = cell_name_problem(cf.name)
        if problem:
            raise CheckError(problem, cf.name_span)
        if not cf.inputs:
            raise CheckError("the cell declares no input: add a line `input x`",
                             Span(cf.path, 1, 1, cf.source))
        if not cf.states:
            raise CheckError("the cell declares no state: add a line `state h`",
                             Span(cf.path, 1, 1, cf.source))
        self.sizes.names.extend(["input", "hidden"])
        self.leaf_labels = {d.name for d in (*cf.inputs, *cf.states)}
        decl = cf.inputs[0]
        self._declare(decl, "input", decl.name)
        for decl in cf.inputs[1:]:  # a further input has a size of its own name by default
            self._declare(decl, decl.name, decl.name, main=False)
        for decl in cf.states:
            self._declare(decl, "hidden", decl.name + "_prev")
        self.input_leaf = ir.Leaf(cf.inputs[0].name, cf.inputs[0].name,
                                  "", "input")  # size filled in at the end

        self._collect_targets()
        for stmt in cf.statements:
            self._lower_statement(stmt)
        self._resolve_views()
        self.nodes = self._toposort()
        self._check_used()
        return self._finish()

    def _check_name(self, name: str, span: Span, is_input: bool = False) -> None:
        problem = None if is_input and name == "x" else name_problem(name)
        if problem:
            raise CheckError(problem, span)

    def _declare(self, decl: ast.VarDecl, default_size: str, node_name: str,
                 main: bool = True) -> None:
        self._check_name(decl.name, decl.span, is_input=main and default_size == "input")
        if decl.name in self.defs:
            raise CheckError(f"'{decl.name}' is declared twice", decl.span)
        if decl.size is not None:
            problem = size_name_problem(decl.size)
            if problem:
                raise CheckError(problem, decl.size_span)
        size = self.sizes.new(decl.size or default_size)
        self.defs[decl.name] = _Def(node_name, size, decl.span)
        self.taken.add(node_name)

    def _collect_targets(self) -> None:
        """Register every statement's target first: statements may come in any order."""
        states = {d.name for d in self.cf.states}
        inputs = {d.name for d in self.cf.inputs}
        intermediates = {s.target.name for s in self.cf.statements if not s.target.primed}
        self.target_of: dict[int, str] = {}
        for k, stmt in enumerate(self.cf.statements):
            t = stmt.target
            if t.primed:
                if t.name not in states:
                    what = "the input" if t.name in inputs else (
                        "an intermediate" if t.name in intermediates else "not declared")
                    raise CheckError(
                        f"'{t.label}' updates '{t.name}', which is not a state ({what})", t.span,
                        note="only states have a next value; declare it with `state "
                        f"{t.name}` or drop the prime")
                if t.label in self.defs:
                    raise CheckError(f"state '{t.name}' is updated twice", t.span,
                                     note=f"first update at line {self.defs[t.label].span.line}")
                node_name = t.name + "_new"
                size = self.defs[t.name].size
            else:
                if t.name in states:
                    raise CheckError(
                        f"'{t.name}' is a state: write its update as {t.name}' = ...", t.span)
                if t.name in inputs:
                    raise CheckError(f"'{t.name}' is an input and cannot be assigned", t.span)
                if t.name in self.defs:
                    raise CheckError(f"'{t.name}' is defined twice", t.span,
                                     note=f"first definition at line {self.defs[t.name].span.line}")
                self._check_name(t.name, t.span)
                node_name = t.name
                if stmt.size is not None:
                    problem = size_name_problem(stmt.size)
                    if problem:
                        raise CheckError(problem, stmt.size_span)
                size = self.sizes.new(stmt.size)
            self.defs[t.label] = _Def(node_name, size, t.span)
            self.taken.add(node_name)
            self.target_of[k] = t.label
        for decl in self.cf.states:
            if decl.name + "'" not in self.defs:
                raise CheckError(f"state '{decl.name}' has no update", decl.span,
                                 note=f"add a line `{decl.name}' = ...`")

    # -- statements ---------------------------------------------------------------
    def _lower_statement(self, stmt: ast.Assign) -> None:
        target = self.defs[stmt.target.label]
        self.owner = stmt.target.name
        self.line = stmt.span.line
        self.operand_count = 0
        self.biased_linears = sum(1 for c in _calls(stmt.value, "linear") if _has_bias(c))
        _refuse_second_bias(stmt)
        self.scalars = sum(1 for _ in _calls(stmt.value, "scalar"))
        self.scalar_count = 0
        first_node, params_before = len(self.nodes), set(self.params)
        expr, size = self._expr(stmt.value)
        self._refuse_vanished(stmt, expr, self.nodes[first_node:], params_before)
        # like terms combine across operators (1e308 * h + x + 1e308 * h): check every constant
        if any(out_of_range(n) for n in expr.atoms(sympy.Number)):
            raise CheckError(f"a constant in the value of '{stmt.target.label}' {OUT_OF_RANGE}",
                             _span_of(stmt.value), note=_FOLDED)
        if not expr.free_symbols:  # e.g. `sigmoid(h - h)`: terms cancel to a number
            raise CheckError(
                f"'{stmt.target.label}' is a constant: it reads no input, state or parameter",
                stmt.target.span, note=f"it simplifies to {_number_text(expr)}; write that where it is used")
        self.sizes.unify(target.size, size, stmt.target.span,
                         f"the assignment to '{stmt.target.label}'")
        self._add(ir.Pointwise(target.node, stmt.target.label, target.size, expr))

    def _refuse_vanished(self, stmt: ast.Assign, expr: sympy.Expr, nodes: list,
                         params_before: set[str]) -> None:
        """Every parameter the statement creates must reach its value: `linear(x) * (c - c)`
        folds to 0, and weights that nothing reads would learn nothing."""
        made = {n.name: n for n in nodes}
        reached: set[str] = set()
        stack = sorted(s.name for s in expr.free_symbols)
        while stack:
            name = stack.pop()
            if name in reached:
                continue
            reached.add(name)
            node = made.get(name)
            if isinstance(node, ir.MatMul):
                stack += [node.operand, node.weight]
            elif isinstance(node, ir.Row):
                stack += [node.operand, *filter(None, (node.gain, node.bias))]
            elif isinstance(node, ir.Pointwise):
                stack += sorted(s.name for s in node.expr.free_symbols)
        lost = [p for p in self.params if p not in params_before and p not in reached]
        lost_refs = [r for r in self.refs if r.matmul in made and r.matmul not in reached]
        if lost_refs and not lost:
            r = lost_refs[0]
            raise CheckError(
                f"the term with weight={r.name}{'.T' if r.transpose else ''} vanishes from the "
                f"value of '{stmt.target.label}': it is multiplied by zero or cancels", r.span,
                note="remove the term, or check the constants around it")
        if lost:
            raise CheckError(
                f"'{lost[0]}' vanishes from the value of '{stmt.target.label}': its terms are "
                "multiplied by zero or cancel, so it would learn nothing", self.param_spans[lost[0]],
                note="remove the term, or check the constants around it")

    def _add(self, node) -> None:
        self.nodes.append(node)
        self.taken.add(node.name)

    def _fresh(self, base: str) -> str:
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}{k}", k + 1
        self.taken.add(name)
        return name

    def _expr(self, e: ast.Expr):
        """Lower an expression: (SymPy expression, size variable or SCALAR)."""
        if isinstance(e, ast.Number):
            return sympy.Rational(e.value.numerator, e.value.denominator), SCALAR
        if isinstance(e, ast.Var):
            d = self._lookup(e)
            return ir.symbol(d.node), d.size
        if isinstance(e, ast.Neg):
            v, s = self._expr(e.operand)
            return -v, s
        if isinstance(e, ast.BinOp):
            return self._chain(e)
        if isinstance(e, ast.Pow):
            return self._pow(e)
        return self._call(e)

    def _pow(self, e: ast.Pow):
        base, size = self._expr(e.base)
        if base == 0 and e.exponent < 0:
            raise CheckError("division by zero: 0 to a negative power", e.span)
        value = base ** e.exponent
        # SymPy multiplies nested exponents, (u**16)**16 = u**256, and spreads a power over
        # a product's factors: bound every power the result holds at its top
        for f in sympy.Mul.make_args(value):
            if isinstance(f, sympy.Pow) and f.exp.is_Integer and abs(f.exp) > MAX_EXPONENT:
                raise CheckError(f"this power makes an exponent of {f.exp}: exponents are at "
                                 f"most {MAX_EXPONENT} in size", e.span,
                                 note="name the inner power in its own statement")
        if value.is_Number and out_of_range(value):
            raise CheckError(f"this power folds to a constant that {OUT_OF_RANGE}", e.span,
                             note=_FOLDED)
        return value, size

    def _chain(self, e: ast.BinOp):
        """`a + b - c + ...` or `a * b / c * ...` as one SymPy sum or product: built one
        operator at a time, each would re-sort all the terms before it (quadratic)."""
        additive = e.op in "+-"
        links: list[ast.BinOp] = []
        first: ast.Expr = e
        while isinstance(first, ast.BinOp) and (first.op in "+-") == additive:
            links.append(first)
            first = first.left
        value, size = self._expr(first)
        parts = [value]
        # SymPy folds numbers exactly (1e300 * 1e10, or h / 1e-300 / 1e-300); each constant
        # must still be a float64 in the generated code: check the folded one at each operator
        number = _number_part(value, additive)
        for link in reversed(links):  # left to right, as the statement reads
            rv, rs = self._expr(link.right)
            size = self.sizes.unify(size, rs, link.span, f"'{link.op}'")
            if link.op == "/" and rv == 0:
                raise CheckError("division by zero", link.span)
            part = {"+": rv, "-": -rv, "*": rv, "/": 1 / rv}[link.op]
            parts.append(part)
            if additive:
                number += _number_part(part, additive)
            else:
                number *= _number_part(part, additive)
            if out_of_range(number):
                raise CheckError(f"this '{link.op}' folds to a constant that {OUT_OF_RANGE}",
                                 link.span, note=_FOLDED)
        return (sympy.Add(*parts) if additive else sympy.Mul(*parts)), size

    def _lookup(self, v: ast.Var) -> _Def:
        if v.label in self.defs:
            return self.defs[v.label]
        if v.primed:
            if v.name in self.defs:
                raise CheckError(f"'{v.label}': '{v.name}' is not a state, so it has no next value",
                                 v.span)
            raise CheckError(f"unknown name '{v.label}'", v.span)
        names = [n for n in self.defs if not n.endswith("'")]
        raise CheckError(f"unknown name '{v.name}'", v.span, note=_suggest(v.name, names))

    def _call(self, c: ast.Call):
        if c.func == "linear":
            return self._linear(c)
        if c.func == "diag":
            self._arity(c, 1)
            return self._diag(c)
        if c.func in ir.ROW_KINDS:
            return self._row(c)
        if c.func == "clip":
            return self._clip(c)
        if c.func == "zoneout":
            return self._zoneout(c)
        if c.func == "dropout":
            return self._dropout(c)
        if c.func in ("bias", "scalar"):
            return self._learned(c)
        if c.func not in ARITY:
            raise CheckError(f"unknown function '{c.func}'", c.span,
                             note=_suggest(c.func, [*ARITY, *STRUCTURAL]))
        self._arity(c, ARITY[c.func])
        lowered = [self._expr(a) for a in c.args]
        size = lowered[0][1]
        for (_, s), a in zip(lowered[1:], c.args[1:], strict=True):
            size = self.sizes.unify(size, s, _span_of(a), f"the operands of {c.func}()")
        if c.func == "identity":
            return lowered[0][0], size
        args = tuple(v for v, _ in lowered)
        if all(a.is_Number for a in args):  # sigmoid(2): a number, not a call in the code
            try:
                value = fold(LANGUAGE_FUNCTIONS[c.func], args)
            except ValueError as exc:
                raise CheckError(f"{c.func}() of constants {exc}", c.span, note=_FOLDED) from None
            if out_of_range(value):
                raise CheckError(f"{c.func}() of constants {OUT_OF_RANGE}", c.span, note=_FOLDED)
            return value, size
        return LANGUAGE_FUNCTIONS[c.func](*args), size

    def _clip(self, c: ast.Call):
        """clip(u, lo, hi) = min(max(u, lo), hi): its gradient reaches u inside [lo, hi]
        (at a bound as well, as max and min give a tie to their first operand)."""
        self._arity(c, 3)
        (u, size), (lo, lo_size), (hi, hi_size) = (self._expr(a) for a in c.args)
        for value, s, a in ((lo, lo_size, c.args[1]), (hi, hi_size, c.args[2])):
            size = self.sizes.unify(size, s, _span_of(a), "the operands of clip()")
        if lo.is_Number and hi.is_Number and lo > hi:
            raise CheckError(f"clip() has its lower bound {_number_text(lo)} above its upper "
                             f"bound {_number_text(hi)}", _span_of(c.args[1]))
        if u.is_Number:
            raise CheckError("clip() of a constant: write the clipped number itself",
                             _span_of(c.args[0]))
        Max, Min = LANGUAGE_FUNCTIONS["max"], LANGUAGE_FUNCTIONS["min"]
        return Min(Max(u, lo), hi), size

    def _arity(self, c: ast.Call, n: int) -> None:
        if c.kwargs:
            raise CheckError(f"{c.func}() takes no keyword arguments", c.kwargs[0].span)
        if len(c.args) != n:
            plural = "s" if n != 1 else ""
            raise CheckError(f"{c.func}() takes {n} operand{plural}, got {len(c.args)}", c.span)

    def _operand(self, a: ast.Expr):
        """A linear map's operand as a node: (node name, name suffix, size)."""
        if isinstance(a, ast.Var):
            d = self._lookup(a)
            return d.node, a.name, d.size
        value, size = self._vector(a, "a linear map's operand")
        name = self._operand_name()
        self._add(ir.Pointwise(name, name, size, value, kind="operand"))
        return name, _suffix(a, self.leaf_labels), size

    def _vector(self, a: ast.Expr, what: str, varies: bool = True, note: str | None = None):
        """The value and size of an operand that must be a vector (that varies: a linear
        map or layer norm of `h - h + 1` is a bias or nothing; diag() of it is a per-unit
        bias)."""
        value, size = self._expr(a)
        if size is SCALAR:
            raise CheckError(f"{what} must be a vector, not a constant", _span_of(a), note=note)
        if varies and not value.free_symbols:
            raise CheckError(f"{what} is a constant: its terms cancel", _span_of(a))
        return value, size

    def _operand_name(self) -> str:
        """A fresh node name for an expression operand: `n_in1`, or `in1_b` where `b_in1`
        would start like a parameter or generated name (owners b, w, m, s, d, ...)."""
        self.operand_count += 1
        base = f"{self.owner}_in{self.operand_count}"
        if is_reserved(base):
            base = f"in{self.operand_count}_{self.owner}"
        return self._fresh(base)

    def _linear(self, c: ast.Call):
        bias = self._bias_option(c, weight_too=True)
        if not c.args:
            raise CheckError("linear() needs at least one operand", c.span)
        ref = self._weight_option(c)
        out_size = self.sizes.new()
        terms = []
        suffixes = []
        names = []
        for a in c.args:
            node, suffix, size = self._operand(a)
            suffixes.append(suffix)
            mm = self._fresh(f"m_{self.owner}{suffix}")
            if ref is None:
                wname = f"W_{self.owner}{suffix}"
                self._param(wname, "weight", (out_size, size), _span_of(a))
            else:  # a view of another weight, named and checked once every weight exists
                wname = f"view {len(self.refs)}"
                self.refs.append(_Ref(*ref, (out_size, size), self.owner, self.line, mm,
                                      (c.span.line, c.span.column)))
            names.append(wname)
            self._add(ir.MatMul(mm, f"{wname}·{suffix}", out_size, wname, node))
            terms.append(ir.symbol(mm))
        if bias:
            bname = f"b_{self.owner}"
            if self.biased_linears > 1:
                bname += "".join(suffixes)
            self._param(bname, "bias", (out_size,), c.span)
            terms.append(ir.symbol(bname))
        self.call_params[(c.span.line, c.span.column)] = tuple(names + ([bname] if bias else []))
        return sympy.Add(*terms), out_size

    def _resolve_views(self) -> None:
        """Each weight=W_name(.T) becomes a view parameter of that weight, named W_name_T
        (transposed) or W_name_S (shared), then W_name_T2, ...: made before the time loop in
        every target. Done
        after all statements, which may come in any order: a weight may be created later in
        the file. A transposed (out, in) weight maps out -> in."""
        # one view per use: two products with one weight name would each write its gradient
        rename: dict[str, str] = {}
        for k, r in enumerate(self.refs):
            source = self.params.get(r.name)
            if source is None or source.role != "weight":
                self._refuse_ref(r, source)
            rows, cols = self.param_sizes[r.name]
            want = (cols, rows) if r.transpose else (rows, cols)
            what = f"weight={r.name}{'.T' if r.transpose else ''}"
            self.sizes.unify(r.shape[0], want[0], r.span, f"{what}: its rows (outputs)")
            self.sizes.unify(r.shape[1], want[1], r.span, f"{what}: its columns (the operand)")
            name, n = f"{r.name}_{'T' if r.transpose else 'S'}", 2
            while name in self.params or name in self.taken:
                name, n = f"{r.name}_{'T' if r.transpose else 'S'}{n}", n + 1
            self.params[name] = ir.Param(name, (), "view", r.owner, r.line, r.name, r.transpose)
            self.param_sizes[name] = want
            self.param_spans[name] = r.span
            rename[f"view {k}"] = name
        if not rename:
            return
        self.nodes = [replace(n, weight=rename[n.weight], label=n.label.replace(
            n.weight, rename[n.weight])) if isinstance(n, ir.MatMul) and n.weight in rename
            else n for n in self.nodes]
        self.call_params = {k: tuple(rename.get(p, p) for p in v)
                            for k, v in self.call_params.items()}

    def _refuse_ref(self, r: _Ref, found: ir.Param | None) -> None:
        if found is None:
            weights = [p for p, q in self.params.items() if q.role == "weight"]
            note = _suggest(r.name, weights) or (
                "weight= names a weight that another linear() creates; `gatespec show` "
                "prints their names" + (f": {', '.join(weights)}" if weights else ""))
            if r.name in self.defs or r.name in self.leaf_labels:
                raise CheckError(f"weight= takes a weight matrix's name, and '{r.name}' is a "
                                 "value of the cell", r.span, note=note)
            raise CheckError(f"unknown weight '{r.name}'", r.span, note=note)
        if found.role == "view":
            raise CheckError(f"'{r.name}' is not a weight but weight={found.source}"
                             f"{'.T' if found.transpose else ''} on the line of {found.owner}",
                             r.span, note=f"name {found.source} itself")
        kind = {"bias": "a bias", "diag": "a per-unit weight vector (diag())",
                "ln_gain": "a layer-norm gain", "ln_bias": "a layer-norm bias",
                "rms_gain": "an RMS-norm gain", "rms_bias": "an RMS-norm bias"}
        raise CheckError(f"'{r.name}' is {kind.get(found.role, 'not a weight matrix')}: "
                         "weight= takes a weight matrix that linear() creates", r.span)

    def _bias_option(self, c: ast.Call, default: bool = True, weight_too: bool = False) -> bool:
        """The `bias=true|false` option of linear(), layernorm() and rmsnorm() (linear()'s
        other one, weight=, is read by _weight_option)."""
        bias = default
        seen: set[str] = set()
        for kw in c.kwargs:
            if kw.name in seen:
                raise CheckError(f"{c.func}() is given {kw.name}= twice", kw.span)
            seen.add(kw.name)
            if weight_too and kw.name == "weight":
                continue
            if kw.name != "bias":
                takes = ("`bias=false` and `weight=W_name`" if weight_too
                         else f"`bias={str(not default).lower()}`")
                raise CheckError(f"{c.func}() has no option '{kw.name}'; it takes {takes}",
                                 kw.span)
            if not (isinstance(kw.value, ast.Var) and kw.value.name in ("true", "false")
                    and not kw.value.primed):
                raise CheckError("bias= takes true or false", _span_of(kw.value))
            bias = kw.value.name == "true"
        return bias

    def _weight_option(self, c: ast.Call) -> tuple[str, bool, Span] | None:
        """linear()'s `weight=W_name` or `weight=W_name.T`: (name, transposed, its span)."""
        kw = next((k for k in c.kwargs if k.name == "weight"), None)
        if kw is None:
            return None
        if len(c.args) != 1:
            raise CheckError(
                f"weight= gives the matrix of one operand, but this linear() has {len(c.args)}",
                kw.span, note="write the shared term as a linear() of its own: "
                "linear(x) + linear(h, weight=W_zh)")
        v = kw.value
        if isinstance(v, ast.Attr):
            if v.attr != "T":
                raise CheckError(f"weight= takes a weight or its transpose, W_name.T, not "
                                 f"'{v.name}.{v.attr}'", v.span)
            return v.name, True, v.span
        if isinstance(v, ast.Var) and not v.primed:
            return v.name, False, v.span
        raise CheckError("weight= takes the name of a weight that another linear() creates "
                         "(as `gatespec show` prints it), or its transpose W_name.T",
                         _span_of(v))

    def _row(self, c: ast.Call):
        """A reduction over the units (ir.ROW_KINDS): a normalisation gets a per-unit gain
        alpha_<owner><operand> (and bias beta_...), named like a weight on its operand."""
        spec = ir.ROW_KINDS[c.func]
        if spec.scaled:
            bias = self._bias_option(c, spec.bias_default)
        elif c.kwargs:
            raise CheckError(f"{c.func}() takes no keyword arguments", c.kwargs[0].span)
        if len(c.args) != 1:
            raise CheckError(f"{c.func}() takes 1 operand, got {len(c.args)}", c.span)
        a = c.args[0]
        value, size = self._vector(a, f"the operand of {c.func}()")
        if isinstance(value, sympy.Symbol) and not ir.is_param_name(value.name):
            operand = value.name
        else:
            operand = self._operand_name()
            self._add(ir.Pointwise(operand, operand, size, value, kind="operand"))
        suffix = _suffix(a, self.leaf_labels)
        gain = beta = None
        if spec.scaled:
            role = "ln" if c.func == "layernorm" else "rms"
            gain, beta = f"alpha_{self.owner}{suffix}", f"beta_{self.owner}{suffix}"
            self._param(gain, f"{role}_gain", (size,), c.span)
            if bias:
                self._param(beta, f"{role}_bias", (size,), c.span)
            else:
                beta = None
            self.call_params[(c.span.line, c.span.column)] = (gain, beta) if bias else (gain,)
        prefix, title = _ROW_NAMES[c.func]
        name = self._fresh(f"{prefix}_{self.owner}{suffix}")
        self._add(ir.Row(name, f"{title}({suffix})", size, operand, c.func, gain, beta,
                         self.owner))
        return ir.symbol(name), size

    # -- stochastic masks ---------------------------------------------------------------
    def _zoneout(self, c: ast.Call):
        """zoneout(new, old, rate): each unit keeps `new` with probability 1 - rate, else
        `old` (Krueger et al. 2017; Haste's mask, 1 for new): m*new + (1 - m)*old."""
        if c.kwargs:
            raise CheckError("zoneout() takes no keyword arguments", c.kwargs[0].span)
        if len(c.args) != 3:
            raise CheckError(f"zoneout() takes 3 operands (new, old, rate), got {len(c.args)}",
                             c.span)
        new, new_size = self._expr(c.args[0])
        old, old_size = self._expr(c.args[1])
        size = self.sizes.unify(new_size, old_size, _span_of(c.args[1]),
                                "the operands of zoneout()")
        if size is SCALAR:
            raise CheckError("zoneout() needs a vector: its new and old values are constants",
                             c.span)
        if new == old:
            raise CheckError("zoneout() of a value and itself: the mask would change nothing",
                             _span_of(c.args[1]))
        m = self._mask(c, "zoneout", self._rate(c, c.args[2]), "step", size)
        return m * new + (1 - m) * old, size

    def _dropout(self, c: ast.Call):
        """dropout(v, rate, per=sequence|step): v*m, m = Bernoulli(1 - rate) / (1 - rate)
        (inverted dropout), one mask per sequence (Gal & Ghahramani 2016) or per step."""
        per = "sequence"
        for k, kw in enumerate(c.kwargs):
            if kw.name != "per":
                raise CheckError(f"dropout() has no option '{kw.name}'; it takes "
                                 "`per=sequence` or `per=step`", kw.span)
            if k > 0:
                raise CheckError("dropout() is given per= twice", kw.span)
            if not (isinstance(kw.value, ast.Var) and kw.value.name in ("sequence", "step")
                    and not kw.value.primed):
                raise CheckError("per= takes sequence (one mask for all steps) or step (a "
                                 "new mask every step)", _span_of(kw.value))
            per = kw.value.name
        if len(c.args) != 2:
            raise CheckError(f"dropout() takes 2 operands (value, rate), got {len(c.args)}",
                             c.span)
        value, size = self._vector(c.args[0], "the operand of dropout()")
        m = self._mask(c, "dropout", self._rate(c, c.args[1]), per, size)
        return value * m, size

    def _rate(self, c: ast.Call, a: ast.Expr) -> float:
        value, size = self._expr(a)
        if value.free_symbols or size is not SCALAR:
            raise CheckError(f"the rate of {c.func}() must be a constant number in [0, 1)",
                             _span_of(a))
        if not 0 <= value < 1:
            raise CheckError(f"the rate of {c.func}() must be in [0, 1), got "
                             f"{_number_text(value)}", _span_of(a),
                             note="the probability of dropping a unit (zoneout: of keeping "
                             "its old value); 1 would drop every one")
        return float(value)

    def _mask(self, c: ast.Call, kind: str, rate: float, per: str, size) -> sympy.Symbol:
        name = self._fresh(f"mask_{self.owner}")
        self.masks.append((ir.Mask(name, "", kind, rate, per, self.owner, c.span.line), size))
        self.call_params[(c.span.line, c.span.column)] = (name,)  # the documents name it
        return ir.symbol(name)

    def _diag(self, c: ast.Call):
        a = c.args[0]
        value, size = self._vector(a, "the operand of diag()", varies=False, note=(
            "diag() weighs a value unit by unit; a learned per-unit vector on its own is "
            "bias() (bias(init=1) starts it at 1)"))
        wname = f"w_{self.owner}{_suffix(a, self.leaf_labels)}"
        self._param(wname, "diag", (size,), c.span)
        self.call_params[(c.span.line, c.span.column)] = (wname,)
        return ir.symbol(wname) * value, size

    def _learned(self, c: ast.Call):
        """bias(): a per-unit vector b_<owner>, its size taken from where it is used;
        scalar(): one number gamma_<owner> (gamma_<owner>1, 2, ... when a line has several),
        broadcast over the units and the batch."""
        init = self._init_option(c)
        if c.args:
            raise CheckError(f"{c.func}() takes no operand, got {len(c.args)}", _span_of(c.args[0]),
                             note="it is a learned parameter on its own; to weigh a value unit "
                             "by unit write diag(v), to scale it write scalar() * v")
        units = self.sizes.new()
        if c.func == "bias":
            name, role, shape = f"b_{self.owner}", "unit_bias", (units,)
        else:
            self.scalar_count += 1
            name = f"gamma_{self.owner}" + (str(self.scalar_count) if self.scalars > 1 else "")
            role, shape, init = "scalar", (), 1.0 if init is None else init
        self._param(name, role, shape, c.span, init=init)
        if role == "scalar":
            self.param_units[name] = units
        self.call_params[(c.span.line, c.span.column)] = (name,)
        return ir.symbol(name), units

    def _init_option(self, c: ast.Call) -> float | None:
        """The `init=<number>` option of bias() and scalar(): the constant it starts at."""
        init = None
        for k, kw in enumerate(c.kwargs):
            if kw.name != "init":
                raise CheckError(f"{c.func}() has no option '{kw.name}'; it takes `init=<number>`",
                                 kw.span)
            if k > 0:
                raise CheckError(f"{c.func}() is given init= twice", kw.span)
            value, sign = kw.value, 1
            if isinstance(value, ast.Neg):
                value, sign = value.operand, -1
            if not isinstance(value, ast.Number):
                raise CheckError("init= takes a number, such as init=1 or init=-0.5",
                                 _span_of(kw.value))
            init = sign * float(value.value)
        return init

    def _param(self, name: str, role: str, shape: tuple, span: Span,
               init: float | None = None) -> None:
        if name in self.params:
            first = self.param_spans[name]
            raise CheckError(
                f"this would create parameter '{name}' a second time", span,
                note=f"first created at line {first.line}, column {first.column}; "
                "give the operand its own name with an intermediate statement")
        self.params[name] = ir.Param(name, (), role, self.owner, self.line, init=init)
        self.param_spans[name] = span
        self.param_sizes[name] = shape

    # -- whole-cell checks ---------------------------------------------------------------
    def _toposort(self) -> list[ir.Node]:
        leaf_names = {d.node for d in self.defs.values() if d.node.endswith("_prev")}
        leaf_names.update(d.name for d in self.cf.inputs)
        leaf_names.update(m.name for m, _ in self.masks)
        order = {n.name: k for k, n in enumerate(self.nodes)}
        by_name = {n.name: n for n in self.nodes}
        done: set[str] = set(leaf_names)
        result: list[ir.Node] = []
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                # Name the statements on the cycle (MatMul nodes have no kind), starting
                # from the one that comes first in the file.
                user = [n for n in visiting[visiting.index(name):]
                        if getattr(by_name[n], "kind", None) == "user"]
                spans = [self.defs[by_name[n].label].span for n in user]
                k = spans.index(min(spans, key=lambda s: (s.line, s.column)))
                labels = [by_name[n].label for n in user[k:] + user[:k + 1]]
                raise CheckError("cycle within one step: " + " -> ".join(labels), spans[k],
                                 note="a step's values must be computable in some order; "
                                 "read the previous value of a state without the prime")
            visiting.append(name)
            for d in sorted(ir.deps(by_name[name]), key=lambda n: order.get(n, -1)):
                visit(d)
            visiting.pop()
            done.add(name)
            result.append(by_name[name])

        for n in self.nodes:
            visit(n.name)
        return result

    def _check_used(self) -> None:
        used: set[str] = set()
        for n in self.nodes:
            used.update(ir.deps(n))
        out = self._output_def()
        used.add(out.node)
        used.update(d.node for label, d in self.defs.items() if label.endswith("'"))
        for x in self.cf.inputs:
            if x.name not in used:
                raise CheckError(f"input '{x.name}' is never used", x.span,
                                 note=self._vanished(x.name))
        for stmt in self.cf.statements:
            d = self.defs[stmt.target.label]
            if d.node not in used:
                raise CheckError(f"'{stmt.target.label}' is computed but never used", d.span,
                                 note=self._vanished(stmt.target.label))

    def _vanished(self, label: str) -> str | None:
        """Why a value that statements do mention is not read: its terms are gone."""
        for stmt in self.cf.statements:
            if any(v.label == label for v in _vars(stmt.value)):
                return (f"line {stmt.span.line} mentions it, but in terms that cancel or are "
                        "multiplied by a constant that folds to 0")
        return None

    def _output_def(self) -> _Def:
        out = self.cf.output
        if out is None:
            return self.defs[self.cf.states[0].name + "'"]
        if out.name in {d.name for d in self.cf.states}:
            return self.defs[out.name + "'"]
        if out.name in self.defs and not out.name.endswith("'") and out.name not in {
                d.name for d in self.cf.inputs}:
            return self.defs[out.name]
        raise CheckError(f"output '{out.name}' is not a state or an intermediate", out.span,
                         note=_suggest(out.name, [d.name for d in self.cf.states]))

    def _finish(self) -> ir.Cell:
        cf, sz = self.cf, self.sizes
        size_of = {}
        for d in self.defs.values():
            size_of[d.node] = sz.resolve(d.size)
        nodes = []
        for n in self.nodes:
            nodes.append(type(n)(**{**n.__dict__, "size": sz.resolve(n.size)}))
        params = {}
        for name, p in self.params.items():
            shape = tuple(sz.resolve(v) for v in self.param_sizes[name])
            units = sz.resolve(self.param_units[name]) if name in self.param_units else None
            params[name] = replace(p, shape=shape, units=units)
        x = cf.inputs[0]
        self._check_sizes_fixed(size_of, size_of[x.name], params)
        inputs = [ir.Leaf(d.name, d.name, size_of[d.name], "input") for d in cf.inputs]
        masks = [ir.Mask(**{**m.__dict__, "size": sz.resolve(v)}) for m, v in self.masks]
        inputs += [ir.Leaf(m.name, m.name, m.size, "input") for m in masks]
        states = [ir.Leaf(d.name + "_prev", d.name, size_of[d.name + "_prev"], "state")
                  for d in cf.states]
        out_def = self._output_def()
        out_label = (cf.output.name if cf.output else cf.states[0].name)
        for label, (_, span) in cf.latex.items():
            if label not in self.defs:
                raise CheckError(f"latex names unknown variable '{label}'", span)
        cell = ir.Cell(
            name=cf.name,
            description=cf.description,
            header=cf.header,
            path=cf.path,
            source_sha256=hashlib.sha256(cf.source.encode("utf-8")).hexdigest(),
            sizes=[s for s in sz.names if s in _used_sizes(size_of, params)],
            input=inputs[0],
            inputs=inputs,
            masks=masks,
            states=states,
            updates={d.name: d.name + "_new" for d in cf.states},
            output=out_def.node,
            output_label=out_label,
            params=params,
            nodes=[*inputs, *states, *nodes],
            latex={k: v for k, (v, _) in cf.latex.items()},
            call_params=self.call_params,
        )
        for layer, (gates, span) in cf.equivalents.items():
            cell.torch_layout = resolve_torch(layer, gates, span, cell)
        return cell

    def _check_sizes_fixed(self, size_of: dict, input_size: str, params: dict) -> None:
        """Generated code reads every size off the input or a parameter's shape: a value
        whose size neither fixes (`state a[p]` with `a' = 0.5 * a`) has no known size."""
        fixed = {input_size} | {s for p in params.values() for s in p.shape}
        for label, d in self.defs.items():  # declarations first, then statements in order
            size = size_of[d.node]
            if size not in fixed:
                raise CheckError(
                    f"nothing fixes the size '{size}' of '{label}': no parameter and not "
                    "the input has it", d.span,
                    note="give it a linear map, diag() or layernorm(), or the size of a "
                    "value that has one")


def _used_sizes(size_of: dict, params: dict) -> set[str]:
    used = set(size_of.values())
    for p in params.values():
        used.update(p.shape)
    return used


def _calls(e: ast.Expr, func: str):
    return (n for n in ast.walk(e) if isinstance(n, ast.Call) and n.func == func)


def _refuse_second_bias(stmt: ast.Assign) -> None:
    """A line has one bias: a bias() beside a biased linear(), or a second bias(), would
    name a second b_<owner> (or mean the same vector twice)."""
    biases = sorted((c for c in ast.walk(stmt.value, keywords=False) if isinstance(c, ast.Call)
                     and (c.func == "bias" or c.func == "linear" and _has_bias(c))),
                    key=lambda c: (c.span.line, c.span.column))
    if len(biases) < 2 or not any(c.func == "bias" for c in biases):
        return
    first, second = biases[:2]
    owner = stmt.target.name
    if first.func == "linear" or second.func == "linear":
        note = (f"the line's one bias b_{owner} comes from linear(); drop bias(), or write "
                "linear(..., bias=false) and keep bias()")
    else:
        note = (f"each bias() on this line would be b_{owner}: give the second a line of its "
                f"own (`{owner}_b = bias()`) and use that name here")
    raise CheckError(f"a second bias on the line of '{stmt.target.label}'", second.span,
                     note=note)


def _has_bias(c: ast.Call) -> bool:
    return not any(k.name == "bias" and isinstance(k.value, ast.Var) and k.value.name == "false"
                   for k in c.kwargs)


def _vars(e: ast.Expr):
    """The names an operand reads (not keyword values such as bias=false)."""
    return (n for n in ast.walk(e, keywords=False) if isinstance(n, ast.Var))


def _suffix(e: ast.Expr, leaves: set[str]) -> str:
    """Name part for a parameter on an operand: the operand's name, or for an expression
    the inputs and states it reads (else the intermediates), in order of appearance."""
    if isinstance(e, ast.Var):
        return e.name
    names = list(dict.fromkeys(v.name for v in _vars(e)))
    return "".join([n for n in names if n in leaves] or names)


# node name prefix and label of each row reduction: ln_ix, LN(x)
_ROW_NAMES = {"layernorm": ("ln", "LN"), "rmsnorm": ("rms", "RMS"),
              "softmax": ("sm", "softmax"), "cumax": ("cx", "cumax")}

_FOLDED = "constants are folded exactly, then written into the code as float64 numbers"


def _number_text(n: sympy.Rational) -> str:
    """1/2 as 1/2; a folded value such as sigmoid(2), held exactly, as its float64 digits."""
    return str(n) if n.q < 1000 else repr(float(n))


def _number_part(e: sympy.Expr, additive: bool) -> sympy.Number:
    """The constant term of a sum's operand (0 if none), or a product's numeric factor (1)."""
    return e.as_coeff_Add()[0] if additive else e.as_coeff_Mul()[0]


def _span_of(e: ast.Expr) -> Span:
    if isinstance(e, ast.BinOp | ast.Pow):
        return _span_of(e.left if isinstance(e, ast.BinOp) else e.base)
    return e.span
