"""Shared test helpers: generate a built-in cell and import the result."""

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
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


def input_width(module, sizes):
    """The width of the x that a module's internal _forward (and a kernel backend's forward)
    takes: x and the further input sequences (EXTRA_INPUTS) side by side, as it packs them."""
    masks = [spec[0] for spec in getattr(module, "MASKS", {}).values()]  # packed last
    return sizes[module.INPUT_SIZE] + sum(sizes[s] for s in (*extra_input_sizes(module).values(),
                                                              *masks))


def extra_inputs(module, sizes, T, B, draw) -> dict:
    """Random further input sequences for a generated module, {name: draw((T, B, size))}."""
    return {name: draw((T, B, sizes[s])) for name, s in extra_input_sizes(module).items()}


def extra_input_sizes(module) -> dict:
    """The further input sequences of a generated module, name -> size name ({} for most)."""
    return getattr(module, "EXTRA_INPUTS", {})


def sizes_of(module, params) -> dict:
    """The size numbers that a generated module's parameters fix, by size name."""
    sizes = {}
    for name, shape in module.PARAMS.items():
        sizes.update(zip(shape, params[name].shape, strict=True))
    return sizes


def _split_by_params(module, packed, params):
    """(x, further inputs, masks) of a packed x, the masks as the masks= argument."""
    sizes = sizes_of(module, params)
    masks = {name: spec[0] for name, spec in getattr(module, "MASKS", {}).items()}
    rest = sum(sizes[s] for s in (*extra_input_sizes(module).values(), *masks.values()))
    sizes = {**sizes, module.INPUT_SIZE: packed.shape[-1] - rest}
    mask_width = sum(sizes[s] for s in masks.values())
    x, extras = split_packed(module, packed[..., :packed.shape[-1] - mask_width], sizes)
    if masks:
        start, given = packed.shape[-1] - mask_width, {}
        for name, size in masks.items():
            given[name] = np.ascontiguousarray(packed[..., start:start + sizes[size]])
            start += sizes[size]
        extras["masks"] = given
    return x, extras


def packed_forward(module, x, state0, params, **kw):
    """A NumPy module's forward() on a packed x (reference_cells' convention for cells with
    further inputs and masks: every input, then every mask, side by side), the parts passed
    as its keyword arguments."""
    x, extras = _split_by_params(module, x, params)
    return module.forward(x, state0, params, **kw, **extras)


def packed_step(module, x_t, state, params):
    """A NumPy module's step() on one step of a packed x."""
    x_t, extras = _split_by_params(module, x_t, params)
    return module.step(x_t, state, params, **extras)


def packed_backward(module, *args, **kw):
    """A NumPy module's backward() with the input gradients packed as packed_forward's x."""
    import numpy as np

    dx, d_state0, d_params, *d_extras = module.backward(*args, **kw)
    if d_extras:
        dx = np.concatenate([dx, *(d_extras[0][k] for k in extra_input_sizes(module))], axis=-1)
    return dx, d_state0, d_params


def split_packed(module, packed, sizes):
    """A packed x (input_width wide) -> (x, {name: further input}); works on arrays and tensors."""
    parts, start = [], 0
    for size in [module.INPUT_SIZE, *extra_input_sizes(module).values()]:
        parts.append(packed[..., start:start + sizes[size]])
        start += sizes[size]
    return parts[0], dict(zip(extra_input_sizes(module), parts[1:], strict=True))


@cache
def triton_module(spec: str):
    (name, text), = generate(spec, "triton").items()
    return load_module(text, name[:-3])


def layer_grads(layer, x, state, impl, extras=None):
    """Outputs, final states and the gradients (input, the further inputs `extras` (a dict,
    keyword arguments of the layer), initial states, every parameter) of a fixed random
    projection of them, with the layer run by `impl`. A leaf the loss does not reach (a
    state whose previous value is never read) gets a zero gradient."""
    import torch

    layer.impl = impl
    extras = extras or {}
    if "MASKS" in type(layer).forward.__globals__:  # the same masks for each impl
        extras = {**extras, "generator": torch.Generator().manual_seed(11)}
    out, final = layer(x, state, **extras)
    finals = (final,) if isinstance(final, torch.Tensor) else final
    gen = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum()
    for f in finals:
        loss = loss + (f * torch.randn(f.shape, generator=gen, dtype=f.dtype)).sum()
    leaves = [x, *(v for k, v in extras.items() if k != "generator"),
              *(state if isinstance(state, tuple) else (state,)),
              *layer.parameters()]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return out, finals, [torch.zeros_like(v) if g is None else g
                         for v, g in zip(leaves, grads, strict=True)]


def numpy_dx_error(spec: str, seed: int = 0, eps: float = 1e-6) -> float:
    """Relative error of a NumPy module's dx against central differences of its own forward
    (the loss: fixed random projections of the outputs and final states)."""
    import numpy as np

    mod = numpy_module(spec)
    rng = np.random.default_rng(seed)
    sizes = small_sizes(mod)
    params = {k: 2.0 * v for k, v in mod.init_params({s: sizes[s] for s in mod.SIZES}, rng).items()}
    x = rng.normal(size=(4, 3, sizes[mod.INPUT_SIZE]))
    state0 = tuple(0.5 * rng.normal(size=(3, sizes[mod.STATE_SIZES[s]])) for s in mod.STATES)
    out, final, cache = mod.forward(x, state0, params)
    g_out, g_fin = rng.normal(size=out.shape), tuple(rng.normal(size=f.shape) for f in final)

    def loss() -> float:
        o, f, _ = mod.forward(x, state0, params, keep_cache=False)
        return float(np.sum(o * g_out) + sum(np.sum(a * b) for a, b in zip(f, g_fin, strict=True)))

    dx = mod.backward(g_out, g_fin, cache, params)[0]
    assert dx.shape == x.shape
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        keep = x[idx]
        x[idx] = keep + eps
        up = loss()
        x[idx] = keep - eps
        numeric[idx] = (up - loss()) / (2 * eps)
        x[idx] = keep
    return float(np.abs(dx - numeric).max() / np.abs(numeric).max())


def torch_grad_errors(spec: str) -> dict[str, float]:
    """Relative error of each gradient (x, initial states, parameters) of the torch module's
    derived backward against autograd through its step-by-step reference, one layer."""
    import torch

    mod = torch_module(spec)
    sizes = small_sizes(mod)
    torch.manual_seed(0)
    layer = module_class(mod)(sizes["input"], sizes["hidden"],
                              *(sizes[s] for s in mod.SIZES if s not in ("input", "hidden")),
                              dtype=torch.float64)
    x = torch.randn(5, 3, sizes[mod.INPUT_SIZE], dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(1, 3, sizes[mod.STATE_SIZES[s]], dtype=torch.float64,
                              requires_grad=True) for s in mod.STATES)
    state = state[0] if len(state) == 1 else state
    _, _, derived = layer_grads(layer, x, state, "torch")
    _, _, reference = layer_grads(layer, x, state, "autograd")
    names = ["x", *mod.STATES, *(n for n, _ in layer.named_parameters())]
    return {n: ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()
            for n, a, b in zip(names, derived, reference, strict=True)}


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


def with_wrong_gradient(module, key: str, amount: float):
    """A NumPy module whose backward moves one entry of the gradient of `key` by `amount`
    times that gradient's largest entry: a realistic slip (a missing term at one index)."""
    import numpy as np

    class Broken:
        def __getattr__(self, name):
            return getattr(module, name)

        @staticmethod
        def backward(*args):
            dx, ds0, dp = module.backward(*args)
            wrong = np.array(dp[key], dtype=float)
            wrong[(0,) * wrong.ndim] += amount * np.abs(wrong).max()
            return dx, ds0, {**dp, key: wrong}

    return Broken()


def cell_file(folder, name: str, body: str) -> str:
    """The path of a .gate file `cell NAME` + body, written into `folder`."""
    path = folder / f"{name}.gate"
    path.write_text(f"cell {name}\n{body}")
    return str(path)
