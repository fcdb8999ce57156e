"""User text is shown, never run: every escaper alone, then arbitrary text (hypothesis) in
every position (header comment, description, file name) through every target. The
generated Python compiles, holds the text verbatim and has the program of a benign
cell; nothing creates the canary file; the other languages keep their structure."""

import ast
import html
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import require_program, require_torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gatespec import __version__
from gatespec.build import build
from gatespec.check import load_module
from gatespec.cli import main
from gatespec.derive import derive
from gatespec.emit import emit_numpy, escape, latex
from gatespec.emit.docs import diagram_text
from gatespec.parse import parse
from gatespec.pipeline import generate
from gatespec.schedule import schedule

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
WHOLE = settings(max_examples=15, deadline=None,  # through the whole pipeline
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=4, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# A file of this name appears only if some generated code runs user text.
CANARY = "gatespec_canary"
PAYLOADS = [
    f'"""; open("{CANARY}", "w"); """',
    f"'''; open('{CANARY}', 'w'); '''",
    f'{{open("{CANARY}", "w")}}',
    f'"; open("{CANARY}", "w"); "',
    f'\\\nopen("{CANARY}", "w")  #',
    f'\ropen("{CANARY}", "w")\r',
    f'\u2028open("{CANARY}", "w")\x00\\N',
    f'\n#define float double\n\\input{{{CANARY}}}\n-->\n```\n<img src=x onerror="{CANARY}">',
    "\\",
    '"',
]


def _text(forbidden: str) -> st.SearchStrategy[str]:
    """Arbitrary text without `forbidden` characters, or a payload with them removed."""
    clean = "".join
    return st.one_of(
        st.text(st.characters(blacklist_characters=forbidden), max_size=40),
        st.sampled_from(PAYLOADS).map(lambda p: clean(c for c in p if c not in forbidden)),
    )


# gatespec reads cell files with universal newlines: in a file, \r ends a line too
HEADER_LINE = _text("\n\r")
DESCRIPTION = _text('"\n\r')  # the grammar's string: no quote, no line break
FILE_STEM = _text("/\x00").filter(lambda s: len(s.encode("utf-8")) < 200)

BODY = "input x\nstate h\nh' = tanh(linear(x, h))\n"


def cell_text(header: list[str], description: str) -> str:
    return "".join(f"#{line}\n" for line in header) + f'cell c "{description}"\n' + BODY


@pytest.fixture(autouse=True)
def canary_folder(tmp_path, monkeypatch):
    """Payloads name the canary relative to the working folder: that is this test's."""
    monkeypatch.chdir(tmp_path)
    yield
    assert not (tmp_path / CANARY).exists(), "user text ran as code"


def write_cell(folder: Path, stem: str, text: str) -> Path:
    path = folder / f"{stem}.gate"
    path.write_text(text, "utf-8")
    return path


def code_shape(source: str) -> str:
    """The program without its strings: equal for a hostile and a benign cell when user
    text changed no code."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


# --- each escaper alone ---------------------------------------------------------------

@FAST
@given(st.text())
def test_python_literals_and_docstrings_hold_the_text(text):
    literal = escape.py_str(text)
    assert "\n" not in literal and "\r" not in literal
    assert ast.literal_eval(literal) == text
    doc = escape.py_doc(text)
    assert ast.literal_eval('"""' + doc + '"""') == text
    assert ast.literal_eval('"""x "' + doc + '" y"""') == 'x "' + text + '" y'  # quoted


_C_ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)")


def c_unquote(literal: str) -> str:
    assert literal[0] == literal[-1] == '"'
    return _C_ESCAPE.sub(lambda m: chr(int(m.group(1)[1:], 16)) if len(m.group(1)) > 1
                         else m.group(1), literal[1:-1])


@FAST
@given(st.text())
@example("a\\")
@example("??/")
def test_c_comment_is_one_ascii_line_that_reads_back(text):
    shown = escape.c_comment(text)
    assert all(" " <= ch <= "~" for ch in shown)
    assert not shown.endswith("\\") and "??" not in shown  # no splice, no trigraph
    assert c_unquote(shown) == text


def md_unescape(text: str) -> str:
    """What a CommonMark renderer shows for escaped text: backslash escapes, then
    character references."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text))


def shown_in_html(text: str) -> str:
    """The characters an HTML page shows for `text` (NUL is U+FFFD in HTML)."""
    return "".join(ch if ch.isprintable() else html.unescape(f"&#x{ord(ch):x};") for ch in text)


@FAST
@given(st.text())
@example("1. item")
@example("    code")
@example("# heading")
def test_markdown_text_has_no_markup_and_reads_back(text):
    shown = escape.md_text(text)
    assert "<" not in shown and ">" not in shown and "\n" not in shown and "\r" not in shown
    assert not shown.startswith((" ", "#", "-", "+", "=", "*", ">"))
    assert not re.match(r"\d+[.)]", shown)
    assert md_unescape(shown) == shown_in_html(text)


@FAST
@given(st.text())
def test_markdown_fence_cannot_be_closed_by_the_text(text):
    block = escape.md_fence(text).split("\n")
    fence = block[0]
    assert set(fence) == {"`"} and block[-1] == fence
    inner = block[1:-1]
    assert "\n".join(inner) == text
    assert not any(line.strip().startswith(fence) for line in re.split("\r\n|\r|\n", text))


@FAST
@given(st.text())
def test_html_text_is_text_that_reads_back(text):
    shown = escape.html_text(text)
    assert "<" not in shown and ">" not in shown and "\n" not in shown
    assert html.unescape(shown) == shown_in_html(text)


_LATEX_COMMANDS = {r"\&", r"\%", r"\$", r"\#", r"\_", r"\{", r"\}", r"\textbackslash",
                   r"\textasciitilde", r"\textasciicircum", r"\textless", r"\textgreater",
                   r"\textbar", r"\ttfamily", r"\char", r"\textasciigrave", r"\'", r"\"",
                   r"\times"}


@FAST
@given(st.text())
def test_latex_text_uses_only_printing_commands(text):
    shown = escape.latex_text(text)
    assert all(" " <= ch <= "~" for ch in shown)
    assert set(re.findall(r"\\[A-Za-z]+|\\.", shown)) <= _LATEX_COMMANDS
    comment = escape.latex_comment(text)
    assert all(" " <= ch <= "~" for ch in comment)


def test_latex_text_compiles_and_reads_nothing(tmp_path):
    pdflatex = require_program("pdflatex")
    hostile = "".join(chr(c) for c in range(0, 128)) + "é–×\u2028\U0001f600" + PAYLOADS[7]
    body = "\n\n".join([escape.latex_text(hostile), escape.latex_text(r"\input{/etc/hostname}"),
                        r"\texttt{" + escape.latex_text(hostile) + "}"])
    (tmp_path / "t.tex").write_text("% " + escape.latex_comment(hostile) + "\n"
                                    "\\documentclass{article}\n\\begin{document}\n"
                                    f"{body}\n\\end{{document}}\n", "utf-8")
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error",
                        "-no-shell-escape", "t.tex"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:]
    log = (tmp_path / "t.log").read_text("utf-8", errors="replace")
    assert "/etc/hostname" not in log.replace(r"\input{/etc/hostname}", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.aux", "t.log", "t.pdf", "t.tex"]


@WHOLE
@given(st.text(max_size=30))
def test_dot_label_and_name_read_back(text):
    dot = require_program("dot")
    graph = f"digraph {escape.dot_string(text)} {{ n [label=<{escape.dot_html(text)}>]; }}"
    r = subprocess.run([dot, "-Tsvg"], input=graph.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    svg = ET.fromstring(r.stdout)  # well-formed XML
    label = [e.text for e in svg.iter("{http://www.w3.org/2000/svg}text")]
    shown = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256
                    else ascii(ch)[1:-1] for ch in text)  # invisible ones as escapes
    if shown.strip():  # Graphviz draws runs of spaces as no-break spaces
        assert [t.replace("\xa0", " ") for t in label] == [shown]
    r = subprocess.run([dot, "-Tcanon"], input=graph.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_terminal_text_has_no_control_characters():
    assert escape.terminal_text("a\x1b[2Jb\u2028") == "a\\x1b[2Jb\\u2028"


def test_identifiers_only_as_code():
    assert escape.ident("h_2") == "h_2"
    with pytest.raises(Exception, match="not an identifier"):
        escape.ident("x; import os")


# --- arbitrary text through every target ------------------------------------------------

def python_targets(path: Path) -> dict[str, str]:
    files = {}
    for target in ("numpy", "torch", "triton", "cuda", "onnx", "jax"):
        files.update(generate(str(path), target))
    return files


@pytest.fixture(scope="module")
def benign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benign")
    path = write_cell(folder, "benign", cell_text(["h"], "d"))
    return python_targets(path)


def docstring_parts(doc: str, cf, stem: str, title: str) -> None:
    head = f"{title}{cf.description}\n\nGenerated by gatespec {__version__} from {stem}.gate (sha256 "
    assert doc.startswith(head)
    if cf.header:
        assert f"\n\n{cf.header}\n\nParameters" in doc


@WHOLE
@given(header=st.lists(HEADER_LINE, min_size=1, max_size=3), description=DESCRIPTION,
       stem=FILE_STEM)
def test_python_targets_hold_user_text_verbatim_and_run_none(
        tmp_path_factory, benign, header, description, stem):
    folder = tmp_path_factory.mktemp("cell")
    path = write_cell(folder, stem, cell_text(header, description))
    cf = parse(path.read_text("utf-8"), str(path))
    files = python_targets(path)
    for name, source in files.items():
        if name.endswith(".py"):
            compile(source, name, "exec")
            assert code_shape(source) == code_shape(benign[name]), name
    docstring_parts(ast.get_docstring(ast.parse(files["c_numpy.py"]), clean=False), cf, stem, "c: ")
    tree = ast.parse(files["c_torch.py"])
    docstring_parts(ast.get_docstring(tree, clean=False), cf, stem, "c for PyTorch: ")
    docstring_parts(ast.get_docstring(ast.parse(files["c_onnx.py"]), clean=False), cf, stem,
                    "c as an ONNX model: ")
    constants = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                 and node.targets[0].id in ("CELL_NAME", "SOURCE_NAME")}
    assert constants == {"CELL_NAME": "c", "SOURCE_NAME": f"{stem}.gate"}
    # the .cu file: the lines of the benign one; only the header names the file
    cu, benign_cu = files["c_cuda.cu"].split("\n"), benign["c_cuda.cu"].split("\n")
    assert len(cu) == len(benign_cu)
    differ = [k for k, (a, b) in enumerate(zip(cu, benign_cu, strict=True)) if a != b]
    assert differ == [2]
    quoted = re.fullmatch(r"// Generated by gatespec \S+ from (\".*\") \(sha256 \w+\)\.", cu[2])
    assert quoted and c_unquote(quoted.group(1)) == f"{stem}.gate"

    module = load_module(files["c_numpy.py"], "c_escape_numpy")
    assert module.__doc__ == ast.get_docstring(ast.parse(files["c_numpy.py"]), clean=False)
    params = module.init_params({"input": 3, "hidden": 2}, np.random.default_rng(0))
    x = np.ones((2, 1, 3))
    outputs, final, cache = module.forward(x, None, params)
    module.backward(np.ones_like(outputs), (np.zeros((1, 2)),), cache, params)
    assert main(["check", str(path)]) == 0  # imports the module it generates


@SLOW
@given(description=DESCRIPTION, stem=FILE_STEM)
def test_torch_messages_show_the_file_name(tmp_path_factory, description, stem):
    require_torch()
    import torch

    folder = tmp_path_factory.mktemp("cell")
    path = write_cell(folder, stem, cell_text([], description))
    module = load_module(generate(str(path), "torch")["c_torch.py"], "c_escape_torch")
    with pytest.raises(TypeError) as refused:
        module.C.from_torch(torch.nn.RNN(3, 2))
    assert f": {stem}.gate declares no equivalent" in str(refused.value)
    with pytest.raises(TypeError) as refused:
        module.C(3, 2).to_torch()
    assert str(refused.value).endswith(f"no equivalent torch.nn layer ({stem}.gate)")
    assert module.C.__doc__.startswith(parse(path.read_text("utf-8")).description + "\n")


def fenced(page: str) -> tuple[str, str]:
    """(the page without its cell-file block, the block's text)."""
    m = re.search(r"^## Cell file\n\n(`{3,})\n(.*)\n\1\n", page, re.S | re.M)
    assert m, page[-500:]
    return page[:m.start()] + page[m.end():], m.group(2)


@pytest.fixture(scope="module")
def benign_docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benign")
    path = write_cell(folder, "benign", cell_text(["h"], "d"))
    text = path.read_text("utf-8")
    return {fmt: latex.render(text, str(path), fmt, diagram="c") for fmt in ("md", "tex")}


@WHOLE
@given(header=st.lists(HEADER_LINE, max_size=3), description=DESCRIPTION, stem=FILE_STEM)
def test_documents_keep_their_structure(tmp_path_factory, benign_docs, header, description,
                                        stem):
    folder = tmp_path_factory.mktemp("cell")
    text = cell_text(header, description)
    path = write_cell(folder, stem, text)
    cf = parse(text, str(path))
    md = latex.render(text, str(path), "md", diagram="c")
    rest, block = fenced(md)
    assert block == text.rstrip("\n")
    benign_rest, _ = fenced(benign_docs["md"])
    # user text adds no line and no markup: `<` only where the benign page has one
    assert rest.count("\n") == benign_rest.count("\n")
    assert rest.count("<") == benign_rest.count("<")
    lines = rest.split("\n")
    assert md_unescape(lines[lines.index("# Cell <code>c</code>") + 2]) == shown_in_html(cf.description)
    source = next(ln for ln in lines if ln.startswith("Source: "))
    assert md_unescape(source.removeprefix("Source: <code>").removesuffix("</code>")) == \
        shown_in_html(str(path))

    tex = latex.render(text, str(path), "tex")
    assert tex.count("\n") == benign_docs["tex"].count("\n")
    assert tex.split("\n")[0].startswith("% Generated by gatespec")

    dot_program = require_program("dot")
    canon = [subprocess.run([dot_program, "-Tcanon"], input=d.encode(), capture_output=True,
                            timeout=30, check=True).stdout
             for d in (diagram_text(text, str(path)), diagram_text(BENIGN_DOT_CELL, "b.gate"))]
    assert canon[0] == canon[1]  # the file name in the comment changed nothing


BENIGN_DOT_CELL = cell_text([], "d")


@SLOW
@given(description=DESCRIPTION, stem=FILE_STEM)
def test_hostile_documents_compile_and_draw(tmp_path_factory, description, stem):
    pdflatex = require_program("pdflatex")
    folder = tmp_path_factory.mktemp("doc")
    text = cell_text([], description)
    path = write_cell(folder, stem, text)
    (folder / "c.tex").write_text(latex.render(text, str(path), "tex"), "utf-8")
    path.unlink()
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error",
                        "-no-shell-escape", "c.tex"], cwd=folder, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:]
    assert sorted(p.name for p in folder.iterdir()) == ["c.aux", "c.log", "c.pdf", "c.tex"]
    svg = subprocess.run([require_program("dot"), "-Tsvg"], capture_output=True, timeout=30,
                         input=diagram_text(text, str(path)).encode(), check=True).stdout
    ET.fromstring(svg)


# --- the reproducers ----------------------------------------------------------------

def test_header_comment_closing_the_docstring_does_not_run(tmp_path):
    path = write_cell(tmp_path, "pwn", cell_text(
        [f' """; import os; os.system("touch {CANARY}"); """'], "d"))
    assert main(["check", str(path)]) == 0
    assert main(["generate", str(path), "-o", str(tmp_path / "out")]) == 0
    load_module((tmp_path / "out" / "c_numpy.py").read_text("utf-8"), "c_pwn")


def test_file_names_with_quotes_and_braces_do_not_run(tmp_path):
    require_torch()
    import torch

    for stem in ['x"""; open("gatespec_canary", "w"); """',
                 "{__import__('os').system('touch gatespec_canary')}"]:
        path = write_cell(tmp_path, stem, cell_text([], "d"))
        assert main(["check", str(path)]) == 0
        module = load_module(generate(str(path), "torch")["c_torch.py"], "c_pwn_torch")
        with pytest.raises(TypeError, match="declares no equivalent"):
            module.C.from_torch(torch.nn.RNN(3, 2))


def test_newline_in_a_file_name_adds_no_line_to_the_cu_file(tmp_path):
    path = write_cell(tmp_path, "x\n#define float double\n", cell_text([], "d"))
    cu = generate(str(path), "cuda")["c_cuda.cu"]
    assert "\n#define" not in cu
    assert '"x\\x0a#define float double\\x0a.gate"' in cu


@pytest.mark.parametrize("text", [cell_text([], "see \\N"), cell_text(["a\x00b"], "d"),
                                  cell_text(["\\"], "ends with \\")])
def test_backslashes_and_nul_compile(tmp_path, text):
    path = write_cell(tmp_path, "c", text)
    for name, source in python_targets(path).items():
        if name.endswith(".py"):
            compile(source, name, "exec")
    assert main(["check", str(path)]) == 0


def test_carriage_return_in_text_from_memory():
    """Text parsed from memory (not a file) may hold a lone \r: it stays one."""
    text = cell_text(["a\rb"], "c\rd")
    plan = schedule(derive(build(parse(text, "x\r.gate"))))
    doc = ast.get_docstring(ast.parse(emit_numpy(plan, "x\r.gate")), clean=False)
    assert doc.startswith("c: c\rd\n\nGenerated by gatespec") and "\n\na\rb\n\n" in doc
    assert "x\r.gate (sha256" in doc


def test_html_in_a_description_is_text_in_markdown(tmp_path):
    path = write_cell(tmp_path, "c", cell_text([], "<img src=x onerror=alert(1)>"))
    page = latex.render(path.read_text("utf-8"), str(path), "md")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img" not in fenced(page)[0]


def test_templates_print_user_text_only_through_a_filter():
    """A variable that holds user text is never printed bare in a template."""
    root = Path(__file__).resolve().parents[2] / "templates"
    raw = re.compile(r"{{-?\s*(cell\.(description|header)|source_name|source|description|mark"
                     r"|source_text)\s*-?}}")
    found = [f"{p}: {m.group(0)}" for p in root.rglob("*.jinja")
             for m in raw.finditer(p.read_text("utf-8"))]
    assert found == []

