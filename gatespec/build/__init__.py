"""Stage 2: syntax tree → checked cell IR."""

from gatespec.build.build import build

__all__ = ["build"]
