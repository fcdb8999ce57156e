"""Weight-layout converters (gatespec/convert.py).

* Round trips gatespec -> framework -> gatespec (identity) and framework -> gatespec ->
  framework (weights identical, summed biases preserved) for every supported pair.
* torch: state dicts loaded into the real torch.nn.LSTM / GRU / RNN / LSTM(proj_size),
  two layers, bidirectional, against the generated NumPy module, both directions.
* ONNX and Keras (not installed): the converted arrays run through small NumPy
  implementations written from the ONNX operator spec and the Keras cell source, against
  the generated NumPy module. This checks gate orders and bias splits, not just round trips.
* Refusals, with the reason in the message.
"""

from functools import cache

import numpy as np
import pytest
from conftest import require_torch

from gatespec import convert as cv
from gatespec.check import load_module
from gatespec.pipeline import generate

N, H, P, T, B = 5, 4, 3, 6, 2
TOL = 1e-10
SUPPORTED = [(c, fw) for c, fws in cv.CELLS.items() for fw, lay in fws.items()
             if isinstance(lay, cv.Layout)]
REFUSED = [(c, fw) for c, fws in cv.CELLS.items() for fw, lay in fws.items()
           if isinstance(lay, cv.Refusal)]


@cache
def module(cell):
    (name, text), = generate(cell, "numpy").items()
    return load_module(text, name[:-3])


def random_params(cell, seed=0, n_in=N, dtype=np.float64):
    rng = np.random.default_rng(seed)
    sizes = {"input": n_in, "hidden": H, "proj": P}
    return {name: rng.uniform(-0.6, 0.6, [sizes[s] for s in shape]).astype(dtype)
            for name, shape in cv._table(cell).items()}


def out_size(cell):
    return P if cell == "lstm_proj" else H


def state_sizes(cell):
    return [out_size(cell)] + ([H] if cell.startswith("lstm") else [])


def run(cell, params, x, state0=None, reverse=False):
    """The generated module over x (T, B, N); `reverse` runs backwards in time, outputs
    back in the original order (a backward direction of a bidirectional layer)."""
    xin = np.ascontiguousarray(x[::-1]) if reverse else x
    y, final, _ = module(cell).forward(xin, state0, params)
    return (y[::-1] if reverse else y), final


def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# --- round trips --------------------------------------------------------------------

def export(cell, fw, params):
    if fw == "torch":
        return cv.to_torch(cell, params, layer=1, reverse=True)
    if fw == "onnx":
        return cv.to_onnx(cell, params)
    return cv.to_keras(cell, params)


def import_(cell, fw, exported):
    if fw == "torch":
        return cv.from_torch(cell, exported, layer=1, reverse=True)
    if fw == "onnx":
        return cv.from_onnx(cell, *exported)
    return cv.from_keras(cell, *exported)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell, fw", SUPPORTED)
def test_round_trip_from_gatespec_is_identity(cell, fw, dtype):
    params = random_params(cell, dtype=dtype)
    back = import_(cell, fw, export(cell, fw, params))
    assert list(back) == list(params)
    for name in params:
        assert back[name].dtype == dtype
        np.testing.assert_array_equal(back[name], params[name], err_msg=name)


def _framework_arrays(cell, fw, seed):
    """Framework arrays with every entry random, both biases included."""
    rng = np.random.default_rng(seed)
    exported = export(cell, fw, random_params(cell, seed))
    arrays = exported[0] if fw != "torch" else exported
    for k in arrays:
        arrays[k] = rng.uniform(-0.6, 0.6, arrays[k].shape)
    return exported


@pytest.mark.parametrize("cell, fw", SUPPORTED)
def test_round_trip_from_framework_keeps_weights_and_bias_sums(cell, fw):
    exported = _framework_arrays(cell, fw, 1)
    again = export(cell, fw, import_(cell, fw, exported))
    lay = cv.layout(cell, fw)
    if fw == "torch":
        a, b = exported, again
        pairs = [(k, k) for k in a if not k.startswith("bias")]
        bias = lambda d: (d["bias_ih_l1_reverse"], d["bias_hh_l1_reverse"])  # noqa: E731
    elif fw == "onnx":
        (a, _), (b, _) = exported, again
        pairs = [(k, k) for k in a if k != "B"]
        bias = lambda d: np.split(d["B"][0], 2)  # noqa: E731
    else:
        (a, _), (b, _) = exported, again
        pairs = [("kernel", "kernel"), ("recurrent_kernel", "recurrent_kernel")]
        bias = lambda d: tuple(d["bias"]) if lay.two_biases else (d["bias"], 0 * d["bias"])  # noqa: E731
    for k, j in pairs:
        np.testing.assert_array_equal(a[k], b[j], err_msg=k)
    (ai, ah), (bi, bh) = bias(a), bias(b)
    np.testing.assert_array_equal(ai + ah, bi + bh)
    # a gate with two gatespec biases (gru_reset_after's n) keeps both as they were
    for k, g in enumerate(lay.gates):
        if cv._bias_names(cell, g)[1] is not None:
            part = slice(k * H, (k + 1) * H)
            np.testing.assert_array_equal(ai[part], bi[part])
            np.testing.assert_array_equal(ah[part], bh[part])


# --- torch.nn: the real modules ----------------------------------------------------------

TORCH_CELLS = [c for c, fw in SUPPORTED if fw == "torch"]


def _torch_module(torch, cell, seed, bias=True):
    name, kwargs = cv.torch_layer(cell, random_params(cell))
    torch.manual_seed(seed)
    return getattr(torch.nn, name)(**kwargs, num_layers=2, bidirectional=True, bias=bias,
                                   dtype=torch.float64)


def _compare_stack(torch, cell, mod, layers, seed):
    """torch's output and final states against the generated module, layer by layer."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, N))
    states0 = [rng.uniform(-0.5, 0.5, (4, B, n)) for n in state_sizes(cell)]
    t0 = tuple(torch.from_numpy(s) for s in states0)
    with torch.no_grad():
        y_torch, fin = mod(torch.from_numpy(x), t0 if len(t0) == 2 else t0[0])
    fin = fin if isinstance(fin, tuple) else (fin,)
    inp = x
    for layer in range(2):
        outs = []
        for d, reverse in enumerate((False, True)):
            k = 2 * layer + d
            y, final = run(cell, layers[(layer, reverse)], inp,
                           tuple(s[k] for s in states0), reverse)
            outs.append(y)
            for got, want in zip(final, fin):
                assert rel(got, want[k].numpy()) < TOL
        inp = np.concatenate(outs, axis=-1)
    assert rel(inp, y_torch.numpy()) < TOL


@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_torch_state_dict_into_gatespec(cell):
    torch = require_torch()
    mod = _torch_module(torch, cell, seed=3)
    layers = cv.from_torch_state(cell, mod.state_dict())
    assert sorted(layers) == [(0, False), (0, True), (1, False), (1, True)]
    _compare_stack(torch, cell, mod, layers, seed=4)


@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_gatespec_into_torch_state_dict(cell):
    torch = require_torch()
    mod = _torch_module(torch, cell, seed=5)
    n_next = 2 * out_size(cell)
    layers = {(k, rev): random_params(cell, seed=10 + 2 * k + rev, n_in=N if k == 0 else n_next)
              for k in range(2) for rev in (False, True)}
    state = cv.to_torch_state(cell, layers)
    mod.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    _compare_stack(torch, cell, mod, layers, seed=6)


def test_torch_without_bias_and_with_prefix():
    torch = require_torch()
    mod = _torch_module(torch, "gru_reset_after", seed=7, bias=False)
    state = {f"encoder.rnn.{k}": v for k, v in mod.state_dict().items()}
    state["encoder.head.weight"] = torch.zeros(2, 2)  # other keys are left alone
    layers = cv.from_torch_state("gru_reset_after", state, prefix="encoder.rnn.")
    assert not np.any(layers[(0, False)]["b_nh"])
    _compare_stack(torch, "gru_reset_after", mod, layers, seed=8)


# --- ONNX, from the operator spec ----------------------------------------------------------

def onnx_direction(op, x, W, R, B, Pw, h, c, lbr):
    """One direction of ONNX LSTM / GRU / RNN over x (T, B, N), forward in time, written from
    the equations of the ONNX operator spec (default activations)."""
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    Ws, Rs, Wb, Rb = np.split(W, G), np.split(R, G), np.split(B[: G * H], G), np.split(B[G * H:], G)
    ys = []
    for xt in x:
        if op == "LSTM":  # gates i, o, f, c; peepholes i, o, f
            (Wi, Wo, Wf, Wc), (Ri, Ro, Rf, Rc), (Wbi, Wbo, Wbf, Wbc), (Rbi, Rbo, Rbf, Rbc) = \
                Ws, Rs, Wb, Rb
            Pi, Po, Pf = np.split(Pw, 3)
            it = sigmoid(xt @ Wi.T + h @ Ri.T + Pi * c + Wbi + Rbi)
            ft = sigmoid(xt @ Wf.T + h @ Rf.T + Pf * c + Wbf + Rbf)
            ct = np.tanh(xt @ Wc.T + h @ Rc.T + Wbc + Rbc)
            c = ft * c + it * ct
            ot = sigmoid(xt @ Wo.T + h @ Ro.T + Po * c + Wbo + Rbo)
            h = ot * np.tanh(c)
        elif op == "GRU":  # gates z, r, h
            (Wz, Wr, Wh), (Rz, Rr, Rh), (Wbz, Wbr, Wbh), (Rbz, Rbr, Rbh) = Ws, Rs, Wb, Rb
            zt = sigmoid(xt @ Wz.T + h @ Rz.T + Wbz + Rbz)
            rt = sigmoid(xt @ Wr.T + h @ Rr.T + Wbr + Rbr)
            if lbr:
                ht = np.tanh(xt @ Wh.T + rt * (h @ Rh.T + Rbh) + Wbh)
            else:
                ht = np.tanh(xt @ Wh.T + (rt * h) @ Rh.T + Rbh + Wbh)
            h = (1 - zt) * ht + zt * h
        else:
            h = np.tanh(xt @ Ws[0].T + h @ Rs[0].T + Wb[0] + Rb[0])
        ys.append(h)
    return np.stack(ys)


def onnx_node(op, x, tensors, attributes, h0, c0):
    """Y [T, num_directions, B, H] of an ONNX node; the backward direction reads x reversed."""
    W, R = tensors["W"], tensors["R"]
    nd = W.shape[0]
    Bt = tensors.get("B", np.zeros((nd, 2 * W.shape[1])))
    Pt = tensors.get("P", np.zeros((nd, 3 * H)))
    ys = []
    for d in range(nd):
        back = attributes.get("direction") == "reverse" or d == 1
        xin = x[::-1] if back else x
        y = onnx_direction(op, xin, W[d], R[d], Bt[d], Pt[d], h0[d], c0[d],
                           attributes.get("linear_before_reset", 0))
        ys.append(y[::-1] if back else y)
    return np.stack(ys, axis=1)


ONNX_CELLS = [c for c, fw in SUPPORTED if fw == "onnx"]


def _onnx_op(cell):
    return cv.layout(cell, "onnx").layer.split()[-1]


def _onnx_compare(cell, tensors, attributes, directions, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, N))
    h0, c0 = rng.uniform(-0.5, 0.5, (2, 2, B, H))
    y_onnx = onnx_node(_onnx_op(cell), x, tensors, attributes, h0, c0)
    for d, params in enumerate(directions):
        state0 = (h0[d], c0[d]) if cell.startswith("lstm") else (h0[d],)
        y, _ = run(cell, params, x, state0, reverse=d == 1)
        assert rel(y, y_onnx[:, d]) < TOL


@pytest.mark.parametrize("cell", ONNX_CELLS)
def test_gatespec_into_onnx_matches_the_spec(cell):
    fwd, bwd = random_params(cell, 1), random_params(cell, 2)
    tensors, attributes = cv.to_onnx(cell, fwd, bwd)
    assert attributes["direction"] == "bidirectional" and attributes["hidden_size"] == H
    assert tensors["W"].shape[:2] == (2, len(cv.layout(cell, "onnx").gates) * H)
    _onnx_compare(cell, tensors, attributes, [fwd, bwd], seed=3)


@pytest.mark.parametrize("cell", ONNX_CELLS)
def test_onnx_into_gatespec_matches_the_spec(cell):
    tensors, attributes = _framework_arrays(cell, "onnx", 4)  # every B entry random
    rng = np.random.default_rng(5)
    tensors = {k: np.stack([v[0], rng.uniform(-0.6, 0.6, v[0].shape)]) for k, v in tensors.items()}
    attributes = {**attributes, "direction": "bidirectional"}
    directions = [cv.from_onnx(cell, tensors, attributes, direction=d) for d in (0, 1)]
    _onnx_compare(cell, tensors, attributes, directions, seed=6)


def test_onnx_optional_inputs():
    tensors, attributes = cv.to_onnx("lstm", random_params("lstm"))
    assert "P" not in tensors
    tensors["P"] = np.zeros((1, 3 * H))  # zero peepholes are the plain LSTM
    cv.from_onnx("lstm", tensors, attributes)
    no_p = {k: v for k, v in tensors.items() if k not in ("P", "B")}
    params = cv.from_onnx("lstm_peephole", no_p)  # absent P and B are zero
    assert not any(np.any(params[k]) for k in ("w_ic", "w_fc", "w_oc", "b_i", "b_o"))


# --- Keras, from the cell source ----------------------------------------------------------

def keras_layer(cell, x, weights, config, h, c):
    """Keras LSTM / GRU / SimpleRNN over x (T, B, N), as keras.layers.*Cell.call computes."""
    k, rk, bias = weights["kernel"], weights["recurrent_kernel"], weights["bias"]
    u = rk.shape[0]
    ys = []
    for xt in x:
        if cell.startswith("lstm"):
            i, f, cc, o = np.split(xt @ k + h @ rk + bias, 4, axis=-1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(cc)
            h = sigmoid(o) * np.tanh(c)
        elif cell.startswith("gru"):
            input_bias, recurrent_bias = bias if config["reset_after"] else (bias, None)
            x_z, x_r, x_h = np.split(xt @ k + input_bias, 3, axis=-1)
            if config["reset_after"]:
                rec_z, rec_r, rec_h = np.split(h @ rk + recurrent_bias, 3, axis=-1)
            else:
                rec_z, rec_r = np.split(h @ rk[:, : 2 * u], 2, axis=-1)
            z, r = sigmoid(x_z + rec_z), sigmoid(x_r + rec_r)
            rec_h = r * rec_h if config["reset_after"] else (r * h) @ rk[:, 2 * u:]
            h = z * h + (1 - z) * np.tanh(x_h + rec_h)
        else:
            h = np.tanh(xt @ k + h @ rk + bias)
        ys.append(h)
    return np.stack(ys)


KERAS_CELLS = [c for c, fw in SUPPORTED if fw == "keras"]


def _keras_compare(cell, weights, config, params, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, N))
    h0, c0 = rng.uniform(-0.5, 0.5, (2, B, H))
    y, _ = run(cell, params, x, (h0, c0) if cell.startswith("lstm") else (h0,))
    assert rel(y, keras_layer(cell, x, weights, config, h0, c0)) < TOL


@pytest.mark.parametrize("cell", KERAS_CELLS)
def test_gatespec_into_keras_matches_the_cell(cell):
    params = random_params(cell, 7)
    weights, config = cv.to_keras(cell, params)
    assert weights["kernel"].shape == (N, len(cv.layout(cell, "keras").gates) * H)
    assert config["units"] == H
    _keras_compare(cell, weights, config, params, seed=8)


@pytest.mark.parametrize("cell", KERAS_CELLS)
def test_keras_into_gatespec_matches_the_cell(cell):
    weights, config = _framework_arrays(cell, "keras", 9)
    params = cv.from_keras(cell, [weights["kernel"], weights["recurrent_kernel"], weights["bias"]])
    _keras_compare(cell, weights, config, params, seed=10)


def test_keras_gru_variants():
    assert cv.to_keras("gru", random_params("gru"))[1]["reset_after"] is False
    weights, config = cv.to_keras("gru_reset_after", random_params("gru_reset_after"))
    assert config["reset_after"] is True and weights["bias"].shape == (2, 3 * H)


# --- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, fw", REFUSED)
def test_refused_pairs_say_why(cell, fw):
    params = random_params(cell)
    with pytest.raises(cv.ConversionError, match="different functions"):
        export(cell, fw, params)


def _gru_reset_after_onnx():
    return cv.to_onnx("gru_reset_after", random_params("gru_reset_after"))[0]


def _keras(cell):
    return cv.to_keras(cell, random_params(cell))[0]


def _lstm_onnx_with(**attributes):
    tensors, _ = cv.to_onnx("lstm", random_params("lstm"))
    if attributes.pop("peepholes", False):
        tensors["P"] = np.ones((1, 3 * H))
    return tensors, attributes


REFUSALS = {
    "article gru into torch.nn.GRU": (
        lambda: cv.to_torch("gru", random_params("gru")),
        r"torch.nn.GRU applies the reset gate after the linear map; gatespec's gru applies it "
        r"before \(Cho et al. 2014\): different functions"),
    "torch.nn.GRU into article gru": (
        lambda: cv.from_torch("gru", {}), "torch.nn.GRU applies the reset gate after"),
    "peephole lstm into torch.nn.LSTM": (
        lambda: cv.to_torch("lstm_peephole", random_params("lstm_peephole")),
        "torch.nn.LSTM has no peephole connections"),
    "peephole lstm into keras": (
        lambda: cv.to_keras("lstm_peephole", random_params("lstm_peephole")),
        "Keras LSTM has no peephole connections"),
    "lstm_proj into onnx": (
        lambda: cv.to_onnx("lstm_proj", random_params("lstm_proj")),
        "ONNX LSTM has no recurrent projection"),
    "gru_reset_after into keras reset_after=False": (
        lambda: cv.to_keras("gru_reset_after", random_params("gru_reset_after"), reset_after=False),
        r"Keras GRU with reset_after=False applies the reset gate before the linear map; "
        r"gatespec's gru_reset_after is Keras GRU with reset_after=True"),
    "keras reset_after=False bias into gru_reset_after": (
        lambda: cv.from_keras("gru_reset_after", {**_keras("gru_reset_after"),
                                            "bias": np.zeros(3 * H)}),
        "reset_after=False applies the reset gate before"),
    "keras reset_after=True into article gru": (
        lambda: cv.from_keras("gru", {**_keras("gru"), "bias": np.zeros((2, 3 * H))}),
        "reset_after=True applies the reset gate after"),
    "keras hard_sigmoid": (
        lambda: cv.from_keras("lstm", _keras("lstm"), {"recurrent_activation": "hard_sigmoid"}),
        "recurrent_activation='hard_sigmoid' is a different function"),
    "onnx gru without linear_before_reset into gru_reset_after": (
        lambda: cv.from_onnx("gru_reset_after", _gru_reset_after_onnx()),
        "ONNX GRU with linear_before_reset=0 applies the reset gate before the linear map"),
    "onnx gru linear_before_reset=1 into article gru": (
        lambda: cv.from_onnx("gru", _gru_reset_after_onnx(), {"linear_before_reset": 1}),
        "linear_before_reset=1 applies the reset gate after"),
    "onnx peepholes into lstm": (
        lambda: cv.from_onnx("lstm", *_lstm_onnx_with(peepholes=True)),
        "P holds peephole weights; gatespec's lstm has none"),
    "onnx clip": (lambda: cv.from_onnx("lstm", *_lstm_onnx_with(clip=3.0)), "clip=3.0"),
    "onnx input_forget": (
        lambda: cv.from_onnx("lstm", *_lstm_onnx_with(input_forget=1)),
        "couples the input and forget gates"),
    "onnx relu rnn": (
        lambda: cv.from_onnx("srnn", cv.to_onnx("srnn", random_params("srnn"))[0],
                             {"activations": ["Relu"]}),
        "activations=\\('relu',\\)"),
    "torch projection into lstm": (
        lambda: cv.from_torch("lstm", {**cv.to_torch("lstm", random_params("lstm")),
                                       "weight_hr_l0": np.zeros((P, H))}),
        r"weight_hr_l0 has no place in gatespec's lstm.*use lstm_proj"),
    "no counterpart": (lambda: cv.to_onnx("mgu", {}), "no onnx layer computes gatespec's mgu"),
    "unknown framework": (lambda: cv.layout("lstm", "jax"), "unknown framework 'jax'"),
    "missing parameter": (
        lambda: cv.to_torch("lstm", {k: v for k, v in random_params("lstm").items()
                                     if k != "b_o"}),
        r"missing \['b_o'\]"),
    "inconsistent shapes": (
        lambda: cv.to_torch("lstm", {**random_params("lstm"), "W_fh": np.zeros((H, H + 1))}),
        "W_fh has shape"),
    "bad stacking": (
        lambda: cv.from_torch("srnn", {"weight_ih_l0": np.zeros((H, N)),
                                       "weight_hh_l0": np.zeros((H, H)),
                                       "bias_ih_l0": np.zeros(H + 1)}),
        "the input bias has shape"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusal_messages(case):
    call, message = REFUSALS[case]
    with pytest.raises(cv.ConversionError, match=message):
        call()


def test_conversion_error_is_a_usage_error():
    from gatespec.errors import UsageError

    assert issubclass(cv.ConversionError, UsageError)


# --- the torch.nn layouts come from the cells' `equivalent` lines ------------------------

def test_torch_layouts_are_torch_documented_orders():
    """torch.nn's documented stacking (LSTM i,f,g,o; GRU r,z,n), read from the cells."""
    expected = {"lstm": ("torch.nn.LSTM", ("i", "f", "g", "o"), {}, None),
                "lstm_proj": ("torch.nn.LSTM(proj_size=P)", ("i", "f", "g", "o"), {}, "W_hc"),
                "gru_reset_after": ("torch.nn.GRU", ("r", "z", "n"), {}, None),
                "srnn": ("torch.nn.RNN", ("h",), {"nonlinearity": "tanh"}, None)}
    for cell, (layer, gates, attributes, projection) in expected.items():
        lay = cv.layout(cell, "torch")
        assert (lay.layer, lay.gates, lay.attributes, lay.projection, lay.two_biases) == (
            layer, gates, attributes, projection, True), cell


def _cell_file(tmp_path, equivalent):
    x = "x"
    path = tmp_path / "mine.gate"
    path.write_text(f'cell mine "two gates"\ninput {x}\nstate h\n{equivalent}\n\n'
                    f"r = sigmoid(linear({x}, h))\nz = sigmoid(linear({x}, h))\n"
                    f"n = tanh(linear({x}, r * h))\nh' = z * h + (1 - z) * n\n", "utf-8")
    return str(path)


def test_torch_layout_follows_the_cells_line(tmp_path):
    # the article's GRU structure cannot claim torch.nn.GRU: the compiler refuses the line,
    # so a cell without one is refused, with the table's reason where it has one
    assert isinstance(cv.torch_layout("gru"), cv.Refusal)
    assert "reset gate after the linear map" in cv.torch_layout("gru").why
    refused = cv.torch_layout(_cell_file(tmp_path, ""))
    assert refused.why.endswith("mine.gate declares no equivalent torch.nn layer: "
                                "different functions")


def test_srnn_with_another_gate_name(tmp_path):
    path = tmp_path / "rnn.gate"
    path.write_text('cell rnn "an Elman RNN"\ninput x\nstate h\n'
                    "output a\nequivalent torch.nn.RNN gates a\n\na = tanh(linear(x, h))\nh' = a\n",
                    "utf-8")
    lay = cv.torch_layout(str(path))
    assert (lay.layer, lay.gates, lay.attributes) == ("torch.nn.RNN", ("a",),
                                                      {"nonlinearity": "tanh"})


def test_other_weight_names_are_refused_not_misread(tmp_path):
    # input u: torch's layout places W_au, which convert's stacking (W_ax) would not find
    path = tmp_path / "rnn.gate"
    path.write_text('cell rnn "an Elman RNN"\ninput u\nstate h\n'
                    "equivalent torch.nn.RNN gates h\n\nh' = tanh(linear(u, h))\n", "utf-8")
    with pytest.raises(cv.ConversionError, match="other than W_gx, W_gh, b_g"):
        cv.torch_layout(str(path))


def test_the_old_name_gru_torch_converts_as_gru_reset_after():
    torch = require_torch()
    state = torch.nn.GRU(3, 4).state_dict()
    old, new = cv.from_torch("gru_torch", state), cv.from_torch("gru_reset_after", state)
    assert old.keys() == new.keys()
    assert all(np.array_equal(old[k], new[k]) for k in old)
    assert cv.layout("gru_torch", "onnx") == cv.layout("gru_reset_after", "onnx")
