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
    # "rms_gain" | "rms_bias" (RMS norm) | "unit_bias" (bias(), a per-unit vector on its
    # own) | "scalar" (scalar(), shape ()) | "view" (see below)
    role: str
    owner: str  # the variable whose line created it
    line: int
    # role "view": not a parameter of its own but another weight (`source`), transposed or
    # not, made from it before the time loop (linear(h, weight=W_zh.T)); its gradient is
    # added into the source's
    source: str | None = None
    transpose: bool = False
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
class RowKind:
    """What one kind of row reduction computes and keeps for its backward pass."""

    title: str  # in comments and `gatespec show`: "layer norm"
    # arrays its forward helper returns after the output, each (suffix, per-unit): a
    # per-unit one is (B, n) per step, else (B, 1)
    saves: tuple[tuple[str, bool], ...]
    scaled: bool  # has a per-unit gain (and, with bias=true, a bias)
    bias_default: bool = False


# A reduction over one vector's units; like a matrix product it separates two pointwise
# blocks. Each kind has a forward helper returning (y, *saves) and a backward helper taking
# (dy, *saves[, gain]) in every target.
ROW_KINDS = {
    # (u - mean) / sqrt(var + eps) * gain + bias; saves the normalised input, 1 / deviation
    "layernorm": RowKind("layer norm", (("xhat", True), ("rstd", False)), True, True),
    # u / sqrt(mean(u^2) + eps) * gain (+ bias), as torch.nn.RMSNorm
    "rmsnorm": RowKind("RMS norm", (("xhat", True), ("rstd", False)), True),
    # exp(u - max u) / sum: saves its output
    "softmax": RowKind("softmax", (("smax", True),), False),
    # cumsum(softmax(u)) (Shen et al. 2019): saves the softmax
    "cumax": RowKind("cumax", (("smax", True),), False),
}


@dataclass(frozen=True)
class Row:
    """A reduction over the units of one vector (see ROW_KINDS), with a per-unit gain and
    bias for the normalisations."""

    name: str
    label: str
    size: str
    operand: str  # node name
    kind: str  # a key of ROW_KINDS
    gain: str | None = None  # parameter names
    bias: str | None = None
    owner: str = ""  # the variable whose line computes it

    @property
    def spec(self) -> RowKind:
        return ROW_KINDS[self.kind]


EPSILON = 1e-5  # as torch.nn.LayerNorm; RMS norm uses the same

Node = Leaf | MatMul | Pointwise | Row


def deps(node: Node) -> list[str]:
    """Names of the nodes a node reads, sorted for determinism (parameters excluded)."""
    if isinstance(node, MatMul | Row):
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
    def trained_params(self) -> dict[str, Param]:
        """The parameters a user holds and trains: all but the views of other weights."""
        return {k: p for k, p in self.params.items() if p.role != "view"}

    @property
    def views(self) -> list[Param]:
        return [p for p in self.params.values() if p.role == "view"]

    @property
    def state_names(self) -> list[str]:
        return [s.label for s in self.states]
