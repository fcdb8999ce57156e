"""Shared test helpers: generate a built-in cell and import the result."""

from functools import cache

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
