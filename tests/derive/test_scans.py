"""Which states are linear recurrences: the compiler's verdicts, with their reasons, and a
numerical check of every verdict on every built-in and corpus cell."""

from pathlib import Path

import numpy as np
import pytest
from helpers import numpy_module, small_sizes

from gatespec import cells
from gatespec.build import build
from gatespec.derive.scans import Scan, Sequential, find_scans
from gatespec.parse import parse

CORPUS = sorted(str(p) for p in (Path(__file__).resolve().parent.parent / "corpus").glob("*.gate"))


def verdicts(body: str) -> dict:
    return find_scans(build(parse("cell q\ninput x\n" + body, "q.gate")))


@pytest.mark.parametrize("body", [
    # QRNN's f-pooling (Bradbury et al. 2017): gates from the input only
    "state c\nf = sigmoid(linear(x))\nz = tanh(linear(x))\nc' = f * c + (1 - f) * z\n",
    # a coefficient that is itself a product and quotient of input-only terms
    "state h\na = sigmoid(linear(x))\nb = exp(linear(x))\nh' = (a / (1 + b)) * h - b * a\n",
    # affine through intermediate lines, and a per-unit (diagonal) weight
    "state h\nu = 2 * h + 1\nv = diag(u) + linear(x)\nh' = sigmoid(linear(x)) * v\n",
])
def test_linear_recurrences_are_found(body):
    (verdict,) = verdicts(body).values()
    assert verdict == Scan(verdict.state)


def test_a_state_that_does_not_read_itself_is_a_scan_with_no_coefficient():
    assert verdicts("state h\nh' = tanh(linear(x))\n")["h"] == Scan("h", constant=True)


@pytest.mark.parametrize("body, why", [
    ("state h\nh' = tanh(linear(x, h))\n",
     "h' reads h through the matrix W_hh, which mixes its units"),
    ("state h\nh' = h * h + linear(x)\n", "h' is not affine in h"),
    ("state h\nz = sigmoid(linear(x) + diag(h))\nh' = z * h\n", "z is not affine in h"),
    ("state h\nh' = h / (1 + sigmoid(linear(x)) * h)\n", "h' is not affine in h"),
    ("state h\nn = layernorm(h)\nh' = n + linear(x)\n",
     "a layernorm reads h and reduces over its units"),
    # c's coefficient reads h, which the loop computes
    ("state h, c\nf = sigmoid(linear(x, h))\nc' = f * c + linear(x)\nh' = tanh(c')\n",
     "its update reads the state h, so its coefficients are not known before the loop"),
])
def test_other_states_stay_sequential_and_say_why(body, why):
    found = verdicts(body)
    last = list(found.values())[-1] if "c'" not in body else found["c"]
    assert isinstance(last, Sequential) and last.why == why


def test_a_mix_scans_only_the_state_that_reads_no_other():
    found = verdicts("state h, c\nf = sigmoid(linear(x))\nc' = f * c + (1 - f) * linear(x)\n"
                     "h' = tanh(linear(h) + c')\n")
    assert found["c"] == Scan("c")
    assert isinstance(found["h"], Sequential)


def test_builtin_verdicts():
    scanned = {name: [s for s, v in find_scans(build(parse(cells.source(name), name))).items()
                      if isinstance(v, Scan)] for name in cells.names()}
    assert {name: s for name, s in scanned.items() if s} == {"mingru": ["h"], "minlstm": ["h"],
                                                                "qrnn": ["h"]}


# -- every verdict, checked by running one step of the generated NumPy code -----------------

def _one_step(module, sizes, params, x, states, extras):
    _, final, _ = module.forward(x[None], tuple(s.copy() for s in states), params, False,
                                 **{k: v[None] for k, v in extras.items()})
    return final


def _numerical_verdict(spec: str) -> dict[str, tuple[bool, bool, bool]]:
    """State → (the new value is affine in it, unit by unit, and reads no other state), from
    random inputs and states pushed to where the activations are not nearly linear."""
    module = numpy_module(spec)
    sizes = {k: v for k, v in small_sizes(module).items() if k in module.SIZES}
    rng = np.random.default_rng(0)
    params = {k: 2 * v for k, v in module.init_params(sizes, rng).items()}
    x = rng.normal(size=(2, sizes[module.INPUT_SIZE])) * 2
    base = [rng.normal(size=(2, sizes[module.STATE_SIZES[s]])) * 2 for s in module.STATES]
    # further input sequences (a context): fixed, as x is
    extras = {k: np.random.default_rng(1).normal(size=(2, sizes[s])) * 2
              for k, s in getattr(module, "EXTRA_INPUTS", {}).items()}
    out = {}
    for k, label in enumerate(module.STATES):
        a, b = rng.normal(size=base[k].shape) * 2, rng.normal(size=base[k].shape) * 2
        mix = rng.uniform(0.2, 0.8)

        def at(v, k=k):
            return _one_step(module, sizes, params, x, [*base[:k], v, *base[k + 1:]], extras)[k]
        affine = np.allclose(at(mix * a + (1 - mix) * b), mix * at(a) + (1 - mix) * at(b),
                             rtol=1e-9, atol=1e-9)
        others = [rng.normal(size=s.shape) * 2 if j != k else s for j, s in enumerate(base)]
        alone = np.allclose(_one_step(module, sizes, params, x, others, extras)[k],
                            _one_step(module, sizes, params, x, base, extras)[k], rtol=1e-12, atol=1e-12)
        bumped = base[k].copy()
        bumped[:, 0] += 1.0  # one unit: an element-wise update changes that unit only
        diagonal = np.array_equal(at(bumped)[:, 1:], at(base[k])[:, 1:])
        out[label] = (affine, diagonal, alone)
    return out


# Affine, but not in a form SymPy's derivative shows: min(u + h, h) = h + min(u, 0).
CAUTIOUS = {"sqrt_of_relu.gate": "h"}


@pytest.mark.parametrize("spec", cells.names() + CORPUS)
def test_each_verdict_agrees_with_the_generated_step(spec):
    """A scanned state's step is affine in it, unit by unit, and reads no other state; a
    sequential one's step fails one of the three, except where the detection is knowingly
    cautious (CAUTIOUS)."""
    from gatespec.pipeline import load_source

    found = find_scans(build(parse(*load_source(spec))))
    for label, checks in _numerical_verdict(spec).items():
        scanned = isinstance(found[label], Scan)
        if CAUTIOUS.get(Path(spec).name) == label:
            assert not scanned and all(checks)
        else:
            assert scanned == all(checks), (label, found[label], checks)
