"""The `gatespec` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gatespec import __version__, cells, pipeline
from gatespec.errors import SpecError, UsageError
from gatespec.files import (
    cleanup_on_signals,
    make_folder,
    refuse_foreign,
    write_all,
    write_atomically,
)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with cleanup_on_signals():  # a kill while writing leaves no temporary behind
            return args.run(args)
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"gatespec: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug in gatespec: say so plainly (GATESPEC_DEBUG=1 re-raises)
        if os.environ.get("GATESPEC_DEBUG"):
            raise
        print(f"gatespec: internal error (a bug in gatespec, please report it): "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gatespec",
        description="Recurrent cells from a small text language to exact, fast code "
        "with derived gradients.",
    )
    p.add_argument("--version", action="version", version=f"gatespec {__version__}")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="write generated code for cells",
                       description="Write generated code for cells (built-in names or .gate "
                       "files). Nothing is written unless every cell succeeds, and a file "
                       "that gatespec did not generate is never overwritten.")
    g.add_argument("specs", nargs="*", metavar="SPEC_OR_NAME", help="a .gate file or a built-in cell")
    g.add_argument("--all", action="store_true", help="every built-in cell")
    g.add_argument("--target", default="numpy", choices=pipeline.TARGETS, help="default: numpy")
    g.add_argument("-o", "--output", default=".", metavar="DIR", help="output folder (default: .)")
    g.set_defaults(run=_generate)

    ls = sub.add_parser("list", help="list the built-in cells",
                        description="List the built-in cells with their descriptions.")
    ls.set_defaults(run=_list)

    sh = sub.add_parser("show", help="print the derived equations and parameter table",
                        description="Print a cell's parameters, its forward statements as "
                        "scheduled and its derived backward (adjoint) statements.")
    sh.add_argument("spec", metavar="SPEC_OR_NAME")
    sh.set_defaults(run=_show)

    ck = sub.add_parser("check", help="check derived gradients against finite differences",
                        description="Generate the NumPy code, run it on random float64 data "
                        "and compare its gradients with central finite differences. Exit 1 "
                        "if the worst relative error is above the tolerance.")
    ck.add_argument("specs", nargs="*", metavar="SPEC_OR_NAME")
    ck.add_argument("--all", action="store_true", help="every built-in cell")
    ck.add_argument("--tol", type=float, default=1e-6, help="default: 1e-6")
    ck.add_argument("--seed", type=int, default=0,
                    help="seed of the random data, weights and loss weighting (default: 0)")
    ck.set_defaults(run=_check)

    lx = sub.add_parser("latex", help="print a cell's equations in the article's notation",
                        description="Print a cell's forward equations (and with --backward "
                        "its derived gradients) as a standalone LaTeX document or a "
                        "Markdown page.")
    lx.add_argument("spec", metavar="SPEC_OR_NAME")
    lx.add_argument("--backward", action="store_true", help="also the derived gradients")
    lx.add_argument("--format", choices=("tex", "md"),
                    help="default: md for an -o FILE ending in .md, else tex")
    lx.add_argument("-o", "--output", metavar="FILE", help="write FILE instead of printing")
    lx.set_defaults(run=_latex)

    bd = sub.add_parser("build", help="build the C++ CPU loop of cells ahead of first use",
                        description="Compile each cell's C++ time loop (--target cpp) into "
                        "the build cache (GATESPEC_CACHE_DIR, default ~/.cache/gatespec/cpp), "
                        "where the generated <cell>_cpp.py finds it: the first forward pass "
                        "then starts at once. Needs torch and a C++ compiler (CXX, or g++).")
    bd.add_argument("specs", nargs="*", metavar="SPEC_OR_NAME")
    bd.add_argument("--all", action="store_true", help="every built-in cell")
    bd.set_defaults(run=_build)

    dg = sub.add_parser("diagram", help="draw a cell's data flow (Graphviz)",
                        description="Print a cell's data flow as a Graphviz DOT graph, or "
                        "write it to FILE: .dot, or .svg/.png/.pdf drawn by Graphviz's dot.")
    dg.add_argument("spec", metavar="SPEC_OR_NAME")
    dg.add_argument("-o", "--output", metavar="FILE", help="write FILE instead of printing DOT")
    dg.set_defaults(run=_diagram)
    return p


def _specs(args) -> list[str]:
    specs = list(args.specs) + (cells.names() if args.all else [])
    if not specs:
        raise UsageError("name at least one cell or .gate file, or pass --all")
    return specs


def _generate(args) -> int:
    files: dict[str, str] = {}
    for spec in _specs(args):
        for name, text in pipeline.generate(spec, args.target).items():
            if name in files:  # two cells of one name would overwrite each other's files
                raise UsageError(f"two of the cells given would both write {name}: "
                                 "cells need distinct names")
            files[name] = text
    for path in write_all(Path(args.output), files):  # refuses before writing anything
        print(path)
    if args.target == "markdown" and not _has_dot():
        print("gatespec: warning: Graphviz's `dot` is not installed, so the pages show no "
              "diagram, only the command that draws it (`gatespec diagram CELL -o CELL.svg`); "
              "install Graphviz (e.g. apt-get install graphviz) and generate again",
              file=sys.stderr)
    return 0


def _has_dot() -> bool:
    from gatespec.emit import diagram

    return diagram.has_dot()


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as exc:  # a name too long, a loop of links
        raise UsageError(f"cannot use {path}: {exc.strerror or exc}") from None


def _list(args) -> int:
    rows = []
    for name in cells.names():
        text, path = pipeline.load_source(name)
        rows.append((name, pipeline.parse(text, path).description))
    width = max(len(n) for n, _ in rows)
    for name, desc in rows:
        print(f"{name.ljust(width)}  {desc}")
    return 0


def _show(args) -> int:
    from gatespec.show import render_plan

    print(render_plan(pipeline.plan_for(args.spec)), end="")
    return 0


def _check(args) -> int:
    from gatespec.check import finite_difference_check, load_module

    failed = False
    for spec in _specs(args):
        (name, text), = pipeline.generate(spec, "numpy").items()
        result = finite_difference_check(load_module(text, name[:-3]), seed=args.seed,
                                         tol=args.tol)
        if result.problem:
            failed = True
            print(f"FAIL {spec}: {result.problem}")
            continue
        ok = result.worst <= args.tol and result.step_error <= 1e-12
        failed |= not ok
        unchecked = (f"; {result.unchecked} entries not compared (a step of their finite "
                     "difference leaves the cell's domain)" if result.unchecked else "")
        print(f"{'ok  ' if ok else 'FAIL'} {spec}: worst relative gradient error "
              f"{result.worst:.2e} ({result.worst_name}), step() vs forward() "
              f"{result.step_error:.1e}{unchecked}")
    return 1 if failed else 0


def _build(args) -> int:
    from gatespec.cpp_build import build_cells

    for spec, path, seconds in build_cells(_specs(args)):
        print(f"{path}  ({spec}: {'cached' if seconds is None else f'built in {seconds:.1f} s'})")
    return 0


def _latex(args) -> int:
    from gatespec.emit.docs import format_for
    from gatespec.emit.latex import render

    fmt = format_for(args.output, args.format)
    text = render(*pipeline.load_source(args.spec), fmt, backward=args.backward)
    return _write_or_print(text, args.output)


def _diagram(args) -> int:
    from gatespec.emit.docs import diagram_output

    return _write_or_print(diagram_output(*pipeline.load_source(args.spec), args.output),
                           args.output)


def _write_or_print(data: str | bytes, output: str | None) -> int:
    """Print, or write FILE; a text file that gatespec did not write is never replaced."""
    if output is None:
        print(data, end="")
        return 0
    path = Path(output)
    if _exists(path) and path.is_dir():
        raise UsageError(f"{path} is a folder; name the file to write")
    if _exists(path.parent) and not path.parent.is_dir():
        raise UsageError(f"{path.parent} is not a folder")
    refuse_foreign(path)
    make_folder(path.parent)
    write_atomically(path, data)
    print(path)  # as generate does: the path written
    return 0


if __name__ == "__main__":
    sys.exit(main())
