"""Fuzzing (issue 9): cell files written from the grammar (mostly valid, some with one
deliberate mistake) and byte-level mutants of the built-in cells, with injection payloads
in comments, descriptions, latex strings and file names. Each input goes in-process
through `generate` for every target, `latex --backward`, `show`, `diagram` and `check`
(which imports and runs the generated NumPy module), and must either pass all of them or be
refused by all of them with `file:line:col: error:`, the line and a caret; never a
traceback, an exit 3, a run over its time budget, user text that runs (a canary file) or
that lands in generated code. tests/fuzzing.py says exactly what is asserted (`problems`).

The CI run is small and reproducible (derandomized, no example database). A long run:
    GATESPEC_FUZZ_EXAMPLES=3000 python -m pytest tests/test_fuzz.py -x
or, to collect every failure class with a minimal reproducer instead of stopping at one:
    python bench/fuzz.py --examples 3000
"""

import os
import tempfile
from pathlib import Path

from fuzzing import (
    MARK,
    Outcome,
    c_problem,
    call,
    doc_problem,
    grammar_cells,
    message_problem,
    mutants,
    problems,
    python_problem,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.configuration import set_hypothesis_home_dir

from gatespec import cells

EXAMPLES = int(os.environ.get("GATESPEC_FUZZ_EXAMPLES", "0"))
BUDGET = float(os.environ.get("GATESPEC_FUZZ_BUDGET", "20"))  # seconds per command

# Hypothesis's pytest plugin writes a patch of failing examples under its home folder
# (.hypothesis/ in the working directory): keep it out of the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "gatespec-hypothesis")

# CI: the same examples every run, nothing stored (no database, no explain phase, which
# writes .hypothesis/patches), no shrinking, whose hundreds of reruns would cost minutes on
# a failure; a long run shrinks what it finds to a small example.
_SETTINGS = dict(deadline=None, database=None, derandomize=not EXAMPLES,
                 phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if EXAMPLES else [])],
                 suppress_health_check=list(HealthCheck))


def _report(outcome: Outcome, data: bytes, filename: str, what: str) -> str:
    lines = [f"file name {filename!r}, {what}", data.decode("utf-8", "backslashreplace")]
    lines += [str(p) for p in outcome.problems]
    return "\n".join(lines)


@settings(max_examples=EXAMPLES or 25, **_SETTINGS)
@given(grammar_cells())
def test_cells_from_the_grammar(case):
    data, filename, fault = case
    outcome = problems(data, filename, BUDGET)
    assert not outcome.problems, _report(outcome, data, filename, f"fault {fault or 'none'}")


@settings(max_examples=EXAMPLES or 50, **_SETTINGS)
@given(mutants())
def test_mutants_of_the_builtin_cells(case):
    data, filename, edits = case
    outcome = problems(data, filename, BUDGET)
    assert not outcome.problems, _report(outcome, data, filename, f"edits {edits}")


# -- the judge itself: it passes what is right and catches what is wrong --------------------

def test_a_builtin_cell_and_a_located_mistake_pass():
    assert not problems(cells.source("srnn").encode(), "srnn.gate").problems
    bad = b"cell bad\ninput x\nstate h\nh' = tanh(linear(x, h) + q)\n"
    outcome = problems(bad, "bad.gate")
    assert not outcome.problems and set(outcome.codes.values()) == {2}


def test_messages_are_judged_by_place_line_and_caret():
    text = "cell a\nh' = q\n"
    good = "a.gate:2:6: error: unknown name 'q'\n    h' = q\n         ^\n"
    assert message_problem(good, "a.gate", text) is None
    assert "caret" in message_problem(good.replace("   ^", "  ^"), "a.gate", text)
    assert "shown line" in message_problem(good.replace("h' = q\n", "h' = z\n", 1), "a.gate",
                                           text)
    assert "no file:line:col" in message_problem("error: unknown name 'q'\n", "a.gate", text)
    assert message_problem("gatespec: error: cannot read a.gate: not UTF-8 text (byte 3)\n",
                           "a.gate", None) is None
    assert message_problem(good, "a.gate", None) is not None


def test_user_text_outside_strings_and_comments_is_caught():
    assert python_problem(f'"""doc {MARK}"""\nx = 1  # {MARK}\n') is None
    assert "f-string" in python_problem(f'x = f"{{1}} {MARK}"\n')
    assert "NAME" in python_problem(f'"""doc"""; {MARK}\n')
    assert "compile" in python_problem('"""\\N"""\n')
    assert c_problem(f"// {MARK}\nint x; /* {MARK} */\n") is None
    assert "C++ code" in c_problem(f"// a\n#define float double {MARK}\n")
    assert "backslash" in c_problem("// a \\\nint x;\n")
    assert doc_problem(".tex", "\\usepackage{a}\n" * 4 + "\\documentclass{b}") is None
    assert "\\input" in doc_problem(".tex", "\\input{/etc/hostname}")
    assert "HTML" in doc_problem(".md", "<!-- ours -->\n<img src=x onerror=alert(1)>")


def test_a_run_over_its_budget_is_stopped():
    rc, _, _, seconds, _ = call(["check", "lstm"], 0.05)
    assert rc is None and seconds < 5
