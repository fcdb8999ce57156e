"""Plan → the printed lines of a Python module (NumPy or PyTorch).

The template arranges these lines; the maths is printed here, through a dialect
that knows how its array library spells allocation, concatenation and sums.
"""

from __future__ import annotations

import re

import sympy

from gatespec import ir
from gatespec.emit.dialects import Dialect
from gatespec.emit.printer import CodePrinter
from gatespec.errors import EmitError
from gatespec.schedule import STATIC, BlockOp, Gemm, GemmOp, Plan, RowOp


class ModuleLines:
    """Builds every printed line of the module for one plan."""

    # how a packed x's parts are taken (_packed_size_lines): views, which array libraries
    # read at any strides; kernels that index rows by a fixed stride get copies
    split_copy = ""

    def __init__(self, plan: Plan, dialect: Dialect, rows: bool = False):
        self.plan = plan
        # rows: each step computes only its active rows [:bt] of a batch sorted by decreasing
        # length; the rest carry their states (variable-length batches)
        self.rows = rows
        self.dx = dialect
        self.cell = plan.cell
        self.used_helpers: set[str] = set()
        self.written: set[str] = set()  # values printed straight into their slot
        # parameters, and values computed from parameters alone: (n,) vectors, not (B, n)
        self.unbatched = set(self.cell.params)
        for n in plan.derived.nodes:
            if isinstance(n, ir.Pointwise) and all(f.name in self.unbatched
                                                   for f in n.expr.free_symbols):
                self.unbatched.add(n.name)
        self.bindings: set[str] = set()  # `name = slot` lines, dropped where name is unused
        self._offsets: dict[str, list[str]] = {}

    # -- naming ----------------------------------------------------------------------
    def size_var(self, size: str) -> str:
        return f"size_{size}"

    def at(self, index: str) -> str:
        """The subscript of one step's rows in a (T, B, ...) array: all, or the active ones."""
        return f"{index}, :bt" if self.rows else index

    def printer(self, loop: bool, backward: bool = False) -> CodePrinter:
        # the input is the argument `x` whatever the cell calls it (`input u`)
        names: dict[str, str] = {self.cell.input.name: "x"}
        if loop:
            names[self.cell.input.name] = f"x[{self.at('t')}]"
            for n in self.plan.derived.static:
                if n != self.cell.input.name:
                    names[n] = f"{n}[{self.at('t')}]"
            if backward:
                names["d_out"] = f"d_outputs[{self.at('t')}]"
        return CodePrinter(self.dx.functions, names)

    def print(self, printer: CodePrinter, e: sympy.Expr) -> str:
        text = printer.expr(e)
        self.used_helpers |= printer.used
        return text

    def offsets(self, gemm: Gemm) -> list[str]:
        """Column ranges of each weight's rows in a stacked product (computed once per
        GEMM: every store into it asks)."""
        spans = self._offsets.get(gemm.grad_buffer)
        if spans is None:
            spans, start = [], sympy.Integer(0)
            for size in gemm.out_sizes:
                end = start + ir.symbol(self.size_var(size))
                spans.append(f"{_plain(start)}:{_plain(end)}")
                start = end
            self._offsets[gemm.grad_buffer] = spans
        return spans

    def history(self, name: str) -> str:
        """Every step's value of a node, as one (T, B, n) array."""
        kind = self.plan.kind_of(name)
        if kind == "state_prev":
            return f"{self.state_label(name)}_all[:-1]"
        if kind == "state_new":
            return f"{self.state_label(name)}_all[1:]"
        if kind == "loop":
            return f"{name}_all"
        if kind == "input":
            return "x" if name == self.cell.input.name else name
        return name

    def param_load(self, p: ir.Param) -> str:
        if p.role == "view":  # made from its weight before the loop (weight=W or W.T)
            return f'{p.name} = params["{p.source}"]' + (".T" if p.transpose else "")
        if p.role == "scalar" and self.dx.name == "numpy":
            # a view over the units: NumPy's ufuncs turn a 0-d array into a NumPy scalar,
            # which the helpers' out= arguments cannot take (sigmoid(scalar()))
            return (f'{p.name} = np.broadcast_to(params["{p.name}"], '
                    f"({self.size_var(p.units)},))")
        return f'{p.name} = params["{p.name}"]'

    def state_label(self, name: str) -> str:
        for s in self.cell.states:
            if name in (s.name, self.cell.updates[s.label]):
                return s.label
        raise EmitError(f"{name} is not a state value")

    # -- sections --------------------------------------------------------------------
    def size_lines(self, backward: bool = False) -> list[str]:
        """Sizes read off the arguments, so the module works for any sizes. The backward
        pass has x only when it is cached; else it reads the input's size off a parameter."""
        if self.cell.packed:
            return self._packed_size_lines(backward)
        lines = []
        for size in self.cell.sizes:
            if size == self.cell.input.size and (not backward or self.caches_x()):
                lines.append(f"{self.size_var(size)} = x.shape[-1]")
                continue
            for p in self.cell.trained_params.values():  # a view is not in params
                if size in p.shape:
                    lines.append(f'{self.size_var(size)} = params["{p.name}"].shape'
                                 f"[{p.shape.index(size)}]")
                    break
            else:
                raise EmitError(f"size {size} cannot be read off any parameter")
        return lines

    def _packed_size_lines(self, backward: bool) -> list[str]:
        """A cell with further inputs runs on one packed x, every input sequence side by side
        on the last axis in declaration order (the fused op, the kernels and the cache see
        one input): sizes come off the parameters, the main input's off the rest of x's
        width, then each input is a view of x. (Build has checked that every further
        input's size is the main input's or a parameter's.)"""
        fixed = {s for p in self.cell.params.values() for s in p.shape}
        lines = []
        for size in self.cell.sizes:
            p = next((p for p in self.cell.params.values() if size in p.shape), None)
            if p is not None:
                lines.append(f'{self.size_var(size)} = params["{p.name}"]'
                             f".shape[{p.shape.index(size)}]")
        main = self.cell.input.size
        if backward and not self.caches_x():
            return lines
        if main not in fixed:
            same = sum(leaf.size == main for leaf in self.cell.inputs)
            rest = "".join(f" - {self.size_var(leaf.size)}" for leaf in self.cell.inputs
                           if leaf.size != main)
            width = f"(x.shape[-1]{rest})" if rest else "x.shape[-1]"
            lines.append(f"{self.size_var(main)} = {width}" + (f" // {same}" if same > 1 else ""))
        start = sympy.Integer(0)
        spans = []
        for leaf in self.cell.inputs:
            end = start + ir.symbol(self.size_var(leaf.size))
            spans.append((leaf, f"{_plain(start)}:{_plain(end)}"))
            start = end
        lines.append("_packed = x")  # what the cache keeps as "x"
        for leaf, cols in spans[1:]:
            lines.append(f"{leaf.name} = x[..., {cols}]{self.split_copy}")
        lines.append(f"x = x[..., {spans[0][1]}]{self.split_copy}")
        return lines

    def caches_x(self) -> bool:
        """Whether the cache keeps x: the backward reads it, or only it gives its size (as a
        reference, no copy). A packed x (see _packed_size_lines) holds every input."""
        if self.cell.packed:
            return (any(leaf.name in self.plan.saved_static for leaf in self.cell.inputs)
                    or self.cell.input.size not in {s for p in self.cell.params.values()
                                                    for s in p.shape})
        return (self.cell.input.name in self.plan.saved_static
                or not any(self.cell.input.size in p.shape for p in self.cell.params.values()))

    def packed_input_grad(self, grads: list[str]) -> str:
        """The gradient of a packed x: each input's, side by side."""
        return self.dx.concat_last(grads)

    def stack_lines(self, backward: bool = False) -> list[str]:
        lines = []
        for g in self.plan.gemms:
            if g.stacked:
                lines.append(f"{g.weight} = {self.dx.concat(g.weights)}")
        return lines

    def gemm_forward(self, g: Gemm, addend: Gemm | None = None) -> list[str]:
        if g.context == STATIC:
            operand = g.operand if g.operand != self.cell.input.name else "x"
            lines = [f"{g.product} = {self.dx.matmul_all(operand, g.weight + '.T')}"]
        elif addend is not None:
            operand = self.print(self.printer(True), ir.symbol(g.operand))
            product = self.dx.addmm(f"{addend.product}[{self.at('t')}]", operand, f"{g.weight}.T")
            lines = [f"{g.product} = {product}  # the input-only sums, plus this product"]
        else:
            operand = self.print(self.printer(True), ir.symbol(g.operand))
            lines = [f"{g.product} = {operand} @ {g.weight}.T"]
        if g.stacked:
            for out, cols in zip(g.outputs, self.offsets(g), strict=True):
                lines.append(f"{out} = {g.product}[..., {cols}]")
        return lines

    def gemm_backward(self, g: Gemm) -> list[str]:
        if g.context == STATIC:
            return [f"{g.operand_grad} = {self.dx.matmul_all(g.grad_buffer, g.weight)}"]
        return [f"{g.operand_grad} = {g.grad_buffer}[{self.at('t')}] @ {g.weight}"]

    def store_slot(self, st, loop: bool) -> str:
        index = self.at("t") if loop else "..."
        if st.gemm is not None and st.gemm.stacked:
            cols = self.offsets(st.gemm)[st.index]
            index = f"t, :{'bt' if self.rows else ''}, {cols}" if loop else f"..., {cols}"
        return f"{st.buffer}[{index}]"

    def out_form(self, printer: CodePrinter, e: sympy.Expr, slot: str) -> str | None:
        """`e` computed straight into `slot` (no temporary, no copy), if its root allows."""
        if all(f.name in self.unbatched for f in e.free_symbols):
            return None  # an (n,) result: torch's out= would not broadcast it to (B, n)
        if isinstance(e, sympy.Add | sympy.Mul):
            args = sorted(e.args, key=lambda a: a.is_Number)  # a constant goes second
            fn = self.dx.add_fn if isinstance(e, sympy.Add) else self.dx.mul_fn
            first, rest = args[0], e.func(*args[1:])
            return (f"{fn}({self.print(printer, first)}, {self.print(printer, rest)}, "
                    f"out={slot})")
        if type(e) in self.dx.out_functions:
            text = self.print(printer, e)
            return f"{text[:-1]}, out={slot})"
        return None

    def block_lines(self, block, loop: bool, backward: bool,
                    slots: dict[str, str] | None = None) -> list[str]:
        """A fused block. Values with a slot (a state history entry, a saved value, a
        gradient buffer) are computed straight into it where the expression allows."""
        printer = self.printer(loop, backward)
        if not block.assigns and not block.stores:
            return []
        slots = dict(slots or {})
        pending = []
        for st in block.stores:
            if st.value.name in slots or not loop:
                pending.append(st)
            else:
                slots[st.value.name] = self.store_slot(st, loop)
        lines = [f"# fused pointwise block: {block.ops} operations"] if block.assigns else []
        into_slot = set()  # values this block computed straight into their store's slot
        for sym, e in block.assigns:
            base = block.inplace.get(sym)
            slot = slots.get(sym.name)
            direct = self.out_form(printer, e, slot) if slot else None
            if base is not None:  # accumulate into the product: it has no other reader
                lines.append(f"{sym.name} = {base.name}")
                lines.append(f"{sym.name} += {self.print(printer, e - base)}")
            elif direct is not None:
                lines.append(direct)
                lines.append(f"{sym.name} = {slot}")
                self.bindings.add(lines[-1])
                self.written.add(sym.name)
                into_slot.add(sym.name)
            else:
                lines.append(f"{sym.name} = {self.print(printer, e)}")
                if slot is not None and slot not in self.forward_slot_values():
                    lines.append(f"{slot} = {sym.name}")
                    self.written.add(sym.name)
                    into_slot.add(sym.name)
        for st in block.stores:
            # a value computed in an earlier block is stored here all the same
            if st in pending or st.value.name not in into_slot:
                lines.append(f"{self.store_slot(st, loop)} = {self.print(printer, st.value)}")
        return lines

    def forward_slot_values(self) -> set[str]:
        """Slots the forward pass fills after its blocks when a value was not computed in place."""
        return set(self.forward_slots().values())

    def forward_slots(self) -> dict[str, str]:
        slots = {self.cell.updates[s.label]: f"{s.label}_all[{self.at('t + 1')}]"
                 for s in self.cell.states}
        if self.plan.kind_of(self.cell.output) != "state_new":
            slots.setdefault(self.cell.output, f"outputs[{self.at('t')}]")
        for n in self.plan.saved_loop:
            slots.setdefault(n, f"{n}_all[{self.at('save_t')}]")
        return slots

    def ops_lines(self, ops, loop: bool, backward: bool) -> list[str]:
        lines: list[str] = []
        for op in ops:
            if isinstance(op, GemmOp):
                g = op.gemm
                label = self.plan.derived.node(g.operand).label
                what = "adjoint of " if op.backward else ""
                lines.append(f"# GEMM: {what}{', '.join(g.weights)} times {label}")
                lines += self.gemm_backward(g) if op.backward else self.gemm_forward(g, op.addend)
            elif isinstance(op, RowOp):
                lines += self.row_lines(op, loop)
            else:
                slots = self.forward_slots() if loop and not backward else None
                lines += self.block_lines(op.block, loop, backward, slots)
        return lines

    def row_lines(self, op: RowOp, loop: bool) -> list[str]:
        row = op.node
        printer = self.printer(loop, op.backward)
        helper = f"_{row.kind}"
        self.used_helpers |= {helper, f"{helper}_backward"} if op.backward else {helper}
        saves = [name for name, _ in op.saves]
        if op.backward:
            d = self.print(printer, op.adjoint)
            gain = [row.gain] if row.gain else []
            return [f"# {row.spec.title} of {row.operand}: the adjoint of its input",
                    f"{op.operand_grad} = {helper}_backward({', '.join([d, *saves, *gain])})"]
        operand = self.print(printer, ir.symbol(row.operand))
        lines = [f"# {row.spec.title} of {row.operand} over its units",
                 f"{', '.join([row.name, *saves])} = {helper}({self.row_args(row, operand)})"]
        if loop:
            lines += [f"{name}_all[{self.at('save_t')}] = {name}" for name in saves]
        return lines

    @staticmethod
    def row_args(row: ir.Row, operand: str) -> str:
        """The forward helper's arguments: the operand, and a normalisation's gain and bias."""
        return f"{operand}, {row.gain}, {row.bias or 0}" if row.gain else operand

    def loop_row_ops(self) -> list[RowOp]:
        return [op for op in self.plan.row_ops if op.context != STATIC]

    def forward_saves(self) -> list[str]:
        """Copies into the forward slots of the values that were not computed in place
        (call after printing the loop blocks)."""
        slots = self.forward_slots()
        lines = [f"{slot} = {name}" for name, slot in slots.items() if name not in self.written]
        if (self.cell.output in self.plan.saved_loop
                and slots[self.cell.output] == f"outputs[{self.at('t')}]"):
            lines.append(f"{self.cell.output}_all[{self.at('save_t')}] = {self.cell.output}")
        return lines

    def backward_loads(self) -> list[str]:
        lines = []
        for s in self.cell.states:
            if s.label in self.plan.saved_states:
                lines.append(f"{s.name} = {s.label}_all[{self.at('t')}]")
                lines.append(f"{self.cell.updates[s.label]} = {s.label}_all[{self.at('t + 1')}]")
        lines += [f"{n} = {n}_all[{self.at('t')}]" for n in self.plan.saved_loop]
        lines = _only_used(lines, self.plan)
        for op in self.loop_row_ops():
            lines += [f"{name} = {name}_all[{self.at('t')}]" for name, _ in op.saves]
        return lines

    def carry_lines(self) -> list[str]:
        targets, values = [], []
        for s in self.cell.states:
            e = self.plan.carries[s.label]
            targets.append(f"d_{s.label}_next")
            rows = "bt" if self.rows else "B"
            values.append(self.dx.zeros(f"{rows}, {self.size_var(s.size)}") if e == 0
                          else self.print(self.printer(True, True), e))
        # a state that copies another (`h' = c`) carries that one's adjoint of this step:
        # all carries are assigned at once when one reads another's
        read = {t for t in targets if any(re.search(rf"\b{t}\b", v) for v in values)}
        if len(targets) > 1 and read:
            return [f"{', '.join(targets)} = {', '.join(values)}"]
        return [f"{t} = {v}" for t, v in zip(targets, values, strict=True)]

    # The carried-state rule s' = m * new + (1 - m) * s for a batch sorted by decreasing
    # length: at step t the rows [:bt] are active (m = 1) and computed, the rest (m = 0)
    # keep their state; its adjoint passes their state adjoints through the step unchanged.
    def carry_forward_lines(self) -> list[str]:
        """The inactive rows' states, carried into this step's slots."""
        return [f"{s.label}_all[t + 1, bt:] = {s.label}_all[t, bt:]" for s in self.cell.states]

    def zero_saved_lines(self) -> list[str]:
        """Zeros in the inactive rows of this step's saved values: the backward pass
        multiplies them by zero adjoints after its loop, and they must not be garbage."""
        saved = [f"{n}_all" for n in self.plan.saved_loop]
        for op in self.loop_row_ops():
            saved += [f"{name}_all" for name, _ in op.saves]
        return [f"{name}[t, bt:] = 0" for name in saved]

    def carry_split_lines(self, allocs: list[str]) -> list[str]:
        """Before a backward step: the inactive rows' state adjoints, set aside, and zeros
        in their rows of the gradient buffers among `allocs` (read after the loop)."""
        empty = self.dx.empty("").split("(")[0] + "("
        lines = [f"{a.split(' = ')[0]}[t, bt:] = 0" for a in allocs
                 if a.split(" = ", 1)[1].startswith(empty)]
        for s in self.cell.states:
            lines += [f"_carry_{s.label} = d_{s.label}_next[bt:]",
                      f"d_{s.label}_next = d_{s.label}_next[:bt]"]
        return lines

    def carry_join_lines(self) -> list[str]:
        """After a backward step: the set-aside adjoints, below the active rows' new ones."""
        return [f"d_{s.label}_next = {self.dx.concat([f'd_{s.label}_next', f'_carry_{s.label}'])}"
                for s in self.cell.states]

    def weight_grad_lines(self) -> list[str]:
        lines = []
        for g in self.plan.gemms:
            if g.stacked:
                lines.append(f"d_{g.weight} = _outer({g.grad_buffer}, {self.history(g.operand)})")
                for w, cols in zip(g.weights, self.offsets(g), strict=True):
                    lines.append(f'd_params["{w}"] = d_{g.weight}[{cols}]')
            else:
                lines.append(f'd_params["{g.weight}"] = _outer({g.grad_buffer}, '
                             f"{self.history(g.operand)})")
        printer = self.printer(False, True)
        for op in self.plan.row_ops:
            ln = op.node
            if not ln.gain:
                continue
            if op.adjoint is None:
                for p in filter(None, (ln.gain, ln.bias)):
                    lines.append(f'd_params["{p}"] = {self.dx.zeros_like(f"params[{p!r}]")}')
                continue
            if op.context == STATIC:
                d, xhat = self.print(printer, op.adjoint), f"{ln.name}_xhat"
            else:
                d, xhat = f"d_{ln.name}_all", f"{ln.name}_xhat_all"
            lines.append(f'd_params["{ln.gain}"] = {self.dx.sum01(f"({d} * {xhat})")}')
            if ln.bias:
                lines.append(f'd_params["{ln.bias}"] = {self.dx.sum01(d)}')
        for p, parts in self.plan.param_grads.items():
            sums = [self.dx.sum01(self.print(printer, part)) for part in parts]
            sums += [self.dx.sum01(f"({self.kept_adjoint(k)} * {self.history(v)})")
                     for k, v in self.plan.param_products.get(p, [])]
            total = " + ".join(sums) if sums else self.dx.zeros_like(f'params["{p}"]')
            if sums and self.cell.params[p].role == "scalar":  # broadcast over the units too
                total = f"({total}).sum()"
            lines.append(f'd_params["{p}"] = {total}')
        return lines

    def kept_adjoint(self, name: str) -> str:
        """Every step's adjoint of a node whose adjoint the loop keeps: a GEMM gradient
        buffer's slice, or the buffer of an input-only value."""
        for g in self.plan.gemms:
            if name in g.outputs and g.context != STATIC:
                if not g.stacked:
                    return g.grad_buffer
                return f"{g.grad_buffer}[..., {self.offsets(g)[g.outputs.index(name)]}]"
        return f"d_{name}_all"

    def size_of_node(self, name: str) -> str:
        return self.size_var(self.plan.derived.node(name).size)

    def forward_allocs(self) -> list[str]:
        lines = [f"{s.label}_all = {self.dx.empty(f'T + 1, B, {self.size_var(s.size)}')}"
                 for s in self.cell.states]
        if self.plan.kind_of(self.cell.output) != "state_new":
            size = self.size_of_node(self.cell.output)
            lines.append(f"outputs = {self.dx.empty(f'T, B, {size}')}")
        return lines

    def forward_cache_allocs(self) -> list[str]:
        # without keep_cache, one step's worth: values are still computed into them
        lines = [f"{n}_all = {self.dx.empty(f'T if keep_cache else 1, B, {self.size_of_node(n)}')}"
                 for n in self.plan.saved_loop]
        for op in self.loop_row_ops():
            for name, wide in op.saves:
                width = self.size_var(op.node.size) if wide else "1"
                lines.append(f"{name}_all = {self.dx.empty(f'T if keep_cache else 1, B, {width}')}")
        return lines

    def outputs_expr(self) -> str:
        out = self.cell.output
        if self.plan.kind_of(out) == "state_new":
            return f"{self.state_label(out)}_all[1:]"
        return "outputs"

    def cache_entries(self) -> list[tuple[str, str]]:
        inputs = {leaf.name for leaf in self.cell.inputs}
        entries = [(s, s) for s in self.plan.saved_static if s not in inputs]
        if self.caches_x():
            entries.insert(0, ("x", "_packed" if self.cell.packed else "x"))
        entries += [(f"{s}_all", f"{s}_all") for s in self.plan.saved_states]
        entries += [(f"{n}_all", f"{n}_all") for n in self.plan.saved_loop]
        for op in self.plan.row_ops:
            tail = "_all" if op.context != STATIC else ""
            entries += [(f"{name}{tail}",) * 2 for name, _ in op.saves]
        return entries

    def cache_shapes(self) -> list[tuple[str, str]]:
        """(key, shape) of each cache entry, as cache_entries() lists them, in source text of
        T, B and the size variables: what a custom op's fake forward allocates. Static values
        and loop values hold all T steps, state histories T + 1 (no static node is computed
        from parameters alone, so each has the (T, B, width) of the input)."""
        steps, shapes = "T, B", []
        if self.caches_x():
            width = " + ".join(self.size_var(leaf.size) for leaf in self.cell.inputs)
            shapes.append(("x", f"{steps}, {width}"))
        inputs = {leaf.name for leaf in self.cell.inputs}
        shapes += [(s, f"{steps}, {self.size_of_node(s)}") for s in self.plan.saved_static
                   if s not in inputs]
        sizes = {s.label: s.size for s in self.cell.states}
        shapes += [(f"{s}_all", f"T + 1, B, {self.size_var(sizes[s])}")
                   for s in self.plan.saved_states]
        shapes += [(f"{n}_all", f"{steps}, {self.size_of_node(n)}") for n in self.plan.saved_loop]
        for op in self.plan.row_ops:
            tail = "_all" if op.context != STATIC else ""
            shapes += [(f"{name}{tail}", f"{steps}, {self.size_var(op.node.size) if wide else 1}")
                       for name, wide in op.saves]
        if [k for k, _ in shapes] != [k for k, _ in self.cache_entries()]:
            raise EmitError("cache_shapes() and cache_entries() list different entries")
        return shapes

    def backward_allocs(self) -> list[str]:
        lines = []
        gemm_of = {g.grad_buffer: g for g in self.plan.gemms}
        buffers = [(g.grad_buffer, f"{g.weight}.shape[0]") for g in self.plan.gemms]
        buffers += [(name, self.size_var(size)) for name, size in self.plan.loop_buffers]
        buffers.sort(key=lambda b: b[0] in self.plan.views)  # views after their bases
        for name, width in buffers:
            view = self.plan.views.get(name)
            if view is None:
                lines.append(f"{name} = {self.dx.empty(f'T, B, {width}')}")
            elif view[1] is None:
                lines.append(f"{name} = {view[0]}  # the same adjoints")
            else:
                cols = self.offsets(gemm_of[view[0]])[view[1]]
                lines.append(f"{name} = {view[0]}[..., {cols}]  # a view: no copy")
        return lines

    def reference_lines(self) -> list[str]:
        """One time step straight from the cell IR (before any scheduling), for autograd."""
        printer = CodePrinter(self.dx.functions, {leaf.name: f"{leaf.name}[t]"
                                                  for leaf in self.cell.inputs[1:]}
                              | {self.cell.input.name: "x[t]"})
        lines = []
        for node in self.cell.nodes:
            if isinstance(node, ir.MatMul):
                operand = self.print(printer, ir.symbol(node.operand))
                lines.append(f"{node.name} = {operand} @ {node.weight}.T")
            elif isinstance(node, ir.Pointwise):
                lines.append(f"{node.name} = {self.print(printer, node.expr)}")
            elif isinstance(node, ir.Row):
                self.used_helpers.add(f"_{node.kind}")
                operand = self.print(printer, ir.symbol(node.operand))
                lines.append(f"{node.name} = _{node.kind}({self.row_args(node, operand)})[0]")
        return lines

    def helpers(self) -> list[str]:
        names = set(self.used_helpers)
        for h in list(names):
            names.update(self.dx.helper_needs.get(h, []))
        return [self.dx.helpers[h] for h in sorted(names)]


def _plain(e: sympy.Expr) -> str:
    return str(e).replace("*", " * ") if e != 0 else "0"


_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    """The identifiers (and numbers) of some code: a name is read there when it is one."""
    return set(_WORD.findall(text))


def drop_unused_bindings(lines: list[str], bindings: set[str], after: list[str]) -> list[str]:
    """Remove `name = slot` bindings whose name no later line reads."""
    later = _words("\n".join(after))  # grows backwards: one pass, not one per binding
    kept = []
    for line in reversed(lines):
        if line.strip() not in bindings or line.split(" = ")[0].strip() in later:
            kept.append(line)
        later |= _words(line)
    return kept[::-1]


def prune_assignments(lines: list[str], body: list[str]) -> list[str]:
    """Keep the `name = ...` lines whose name the body (or a later kept line) reads."""
    def code(text: str) -> str:  # without string literals and comments
        return re.sub(r'"[^"]*"|#.*', "", text)

    read = _words(code("\n".join(body)))
    kept: list[str] = []
    for line in reversed(lines):
        if line.split(" = ")[0].strip() in read:
            kept.append(line)
            read |= _words(code(line))
    return kept[::-1]


def _only_used(lines: list[str], plan: Plan) -> list[str]:
    """Drop loads of values that no backward block reads."""
    used: set[str] = set()
    for op in plan.loop_backward:
        if isinstance(op, BlockOp):
            for _, e in op.block.assigns:
                used |= {s.name for s in e.free_symbols}
    return [ln for ln in lines if ln.split(" = ")[0] in used]
