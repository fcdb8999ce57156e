"""Stage 5: plan → source files for each target."""

from gatespec.emit.emit import emit_numpy, emit_torch

__all__ = ["emit_numpy", "emit_torch"]
