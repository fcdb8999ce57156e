"""Plan → the lines of a JAX module: the NumPy schedule, written functionally.

JAX arrays are immutable, so nothing is written into a slot. The loops become
`lax.scan` bodies in which every name means its value at one step: a scan hands
the body step t of each array it reads (`x`, a hoisted product, a saved value)
under the array's own name, and the body returns what the numpy code would have
stored at index t (a state's new value, a saved value, a row of a gradient
buffer). A gradient buffer's row is put together from the values stored in its
columns; after the backward scan, the stacked rows are the buffers.
"""

from __future__ import annotations

import re

from gatespec import ir
from gatespec.emit.dialects import JAX
from gatespec.emit.lines import ModuleLines, _words
from gatespec.emit.printer import CodePrinter
from gatespec.errors import EmitError
from gatespec.schedule import STATIC, Gemm, Plan, RowOp


class JaxLines(ModuleLines):
    def __init__(self, plan: Plan):
        super().__init__(plan, JAX)
        # base buffer -> column -> the value stored there (a step's in a loop, all in static)
        self.parts: dict[str, dict[int, str]] = {}
        self.loop_bases: list[str] = []  # buffers the backward scan fills, in store order
        self.assembled: set[str] = set()

    def printer(self, loop: bool, backward: bool = False) -> CodePrinter:
        # in a scan body every name is its step's value: x, a hoisted product, d_outputs
        return CodePrinter(self.dx.functions, {self.cell.input.name: "x", "d_out": "d_outputs"})

    # -- buffers -----------------------------------------------------------------------
    def _gemm_of(self, buffer: str) -> Gemm | None:
        return next((g for g in self.plan.gemms if g.grad_buffer == buffer), None)

    def resolve(self, buffer: str, col: int | None = None) -> tuple[str, int | None]:
        """The buffer whose values a (view) buffer shows, and the column it shows."""
        while buffer in self.plan.views:
            buffer, index = self.plan.views[buffer]
            if col is None:
                col = index
        return buffer, col

    def columns(self, base: str) -> int:
        g = self._gemm_of(base)
        return len(g.weights) if g is not None else 1

    def record(self, st) -> str:
        col = st.index if st.gemm is not None else None
        base, col = self.resolve(st.gemm.grad_buffer if st.gemm is not None else st.buffer, col)
        self.parts.setdefault(base, {})[col or 0] = self.print(self.printer(True), st.value)
        return base

    def assemble(self, base: str) -> list[str]:
        """`base = its columns side by side`, once all are stored."""
        if base in self.assembled:
            return []
        parts = self.parts.get(base, {})
        n = self.columns(base)
        if sorted(parts) != list(range(n)):
            raise EmitError(f"buffer {base} is read before its columns {sorted(parts)} of "
                            f"{n} are stored")
        self.assembled.add(base)
        if n == 1:
            return [] if parts[0] == base else [f"{base} = {parts[0]}"]
        return [f"{base} = jnp.concatenate([{', '.join(parts[i] for i in range(n))}], axis=-1)"]

    def row(self, buffer: str) -> tuple[list[str], str]:
        """(lines, name) of a buffer's value at this step, inside the backward scan."""
        base, col = self.resolve(buffer)
        if col is not None and self.columns(base) > 1:
            return [], self.parts[base][col]
        return self.assemble(base), base

    # -- overrides ---------------------------------------------------------------------
    def gemm_forward(self, g: Gemm, addend: Gemm | None = None) -> list[str]:
        operand = self.print(self.printer(g.context != STATIC), ir.symbol(g.operand))
        if g.context == STATIC:
            lines = [f"{g.product} = {operand} @ {g.weight}.T"]
        elif addend is not None:
            lines = [f"{g.product} = {addend.product} + {operand} @ {g.weight}.T"
                     "  # the input-only sums, plus this product"]
        else:
            lines = [f"{g.product} = {operand} @ {g.weight}.T"]
        if g.stacked:
            for out, cols in zip(g.outputs, self.offsets(g), strict=True):
                lines.append(f"{out} = {g.product}[..., {cols}]")
        return lines

    def gemm_backward(self, g: Gemm) -> list[str]:
        if g.context == STATIC:
            return [f"{g.operand_grad} = {g.grad_buffer} @ {g.weight}"]
        lines, name = self.row(g.grad_buffer)
        return [*lines, f"{g.operand_grad} = {name} @ {g.weight}"]

    def block_lines(self, block, loop: bool, backward: bool,
                    slots: dict[str, str] | None = None) -> list[str]:
        if not block.assigns and not block.stores:
            return []
        printer = self.printer(loop, backward)
        lines = [f"# fused pointwise block: {block.ops} operations"] if block.assigns else []
        lines += [f"{sym.name} = {self.print(printer, e)}" for sym, e in block.assigns]
        lines += self.rebuilt_products(block) if not loop and not backward else []
        if block.stores and not backward:
            raise EmitError("the JAX target does not store forward values into buffers")
        bases = []
        for st in block.stores:
            base = self.record(st)
            if loop and base not in self.loop_bases:
                self.loop_bases.append(base)
            bases.append(base)
        if not loop:  # an input-only buffer is whole once its columns are stored
            for base in dict.fromkeys(bases):
                if len(self.parts[base]) == self.columns(base):
                    lines += self.assemble(base)
        return lines

    def rebuilt_products(self, block) -> list[str]:
        """A sum that the NumPy code writes over a hoisted product's columns (`s_i += b_i`)
        changes the product that the loop starts from: here the product is formed again."""
        replaced = {base.name: sym.name for sym, base in block.inplace.items()}
        lines = []
        for g in self.plan.gemms:
            if g.context == STATIC and any(o in replaced for o in g.outputs):
                if g.stacked:
                    cols = ", ".join(replaced.get(o, o) for o in g.outputs)
                    lines.append(f"{g.product} = jnp.concatenate([{cols}], axis=-1)")
                else:
                    lines.append(f"{g.product} = {replaced[g.product]}")
        return lines

    def row_lines(self, op: RowOp, loop: bool) -> list[str]:
        # the comment and the helper's call: a scan body returns what it saves, it does not
        # store it into per-step buffers
        return super().row_lines(op, loop)[:2]

    def reference_lines(self) -> list[str]:
        lines = super().reference_lines()
        for leaf in self.cell.inputs[1:]:  # a scan body's names are their step's values
            lines = [re.sub(rf"\b{leaf.name}\[t\]", leaf.name, line) for line in lines]
        return [line.replace("x[t]", "x") for line in lines]

    def split_lines(self) -> list[str]:
        """A packed x's parts (see ModuleLines._packed_size_lines), without the sizes."""
        if not self.cell.packed:
            return []
        return [line for line in self.size_lines()
                if not line.startswith(("size_", "_packed"))]

    def size_only_lines(self, backward: bool = False) -> list[str]:
        return [line for line in self.size_lines(backward) if line.startswith("size_")]

    # -- scans -------------------------------------------------------------------------
    def static_names(self) -> list[str]:
        """The input and the input-only values, as a scan body reads them."""
        names = ["x"]
        names += [n.name for n in self.plan.derived.nodes
                  if n.name in self.plan.derived.static and n.name != self.cell.input.name]
        names += [g.product for g in self.plan.gemms if g.context == STATIC and g.stacked]
        return list(dict.fromkeys(names))

    def forward_saves_jax(self) -> list[tuple[str, str]]:
        """(value in the forward body, residual array) of what the backward pass reads per step."""
        printer = self.printer(True)
        saves = [(self.print(printer, ir.symbol(self.cell.updates[s.label])), f"{s.label}_new")
                 for s in self.cell.states if s.label in self.plan.saved_states]
        saves += [(self.print(printer, ir.symbol(n)), f"{n}_all") for n in self.plan.saved_loop]
        for op in self.loop_row_ops():
            saves += [(name, f"{name}_all") for name, _ in op.saves]
        return saves

    def backward_xs(self, body: list[str]) -> list[tuple[str, str]]:
        """(name in the backward body, the array the scan slices) for what the body reads."""
        read = _words("\n".join(body))
        xs = []
        for s in self.cell.states:
            if s.label in self.plan.saved_states:
                xs += [(s.name, f"{s.label}_all[:-1]"),
                       (self.cell.updates[s.label], f"{s.label}_all[1:]")]
        xs += [(n, f"{n}_all") for n in self.plan.saved_loop]
        for op in self.loop_row_ops():
            xs += [(name, f"{name}_all") for name, _ in op.saves]
        xs += [(n, n) for n in self.static_names()]
        xs.append(("d_outputs", "d_outputs"))
        return [(name, src) for name, src in dict(xs).items() if name in read]

    def backward_ys(self) -> tuple[list[str], list[str]]:
        """(lines that finish each buffer's row, the rows in loop_bases order)."""
        lines = []
        for base in self.loop_bases:
            lines += self.assemble(base)
        return lines, list(self.loop_bases)

    def view_lines(self) -> list[str]:
        """After the backward scan: the buffers that show another's values, by name."""
        lines = []
        for name in self.plan.views:
            base, index = self.resolve(name)
            if index is None or self.columns(base) == 1:
                lines.append(f"{name} = {base}")
            else:
                lines.append(f"{name} = {base}[..., {self.offsets(self._gemm_of(base))[index]}]")
        return lines


def prune(lines: list[str], body: list[str]) -> list[str]:
    """Keep the assignments (`a = ...`, `a, b = ...`) of which a name is read by the body or
    a later kept line, and the comments above kept lines."""
    def code(text: str) -> str:  # without string literals and comments
        return re.sub(r'"[^"]*"|#.*', "", text)

    read = _words(code("\n".join(body)))
    kept: list[str] = []
    follows_kept = False
    for line in reversed(lines):
        if line.startswith("#"):
            if follows_kept:
                kept.append(line)
            continue
        targets = {t.strip() for t in line.split(" = ")[0].split(",")}
        follows_kept = bool(targets & read)
        if follows_kept:
            kept.append(line)
            read |= _words(code(line.split(" = ", 1)[1]))
    return kept[::-1]
