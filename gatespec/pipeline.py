"""The driver: one line per stage."""

from __future__ import annotations

from pathlib import Path

from gatespec import cells
from gatespec.build import build
from gatespec.derive import derive
from gatespec.emit import emit_numpy, emit_torch
from gatespec.emit.docs import DOC_TARGETS
from gatespec.emit.emit import emit_cpp, emit_cuda, emit_jax, emit_onnx, emit_triton
from gatespec.errors import CheckError, UsageError
from gatespec.parse import ast, parse
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


# targets whose generated code reads one input sequence only, so far
ONE_INPUT_TARGETS = ("onnx",)


def refuses(spec: str, target: str) -> bool:
    """Whether `target` refuses this cell (a construct it does not take yet): `generate
    --all` leaves such a built-in cell out for that target, and says so."""
    return target in ONE_INPUT_TARGETS and build(parse(*load_source(spec))).packed


def _refuse_extra_inputs(plan: Plan, text: str, path: str, target: str) -> None:
    """A cell with further input sequences, for a target that does not take them yet: the
    user's error at the second input, not a module that would read the wrong thing."""
    cell = plan.cell
    if cell.packed and target in ONE_INPUT_TARGETS:
        cf = parse(text, path)
        if cell.extra_inputs:
            raise CheckError(
                f"the {target} target reads one input sequence so far; this cell reads "
                f"{len(cf.inputs)} ({', '.join(d.name for d in cf.inputs)})",
                cf.inputs[1].span, note="the other targets take several: numpy, torch, "
                "triton, cuda, cpp and jax")
        mask = cell.masks[0]
        call = next(n for stmt in cf.statements if stmt.span.line == mask.line
                    for n in ast.walk(stmt.value)
                    if isinstance(n, ast.Call) and n.func == mask.kind)
        raise CheckError(f"the {target} target has no stochastic masks yet ({mask.kind}())",
                         call.span, note="an ONNX graph is for inference, where a mask is its "
                         "expectation: export a copy of the cell with this call replaced by it "
                         "(zoneout: (1 - rate) * new + rate * old; dropout: the value)")


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
    _refuse_extra_inputs(plan, text, path, target)
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
