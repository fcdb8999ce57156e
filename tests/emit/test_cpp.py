"""The CPU backend (impl="cpp"): the time loop in C++, built with the machine's compiler.

Checked against the torch-ops backend (itself checked against autograd through the cell as
written), against autograd directly, by gradcheck, against torch.nn, and for variable-length
batches against each sequence run alone. Builds cost seconds each: the default run builds two
cells (in parallel, into a build cache of this session); the slow run every built-in cell and
the corpus."""

import importlib.util
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, require_torch
from helpers import extra_inputs, input_width, layer_grads, module_class, small_sizes

from gatespec import cells
from gatespec.pipeline import generate

torch = require_torch()
F64 = torch.float64
DEFAULT = ["lstm", "gru"]  # the article's cells: one GEMM stage, and two (r * h)
CORPUS = sorted(str(p) for p in (ROOT / "tests" / "corpus").glob("*.gate"))


@pytest.fixture(scope="session")
def cpp_cache(tmp_path_factory):
    """A build cache for this session, so every test really builds what it runs."""
    if shutil.which(os.environ.get("CXX") or "c++") is None and shutil.which("g++") is None:
        if os.environ.get("CI"):
            pytest.fail("no C++ compiler: CI needs g++ to build the cpp backend")
        pytest.skip("no C++ compiler")
    folder = tmp_path_factory.mktemp("cpp-cache")
    old = os.environ.get("GATESPEC_CACHE_DIR")
    os.environ["GATESPEC_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("GATESPEC_CACHE_DIR", None)
    else:
        os.environ["GATESPEC_CACHE_DIR"] = old


_MODULES: dict[str, tuple] = {}


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"{path.stem}_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def modules(specs, folder_factory):
    """(torch module, cpp module) per cell, generated side by side and built, two at a time."""
    missing = [s for s in specs if s not in _MODULES]
    for spec in missing:
        folder = folder_factory.mktemp("cpp")
        for target in ("torch", "cpp"):
            for name, text in generate(spec, target).items():
                (folder / name).write_text(text, "utf-8")
        ops = _import(next(folder.glob("*_torch.py")))
        _MODULES[spec] = (ops, ops._sibling("cpp"))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda s: _MODULES[s][1].build(quiet=True), missing))
    return {s: _MODULES[s] for s in specs}


def _data(ops, dtype, T=4, B=3, seed=0):
    sizes = small_sizes(ops, hidden=19, input_=3, other=5)  # 19: a vector's tail, masked
    gen = torch.Generator().manual_seed(seed)
    params = {k: 0.5 * torch.randn(tuple(sizes[s] for s in shape), generator=gen, dtype=dtype)
              for k, shape in ops.PARAMS.items()}
    # the packed x of the backends: further inputs and masks side by side with x
    x = torch.randn(T, B, input_width(ops, sizes), generator=gen, dtype=dtype)
    state0 = [0.5 * torch.randn(B, sizes[ops.STATE_SIZES[s]], generator=gen, dtype=dtype)
              for s in ops.STATES]
    if "n" in ops.STATES and "m" in ops.STATES:  # sLSTM's normaliser is positive
        state0[ops.STATES.index("n")] = state0[ops.STATES.index("n")].abs() + 0.5
    return x, tuple(state0), params, gen


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item()


def check_against_torch_ops(ops, cpp, dtype):
    x, state0, params, gen = _data(ops, dtype)
    out1, fin1, cache1 = ops._forward(x, state0, params, True)
    out2, fin2, cache2 = cpp.forward(x, state0, params, True)
    out3, fin3, none = cpp.forward(x, state0, params, False)  # inference: one step saved
    assert none is None and torch.equal(out2, out3)
    d_out = torch.randn(out1.shape, generator=gen, dtype=dtype)
    d_fin = tuple(torch.randn(s.shape, generator=gen, dtype=dtype) for s in fin1)
    g1 = ops._backward(d_out, d_fin, cache1, params)
    g2 = cpp.backward(d_out, d_fin, cache2, params)
    pairs = [(out1, out2), *zip(fin1, fin2, strict=True), (g1[0], g2[0]),
             *zip(g1[1], g2[1], strict=True), *((g1[2][k], g2[2][k]) for k in g1[2])]
    return max(_rel(b, a) for a, b in pairs)


def check_batch_sizes(ops, cpp, dtype):
    """A batch of lengths 4, 2, 2, 1 against each sequence run alone at its own length:
    outputs, zeros past the end, final states, and every gradient (d_outputs past the end
    must be ignored)."""
    lengths = [4, 2, 2, 1]
    x, state0, params, gen = _data(ops, dtype, T=4, B=4, seed=1)
    batch_sizes = torch.tensor([sum(n > t for n in lengths) for t in range(4)])
    out, fin, cache = cpp.forward(x, state0, params, True, batch_sizes=batch_sizes)
    d_out = torch.randn(out.shape, generator=gen, dtype=dtype)
    d_fin = tuple(torch.randn(s.shape, generator=gen, dtype=dtype) for s in fin)
    dx, d_state0, d_params = cpp.backward(d_out, d_fin, cache, params, batch_sizes=batch_sizes)
    worst = 0.0
    sums = {k: torch.zeros_like(v) for k, v in params.items()}
    for row, n in enumerate(lengths):
        s0 = tuple(s[row:row + 1] for s in state0)
        o, f, c = ops._forward(x[:n, row:row + 1], s0, params, True)
        g = ops._backward(d_out[:n, row:row + 1], tuple(d[row:row + 1] for d in d_fin), c, params)
        worst = max(worst, _rel(out[:n, row:row + 1], o), _rel(dx[:n, row:row + 1], g[0]))
        assert not out[n:, row].any() and not dx[n:, row].any()
        for a, b, da, db in zip(fin, f, d_state0, g[1], strict=True):
            worst = max(worst, _rel(a[row:row + 1], b), _rel(da[row:row + 1], db))
        for k in sums:
            sums[k] += g[2][k]
    return max(worst, *(_rel(d_params[k], sums[k]) for k in sums))


def check_gradcheck(ops, cpp):
    sizes = small_sizes(ops, hidden=3, input_=2, other=2)
    gen = torch.Generator().manual_seed(1)

    def rand(*shape):
        return (0.5 * torch.randn(tuple(shape), generator=gen, dtype=F64)).requires_grad_()

    x = rand(3, 2, sizes[ops.INPUT_SIZE])
    extras = extra_inputs(ops, sizes, 3, 2, lambda shape: rand(*shape))
    state0 = [rand(2, sizes[ops.STATE_SIZES[s]]) for s in ops.STATES]
    params = [rand(*(sizes[s] for s in shape)) for shape in ops.PARAMS.values()]
    if "n" in ops.STATES and "m" in ops.STATES:
        state0[ops.STATES.index("n")] = (state0[ops.STATES.index("n")].detach().abs()
                                         + 0.5).requires_grad_()
    n = len(state0)
    assert ops._backend("cpp", x) is cpp  # the sibling beside the torch module

    k = len(extras)

    def fused(x, *tensors):  # the layer's autograd path: the custom operators, impl="cpp"
        outputs, final = ops.run_layer(x, tensors[k:k + n], dict(zip(ops.PARAMS, tensors[k + n:],
                                                                     strict=True)), "cpp",
                                       **dict(zip(extras, tensors[:k], strict=True)))
        return outputs, *final

    return torch.autograd.gradcheck(fused, (x, *extras.values(), *state0, *params))


def check_against_autograd(ops):
    """The module with impl="cpp" against impl="autograd" (the cell as written): two layers."""
    sizes = small_sizes(ops)
    # a second layer reads the first's output: not where a state or the input has another size
    stackable = ops.INPUT_SIZE == "input" and "input" not in ops.STATE_SIZES.values()
    # nor where a further input has x's size: the layers would disagree on it
    stackable = stackable and ops.INPUT_SIZE not in getattr(ops, "EXTRA_INPUTS", {}).values()
    torch.manual_seed(0)
    layer = module_class(ops)(sizes["input"], sizes["hidden"],
                              *(sizes[s] for s in ops.SIZES if s not in ("input", "hidden")),
                              num_layers=2 if stackable else 1, dtype=F64)
    x = torch.randn(5, 3, sizes[ops.INPUT_SIZE], dtype=F64, requires_grad=True)
    state = tuple(torch.randn(layer.num_layers, 3, sizes[ops.STATE_SIZES[s]], dtype=F64,
                              requires_grad=True) for s in ops.STATES)
    state = state[0] if len(state) == 1 else state
    extras = extra_inputs(ops, sizes, 5, 3, lambda shape: torch.randn(
        shape, dtype=F64, requires_grad=True))
    out_c, fin_c, g_c = layer_grads(layer, x, state, "cpp", extras)
    out_a, fin_a, g_a = layer_grads(layer, x, state, "autograd", extras)
    return max(_rel(out_c, out_a), *(_rel(a, b) for a, b in zip(fin_c, fin_a, strict=True)),
               *(_rel(a, b) for a, b in zip(g_c, g_a, strict=True)))


@pytest.mark.parametrize("name", DEFAULT)
def test_cpp_matches_torch_ops_autograd_and_gradcheck(name, cpp_cache, tmp_path_factory):
    ops, cpp = modules(DEFAULT, tmp_path_factory)[name]
    assert check_against_torch_ops(ops, cpp, F64) <= 1e-12
    assert check_against_torch_ops(ops, cpp, torch.float32) <= 1e-5
    assert check_batch_sizes(ops, cpp, F64) <= 1e-12
    assert check_against_autograd(ops) <= 1e-10
    assert check_gradcheck(ops, cpp)


def test_lstm_cpp_is_torch_nn_lstm(cpp_cache, tmp_path_factory):
    ops, _ = modules(["lstm"], tmp_path_factory)["lstm"]
    assert torch_nn_error(ops, torch.nn.LSTM, {}, F64) <= 1e-10
    assert torch_nn_error(ops, torch.nn.LSTM, {}, torch.float32) <= 1e-5


def torch_nn_error(ops, torch_cls, kwargs, dtype):
    torch.manual_seed(3)
    ref = torch_cls(4, 5, num_layers=2, bidirectional=True, dtype=dtype, **kwargs)
    ours = module_class(ops).from_torch(ref, impl="cpp")
    x1 = torch.randn(6, 3, 4, dtype=dtype, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    out1, _ = ref(x1)
    out2, _ = ours(x2)
    g = torch.randn_like(out1)
    (out1 * g).sum().backward()
    (out2 * g).sum().backward()
    return max(_rel(out2, out1), _rel(x2.grad, x1.grad))


def test_auto_picks_cpp_on_the_cpu_and_says_when_it_cannot(cpp_cache, tmp_path_factory,
                                                          monkeypatch, tmp_path):
    ops, cpp = modules(["lstm"], tmp_path_factory)["lstm"]
    x = torch.zeros(2, 1, 3)
    assert ops._backend("auto", x) is cpp
    assert ops._backend("auto", x.to(torch.bfloat16)) is ops._TORCH_OPS
    # nothing built and no compiler: a warning, and the torch-ops loop
    monkeypatch.setenv("GATESPEC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.warns(UserWarning, match="torch-ops loop: .*no C\\+\\+ compiler was found"):
        assert ops._backend("auto", x) is ops._TORCH_OPS
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler was found"):
        cpp.build()


def test_cpp_refuses_what_it_does_not_run(cpp_cache, tmp_path_factory):
    ops, cpp = modules(["lstm"], tmp_path_factory)["lstm"]
    x, state0, params, _ = _data(ops, F64)
    with pytest.raises(ValueError, match="float32 and float64"):
        cpp.forward(x.half(), state0, params, False)
    with pytest.raises(ValueError, match="batch_sizes must have length T"):
        cpp.forward(x, state0, params, False, batch_sizes=torch.tensor([3, 2]))


def test_build_command_without_a_compiler(tmp_path):
    env = {**os.environ, "CXX": str(tmp_path / "none"), "GATESPEC_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "gatespec", "build", "lstm"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2 and "no C++ compiler was found" in r.stderr


@pytest.mark.slow
def test_build_command_builds_what_the_module_loads(tmp_path):
    env = {**os.environ, "GATESPEC_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "gatespec", "build", "srnn"], capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.split()[0])
    assert path.exists() and "built in" in r.stdout
    r = subprocess.run([sys.executable, "-m", "gatespec", "build", "srnn"], capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 0 and "cached" in r.stdout and Path(r.stdout.split()[0]) == path


ALL = [*cells.names(), *CORPUS]


@pytest.mark.slow
def test_every_cell_and_the_corpus_on_cpp(cpp_cache, tmp_path_factory):
    built = modules(ALL, tmp_path_factory)
    failures = {}
    checks = {  # name: (check, tolerance)
        "torch ops f64": (lambda ops, cpp: check_against_torch_ops(ops, cpp, F64), 1e-12),
        "torch ops f32": (lambda ops, cpp: check_against_torch_ops(ops, cpp, torch.float32), 1e-5),
        "batch_sizes": (lambda ops, cpp: check_batch_sizes(ops, cpp, F64), 1e-12),
        "autograd": (lambda ops, cpp: check_against_autograd(ops), 1e-10),
        "gradcheck": (lambda ops, cpp: 0.0 if check_gradcheck(ops, cpp) else 1.0, 0.0),
    }
    for spec, (ops, cpp) in built.items():
        for name, (check, tol) in checks.items():
            try:
                error = check(ops, cpp)
            except Exception as exc:  # every cell's failures at once, not the first alone
                failures.setdefault(spec, {})[name] = repr(exc)[:300]
                continue
            if not error <= tol:
                failures.setdefault(spec, {})[name] = error
    assert not failures, failures


@pytest.mark.slow
@pytest.mark.parametrize("name,layer,kwargs", [("lstm", "LSTM", {}), ("gru_torch", "GRU", {}),
                                               ("srnn", "RNN", {"nonlinearity": "tanh"}),
                                               ("lstm_proj", "LSTM", {"proj_size": 3})])
def test_torch_nn_parity_on_cpp(name, layer, kwargs, cpp_cache, tmp_path_factory):
    ops, _ = modules([name], tmp_path_factory)[name]
    assert torch_nn_error(ops, getattr(torch.nn, layer), kwargs, F64) <= 1e-10
