"""docs/cells/ holds the documentation page of every built-in cell (Markdown, with its
diagram as DOT and as SVG) and an index; they must be current.

Run `python -m pytest --update-golden` after changing a cell or the printers, with
Graphviz installed so the SVG diagrams are redrawn, and review the diff. The SVG is
checked through the hash of the DOT text it was drawn from, so this test needs no
Graphviz and does not depend on its version.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROOT

from gatespec import cells
from gatespec.emit import diagram
from gatespec.emit.docs import index_page
from gatespec.pipeline import generate

DOCS = ROOT / "docs" / "cells"


def _check(path, text, update):
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    assert path.exists(), f"{path} is missing: run pytest --update-golden"
    assert path.read_text("utf-8") == text, f"{path} is stale: run pytest --update-golden"


@pytest.mark.parametrize("name", cells.names())
def test_cell_page_is_current(name, update_golden):
    files = generate(name, "markdown")
    for fname in (f"{name}.md", f"{name}.dot"):
        _check(DOCS / fname, files[fname], update_golden)
    svg = DOCS / f"{name}.svg"
    if update_golden and f"{name}.svg" in files:
        svg.write_text(files[f"{name}.svg"], "utf-8")
    assert svg.exists(), f"{svg} is missing: run pytest --update-golden with Graphviz installed"
    drawn_from = diagram.svg_source_hash(svg.read_text("utf-8"))
    assert drawn_from == diagram.dot_hash(files[f"{name}.dot"]), (
        f"{svg} was drawn from another {name}.dot: run pytest --update-golden with Graphviz")


def test_index_is_current(update_golden):
    _check(DOCS / "README.md", index_page(), update_golden)


def test_no_stray_docs_files():
    expected = {f"{n}.{ext}" for n in cells.names() for ext in ("md", "dot", "svg")}
    present = {p.name for p in DOCS.iterdir()} - {"README.md"}
    assert present == expected


def test_documents_are_identical_across_hash_seeds(tmp_path):
    """SymPy's sets iterate in hash order; the printed equations must not."""

    def documents(seed):
        out = tmp_path / f"seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)}
        for target in ("latex", "markdown"):
            subprocess.run([sys.executable, "-m", "gatespec", "generate", "--all", "--target",
                            target, "-o", str(out)], check=True, env=env, capture_output=True)
        return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".svg"}

    with ThreadPoolExecutor(max_workers=2) as pool:  # the two seeds side by side
        outputs = list(pool.map(documents, (1, 4242)))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3 * len(cells.names())
