"""A cell's data flow as a Graphviz DOT graph, like the article's block diagrams.

Drawn from the syntax tree, so it shows what the user wrote: the input and the
previous states on the left, the new states on the right, and between them the
linear maps (boxes, edges named by their weights), layer norms (boxes named LN with
their gain and bias), activations (rounded boxes), element-wise products, sums and
differences (circles). Dashed edges carry each
new state to the next step. `svg()` runs Graphviz's `dot` when it is installed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import zlib

from gatespec import GENERATED_MARK, ir
from gatespec.emit.escape import c_comment, dot_html, dot_string
from gatespec.emit.latex_forward import dependency_order, reads
from gatespec.emit.python_module import VERSION
from gatespec.errors import EmitError, UsageError
from gatespec.parse import ast

_OPS = {"+": "+", "-": "−", "*": "⊙", "/": "÷"}
_FUNCTIONS = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "logsigmoid": "log σ",
              "hard_sigmoid": "hardsigmoid", "hard_tanh": "hardtanh", "abs": "|·|", "sqrt": "√"}
_ACCENTS = {"bar": "\u0304", "tilde": "\u0303", "hat": "\u0302", "dot": "\u0307"}
_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ",
          "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
          "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ",
          "psi": "ψ", "omega": "ω"}


def unicode_name(name: str, latex: str | None) -> str:
    """A variable's name for a picture: the user's LaTeX when it is a plain letter
    with an accent (`\\bar{\\boldsymbol{c}}` → c̄), else the name itself."""
    if latex is None:
        return _GREEK.get(name, name)
    text = re.sub(r"\\(boldsymbol|bm|mathbf|mathit|mathrm)\{([^{}]*)\}", r"\2", latex)
    for _ in range(3):
        text = re.sub(r"\\([a-z]+)\{([^{}]*)\}",
                      lambda m: m.group(2) + _ACCENTS[m.group(1)] if m.group(1) in _ACCENTS
                      else m.group(0), text)
    text = re.sub(r"\\([A-Za-z]+)", lambda m: _GREEK.get(m.group(1), m.group(0)), text)
    return name if re.search(r"[\\{}_^]", text) else text


def _sub(text: str) -> str:
    """name_sub → name<SUB>sub</SUB> in an HTML label; a Greek name is its letter."""
    head, _, tail = text.partition("_")
    return dot_html(_GREEK.get(head, head)) + (f"<SUB>{dot_html(tail)}</SUB>" if tail else "")


class _Graph:
    def __init__(self, cell_file: ast.CellFile, cell: ir.Cell):
        self.cf = cell_file
        self.cell = cell
        self.states = {s.label for s in cell.states}
        self.lines: list[str] = []
        self.count = 0

    def node(self, label: str, **attrs: str) -> str:
        self.count += 1
        name = f"n{self.count}"
        extra = "".join(f', {k}="{v}"' for k, v in attrs.items())
        self.lines.append(f"  {name} [label=<{label}>{extra}];")
        return name

    def edge(self, a: str, b: str, label: str | None = None, **attrs: str) -> None:
        extra = [f"label=<{label}>"] if label else []
        extra += [f'{k}="{v}"' for k, v in attrs.items()]
        self.lines.append(f"  {a} -> {b}" + (f" [{', '.join(extra)}]" if extra else "") + ";")

    def value(self, name: str, time: str) -> str:
        shown = unicode_name(name, self.cell.latex.get(name))
        return f"<B>{dot_html(shown)}</B><SUB>{time}</SUB>"

    def build(self) -> str:
        lines = self.lines
        self.where: dict[str, str] = {}  # label the statements read (x, h, i, c') -> graph node
        left = []
        for leaf in self.cell.inputs:
            left.append(self.node(self.value(leaf.label, "t"), shape="plaintext"))
            self.where[leaf.label] = left[-1]
        for s in self.cell.states:
            self.where[s.label] = self.node(self.value(s.label, "t−1"), shape="plaintext")
            left.append(self.where[s.label])
        right = []
        read_in_step = {r for stmt in self.cf.statements for r in reads(stmt.value)}
        for stmt in dependency_order(self.cf.statements):
            result = self.expr(stmt.value)
            t = stmt.target
            is_output = t.name == self.cell.output_label
            attrs = {"shape": "plaintext"}
            if is_output:
                attrs = {"shape": "box", "style": "bold"}
            target = self.node(self.value(t.name, "t"), **attrs)
            self.edge(result, target)
            self.where[t.label] = target
            if t.primed and t.label not in read_in_step:  # a new value read again stays in the flow
                right.append(target)
        for s in self.cell.states:  # the new value is read as the previous one next step
            self.edge(self.where[s.label + "'"], self.where[s.label], "next step",
                      style="dashed", constraint="false", color="gray50", fontcolor="gray50")
        source = c_comment(self.cell.path.rsplit("/", 1)[-1])
        head = [f"// {_MARK} {VERSION} from {source}; do not edit",
                f"digraph {dot_string(self.cell.name)} {{",
                "  rankdir=LR;",
                '  node [fontname="Helvetica", fontsize=12];',
                '  edge [fontname="Helvetica", fontsize=10, arrowsize=0.7];',
                "  { rank=source; " + " ".join(left) + "; }",
                *(["  { rank=sink; " + " ".join(right) + "; }"] if right else [])]
        return "\n".join([*head, *lines, "}"]) + "\n"

    def expr(self, e: ast.Expr) -> str:
        if isinstance(e, ast.Var):
            return self.where[e.label]
        if isinstance(e, ast.Number):
            return self.node(dot_html(e.text), shape="plaintext", fontsize="10")
        if isinstance(e, ast.Neg):
            op = self.node("−", shape="circle", width="0.3", fixedsize="true")
            self.edge(self.expr(e.operand), op)
            return op
        if isinstance(e, ast.Pow):
            op = self.node(f"a<SUP>{e.exponent}</SUP>", shape="circle", width="0.45",
                           fixedsize="true", fontsize="10")
            self.edge(self.expr(e.base), op)
            return op
        if isinstance(e, ast.BinOp) and e.op in "-/":
            left, right = self.expr(e.left), self.expr(e.right)
            # which side is which matters: the node says a − b
            op = self.node(f"a {_OPS[e.op]} b", shape="circle", width="0.45",
                           fixedsize="true", fontsize="10")
            self.edge(left, op, "a")
            self.edge(right, op, "b")
            return op
        if isinstance(e, ast.BinOp):
            # `a * b * c`: one node with an edge from each operand, not a chain of nodes
            # (a long chain would be as many ranks, which Graphviz lays out slowly)
            symbol, operands = e.op, []
            while isinstance(e, ast.BinOp) and e.op == symbol:
                operands.append(e.right)
                e = e.left
            values = [self.expr(o) for o in [e, *reversed(operands)]]
            op = self.node(_OPS[symbol], shape="circle", width="0.3", fixedsize="true")
            for v in values:
                self.edge(v, op)
            return op
        return self.call(e)

    def call(self, c: ast.Call) -> str:
        if c.func == "identity":
            return self.expr(c.args[0])
        if c.func in ("linear", "diag"):
            params = self.cell.call_params[(c.span.line, c.span.column)]
            weights = params[:len(c.args)]
            extra = [_sub(p) for p in params[len(c.args):]]
            title = "linear" if c.func == "linear" else "diag"
            label = title + (f"<BR/>+ {' + '.join(extra)}" if extra else "")
            box = self.node(label, shape="box")
            for w, a in zip(weights, c.args, strict=True):
                p = self.cell.params[w]  # a view (weight=) is labelled as its weight
                label = _sub(p.source) + ("<SUP>T</SUP>" if p.transpose else "") if p.role == "view" else _sub(w)
                self.edge(self.expr(a), box, label)
            return box
        if c.func in ("bias", "scalar"):  # a learned parameter on its own: b_z, γ_h
            (param,) = self.cell.call_params[(c.span.line, c.span.column)]
            return self.node(_sub(param), shape="plaintext", fontsize="11")
        if c.func in ("zoneout", "dropout"):  # the mask and its rate; the rate is no value
            (mask,) = self.cell.call_params[(c.span.line, c.span.column)]
            spec = next(m for m in self.cell.masks if m.name == mask)
            detail = f"rate {spec.rate:g}" + (f", per {spec.per}" if c.func == "dropout" else "")
            box = self.node(f"{c.func}<BR/>{dot_html(detail)}", shape="box", style="dashed")
            for a, label in zip(c.args, ("new", "old") if c.func == "zoneout" else (None,),
                                strict=False):
                self.edge(self.expr(a), box, label)
            return box
        if c.func in ir.ROW_KINDS:  # between the linear map and the activation
            params = (self.cell.call_params[(c.span.line, c.span.column)]
                      if ir.ROW_KINDS[c.func].scaled else ())
            label = _ROWS[c.func] + ("<BR/>" + ", ".join(_sub(p) for p in params)
                                     if params else "")
            box = self.node(label, shape="box")
            self.edge(self.expr(c.args[0]), box)
            return box
        name = dot_html(_FUNCTIONS.get(c.func, c.func))
        names = "abc"[:len(c.args)]  # clip(a, b, c) has the most operands
        box = self.node(name + (f"({', '.join(names)})" if len(c.args) > 1 else ""),
                        shape="box", style="rounded")
        for k, a in enumerate(c.args):
            self.edge(self.expr(a), box, names[k] if len(c.args) > 1 else None)
        return box


_MARK = GENERATED_MARK
# a reduction over the units, in its box
_ROWS = {"layernorm": "LN", "rmsnorm": "RMS", "softmax": "softmax", "cumax": "cumax"}


def dot_source(cell_file: ast.CellFile, cell: ir.Cell) -> str:
    return _Graph(cell_file, cell).build()


def has_dot() -> bool:
    return shutil.which("dot") is not None


def dot_program() -> str:
    path = shutil.which("dot")
    if path is None:
        raise UsageError("drawing the diagram needs Graphviz's `dot` program, which is not "
                         "installed (e.g. apt-get install graphviz); write a .dot file instead")
    return path


def render(dot_text: str, fmt: str) -> bytes:
    """The diagram drawn by `dot` as svg, png or pdf bytes. A `dot` that cannot run or
    cannot draw the format (a Graphviz built without its png/pdf plugins) is the
    installation's limit, a user error; a syntax error in the DOT text is gatespec's bug."""
    try:
        r = subprocess.run([dot_program(), f"-T{fmt}"], input=dot_text.encode("utf-8"),
                           capture_output=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"Graphviz's dot did not draw the diagram as {fmt} within 120 s; "
                         "write a .dot file instead") from None
    except OSError as exc:
        raise UsageError(f"cannot run Graphviz's dot: {exc.strerror or exc}") from None
    message = r.stderr.decode(errors="replace").strip()
    if r.returncode != 0 and "syntax error" in message:
        raise EmitError(f"dot rejected the generated graph: {message}")
    if r.returncode != 0 or not r.stdout:
        raise UsageError(f"Graphviz's dot could not draw the diagram as {fmt}"
                         + (f": {message}" if message else "") + "; write a .dot file instead")
    return r.stdout


def svg(dot_text: str) -> str:
    """The SVG, marked with the hash of the DOT text it was drawn from, so a stale
    picture can be told from a current one without Graphviz."""
    text = render(dot_text, "svg").decode("utf-8")
    mark = f"<!-- {_MARK} {VERSION}; drawn from DOT sha256 {dot_hash(dot_text)} -->\n"
    head, sep, rest = text.partition("?>\n")
    return head + sep + mark + rest if sep else mark + text


def png(dot_text: str) -> bytes:
    """The PNG with the same mark as the SVG in a tEXt chunk right after the header
    chunk (within the first bytes, where `gatespec.files` looks for it)."""
    data = render(dot_text, "png")
    header_end = 8 + 8 + int.from_bytes(data[8:12], "big") + 4  # signature, IHDR
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise EmitError("dot's PNG does not start with a PNG header")
    text = f"{_MARK} {VERSION}; drawn from DOT sha256 {dot_hash(dot_text)}".encode("latin-1")
    body = b"tEXt" + b"Comment\0" + text
    chunk = len(body[4:]).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return data[:header_end] + chunk + data[header_end:]


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def dot_hash(dot_text: str) -> str:
    return hashlib.sha256(dot_text.encode("utf-8")).hexdigest()


def svg_source_hash(svg_text: str) -> str | None:
    m = re.search(r"drawn from DOT sha256 ([0-9a-f]{64})", svg_text[:2000])
    return m.group(1) if m else None
