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
    role: str  # "weight" | "bias" | "diag" | "ln_gain" | "ln_bias" (layer norm)
    owner: str  # the variable whose line created it
    line: int


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


PARAM_PREFIXES = ("W_", "b_", "w_", "alpha_", "beta_")


# A state named like a prefix (`state b`) has the values b_prev and b_new: nodes, not
# parameters. (No parameter has these names: W_, w_, alpha_ and beta_ are followed by an
# operand's name, and `prev`, which would make b_prev a bias, is not a valid name.)
_STATE_VALUES = frozenset(p + s for p in PARAM_PREFIXES for s in ("prev", "new"))


def is_param_name(name: str) -> bool:
    return name.startswith(PARAM_PREFIXES) and name not in _STATE_VALUES


@dataclass(frozen=True)
class Mask:
    """A stochastic mask: an input sequence the generated code draws itself (or is given),
    one value per step, row and unit. zoneout(new, old, rate) reads m*new + (1 - m)*old
    with m ~ Bernoulli(1 - rate) (Haste's convention: 1 keeps the new value); dropout(v,
    rate) reads v*m with m = Bernoulli(1 - rate) / (1 - rate). Either is linear in m, so
    the expectation over masks, for evaluation, is the value at m = E[m]."""

    name: str  # the leaf, `mask_c`
    size: str
    kind: str  # "zoneout" | "dropout"
    rate: float  # in [0, 1)
    per: str  # "step": a new mask every step; "sequence": one per sequence, for every step
    owner: str
    line: int

    @property
    def mean(self) -> float:
        """E[m]: what evaluation reads in place of a drawn mask."""
        return 1.0 - self.rate if self.kind == "zoneout" else 1.0


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
    # every input sequence in declaration order; inputs[0] is `input`, the main one (a
    # stacked layer's input), the rest are read as given by every layer (conditioning);
    # then the masks of zoneout() and dropout(), in the order of the calls
    inputs: list[Leaf] = field(default_factory=list)
    masks: list[Mask] = field(default_factory=list)

    @property
    def extra_inputs(self) -> list[Leaf]:
        """The further input sequences the user declared (masks are not among them)."""
        masks = {m.name for m in self.masks}
        return [leaf for leaf in self.inputs[1:] if leaf.name not in masks]

    @property
    def packed(self) -> bool:
        """Whether the generated code reads one packed x: every input and mask side by side."""
        return len(self.inputs) > 1

    def node(self, name: str) -> Node:
        return self._index()[name]

    def _index(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @property
    def state_names(self) -> list[str]:
        return [s.label for s in self.states]
