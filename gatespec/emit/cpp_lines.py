"""The time loop as C++ for the CPU backend: the same schedule as the kernel drivers
(KernelLines), each per-step line printed as a C++ statement over raw pointers.

A loop line refers to an array that Python made (a state history `h_all`, a saved value, a
gradient buffer, a weight) through `at_(name, t)`, the (B, n) matrix of one step, and to
columns of it through `cols_(ref, offset)`; values that live only within a step are
scratch matrices the C++ function allocates once (`temps`). Everything before and after
the loop (input-only work, weight gradients) stays in the Python driver, one call each.
"""

from __future__ import annotations

import re

import sympy

from gatespec import ir
from gatespec.emit.kernels import Kernel, KernelLines
from gatespec.emit.printer import CodePrinter
from gatespec.errors import EmitError
from gatespec.schedule import STATIC, Gemm, Plan, RowOp


class CppLines(KernelLines):
    """KernelLines whose loop lines are C++ statements (`name = expr;` or calls)."""

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self.arrays: dict[str, str] = {}  # Python array -> "seq" (T, B, n), "mat" (r, c), "vec"
        self.temps: dict[str, str] = {}  # scratch (B, width) matrix -> width (C++ expression)
        self.carry_names = [f"d_{s.label}_next" for s in self.cell.states]
        self.seen: dict[str, str] = {}  # size of every value a kernel computed so far

    # the C++ loop zeroes what a variable-length batch leaves unwritten itself: plain
    # torch.empty buffers, not the Python drivers' `alloc`
    def forward_allocs(self) -> list[str]:
        return super(KernelLines, self).forward_allocs()

    def forward_cache_allocs(self) -> list[str]:
        return super(KernelLines, self).forward_cache_allocs()

    def backward_allocs(self) -> list[str]:
        return super(KernelLines, self).backward_allocs()

    # -- references -------------------------------------------------------------------
    def seq(self, name: str, index: str) -> str:
        self.arrays.setdefault(name, "seq")
        return f"at_({name}, {index})"

    def printer(self, loop: bool, backward: bool = False) -> CodePrinter:
        if not loop:
            return super().printer(loop, backward)
        names: dict[str, str] = {self.cell.input.name: self.seq("x", "t")}
        for n in sorted(self.plan.derived.static):  # a set: sorted, for byte-stable output
            if n != self.cell.input.name:
                names[n] = self.seq(n, "t")
        if backward:
            names["d_out"] = self.seq("d_outputs", "t")
        return _RefPrinter(names, self.carry_names)

    def temp(self, name: str, width: str) -> str:
        self.temps[name] = width
        return name

    def width_of(self, name: str, local: dict[str, str] | None = None) -> str:
        size = self.size_of(name, {**self.seen, **(local or {})})
        for op in self.plan.row_ops:
            if name == op.operand_grad:
                size = op.node.size
        if size is None:
            raise EmitError(f"the size of {name} is unknown to the C++ loop")
        return self.size_var(size)

    # -- statements -------------------------------------------------------------------
    def gemm_forward(self, g: Gemm, addend: Gemm | None = None) -> list[str]:
        if g.context == STATIC:
            return super().gemm_forward(g, addend)
        self.arrays[g.weight] = "mat"
        operand = self.print(self.printer(True), ir.symbol(g.operand))
        add = self.seq(addend.product, "t") if addend is not None else "Ref<S>{}"
        out = self.temp(g.product, f"{g.weight}.n0")
        lines = [f"gemm_nt_(rows, {operand}, {g.weight}, {add}, {out});"]
        if g.stacked:
            for name, cols in zip(g.outputs, self.offsets(g), strict=True):
                lines.append(f"{name} = cols_({out}, {cols.split(':')[0]});")
        return lines

    def gemm_backward(self, g: Gemm) -> list[str]:
        if g.context == STATIC:
            return super().gemm_backward(g)
        self.arrays[g.weight] = "mat"
        out = self.temp(g.operand_grad, f"{g.weight}.n1")
        return [f"gemm_nn_(rows, {self.seq(g.grad_buffer, 't')}, {g.weight}, {out});"]

    def store_slot(self, st, loop: bool) -> str:
        if not loop:
            return super().store_slot(st, loop)
        ref = self.seq(st.buffer, "t")
        if st.gemm is not None and st.gemm.stacked:
            ref = f"cols_({ref}, {self.offsets(st.gemm)[st.index].split(':')[0]})"
        return ref

    def forward_slots(self) -> dict[str, str]:
        slots = {self.cell.updates[s.label]: self.seq(f"{s.label}_all", "t + 1")
                 for s in self.cell.states}
        if self.plan.kind_of(self.cell.output) != "state_new":
            slots.setdefault(self.cell.output, self.seq("outputs", "t"))
        for n in self.plan.saved_loop:
            slots.setdefault(n, self.seq(f"{n}_all", "save_t"))
        return slots

    def block_lines(self, block, loop: bool, backward: bool, slots=None) -> list[str]:
        if not loop:
            return super().block_lines(block, loop, backward, slots)
        printer = self.printer(loop, backward)
        slots = dict(slots or {})
        for st in block.stores:
            slots.setdefault(st.value.name, self.store_slot(st, loop))
        lines: list[str] = []
        filled: set[str] = set()
        local: dict[str, str] = {}
        for size, statements in self._size_groups(block).items():
            for name, _ in statements:
                local[name] = self.seen[name] = size
            assigned = {s for s, _ in statements}
            reads = sorted({f.name for _, e in statements for f in e.free_symbols} - assigned)
            outputs = [s for s, _ in statements if s in self.external or s in slots]
            vectors = [r for r in reads if self.plan.kind_of(r) == "param"]
            inputs = [r for r in reads if r not in vectors]
            kernel = Kernel(f"_k{len(self.kernels)}_{'bwd' if backward else 'fwd'}", size,
                            inputs, vectors, outputs, statements,
                            sum(sympy.count_ops(e) for _, e in statements))
            self.kernels.append(kernel)
            targets = []
            for out in outputs:
                if out in slots:
                    targets.append(slots[out])
                else:
                    targets.append(self.temp(out, self.size_var(size)))
            for v in vectors:
                self.arrays[v] = "vec"
            args = [self.print(printer, ir.symbol(r)) for r in inputs]
            args += targets + [f"{v}.p" for v in vectors]
            lines.append(f"{kernel.name}<S>(rows, {self.size_var(size)}, {', '.join(args)});")
            filled.update(targets)
            for out, target in zip(outputs, targets, strict=True):
                if target != out:
                    lines.append(f"{out} = {target};")
                    self.bindings.add(lines[-1])
                    self.written.add(out)
        for st in block.stores:
            slot = self.store_slot(st, loop)
            if slot not in filled:
                value = self.print(printer, st.value)
                lines.append(f"copy_(rows, {self.width_of(st.value.name, local)}, {slot}, "
                             f"{value});")
        return lines

    def row_lines(self, op: RowOp, loop: bool) -> list[str]:
        if not loop:
            return super().row_lines(op, loop)
        row = op.node
        size = self.size_var(row.size)
        printer = self.printer(loop, op.backward)
        saves = [name for name, _ in op.saves]
        scale = []  # a normalisation's gain and bias pointers
        if row.gain:
            self.arrays[row.gain] = "vec"
            scale.append(f"{row.gain}.p")
        if op.backward:
            if not isinstance(op.adjoint, sympy.Symbol):
                raise EmitError(f"the adjoint of {row.name} is not one array")
            d = self.print(printer, op.adjoint)
            out = self.temp(op.operand_grad, size)
            return [f"{row.kind}_backward_(rows, {size}, {', '.join([d, *saves, *scale, out])});"]
        if row.gain:
            if row.bias:
                self.arrays[row.bias] = "vec"
            scale.append(f"{row.bias}.p" if row.bias else "static_cast<const S*>(nullptr)")
        operand = self.print(printer, ir.symbol(row.operand))
        out = self.temp(row.name, size)
        return [*(f"{name} = {self.seq(f'{name}_all', 'save_t')};" for name in saves),
                f"{row.kind}_(rows, {size}, {', '.join([operand, *scale, out, *saves])});"]

    def forward_saves(self) -> list[str]:
        slots = self.forward_slots()
        lines = [f"copy_(rows, {self.width_of(name)}, {slot}, {name});"
                 for name, slot in slots.items() if name not in self.written]
        if (self.cell.output in self.plan.saved_loop
                and self.plan.kind_of(self.cell.output) != "state_new"):
            lines.append(f"copy_(rows, {self.width_of(self.cell.output)}, "
                         f"{self.seq(f'{self.cell.output}_all', 'save_t')}, {self.cell.output});")
        return lines

    def state_loads(self) -> list[str]:
        return [f"{s.name} = {self.seq(f'{s.label}_all', 't')};" for s in self.cell.states]

    def backward_loads(self) -> list[str]:
        lines = []
        for line in super().backward_loads():  # `name = buffer[t]` / `buffer[t + 1]`
            name, buffer, index = re.fullmatch(r"(\w+) = (\w+)\[(t(?: \+ 1)?)\]", line).groups()
            lines.append(f"{name} = {self.seq(buffer, index)};")
        return lines

    def carry_lines(self) -> list[str]:
        """The state adjoints for the step before: copied into the carry matrices (rows of
        finished sequences keep theirs), through scratch when one carry reads another."""
        lines, later = [], []
        for s, target in zip(self.cell.states, self.carry_names, strict=True):
            self.arrays[target] = "mat"
            e = self.plan.carries[s.label]
            size = self.size_var(s.size)
            if e == 0:
                lines.append(f"zero_(rows, {size}, mat_({target}));")
                continue
            if not isinstance(e, sympy.Symbol):
                raise EmitError(f"the carried adjoint of {s.label} is not one array")
            value = self.print(self.printer(True, True), e)
            if e.name in self.carry_names:
                staged = self.temp(f"{target}_staged", size)
                lines.insert(0, f"copy_(rows, {size}, {staged}, {value});")
                value = staged
            later.append(f"copy_(rows, {size}, mat_({target}), {value});")
        return lines + later


class _RefPrinter(CodePrinter):
    """Loop symbols as C++ references: a carried adjoint is its Python matrix."""

    def __init__(self, names: dict[str, str], carries: list[str]):
        super().__init__({}, names)
        self.carries = carries

    def _print_Symbol(self, s: sympy.Symbol) -> str:
        name = self.names.get(s.name, s.name)
        return f"mat_({name})" if name in self.carries else name
