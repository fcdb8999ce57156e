"""The execution plan: what the emitters print, target by target."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from gatespec import ir
from gatespec.derive import Derived

STATIC, LOOP = "static", "loop"


@dataclass
class Gemm:
    """Products of several weights with one operand, computed as one matrix product."""

    key: str
    context: str
    level: int
    operand: str
    operand_size: str
    weights: list[str]
    outputs: list[str]  # MatMul node names, in weight order
    out_sizes: list[str]

    @property
    def stacked(self) -> bool:
        return len(self.weights) > 1

    @property
    def weight(self) -> str:
        return f"W_stack_{self.key}" if self.stacked else self.weights[0]

    @property
    def product(self) -> str:
        return f"mm_{self.key}" if self.stacked else self.outputs[0]

    @property
    def grad_buffer(self) -> str:
        return f"d_mm_{self.key}"

    @property
    def operand_grad(self) -> str:
        return f"d_{self.operand}_gemm"


@dataclass
class Store:
    """After a block: buffer[t] (loop) or buffer (static) = value, or one GEMM slice of it."""

    buffer: str
    value: sympy.Symbol
    gemm: Gemm | None = None
    index: int = 0


@dataclass
class Block:
    assigns: list[tuple[sympy.Symbol, sympy.Expr]]
    stores: list[Store] = field(default_factory=list)
    # target -> a product it may overwrite (the product's only reader is this sum)
    inplace: dict[sympy.Symbol, sympy.Symbol] = field(default_factory=dict)

    @property
    def ops(self) -> int:
        return sum(sympy.count_ops(e) for _, e in self.assigns)


@dataclass
class GemmOp:
    gemm: Gemm
    backward: bool = False
    addend: Gemm | None = None  # a hoisted product whose step t this GEMM starts from


@dataclass
class BlockOp:
    block: Block


@dataclass
class RowOp:
    """A row reduction of one node (ir.ROW_KINDS): forward saves what its kind keeps
    (`{name}_xhat`, ...); backward turns the node's adjoint into its operand's
    (`d_{name}_operand`)."""

    node: ir.Row
    context: str
    level: int
    backward: bool = False
    adjoint: sympy.Expr | None = None  # backward: the node's adjoint, after copy propagation

    @property
    def operand_grad(self) -> str:
        return f"d_{self.node.name}_operand"

    @property
    def saves(self) -> list[tuple[str, bool]]:
        """(array name, per-unit?) of each value the forward keeps: `ln_c_xhat`, ..."""
        return [(f"{self.node.name}_{k}", wide) for k, wide in self.node.spec.saves]


Op = GemmOp | BlockOp | RowOp


@dataclass
class Plan:
    derived: Derived
    gemms: list[Gemm]
    static_forward: list[Op]
    loop_forward: list[Op]
    loop_backward: list[Op]
    static_backward: list[Op]
    saved_loop: list[str]  # loop node values stored per step for the backward pass
    saved_static: list[str]  # static node values (and the input) kept for the backward pass
    saved_states: list[str]  # states whose history (T + 1 values) the backward pass reads
    loop_buffers: list[tuple[str, str]]  # per-step adjoint buffers: (name, size name)
    param_grads: dict[str, list[sympy.Expr]]  # bias/diagonal parameter -> arrays whose sums add up
    # per-unit parameter -> [(node whose per-step adjoint is kept, saved value)]: its gradient
    # is the sum over time and batch of their products, formed after the loop
    param_products: dict[str, list[tuple[str, str]]]
    carries: dict[str, sympy.Expr]  # state label -> its previous value's adjoint (or 0)
    input_grad: sympy.Expr  # adjoint of the input sequence, in the static context
    # adjoints of the further input sequences (cell.extra_inputs), in the static context
    extra_input_grads: list[sympy.Expr] = field(default_factory=list)
    views: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # see alias.py
    row_ops: list[RowOp] = field(default_factory=list)  # forward ops, both contexts

    @property
    def cell(self) -> ir.Cell:
        return self.derived.cell

    def kind_of(self, name: str) -> str:
        """How a symbol is stored: input, state_prev, state_new, static, loop, param."""
        return self._kinds.get(name, "local")

    def __post_init__(self) -> None:
        d = self.derived
        kinds: dict[str, str] = {leaf.name: "input" for leaf in d.cell.inputs}
        for s in d.cell.states:
            kinds[s.name] = "state_prev"
        for new in d.cell.updates.values():
            kinds[new] = "state_new"
        for n in d.nodes:
            if n.name not in kinds:
                kinds[n.name] = "static" if n.name in d.static else "loop"
        for p in d.cell.params:
            kinds[p] = "param"
        self._kinds = kinds


