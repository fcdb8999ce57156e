"""The built-in cell library: one `.gate` file per cell."""

from __future__ import annotations

from importlib import resources

# Old names that still work: gru_torch's files (gru_torch_torch.py) collided with the
# torch module of gru (gru_torch.py).
ALIASES = {"gru_torch": "gru_reset_after"}


def names() -> list[str]:
    """Names of the built-in cells, sorted."""
    return sorted(p.name[: -len(".gate")] for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".gate"))


def canonical(name: str) -> str:
    """The built-in cell's current name for `name` (itself, or the cell an old name became)."""
    return ALIASES.get(name, name)


def is_builtin(name: str) -> bool:
    """Whether `name` is a built-in cell or an old name of one."""
    return canonical(name) in names()


def source(name: str) -> str:
    return resources.files(__name__).joinpath(f"{canonical(name)}.gate").read_text("utf-8")
