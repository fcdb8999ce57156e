"""A corpus of unusual but valid cells (tests/corpus/*.gate), each through every path:
finite differences of the NumPy module, the PyTorch module's derived backward against
autograd, NumPy against PyTorch, the Triton kernels in Triton's interpreter, ruff on
every generated Python file, nvcc on the CUDA kernels, and the documentation targets.
The cells stress the compiler, not the maths: outputs that are intermediates, states
never read, three GEMM stages, sizes that differ, layer norms of the input and nested
ones, scrambled statements, every element-wise function, names that look like the
generated code's own. Each file's header comment says what it stresses."""

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, require_module, require_torch
from helpers import (
    extra_inputs,
    layer_grads,
    module_class,
    numpy_module,
    nvcc_errors,
    require_nvcc,
    small_sizes,
    torch_module,
)

from gatespec.build import build
from gatespec.check import finite_difference_check, sizes_for
from gatespec.errors import CheckError
from gatespec.parse import parse
from gatespec.pipeline import generate

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
CORPUS = sorted(p.stem for p in CORPUS_DIR.glob("*.gate"))


def spec(name: str) -> str:
    return str(CORPUS_DIR / f"{name}.gate")


def test_corpus_is_there():
    assert len(CORPUS) >= 20


# -- 1. finite differences -------------------------------------------------------------

@pytest.mark.parametrize("name", CORPUS)
def test_finite_differences(name):
    result = finite_difference_check(numpy_module(spec(name)))
    assert result.worst < 1e-6, (result.worst_name, result.errors)
    assert result.step_error < 1e-12


# -- 2. the PyTorch module: derived backward against autograd ---------------------------

def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def _layer(name, torch):
    mod = torch_module(spec(name))
    sizes = small_sizes(mod)
    extra = [sizes[s] for s in mod.SIZES if s not in ("input", "hidden")]
    both = mod.INPUT_SIZE == "input"  # a cell reading x at another size stacks one direction
    stackable = both or sizes[mod.OUTPUT_SIZE] == sizes[mod.INPUT_SIZE]
    # a state of the input's size changes size from layer to layer (the next layer's input
    # is this one's output): one layer only
    stackable = stackable and "input" not in mod.STATE_SIZES.values()
    # likewise a further input of x's size: every layer reads it, at layer 0's size
    stackable = stackable and mod.INPUT_SIZE not in getattr(mod, "EXTRA_INPUTS", {}).values()
    torch.manual_seed(0)
    layer = module_class(mod)(sizes["input"], sizes["hidden"], *extra, dtype=torch.float64,
                              num_layers=2 if stackable else 1, bidirectional=both)
    return mod, layer, sizes


@pytest.mark.parametrize("name", CORPUS)
def test_torch_derived_backward_matches_autograd(name):
    torch = require_torch()
    mod, layer, sizes = _layer(name, torch)
    directions = 2 if layer.bidirectional else 1
    x = torch.randn(5, 3, sizes["input"], dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(layer.num_layers * directions, 3, sizes[mod.STATE_SIZES[s]],
                              dtype=torch.float64, requires_grad=True) for s in mod.STATES)
    state = state[0] if len(state) == 1 else state
    # further inputs: every layer reads them; masks: drawn alike for both (layer_grads)
    extras = extra_inputs(mod, sizes, 5, 3, lambda shape: torch.randn(
        shape, dtype=torch.float64, requires_grad=True))
    out_f, fin_f, g_f = layer_grads(layer, x, state, "torch", extras)
    out_a, fin_a, g_a = layer_grads(layer, x, state, "autograd", extras)
    assert _rel(out_f, out_a) <= 1e-12
    for a, b in zip(fin_f, fin_a, strict=True):
        assert _rel(a, b) <= 1e-12
    names = ["x", *extras, *mod.STATES, *(n for n, _ in layer.named_parameters())]
    errors = {n: _rel(a, b) for n, a, b in zip(names, g_f, g_a, strict=True)}
    assert max(errors.values()) <= 1e-10, errors


# -- 3. NumPy against PyTorch, same parameters ------------------------------------------

@pytest.mark.parametrize("name", CORPUS)
def test_numpy_matches_torch(name):
    torch = require_torch()
    npm, tm = numpy_module(spec(name)), torch_module(spec(name))
    rng = np.random.default_rng(3)
    sizes = sizes_for(npm)
    params = {k: 2.0 * v for k, v in npm.init_params({s: sizes[s] for s in npm.SIZES}, rng).items()}
    x = rng.normal(size=(4, 3, sizes[npm.INPUT_SIZE]))
    state0 = tuple(0.5 * rng.normal(size=(3, sizes[npm.STATE_SIZES[s]])) for s in npm.STATES)
    # further inputs and drawn masks: keyword arguments of NumPy's forward, packed into
    # torch's x (the fused op's input), in that order
    extras = extra_inputs(npm, sizes, 4, 3, lambda shape: rng.normal(size=shape))
    masks = {} if not hasattr(npm, "MASKS") else dict(zip(npm.MASKS, map(np.array, npm._masks(
        None, rng, (4, 3), sizes, np.dtype(np.float64)))))
    out, final, cache_np = npm.forward(x, state0, params, **extras,
                                       **({"masks": masks} if masks else {}))
    x = np.concatenate([x, *extras.values(), *masks.values()], axis=-1)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    tparams = {k: t(v) for k, v in params.items()}
    tstate0 = tuple(t(s) for s in state0)
    out_t, final_t, cache_t = tm._forward(t(x), tstate0, tparams, True)
    out_r, final_r = tm._reference(t(x), tstate0, tparams)
    for ours, fins in ((out_t, final_t), (out_r, final_r)):
        assert np.abs(ours.numpy() - out).max() <= 1e-12
        for a, b in zip(fins, final, strict=True):
            assert np.abs(a.numpy() - b).max() <= 1e-12

    d_out = rng.normal(size=out.shape)
    d_fin = tuple(rng.normal(size=f.shape) for f in final)
    dx, d_state0, d_params, *d_extras = npm.backward(d_out, d_fin, cache_np, params)
    dx = np.concatenate([dx, *(d_extras[0].values() if d_extras else ())], axis=-1)
    dx_t, d_state0_t, d_params_t = tm._backward(t(d_out), tuple(t(d) for d in d_fin), cache_t,
                                                tparams)
    pairs = {"x": (dx_t[..., :dx.shape[-1]], dx), **{k: (d_params_t[k], d_params[k]) for k in npm.PARAMS}}
    for s, a, b in zip(npm.STATES, d_state0_t, d_state0, strict=True):
        pairs[f"{s}0"] = (a, b)
    errors = {k: float(np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300))
              for k, (a, b) in pairs.items()}
    assert max(errors.values()) <= 1e-10, errors


# -- 4. Triton kernels in the interpreter against torch ops ------------------------------

# triton_check.py sets TRITON_INTERPRET=1 before triton is imported, so it runs in its own
# process: one run over the whole corpus, each cell's failure reported, not fatal.
_TRITON_RUNNER = """
import json, sys, traceback
import triton_check
for path in sys.argv[1:]:
    try:
        print(json.dumps([path, triton_check.check(path)]), flush=True)
    except Exception:
        print(json.dumps([path, traceback.format_exc()[-3000:]]), flush=True)
"""


@cache
def _triton_results() -> dict[str, float | str]:
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                          str(ROOT / "tests" / "emit")])}
    r = subprocess.run([sys.executable, "-c", _TRITON_RUNNER, *(spec(n) for n in CORPUS)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return {Path(path).stem: value for path, value in map(json.loads, r.stdout.splitlines())}


@pytest.mark.slow  # the interpreter over 52 cells (the built-in cells run by default)
@pytest.mark.parametrize("name", CORPUS)
def test_triton_kernels_match_torch_ops(name):
    require_module("triton")
    results = _triton_results()
    assert isinstance(results[name], float), results[name]
    assert results[name] <= 1e-5


_VARLEN_RUNNER = """
import json, sys, traceback
import triton_varlen_check
for path in sys.argv[1:]:
    try:
        print(json.dumps([path, triton_varlen_check.check(path)]), flush=True)
    except Exception:
        print(json.dumps([path, traceback.format_exc()[-3000:]]), flush=True)
"""


@pytest.mark.slow
def test_triton_variable_lengths_match_each_sequence_alone():
    """batch_sizes in the Triton backend, for every corpus cell (see triton_varlen_check.py)."""
    require_module("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                          str(ROOT / "tests" / "emit")])}
    r = subprocess.run([sys.executable, "-c", _VARLEN_RUNNER, *(spec(n) for n in CORPUS)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    results = {Path(path).stem: value for path, value in map(json.loads, r.stdout.splitlines())}
    assert set(results) == set(CORPUS)
    failed = {name: value for name, value in results.items()
              if isinstance(value, str) or value[0] > 1e-12 or not value[1]}
    assert not failed, failed


# -- 5. ruff on every generated Python file ---------------------------------------------

@pytest.mark.parametrize("name", CORPUS)
def test_generated_code_passes_ruff(name, tmp_path):
    files = {}
    for target in ("numpy", "torch", "triton", "cuda", "onnx", "jax"):
        files.update(generate(spec(name), target))
    for filename, text in files.items():
        if filename.endswith(".py"):
            (tmp_path / filename).write_text(text)
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    r = subprocess.run([*cmd, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                        str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


# -- the other targets, and cells with a known twin ---------------------------------------

@pytest.mark.slow  # nvcc over 52 cells (the built-in cells compile by default)
def test_cuda_kernels_compile(tmp_path):
    """Every cell's .cu with nvcc, warnings as errors, as tests/emit/test_cuda.py does for
    the built-in cells (one architecture here, to keep it quick)."""
    nvcc = require_nvcc()
    sources = []
    for name in CORPUS:
        (cu,) = (text for f, text in generate(spec(name), "cuda").items() if f.endswith(".cu"))
        sources.append(tmp_path / f"{name}.cu")
        sources[-1].write_text(cu)
    assert not nvcc_errors(nvcc, sources, ["-gencode", "arch=compute_90,code=sm_90"], tmp_path)


@pytest.mark.parametrize("name", CORPUS)
def test_documentation_targets_generate(name):
    for target in ("latex", "markdown"):
        assert generate(spec(name), target)


def test_scrambled_statements_compute_the_lstm():
    ours, lstm = numpy_module(spec("scrambled")), numpy_module("lstm")
    assert set(ours.PARAMS) == set(lstm.PARAMS)
    rng = np.random.default_rng(5)
    params = lstm.init_params({"input": 3, "hidden": 4}, rng)
    x = rng.normal(size=(5, 2, 3))
    state0 = tuple(rng.normal(size=(2, 4)) for _ in lstm.STATES)
    a, fa, _ = ours.forward(x, state0, params)
    b, fb, _ = lstm.forward(x, state0, params)
    assert np.abs(a - b).max() <= 1e-14
    assert all(np.abs(u - v).max() <= 1e-14 for u, v in zip(fa, fb, strict=True))


def test_nested_layernorm_on_one_line_names_its_clash(tmp_path):
    # layernorm(layernorm(c)) would create alpha_hc twice: the README's documented error,
    # with the note to name the inner one (tests/corpus/layernorm_nested.gate does).
    path = tmp_path / "nested.gate"
    path.write_text("cell nested\ninput x\nstate h, c\n"
                    "c' = tanh(linear(x, h))\nh' = layernorm(layernorm(c')) * c\n")
    with pytest.raises(CheckError, match="alpha_hc") as info:
        generate(str(path), "numpy")
    assert "intermediate statement" in str(info.value.note)


# -- names the generated code uses, refused with a message (they broke it before) -----------

@pytest.mark.parametrize("name", ["device", "save_t", "keep_cache", "out", "F", "prev", "l"])
def test_names_of_the_generated_code_are_refused(name, tmp_path):
    path = tmp_path / "names.gate"
    path.write_text(f"cell names\ninput x\nstate h\n{name} = tanh(linear(x, h))\n"
                    f"h' = {name} * h\n")
    with pytest.raises(CheckError, match=f"'{name}'"):
        generate(str(path), "numpy")


def test_a_size_nothing_fixes_is_the_users_error(tmp_path):
    # before: EmitError ("size p cannot be read off any parameter"), an internal error
    path = tmp_path / "free.gate"
    path.write_text("cell free\ninput x\nstate h, a[p]\noutput a\n"
                    "a' = 0.5 * a + tanh(a)\nh' = tanh(linear(x, h))\n")
    with pytest.raises(CheckError, match="nothing fixes the size 'p' of 'a'") as info:
        generate(str(path), "numpy")
    assert info.value.span.line == 3


# -- known failures: values that read no other value -------------------------------------

CONSTANT_CELLS = {
    # sigmoid(0) prints as torch.sigmoid(0): torch functions take tensors, not numbers
    "const_activation": "state h\nz = sigmoid(h - h)\nh' = tanh(linear(x, h)) * z\n",
    # kk' = 2: the autograd reference (_reference) returns the number 2 as a final state
    "const_update": "state h, kk\nkk' = kk - kk + 2\nh' = tanh(linear(x, h)) * kk'\n",
}


@pytest.mark.parametrize("name", sorted(CONSTANT_CELLS))
def test_constant_values_are_refused(name):
    """A value that reads no input, state or parameter (terms that cancel) is a number,
    not a vector: the compiler says so at the statement instead of generating code."""
    text = f"cell {name}\ninput x\n{CONSTANT_CELLS[name]}"
    with pytest.raises(CheckError, match="is a constant: it reads no input, state or parameter"):
        build(parse(text, f"{name}.gate"))
