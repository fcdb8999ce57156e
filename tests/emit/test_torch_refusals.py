"""from_torch and to_torch refusals name gatespec's class and torch.nn's apart: the
article's GRU refusing torch.nn.GRU must not read "GRU cannot load the weights of GRU"."""

import pytest
from conftest import require_torch
from helpers import module_class, torch_module

torch = require_torch()


def test_no_equivalent_names_both_classes():
    GRU = module_class(torch_module("gru"))
    with pytest.raises(TypeError) as refused:
        GRU.from_torch(torch.nn.GRU(3, 2))
    assert str(refused.value).startswith(
        "gatespec's GRU (gru.gate: GRU with the reset gate before the linear map (Cho et al. "
        "2014); the article's GRU) cannot load the weights of torch.nn.GRU: gru.gate declares "
        "no equivalent torch.nn layer")
    with pytest.raises(TypeError, match=r"^gatespec's GRU has no equivalent torch\.nn layer "
                                        r"\(gru\.gate\)$"):
        GRU(3, 2).to_torch()


def test_wrong_layer_names_both_classes():
    LSTM = module_class(torch_module("lstm"))
    with pytest.raises(TypeError) as refused:
        LSTM.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    text = str(refused.value)
    assert text.startswith("gatespec's LSTM (lstm.gate: ")
    assert text.endswith("loads the weights of torch.nn.LSTM without proj_size, "
                         "not of torch.nn.LSTM(3, 4, proj_size=2)")
    with pytest.raises(TypeError, match=r"not of torch\.nn\.GRU\(3, 4\)$"):
        LSTM.from_torch(torch.nn.GRU(3, 4))


def test_a_foreign_class_is_named_by_its_module():
    class GRU(torch.nn.Module):  # a user's own GRU, not torch.nn's
        pass

    with pytest.raises(TypeError, match=r"cannot load the weights of "
                                        r"test_torch_refusals\..*GRU: gru\.gate"):
        module_class(torch_module("gru")).from_torch(GRU())
