"""`generate --target markdown` without Graphviz: a warning on stderr, and pages that say
how to draw the diagram instead of embedding an .svg that was never drawn."""

import re

from conftest import require_program

from gatespec.cli import main
from gatespec.emit import diagram
from gatespec.emit.escape import md_code


def _no_dot(monkeypatch):
    real = diagram.shutil.which
    monkeypatch.setattr(diagram.shutil, "which", lambda name: None if name == "dot" else real(name))


def test_markdown_without_dot(tmp_path, capsys, monkeypatch):
    _no_dot(monkeypatch)
    out = tmp_path / "md"
    assert main(["generate", "lstm", "--target", "markdown", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["lstm.dot", "lstm.md"]
    err = capsys.readouterr().err
    assert "warning: Graphviz's `dot` is not installed" in err
    page = (out / "lstm.md").read_text("utf-8")
    assert ".svg)" not in page  # no image of a file that is not there
    assert ("Install Graphviz and draw it beside this page with "
            "<code>gatespec diagram lstm -o lstm.svg</code>.") in page
    assert "[lstm.dot](lstm.dot)" in page


def test_a_cell_file_is_named_by_its_path(tmp_path, capsys, monkeypatch):
    _no_dot(monkeypatch)
    cell = tmp_path / "my cells" / "mine.gate"
    cell.parent.mkdir()
    cell.write_text('cell mine "a small cell"\ninput x\nstate h\n\nh\' = tanh(linear(x, h))\n',
                    "utf-8")
    assert main(["generate", str(cell), "--target", "markdown", "-o", str(tmp_path / "o")]) == 0
    page = (tmp_path / "o" / "mine.md").read_text("utf-8")
    # quoted for the shell (the folder has a space), escaped for Markdown (tmp_path has _)
    assert md_code(f"gatespec diagram '{cell}' -o mine.svg") in page


def test_markdown_with_dot_embeds_the_drawing(tmp_path, capsys):
    require_program("dot")
    out = tmp_path / "md"
    assert main(["generate", "lstm", "--target", "markdown", "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    page = (out / "lstm.md").read_text("utf-8")
    assert re.search(r"!\[data flow of lstm\]\(lstm\.svg\)", page)
    assert (out / "lstm.svg").exists() and "not drawn" not in page
