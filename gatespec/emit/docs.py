"""The documentation targets: files for `generate --target latex|markdown`, and the
outputs of `gatespec latex` and `gatespec diagram`."""

from __future__ import annotations

import shlex
from pathlib import Path

from gatespec import GENERATED_MARK, cells
from gatespec.build import build
from gatespec.emit import diagram, latex
from gatespec.emit.emit import render as render_template
from gatespec.emit.python_module import VERSION
from gatespec.errors import UsageError
from gatespec.parse import parse

DOC_TARGETS = ("latex", "markdown")
DIAGRAM_FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".pdf": "pdf"}


def doc_files(text: str, path: str, target: str) -> dict[str, str]:
    """`<cell>.tex`; or `<cell>.md` with the diagram beside it: `<cell>.dot`, and
    `<cell>.svg` when Graphviz is installed (the page shows the .svg, links the .dot;
    without Graphviz it says how to draw the .svg instead of showing one)."""
    name = parse(text, path).name
    if target == "latex":
        return {f"{name}.tex": latex.render(text, path, "tex")}
    drawn = diagram.has_dot()
    files = {f"{name}.md": latex.render(text, path, "md", diagram=name,
                                        draw_with=None if drawn else draw_command(path, name))}
    dot = diagram_text(text, path)
    files[f"{name}.dot"] = dot
    if drawn:
        files[f"{name}.svg"] = diagram.svg(dot)
    return files


def draw_command(path: str, name: str) -> str:
    """The command that draws `<name>.svg` from the cell at `path` (a built-in by its name)."""
    builtin = path == f"gatespec/cells/{name}.gate" and name in cells.names()
    return f"gatespec diagram {name if builtin else shlex.quote(path)} -o {name}.svg"


def index_page() -> str:
    """docs/cells/README.md: the list of the built-in cells' pages."""
    rows = []
    for name in cells.names():
        cf = parse(cells.source(name), f"gatespec/cells/{name}.gate")
        rows.append({"name": name, "description": cf.description})
    return render_template("markdown/index.md.jinja",
                           {"mark": f"{GENERATED_MARK} {VERSION}; do not edit",
                            "cells": rows})


def diagram_text(text: str, path: str) -> str:
    cf = parse(text, path)
    return diagram.dot_source(cf, build(cf))


def format_for(output: str | None, given: str | None) -> str:
    """`gatespec latex`: --format, else the output file's extension, else tex."""
    if given:
        return given
    return "md" if output and Path(output).suffix.lower() == ".md" else "tex"


def diagram_output(text: str, path: str, output: str | None) -> str | bytes:
    """`gatespec diagram`: DOT text, or the drawing the output file's extension asks for."""
    dot = diagram_text(text, path)
    if output is None:
        return dot
    suffix = Path(output).suffix.lower()
    fmt = DIAGRAM_FORMATS.get(suffix)
    if fmt is None:
        raise UsageError(f"cannot write a diagram as '{suffix or output}': "
                         f"use {', '.join(DIAGRAM_FORMATS)}")
    if fmt == "dot":
        return dot
    if fmt == "svg":
        return diagram.svg(dot)
    if fmt == "png":
        return diagram.png(dot)
    return diagram.render(dot, fmt)  # a PDF carries no mark: an existing one is never replaced
