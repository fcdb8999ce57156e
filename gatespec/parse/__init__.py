"""Stage 1: text → syntax tree."""

from gatespec.parse.parse import parse

__all__ = ["parse"]
