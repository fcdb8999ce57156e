"""User text (descriptions, header comments, file names, names) → each output language.

Every template and printer writes user text through one of these functions, registered
as Jinja filters of the same name. Each is safe alone, whatever surrounds it: its
output cannot end the string, comment or block it is printed in, and where the
language can show the text, it shows it verbatim. Characters a target cannot show
become a visible escape (`\\u2028` in C comments, `[U+2028]` in LaTeX).
"""

from __future__ import annotations

import re

from gatespec.errors import EmitError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _code_point(ch: str) -> str:
    """`\\x1f`, `\\u2028`, `\\U0001f600`: Python's (and C's) escape for a character."""
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


_PY_NAMED = {"\\": "\\\\", "\t": "\\t", "\r": "\\r", "\n": "\\n"}


def _py_body(text: str, newline: str, all_quotes: bool) -> str:
    out = []
    for k, ch in enumerate(text):
        if ch == "\n":
            out.append(newline)
        elif ch in _PY_NAMED:
            out.append(_PY_NAMED[ch])
        elif ch == '"':
            # in a docstring a lone quote between other characters is harmless and reads
            # better; any that could touch another quote (or the closing ones) is escaped
            touching = k in (0, len(text) - 1) or "\"" in (text[k - 1], text[k + 1])
            out.append('\\"' if all_quotes or touching else '"')
        elif ch.isprintable():  # excludes controls, U+2028, bidi overrides, lone surrogates
            out.append(ch)
        else:
            out.append(_code_point(ch))
    return "".join(out)


def py_str(text: str) -> str:
    """A Python string literal whose value is `text`, on one line."""
    return '"' + _py_body(text, "\\n", all_quotes=True) + '"'


def py_doc(text: str) -> str:
    """Text inside a `\"\"\"` docstring, newlines kept: backslashes and every quote that
    could touch another are escaped, so the docstring's value holds `text` exactly and
    cannot be closed early."""
    return _py_body(text, "\n", all_quotes=False)


def c_comment(text: str) -> str:
    """Text for a `//` comment (C++, CUDA, DOT): a quoted C string literal in ASCII on one
    line. Quoted, it cannot end in a backslash (which would splice the next line
    into the comment); `??` is broken up because `??/` is a backslash in C++14."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "?" and out and out[-1] == "?":
            out.append("\\?")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(_code_point(ch))
    return '"' + "".join(out) + '"'


def ident(name: str) -> str:
    """A name printed as code (a C++ namespace, a Python identifier): the grammar allows
    only identifiers, and this refuses anything else rather than print it."""
    if not _IDENT.fullmatch(name):
        raise EmitError(f"{name!r} is not an identifier and cannot be printed as code")
    return name


def terminal_text(text: str) -> str:
    """Text for a terminal (`gatespec show`): control characters, which could move the
    cursor or recolour the screen, as \\xNN / \\uXXXX."""
    return "".join(ch if ch.isprintable() else _code_point(ch) for ch in text)


# pdflatex's default setup covers these; any other non-ASCII character would stop it.
_LATEX_UNICODE = {"–": "--", "—": "---", "’": "'", "‘": "`", "“": "``", "”": "''",
                  "é": r"\'e", "ö": r"\"o", "ü": r"\"u", "ä": r"\"a", "×": r"$\times$"}
_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "\\": r"\textbackslash{}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}", '"': r"{\ttfamily\char34}", "`": r"\textasciigrave{}"}
# TeX joins these pairs into one glyph (--, '' and ,, are dashes and quotes): kept apart
_LATEX_LIGATURES = ("--", "''", ",,")


def _latex_visible(ch: str) -> str:
    return f"[U+{ord(ch):04X}]"


def latex_text(text: str) -> str:
    """Text for a LaTeX paragraph (or an argument like \\texttt{...}): special characters
    print as themselves; a character pdflatex cannot typeset prints as [U+XXXX]."""
    out = []
    for k, ch in enumerate(text):
        if text[k:k + 2] in _LATEX_LIGATURES:
            out.append(ch + "{}")
        elif ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ch in _LATEX_UNICODE:
            out.append(_LATEX_UNICODE[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(_latex_visible(ch))
    return "".join(out)


def latex_comment(text: str) -> str:
    """Text for a `%` comment: one line of printable ASCII (TeX ends a comment at a
    carriage return as well as a newline)."""
    return "".join(ch if " " <= ch <= "~" else _latex_visible(ch) for ch in text)


def _html_char(ch: str) -> str:
    return f"&#x{ord(ch):X};"


_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def html_text(text: str) -> str:
    """Text for HTML (the comment that marks a Markdown page): no markup, so no `-->`
    either; one line, control and other invisible characters as numeric references."""
    return "".join(_HTML.get(ch) or (ch if ch.isprintable() else _html_char(ch)) for ch in text)


# Characters that mean something to Markdown anywhere in a line (CommonMark, GitHub's
# tables, strikethrough and $ maths); a backslash makes each literal.
_MD_INLINE = set("\\`*_[]|$~")


def md_text(text: str) -> str:
    """Text for a Markdown paragraph or table cell, shown as written: no HTML (`<`, `&` as
    references), no emphasis, links or maths; no heading, list or code block where it
    starts a line; line breaks as references, so it stays one line."""
    lead = len(text) - len(text.lstrip(" "))  # four spaces would start a code block
    number = re.match(r"\d+[.)]", text[lead:])  # `12.` or `3)` would start an ordered list
    marker = lead + number.end() - 1 if number else lead
    out = ["&#x20;"] * lead
    for k, ch in enumerate(text[lead:], lead):
        if ch in _HTML:
            out.append(_HTML[ch])
        elif ch in _MD_INLINE or (k == marker and ch in ".)#-+="):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_html_char(ch))
    return "".join(out)


def md_code(text: str) -> str:
    """Text in code type: an HTML <code> element around `md_text(text)`, as a backtick
    code span would show `<` raw, and cannot hold a line break."""
    return f"<code>{md_text(text)}</code>"


def md_fence(text: str) -> str:
    """A fenced code block holding `text` as it is: the fence is longer than any run
    of backticks in it, so no line of `text` can close the block."""
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", text)), default=0))
    return f"{fence}\n{text}\n{fence}"


def dot_string(text: str) -> str:
    """A quoted DOT string (a graph name) whose value is `text`: quotes and backslashes
    escaped; invisible characters as the text \\uXXXX."""
    return '"' + "".join("\\" + ch if ch in '\\"' else ch if ch.isprintable()
                         else "\\" + _code_point(ch) for ch in text) + '"'


def dot_html(text: str) -> str:
    """Text in a Graphviz HTML-like label: Graphviz reads it as XML and then expands
    backslash escapes (`\\N` is the node's name), so a backslash is doubled; it writes the
    text into SVG, where control characters are not allowed even as references: those
    (and other invisible characters) print as the text \\uXXXX."""
    return "".join("\\\\" if ch == "\\" else _HTML.get(ch) or
                   (ch if ch.isprintable() else "\\" + _code_point(ch)) for ch in text)


FILTERS = {f.__name__: f for f in (py_str, py_doc, c_comment, ident, latex_text,
                                   latex_comment, html_text, md_text, md_code, md_fence,
                                   dot_string, dot_html)}
