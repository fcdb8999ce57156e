"""Shared test helpers: generate a built-in cell and import the result."""

from functools import cache

from gatespec.check import load_module
from gatespec.pipeline import generate


@cache
def numpy_module(spec: str):
    (name, text), = generate(spec, "numpy").items()
    return load_module(text, name[:-3])
