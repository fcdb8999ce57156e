"""Stage 4: derived graph → execution plan (GEMM groups, fused blocks, what to save)."""

from gatespec.schedule.schedule import STATIC, LOOP, BlockOp, GemmOp, Plan, schedule

__all__ = ["LOOP", "STATIC", "BlockOp", "GemmOp", "Plan", "schedule"]
