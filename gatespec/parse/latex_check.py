"""What a `latex NAME "..."` string may hold: a small piece of maths from a whitelist.

A cell file may come from a stranger, and its LaTeX goes into documents that people
compile. TeX is a programming language (`\\input` reads files, `\\openout` writes them,
`\\loop` runs forever), so the string is checked against this grammar, and everything
that it accepts compiles:

    maths  := item*
    item   := atom [script] [script]      (at most one `_` and one `^`)
    atom   := letter | digit | one of + - = , . ; : ( ) / |
            | SYMBOL                       (\\alpha, \\ell, \\partial, \\odot, ...)
            | ACCENT "{" maths "}"         (\\bar{...}, \\boldsymbol{...}, \\mathrm{...})
            | "{" maths "}"
    script := ("_" | "^") (letter | digit | SYMBOL | "{" maths "}")

with spaces anywhere, groups nested at most MAX_DEPTH deep and at most MAX_LENGTH
characters in all; and no script on an accent such as \\vec{...} whose argument holds an
accent over a script (`\\vec{\\breve{x^k}}^t`, which amsmath cannot set).
"""

from __future__ import annotations

import re

GREEK = ("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa "
         "lambda mu nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi "
         "omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega").split()
# commands without an argument: each is one math character, so it may also be a script
SYMBOLS = frozenset([*GREEK, *"ell imath jmath partial nabla infty prime ast star circ "
                     "dagger cdot odot otimes oplus times".split()])
# commands with one argument, always in braces
ACCENTS = frozenset("bar hat tilde vec dot ddot check breve acute grave widehat widetilde "
                    "overline underline boldsymbol bm mathbf mathrm mathit mathsf mathtt "
                    "mathcal mathbb mathfrak".split())
# the accents proper (not fonts, not \\overline): amsmath's nesting of these goes wrong
MATH_ACCENTS = frozenset("bar hat tilde vec dot ddot check breve acute grave widehat "
                         "widetilde".split())
PUNCTUATION = frozenset("+-=,.;:()/|")
MAX_DEPTH = 8
MAX_LENGTH = 200

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.?|[A-Za-z0-9]|.", re.S)


class LatexError(Exception):
    """A string outside the whitelist: what is wrong, at which character of the string."""

    def __init__(self, message: str, offset: int, length: int = 1):
        super().__init__(message)
        self.message, self.offset, self.length = message, offset, length


def check_latex(text: str) -> None:
    """Raise LatexError unless `text` is in the whitelist grammar above."""
    if len(text) > MAX_LENGTH:
        raise LatexError(f"a latex string may have at most {MAX_LENGTH} characters",
                         MAX_LENGTH)
    tokens = [(m.group(), m.start()) for m in _TOKEN.finditer(text) if m.group() != " "]
    _Checker(tokens, len(text)).maths(0)


class _Checker:
    def __init__(self, tokens: list[tuple[str, int]], end: int):
        self.tokens, self.end, self.k = tokens, end, 0

    def peek(self) -> tuple[str, int]:
        return self.tokens[self.k] if self.k < len(self.tokens) else ("", self.end)

    def next(self) -> tuple[str, int]:
        token = self.peek()
        self.k += 1
        return token

    # maths() reports two facts, (scripted, accent_over_script): whether a script sits
    # on one of its own items (not inside a group or font), and whether it holds, at any
    # depth, an accent whose argument is scripted so.

    def maths(self, depth: int) -> tuple[bool, bool]:
        scripted = accented = False
        while self.peek()[0] not in ("", "}"):
            s, a = self.item(depth)
            scripted, accented = scripted or s, accented or a
        if depth == 0 and self.peek()[0] == "}":
            raise LatexError("this '}' closes no '{'", self.peek()[1])
        return scripted, accented

    def item(self, depth: int) -> tuple[bool, bool]:
        accented, fragile = self.atom(depth)
        scripted = False
        seen: set[str] = set()
        while self.peek()[0] in ("_", "^"):
            mark, at = self.next()
            if mark in seen:
                raise LatexError("a second " + ("subscript" if mark == "_" else "superscript")
                                 + " on one symbol: group the first, e.g. {x_1}_2", at)
            if fragile:
                raise LatexError("LaTeX cannot set a script on an accent over an accent over "
                                 "a script: group the inner script, e.g. \\breve{{x^k}}", at)
            seen.add(mark)
            accented = self.script(mark, at, depth) or accented
            scripted = True
        return scripted, accented

    def script(self, mark: str, at: int, depth: int) -> bool:
        token, where = self.peek()
        if token == "^" and mark == "^":
            raise LatexError("'^^' (TeX's character code escape) is not allowed", at, 2)
        if token == "{":
            return self.group(depth)[1]
        elif re.fullmatch(r"[A-Za-z0-9]", token) or token[1:] in SYMBOLS:
            self.next()
        elif token.startswith("\\") and token[1:] in ACCENTS:
            raise LatexError(f"put {token}{{...}} in braces after '{mark}'", where, len(token))
        elif token == "":
            raise LatexError(f"'{mark}' needs something after it", at)
        else:
            self.unknown(token, where)
        return False

    def atom(self, depth: int) -> tuple[bool, bool]:
        """(accent_over_script, fragile: an accent that no script may follow)."""
        token, at = self.peek()
        if token == "{":
            return self.group(depth)[1], False
        elif token in ("_", "^"):
            raise LatexError(f"'{token}' needs something before it, e.g. {{}}{token}", at)
        elif re.fullmatch(r"[A-Za-z0-9]", token) or token in PUNCTUATION:
            self.next()
        elif token[1:] in SYMBOLS:
            self.next()
        elif token[1:] in ACCENTS:
            self.next()
            if self.peek()[0] != "{":
                raise LatexError(f"{token} needs its argument in braces, e.g. {token}{{c}}",
                                 at, len(token))
            scripted, accented = self.group(depth)
            if token[1:] in MATH_ACCENTS:
                return accented or scripted, accented
            return accented, False
        else:
            self.unknown(token, at)
        return False, False

    def group(self, depth: int) -> tuple[bool, bool]:
        _, at = self.next()
        if depth + 1 > MAX_DEPTH:
            raise LatexError(f"braces may nest at most {MAX_DEPTH} deep", at)
        facts = self.maths(depth + 1)
        if self.next()[0] != "}":
            raise LatexError("this '{' is never closed", at)
        return facts

    @staticmethod
    def unknown(token: str, at: int) -> None:
        if token.startswith("\\") and len(token) > 1:
            raise LatexError(f"{token} is not allowed in a latex string (it may use Greek "
                             "letters, accents such as \\bar{...} and fonts such as "
                             "\\mathbf{...}; see the README)", at, len(token))
        if token == "\\":
            raise LatexError("a latex string cannot end with '\\'", at)
        raise LatexError(f"{token!r} is not allowed in a latex string", at, len(token))
