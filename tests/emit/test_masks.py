"""Stochastic masks of zoneout() and dropout() in the generated modules: who draws them
(the caller's generator), what evaluation reads (their expectation), that the backward
pass uses the masks of its forward pass, and the refusals of bad masks. The maths itself is
checked against hand-written references (lstm_zoneout in reference_cells.py) and finite
differences elsewhere; here the masks' statistics and plumbing."""

import numpy as np
import pytest
import reference_cells as ref
from conftest import require_torch
from helpers import module_class, numpy_module, torch_module

# dropout per sequence on a recurrent path, per step on an input-only value, zoneout of a state
CELL = """cell masked
input x
state h, c
a = dropout(h, 0.25)
z = dropout(tanh(linear(x)), 0.5, per=step)
c' = zoneout(sigmoid(linear(x, a)) * c + z, c, 0.3)
h' = tanh(c')
"""


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    path = tmp_path_factory.mktemp("masks") / "masked.gate"
    path.write_text(CELL)
    return str(path)


def _problem(mod, T=5, B=3, seed=0):
    rng = np.random.default_rng(seed)
    sizes = {s: {"input": 3, "hidden": 4}[s] for s in mod.SIZES}
    params = mod.init_params(sizes, rng)
    x = rng.normal(size=(T, B, 3))
    return sizes, params, x


def test_numpy_masks_are_drawn_from_the_callers_generator(masked):
    mod = numpy_module(masked)
    assert mod.MASKS == {"mask_a": ("hidden", "dropout", 0.25, "sequence"),
                         "mask_z": ("hidden", "dropout", 0.5, "step"),
                         "mask_c": ("hidden", "zoneout", 0.3, "step")}
    sizes, params, x = _problem(mod)
    one, _, _ = mod.forward(x, None, params, rng=np.random.default_rng(5))
    again, _, _ = mod.forward(x, None, params, rng=np.random.default_rng(5))
    other, _, _ = mod.forward(x, None, params, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(one, again)
    assert np.abs(one - other).max() > 1e-3


def test_numpy_mask_values_and_their_frequencies(masked):
    """zoneout: 1 (keep the new value) with probability 1 - rate; dropout: 1/(1 - rate) with
    probability 1 - rate, else 0; per sequence one mask for every step."""
    mod = numpy_module(masked)
    T, B, n = 400, 50, 4
    drawn = dict(zip(mod.MASKS, mod._masks(None, np.random.default_rng(0), (T, B),
                                           {"hidden": n}, np.dtype(np.float64)), strict=True))
    a, z, c = drawn["mask_a"], drawn["mask_z"], drawn["mask_c"]
    assert set(np.unique(a)) == {0.0, 1 / 0.75} and set(np.unique(z)) == {0.0, 2.0}
    assert set(np.unique(c)) == {0.0, 1.0}
    assert (a == a[0]).all()  # per sequence
    assert not (z == z[0]).all() and not (c == c[0]).all()  # per step
    # frequencies within 5 standard deviations of 1 - rate
    for values, keep, count in ((a[0] > 0, 0.75, B * n), (z > 0, 0.5, T * B * n),
                                (c > 0, 0.7, T * B * n)):
        assert abs(values.mean() - keep) < 5 * np.sqrt(keep * (1 - keep) / count)


def test_numpy_evaluation_reads_the_expectation(masked):
    """Without masks or rng the forward pass is deterministic: each mask at E[m]. A value
    linear in the masks (one step's c', with mask_a fixed: the others scale values that do
    not depend on them) has that as its mean over drawn masks."""
    mod = numpy_module(masked)
    sizes, params, x = _problem(mod)
    expected, _, _ = mod.forward(x, None, params)
    means = {"mask_a": 1.0, "mask_z": 1.0, "mask_c": 0.7}
    given = {k: np.full((5, 3, 4), v) for k, v in means.items()}
    at_mean, _, _ = mod.forward(x, None, params, masks=given)
    np.testing.assert_array_equal(expected, at_mean)
    rng = np.random.default_rng(1)
    state = (rng.normal(size=(3, 4)), rng.normal(size=(3, 4)))
    fixed = {"mask_a": np.ones((3, 4))}
    exact = mod.step(x[0], state, params, masks=fixed)[1][1]
    np.testing.assert_array_equal(exact, mod.step(x[0], state, params)[1][1])
    draws = np.array([mod.step(x[0], state, params, masks=fixed, rng=rng)[1][1]
                      for _ in range(2000)])
    # within 5 standard errors of the mean, unit by unit
    assert (np.abs(draws.mean(axis=0) - exact) < 5 * draws.std(axis=0) / np.sqrt(2000)).all()


def test_numpy_given_masks_against_the_hand_written_reference():
    """lstm_zoneout with explicit masks: the reference (written from Krueger et al. 2017)
    reads the same masks packed after x."""
    mod, cell = numpy_module("lstm_zoneout"), ref.CELLS["lstm_zoneout"]
    rng = np.random.default_rng(3)
    params = ref.init_params(cell, 3, 4, rng)
    x = rng.normal(size=(6, 2, 3))
    masks = {"mask_c": (rng.random((6, 2, 4)) > 0.5) * 1.0,
             "mask_h": (rng.random((6, 2, 4)) > 0.05) * 1.0}
    out, final, cache = mod.forward(x, None, params, masks=masks)
    packed = np.concatenate([x, masks["mask_c"], masks["mask_h"]], axis=-1)
    r_out, r_final = cell.forward(packed, None, params)
    np.testing.assert_allclose(out, r_out, rtol=1e-12, atol=1e-13)
    d_out = rng.normal(size=out.shape)
    dx, _, dp = mod.backward(d_out, None, cache, params)
    r_dx, _, r_dp = cell.backward(packed, None, params, d_out, None)
    np.testing.assert_allclose(dx, r_dx[..., :3], rtol=1e-10, atol=1e-12)
    for k in dp:
        np.testing.assert_allclose(dp[k], r_dp[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_numpy_masks_are_checked(masked):
    mod = numpy_module(masked)
    _, params, x = _problem(mod)
    with pytest.raises(ValueError, match="masks must be a dict with keys among MASKS"):
        mod.forward(x, None, params, masks={"mask_q": np.ones((5, 3, 4))})
    with pytest.raises(ValueError, match=r"masks\['mask_c'\] must be a float64 array of shape "
                                         r"\(5, 3, 4\)"):
        mod.forward(x, None, params, masks={"mask_c": np.ones((5, 3))})
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        mod.forward(x, None, params, rng=5)


# -- the torch module -------------------------------------------------------------------

def _torch_layer(name, **kwargs):
    torch = require_torch()
    mod = torch_module(name)
    torch.manual_seed(0)
    return torch, mod, module_class(mod)(3, 4, dtype=torch.float64, **kwargs)


def test_torch_training_draws_from_the_generator_and_eval_reads_the_expectation():
    torch, mod, layer = _torch_layer("lstm_zoneout", num_layers=2, bidirectional=True)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    assert layer.training

    def run(seed):
        return layer(x, generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(run(4), run(4)) and (run(4) - run(5)).abs().max() > 1e-3
    layer.eval()
    expected = run(4)
    assert torch.equal(expected, run(5)) and torch.equal(expected, layer(x)[0])
    # eval is the expectation: explicit masks filled with E[m] = 1 - rate
    count = 4  # layers * directions
    means = {"mask_c": 0.5, "mask_h": 0.95}
    given = {k: [torch.full((6, 2, 4), v, dtype=torch.float64)] * count for k, v in means.items()}
    layer.train()
    assert (layer(x, masks=given)[0] - expected).abs().max() < 1e-15


def test_torch_backward_uses_the_masks_of_its_forward():
    """The fused op saves the masks it was given (drawn in training): the derived backward
    pass after a forward with drawn masks equals autograd through the cell with those
    masks, given explicitly, however the generator moves in between."""
    torch, mod, layer = _torch_layer("lstm_zoneout")
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    gen = torch.Generator().manual_seed(8)
    state = gen.get_state()
    layer.impl = "torch"
    out, (h, c) = layer(x, generator=gen)
    gen.manual_seed(99)  # whatever happens to the generator now
    loss = (out ** 2).sum() + h.sum() + c.sum()
    derived = torch.autograd.grad(loss, [x, *layer.parameters()])
    # the same draws, made again from the saved generator state, given as masks
    drawn = mod._masks(x, layer.layer_params(0), None, True,
                       torch.Generator().set_state(state))
    layer.impl = "autograd"
    out2, (h2, c2) = layer(x, masks={k: [v] for k, v in drawn.items()})
    assert (out2 - out).abs().max() < 1e-15
    loss2 = (out2 ** 2).sum() + h2.sum() + c2.sum()
    reference = torch.autograd.grad(loss2, [x, *layer.parameters()])
    for a, b in zip(derived, reference, strict=True):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


def test_torch_gradcheck_with_fixed_masks():
    torch, mod, layer = _torch_layer("lstm_zoneout")
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 3, dtype=torch.float64, generator=gen).requires_grad_()
    params = {k: v.detach().clone().requires_grad_() for k, v in layer.layer_params(0).items()}
    masks = {k: (torch.rand(3, 2, 4, generator=gen) > 0.3).double() for k in mod.MASKS}
    state0 = tuple(torch.randn(2, 4, dtype=torch.float64, generator=gen).requires_grad_()
                   for _ in mod.STATES)

    def fused(x, h, c, *values):
        out, final = mod.run_layer(x, (h, c), dict(zip(params, values, strict=True)), "torch",
                                   masks=masks)
        return out, *final

    assert torch.autograd.gradcheck(fused, (x, *state0, *params.values()))


def test_torch_masks_are_checked():
    torch, mod, layer = _torch_layer("lstm_zoneout")
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="masks must be a dict with keys among MASKS"):
        layer(x, masks={"mask_q": [x]})
    with pytest.raises(ValueError, match=r"masks\['mask_c'\] must hold one tensor per layer"):
        layer(x, masks={"mask_c": []})
    with pytest.raises(ValueError, match=r"masks\['mask_c'\] must be a tensor of shape "
                                         r"\(5, 2, 4\)"):
        layer(x, masks={"mask_c": [torch.ones(5, 2)]})
    packed = torch.nn.utils.rnn.pack_sequence([x[:, 0], x[:3, 1]])
    with pytest.raises(TypeError, match="masks= needs a padded input"):
        layer(packed, masks={"mask_c": [torch.ones(5, 2, 4)]})
