"""The article's notation, piece by piece: variables, parameters, functions.

Vectors are bold; a value computed in step t carries `_t`, the previous value of
a state `_{t-1}`. Parameters have no time index. Both the forward printer (which
reads the syntax tree) and the backward printer (which reads SymPy) spell every
name and function through this module, so the two halves of a page agree.
"""

from __future__ import annotations

import re

from gatespec.emit.escape import latex_text

# Precedence of a printed piece, to decide where parentheses go.
SUM, MATVEC, PROD, UNARY, ATOM = 1, 1.5, 2, 3, 4

GREEK = frozenset(
    """alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma
    tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi
    Omega""".split()
)

# How each element-wise function is written; `{0}`, `{1}` are the printed operands.
FUNCTIONS = {
    "sigmoid": r"\sigma({0})",
    "tanh": r"\tanh({0})",
    "relu": r"\operatorname{{ReLU}}({0})",
    "exp": r"\exp({0})",
    "log": r"\log({0})",
    "softplus": r"\operatorname{{softplus}}({0})",
    "logsigmoid": r"\log\sigma({0})",
    "hard_sigmoid": r"\operatorname{{hardsigmoid}}({0})",
    "hard_tanh": r"\operatorname{{hardtanh}}({0})",
    "abs": r"\lvert {0} \rvert",
    "sqrt": r"\sqrt{{{0}}}",
    "softsign": r"\operatorname{{softsign}}({0})",
    "silu": r"\operatorname{{SiLU}}({0})",
    "max": r"\max({0}, {1})",
    "min": r"\min({0}, {1})",
    "clip": r"\operatorname{{clip}}({0}, {1}, {2})",
    # helpers that only appear in derivatives
    "expm1": r"(\exp({0}) - 1)",
    "sign": r"\operatorname{{sign}}({0})",
    "positive": r"\mathbf{{1}}[{0} > 0]",
    "in_unit": r"\mathbf{{1}}[0 < {0} < 1]",
    "in_symmetric_unit": r"\mathbf{{1}}[-1 < {0} < 1]",
    "greater_equal": r"\mathbf{{1}}[{0} \ge {1}]",
    "less": r"\mathbf{{1}}[{0} < {1}]",
}

# Functions whose power is written on the name, as in tan^2(x).
POWER_ON_NAME = {"sigmoid": r"\sigma", "tanh": r"\tanh", "exp": r"\exp", "log": r"\log"}


def function(name: str, args: list[str]) -> str:
    return FUNCTIONS[name].format(*args)


def time_index(step: int) -> str:
    """`t`, `t-1`, `t+1` for a step offset of 0, -1, +1."""
    return "t" if step == 0 else f"t{step:+d}"


def subscript(text: str) -> str:
    """`_i` for one character, `_{ix}` for more."""
    return f"_{text}" if len(text) == 1 else f"_{{{text}}}"


def _escape(name: str) -> str:
    return latex_text(name)  # a name in maths: `_` is the only character it needs escaped


def _bold_name(name: str) -> tuple[str, str]:
    """(bold symbol, subscript text) for a variable name: `h2` is h with subscript 2,
    `h_tilde` is h with subscript tilde, a Greek name is its letter."""
    head, _, tail = name.partition("_")
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", head)
    digits = ""
    if m:
        head, digits = m.groups()
    if len(head) == 1:
        core = rf"\boldsymbol{{{head}}}"
    elif head in GREEK:
        core = rf"\boldsymbol{{\{head}}}"
    else:  # a word: upright, so that it does not read as a product of letters
        core = rf"\boldsymbol{{\mathrm{{{head}}}}}"
    sub = ",".join(p for p in (digits, rf"\mathrm{{{_escape(tail)}}}" if tail else "") if p)
    return core, sub


def _plain_atom(latex: str) -> bool:
    """No scripts, not starting with a letter, and something visible besides commands."""
    return (not any(c in latex for c in "_^") and not latex[:1].isalpha()
            and any(c.isalnum() for c in re.sub(r"\\[A-Za-z]+", "", latex)))


class Names:
    """LaTeX for the variables and parameters of one cell."""

    def __init__(self, latex: dict[str, str]):
        self.latex = latex  # variable name -> the user's LaTeX for it (no time index)

    def base(self, name: str) -> tuple[str, str]:
        """(symbol, subscript text) of a variable, without its time index."""
        if name in self.latex:
            text = self.latex[name]
            # the user's symbol (checked by parse/latex_check.py) is grouped unless it is
            # plainly one atom, like the article's `\bar{\boldsymbol{c}}`: so the time index
            # cannot meet a script of its own (`c_1`, `\bm{c_1}`) or land on the atom before
            # an empty one (`\bm{}`), and `\delta` before it stays one command; the empty
            # group keeps TeX from taking `{\acute{x}_t}` for the accent, scripts and all
            return (text if _plain_atom(text) else f"{{{text}{{}}}}"), ""
        return _bold_name(name)

    def var(self, name: str, step: int) -> str:
        """A variable at a step offset: `\\boldsymbol{c}_{t-1}`, `\\bar{\\boldsymbol{c}}_t`."""
        core, sub = self.base(name)
        return core + subscript(",".join(p for p in (sub, time_index(step)) if p))

    def labelled(self, prefix: str, label: str, step: int) -> str:
        """A derived vector named after a variable, e.g. the pre-activation a_{i,t}."""
        return rf"\boldsymbol{{{prefix}}}_{{{_escape(label)},{time_index(step)}}}"

    @staticmethod
    def param(name: str) -> str:
        """`W_ix` -> `\\boldsymbol{W}_{ix}`, `b_i` -> `\\boldsymbol{b}_i`, a layer norm's
        `alpha_ix` -> `\\boldsymbol{\\alpha}_{ix}`."""
        head, _, rest = name.partition("_")
        if head == "gamma":  # a learned scalar, scalar(): a number, not bold
            return r"\gamma" + subscript(_escape(rest))
        core = rf"\boldsymbol{{\{head}}}" if head in GREEK else rf"\boldsymbol{{{head}}}"
        return core + subscript(_escape(rest))

    @staticmethod
    def layer_norm_value(kind: str, label: str, step: int) -> str:
        """A row reduction's vectors at a step offset: its input u ("in"), normalised input
        û ("hat"), output ℓ ("out"), its input's deviation s ("std", a scalar), and a
        cumax's softmax p ("soft")."""
        index = f"{_escape(label)},{time_index(step)}"
        core = {"in": r"\boldsymbol{u}", "hat": r"\hat{\boldsymbol{u}}",
                "out": r"\boldsymbol{\ell}", "std": "s", "soft": r"\boldsymbol{p}"}[kind]
        return rf"{core}_{{{index}}}"


# a row reduction in the forward equations: its name, and its parameters as subscripts
ROW_NAMES = {"layernorm": "LN", "rmsnorm": "RMS", "softmax": "softmax", "cumax": "cumax"}


def weight(name: str, params: dict, transposed: bool = False) -> str:
    """A weight matrix as printed, transposed or not. A view (weight=W_zh or W_zh.T in the
    cell) prints as the weight it is: W_zh, or W_zh^T (and the transpose of W_zh.T as W_zh)."""
    p = params.get(name)
    if p is not None and p.role == "view":
        name, transposed = p.source, transposed != p.transpose
    return Names.param(name) + (r"^\top" if transposed else "")


def layer_norm(params: tuple[str, ...], operand: str, kind: str = "layernorm") -> str:
    """LN with its gain (and bias) as subscripts: `\\operatorname{LN}_{α,β}(u)`; RMS
    likewise, softmax and cumax without."""
    scripts = ",".join(Names.param(p) for p in params)
    scripts = f"_{{{scripts}}}" if scripts else ""
    return rf"\operatorname{{{ROW_NAMES[kind]}}}{scripts}({operand})"


def unit_sum(text: str) -> str:
    """The sum over a vector's units, a scalar."""
    return rf"\operatorname{{sum}}({text})"


def reverse_cumsum(text: str) -> str:
    """Each unit's sum of the units from it to the last: a vector."""
    return rf"\operatorname{{rcumsum}}({text})"


def unit_mean(text: str) -> str:
    """The mean over a vector's units, a scalar: `⟨v⟩`."""
    return rf"\langle {text} \rangle"


def number(text: str) -> str:
    """A number as written in the cell file; an exponent becomes a power of ten."""
    mantissa, _, exponent = text.lower().partition("e")
    if not exponent:
        return mantissa
    # the parser allows any number of leading zeros in the exponent: strip, never int() them
    digits = exponent.lstrip("+-").lstrip("0") or "0"
    power = rf"10^{{{'-' if exponent.startswith('-') and digits != '0' else ''}{digits}}}"
    return power if mantissa in ("1", "1.", "1.0") else rf"{mantissa} \times {power}"
