"""`gatespec check`: generated gradients against central finite differences, in float64."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

SMALL_SIZES = {"input": 5, "hidden": 4}
OTHER_SIZE = 3


def load_module(source: str, name: str) -> ModuleType:
    """Import generated source text as a module (through a temporary file, for tracebacks)."""
    with tempfile.TemporaryDirectory(prefix="gatespec-") as tmp:
        path = Path(tmp) / f"{name}.py"
        path.write_text(source, "utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules.pop(name, None)
        spec.loader.exec_module(module)
    return module


@dataclass
class CheckResult:
    worst: float
    worst_name: str
    errors: dict[str, float]
    step_error: float


def sizes_for(module: ModuleType) -> dict[str, int]:
    return {s: SMALL_SIZES.get(s, OTHER_SIZE) for s in module.SIZES}


def finite_difference_check(module: ModuleType, seed: int = 0, T: int = 4, B: int = 3,
                            eps: float = 1e-6) -> CheckResult:
    rng = np.random.default_rng(seed)
    sizes = sizes_for(module)
    params = module.init_params(sizes, rng)
    # Larger weights than the default initialisation make every nonlinearity matter.
    params = {k: v * 2.0 for k, v in params.items()}
    x = rng.normal(size=(T, B, sizes[module.INPUT_SIZE]))
    state0 = tuple(0.5 * rng.normal(size=(B, sizes[module.STATE_SIZES[s]])) for s in module.STATES)
    outputs, final, cache = module.forward(x, state0, params)
    g_out = rng.normal(size=outputs.shape)
    g_fin = tuple(rng.normal(size=s.shape) for s in final)

    def loss() -> float:
        out, fin, _ = module.forward(x, state0, params)
        return float(np.sum(out * g_out) + sum(np.sum(f * g) for f, g in zip(fin, g_fin, strict=True)))

    dx, d_state0, d_params = module.backward(g_out, g_fin, cache, params)
    arrays = {"x": (x, dx)}
    for name, s, d in zip(module.STATES, state0, d_state0, strict=True):
        arrays[f"{name}0"] = (s, d)
    for name in module.PARAMS:
        arrays[name] = (params[name], d_params[name])

    errors = {}
    for name, (value, analytic) in arrays.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            keep = value[idx]
            value[idx] = keep + eps
            up = loss()
            value[idx] = keep - eps
            down = loss()
            value[idx] = keep
            numeric[idx] = (up - down) / (2 * eps)
        scale = max(np.abs(numeric).max(), 1e-8)
        errors[name] = float(np.abs(np.asarray(analytic) - numeric).max() / scale)

    # step() one step at a time must agree with forward() over the sequence.
    state = state0
    step_error = 0.0
    for t in range(T):
        out_t, state = module.step(x[t], state, params)
        step_error = max(step_error, float(np.abs(out_t - outputs[t]).max()))
    worst_name = max(errors, key=errors.get)
    return CheckResult(errors[worst_name], worst_name, errors, step_error)
