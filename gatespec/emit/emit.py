"""Plan → files, through Jinja templates (StrictUndefined: a missing value is a bug, not a blank)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

from gatespec import GENERATED_MARK
from gatespec.emit import escape
from gatespec.emit.dialects import NUMPY, TORCH
from gatespec.emit.kernel_printers import cuda_printer, triton_printer
from gatespec.emit.kernels import KernelLines, cut_to_active_rows
from gatespec.emit.lines import prune_assignments
from gatespec.emit.onnx import onnx_context
from gatespec.emit.python_module import module_context, tuple_text, view_load
from gatespec.errors import EmitError
from gatespec.schedule import Plan


def template_dir() -> Path:
    """Templates ship inside the wheel as gatespec/templates; in a source tree they are ../templates."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "numpy").is_dir():
            return candidate
    try:
        return Path(str(resources.files("gatespec.templates")))
    except ModuleNotFoundError as exc:
        raise EmitError("gatespec's templates are missing from this installation") from exc


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["generated_mark"] = GENERATED_MARK  # the start of every mark line (files.py)
    # user text reaches every output through these (escape.py), one per language
    env.filters.update(escape.FILTERS)
    return env


def render(template: str, context: dict) -> str:
    try:
        return environment().get_template(template).render(context)
    except jinja2.TemplateError as exc:
        raise EmitError(f"template {template} failed: {exc}") from exc


def emit_numpy(plan: Plan, source_name: str) -> str:
    return render("numpy/module.py.jinja", module_context(plan, NUMPY, source_name, rows=True))


def emit_jax(plan: Plan, source_name: str) -> str:
    from gatespec.emit.jax_module import jax_context

    context = jax_context(plan, source_name)
    context["class_name"] = class_name(plan.cell.name)
    return render("jax/module.py.jinja", context)


_ACRONYMS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN", "srnn": "SRNN", "mgu": "MGU",
             "sru": "SRU", "indrnn": "IndRNN", "ugrnn": "UGRNN", "slstm": "SLSTM",
             "mingru": "MinGRU", "minlstm": "MinLSTM", "janet": "JANET", "cifg": "CIFG"}


def class_name(cell_name: str) -> str:
    """lstm -> LSTM, gru_reset_after -> GRUResetAfter, lstm_peephole -> LSTMPeephole."""
    return "".join(_ACRONYMS.get(p, p.capitalize()) for p in cell_name.split("_"))


def emit_torch(plan: Plan, source_name: str) -> str:
    cell = plan.cell
    context = module_context(plan, TORCH, source_name, rows=True)
    lines = context["lines"]
    prev = [s.name for s in cell.states]
    new = [cell.updates[s.label] for s in cell.states]
    single = len(cell.states) == 1
    printed = "\n".join([*context["loop_forward"], *context["loop_backward"],
                         *context["static_forward"], *context["static_backward"]])
    context.update(
        class_name=class_name(cell.name),
        uses_functional="F." in printed,
        output_size=plan.derived.node(cell.output).size,
        biases=tuple_text([p.name for p in cell.params.values() if p.role == "bias"]),
        extra_sizes=[s for s in cell.sizes if s not in ("input", "hidden")],
        state_prev_names=", ".join(prev) + ("," if single else ""),
        state_new_names=", ".join(new) + ("," if single else ""),
        reference_lines=lines.reference_lines(),
        # a packed x (further inputs) is split before the steps
        reference_setup=(prune_assignments(lines.size_lines(), lines.reference_lines())
                         if cell.packed else []),
        cache_keys=tuple_text([k for k, _ in context["cache_entries"]]),
        **_fake_shapes(lines, plan),
        state_doc=("state is h_0 (num_layers * directions, B, size), and so is h_n"
                   if single else
                   "state is the tuple (" + ", ".join(f"{s}_0" for s in cell.state_names)
                   + ") of (num_layers * directions, B, size) tensors, and so is the "
                   "final state"),
        final_return="final_state[0]" if single else "final_state",
        torch=cell.torch_layout,
        tuple_of=lambda names: tuple_text(list(names)),
        # autograd differentiates a view (.T) back into its weight
        reference_param_loads=[view_load(p) for p in cell.params.values()],
    )
    return render("torch/module.py.jinja", context)


def _fake_shapes(lines, plan: Plan) -> dict:
    """What the custom op's fake forward allocates: the output's shape, and the cache's
    tensors but x (the op's input, which no output may alias), with the size lines they read."""
    saved = [(k, shape) for k, shape in lines.cache_shapes() if k != "x"]
    output_shape = f"T, B, {lines.size_var(plan.derived.node(plan.cell.output).size)}"
    return {
        "saved_keys": tuple_text([k for k, _ in saved]),
        "saved_shapes": [shape for _, shape in saved],
        "fake_output_shape": output_shape,
        "fake_size_lines": prune_assignments(lines.size_lines(),
                                             [output_shape, *(s for _, s in saved)]),
    }



def _kernel_context(plan: Plan, source_name: str, printer, quote_names: bool) -> dict:
    lines = KernelLines(plan, quote_names)
    context = module_context(plan, TORCH, source_name, lines)
    for body in (("state_loads", "loop_forward", "forward_saves"),
                 ("backward_loads", "loop_backward", "carry_lines")):
        cut = iter(cut_to_active_rows([line for key in body for line in context[key]]))
        for key in body:
            context[key] = [next(cut) for _ in context[key]]
    context["histories"] = [f"{s.label}_all" for s in plan.cell.states]
    context["forward_alloc"] = "alloc(" in "\n".join([*context["forward_setup"],
                                                      *context["forward_cache_allocs"]])
    context["backward_alloc"] = "alloc(" in "\n".join(context["backward_allocs"])
    kernels = []
    for k in lines.kernels:
        printed = [(name, printer.expr(e)) for name, e in k.statements]
        kernels.append({**k.__dict__, "printed": printed})
    context["kernels"] = kernels
    context["uses_functional"] = "F." in "\n".join([*context["static_forward"],
                                                    *context["static_backward"]])
    context["kernel_names"] = tuple_text([k.name for k in lines.kernels])
    context["max_arrays"] = max([8, *(max(len(k.inputs), len(k.outputs), len(k.vectors))
                                      for k in lines.kernels)])
    return context


def emit_triton(plan: Plan, source_name: str) -> str:
    context = _kernel_context(plan, source_name, triton_printer(), quote_names=False)
    # the template defines _scan with a Triton kernel in place of the torch-ops helper
    context["helpers"] = [h for h in context["helpers"] if not h.startswith("def _scan(")]
    return render("triton/module.py.jinja", context)


def emit_cuda(plan: Plan, source_name: str) -> dict[str, str]:
    """The kernels (.cu, plain CUDA C++: nvcc compiles it alone) and the Python driver."""
    context = _kernel_context(plan, source_name, cuda_printer(), quote_names=True)
    name = plan.cell.name
    return {f"{name}_cuda.cu": render("cuda/kernels.cu.jinja", context),
            f"{name}_cuda.py": render("cuda/module.py.jinja", context)}


def emit_onnx(plan: Plan, source_name: str) -> str:
    """A module that builds the forward pass as an ONNX graph (numpy and onnx only)."""
    context = onnx_context(plan, source_name)
    context["tuple_of"] = lambda names: tuple_text(list(names))
    return render("onnx/module.py.jinja", context)


def emit_cpp(plan: Plan, source_name: str) -> dict[str, str]:
    """The time loop in C++ for the CPU (.cpp, built with g++ against torch) and its
    Python driver, which runs the input-only work and weight gradients with torch ops."""
    from gatespec.emit.cpp_context import cpp_context

    context = cpp_context(plan, source_name)
    name = plan.cell.name
    return {f"{name}_cpp.cpp": render("cpp/kernels.cpp.jinja", context),
            f"{name}_cpp.py": render("cpp/module.py.jinja", context)}
