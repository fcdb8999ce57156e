"""Shared test helpers: generate a built-in cell and import the result."""

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from gatespec.check import load_module
from gatespec.pipeline import generate


@cache
def numpy_module(spec: str):
    (name, text), = generate(spec, "numpy").items()
    return load_module(text, name[:-3])


@cache
def torch_module(spec: str):
    (name, text), = generate(spec, "torch").items()
    return load_module(text, name[:-3])


def module_class(module):
    """The nn.Module class a generated torch module defines."""
    import torch

    return next(v for k, v in vars(module).items()
                if isinstance(v, type) and issubclass(v, torch.nn.Module) and not k.startswith("_"))


def small_sizes(module, hidden=5, input_=4, other=3):
    sizes = {"input": input_, "hidden": hidden}
    sizes.update({s: other for s in module.SIZES if s not in sizes})
    if module.INPUT_SIZE != "input":
        sizes["input"] = sizes[module.INPUT_SIZE]
    return sizes


@cache
def triton_module(spec: str):
    (name, text), = generate(spec, "triton").items()
    return load_module(text, name[:-3])


def layer_grads(layer, x, state, impl):
    """Outputs, final states and the gradients (input, initial states, every parameter) of a
    fixed random projection of them, with the layer run by `impl`. A leaf the loss does not
    reach (a state whose previous value is never read) gets a zero gradient."""
    import torch

    layer.impl = impl
    out, final = layer(x, state)
    finals = (final,) if isinstance(final, torch.Tensor) else final
    gen = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum()
    for f in finals:
        loss = loss + (f * torch.randn(f.shape, generator=gen, dtype=f.dtype)).sum()
    leaves = [x, *(state if isinstance(state, tuple) else (state,)), *layer.parameters()]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return out, finals, [torch.zeros_like(v) if g is None else g
                         for v, g in zip(leaves, grads, strict=True)]


# -- nvcc: the CUDA target's compile tests ------------------------------------------------

# what torch.utils.cpp_extension passes: no implicit half/bfloat16 conversions
NVCC_FLAGS = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
              "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
              "--expt-relaxed-constexpr", "--use_fast_math", "-std=c++17"]


def require_nvcc() -> str:
    """nvcc, or a skip on a developer machine without it; in CI a missing nvcc fails."""
    path = shutil.which("nvcc") or shutil.which("/usr/local/cuda/bin/nvcc")
    if path is None:
        message = "nvcc is not installed: the CUDA target cannot be checked"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return path


def nvcc_errors(nvcc, sources, archs, folder) -> str:
    """nvcc's complaints about the .cu files `sources` with the flags torch uses, warnings as
    errors; '' when they compile. The files go into two translation units (each includes
    half of them), compiled side by side: each file holds its kernels in a namespace of its
    cell, names its launcher after it and starts with the same includes, so together they
    compile as each does alone, and the host-side work (headers, front end, host compiler)
    that dominated one nvcc run per file is done twice instead of once per file (2.4x less
    CPU for the built-in cells, 2.7x for the corpus)."""

    def compile_unit(k):
        unit = folder / f"unit{k}.cu"
        unit.write_text("".join(f'#include "{Path(s).resolve()}"\n' for s in sources[k::2]))
        r = subprocess.run([nvcc, "-c", *archs, *NVCC_FLAGS, "-O2", "-Werror", "all-warnings",
                            "-o", str(folder / f"unit{k}.o"), str(unit)],
                           capture_output=True, text=True)
        return "" if r.returncode == 0 else r.stdout[-3000:] + r.stderr[-5000:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return "".join(pool.map(compile_unit, range(2)))
