"""The driver: one line per stage."""

from __future__ import annotations

import re
from pathlib import Path

from gatespec import cells
from gatespec.build import build
from gatespec.derive import derive
from gatespec.emit import emit_numpy, emit_torch
from gatespec.emit.docs import DOC_TARGETS
from gatespec.emit.emit import emit_cpp, emit_cuda, emit_jax, emit_onnx, emit_triton
from gatespec.errors import CheckError, UsageError
from gatespec.parse import parse
from gatespec.schedule import Plan, schedule

__all__ = ["generate", "generate_text", "load_source", "parse", "plan_for"]

TARGETS = ("numpy", "torch", "triton", "cuda", "cpp", "onnx", "jax", *DOC_TARGETS)


def load_source(spec: str) -> tuple[str, str]:
    """A built-in cell name or a path to a .gate file → (text, display path)."""
    path = Path(spec)
    # a built-in name wins over a folder of the same name (`generate lstm -o lstm` makes one)
    if spec.endswith(".gate") or path.is_file() or (path.exists() and not cells.is_builtin(spec)):
        try:
            # utf-8-sig: a byte-order mark some editors write is not part of the text
            return path.read_text("utf-8-sig"), spec
        except OSError as exc:
            raise UsageError(f"cannot read {spec}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"cannot read {spec}: not UTF-8 text (byte {exc.start})") from None
    if cells.is_builtin(spec):
        return cells.source(spec), f"gatespec/cells/{cells.canonical(spec)}.gate"
    raise UsageError(f"'{spec}' is neither a .gate file nor a built-in cell "
                     f"(built-in: {', '.join(cells.names())})")


def plan_for(spec: str) -> Plan:
    return _plan(*load_source(spec))


# Tensor names of the ONNX graph's own making: the builder's prefixes (pre_, step_,
# l0_pre_, l0_reverse_step_, ...) and its constants (const_0, ...)
_ONNX_OWN_NAMES = re.compile(r"(pre|step|const|l[0-9]+)_")


def _refuse_onnx_name_clash(plan: Plan, text: str, path: str) -> None:
    """A further input is a graph input of its own name: the user's error at its
    declaration where that name is one the graph gives another tensor."""
    cell = plan.cell
    taken = {f"{s}_{end}" for s in cell.state_names for end in ("0", "n")}
    for leaf in cell.extra_inputs:
        if leaf.label in taken or _ONNX_OWN_NAMES.match(leaf.label):
            decl = next(d for d in parse(text, path).inputs if d.name == leaf.label)
            why = ("the initial or final state of a state" if leaf.label in taken
                   else "a prefix the graph builder gives its own tensors")
            raise CheckError(f"the onnx target names a graph input after each input "
                             f"sequence, and '{leaf.label}' is {why}", decl.span,
                             note="rename this input")


def _plan(text: str, path: str) -> Plan:
    return schedule(derive(build(parse(text, path))))


def generate(spec: str, target: str = "numpy") -> dict[str, str]:
    """File name → text of the generated files for one cell (a built-in name or a path)."""
    return generate_text(*load_source(spec), target)


def generate_text(text: str, path: str, target: str = "numpy") -> dict[str, str]:
    """File name → text of the generated files for a cell's text; `path` names it in errors."""
    if target in DOC_TARGETS:  # documentation: from the syntax tree, no schedule
        from gatespec.emit.docs import doc_files

        return doc_files(text, path, target)
    plan = _plan(text, path)
    if target == "onnx":
        _refuse_onnx_name_clash(plan, text, path)
    source_name = Path(plan.cell.path).name
    if target == "numpy":
        return {f"{plan.cell.name}_numpy.py": emit_numpy(plan, source_name)}
    if target == "torch":
        return {f"{plan.cell.name}_torch.py": emit_torch(plan, source_name)}
    if target == "triton":
        return {f"{plan.cell.name}_triton.py": emit_triton(plan, source_name)}
    if target == "jax":
        return {f"{plan.cell.name}_jax.py": emit_jax(plan, source_name)}
    if target == "cuda":
        return emit_cuda(plan, source_name)
    if target == "onnx":
        return {f"{plan.cell.name}_onnx.py": emit_onnx(plan, source_name)}
    if target == "cpp":
        return emit_cpp(plan, source_name)
    raise UsageError(f"unknown target '{target}' (known: {', '.join(TARGETS)})")
