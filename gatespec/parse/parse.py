"""Text → syntax tree. The grammar lives in grammar.lark; nothing here evaluates user text."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import lark

from gatespec.errors import ParseError, Span
from gatespec.parse import ast
from gatespec.parse.latex_check import LatexError, check_latex
from gatespec.parse.limits import MAX_EXPONENT, check_depth, check_name_lengths, number_value

_TOKEN_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a "quoted string"',
    "_NL": "end of line",
    "$END": "end of file",
    "PRIME": "'",
    "PLUS": "+",
    "MINUS": "-",
    "STAR": "*",
    "SLASH": "/",
    "POW": "**",
    "LPAR": "(",
    "RPAR": ")",
    "LSQB": "[",
    "RSQB": "]",
    "COMMA": ",",
    "EQUAL": "=",
    "DOTTED": "a dotted name",
}


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = resources.files("gatespec.parse").joinpath("grammar.lark").read_text("utf-8")
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse(source: str, path: str = "<cell>") -> ast.CellFile:
    """Parse the text of a cell file; raise ParseError with the place of the first mistake."""
    try:
        tree = _parser().parse(source + "\n")
    except lark.exceptions.UnexpectedInput as exc:
        raise _parse_error(exc, source, path) from None
    cell = ast.CellFile(path=path, source=source, header=_header_comment(source))
    check_name_lengths(tree, source, path)
    builder = _Builder(cell)
    for item in tree.children:
        if item.data == "assign":
            check_depth(item.children[1], builder.span_of_tree)
        try:
            builder.build_item(item)
        except RecursionError:  # a statement of thousands of terms
            raise ParseError("this statement is too long to compile: split it into several",
                             builder.span(item)) from None
    return cell


def _header_comment(source: str) -> str:
    lines = []
    for line in source.split("\n"):  # as the grammar counts lines: a comment ends only at \n
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        lines.append(stripped[1:].removeprefix(" "))
    return "\n".join(lines)


def _describe(token_type: str, value: str | None = None) -> str:
    if token_type in ("NAME", "NUMBER") and value:
        return f"'{value}'"
    name = _TOKEN_NAMES.get(token_type)
    if name is None:  # keywords are anonymous terminals named after their text
        return f"'{token_type.lower()}'"
    return name if name.startswith(("a ", "end")) else f"'{name}'"


def _parse_error(exc: lark.exceptions.UnexpectedInput, source: str, path: str) -> ParseError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        message = f"unexpected character {source[exc.pos_in_stream]!r}"
        if source[exc.pos_in_stream] == ".":  # `h.T`, `(W_zh).T`
            message += "; a transpose is written only as linear()'s option weight=W_name.T"
    elif isinstance(exc, lark.exceptions.UnexpectedToken):
        tok = exc.token
        # A newline with only blank space after it (the parser adds one) is the end of the file.
        at_end = tok.type == "$END" or (tok.type == "_NL" and not source[tok.start_pos:].strip())
        if at_end:
            lines = source.rstrip().splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        found = _describe("$END" if at_end else tok.type, str(tok))
        expected = sorted({_describe(t) for t in exc.expected if not t.startswith("__")})
        message = f"unexpected {found}"
        if expected and len(expected) <= 6:
            message += "; expected " + ", ".join(expected)
    else:
        message = "unexpected end of file"
    return ParseError(message, Span(path, line, column, source))


class _Builder:
    """Turns the Lark tree into ast nodes with spans."""

    def __init__(self, cell: ast.CellFile):
        self.cell = cell

    def span(self, item, length: int | None = None) -> Span:
        meta = item if isinstance(item, lark.Token) else item.meta
        if isinstance(item, lark.Token):
            line, col, n = item.line, item.column, len(str(item))
        else:
            line, col = meta.line, meta.column
            n = (meta.end_column - meta.column) if meta.line == meta.end_line else 1
        return Span(self.cell.path, line, col, self.cell.source, length or max(n, 1))

    def span_of_tree(self, item) -> Span:
        while isinstance(item, lark.Tree) and not getattr(item.meta, "line", None):
            item = item.children[0]
        return self.span(item)

    def build_item(self, item: lark.Tree) -> None:
        getattr(self, item.data)(item)

    def cell_decl(self, item: lark.Tree) -> None:
        name_tok = item.children[0]
        if self.cell.name is not None:
            raise ParseError("the cell is named twice", self.span(name_tok))
        self.cell.name = str(name_tok)
        self.cell.name_span = self.span(name_tok)
        if len(item.children) > 1:
            self.cell.description = str(item.children[1])[1:-1].strip()

    def _var_decls(self, item: lark.Tree) -> list[ast.VarDecl]:
        decls = []
        for d in item.children:
            name, *size = d.children
            decls.append(
                ast.VarDecl(
                    str(name),
                    str(size[0]) if size else None,
                    self.span(name),
                    self.span(size[0]) if size else None,
                )
            )
        return decls

    def input_decl(self, item: lark.Tree) -> None:
        self.cell.inputs.extend(self._var_decls(item))

    def state_decl(self, item: lark.Tree) -> None:
        self.cell.states.extend(self._var_decls(item))

    def output_decl(self, item: lark.Tree) -> None:
        tok = item.children[0]
        if self.cell.output is not None:
            raise ParseError("the output is declared twice", self.span(tok))
        self.cell.output = ast.Var(str(tok), False, self.span(tok))

    def latex_decl(self, item: lark.Tree) -> None:
        name, text = item.children
        if str(name) in self.cell.latex:
            raise ParseError(f"the latex of '{name}' is given twice", self.span(name))
        try:
            check_latex(str(text)[1:-1])
        except LatexError as exc:  # the place of the offending command, inside the quotes
            raise ParseError(exc.message, Span(self.cell.path, text.line,
                                               text.column + 1 + exc.offset,
                                               self.cell.source, exc.length)) from None
        self.cell.latex[str(name)] = (str(text)[1:-1], self.span(name))

    def equivalent_decl(self, item: lark.Tree) -> None:
        layer, *gates = item.children
        if str(layer) in self.cell.equivalents:
            raise ParseError(f"the equivalent {layer} is given twice", self.span(layer))
        self.cell.equivalents[str(layer)] = (tuple(str(g) for g in gates), self.span(layer))

    def assign(self, item: lark.Tree) -> None:
        target_tree, value = item.children
        name, *rest = target_tree.children
        prime = [t for t in rest if t.type == "PRIME"]
        size = [t for t in rest if t.type == "NAME"]
        target = ast.Var(str(name), bool(prime), self.span(name, len(name) + len(prime)))
        if size and prime:
            raise ParseError(f"'{target.label}' is a state's next value: its size is the "
                             f"state's, declared on its `state` line", self.span(size[0]))
        self.cell.statements.append(ast.Assign(
            target, self.expr(value), self.span(item), str(size[0]) if size else None,
            self.span(size[0]) if size else None))

    def expr(self, node) -> ast.Expr:
        kind = node.data
        if kind == "number":
            tok = node.children[0]
            return ast.Number(number_value(str(tok), self.span(tok)), str(tok), self.span(tok))
        if kind == "var":
            name, *prime = node.children
            return ast.Var(str(name), bool(prime), self.span(name, len(name) + len(prime)))
        if kind == "binop":
            left, op, right = node.children
            return ast.BinOp(str(op), self.expr(left), self.expr(right), self.span(op))
        if kind == "power":
            base, op, exponent = node.children
            return ast.Pow(self.expr(base), self._exponent(exponent, op), self.span(op))
        if kind == "neg":
            return ast.Neg(self.expr(node.children[1]), self.span(node.children[0]))
        if kind == "unary":  # unary plus
            return self.expr(node.children[-1])
        if kind == "call":
            name, *args = node.children
            pos, kws = [], []
            for a in args:
                if isinstance(a, lark.Tree) and a.data == "kwarg":
                    kname, kval = a.children
                    kws.append(ast.KwArg(str(kname), self.expr(kval), self.span(kname)))
                elif isinstance(a, lark.Tree) and a.data == "kwarg_attr":
                    kname, dotted = a.children
                    pname, attr = str(dotted).split(".", 1)
                    kws.append(ast.KwArg(str(kname), ast.Attr(pname, attr, self.span(dotted)),
                                         self.span(kname)))
                elif kws:
                    raise ParseError("an operand cannot follow a keyword argument",
                                     self.span_of_tree(a))
                else:
                    pos.append(self.expr(a))
            return ast.Call(str(name), tuple(pos), tuple(kws), self.span(name))
        raise AssertionError(f"unknown tree node {kind}")

    def _exponent(self, tree, op) -> int:
        """The exponent of `**`: an integer constant, at most MAX_EXPONENT in size."""
        e = self.expr(tree)
        sign = 1
        while isinstance(e, ast.Neg):
            sign, e = -sign, e.operand
        span = self.span_of_tree(tree)
        if not isinstance(e, ast.Number) or e.value.denominator != 1:
            raise ParseError("the exponent of ** must be an integer constant, such as 2 or -1",
                             span, note="for a root write sqrt(u); for a^u write exp(u * log(a))")
        value = sign * e.value.numerator
        if abs(value) > MAX_EXPONENT:
            raise ParseError(f"the exponent {value} is too large: exponents are at most "
                             f"{MAX_EXPONENT} in size", span,
                             note="kernels write a power as a product of its factors")
        return value
