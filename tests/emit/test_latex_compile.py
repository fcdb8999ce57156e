"""Every built-in cell's documents compile with a real pdflatex: the standalone .tex,
and the maths of the Markdown page. The log must show no error, no undefined control
sequence and no line too wide for the page."""

import re
import subprocess

import pytest
from conftest import ROOT, require_program

from gatespec import cells
from gatespec.emit.latex import render
from gatespec.pipeline import load_source

PROBLEMS = re.compile(r"^!|Undefined control sequence|LaTeX Error|Overfull \\hbox|"
                      r"Missing character|LaTeX Warning", re.M)


def compile_tex(tmp_path, name: str, text: str) -> str:
    pdflatex = require_program("pdflatex")
    (tmp_path / f"{name}.tex").write_text(text, "utf-8")
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error",
                        "-no-shell-escape", f"{name}.tex"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    log = (tmp_path / f"{name}.log").read_text("utf-8", errors="replace")
    problems = [m.group(0) for m in PROBLEMS.finditer(log)]
    assert r.returncode == 0 and not problems, (problems, r.stdout[-3000:])
    assert (tmp_path / f"{name}.pdf").stat().st_size > 1000
    return log


@pytest.mark.parametrize("name", cells.names())
def test_standalone_document_compiles(tmp_path, name):
    compile_tex(tmp_path, name, render(*load_source(name), "tex"))


def markdown_maths(md: str) -> str:
    """The maths of a Markdown page ($$ blocks, inline $...$) as a LaTeX document."""
    md = re.sub(r"```.*?```", "", md, flags=re.S)  # the cell file is code, not maths
    blocks = re.findall(r"^\$\$\n(.*?)\n\$\$$", md, flags=re.S | re.M)
    rest = re.sub(r"^\$\$\n.*?\n\$\$$", "", md, flags=re.S | re.M)
    inline = re.findall(r"\$[^$\n]+\$", rest)
    assert blocks and inline
    body = "\n".join([*(f"\\[\n{b}\n\\]" for b in blocks), *(f"{m}\\par" for m in inline)])
    return ("\\documentclass[11pt]{article}\n\\usepackage[margin=2.5cm]{geometry}\n"
            "\\usepackage{amsmath}\n\\usepackage{amssymb}\n\\usepackage{bm}\n"
            f"\\begin{{document}}\n{body}\n\\end{{document}}\n")


@pytest.mark.parametrize("name", cells.names())
def test_markdown_maths_compiles(tmp_path, name):
    compile_tex(tmp_path, f"{name}_md", markdown_maths(render(*load_source(name), "md")))


def test_a_bad_document_is_caught(tmp_path):
    """The check itself: an undefined control sequence fails it."""
    with pytest.raises(AssertionError, match="Undefined control sequence"):
        compile_tex(tmp_path, "bad", "\\documentclass{article}\\begin{document}"
                    "$\\nosuchmacro x$\\end{document}\n")


def test_learned_scalars_and_biases_compile(tmp_path):
    """γ with its gradient summed over the units (\\sum_j \\bigl[...\\bigr]_j), and b."""
    path = str(ROOT / "tests" / "corpus" / "learned_params.gate")
    tex = render(*load_source(path), "tex")
    assert r"\delta\gamma_{c1} &= \sum_t \sum_j \bigl[" in tex
    compile_tex(tmp_path, "learned_params", tex)
    compile_tex(tmp_path, "learned_params_md", markdown_maths(render(*load_source(path), "md")))
