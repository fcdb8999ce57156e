"""The scan path of a Python module: the time loop of a cell whose states are all linear
recurrences (gatespec/derive/scans.py), written as a few array operations over all steps.

Forward: each state's step is s_new = a * s_prev + b with a and b reading no state, so a and
b are computed for every step at once (the derivative of the step in s_prev, and the step at
s_prev = 0: exact, not differences), `_scan` runs the recurrence, and the rest of the step
(the output, the values the backward pass keeps) is evaluated for all steps at once.

Backward: a step's adjoint of s_prev is linear in the adjoint of s_new, d_prev = alpha *
d_next + g, with alpha and g reading no adjoint of a state: the reverse recurrence is a scan
too, and the step's other adjoints are then evaluated for all steps at once.
"""

from __future__ import annotations

import sympy

from gatespec import ir
from gatespec.derive.scans import Scan, find_scans
from gatespec.emit.lines import ModuleLines, prune_assignments
from gatespec.emit.printer import CodePrinter
from gatespec.errors import EmitError
from gatespec.schedule import BlockOp


def scan_refusal(lines: ModuleLines) -> str | None:
    """Why this cell runs step by step only, or None when the scan path exists."""
    plan = lines.plan
    verdicts = find_scans(plan.cell)
    why = [f"{label}: {v.why}" for label, v in verdicts.items() if not isinstance(v, Scan)]
    if why:
        return "not every state is a linear recurrence (" + "; ".join(why) + ")"
    if not all(isinstance(op, BlockOp) for op in (*plan.loop_forward, *plan.loop_backward)):
        return ("the step has a matrix product or a layer norm after the recurrence, which "
                "the scan path does not cover yet")
    return None


class ScanLines:
    """The printed lines of the scan path, for a plan whose scan_refusal is None."""

    def __init__(self, lines: ModuleLines):
        self.lines = lines
        self.plan = lines.plan
        self.cell = lines.cell

    # -- printing over all steps -----------------------------------------------------------
    def _printer(self) -> CodePrinter:
        """Names of the whole histories: x, the static values, the states' previous and new
        values, the kept loop values, and the output adjoints."""
        names = {self.cell.input.name: "x", "d_out": "d_outputs"}
        for s in self.cell.states:
            names[s.name] = f"{s.label}_all[:-1]"
            names[self.cell.updates[s.label]] = f"{s.label}_all[1:]"
        return CodePrinter(self.lines.dx.functions, names)

    def _print(self, e: sympy.Expr) -> str:
        return self.lines.print(self._printer(), e)

    @staticmethod
    def _compose(ops) -> dict[sympy.Symbol, sympy.Expr]:
        """Each value a loop block assigns, in terms of the step's inputs (one block's
        temporaries inlined: the blocks of a scanned step are a few operations)."""
        env: dict[sympy.Symbol, sympy.Expr] = {}
        for op in ops:
            for sym, e in op.block.assigns:
                env[sym] = e.xreplace(env)
        return env

    def _coefficient(self, kind: str, label: str) -> str:
        """The name of a state's scan coefficient, `b_h`; `_b_h` where a parameter or value
        has that name (bias() on the line of h is b_h, and later lines still read it)."""
        name = f"{kind}_{label}"
        taken = set(self.cell.params) | {n.name for n in self.plan.derived.nodes}
        return f"_{name}" if name in taken else name

    # -- forward -----------------------------------------------------------------------------
    def forward(self) -> list[str]:
        """The scan path's forward; the template defines `active` (None, or with lengths
        the (T, B, 1) mask of the rows each step runs: elsewhere a = 1 and b = 0)."""
        env = self._compose(self.plan.loop_forward)
        prev = {ir.symbol(s.name) for s in self.cell.states}
        lines = []
        for s in self.cell.states:
            new = ir.symbol(self.cell.updates[s.label])
            step = env.get(new, new)
            a = sympy.diff(step, ir.symbol(s.name))
            b = step.xreplace({p: 0 for p in prev})
            if a.free_symbols & prev or sympy.diff(a, ir.symbol(s.name)) != 0:
                raise EmitError(f"the step of {s.label} is not affine in it after scheduling")
            ca, cb = self._coefficient("a", s.label), self._coefficient("b", s.label)
            lines += [f"{ca} = {self._print(a)}",
                      f"{cb} = {self._print(b)}",
                      f"{s.label}_all[1:] = _scan({ca}, {cb}, {s.label}_all[0], T, active)"]
        self.lines.used_helpers.add("_scan")
        return lines + self._rest_of_step(env)

    def _rest_of_step(self, env) -> list[str]:
        """The output and the kept loop values, for all steps at once (the kept ones only
        with keep_cache)."""
        news = {ir.symbol(self.cell.updates[s.label]) for s in self.cell.states}
        body = [f"{sym.name} = {self._print(e)}" for op in self.plan.loop_forward
                for sym, e in op.block.assigns if sym not in news]
        out = self.cell.output
        outputs = [] if self.plan.kind_of(out) == "state_new" else [f"outputs[...] = {out}"]
        # a value of parameters alone is one (n,) vector: it fills its (T, B, n) buffer
        saves = [f"{n}_all[...] = {n}" if n in self.lines.unbatched else f"{n}_all = {n}"
                 for n in self.plan.saved_loop]
        for_outputs = prune_assignments(body, outputs)
        for_saves = [ln for ln in prune_assignments(body, saves) if ln not in for_outputs]
        lines = for_outputs + outputs
        if saves:
            lines += ["if keep_cache:", *(f"    {ln}" for ln in for_saves + saves)]
        return lines

    # -- backward ----------------------------------------------------------------------------
    def backward(self) -> list[str]:
        env = self._compose(self.plan.loop_backward)
        nexts = {ir.symbol(f"d_{s.label}_next") for s in self.cell.states}
        lines = [f"{n} = {n}_all" for n in self.plan.saved_loop]
        for s in self.cell.states:
            carry = self.plan.carries[s.label]
            carry = carry.xreplace(env) if isinstance(carry, sympy.Expr) else sympy.Integer(0)
            nxt = ir.symbol(f"d_{s.label}_next")
            alpha = sympy.diff(carry, nxt)
            g = carry.xreplace({n: 0 for n in nexts})
            if alpha.free_symbols & nexts or carry.free_symbols & (nexts - {nxt}):
                raise EmitError(f"the adjoint step of {s.label} is not a scan after scheduling")
            ca, cg = self._coefficient("alpha", s.label), self._coefficient("g", s.label)
            lines += [f"{ca} = {self._print(alpha)}",
                      f"{cg} = {self._print(g)}",
                      # every step's adjoint of s_prev, then of s_new (the next step's s_prev)
                      f"d_{s.label}_prev_all = _scan_reverse({ca}, {cg}, "
                      f"d_{s.label}_next, T, active)",
                      f"d_{s.label}_next = {self.lines.dx.concat([f'd_{s.label}_prev_all[1:]', f'd_{s.label}_next[None]'])}"]
        self.lines.used_helpers.add("_scan_reverse")
        for op in self.plan.loop_backward:
            lines += self._stores(op.block)
        lines += [f"d_{s.label}_next = d_{s.label}_prev_all[0]" for s in self.cell.states]
        return lines

    def _stores(self, block) -> list[str]:
        """A backward block's assigns and stores into the adjoint buffers, for all steps;
        with lengths (active not None) zero at the steps a row does not run."""
        lines = [f"{sym.name} = {self._print(e)}" for sym, e in block.assigns]
        stores = [f"{self.lines.store_slot(st, False)} = {self._print(st.value)}"
                  for st in block.stores]
        buffers = list(dict.fromkeys(st.buffer for st in block.stores))
        padding = ["if active is not None:",
                   *(f"    {b}[~active[..., 0]] = 0" for b in buffers)] if buffers else []
        return prune_assignments(lines, stores) + stores + padding
