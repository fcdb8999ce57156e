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
    problem: str | None = None  # why no comparison was possible
    unchecked: int = 0  # gradient entries whose finite difference left the cell's domain


def sizes_for(module: ModuleType) -> dict[str, int]:
    return {s: SMALL_SIZES.get(s, OTHER_SIZE) for s in module.SIZES}


# An entry's finite difference is trusted to within NOISE_FACTOR times its uncertainty,
# the largest of: its own change between steps h and 2h (truncation, a kink); the root
# mean square of that change over the array (rounding noise, alike for its entries); and
# the resolution of the outputs (a change below one rounding unit of an output is lost).
NOISE_FACTOR = 5.0
# The scales of the random data (inputs, initial states, weights) tried in turn until the
# outputs are finite.
DATA_SCALES = (1.0, 0.1, 0.01)


def finite_difference_check(module: ModuleType, seed: int = 0, T: int = 4, B: int = 3,
                            eps: float = 1e-6, tol: float = 1e-6) -> CheckResult:
    """Compare the generated backward with central differences. An array's error is
    max |analytic - numeric| / max |gradient|; where that is above `tol`, the array is
    differenced again with step 2*eps and each entry's error is reduced by what finite
    differences cannot resolve (NOISE_FACTOR times its uncertainty), so a zero or tiny
    but correct gradient passes and a wrong one still fails."""
    rng = np.random.default_rng(seed)
    sizes = sizes_for(module)
    base = module.init_params(sizes, rng)
    x1 = rng.normal(size=(T, B, sizes[module.INPUT_SIZE]))
    s1 = tuple(0.5 * rng.normal(size=(B, sizes[module.STATE_SIZES[s]])) for s in module.STATES)
    # further input sequences (keyword arguments), drawn after the rest
    extra_sizes = getattr(module, "EXTRA_INPUTS", {})
    e1 = {name: rng.normal(size=(T, B, sizes[s])) for name, s in extra_sizes.items()}
    # masks of zoneout() and dropout(): drawn once, then fixed (constants to the gradient)
    if hasattr(module, "MASKS"):
        drawn = module._masks(None, rng, (T, B), sizes, np.dtype(np.float64))
        e1["masks"] = dict(zip(module.MASKS, (np.array(m) for m in drawn), strict=True))
    # Larger weights than the default initialisation make every nonlinearity matter; a
    # cell that overflows there (exp of a growing state) is checked on smaller data.
    for scale in DATA_SCALES:
        # np.asarray: a scalar parameter stays a 0-d array, which the differences perturb
        params = {k: np.asarray(v * 2.0 * scale) for k, v in base.items()}
        x, state0 = x1 * scale, tuple(s * scale for s in s1)
        extras = {name: v if name == "masks" else v * scale for name, v in e1.items()}
        with np.errstate(all="ignore"):
            outputs, final, cache = module.forward(x, state0, params, **extras)
        # the outputs, and what the steps saved: a value that left its function's domain
        # at a step no output shows (a state after the last read of it) spoils gradients
        saved = [a for a in cache.values() if isinstance(a, np.ndarray)]
        if all(np.isfinite(a).all() for a in (outputs, *final, *saved)):
            break
    else:
        return CheckResult(float("nan"), "", {}, float("nan"),
                           "the outputs or the values the steps save are not finite "
                           "(overflow, or a function outside its domain) on random data of "
                           "scales "
                           + ", ".join(f"{s:g}" for s in DATA_SCALES))
    g_out = rng.normal(size=outputs.shape)
    g_fin = tuple(rng.normal(size=s.shape) for s in final)

    def run() -> list[np.ndarray]:
        with np.errstate(all="ignore"):  # a perturbed run may overflow; the errors say so
            out, fin, _ = module.forward(x, state0, params, **extras)
        return [out, *fin]

    weights = [g_out, *g_fin]
    unit = np.finfo(float).eps * float(sum(np.sum(np.abs(o * g)) for o, g in
                                           zip([outputs, *final], weights, strict=True)))

    def difference(up: list[np.ndarray], down: list[np.ndarray], step: float) -> float:
        # differences before sums: the outputs a perturbation leaves alone cancel exactly
        return float(sum(np.sum((u - d) * g) for u, d, g in zip(up, down, weights,
                                                                 strict=True))) / (2 * step)

    def numeric_gradient(value: np.ndarray, step: float) -> np.ndarray:
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            keep = value[idx]
            value[idx] = keep + step
            up = run()
            value[idx] = keep - step
            down = run()
            value[idx] = keep
            numeric[idx] = difference(up, down, step)
        return numeric

    dx, d_state0, d_params, *d_extras = module.backward(g_out, g_fin, cache, params)
    arrays = {"x": (x, dx)}
    for name, value in extras.items():
        if name != "masks":
            arrays[name] = (value, d_extras[0][name])
    for name, s, d in zip(module.STATES, state0, d_state0, strict=True):
        arrays[f"{name}0"] = (s, d)
    for name in module.PARAMS:
        arrays[name] = (params[name], d_params[name])

    errors, unchecked = {}, 0
    for name, (value, analytic) in arrays.items():
        # flat: a scalar parameter's 0-d arrays would give NumPy scalars, which the masks
        # below cannot assign to
        analytic = np.asarray(analytic, dtype=float).reshape(-1)
        numeric = numeric_gradient(value, eps).reshape(-1)
        # an entry whose step leaves the cell's domain (sqrt of a number near 0 turned
        # negative) has no finite difference: it is not compared, and the report counts it
        blind = ~np.isfinite(numeric) & np.isfinite(analytic)
        numeric[blind] = analytic[blind]
        scale = max(np.abs(numeric).max(), np.abs(analytic).max(), 1e-300)
        gap = np.abs(analytic - numeric)
        errors[name] = float(gap.max() / scale)
        if errors[name] > tol:  # perhaps only finite differences at their limit
            wider = numeric_gradient(value, 2 * eps).reshape(-1)
            blind |= ~np.isfinite(wider) & np.isfinite(analytic)
            change = np.where(blind, 0.0, np.abs(numeric - wider))
            gap[blind] = 0.0
            uncertainty = np.maximum(change, max(np.sqrt(np.mean(change**2)), unit / (2 * eps)))
            errors[name] = float(np.maximum(gap - NOISE_FACTOR * uncertainty, 0).max() / scale)
        unchecked += int(blind.sum())

    # step() one step at a time must agree with forward() over the sequence.
    state = state0
    step_error = 0.0
    for t in range(T):
        out_t, state = module.step(x[t], state, params,
                                   **{name: ({k: m[t] for k, m in v.items()} if name == "masks"
                                             else v[t]) for name, v in extras.items()})
        step_error = max(step_error, float(np.abs(out_t - outputs[t]).max()))
    step_error /= max(float(np.abs(outputs).max()), 1.0)  # relative to large outputs
    worst_name = max(errors, key=errors.get)
    return CheckResult(errors[worst_name], worst_name, errors, step_error, unchecked=unchecked)
