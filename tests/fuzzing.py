"""The fuzzer behind tests/test_fuzz.py and bench/fuzz.py: cell files from the grammar and
byte-level mutants of the built-in cells, each run in-process through every command, and
judged by what a stranger's file may do to gatespec (see `problems`)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import tempfile
import time
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from gatespec import cells, cli, pipeline

# -- what runs, and what counts as a failure ----------------------------------------------

MARK = "fuzzmark"  # in every payload: user text that must stay text (strings, comments)
CANARY = "fuzzcanary"  # a file a payload creates if user text ever runs

COMMANDS = (*[("generate", "--target", t, "-o", "out") for t in pipeline.TARGETS],
            ("latex", "--backward"), ("show",), ("diagram",), ("check",))

_LOCATED = re.compile(r"(\d+):(\d+): error: ([^\n]+)\n    ([^\n]*)\n    ([^\n^]*)\^(~*)(?:\n|$)")
_TRACEBACK = "Traceback (most recent call last)"
# TeX primitives that read or write files, loop, or redefine the language; a document may
# hold the template's own \usepackage and \documentclass, nothing else of these
_TEX_DANGER = re.compile(r"\\(input|include|openin|openout|write|read|immediate|loop|repeat"
                         r"|def|edef|gdef|xdef|let|catcode|csname|special|newcommand"
                         r"|renewcommand|usepackage|documentclass|end\{document\})(?![A-Za-z])"
                         r"|\^\^")
_TEX_ALLOWED = {".tex": {"\\usepackage": 4, "\\documentclass": 1, "\\end{document}": 1}}
# any tag but the pages' own <code> (an attribute such as onerror= lives inside a tag;
# as escaped text, `&lt;img onerror=...&gt;`, it is harmless)
_RAW_HTML = re.compile(r"<(?!/?code>)[A-Za-z!?/]", re.I)


@dataclass
class Problem:
    kind: str  # exit3, traceback, escaped, message, timeout, mixed, check, compile, ...
    command: str
    detail: str

    def key(self) -> tuple[str, str, str]:
        """A failure class: the detail without numbers, names and quoted text."""
        detail = self.detail
        if self.kind in ("file", "check"):  # not the file (NumPy, torch...) or input's name
            detail = detail.split(": ", 1)[-1]
        return (self.kind, self.command, _normalise(re.sub(r"\(\S+\.py, line", "(", detail)))

    def __str__(self) -> str:
        return f"[{self.kind}] {self.command}: {self.detail}"


@dataclass
class Outcome:
    problems: list[Problem] = field(default_factory=list)
    codes: dict[str, int | None] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _normalise(text: str) -> str:
    text = text.splitlines()[0] if text else ""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "Q", text)
    text = re.sub(r"\b[A-Za-z_]*\d[\w.]*|\b\d+\b", "N", text)
    return text[:90]


class _Overtime(BaseException):
    """Raised by the alarm; not an Exception, so cli.main's handler lets it through."""


def _alarm(signum, frame):
    raise _Overtime


def call(argv: list[str], budget: float) -> tuple[int | None, str, str, float, str | None]:
    """cli.main(argv) in this process: (exit code or None, stdout, stderr, seconds, what
    escaped main). A run over `budget` seconds is stopped by SIGALRM (code None)."""
    out, err = io.StringIO(), io.StringIO()
    escaped = None
    old = signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy's overflow warnings in check: not ours
            rc = cli.main(argv)
    except _Overtime:
        rc = None
    except SystemExit as exc:  # argparse; nothing else should exit
        rc, escaped = exc.code, f"SystemExit({exc.code})"
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is a finding
        rc, escaped = 3, f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return rc, out.getvalue(), err.getvalue(), time.perf_counter() - start, escaped


def reference_text(data: bytes) -> str | None:
    """The text gatespec should see: UTF-8 without a byte-order mark, universal newlines
    (as Path.read_text reads it); None if it is not UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def message_problem(err: str, path: str, text: str | None) -> str | None:
    """Why stderr is not a proper user error for the file at `path`, or None."""
    if text is None:  # not UTF-8: a message about the file, not a place in it
        ok = err.startswith(f"gatespec: error: cannot read {path}: not UTF-8 text")
        return None if ok else f"undecodable file without the file-level message: {err[:200]!r}"
    if not err.startswith(f"{path}:"):
        return f"no file:line:col: {err[:200]!r}"
    m = _LOCATED.match(err, len(path) + 1)
    if m is None:
        return f"not file:line:col: error: + line + caret: {err[:300]!r}"
    line, col, shown, pad = int(m[1]), int(m[2]), m[4], m[5]
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return f"line {line} outside the file's {len(lines)} lines"
    expected = "".join(c if c == "\t" or c.isprintable() else "\ufffd" for c in lines[line - 1])
    if shown != expected:
        return f"shown line {shown!r} is not line {line} {expected!r}"
    if not 1 <= col <= len(expected) + 1:
        return f"column {col} outside line {line} of {len(expected)} characters"
    if len(pad) != col - 1 or pad.strip(" \t"):
        return f"caret not under column {col}"
    return None


def python_problem(source: str) -> str | None:
    """A generated Python file: compiles without warnings, and the payload marker is only in
    plain string literals and comments (never code, never an f-string)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an invalid escape in a docstring is a SyntaxWarning
        try:
            compile(source, "<generated>", "exec")
        except (SyntaxError, ValueError, Warning) as exc:
            return f"does not compile: {type(exc).__name__}: {exc}"
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        return f"does not tokenize: {exc}"
    for tok in tokens:
        if MARK not in tok.string:
            continue
        if tok.type == tokenize.COMMENT:
            continue
        if tok.type == tokenize.STRING and "f" not in tok.string.split(tok.string[-1])[0].lower():
            continue
        kind = "f-string" if tok.type == tokenize.STRING else tokenize.tok_name[tok.type]
        return f"user text in a {kind} at line {tok.start[0]}: {tok.line.strip()[:120]!r}"
    return None


def c_problem(source: str) -> str | None:
    """A generated .cu file: the payload marker only in comments and string literals, and
    no comment line ending in a backslash (it would splice the next line into it)."""
    for number, line in enumerate(source.split("\n"), 1):
        if "//" in line and line.rstrip().endswith("\\"):
            return f"comment line {number} ends in a backslash: {line[:120]!r}"
    code = []  # the text outside comments and strings
    spliced = source.replace("\\\n", "")
    i, n = 0, len(spliced)
    while i < n:
        if spliced.startswith("//", i):
            i = spliced.find("\n", i)
            i = n if i < 0 else i
        elif spliced.startswith("/*", i):
            j = spliced.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif spliced[i] in "\"'":
            q, j = spliced[i], i + 1
            while j < n and spliced[j] not in (q, "\n"):
                j += 2 if spliced[j] == "\\" else 1
            i = j + 1
        else:
            code.append(spliced[i])
            i += 1
    code_text = "".join(code)
    if MARK in code_text:
        k = code_text.index(MARK)
        return f"user text in C++ code: {code_text[max(0, k - 60):k + 60]!r}"
    return None


def doc_problem(suffix: str, text: str) -> str | None:
    """A .tex page: no TeX primitive that reads, writes, loops or redefines beyond the
    template's own; a .md page: no raw HTML from user text."""
    allowed = _TEX_ALLOWED.get(suffix, {})
    counts: dict[str, int] = {}
    # a Markdown page's LaTeX is typeset by MathJax or KaTeX, which read no files; TeX
    # skips a comment (the header's file name) to the end of its line
    tex = re.sub(r"(?<!\\)%[^\n]*", "", text) if suffix == ".tex" else ""
    for m in _TEX_DANGER.finditer(tex):
        counts[m[0]] = counts.get(m[0], 0) + 1
    for name, count in counts.items():
        if count > allowed.get(name, 0):
            return f"TeX {name} in the page ({count}x)"
    if suffix == ".md":
        body = text.split("-->", 1)[-1]  # the generated-by comment is ours
        # a fenced code block shows its text as it is (the fence outruns its backticks)
        body = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1[ \t]*$", "", body)
        m = _RAW_HTML.search(body)
        if m:
            return f"raw HTML in the page: {body[max(0, m.start() - 40):m.end() + 40]!r}"
    return None


def problems(data: bytes, filename: str = "cell.gate", budget: float = 20.0,
             commands: tuple[tuple[str, ...], ...] = COMMANDS) -> Outcome:
    """Run one cell file through every command (COMMANDS) in a fresh folder and list what
    went wrong. What is asserted, per input:
      - every command exits 0 (check: and passes), or every one exits 2 with
        `path:line:col: error: message`, that line and a caret under the column (a file that
        is not UTF-8: `gatespec: error: cannot read PATH: not UTF-8 text`);
      - no traceback, no exit 3, nothing escapes cli.main, no command over `budget` s;
      - no canary file appears (payloads in comments, descriptions, latex strings and file
        names create one if run); generated Python compiles without warnings and holds
        user text only in plain strings and comments; C++ only in comments and strings;
        the documents hold no file/loop/definition TeX primitives nor raw HTML."""
    result = Outcome()
    with tempfile.TemporaryDirectory(prefix="gatespec-fuzz-") as root, _chdir(root):
        Path(filename).write_bytes(data)
        text = reference_text(data)
        located: list[str] = []
        for cmd in commands:
            argv = [cmd[0], filename, *cmd[1:]]
            name = " ".join(c for c in cmd if c != "-o" and c != "out")
            rc, out, err, secs, escaped = call(argv, budget)
            result.codes[name], result.seconds[name] = rc, secs
            if rc is None:
                result.problems.append(Problem("timeout", name, f"over {budget:.0f} s"))
                break  # the next commands would run the same slow stages
            if escaped:
                result.problems.append(Problem("escaped", name, escaped))
            if _TRACEBACK in out + err:
                result.problems.append(Problem("traceback", name, err.split(_TRACEBACK)[-1]
                                               .strip().splitlines()[-1][:200]))
            if rc == 3:
                detail = err.split("please report it): ", 1)[-1].strip()
                result.problems.append(Problem("exit3", name, detail[:300]))
            elif rc == 2:
                why = message_problem(err, filename, text)
                if why:
                    result.problems.append(Problem("message", name, why))
                located.append(err.split("\n", 1)[0])
            elif rc == 1 and cmd[0] == "check":
                # a cell whose outputs overflow or leave a function's domain at every data
                # scale check tries (`sqrt(linear(x, h))`) cannot be checked: that is the
                # cell's doing, and check says so
                if "are not finite" not in out:
                    result.problems.append(Problem("check", name, out.strip()[:300]))
            elif rc != 0:
                result.problems.append(Problem("exit", name, f"exit {rc}: {err[:200]!r}"))
        codes = {c for c in result.codes.values() if c in (0, 1, 2)}
        if 2 in codes and codes & {0, 1}:
            failing = sorted(k for k, c in result.codes.items() if c == 2)
            result.problems.append(Problem("mixed", ",".join(failing),
                                           "some commands accept the file, these refuse it: "
                                           + (located[0] if located else "")))
        for path in sorted(Path("out").glob("*")) if Path("out").is_dir() else []:
            why = _file_problem(path)
            if why:
                result.problems.append(Problem("file", path.suffix, why))
        canaries = [p for p in Path(root).rglob(CANARY)] + [p for p in Path("/tmp").glob(CANARY)]
        if canaries:
            result.problems.append(Problem("canary", "", f"user text ran: {canaries[0].name} created"))
    return result


def _file_problem(path: Path) -> str | None:
    if path.suffix not in (".py", ".cu", ".tex", ".md"):
        return None
    text = path.read_text("utf-8")
    if path.suffix == ".py":
        why = python_problem(text)
    elif path.suffix == ".cu":
        why = c_problem(text)
    else:
        why = doc_problem(path.suffix, text)
    kind = path.name.rsplit("_", 1)[-1] if path.suffix == ".py" else path.suffix
    return f"{kind}: {why}" if why else None


@contextlib.contextmanager
def _chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# -- payloads: user text that would run, or break out, if it reached code unescaped --------

PY_RUN = f"__import__('os').system('touch {CANARY}')"
PAYLOADS = [
    f'{MARK}"""; {PY_RUN}; {MARK}; """{MARK}',
    f"{MARK}'''; {PY_RUN}; {MARK}; '''{MARK}",
    f"{{{PY_RUN}}} {{{MARK}}} {MARK}",
    f"{MARK} \\N \\x \\u12 \\ {MARK}",
    f"{MARK}\\",
    f"{MARK} */ #define float double /* {MARK}",
    f"{MARK} <img src=x onerror=alert(1)> <script>alert(1)</script> {MARK}",
    f"{MARK} \\input{{/etc/hostname}} \\immediate\\openout5={CANARY} {MARK}",
    f"{MARK} \\loop\\iftrue\\repeat \\def\\x{{\\x}}\\x \\catcode`\\@=11 ^^5cinput {MARK}",
    f"{MARK} }} $ & % _ ^ ~ # \\\\ \\end{{document}} {{ {MARK}",
    f'{MARK} "]; pwn [label="{MARK}',
    f"{MARK} ${{touch {CANARY}}} `touch {CANARY}` $(touch {CANARY}) {MARK}",
    f"{MARK} \x00 \x0b \x0c \u2028 \x85 {MARK}",
    f"{MARK} ); {PY_RUN}; ( {MARK}",
    f"{MARK} ü ∂ 😀 {MARK}",
]
# file names: no '/', no NUL, no leading '-'
FILE_PAYLOADS = [
    f'{MARK}"""{PY_RUN}"""{MARK}.gate',
    f"{{{PY_RUN}}}{MARK}.gate",
    f"{MARK}\n#define float double\n{MARK}.gate",
    f"{MARK}\n{PY_RUN}\n{MARK}.gate",
    f"{MARK} <img src=x onerror=alert(1)>.gate",
    f"{MARK}\\input{{x}}\\.gate",
    f"{MARK}'; {PY_RUN}; '.gate",
    f"{MARK} \\N {{x}}.gate",
    f"{MARK}$(touch {CANARY}).gate",
    "cell.txt",
    "cell",
    "cell file ü.gate",
]


def _no_quote(text: str) -> str:
    """A description or latex string cannot hold a double quote or a line break."""
    return _one_line(text).replace('"', "'")


def _one_line(text: str) -> str:
    """A comment ends at a line break."""
    return text.replace("\n", " ").replace("\r", " ")


filenames = st.one_of(st.just("cell.gate"), st.just("cell.gate"), st.just("cell.gate"),
                      st.sampled_from(FILE_PAYLOADS))
free_text = st.one_of(st.sampled_from(PAYLOADS),
                      st.text(st.characters(codec="utf-8"), max_size=12).map(
                          lambda s: f"{MARK} {s} {MARK}"))


# -- (a) cells from the grammar ------------------------------------------------------------

ACTIVATIONS = ("sigmoid", "tanh", "relu", "exp", "log", "softplus", "logsigmoid",
               "hard_sigmoid", "hard_tanh", "abs", "sqrt", "softsign", "silu", "identity")
NUMBERS = ("1", "2", "0.5", ".5", "3.", "1e-3", "2E+1", "0", "1e300", "7", "1.0e+2")
ODD_NUMBERS = ("1e-320", "1e999", "123456789012345678901234567890", "0.0", "00012")
NAMES = ("i", "f", "g", "o", "r", "z", "n", "a", "u", "v", "q0", "gate", "cand", "mix",
         "Big", "g2")
# names that are taken elsewhere: Python/C keywords, generated names, the language's words
ODD_NAMES = ("lambda", "class", "None", "float", "int", "self", "np", "torch", "x_all",
             "W_ix", "d_h", "sum", "max", "linear", "sigmoid", "input", "state", "cell",
             "gates", "e", "pi", "T", "B", "h_prev", "k", "__x", "_", "template", "half",
             "a" * 300, "ü")

FAULTS = ("unknown_name", "unknown_function", "arity", "bias_kw", "kw_on_diag", "prime_var",
          "assign_input", "twice", "no_update", "cycle", "unused", "paren", "stray",
          "no_cell", "two_inputs", "no_state", "bad_output", "bad_latex", "bad_equivalent",
          "div_zero", "size_mismatch", "odd_name", "number_only", "empty_call")


@dataclass
class _Scope:
    vectors: list[str]  # hidden-size values readable element-wise
    operands: list[str]  # anything a linear map may read (the input, states of any size)
    leaves: set[str]  # the input and states: what names a compound operand's parameters
    taken: set[str] = field(default_factory=set)  # parameters made on this statement's line
    biased: bool = False  # a biased linear() is on this line already

    def key(self, kind: str, operand: str) -> str | None:
        """The parameter `kind` of an operand makes on this line, or None if it is taken
        (named after the operand, or after the inputs and states a compound one reads)."""
        names = {n.rstrip("'") for n in re.findall(r"[A-Za-z_]\w*'?", operand)}
        if not re.fullmatch(r"[A-Za-z_]\w*'?", operand):
            names = (names & self.leaves) or names
        key = f"{kind}:{','.join(sorted(names))}"
        if key in self.taken:
            return None
        self.taken.add(key)
        return key


@st.composite
def _expr(draw, scope: _Scope, depth: int) -> str:
    """An element-wise expression of hidden size that reads at least one value; no two
    parts of a line make the same parameter."""
    if depth <= 0:
        return draw(_leaf(scope))
    kind = draw(st.sampled_from(("leaf", "binop", "binop", "act", "act", "neg", "minmax",
                                 "diag", "ln", "row", "linear", "paren", "const_op", "bias",
                                 "scalar")))
    if kind == "leaf":
        return draw(_leaf(scope))
    if kind == "binop":
        op = draw(st.sampled_from(("+", "-", "*", "/")))
        a = draw(_expr(scope, depth - 1))
        b = draw(st.one_of(_expr(scope, depth - 1), st.sampled_from(NUMBERS)))
        return f"{a} {op} {b}" if draw(st.booleans()) else f"{b} {op} {a}"
    if kind == "act":
        return f"{draw(st.sampled_from(ACTIVATIONS))}({draw(_expr(scope, depth - 1))})"
    if kind == "neg":
        return f"-{draw(_expr(scope, depth - 1))}"
    if kind == "minmax":
        fn = draw(st.sampled_from(("max", "min")))
        return f"{fn}({draw(_expr(scope, depth - 1))}, {draw(_expr(scope, depth - 1))})"
    if kind in ("diag", "ln"):
        operand = draw(_expr(scope, depth - 1))
        if scope.key(kind, operand) is None:
            return operand
        if kind == "diag":
            return f"diag({operand})"
        # layernorm and rmsnorm both name their gain alpha_<line><operand>: one key
        if draw(st.booleans()):
            return f"rmsnorm({operand}{', bias=true' if draw(st.booleans()) else ''})"
        bias = ", bias=false" if draw(st.booleans()) else ""
        return f"layernorm({operand}{bias})"
    if kind == "row":  # no parameters: any operand, any number of times
        return f"{draw(st.sampled_from(('softmax', 'cumax')))}({draw(_expr(scope, depth - 1))})"
    if kind == "bias":  # the line's one bias: none after a biased linear() or a bias()
        operand = draw(_expr(scope, depth - 1))
        if scope.biased:
            return operand
        scope.biased = True
        init = draw(st.sampled_from(("", "init=1", "init=-0.5", "init=2e-3")))
        return (f"{operand} + bias({init})" if draw(st.booleans())
                else f"bias({init}) * {operand}")
    if kind == "scalar":
        init = draw(st.sampled_from(("", "init=0.5", "init=-1", "init=3")))
        return f"scalar({init}) * {draw(_expr(scope, depth - 1))}"
    if kind == "linear":
        return draw(_linear(scope, depth - 1))
    if kind == "paren":
        return f"({draw(_expr(scope, depth - 1))})"
    # a constant operand inside a vector expression: sigmoid(2), sqrt(1e20), 1e300 * 1e10
    const = draw(st.sampled_from(("sigmoid(2)", "sqrt(1e20)", "1e300 * 1e10", "exp(1)",
                                  "tanh(0.5) * 2", "abs(-3)", "max(1, 2)")))
    return f"{draw(_expr(scope, depth - 1))} * {const}"


@st.composite
def _leaf(draw, scope: _Scope) -> str:
    if draw(st.integers(0, 3)) == 0:
        return draw(_linear(scope, 0))
    return draw(st.sampled_from(scope.vectors))


@st.composite
def _linear(draw, scope: _Scope, depth: int) -> str:
    operands = []
    for _ in range(draw(st.integers(1, 3))):
        if depth > 0 and draw(st.integers(0, 5)) == 0:
            operand = draw(_expr(scope, depth - 1))
        else:
            operand = draw(st.sampled_from(scope.operands))
        if scope.key("linear", operand) is not None:
            operands.append(operand)
    if not operands:
        return draw(st.sampled_from(scope.vectors))
    bias = ", bias=false" if scope.biased or draw(st.integers(0, 3)) == 0 else ""
    scope.biased = scope.biased or not bias
    return f"linear({', '.join(operands)}{bias})"


@st.composite
def grammar_cells(draw) -> tuple[bytes, str, str]:
    """(file bytes, file name, the fault put in or '') for a cell written from the grammar:
    one input, 1-3 states (some of other sizes), 0-5 named intermediates, every value read,
    statements shuffled; payloads in comments, the description and latex strings; with
    probability 1/4 one deliberate mistake."""
    fault = draw(st.sampled_from(FAULTS)) if draw(st.integers(0, 9)) >= 8 else ""
    lines: list[str] = []
    if draw(st.booleans()):
        lines += [f"# {_one_line(draw(free_text))}" for _ in range(draw(st.integers(1, 2)))]
    name = draw(st.sampled_from(("cell", "my_cell", "Cell2", "lstm", "c")))
    if fault == "odd_name" and draw(st.booleans()):
        name = draw(st.sampled_from(ODD_NAMES))
    description = f' "{_no_quote(draw(free_text))}"' if draw(st.booleans()) else ""
    if fault != "no_cell":
        lines.append(f"cell {name}{description}")
    input_sized = draw(st.integers(0, 3)) == 0  # x[hidden]: readable element-wise
    lines.append("input x[hidden]" if input_sized else "input x")
    if fault == "two_inputs":
        lines.append("input y")
    n_states = draw(st.integers(1, 3))
    states = ["h", "c", "m"][:n_states]
    sizes = {s: "hidden" for s in states}
    if n_states > 1 and draw(st.integers(0, 3)) == 0:
        sizes[states[-1]] = draw(st.sampled_from(("proj", "input")))
    decl = ", ".join(s if sizes[s] == "hidden" and draw(st.booleans()) else f"{s}[{sizes[s]}]"
                     for s in states)
    if fault != "no_state":
        lines.append(f"state {decl}")

    hidden_states = [s for s in states if sizes[s] == "hidden"]
    scope = _Scope(vectors=hidden_states + (["x"] if input_sized else []),
                   operands=["x", *states], leaves={"x", *states})
    n_mid = draw(st.integers(0, 5))
    names = list(draw(st.permutations(NAMES)))[:n_mid]
    if fault == "odd_name" and names:
        names[0] = draw(st.sampled_from(ODD_NAMES))
    statements: list[tuple[str, str]] = []
    first = True
    for target in names:
        scope.taken, scope.biased = set(), False  # a new line
        if first:  # the input is read
            scope.key("linear", "x")
            scope.key("linear", states[0])
            scope.biased = True
        body = draw(_expr(scope, draw(st.integers(1, 3))))
        if first:
            body = f"{draw(st.sampled_from(ACTIVATIONS))}(linear(x, {states[0]}) + {body})"
            first = False
        statements.append((target, body))
        scope.vectors.append(target)
        scope.operands.append(target)
    unread = set(names)
    for s in draw(st.permutations(states)):
        scope.taken, scope.biased = set(), False
        if first and sizes[s] == "hidden":
            scope.key("linear", "x")
            scope.key("linear", states[0])
        if sizes[s] != "hidden":
            body = draw(_linear(scope, 1))
            if draw(st.booleans()):
                body = f"{draw(st.sampled_from(ACTIVATIONS))}({body})"
        else:
            body = draw(_expr(scope, draw(st.integers(1, 3))))
            if first:
                body = f"tanh(linear(x, {states[0]})) * {body}"
                first = False
        statements.append((f"{s}'", body))
        if sizes[s] == "hidden" and draw(st.booleans()):
            scope.vectors.append(f"{s}'")
        scope.operands.append(f"{s}'")
    for target, body in statements:
        unread -= set(re.findall(r"[A-Za-z_]\w*", body))
    if unread:  # every intermediate is read: the last hidden state update reads the rest
        k = max(i for i, (t, _) in enumerate(statements) if t[:-1] in hidden_states
                or not hidden_states)
        t, body = statements[k]
        statements[k] = (t, f"{body} + " + " * ".join(sorted(unread)))

    text_statements = [f"{t} = {b}" for t, b in statements]
    text_statements = _apply_fault(draw, fault, text_statements, names, states)
    order = draw(st.permutations(range(len(text_statements))))
    if draw(st.booleans()):
        output = draw(st.sampled_from([*states, *names])) if fault != "bad_output" else "nope"
        lines.append(f"output {output}")
    elif fault == "bad_output":
        lines.append("output nope")
    if names and draw(st.booleans()):
        target = names[0] if fault != "bad_latex" else "nope"
        latex = _no_quote(draw(st.one_of(st.sampled_from(
            (r"\bar{c}", r"\tilde{\boldsymbol{i}}", "h^{(1)}", r"\alpha_t", "z")), free_text)))
        lines.append(f'latex {target} "{latex}"')
    if fault == "bad_equivalent":
        layer = draw(st.sampled_from(("torch.nn.LSTM", "torch.nn.GRU", "torch.nn.RNN",
                                      "torch.nn.Foo", "a.b")))
        lines.append(f"equivalent {layer} gates {' '.join(names[:4] or ['i'])}")
    lines.append("")
    lines += [text_statements[i] for i in order]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), f"# {_one_line(draw(free_text))}")
    text = "\n".join(lines) + "\n"
    return text.encode("utf-8"), draw(filenames), fault


def _apply_fault(draw, fault: str, stmts: list[str], names: list[str],
                 states: list[str]) -> list[str]:
    k = draw(st.integers(0, len(stmts) - 1))
    s = stmts[k]
    lhs, rhs = s.split(" = ", 1)
    if fault == "unknown_name":
        stmts[k] = f"{lhs} = {rhs} + qq"
    elif fault == "unknown_function":
        stmts[k] = f"{lhs} = sigmod({rhs})"
    elif fault == "arity":
        stmts[k] = f"{lhs} = {draw(st.sampled_from(('tanh', 'max', 'diag', 'layernorm', 'cumax')))}" \
                   f"({rhs}, {rhs}, {rhs})"
    elif fault == "bias_kw":
        kw = draw(st.sampled_from(("bias=true", "bias=1", "bias=false, bias=false", "gain=2")))
        stmts[k] = f"{lhs} = linear(x, {kw}) * {rhs}"
    elif fault == "kw_on_diag":
        stmts[k] = f"{lhs} = diag({states[0]}, bias=false) * {rhs}"
    elif fault == "prime_var":
        stmts[k] = f"{lhs} = {rhs} + x'"
    elif fault == "assign_input":
        stmts.append(f"x = {rhs}")
    elif fault == "twice":
        stmts.append(s)
    elif fault == "no_update":
        del stmts[k]
    elif fault == "cycle" and names:
        stmts[k] = f"{lhs} = {rhs} + {names[-1]}"
        stmts.append(f"{names[-1]} = tanh({lhs.rstrip(chr(39))} + {states[0]})")
    elif fault == "unused":
        stmts.append(f"unused = tanh(linear(x, {states[0]}))")
    elif fault == "paren":
        stmts[k] = f"{lhs} = ({rhs}" if draw(st.booleans()) else f"{lhs} = {rhs})"
    elif fault == "stray":
        ch = draw(st.sampled_from(list("@$;`!?&|{}[]<>:.\\\"") + ["\t\x0c", "\u00a0", "é"]))
        pos = draw(st.integers(0, len(s)))
        stmts[k] = s[:pos] + ch + s[pos:]
    elif fault == "div_zero":
        stmts[k] = f"{lhs} = {rhs} / 0"
    elif fault == "size_mismatch":
        stmts[k] = f"{lhs} = {rhs} * x + linear(x) * {states[-1]}"
    elif fault == "number_only":
        stmts[k] = f"{lhs} = {rhs} * {draw(st.sampled_from(ODD_NUMBERS))}"
    elif fault == "empty_call":
        stmts[k] = f"{lhs} = {rhs} + {draw(st.sampled_from(('linear', 'tanh', 'diag')))}()"
    return stmts


# -- (b) byte-level mutants of the built-in cells ------------------------------------------

BUILTINS = [cells.source(n).encode("utf-8") for n in cells.names()]
TOKENS = [b"'", b"(", b")", b",", b"=", b"#", b'"', b"\n", b"\r", b"\r\n", b"\t", b"\\",
          b"\\\n", b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", "é".encode(), "\u2028".encode(),
          b"\x0c", b"+", b"-", b"*", b"/", b"[", b"]", b"0", b"1e999", b"1e-999", b".", b"..",
          b"x", b"h", b"h'", b"c'", b"linear(", b"diag(", b"layernorm(", b"rmsnorm(",
          b"softmax(", b"cumax(", b"bias=false", b"bias=true", b"weight=W_hh.T", b"weight=",
          b".T", b"bias()", b"scalar(", b"init=", b"sigmoid", b"max(", b"input ", b"state ",
          b"output ", b"cell ",
          b"latex ", b"equivalent torch.nn.LSTM gates i f g o", b"9" * 5000, b"a" * 300]


@st.composite
def mutants(draw) -> tuple[bytes, str, str]:
    """(file bytes, file name, the mutations applied) for a built-in cell after 1-4 edits:
    bytes and tokens inserted, deleted, replaced; lines duplicated, deleted, swapped; lines
    spliced in from another cell; a payload in a comment, the description or a latex
    string; an operand wrapped in nested parentheses or calls."""
    data = draw(st.sampled_from(BUILTINS))
    done = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("insert", "insert", "delete", "replace", "dup_line",
                                   "del_line", "swap_lines", "splice", "payload", "nest")))
        done.append(op)
        data = _mutate(draw, op, data)
    return data, draw(filenames), " ".join(done)


def _mutate(draw, op: str, data: bytes) -> bytes:
    pos = draw(st.integers(0, len(data)))
    lines = data.split(b"\n")
    at = draw(st.integers(0, len(lines) - 1))
    if op == "insert":
        piece = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=4)))
        return data[:pos] + piece + data[pos:]
    if op == "delete":
        return data[:pos] + data[pos + draw(st.integers(1, 8)):]
    if op == "replace":
        piece = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=1)))
        return data[:pos] + piece + data[pos + 1:]
    if op == "dup_line":
        lines.insert(at, lines[at])
    elif op == "del_line":
        del lines[at]
    elif op == "swap_lines":
        other = draw(st.integers(0, len(lines) - 1))
        lines[at], lines[other] = lines[other], lines[at]
    elif op == "splice":
        donor = draw(st.sampled_from(BUILTINS)).split(b"\n")
        start = draw(st.integers(0, len(donor) - 1))
        lines[at:at] = donor[start:start + draw(st.integers(1, 6))]
    elif op == "payload":
        where = draw(st.sampled_from(("header", "description", "latex", "comment")))
        text = draw(free_text)
        text = (_one_line(text) if where in ("header", "comment") else _no_quote(text)).encode()
        if where == "header":
            lines.insert(0, b"# " + text)
        elif where == "comment":
            lines[at] += b"  # " + text
        elif where == "description":
            k = next((i for i, ln in enumerate(lines) if ln.startswith(b"cell ")), 0)
            lines[k] = b" ".join(lines[k].split(b" ")[:2]) + b' "' + text + b'"'
        else:
            k = next((i for i, ln in enumerate(lines) if ln.startswith(b"state ")), 0)
            names = re.findall(rb"^(\w+) =", data, re.M) or [b"h"]
            lines.insert(k + 1, b"latex " + draw(st.sampled_from(names)) + b' "' + text + b'"')
    elif op == "nest":
        depth = draw(st.integers(2, NEST_MAX))
        m = list(re.finditer(rb"linear\(x", data))
        if m:
            k = m[draw(st.integers(0, len(m) - 1))].start()
            end = data.index(b")", k) + 1
            wrap = draw(st.sampled_from((b"(", b"identity(", b"tanh(", b"-(")))
            return data[:k] + wrap * depth + data[k:end] + b")" * depth + data[end:]
    return b"\n".join(lines)


NEST_MAX = int(os.environ.get("GATESPEC_FUZZ_NEST", "40"))
