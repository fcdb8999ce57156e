"""Derived graph → execution plan.

The plan has two contexts. The *static* context holds what depends on the input
only; it runs once over the whole sequence: one GEMM per operand with stacked
weights, then vectorised pointwise blocks. The *loop* context runs per time
step: stages of (GEMMs on one operand each, then one fused pointwise block);
a linear map that reads a value computed in the step (the article GRU's
`r * h`) starts a new stage.

The backward pass mirrors it: per step, the stages in reverse, each a fused
pointwise adjoint block followed by the transposed GEMMs (dX = dY W); the
weight gradients are one GEMM per stacked weight after the loop; bias and
diagonal gradients are sums over time and batch of per-step buffers.
Adjoints that are used only inside their block are inlined (while small: a large one
keeps its name, so the cost stays linear in the statements), then each block goes
through common subexpression elimination.
"""

from __future__ import annotations

import heapq
from collections import Counter

import sympy

from gatespec import ir
from gatespec.derive import Derived
from gatespec.errors import ScheduleError
from gatespec.schedule.alias import buffer_views, propagate_copies
from gatespec.schedule.epilogue import fuse_epilogues
from gatespec.schedule.plan import (
    Block,
    BlockOp,
    Gemm,
    GemmOp,
    Op,
    Plan,
    RowOp,
    Store,
)

STATIC, LOOP = "static", "loop"
TAIL = -1  # block position after the last transposed GEMM of a context
# An adjoint is inlined into the adjoints of its block that read it while its nodes times
# its readers stay under this; the built-in cells stay under it (their most: 99 x 2).
INLINE_LIMIT = 200


def adjoint(name: str) -> sympy.Symbol:
    return ir.symbol(f"d_{name}")


def schedule(d: Derived) -> Plan:
    return _Scheduler(d).run()


class _Scheduler:
    def __init__(self, d: Derived):
        self.d = d
        self.cell = d.cell
        self.order = {n.name: k for k, n in enumerate(d.nodes)}
        self.consumers = {n.name: [] for n in d.nodes}
        for n in d.nodes:
            for dep in ir.deps(n):
                self.consumers[dep].append(n.name)
        self.new_to_state = {v: k for k, v in self.cell.updates.items()}
        self.cse_count = 0

    def context_of(self, name: str) -> str:
        return STATIC if name in self.d.static else LOOP

    def members(self, ctx: str) -> list[ir.Node]:
        """Nodes computed in a context (leaves excluded), in topological order."""
        return [n for n in self.d.nodes if not isinstance(n, ir.Leaf) and self.context_of(n.name) == ctx]

    def levels(self, ctx: str) -> dict[str, int]:
        level: dict[str, int] = {}
        for n in self.members(ctx):
            inner = [dep for dep in ir.deps(n) if dep in level]
            if isinstance(n, ir.MatMul):
                level[n.name] = level[n.operand] + 1 if n.operand in level else 0
            elif isinstance(n, ir.Row):  # runs right after the GEMMs of its stage
                op = n.operand
                level[n.name] = (0 if op not in level else level[op]
                                 if isinstance(self.d.node(op), ir.MatMul) else level[op] + 1)
            else:
                level[n.name] = max((level[dep] for dep in inner), default=0)
        return level

    def gemms(self, ctx: str, level: dict[str, int]) -> list[Gemm]:
        groups: dict[str, Gemm] = {}
        for n in self.members(ctx):
            if not isinstance(n, ir.MatMul):
                continue
            g = groups.get(n.operand)
            if g is None:
                op = self.d.node(n.operand)
                key = op.label if isinstance(op, ir.Leaf) else n.operand
                g = groups[n.operand] = Gemm(key, ctx, level[n.name], n.operand, op.size, [], [], [])
            g.weights.append(n.weight)
            g.outputs.append(n.name)
            g.out_sizes.append(n.size)
        return sorted(groups.values(), key=lambda g: (g.level, self.order[g.outputs[0]]))

    # -- forward -------------------------------------------------------------------
    def row_ops(self, ctx: str, level: dict[str, int]) -> list[RowOp]:
        return [RowOp(n, ctx, level[n.name]) for n in self.members(ctx)
                if isinstance(n, ir.Row)]

    def forward_ops(self, ctx: str, level: dict[str, int], gemms: list[Gemm]) -> list[Op]:
        ops: list[Op] = []
        n_levels = max(level.values(), default=-1) + 1
        for k in range(n_levels):
            ops.extend(GemmOp(g) for g in gemms if g.level == k)
            ops.extend(op for op in self.row_ops(ctx, level) if op.level == k)
            assigns = [(ir.symbol(n.name), n.expr) for n in self.members(ctx)
                       if isinstance(n, ir.Pointwise) and level[n.name] == k]
            if assigns:
                inplace = self.inplace_sums(assigns) if ctx == STATIC else {}
                ops.append(BlockOp(Block(assigns, inplace=inplace)))
        return ops

    def inplace_sums(self, assigns) -> dict[sympy.Symbol, sympy.Symbol]:
        """Input-only sums such as `s_i = b_i + m_ix` may accumulate into the product they
        read when nothing else reads it: one pass and no new (T, B, n) array."""
        out = {}
        for sym, e in assigns:
            if not isinstance(e, sympy.Add):
                continue
            for term in sorted(e.args, key=lambda a: str(a)):
                if (isinstance(term, sympy.Symbol) and term.name in self.consumers
                        and isinstance(self.d.node(term.name), ir.MatMul)
                        and self.consumers[term.name] == [sym.name]
                        and term.name not in self.needed_later):
                    out[sym] = term
                    break
        return out

    # -- backward ------------------------------------------------------------------
    def adjoint_terms(self, name: str, ctx: str, gemm_operands: set[str]) -> list[sympy.Expr]:
        terms = [adjoint(c) * p for c, p in self.d.partials[name] if self.context_of(c) == ctx]
        if name in gemm_operands:
            terms.append(ir.symbol(f"d_{name}_gemm"))
        terms += [ir.symbol(f"d_{c}_operand") for c in self.consumers[name]
                  if isinstance(self.d.node(c), ir.Row) and self.context_of(c) == ctx]
        if ctx == LOOP:
            if name in self.new_to_state:
                terms.append(ir.symbol(f"d_{self.new_to_state[name]}_next"))
            if name == self.cell.output:
                terms.append(ir.symbol("d_out"))
        elif any(self.context_of(c) == LOOP for c in self.consumers[name]):
            terms.append(ir.symbol(f"d_{name}_all"))
        return terms

    def backward(self, ctx: str, level: dict[str, int], gemms: list[Gemm]):
        """Adjoint blocks of one context, in execution order, with the stores they make."""
        gemm_level = {g.operand: g.level for g in gemms}
        # Nodes whose adjoints this context computes: its members, plus leaves and
        # static values read here (their loop part goes to a buffer).
        masks = {m.name for m in self.cell.masks}  # constants to the gradient: no adjoint
        needed = [n.name for n in self.d.nodes if n.name not in masks and (
            self.context_of(n.name) == ctx and not isinstance(n, ir.Leaf)
            or isinstance(n, ir.Leaf) and n.kind == ("input" if ctx == STATIC else "state")
            or ctx == LOOP and n.name in self.d.static
            and any(self.context_of(c) == LOOP for c in self.consumers[n.name]))]
        exprs: dict[str, sympy.Expr] = {}
        position: dict[str, int] = {}
        zero: dict[sympy.Symbol, sympy.Expr] = {}
        for name in sorted(needed, key=lambda n: -self.order[n]):
            e = sympy.Add(*self.adjoint_terms(name, ctx, set(gemm_level))).xreplace(zero)
            if e == 0:
                zero[adjoint(name)] = sympy.Integer(0)
                exprs[name] = sympy.Integer(0)
                continue
            exprs[name] = e
            position[name] = self.position(name, level, gemm_level)

        param_exprs: dict[str, tuple[sympy.Expr, int]] = {}
        for p, partials in self.d.param_partials.items():
            here = [(c, dp) for c, dp in partials if self.context_of(c) == ctx]
            if here and ctx == LOOP and (products := self.products(here)):
                self.param_products[p] = products
                continue
            if here:
                e = sympy.Add(*(adjoint(c) * dp for c, dp in here)).xreplace(zero)
                if e != 0:
                    param_exprs[p] = (e, min(level[c] for c, _ in here))
        return exprs, position, param_exprs

    def products(self, partials) -> list[tuple[str, str]] | None:
        """A loop parameter gradient as sums over time of (a stored adjoint) x (a saved value),
        formed after the loop: a per-unit weight `w * v` in `f(m + w * v)` gets
        sum_t d(m) * v, where d(m) is already kept for the GEMM. None if some term is not so."""
        terms = []
        for c, dp in partials:
            for k in self.carriers:
                mine = [(cc, dk) for cc, dk in self.d.partials[k] if self.context_of(cc) == LOOP]
                if [cc for cc, _ in mine] != [c]:
                    continue
                ratio = sympy.cancel(dp / mine[0][1])
                if isinstance(ratio, sympy.Symbol) and ratio.name in self.order:
                    terms.append((k, ratio.name))
                    break
            else:
                return None
        return terms

    def position(self, name: str, level: dict[str, int], gemm_level: dict[str, int]) -> float:
        """Where a node's adjoint is computed: block k (level k), k - 0.25 (right after the
        layer norms of level k), or TAIL. It must come after every transposed GEMM and
        layer-norm backward that feeds it."""
        ln_levels = [level[c] for c in self.consumers[name]
                     if c in level and isinstance(self.d.node(c), ir.Row)]
        if name in level:
            same = level[name] in ln_levels
            return level[name] - 0.25 if same else level[name]
        after = [gemm_level[name]] if name in gemm_level else []
        after += ln_levels
        if after:  # an operand of a GEMM or a layer norm at level j: after level j
            j = max(after)
            return j - 1 if j > 0 else TAIL
        return min((level[c] for c in self.consumers[name] if c in level), default=TAIL)

    def make_blocks(self, ctx, level, gemms, exprs, position, param_exprs, outputs_fixed):
        """Group adjoint computations by position, inline block-local ones, CSE each block."""
        n_levels = max(level.values(), default=-1) + 1
        positions = [p for k in reversed(range(n_levels)) for p in (k, k - 0.25)] + [TAIL]
        lns = self.row_ops(ctx, level)
        # A symbol is a block output when another block, a store or the caller reads it.
        uses: dict[sympy.Symbol, set[int]] = {}
        entries: dict[int, list[tuple[sympy.Symbol, sympy.Expr]]] = {p: [] for p in positions}
        for name in sorted(position, key=lambda n: -self.order[n]):
            entries[position[name]].append((adjoint(name), exprs[name]))
        for p, (e, pos) in sorted(param_exprs.items()):
            entries[pos].append((ir.symbol(f"d_{p}"), e))
        for pos, items in entries.items():
            for _, e in items:
                for s in e.free_symbols:
                    uses.setdefault(s, set()).add(pos)
        stores: dict[int, list[Store]] = {p: [] for p in positions}
        for g in gemms:
            for k, out in enumerate(g.outputs):
                if out in position:
                    stores[position[out]].append(Store(g.grad_buffer, adjoint(out), g, k))
        for op in lns:  # each normalisation's adjoint feeds its gain and bias gradients
            if op.node.name in position and ctx == LOOP and op.node.gain:
                stores[position[op.node.name]].append(Store(f"d_{op.node.name}_all",
                                                            adjoint(op.node.name)))
        if ctx == LOOP:
            for name, pos in position.items():
                if name in self.d.static:
                    stores[pos].append(Store(f"d_{name}_all", adjoint(name)))
            for p, (_, pos) in param_exprs.items():
                stores[pos].append(Store(f"d_{p}_all", ir.symbol(f"d_{p}")))
        ops: list[Op] = []
        for pos in positions:
            items = entries[pos]
            keep = {s.value for s in stores[pos]} | set(outputs_fixed)
            keep |= {ir.symbol(f"d_{p}") for p in param_exprs}
            keep |= {adjoint(op.node.name) for op in lns}
            keep |= {sym for sym, _ in items if uses.get(sym, set()) - {pos}}
            inline: dict[sympy.Symbol, sympy.Expr] = {}
            outs: list[tuple[sympy.Symbol, sympy.Expr]] = []
            readers = Counter(s for _, e in items for s in e.free_symbols)
            for sym, e in items:
                # Inline the adjoints of this block, and let CSE share what several outputs
                # use; but one whose copies would be big keeps its name: inlined, a chain of
                # adjoints read twice each (q2 = q1 * q1 + sigmoid(q1), ...) would double at
                # every link, and CSE's work with it.
                e = e.xreplace(inline)
                if _tree_size(e) * readers[sym] <= INLINE_LIMIT:
                    inline[sym] = e
                    if sym in keep:
                        outs.append((sym, e))
                else:
                    outs.append((sym, e))
            if outs:
                ops.append(BlockOp(Block(self.cse(outs), stores[pos])))
            ops.extend(RowOp(op.node, ctx, op.level, backward=True) for op in lns
                       if op.level == pos and op.node.name in position)
            ops.extend(GemmOp(g, backward=True) for g in gemms if pos == g.level - 0.25)
        return ops

    def cse(self, outs):
        temps = sympy.numbered_symbols("_e", start=self.cse_count, real=True)
        replacements, reduced = sympy.cse([e for _, e in outs], symbols=temps, order="canonical")
        self.cse_count += len(replacements)
        return _dependency_order(
            [*replacements, *((s, e) for (s, _), e in zip(outs, reduced, strict=True))])

    # -- the whole plan --------------------------------------------------------------
    def run(self) -> Plan:
        d, cell = self.d, self.cell
        lv_static, lv_loop = self.levels(STATIC), self.levels(LOOP)
        g_static, g_loop = self.gemms(STATIC, lv_static), self.gemms(LOOP, lv_loop)

        # nodes whose per-step adjoint is kept anyway: products in GEMM gradient buffers,
        # input-only values read in the loop (see products())
        self.param_products: dict[str, list[tuple[str, str]]] = {}
        lone = {n for n in self.consumers if len(self.consumers[n]) == 1}
        self.carriers = [n.name for n in self.d.nodes if n.name in lone and (
            isinstance(n, ir.MatMul) and self.context_of(n.name) == LOOP
            or n.name in self.d.static and not isinstance(n, ir.Leaf)
            and self.context_of(self.consumers[n.name][0]) == LOOP)]
        ex, pos, pex = self.backward(LOOP, lv_loop, g_loop)
        carried = [adjoint(s.name) for s in cell.states]
        loop_backward = self.make_blocks(LOOP, lv_loop, g_loop, ex, pos, pex, carried)
        carries = {s.label: (adjoint(s.name) if s.name in pos else ex.get(s.name, sympy.Integer(0)))
                   for s in cell.states}

        ex_s, pos_s, pex_s = self.backward(STATIC, lv_static, g_static)
        xs = [leaf.name for leaf in cell.inputs]
        static_backward = self.make_blocks(STATIC, lv_static, g_static, ex_s, pos_s, pex_s,
                                           [adjoint(x) for x in xs])
        input_grads = [adjoint(x) if x in pos_s else ex_s.get(x, sympy.Integer(0)) for x in xs]

        loop_buffers: list[tuple[str, str]] = []
        for op in loop_backward:
            if isinstance(op, BlockOp):
                for st in op.block.stores:
                    if st.gemm is None:
                        name = st.buffer.removeprefix("d_").removesuffix("_all")
                        size = (ir.unit_size(cell.params[name]) if name in cell.params
                                else d.node(name).size)
                        loop_buffers.append((st.buffer, size))
        # One copy map per context: `d_v` of a static value read in the loop is its
        # per-step part there and its total in the static context, two different values.
        alias: dict[sympy.Symbol, sympy.Expr] = {}
        loop_backward = propagate_copies(loop_backward, alias)
        carries = {k: v.xreplace(alias) for k, v in carries.items()}
        loop_alias, alias = alias, {}
        static_backward = propagate_copies(static_backward, alias)
        input_grads = [g.xreplace(alias) for g in input_grads]
        param_grads: dict[str, list[sympy.Expr]] = {}
        for p, param in cell.params.items():
            if param.role in ir.POINTWISE_ROLES:
                parts = [ir.symbol(f"d_{p}_all")] if p in pex else []
                parts += [ir.symbol(f"d_{p}").xreplace(alias)] if p in pex_s else []
                param_grads[p] = parts

        for ops, copies in ((loop_backward, loop_alias), (static_backward, alias)):
            for op in ops:
                if isinstance(op, RowOp):  # its adjoint may have been copy-propagated
                    op.adjoint = adjoint(op.node.name).xreplace(copies)
        saved = self.saved_values([*loop_backward, *static_backward], g_static + g_loop,
                                  {v for terms in self.param_products.values() for _, v in terms})
        self.needed_later = set(saved)
        plan = Plan(
            derived=d,
            gemms=g_static + g_loop,
            static_forward=self.forward_ops(STATIC, lv_static, g_static),
            loop_forward=self.forward_ops(LOOP, lv_loop, g_loop),
            loop_backward=loop_backward,
            static_backward=static_backward,
            # states' values are kept as histories; a node named like one (`abs_h_prev`,
            # the lifted abs(h)) is saved as any other
            saved_loop=[n for n in saved if self.context_of(n) == LOOP
                        and n not in self.new_to_state
                        and n not in {s.name for s in cell.states}],
            saved_static=[n for n in saved if self.context_of(n) == STATIC],
            saved_states=[s.label for s in cell.states
                          if s.name in saved or cell.updates[s.label] in saved],
            loop_buffers=loop_buffers,
            param_grads=param_grads,
            param_products=self.param_products,
            carries=carries,
            input_grad=input_grads[0],
            extra_input_grads=input_grads[1:],
        )
        plan.row_ops = self.row_ops(STATIC, lv_static) + self.row_ops(LOOP, lv_loop)
        adjoints = {op.node.name: op.adjoint for op in [*loop_backward, *static_backward]
                    if isinstance(op, RowOp)}
        for op in plan.row_ops:  # None: nothing depends on this layer norm's output
            op.adjoint = adjoints.get(op.node.name)
        plan.views = buffer_views(plan)
        fuse_epilogues(plan, set(saved))
        self.check(plan)
        return plan

    def saved_values(self, ops: list[Op], gemms: list[Gemm], extra: set[str]) -> list[str]:
        nodes = {n.name for n in self.d.nodes}
        used: set[str] = {g.operand for g in gemms} | extra
        for op in ops:
            if isinstance(op, BlockOp):
                for _, e in op.block.assigns:
                    used.update(s.name for s in e.free_symbols if s.name in nodes)
        return sorted(used, key=lambda n: self.order[n])

    def check(self, plan: Plan) -> None:
        """Every symbol a loop block reads must be defined before it: a bug here is ours."""
        defined = {s.name for s in self.cell.states} | {"d_out"}
        defined |= {f"d_{s.label}_next" for s in self.cell.states}
        defined |= {g.operand_grad for g in plan.gemms}
        defined |= {op.operand_grad for op in plan.row_ops}
        defined |= {n.name for n in self.d.nodes} | set(self.cell.params)
        for op in plan.loop_backward:
            if isinstance(op, BlockOp):
                for sym, e in op.block.assigns:
                    missing = {s.name for s in e.free_symbols} - defined
                    if missing:
                        raise ScheduleError(f"{sym} reads {sorted(missing)} before they exist")
                    defined.add(sym.name)
                defined |= {f"d_{st.buffer}" for st in op.block.stores}


def _dependency_order(assigns: list[tuple[sympy.Symbol, sympy.Expr]]):
    """The assignments with each one after those it reads, otherwise in the given order.
    CSE puts its temporaries first, but one may read a named adjoint of the block."""
    index = {sym: k for k, (sym, _) in enumerate(assigns)}
    waiting = [0] * len(assigns)  # how many of the block's symbols each one still waits for
    readers: dict[int, list[int]] = {}
    for k, (_, e) in enumerate(assigns):
        for s in e.free_symbols:
            j = index.get(s)
            if j is not None:
                waiting[k] += 1
                readers.setdefault(j, []).append(k)
    ready = [k for k, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(assigns[k])
        for r in readers.get(k, []):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) != len(assigns):
        raise ScheduleError("common subexpressions of a block read each other in a cycle")
    return order


def _tree_size(e: sympy.Expr) -> int:
    """Nodes of an expression as printed (a shared subexpression counts each time)."""
    count, stack = 0, [e]
    while stack:
        count += 1
        stack.extend(stack.pop().args)
    return count
