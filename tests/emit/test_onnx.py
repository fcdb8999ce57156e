"""The ONNX target: the forward pass as an ONNX Scan, run in onnxruntime and compared with
the NumPy module (each sequence alone, at its own length, for `lengths`); the torch module's
export_onnx; and torch.onnx.export of a generated module, which must refuse, never write a
model that computes something else."""

import ast
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import sympy
from conftest import ROOT, require_module, require_torch
from helpers import extra_inputs, numpy_module, small_sizes

from gatespec import cells, ir
from gatespec.check import load_module
from gatespec.derive import functions as fn
from gatespec.emit.onnx import SPELLINGS, OnnxPrinter
from gatespec.errors import CheckError, EmitError
from gatespec.pipeline import generate, plan_for

CORPUS = sorted(str(p) for p in (ROOT / "tests" / "corpus").glob("*.gate"))
# a few cells in the default run: every kind of step (two GEMM stages, layer norms, a
# projection, exponential gating, a second input, zoneout masks); all built-in cells and
# the corpus run with -m slow
QUICK = ["lstm", "gru", "lstm_layernorm", "lstm_proj", "slstm", "gru_cond", "lstm_zoneout",
         *(str(ROOT / "tests" / "corpus" / f"{name}.gate")
           for name in ("functions_a", "functions_b", "input_u_layernorm_out"))]
CELLS = [pytest.param(c, id=Path(c).stem, marks=() if c in QUICK else pytest.mark.slow)
         for c in [*cells.names(), *CORPUS]]
# further input sequences and masks of every kind: read through a linear map and
# element-wise, in the loop and before it, zoneout and dropout per step and per sequence
PACKED = ["gru_cond", "lstm_zoneout",
          *(str(ROOT / "tests" / "corpus" / f"{name}.gate")
            for name in ("masks_and_inputs", "context_pointwise", "zoneout_scan"))]


@cache
def onnx_module(spec: str):
    require_module("onnx")
    (name, text), = generate(spec, "onnx").items()
    return load_module(text, name[:-3])


def session(model):
    ort = require_module("onnxruntime")
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def rel_error(got, want) -> float:
    """max |got - want| over the largest |want|: the error at the array's own scale (zeros,
    as a state that only copies a zero state holds, must be met exactly)."""
    scale = max(np.abs(want).max(), np.finfo(want.dtype).tiny)
    return float(np.abs(got - want).max() / scale)


def setup(spec, dtype, seed=0):
    mod = numpy_module(spec)
    rng = np.random.default_rng(seed)
    sizes = small_sizes(mod)
    params = mod.init_params({s: sizes[s] for s in mod.SIZES}, rng)
    return mod, sizes, {k: v.astype(dtype) for k, v in params.items()}, rng


def batch(mod, sizes, rng, T, B, dtype):
    """x, the initial states and the further inputs ({} for most cells)."""
    x = rng.normal(size=(T, B, sizes[mod.INPUT_SIZE])).astype(dtype)
    state0 = tuple((0.5 * rng.normal(size=(B, sizes[mod.STATE_SIZES[s]]))).astype(dtype)
                   for s in mod.STATES)
    return x, state0, extra_inputs(mod, sizes, T, B, lambda shape: rng.normal(size=shape).astype(dtype))


def expected(mod, x, state0, params, tol, extras=None):
    """The NumPy module's outputs and final states for these arrays, computed in float64 (the
    answer to the model's own inputs), each with the error it may have: `tol`, or in float32
    twice the NumPy module's own float32 error where the cell is that ill-conditioned on the
    data (a layer norm over a few units of nearly equal values loses digits in any float32
    code, the NumPy module's included). Without masks= or rng=, the NumPy module reads each
    mask's expectation, as an ONNX graph does."""
    extras = extras or {}
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    s64 = state0 and tuple(v.astype(np.float64) for v in state0)
    e64 = {k: v.astype(np.float64) for k, v in extras.items()}
    out, final, _ = mod.forward(x.astype(np.float64), s64, p64, keep_cache=False, **e64)
    if x.dtype == np.float64:
        return [(a, tol) for a in (out, *final)]
    out32, final32, _ = mod.forward(x, state0, params, keep_cache=False, **extras)
    return [(a, max(tol, 2 * rel_error(a32, a)))
            for a, a32 in zip((out, *final), (out32, *final32), strict=True)]


def check_against_numpy(spec, dtype, tol):
    """One model for two (T, B): full length from zeros, and with lengths and given states,
    each sequence compared with the NumPy forward of that sequence alone."""
    mod, sizes, params, rng = setup(spec, dtype)
    ox = onnx_module(spec)
    plain = session(ox.model_proto(params, dtype=dtype))
    ragged = session(ox.model_proto(params, dtype=dtype, lengths=True, initial_state=True))
    for T, B in ((5, 3), (2, 4)):
        x, state0, extras = batch(mod, sizes, rng, T, B, dtype)
        out, *finals = plain.run(None, {"x": x, **extras})
        assert out.dtype == dtype and out.shape == (T, B, sizes[mod.OUTPUT_SIZE])
        for got, (want, bound) in zip((out, *(f[0] for f in finals)),
                                      expected(mod, x, None, params, tol, extras), strict=True):
            assert rel_error(got, want) <= bound
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T  # one sequence at full length, and (T > 1) others shorter
        lengths[1] = max(1, T - 2)
        feeds = {"x": x, "lengths": lengths.astype(np.int64), **extras}
        feeds.update({f"{s}_0": v[None] for s, v in zip(mod.STATES, state0, strict=True)})
        out, *finals = ragged.run(None, feeds)
        assert any(np.abs(v).max() > 0 for v in (out, *finals)), "nothing compared"
        for b, n in enumerate(lengths):
            assert not out[n:, b].any(), "outputs past a sequence's length must be zero"
            alone = expected(mod, x[:n, b:b + 1], tuple(v[b:b + 1] for v in state0), params, tol,
                             {k: v[:n, b:b + 1] for k, v in extras.items()})
            for got, (want, bound) in zip((out[:n, b:b + 1], *(f[0, b:b + 1] for f in finals)),
                                          alone, strict=True):
                assert rel_error(got, want) <= bound, (b, n)


@pytest.mark.parametrize("spec", CELLS)
def test_onnxruntime_matches_numpy_float32(spec):
    check_against_numpy(spec, np.float32, 1e-5)


@pytest.mark.parametrize("spec", ["lstm", "lstm_layernorm", "gru",
                                  pytest.param(str(ROOT / "tests" / "corpus" / "row_reductions.gate"),
                                               id="row_reductions"),
                                  *(pytest.param(c, id=Path(c).stem) for c in PACKED)])
def test_onnxruntime_matches_numpy_float64(spec):
    """In float64 the two agree to rounding: a small error in the graph cannot hide in
    float32's tolerance. Cells with masks: the graph reads their expectation, the NumPy
    module's forward without masks= or rng=."""
    check_against_numpy(spec, np.float64, 1e-12)


# Cells for the paths no built-in or corpus cell takes: a state and the output made from
# parameters alone (one row, broadcast to (B, n) in the step), and no parameter at all
# (every size, and the zero initial state's, read off the input)
EDGE_CELLS = {
    "from_params": """cell from_params "a state and the output from parameters alone"
input x
state h, kk
output y
kk' = diag(h - h + 1)
y = kk' * 2
h' = tanh(linear(x, h)) + kk
""",
    "division": """cell division "quotients and powers, alone and in products"
input x
state h
q = 1 / (2 + h * h)
h' = tanh(linear(x, h)) + q - 2 / (1 + h * h * h * h * h * h) + h / 3 + 0.25 * h / (3 + q)
""",
    "no_params": """cell no_params "no parameter at all: every size from the input"
input x[hidden]
state h
h' = tanh(x + h)
""",
    # a further input and a mask's expectation sized from x alone, no parameter
    "no_params_inputs": """cell no_params_inputs "a second input and a mask, no parameter"
input x[ctx], u[ctx]
state h[ctx]
h' = tanh(h + u + x) * dropout(u, 0.5, per=step)
""",
    # a mask on a value of parameters alone: made (T, B, n) before the loop all the same
    "params_masked": """cell params_masked "a mask on parameters alone"
input x
state h
d = dropout(diag(h - h + 1), 0.5)
h' = tanh(linear(x, h)) + zoneout(d, h, 0.2)
""",
}


def _deep(levels: int) -> str:
    """An expression nested `levels` deep, sums in products in sums: printed with
    temporaries, so no line nests more than a few calls."""
    e = "h"
    for k in range(levels):
        e = f"(x0 * {e} + 0.5)" if k % 2 else f"({e} - x0) * 0.9"
    return f"""cell deep "nested"\ninput x\nstate h\nx0 = tanh(linear(x))
h' = tanh({e}) + tanh(linear(h, bias=false))\n"""


EDGE_CELLS["deep"] = _deep(45)


@pytest.mark.parametrize("name", sorted(EDGE_CELLS))
def test_edge_cells(name, tmp_path):
    path = tmp_path / f"{name}.gate"
    path.write_text(EDGE_CELLS[name])
    check_against_numpy(str(path), np.float32, 1e-5)
    check_against_numpy(str(path), np.float64, 1e-12)


def numpy_stack(mod, layers, x, state0, lengths):
    """Several layers, both directions, each sequence alone at its own length, in NumPy."""
    outputs, finals = [], [[] for _ in mod.STATES]
    for b, n in enumerate(lengths):
        seq, k, per_state = x[:n, b:b + 1], 0, [[] for _ in mod.STATES]
        for layer in layers:
            outs = []
            for d, params in enumerate(layer):
                s0 = tuple(v[k, b:b + 1] for v in state0)
                out, final, _ = mod.forward(seq if d == 0 else seq[::-1], s0, params, False)
                outs.append(out if d == 0 else out[::-1])
                for lst, value in zip(per_state, final, strict=True):
                    lst.append(value[0])
                k += 1
            seq = np.concatenate(outs, axis=-1)
        outputs.append(seq[:, 0])
        for lst, values in zip(finals, per_state, strict=True):
            lst.append(np.stack(values))
    return outputs, [np.stack(v, axis=1) for v in finals]


@pytest.mark.parametrize("spec", ["lstm_proj", "gru_torch"])
def test_two_layers_bidirectional_with_lengths(spec):
    """The reverse direction starts at each sequence's own last step."""
    mod, sizes, _, rng = setup(spec, np.float64)
    out_size = sizes[mod.OUTPUT_SIZE]
    layers = []
    for k in range(2):
        layer_sizes = {**sizes, "input": sizes["input"] if k == 0 else 2 * out_size}
        layers.append(tuple(mod.init_params({s: layer_sizes[s] for s in mod.SIZES}, rng)
                            for _ in range(2)))
    sess = session(onnx_module(spec).model_proto(layers, dtype=np.float64, lengths=True,
                                                 initial_state=True, batch_first=True))
    for T, B in ((6, 3), (3, 2)):
        x, _, _ = batch(mod, sizes, rng, T, B, np.float64)
        state0 = [0.5 * rng.normal(size=(4, B, sizes[mod.STATE_SIZES[s]])) for s in mod.STATES]
        lengths = np.array([T, 1, T - 1][:B], np.int64)
        feeds = {"x": x.transpose(1, 0, 2), "lengths": lengths}
        feeds.update({f"{s}_0": v for s, v in zip(mod.STATES, state0, strict=True)})
        out, *finals = sess.run(None, feeds)
        want, want_finals = numpy_stack(mod, layers, x, state0, lengths)
        assert out.shape == (B, T, 2 * out_size)
        for b, n in enumerate(lengths):
            assert rel_error(out[b, :n], want[b]) <= 1e-12
            assert not out[b, n:].any()
        for got, value in zip(finals, want_finals, strict=True):
            assert rel_error(got, value) <= 1e-12


def test_model_is_deterministic_and_checked():
    onnx = require_module("onnx")
    _, _, params, _ = setup("lstm", np.float32)
    ox = onnx_module("lstm")
    a = ox.model_proto(params, lengths=True).SerializeToString()
    assert a == ox.model_proto(params, lengths=True).SerializeToString()
    model = onnx.load_from_string(a)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["x", "lengths"]
    assert [o.name for o in model.graph.output] == ["outputs", "h_n", "c_n"]
    assert [i.name for i in model.graph.initializer][:len(ox.PARAMS)] == list(ox.PARAMS)
    assert [n.op_type for n in model.graph.node].count("Scan") == 1


@pytest.mark.parametrize("opset", [15, 18, 21])
def test_to_onnx_writes_a_model(tmp_path, opset):
    """Written and read back, at the first opset it is built for and at later ones (layer
    norms' ReduceMean changed at 18)."""
    mod, sizes, params, rng = setup("lstm_layernorm", np.float64)
    path = onnx_module("lstm_layernorm").to_onnx(params, tmp_path / "m.onnx", opset=opset,
                                                 dtype=np.float64)
    model = require_module("onnx").load(path)
    assert model.opset_import[0].version == opset
    x, _, _ = batch(mod, sizes, rng, 3, 2, np.float64)
    out = session(model).run(None, {"x": x})[0]
    assert rel_error(out, mod.forward(x, None, params, keep_cache=False)[0]) <= 1e-12


def test_bad_arguments_are_refused():
    _, _, params, _ = setup("lstm", np.float32)
    ox = onnx_module("lstm")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        ox.model_proto(params, dtype=np.float16)
    with pytest.raises(ValueError, match="opset must be from 15"):
        ox.model_proto(params, opset=14)
    with pytest.raises(ValueError, match="keys of PARAMS"):
        ox.model_proto({k: v for k, v in params.items() if k != "b_i"})
    with pytest.raises(ValueError, match=r"params\['W_ih'\] has shape \(5, 4\), but size"):
        ox.model_proto({**params, "W_ih": np.zeros((5, 4))})
    with pytest.raises(ValueError, match="layer 1 must be"):
        ox.model_proto([params, (params, params)])


def test_generated_module_imports_only_numpy_and_onnx():
    text = (ROOT / "generated" / "lstm_onnx.py").read_text()
    imports = [ln for ln in text.splitlines() if ln.startswith(("import", "from"))]
    assert imports == ["import numpy as np", "import onnx",
                       "from onnx import TensorProto, helper, numpy_helper"]
    ast.parse(text)


def test_every_function_is_spelt_and_run_by_default():
    """Each function of the language has an ONNX spelling, and the cells of the default run
    use every one of them on values (not constants, which are folded)."""
    functions = set(fn.LANGUAGE_FUNCTIONS.values())
    assert set(SPELLINGS) == functions
    used = set()
    for spec in QUICK:
        for node in plan_for(spec).derived.nodes:
            if isinstance(node, ir.Pointwise):
                used |= {type(f) for f in node.expr.atoms(sympy.Function)}
    assert functions <= used, functions - used


def test_what_onnx_cannot_express_is_refused():
    """Derivative helpers never reach a forward pass; one that did is a clear EmitError."""
    x = fn.Sign(sympy.Symbol("a"))
    with pytest.raises(EmitError, match="ONNX target cannot express sign"):
        OnnxPrinter({}).statement("y", x)


def test_further_inputs_are_graph_inputs_named_after_them(tmp_path):
    """gru_cond's context c is a graph input after x, shaped as x with its own size; the
    command line writes the module (the ONNX target used to refuse it)."""
    from gatespec.cli import main

    onnx = require_module("onnx")
    mod, sizes, params, _ = setup("gru_cond", np.float32)
    model = onnx_module("gru_cond").model_proto(params, lengths=True, initial_state=True,
                                                batch_first=True)
    onnx.checker.check_model(model, full_check=True)
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    assert shapes == {"x": ["B", "T", sizes["input"]], "c": ["B", "T", sizes["context"]],
                      "lengths": ["B"], "h_0": [1, "B", sizes["hidden"]]}
    assert list(shapes) == ["x", "c", "lengths", "h_0"]
    assert main(["generate", "gru_cond", "lstm_zoneout", "--target", "onnx",
                 "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gru_cond_onnx.py",
                                                          "lstm_zoneout_onnx.py"]


@pytest.mark.parametrize("spec", ["gru_cond", pytest.param(PACKED[2], id="masks_and_inputs")])
def test_two_layers_bidirectional_with_further_inputs(spec):
    """Every layer reads the further inputs as given; the reverse direction reads them
    reversed within each sequence's length, as x."""
    mod, sizes, _, rng = setup(spec, np.float64)
    layers = []
    for k in range(2):
        layer_sizes = {**sizes, "input": sizes["input"] if k == 0 else 2 * sizes["hidden"]}
        layers.append(tuple(mod.init_params({s: layer_sizes[s] for s in mod.SIZES}, rng)
                            for _ in range(2)))
    sess = session(onnx_module(spec).model_proto(layers, dtype=np.float64, lengths=True))
    T, B = 5, 3
    x, _, extras = batch(mod, sizes, rng, T, B, np.float64)
    assert extras
    lengths = np.array([T, 2, T - 1], np.int64)
    out, *_ = sess.run(None, {"x": x, "lengths": lengths, **extras})
    for b, n in enumerate(lengths):
        seq = x[:n, b:b + 1]
        given = {k: v[:n, b:b + 1] for k, v in extras.items()}
        for layer in layers:
            outs = [mod.forward(seq, None, layer[0], False, **given)[0],
                    mod.forward(seq[::-1], None, layer[1], False,
                                **{k: v[::-1] for k, v in given.items()})[0][::-1]]
            seq = np.concatenate(outs, axis=-1)
        assert rel_error(out[:n, b:b + 1], seq) <= 1e-12 and not out[n:, b].any()


def test_layers_must_agree_on_a_further_inputs_size():
    """context_pointwise reads v[input] in every layer: a second layer whose input is the
    first one's output, of another size, cannot read it."""
    mod, sizes, params, rng = setup(PACKED[3], np.float64)
    second = mod.init_params({**sizes, "input": sizes["hidden"] + 1}, rng)
    with pytest.raises(ValueError, match=r"input 'v' is read by every layer, but the layers' "
                                         r"parameters give its size 'input' as \[4, 6\]"):
        onnx_module(PACKED[3]).model_proto([params, second])


@pytest.mark.parametrize(("name", "why"), [
    ("h_0", "the initial or final state of a state"),
    ("h_n", "the initial or final state of a state"),
    ("pre_u", "a prefix the graph builder gives its own tensors"),
    ("l2_u", "a prefix the graph builder gives its own tensors"),
])
def test_an_input_named_as_a_graph_tensor_is_refused(name, why, tmp_path, capsys):
    """A further input is a graph input of its own name, so it cannot take one the graph
    gives another tensor: the user's error at the declaration (exit 2), not a graph that
    onnx's checker rejects later."""
    from gatespec.cli import main

    path = tmp_path / "clash.gate"
    path.write_text(f'cell clash "x"\ninput x, {name}[hidden]\nstate h\n'
                    f"h' = tanh(linear(x, h) + {name})\n")
    with pytest.raises(CheckError) as info:
        generate(str(path), "onnx")
    err = info.value
    assert err.message == (f"the onnx target names a graph input after each input sequence, "
                           f"and '{name}' is {why}")
    assert err.render().splitlines()[1:3] == [f"    input x, {name}[hidden]",
                                              " " * 13 + "^" + "~" * (len(name) - 1)]
    assert main(["generate", str(path), "--target", "onnx", "-o", str(tmp_path / "out")]) == 2
    assert "error: the onnx target names a graph input" in capsys.readouterr().err
    generate(str(path), "numpy")  # the other targets take the name


# -- the torch module -------------------------------------------------------------------

@pytest.fixture
def torch_folder(tmp_path, monkeypatch):
    """gru_torch's torch and ONNX modules generated into one folder, importable."""
    require_torch()
    require_module("onnx")
    for target in ("torch", "onnx"):
        for name, text in generate("gru_torch", target).items():
            (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("gru_reset_after_torch", None)


def test_torch_export_onnx_matches_forward(torch_folder):
    import torch
    from gru_reset_after_torch import GRUResetAfter

    torch.manual_seed(0)
    model = GRUResetAfter(4, 5, num_layers=2, bidirectional=True, batch_first=True,
                     dtype=torch.float64)
    path = model.export_onnx(torch_folder / "model.onnx", initial_state=True)
    sess = session(require_module("onnx").load(path))
    for B, T in ((3, 6), (2, 1)):
        x = torch.randn(B, T, 4, dtype=torch.float64)
        h0 = torch.randn(4, B, 5, dtype=torch.float64)
        with torch.no_grad():
            y, h_n = model(x, h0)
        out, h = sess.run(None, {"x": x.numpy(), "h_0": h0.numpy()})
        assert rel_error(out, y.numpy()) <= 1e-12
        assert rel_error(h, h_n.numpy()) <= 1e-12


def test_torch_export_onnx_with_lengths_matches_forward_with_lengths(torch_folder):
    """The model's lengths= path and the ONNX model's "lengths" input agree: zeros past
    each length, each sequence's final state at its own end, both directions."""
    import torch
    from gru_reset_after_torch import GRUResetAfter

    torch.manual_seed(1)
    model = GRUResetAfter(4, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    path = model.export_onnx(torch_folder / "lengths.onnx", lengths=True)
    sess = session(require_module("onnx").load(path))
    x = torch.randn(6, 3, 4, dtype=torch.float64)
    lengths = torch.tensor([2, 6, 4])
    with torch.no_grad():
        y, h_n = model(x, lengths=lengths)
    out, h = sess.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})
    assert rel_error(out, y.numpy()) <= 1e-12 and not out[2:, 0].any()
    assert rel_error(h, h_n.numpy()) <= 1e-12


@pytest.mark.parametrize(("spec", "cls"), [("gru_cond", "GRUCond"),
                                          ("lstm_zoneout", "LSTMZoneout")])
def test_torch_export_onnx_of_inputs_and_masks_matches_eval_mode(spec, cls, tmp_path,
                                                                 monkeypatch):
    """A further input is the graph input of its name; zoneout's masks are their
    expectation, as the module computes in eval mode (and not in training mode, so the
    comparison sees the masks). Two layers, both directions, lengths, batch_first."""
    require_torch()
    require_module("onnx")
    import torch

    for target in ("torch", "onnx"):
        for name, text in generate(spec, target).items():
            (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(f"{spec}_torch", None)
    module = __import__(f"{spec}_torch")
    sizes = {"context_size": 3} if spec == "gru_cond" else {}
    torch.manual_seed(2)
    model = getattr(module, cls)(4, 5, **sizes, num_layers=2, bidirectional=True,
                                 batch_first=True, dtype=torch.float64).eval()
    sess = session(require_module("onnx").load(model.export_onnx(
        tmp_path / "m.onnx", lengths=True, initial_state=True)))
    B, T = 3, 6
    x = torch.randn(B, T, 4, dtype=torch.float64)
    extras = {"c": torch.randn(B, T, 3, dtype=torch.float64)} if spec == "gru_cond" else {}
    state = tuple(torch.randn(4, B, 5, dtype=torch.float64) for _ in module.STATES)
    lengths = torch.tensor([6, 2, 4])
    with torch.no_grad():
        y, final = model(x, state if len(state) > 1 else state[0], lengths=lengths, **extras)
    feeds = {"x": x.numpy(), "lengths": lengths.numpy(), **{k: v.numpy() for k, v in extras.items()}}
    feeds.update({f"{s}_0": v.numpy() for s, v in zip(module.STATES, state, strict=True)})
    out, *finals = sess.run(None, feeds)
    assert rel_error(out, y.numpy()) <= 1e-12 and not out[1, 2:].any()  # (B, T, ...)
    for got, want in zip(finals, final if isinstance(final, tuple) else (final,), strict=True):
        assert rel_error(got, want.numpy()) <= 1e-12
    sys.modules.pop(f"{spec}_torch", None)
    if spec == "lstm_zoneout":
        with torch.no_grad():
            trained = model.train()(x, state, lengths=lengths, generator=torch.Generator().manual_seed(0))[0]
        assert rel_error(out, trained.numpy()) > 1e-3, "the masks made no difference"


def test_torch_export_onnx_without_its_sibling(tmp_path, monkeypatch):
    require_torch()
    (name, text), = generate("gru_torch", "torch").items()
    (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("gru_reset_after_torch", None)
    from gru_reset_after_torch import GRUResetAfter

    with pytest.raises(RuntimeError, match=r"gatespec generate gru_reset_after --target onnx"):
        GRUResetAfter(3, 4).export_onnx(tmp_path / "m.onnx")
    sys.modules.pop("gru_reset_after_torch", None)
    assert not (tmp_path / "m.onnx").exists()
    import gatespec

    in_memory = gatespec.compile("gru_torch", target="torch").GRUResetAfter(3, 4)
    with pytest.raises(RuntimeError, match="compiled in memory: write both with gatespec.generate"):
        in_memory.export_onnx(tmp_path / "m.onnx")


def refuses_export(model, path, dynamo):
    import torch

    x = torch.randn(4, 2, 3)
    with pytest.raises(Exception) as refused:
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=dynamo)
    assert "model.export_onnx(path)" in str(refused.value)
    assert "--target onnx" in str(refused.value)
    assert not path.exists(), "a model was written"


def test_torch_onnx_export_is_refused_torchscript(tmp_path):
    """The TorchScript-based exporter used to write a model with no inputs and zero outputs."""
    require_torch()
    import warnings

    import gatespec

    model = gatespec.compile("lstm", target="torch").LSTM(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        refuses_export(model, tmp_path / "m.onnx", dynamo=False)


@pytest.mark.slow
def test_torch_onnx_export_is_refused_dynamo(tmp_path):
    require_torch()
    require_module("onnxscript")
    import gatespec

    model = gatespec.compile("gru_torch", target="torch").GRUResetAfter(3, 4)
    # torch.export traces the layer's operator (its fake implementation), so the exporter
    # stops at translation, naming the operator, and writes nothing
    import torch

    path = tmp_path / "m.onnx"
    with pytest.raises(Exception, match=r"No ONNX function found for .*gatespec\.gru_reset_after_"):
        torch.onnx.export(model.eval(), (torch.randn(4, 2, 3),), str(path), dynamo=True)
    assert not path.exists(), "a model was written"

