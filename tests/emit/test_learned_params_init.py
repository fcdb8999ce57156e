"""bias(init=...) and scalar(init=...) in every target's initialisation: NumPy init_params,
torch reset_parameters (shared by the triton, cuda and cpp impls), JAX init_params and the
Flax layer. The expected values are read off the corpus cell's text, not the generated code."""

from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, require_module, require_torch
from helpers import module_class, numpy_module, torch_module

from gatespec.check import load_module
from gatespec.emit.emit import class_name
from gatespec.pipeline import generate

SPEC = str(ROOT / "tests" / "corpus" / "learned_params.gate")
# tests/corpus/learned_params.gate: offset = bias(init=-0.5), u = ... bias(init=2.5e-1),
# c' = scalar() * ... + scalar(init=0.5) * c, h' = scalar(init=-1) * ...; b_g is a bias()
# without init, which starts uniform like every other parameter
CONSTANTS = {"b_offset": -0.5, "b_u": 0.25, "gamma_c1": 1.0, "gamma_c2": 0.5, "gamma_h": -1.0,
             "alpha_ux": 1.0, "beta_ux": 0.0}
SIZES = {"input": 3, "hidden": 16, "cell": 5}
SHAPES = {"b_offset": (16,), "b_u": (16,), "b_g": (16,), "gamma_c1": (), "gamma_c2": (),
          "gamma_h": ()}
BOUND = 1 / 4  # 1/sqrt(hidden)


def assert_initialised(params):
    for name, shape in SHAPES.items():
        assert np.shape(params[name]) == shape, name
    for name, value in params.items():
        value = np.asarray(value)
        if name in CONSTANTS:
            assert np.all(value == CONSTANTS[name]), name
        else:  # uniform in (-bound, bound), and not all one number
            assert np.abs(value).max() < BOUND and value.std() > 0, name


def test_numpy_init_params():
    module = numpy_module(SPEC)
    assert_initialised(module.init_params(SIZES, np.random.default_rng(0)))


def test_torch_reset_parameters():
    torch = require_torch()
    layer = module_class(torch_module(SPEC))(3, 16, 5, num_layers=2)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(7.0)  # reset_parameters must set every one again
    layer.reset_parameters()
    for layer_index in (0, 1):
        params = layer.layer_params(layer_index)
        params = {k: v.detach().numpy() for k, v in params.items()}
        if layer_index == 1:  # the second layer reads the first's output at hidden size
            assert params["W_gx"].shape == (16, 16)
        assert_initialised(params)


def _jax_module():
    (name, text), = generate(SPEC, "jax").items()
    return load_module(text, name[:-3])


def test_jax_init_params():
    jax = require_module("jax")
    assert_initialised(_jax_module().init_params(jax.random.key(0), SIZES))


@pytest.mark.slow  # the layer's init traces a forward pass: seconds
def test_flax_layer_init():
    jax = require_module("jax")
    require_module("flax")
    layer = getattr(_jax_module(), class_name("learned_params"))(hidden_size=16, cell_size=5)
    variables = layer.init(jax.random.key(1), jax.numpy.ones((2, 4, 3)))
    assert_initialised(variables["params"])


def test_the_cell_is_where_the_constants_say():
    text = Path(SPEC).read_text()
    for init in ("bias(init=-0.5)", "bias(init=2.5e-1)", "scalar(init=0.5)", "scalar(init=-1)"):
        assert init in text
