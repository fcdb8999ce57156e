"""The cell IR: what a cell computes in one time step, with sizes checked.

A step is a graph of nodes in topological order. Leaves are the input and the
previous state values; `MatMul` nodes are products of a weight matrix with one
vector; `Pointwise` nodes are element-wise SymPy expressions over other nodes'
symbols and parameter vectors (biases, diagonal weights). SymPy only ever sees
these scalar, element-wise expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy


def symbol(name: str) -> sympy.Symbol:
    """The one way to make a node or parameter symbol, so equal names are equal symbols."""
    return sympy.Symbol(name, real=True)


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[str, ...]  # size names: (rows, cols) for a matrix, (n,) for a vector
    # "weight" | "bias" (of a linear()) | "diag" | "ln_gain" | "ln_bias" (layer norm) |
    # "unit_bias" (bias(), a per-unit vector on its own) | "scalar" (scalar(), shape ())
    role: str
    owner: str  # the variable whose line created it
    line: int
    init: float | None = None  # a constant it starts at (bias(init=...), scalar()), else None
    # a scalar's shape is (); `units` is the size of the values it multiplies or adds to,
    # over which it broadcasts (what a kernel reads it at, unit by unit)
    units: str | None = None


@dataclass(frozen=True)
class Leaf:
    name: str  # identifier in generated code: `x`, `h_prev`
    label: str  # as the user writes it: `x`, `h`
    size: str
    kind: str  # "input" | "state"


@dataclass(frozen=True)
class MatMul:
    name: str  # `m_ih`: the product of W_ih with its operand
    label: str
    size: str
    weight: str
    operand: str  # node name


@dataclass(frozen=True)
class Pointwise:
    name: str
    label: str
    size: str
    expr: sympy.Expr
    # "user" | "operand" (a linear map's operand) | "lifted" | "static" | "product" (a piece
    # of a long product, see derive._split_products)
    kind: str = "user"


@dataclass(frozen=True)
class LayerNorm:
    """Layer normalisation of one vector over its units: (u - mean) / sqrt(var + eps),
    times a per-unit gain, plus a per-unit bias. A reduction, so, like a matrix product,
    it separates two pointwise blocks."""

    name: str
    label: str
    size: str
    operand: str  # node name
    gain: str  # parameter names
    bias: str | None


EPSILON = 1e-5  # as torch.nn.LayerNorm

Node = Leaf | MatMul | Pointwise | LayerNorm


def deps(node: Node) -> list[str]:
    """Names of the nodes a node reads, sorted for determinism (parameters excluded)."""
    if isinstance(node, MatMul | LayerNorm):
        return [node.operand]
    if isinstance(node, Pointwise):
        return sorted(s.name for s in node.expr.free_symbols if not is_param_name(s.name))
    return []


PARAM_PREFIXES = ("W_", "b_", "w_", "alpha_", "beta_", "gamma_")

# Parameters that appear as symbols in pointwise expressions: per-unit vectors, and scalars
# that broadcast over the units. Their gradients are summed over time and batch (and, for a
# scalar, over the units too).
POINTWISE_ROLES = ("bias", "diag", "unit_bias", "scalar")


def unit_size(p: Param) -> str:
    """The size of the units a pointwise parameter is read at."""
    return p.units if p.role == "scalar" else p.shape[0]


# A state named like a prefix (`state b`) has the values b_prev and b_new: nodes, not
# parameters. (No parameter has these names: W_, w_, alpha_ and beta_ are followed by an
# operand's name, and `prev`, which would make b_prev a bias, is not a valid name.)
_STATE_VALUES = frozenset(p + s for p in PARAM_PREFIXES for s in ("prev", "new"))


def is_param_name(name: str) -> bool:
    return name.startswith(PARAM_PREFIXES) and name not in _STATE_VALUES


@dataclass(frozen=True)
class TorchLayout:
    """Where each parameter sits in an equivalent torch.nn layer (see build/layouts.py)."""

    layer: str  # "LSTM" | "GRU" | "RNN"
    weights: tuple[tuple[str, tuple[str, ...]], ...]  # ("weight_ih", (W_ix, W_fx, ...)), ...
    biases: tuple[tuple[str, int, str], ...]  # (param, gate index, "sum" | "ih" | "hh")
    options: tuple[tuple[str, str], ...] = ()  # constructor options, e.g. nonlinearity


@dataclass
class Cell:
    name: str
    description: str
    header: str
    path: str
    source_sha256: str
    sizes: list[str]  # size names in order of first appearance; "input", "hidden" first
    input: Leaf
    states: list[Leaf]  # previous values, in declaration order
    updates: dict[str, str]  # state label -> node name of its new value
    output: str  # node name of the per-step output
    output_label: str
    params: dict[str, Param]
    nodes: list[Node]
    latex: dict[str, str] = field(default_factory=dict)  # user label -> LaTeX
    # (line, column) of each linear()/diag() call -> the parameters it created, in order:
    # one weight per operand, then the bias. Lets documentation name them as the code does.
    call_params: dict[tuple[int, int], tuple[str, ...]] = field(default_factory=dict)
    torch_layout: TorchLayout | None = None

    def node(self, name: str) -> Node:
        return self._index()[name]

    def _index(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @property
    def state_names(self) -> list[str]:
        return [s.label for s in self.states]
