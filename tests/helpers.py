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
