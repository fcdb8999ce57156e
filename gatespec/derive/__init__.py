"""Stage 3: cell IR → normalised scalar graph with local partial derivatives (SymPy)."""

from gatespec.derive.derive import Derived, derive

__all__ = ["Derived", "derive"]
