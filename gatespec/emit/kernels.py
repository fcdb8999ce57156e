"""Fused pointwise kernels: each loop block of the plan, forward and backward, becomes
one kernel per vector size (Triton or CUDA C), launched over the flattened (B, n) work.

`KernelLines` prints the same forward and backward functions as the PyTorch target,
except that each per-step block is a kernel launch; GEMMs stay with torch (cuBLAS),
and so does the input-only work, which runs once over the whole sequence.

Variable-length batches: step t works on its active rows only, rows = batch_sizes[t] (or
B), so its GEMMs and launches cost what the real steps do: kernels are launched over `rows`
rows, and torch ops get the prefix `[:rows]` of each per-step array. Buffers start at zero
then (the driver's `alloc`): the outputs and adjoints of inactive positions stay zero for
the sums over all steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from gatespec import ir
from gatespec.emit.dialects import TORCH
from gatespec.emit.lines import ModuleLines
from gatespec.schedule import BlockOp, Plan, RowOp


@dataclass
class Kernel:
    name: str
    size: str  # the size name of every vector it touches
    inputs: list[str]  # (B, n) arrays read
    vectors: list[str]  # per-unit parameters (n,) read
    outputs: list[str]  # (B, n) arrays written
    statements: list[tuple[str, sympy.Expr]]
    ops: int


class KernelLines(ModuleLines):
    """ModuleLines whose per-step blocks are kernel launches."""

    split_copy = ".contiguous()"

    def __init__(self, plan: Plan, quote_names: bool = False):
        super().__init__(plan, TORCH)
        self.quote_names = quote_names  # the CUDA driver names kernels by string
        self.kernels: list[Kernel] = []
        self.external = _external_symbols(plan)

    def param_load(self, p: ir.Param) -> str:
        """Kernels read every parameter unit by unit: a scalar goes in as a vector of its
        value (its gradient, summed over the units, stays a scalar)."""
        if p.role == "scalar":
            return (f'{p.name} = params["{p.name}"].expand({self.size_var(p.units)})'
                    ".contiguous()")
        return super().param_load(p)

    def size_of(self, name: str, local: dict[str, str]) -> str | None:
        """The size name of a symbol: a node, a parameter, an adjoint, a seed or a temporary."""
        d = self.plan.derived
        if name in local:
            return local[name]
        base = name.removeprefix("d_")
        for suffix in ("_gemm", "_next"):
            base = base.removesuffix(suffix)
        if base == "out":
            base = self.cell.output
        for s in self.cell.states:
            if base == s.label:
                return s.size
        if base in self.cell.params:
            return ir.unit_size(self.cell.params[base])
        try:
            return d.node(base).size
        except KeyError:
            return None

    def block_lines(self, block, loop: bool, backward: bool, slots=None) -> list[str]:
        if not loop:
            return super().block_lines(block, loop, backward, slots)
        printer = self.printer(loop, backward)
        slots = dict(slots or {})
        for st in block.stores:
            slots.setdefault(st.value.name, self.store_slot(st, loop))
        groups = self._size_groups(block)
        lines = []
        filled: set[str] = set()  # slots the kernels wrote
        for size, statements in groups.items():
            assigned = {s for s, _ in statements}
            reads = sorted({f.name for _, e in statements for f in e.free_symbols} - assigned)
            outputs = [s for s, _ in statements if s in self.external or s in slots]
            vectors = [r for r in reads if self.plan.kind_of(r) == "param"]
            inputs = [r for r in reads if r not in vectors]
            kernel = Kernel(f"_k{len(self.kernels)}_{'bwd' if backward else 'fwd'}", size,
                            inputs, vectors, outputs, statements,
                            sum(sympy.count_ops(e) for _, e in statements))
            self.kernels.append(kernel)
            lines.append(f"# kernel {kernel.name}: {kernel.ops} operations on {size}-sized "
                         "vectors")
            targets = []
            for out in outputs:
                if out in slots:
                    targets.append(slots[out])
                else:
                    lines.append(f"{out} = torch.empty((rows, {self.size_var(size)}), "
                                 "dtype=dtype, device=device)")
                    targets.append(out)
            args = ", ".join(self.print(printer, ir.symbol(r)) for r in inputs)
            outs = ", ".join(targets)
            vecs = ", ".join(vectors)
            ref = f'"{kernel.name}"' if self.quote_names else kernel.name
            lines.append(f"_launch({ref}, {self.size_var(size)}, rows, [{args}], "
                         f"[{outs}], [{vecs}])")
            filled.update(targets)
            for out, target in zip(outputs, targets, strict=True):
                if target != out:
                    lines.append(f"{out} = {target}")
                    self.bindings.add(lines[-1])
                    self.written.add(out)
        for st in block.stores:
            if self.store_slot(st, loop) not in filled:
                lines.append(f"{self.store_slot(st, loop)} = {self.print(printer, st.value)}")
        return lines

    # -- variable lengths (see the module docstring) ---------------------------------
    def carry_lines(self) -> list[str]:
        lines = "\n".join(super().carry_lines())
        for s in self.cell.states:  # a zero adjoint, for the active rows
            size = self.size_var(s.size)
            lines = lines.replace(self.dx.zeros(f"B, {size}"), self.dx.zeros(f"rows, {size}"))
        return lines.split("\n")

    def forward_allocs(self) -> list[str]:
        return [_alloc(line) for line in super().forward_allocs()]

    def forward_cache_allocs(self) -> list[str]:
        return [_alloc(line) for line in super().forward_cache_allocs()]

    def backward_allocs(self) -> list[str]:
        return [_alloc(line) for line in super().backward_allocs()]

    def _size_groups(self, block) -> dict[str, list[tuple[str, sympy.Expr]]]:
        local: dict[str, str] = {}
        groups: dict[str, list[tuple[str, sympy.Expr]]] = {}
        for sym, e in block.assigns:
            size = self.size_of(sym.name, local)
            if size is None or sym.name.startswith("_e"):
                sizes = [self.size_of(f.name, local) for f in sorted(e.free_symbols, key=str)]
                size = next((s for s in sizes if s), size)
            local[sym.name] = size
            groups.setdefault(size, []).append((sym.name, e))
        return groups


def _external_symbols(plan: Plan) -> set[str]:
    """Symbols read somewhere other than the expressions of their own block."""
    seen: dict[str, set[int]] = {}
    for k, op in enumerate([*plan.loop_forward, *plan.loop_backward]):
        if isinstance(op, BlockOp):
            for _, e in op.block.assigns:
                for f in e.free_symbols:
                    seen.setdefault(f.name, set()).add(k)
            for st in op.block.stores:
                seen.setdefault(st.value.name, set()).add(-1)
    defined_in: dict[str, int] = {}
    for k, op in enumerate([*plan.loop_forward, *plan.loop_backward]):
        if isinstance(op, BlockOp):
            for sym, _ in op.block.assigns:
                defined_in[sym.name] = k
    external = {n for n, where in seen.items() if where - {defined_in.get(n)}}
    external |= {str(f) for e in plan.carries.values() for f in e.free_symbols}
    external |= {g.operand for g in plan.gemms}
    # a layer norm runs between kernels: its operand (`layernorm(ln_c + h)`) and, backward,
    # its output's adjoint must leave the kernel that computes them
    external |= {op.node.operand for op in plan.row_ops}
    external |= {str(f) for op in plan.loop_backward
                 if isinstance(op, RowOp) and op.adjoint is not None
                 for f in op.adjoint.free_symbols}
    external |= set(plan.cell.updates.values()) | {plan.cell.output} | set(plan.saved_loop)
    return external


# a step's index into a (T, B, ...) array: [t], [t + 1], [save_t], or [t, :, columns]
_STEP_INDEX = re.compile(r"\[(t|t \+ 1|save_t)(\]|, :, )")
# a load of one step's value: `name = array[index]`
_LOAD = re.compile(r"(\w+) = \w+\[(t|t \+ 1|save_t)(, :, [^\]]*)?\]$")


def active_rows(line: str) -> str:
    """A loop line with every per-step array cut to the step's active rows."""
    return _STEP_INDEX.sub(lambda m: f"[{m[1]}, :rows{']' if m[2] == ']' else ', '}", line)


def cut_to_active_rows(body: list[str]) -> list[str]:
    """A loop body with its per-step arrays cut to the step's active rows, except where only
    kernels read them: a launch is given the row count and touches those rows alone, and
    each cut is a view made per array and step (host time, even at full length)."""
    read_elsewhere = set(re.findall(r"\w+", "\n".join(
        re.sub(r"#.*", "", line.split(" = ", 1)[-1]) for line in body
        if not line.startswith("_launch("))))
    kept = []
    for line in body:
        load = _LOAD.match(line)
        if line.startswith("_launch(") or (load and load[1] not in read_elsewhere):
            kept.append(line)
        else:
            kept.append(active_rows(line))
    return kept


def _alloc(line: str) -> str:
    """A buffer made by the driver's `alloc`: torch.zeros for variable lengths, else empty."""
    return line.replace("torch.empty(", "alloc(")
