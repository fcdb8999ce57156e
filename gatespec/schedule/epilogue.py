"""GEMM epilogue fusion: start a step's product from the input-only sums.

When every output m_k of a per-step GEMM is read only as part of `m_k + s_k`,
and the s_k are the input-only sums accumulated, in the same order and sizes,
into the slices of one hoisted product, then the step can compute
`mm_h = mm_x[t] + h @ W^T` as one fused multiply-add (torch.addmm, cuBLAS's beta=1)
instead of a product and one addition per gate. Only the printed forward changes:
the backward pass reads neither m_k nor s_k.
"""

from __future__ import annotations

import sympy

from gatespec import ir
from gatespec.schedule.plan import STATIC, BlockOp, GemmOp, Plan


def fuse_epilogues(plan: Plan, saved: set[str]) -> None:
    inplace: dict[str, tuple[str, str]] = {}  # s_k -> (product slice m_kx, its static GEMM key)
    gemm_of_output = {out: g for g in plan.gemms for out in g.outputs}
    for op in plan.static_forward:
        if isinstance(op, BlockOp):
            for target, base in op.block.inplace.items():
                inplace[target.name] = (base.name, gemm_of_output[base.name].key)
    blocks = [op.block for op in plan.loop_forward if isinstance(op, BlockOp)]
    readers = _readers(blocks)  # one pass, not one per product
    statics = {g.key: g for g in plan.gemms if g.context == STATIC}
    for op in plan.loop_forward:
        if not isinstance(op, GemmOp) or op.gemm.context == STATIC:
            continue
        g = op.gemm
        pairs = [_partner(m, readers, inplace) for m in g.outputs]
        if not all(pairs) or len({key for _, _, key in pairs}) != 1:
            continue
        addend = statics[pairs[0][2]]
        aligned = [addend.outputs.index(base) for _, base, _ in pairs] == list(range(len(pairs)))
        if not aligned or addend.out_sizes != g.out_sizes:
            continue
        if saved & {*g.outputs, *(s for s, _, _ in pairs)}:
            continue
        op.addend = addend
        zero = {ir.symbol(s): sympy.Integer(0) for s, _, _ in pairs}
        for block in blocks:
            block.assigns = [(sym, e.xreplace(zero)) for sym, e in block.assigns]
        readers = _readers(blocks)


def _readers(blocks) -> dict[sympy.Symbol, list[sympy.Expr]]:
    """symbol -> the expressions of the blocks that read it"""
    readers: dict[sympy.Symbol, list[sympy.Expr]] = {}
    for block in blocks:
        for _, e in block.assigns:
            for s in e.free_symbols:
                readers.setdefault(s, []).append(e)
    return readers


def _partner(m: str, readers, inplace) -> tuple[str, str, str] | None:
    """The input-only sum s_k added to m_k in its only reader, if there is exactly one."""
    mine = readers.get(ir.symbol(m), [])
    if len(mine) != 1:
        return None
    for add in mine[0].atoms(sympy.Add):
        if ir.symbol(m) in add.args:
            for term in add.args:
                if isinstance(term, sympy.Symbol) and term.name in inplace:
                    if len(readers.get(term, [])) == 1:
                        return (term.name, *inplace[term.name])
    return None
