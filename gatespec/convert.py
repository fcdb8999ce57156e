"""Weight layouts: gatespec's parameter table <-> torch.nn, ONNX and Keras.

One call converts one layer and one direction: a dict of NumPy arrays named as in
`gatespec show CELL` (`W_ix`, `W_ih`, `b_i`, ...) to the arrays a framework layer
stores, or back. Converters only exist where the framework layer computes the same
function as the cell; anything else is refused with a `ConversionError` that says
why (the article's GRU is not `torch.nn.GRU`).

What each framework stores is data, in `CELLS`: per cell and framework, the layer,
its gate stacking order (as gatespec gate names), whether it keeps an input and a
recurrent bias (gatespec sums them into one `b_g`, except where the cell has two, as
`gru_reset_after`'s `b_nx`, `b_nh`), and the settings the layer must have. On export a
summed bias goes to the input bias and the recurrent one is zero; on import the two
are added. The torch.nn entries are not written here: they come from the cell's own
`equivalent torch.nn.X gates ...` line, as checked by the compiler (build/layouts.py),
which the generated module's from_torch uses too; so `CELLS` is built on first use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from gatespec import cells
from gatespec.errors import UsageError

__all__ = ["CELLS",  # noqa: F822 (module __getattr__ builds it on first use)
           "ConversionError", "Layout", "from_keras", "from_onnx", "from_torch",
           "from_torch_state", "layout", "to_keras", "to_onnx", "to_torch", "to_torch_state",
           "torch_layer"]


class ConversionError(UsageError):
    """A conversion that would not compute the same function, or arrays that do not fit."""


@dataclass(frozen=True)
class Layout:
    layer: str  # the framework layer, as messages name it
    gates: tuple[str, ...]  # its stacking order, as gatespec gate names
    two_biases: bool  # an input and a recurrent bias vector
    attributes: dict[str, object] = field(default_factory=dict)  # settings the layer must have
    peepholes: tuple[str, ...] = ()  # ONNX P order, as gatespec gate names (w_ic, ...)
    projection: str | None = None  # gatespec's name for torch's weight_hr


@dataclass(frozen=True)
class Refusal:
    why: str


# Gate orders, as gatespec names. torch: i,f,g,o and r,z,n. ONNX: i,o,f,c and z,r,h.
# Keras: i,f,c,o and z,r,h. (g is gatespec's cell candidate c̄, n its GRU candidate h̃.)
_ONNX_LSTM = Layout("ONNX LSTM", ("i", "o", "f", "g"), True,
                    {"activations": ("Sigmoid", "Tanh", "Tanh")})
_KERAS_LSTM = Layout("Keras LSTM", ("i", "f", "g", "o"), False,
                     {"activation": "tanh", "recurrent_activation": "sigmoid"})
_ONNX_GRU = Layout("ONNX GRU", ("z", "r", "n"), True, {"activations": ("Sigmoid", "Tanh")})
_KERAS_GRU = Layout("Keras GRU", ("z", "r", "n"), True,
                    {"activation": "tanh", "recurrent_activation": "sigmoid"})
_AFTER = ("{layer} applies the reset gate after the linear map; gatespec's gru applies it "
          "before (Cho et al. 2014): different functions. gru_reset_after is the cell with the "
          "reset gate after the linear map")
_NO_PEEPHOLES = ("{layer} has no peephole connections; gatespec's lstm_peephole has w_ic, w_fc, "
                 "w_oc: different functions (ONNX LSTM has them)")
_NO_PROJECTION = ("{layer} has no recurrent projection; gatespec's lstm_proj projects h with "
                  "W_hc: different functions (torch.nn.LSTM(proj_size=P) has it)")

# Cells with converters, and what torch.nn cannot hold (the rest comes from the cells).
_TABLE: dict[str, dict[str, Layout | Refusal]] = {
    "srnn": {
        "onnx": Layout("ONNX RNN", ("h",), True, {"activations": ("Tanh",)}),
        "keras": Layout("Keras SimpleRNN", ("h",), False, {"activation": "tanh"}),
    },
    "lstm": {"onnx": _ONNX_LSTM, "keras": _KERAS_LSTM},
    "lstm_peephole": {
        "torch": Refusal(_NO_PEEPHOLES.format(layer="torch.nn.LSTM")),
        "onnx": replace(_ONNX_LSTM, peepholes=("i", "o", "f")),
        "keras": Refusal(_NO_PEEPHOLES.format(layer="Keras LSTM")),
    },
    "lstm_proj": {
        "onnx": Refusal(_NO_PROJECTION.format(layer="ONNX LSTM")),
        "keras": Refusal(_NO_PROJECTION.format(layer="Keras LSTM")),
    },
    "gru": {
        "torch": Refusal(_AFTER.format(layer="torch.nn.GRU")),
        "onnx": replace(_ONNX_GRU, attributes={**_ONNX_GRU.attributes, "linear_before_reset": 0}),
        "keras": replace(_KERAS_GRU, two_biases=False,
                         attributes={**_KERAS_GRU.attributes, "reset_after": False}),
    },
    "gru_reset_after": {
        "onnx": replace(_ONNX_GRU, attributes={**_ONNX_GRU.attributes, "linear_before_reset": 1}),
        "keras": replace(_KERAS_GRU, attributes={**_KERAS_GRU.attributes, "reset_after": True}),
    },
}


def torch_layout(cell: str) -> Layout | Refusal:
    """torch.nn's layout of `cell`, read from the cell's `equivalent` line (the compiler
    has checked it), or the refusal of a cell that declares no equivalent."""
    cell = cells.canonical(cell)
    built = _built(cell)
    found = built.torch_layout
    if found is None:
        why = _TABLE.get(cell, {}).get("torch")
        return why if isinstance(why, Refusal) else Refusal(
            f"{built.path} declares no equivalent torch.nn layer: different functions")
    weights = dict(found.weights)
    gates = tuple(name[len("W_"):-len(built.input.label)] for name in weights["weight_ih"])
    # _pack/_unpack stack W_gx, W_gh and b_g (or b_gx, b_gh): the names the layout placed
    stacked = {"weight_ih": tuple(f"W_{g}x" for g in gates),
               "weight_hh": tuple(f"W_{g}h" for g in gates)}
    biases = [(name, k, kind) for k, g in enumerate(gates)
              for name, kind in zip(_bias_names(cell, g), ("sum",) if f"b_{g}" in _table(cell)
                                    else ("ih", "hh"))]
    if any(weights[k] != v for k, v in stacked.items()) or tuple(biases) != found.biases:
        raise ConversionError(f"gatespec's {cell} names its torch.nn weights other than W_gx, "
                              f"W_gh, b_g: convert cannot stack them (the generated module's "
                              f"from_torch can)")
    projection = weights["weight_hr"][0] if "weight_hr" in weights else None
    layer = f"torch.nn.{found.layer}" + ("(proj_size=P)" if projection else "")
    return Layout(layer, gates, True, dict(found.options), projection=projection)


@cache
def _cells() -> dict[str, dict[str, Layout | Refusal]]:
    return {cell: {"torch": torch_layout(cell), **fws} for cell, fws in _TABLE.items()}


def __getattr__(name: str):
    # CELLS builds the cells (for their torch layouts): on first use, not on import
    if name == "CELLS":
        return _cells()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A setting the caller does not give has the framework's default value.
DEFAULTS = {
    "onnx": {"linear_before_reset": 0, "input_forget": 0, "clip": None},
    "keras": {"activation": "tanh", "recurrent_activation": "sigmoid", "reset_after": True},
    "torch": {},
}
MEANINGS = {
    ("linear_before_reset", 0): "applies the reset gate before the linear map",
    ("linear_before_reset", 1): "applies the reset gate after the linear map",
    ("reset_after", False): "applies the reset gate before the linear map",
    ("reset_after", True): "applies the reset gate after the linear map",
    ("input_forget", 1): "couples the input and forget gates",
    ("clip", None): "does not clip",
}


def layout(cell: str, framework: str) -> Layout:
    """Where `cell`'s parameters sit in `framework` ("torch", "onnx", "keras"), or a refusal."""
    if framework not in DEFAULTS:
        raise ConversionError(f"unknown framework '{framework}' (known: torch, onnx, keras)")
    cell = cells.canonical(cell)
    if cell not in _TABLE:
        raise ConversionError(f"no {framework} layer computes gatespec's {cell}: converters exist "
                              f"for {', '.join(_TABLE)}")
    found = _cells()[cell][framework]
    if isinstance(found, Refusal):
        raise ConversionError(f"cannot convert gatespec's {cell} to or from {framework}: "
                              f"{found.why}")
    return found


def _check_settings(cell: str, fw: str, lay: Layout, given: Mapping[str, object],
                    exporting: bool = False) -> None:
    """Refuse a framework layer whose settings make it compute another function. On import a
    setting not given has the framework's default; on export it takes the cell's value."""
    for key, default in {**DEFAULTS[fw], **lay.attributes}.items():
        if exporting and key not in given:
            continue
        want, have = lay.attributes.get(key, default), given.get(key, DEFAULTS[fw].get(key))
        if key == "activations":  # ONNX: one list per direction, names case-insensitive
            if have is None:
                continue
            have, want = tuple(a.lower() for a in have), tuple(a.lower() for a in want)
            if len(have) % len(want) == 0:
                want = want * (len(have) // len(want))
        elif key == "linear_before_reset" and have is not None:
            have = int(bool(have))  # ONNX: any non-zero value
        if have != want:
            how = MEANINGS.get((key, have), "is a different function")
            need = MEANINGS.get((key, want))
            raise ConversionError(
                f"{lay.layer} with {key}={have!r} {how}; gatespec's {cell} is {lay.layer} with "
                f"{key}={want!r}{f' (it {need})' if need else ''}: different functions")


# --- the parameter table and the framework-neutral packing -----------------------

@cache
def _built(cell: str):
    from gatespec.build import build
    from gatespec.parse import parse
    from gatespec.pipeline import load_source

    return build(parse(*load_source(cell)))


def _table(cell: str) -> dict[str, tuple[str, ...]]:
    return {p.name: p.shape for p in _built(cell).trained_params.values()}


def _array(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _check_params(cell: str, params: Mapping[str, object]) -> dict[str, int]:
    """Every parameter present, no other, shapes consistent; returns the sizes."""
    table = _table(cell)
    missing, extra = sorted(set(table) - set(params)), sorted(set(params) - set(table))
    if missing or extra:
        raise ConversionError(f"parameters of gatespec's {cell}: missing {missing or 'none'}, "
                              f"unknown {extra or 'none'} (see `gatespec show {cell}`)")
    sizes: dict[str, int] = {}
    for name, shape in table.items():
        got = np.shape(params[name])
        if len(got) != len(shape):
            raise ConversionError(f"{name} must have shape ({', '.join(shape)}), got {got}")
        for size, n in zip(shape, got):
            if sizes.setdefault(size, n) != n:
                raise ConversionError(f"{name} has shape {got}: {size} is {sizes[size]} elsewhere")
    return sizes


def _bias_names(cell: str, gate: str) -> tuple[str, str | None]:
    """(input-side name, recurrent-side name or None when gatespec sums the two)."""
    return (f"b_{gate}", None) if f"b_{gate}" in _table(cell) else (f"b_{gate}x", f"b_{gate}h")


def _pack(cell: str, lay: Layout, params: Mapping[str, object]):
    """gatespec parameters -> stacked (W_in, W_rec, b_in, b_rec or None, hidden size)."""
    hidden = _check_params(cell, params)["hidden"]
    p = {k: _array(v) for k, v in params.items()}
    w_in = np.concatenate([p[f"W_{g}x"] for g in lay.gates])
    w_rec = np.concatenate([p[f"W_{g}h"] for g in lay.gates])
    b_in, b_rec = [], []
    for g in lay.gates:
        first, second = _bias_names(cell, g)
        if second is not None and not lay.two_biases:
            raise ConversionError(f"{lay.layer} has one bias per gate; gatespec's {cell} has two "
                                  f"for gate {g} ({first}, {second}): different functions")
        b_in.append(p[first])
        b_rec.append(np.zeros_like(p[first]) if second is None else p[second])
    recurrent_bias = np.concatenate(b_rec) if lay.two_biases else None
    return w_in, w_rec, np.concatenate(b_in), recurrent_bias, hidden


def _split(array: np.ndarray, parts: int, what: str) -> list[np.ndarray]:
    if array.ndim < 1 or array.shape[0] % parts:
        raise ConversionError(f"{what} has shape {array.shape}: its first axis must stack "
                              f"{parts} gates")
    return [a.copy() for a in np.split(array, parts)]


def _unpack(cell: str, lay: Layout, w_in, w_rec, b_in=None, b_rec=None) -> dict[str, np.ndarray]:
    """Stacked framework arrays -> gatespec parameters (a missing bias is zero)."""
    w_in, w_rec = _array(w_in), _array(w_rec)
    n = len(lay.gates)
    out = dict(zip((f"W_{g}x" for g in lay.gates), _split(w_in, n, "the input weights")))
    out.update(zip((f"W_{g}h" for g in lay.gates), _split(w_rec, n, "the recurrent weights")))
    biases = []
    for bias, what in ((b_in, "the input bias"), (b_rec, "the recurrent bias")):
        bias = np.zeros(w_rec.shape[0], w_rec.dtype) if bias is None else _array(bias)
        if bias.shape != w_rec.shape[:1]:
            raise ConversionError(f"{what} has shape {bias.shape}; the recurrent weights stack "
                                  f"{w_rec.shape[0]} rows")
        biases.append(_split(bias, n, what))
    ins, recs = biases
    for g, bi, br in zip(lay.gates, ins, recs):
        first, second = _bias_names(cell, g)
        if second is None:
            out[first] = bi + br
        else:
            out[first], out[second] = bi, br
    return out


def _finish(cell: str, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    _check_params(cell, out)
    return {name: out[name] for name in _table(cell)}


# --- torch.nn ----------------------------------------------------------------------

_TORCH_KEY = re.compile(r"(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?")


def _suffix(layer: int, reverse: bool) -> str:
    return f"_l{layer}" + ("_reverse" if reverse else "")


def to_torch(cell: str, params: Mapping[str, object], layer: int = 0,
             reverse: bool = False) -> dict[str, np.ndarray]:
    """One layer and direction of a torch.nn.LSTM/GRU/RNN state dict (`weight_ih_l0`, ...)."""
    lay = layout(cell, "torch")
    w_in, w_rec, b_in, b_rec, _ = _pack(cell, lay, params)
    s = _suffix(layer, reverse)
    out = {f"weight_ih{s}": w_in, f"weight_hh{s}": w_rec, f"bias_ih{s}": b_in, f"bias_hh{s}": b_rec}
    if lay.projection:
        out[f"weight_hr{s}"] = _array(params[lay.projection]).copy()
    return out


def from_torch(cell: str, state_dict: Mapping[str, object], layer: int = 0,
               reverse: bool = False, prefix: str = "") -> dict[str, np.ndarray]:
    """gatespec parameters from one layer and direction of a torch.nn state dict; arrays may
    be tensors. A module built with bias=False has zero biases."""
    lay = layout(cell, "torch")
    s = _suffix(layer, reverse)
    mine = {}
    for key, value in state_dict.items():
        m = _TORCH_KEY.fullmatch(key[len(prefix):]) if key.startswith(prefix) else None
        if m and int(m[3]) == layer and bool(m[4]) == reverse:
            mine[key[len(prefix):]] = value
    expected = {f"weight_ih{s}", f"weight_hh{s}", f"bias_ih{s}", f"bias_hh{s}"}
    expected |= {f"weight_hr{s}"} if lay.projection else set()
    extra = sorted(set(mine) - expected)
    if extra:
        hint = " (torch.nn.LSTM(proj_size=P); use lstm_proj)" if "weight_hr" in extra[0] else ""
        raise ConversionError(f"{prefix}{extra[0]} has no place in gatespec's {cell}: it belongs "
                              f"to a different layer than {lay.layer}{hint}")
    for key in (f"weight_ih{s}", f"weight_hh{s}", *([f"weight_hr{s}"] if lay.projection else [])):
        if key not in mine:
            raise ConversionError(f"the state dict has no {prefix}{key}")
    out = _unpack(cell, lay, mine[f"weight_ih{s}"], mine[f"weight_hh{s}"],
                  mine.get(f"bias_ih{s}"), mine.get(f"bias_hh{s}"))
    if lay.projection:
        out[lay.projection] = _array(mine[f"weight_hr{s}"]).copy()
    return _finish(cell, out)


def to_torch_state(cell: str, layers: Mapping[tuple[int, bool], Mapping[str, object]]):
    """A whole state dict from {(layer, reverse): gatespec parameters}."""
    out: dict[str, np.ndarray] = {}
    for (k, rev), params in sorted(layers.items()):
        out.update(to_torch(cell, params, k, rev))
    return out


def from_torch_state(cell: str, state_dict: Mapping[str, object], prefix: str = ""):
    """{(layer, reverse): gatespec parameters} for every layer and direction in a state dict."""
    found = {(int(m[3]), bool(m[4])) for k in state_dict if k.startswith(prefix)
             for m in [_TORCH_KEY.fullmatch(k[len(prefix):])] if m}
    return {key: from_torch(cell, state_dict, *key, prefix=prefix) for key in sorted(found)}


def torch_layer(cell: str, params: Mapping[str, object]) -> tuple[str, dict[str, object]]:
    """The torch.nn class name and constructor arguments of the layer equal to `cell` with
    these parameters (first layer), e.g. ("LSTM", {"input_size": 5, "hidden_size": 4})."""
    lay = layout(cell, "torch")
    sizes = _check_params(cell, params)
    kwargs: dict[str, object] = {"input_size": sizes["input"], "hidden_size": sizes["hidden"]}
    if lay.projection:
        kwargs["proj_size"] = sizes["proj"]
    kwargs.update(lay.attributes)
    return lay.layer.split(".")[-1].split("(")[0], kwargs


# --- ONNX LSTM / GRU / RNN --------------------------------------------------------------

def to_onnx(cell: str, params: Mapping[str, object],
            reverse_params: Mapping[str, object] | None = None):
    """(tensors, attributes) of an ONNX LSTM/GRU/RNN node: W [num_directions, G*hidden,
    input], R [num_directions, G*hidden, hidden], B [num_directions, 2*G*hidden] (input
    biases, then recurrent ones) and, for peepholes, P [num_directions, 3*hidden] (i, o, f).
    `reverse_params` makes a bidirectional node."""
    lay = layout(cell, "onnx")
    dirs = [params] + ([reverse_params] if reverse_params is not None else [])
    packed = [_pack(cell, lay, p) for p in dirs]
    tensors = {"W": np.stack([p[0] for p in packed]), "R": np.stack([p[1] for p in packed]),
               "B": np.stack([np.concatenate([p[2], p[3]]) for p in packed])}
    if lay.peepholes:
        tensors["P"] = np.stack([np.concatenate([_array(p[f"w_{g}c"]) for g in lay.peepholes])
                                 for p in dirs])
    attributes = {"hidden_size": packed[0][4],
                  "direction": "bidirectional" if len(dirs) == 2 else "forward", **lay.attributes}
    attributes["activations"] = list(attributes["activations"]) * len(dirs)
    return tensors, attributes


def from_onnx(cell: str, tensors: Mapping[str, object],
              attributes: Mapping[str, object] | None = None, direction: int = 0):
    """gatespec parameters from direction `direction` (0, or 1 for the backward one of a
    bidirectional node) of an ONNX node's W, R and optional B, P. Attributes not given have
    ONNX's defaults (linear_before_reset=0, no clip)."""
    lay = layout(cell, "onnx")
    attributes = dict(attributes or {})
    _check_settings(cell, "onnx", lay, attributes)
    w, r = _array(tensors["W"]), _array(tensors["R"])
    if w.ndim != 3 or r.ndim != 3 or not 0 <= direction < w.shape[0]:
        raise ConversionError(f"W {w.shape} and R {r.shape} must be [num_directions, G*hidden, "
                              f"...] with a direction {direction}")
    hidden = r.shape[-1]
    if attributes.get("hidden_size", hidden) != hidden:
        raise ConversionError(f"hidden_size={attributes['hidden_size']} but R holds {hidden}")
    b = _array(tensors["B"])[direction] if tensors.get("B") is not None else None
    b_in, b_rec = (None, None) if b is None else _split(b, 2, "B")
    out = _unpack(cell, lay, w[direction], r[direction], b_in, b_rec)
    p = tensors.get("P")
    if lay.peepholes:
        zeros = np.zeros(len(lay.peepholes) * hidden, r.dtype)
        parts = _split(zeros if p is None else _array(p)[direction], len(lay.peepholes), "P")
        out.update((f"w_{g}c", v) for g, v in zip(lay.peepholes, parts))
    elif p is not None and np.any(_array(p)[direction]):
        raise ConversionError(f"P holds peephole weights; gatespec's {cell} has none: different "
                              f"functions (lstm_peephole has them)")
    return _finish(cell, out)


# --- Keras LSTM / GRU / SimpleRNN ----------------------------------------------------

def to_keras(cell: str, params: Mapping[str, object], **config):
    """(weights, config) of a Keras layer: weights {"kernel" (input, G*units),
    "recurrent_kernel" (units, G*units), "bias"}, in `layer.set_weights` order; config its
    constructor arguments. Settings passed in `config` must agree with the cell."""
    lay = layout(cell, "keras")
    _check_settings(cell, "keras", lay, config, exporting=True)
    w_in, w_rec, b_in, b_rec, hidden = _pack(cell, lay, params)
    bias = np.stack([b_in, b_rec]) if lay.two_biases else b_in
    weights = {"kernel": np.ascontiguousarray(w_in.T),
               "recurrent_kernel": np.ascontiguousarray(w_rec.T), "bias": bias}
    return weights, {"units": hidden, **lay.attributes, **config}


def from_keras(cell: str, weights: Mapping[str, object] | Sequence[object],
               config: Mapping[str, object] | None = None) -> dict[str, np.ndarray]:
    """gatespec parameters from a Keras layer's weights (a dict, or `layer.get_weights()`:
    kernel, recurrent kernel, optional bias) and optional config. A GRU's reset_after, when
    not given, is read from the bias shape: (2, 3*units) is True, (3*units,) False."""
    lay = layout(cell, "keras")
    if not isinstance(weights, Mapping):
        weights = dict(zip(("kernel", "recurrent_kernel", "bias"), weights))
    bias = _array(weights["bias"]) if weights.get("bias") is not None else None
    config = dict(config or {})
    if "reset_after" in lay.attributes and "reset_after" not in config and bias is not None:
        config["reset_after"] = bias.ndim == 2
    _check_settings(cell, "keras", lay, config)
    if bias is not None and bias.ndim != (2 if lay.two_biases else 1):
        raise ConversionError(f"{lay.layer} bias of shape {bias.shape} does not fit "
                              f"{', '.join(f'{k}={v!r}' for k, v in config.items())}")
    b_in, b_rec = (None, None) if bias is None else (bias[0], bias[1]) if lay.two_biases \
        else (bias, None)
    out = _unpack(cell, lay, _array(weights["kernel"]).T, _array(weights["recurrent_kernel"]).T,
                  b_in, b_rec)
    return _finish(cell, out)
