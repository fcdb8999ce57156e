"""Stage 4: derived graph → execution plan (GEMM groups, fused blocks, what to save)."""

from gatespec.schedule.plan import LOOP, STATIC, BlockOp, Gemm, GemmOp, Plan, RowOp
from gatespec.schedule.schedule import schedule

__all__ = ["LOOP", "STATIC", "BlockOp", "Gemm", "GemmOp", "RowOp", "Plan", "schedule"]
