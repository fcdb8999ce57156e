"""`latex NAME "..."` strings: a whitelist of maths, checked at parse time with the place
of the offending command; everything it accepts compiles and reads and writes nothing."""

import re
import subprocess

import pytest
from conftest import require_program
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gatespec import cells
from gatespec.emit.latex import render
from gatespec.errors import ParseError
from gatespec.parse import parse
from gatespec.parse.latex_check import (
    ACCENTS,
    MAX_DEPTH,
    PUNCTUATION,
    SYMBOLS,
    LatexError,
    check_latex,
)

CELL = "cell c\ninput x\nstate h\nlatex h \"{}\"\nh' = tanh(linear(x, h))\n"
COLUMN = CELL.split("\n")[3].index('"') + 2  # the string's first character


def error_for(latex: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(CELL.replace("{}", latex, 1), "c.gate")
    return caught.value


@pytest.mark.parametrize(("latex", "at", "what"), [
    (r"\input{/etc/hostname}", 0, r"\input is not allowed"),
    (r"x\openout", 1, r"\openout is not allowed"),
    (r"\loop\iftrue\repeat", 0, r"\loop is not allowed"),
    (r"\def\x{1}", 0, r"\def is not allowed"),
    (r"\csname relax\endcsname", 0, r"\csname is not allowed"),
    (r"\catcode", 0, r"\catcode is not allowed"),
    (r"\write18{touch x}", 0, r"\write is not allowed"),
    (r"\bar{\immediate}", 5, r"\immediate is not allowed"),
    ("x^^5c", 1, "'^^'"),
    ("100%", 3, "'%' is not allowed"),
    ("a#1", 1, "'#' is not allowed"),
    ("a&b", 1, "'&' is not allowed"),
    ("$x$", 0, "'$' is not allowed"),
    ("a~b", 1, "'~' is not allowed"),
    ("{a", 0, "never closed"),
    (r"\bar{a", 4, "never closed"),
    ("a}", 1, "closes no"),
    ("x_1_2", 3, "second subscript"),
    (r"\bar c", 0, "in braces"),
    ("x^", 1, "needs something after"),
    ("_t", 0, "needs something before"),
    ("a\\", 1, "cannot end with"),
    (r"a\{", 1, r"\{ is not allowed"),
    ("\u00e9", 0, "is not allowed"),
    ("{" * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1), MAX_DEPTH, "nest"),
    # pdflatex stops on these ("Double superscript"): amsmath's nested accents
    (r"\vec{\breve{x^k}}^t", 17, "accent over an accent"),
    (r"\vec{y {\breve{x_k}}}_t", 21, "accent over an accent"),
])
def test_outside_the_whitelist_is_a_parse_error_at_the_command(latex, at, what):
    error = error_for(latex)
    assert what in error.message, error.message
    assert (error.span.line, error.span.column) == (4, COLUMN + at)
    assert error.render().startswith(f"c.gate:4:{COLUMN + at}: error: ")


def test_overlong_string():
    assert "at most" in error_for("x" * 201).message


@pytest.mark.parametrize("name", cells.names())
def test_builtin_latex_strings_pass(name):
    cf = parse(cells.source(name))
    for text, _ in cf.latex.values():
        check_latex(text)


# --- strings from the whitelist grammar ------------------------------------------------------

LEAF = st.one_of(st.sampled_from("abxyzABC019"), st.sampled_from(sorted(PUNCTUATION)),
                 st.sampled_from(sorted(SYMBOLS)).map(lambda s: "\\" + s))
SCRIPT_ARG = st.one_of(st.sampled_from("tk2"), st.sampled_from(sorted(SYMBOLS)).map(
    lambda s: "\\" + s + " "), st.sampled_from(["{t-1}", "{ij}", r"{\ell}"]))
SCRIPTS = st.one_of(st.just(""), st.tuples(st.sampled_from(["_", "^", "_^", "^_"]),
                                           SCRIPT_ARG, SCRIPT_ARG).map(
    lambda t: "".join(m + a for m, a in zip(t[0], t[1:], strict=False))))


def _extend(inner):
    maths = st.lists(st.tuples(inner, SCRIPTS).map("".join), max_size=3).map(" ".join)
    return st.one_of(maths.map(lambda m: "{" + m + "}"),
                     st.tuples(st.sampled_from(sorted(ACCENTS)), maths).map(
                         lambda t: f"\\{t[0]}{{{t[1]}}}"))


ATOM = st.recursive(LEAF, _extend, max_leaves=5)
# items apart by a space, as `\\alpha b` must not read as the command `\\alphab`
def _within_limits(text: str) -> bool:
    """The grammar below leaves out two limits of the checker: its length, and no script on
    an accent over a scripted accent (which amsmath cannot set)."""
    try:
        check_latex(text)
    except LatexError as exc:
        if len(text) <= 200 and "accent over an accent" not in exc.message:
            raise
        return False
    return True


MATHS = st.lists(st.tuples(ATOM, SCRIPTS).map("".join), min_size=1, max_size=3).map(" ".join).filter(_within_limits)


@settings(max_examples=50, deadline=None)
@given(MATHS)
def test_the_grammar_is_accepted(latex):
    check_latex(latex)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30))
def test_anything_accepted_uses_only_whitelisted_pieces(text):
    try:
        check_latex(text)
    except LatexError as exc:
        assert 0 <= exc.offset <= len(text)
        return
    commands = re.findall(r"\\([A-Za-z]+)", text)
    assert set(commands) <= SYMBOLS | ACCENTS
    assert not set(re.sub(r"\\[A-Za-z]+", "", text)) - set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}_^") - PUNCTUATION


@settings(max_examples=3, deadline=None)
@given(st.lists(MATHS, min_size=4, max_size=4))
# found by this test: an accent or \bm with scripts of its own before the time index
@example(strings=["a", "a", "{}", "\\acute{}_t"])
@example(strings=["a", "a", "{}", "\\bm{}"])
def test_accepted_strings_compile_and_touch_no_file(tmp_path_factory, strings):
    pdflatex = require_program("pdflatex")
    folder = tmp_path_factory.mktemp("latex")
    names = ["i", "f", "g", "h"]
    text = ("cell c\ninput x\nstate h\n" + "".join(
        f'latex {n} "{s}"\n' for n, s in zip(names, strings, strict=True))
        + "i = sigmoid(linear(x, h))\nf = sigmoid(linear(x, h))\ng = tanh(linear(x, h))\n"
        "h' = f * h + i * g\n")
    (folder / "c.tex").write_text(render(text, "c.gate", "tex"), "utf-8")
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error",
                        "-no-shell-escape", "c.tex"], cwd=folder, capture_output=True,
                       text=True, timeout=60)
    log = (folder / "c.log").read_text("utf-8", errors="replace")
    assert r.returncode == 0 and "Undefined control sequence" not in log, r.stdout[-2000:]
    assert sorted(p.name for p in folder.iterdir()) == ["c.aux", "c.log", "c.pdf", "c.tex"]
