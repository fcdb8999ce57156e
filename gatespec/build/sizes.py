"""Size inference: union-find over size variables, some bound to named sizes."""

from __future__ import annotations

from gatespec.errors import CheckError, Span

SCALAR = None  # the size of a numeric constant: it broadcasts


class Sizes:
    def __init__(self) -> None:
        self._parent: list[int] = []
        self._bound: dict[int, str] = {}
        self.names: list[str] = []  # named sizes in order of first appearance

    def new(self, bound: str | None = None) -> int:
        v = len(self._parent)
        self._parent.append(v)
        if bound is not None:
            self._bind(v, bound)
        return v

    def _bind(self, v: int, name: str) -> None:
        self._bound[v] = name
        if name not in self.names:
            self.names.append(name)

    def find(self, v: int) -> int:
        while self._parent[v] != v:
            self._parent[v] = self._parent[self._parent[v]]
            v = self._parent[v]
        return v

    def name_of(self, v: int) -> str | None:
        return self._bound.get(self.find(v))

    def unify(self, a, b, span: Span, what: str):
        """Make two sizes equal; a size mismatch is the user's error at `span`."""
        if a is SCALAR:
            return b
        if b is SCALAR:
            return a
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        na, nb = self._bound.get(ra), self._bound.get(rb)
        if na is not None and nb is not None and na != nb:
            raise CheckError(f"size mismatch in {what}: '{na}' against '{nb}'", span)
        self._parent[rb] = ra
        if na is None and nb is not None:
            self._bound[ra] = nb
        return ra

    def resolve(self, v, default: str = "hidden") -> str:
        """The named size of a variable; unconstrained sizes default to `hidden`."""
        if v is SCALAR:
            return default
        name = self.name_of(v)
        if name is None:
            self._bind(self.find(v), default)
            return default
        return name
