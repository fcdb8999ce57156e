"""The built-in cell library: one `.gate` file per cell."""

from __future__ import annotations

from importlib import resources


def names() -> list[str]:
    """Names of the built-in cells, sorted."""
    return sorted(p.name[: -len(".gate")] for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".gate"))


def source(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.gate").read_text("utf-8")
