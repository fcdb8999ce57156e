"""Clean-ups on a plan that change no value: copy propagation and buffer views.

- An adjoint that is just another symbol (`d_m_ih = _e7`) is not assigned; its
  readers use the other symbol.
- A per-step buffer that would receive the same values as one slice of a GEMM's
  gradient buffer becomes a view of that slice instead of a copy; and a GEMM
  gradient buffer whose every slice is such a view (the input GEMM of an LSTM,
  whose adjoints equal the recurrent GEMM's) becomes that other buffer.
"""

from __future__ import annotations

import sympy

from gatespec.schedule.plan import BlockOp, Op, Plan, Store


def propagate_copies(ops: list[Op], alias: dict[sympy.Symbol, sympy.Expr]) -> list[Op]:
    out: list[Op] = []
    for op in ops:
        if not isinstance(op, BlockOp):
            out.append(op)
            continue
        assigns = []
        for sym, e in op.block.assigns:
            e = e.xreplace(alias)
            if isinstance(e, sympy.Symbol) or e.is_Number:
                alias[sym] = e
            else:
                assigns.append((sym, e))
        op.block.assigns = assigns
        op.block.stores = [Store(s.buffer, alias.get(s.value, s.value), s.gemm, s.index)
                           for s in op.block.stores]
        out.append(op)
    return out


def buffer_views(plan: Plan) -> dict[str, tuple[str, int | None]]:
    """Buffers that are views: name -> (the buffer it shows, a GEMM slice index or None
    for all of it)."""
    views: dict[str, tuple[str, int | None]] = {}
    gemm_of = {g.grad_buffer: g for g in plan.gemms}
    for op in plan.loop_backward:
        if isinstance(op, BlockOp):
            in_gemm = {s.value: s for s in op.block.stores if s.gemm is not None}
            first: dict = {}  # value -> the first plain buffer that stores it
            kept = []
            for s in op.block.stores:
                twin = in_gemm.get(s.value) if s.gemm is None else None
                if twin is not None:
                    views[s.buffer] = (twin.gemm.grad_buffer, twin.index)
                elif s.gemm is None and s.value in first:  # the same values: one buffer
                    views[s.buffer] = (first[s.value], None)
                else:
                    if s.gemm is None:
                        first[s.value] = s.buffer
                    kept.append(s)
            op.block.stores = kept
    for op in plan.static_backward:
        if not isinstance(op, BlockOp):
            continue
        by_gemm: dict[str, list[Store]] = {}
        for s in op.block.stores:
            if s.gemm is not None:
                by_gemm.setdefault(s.gemm.grad_buffer, []).append(s)
        for buf, stores in by_gemm.items():
            g = gemm_of[buf]
            sources = [views.get(s.value.name) for s in stores]
            bases = {src[0] for src in sources if src}
            if (len(stores) == len(g.outputs) and len(bases) == 1 and all(
                    src and src[1] == s.index for src, s in zip(sources, stores, strict=True))):
                base = bases.pop()
                if gemm_of[base].out_sizes == g.out_sizes:
                    views[buf] = (base, None)
                    op.block.stores = [s for s in op.block.stores if s not in stores]
    return views
