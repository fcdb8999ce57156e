"""The Python API: gatespec.compile to an in-memory module, gatespec.generate to a folder."""

import copy
import io
import pickle
import sys

import numpy as np
import pytest
from conftest import require_torch

import gatespec
from gatespec import cells
from gatespec.check import load_module
from gatespec.errors import CheckError, ParseError, UsageError

# the built-in srnn, renamed: the same function under another cell's name
MY_RNN = cells.source("srnn").replace("cell srnn ", "cell my_rnn ")


def _numpy_outputs(module):
    rng = np.random.default_rng(0)
    params = module.init_params({"input": 3, "hidden": 4}, rng)
    x = rng.normal(size=(5, 2, 3))
    return module.forward(x, None, params)[0], params, x


def test_text_path_and_builtin_name_give_working_modules(tmp_path):
    path = tmp_path / "my_rnn.gate"
    path.write_text(MY_RNN, "utf-8")
    from_text = gatespec.compile(MY_RNN)
    from_path = gatespec.compile(path)
    from_str_path = gatespec.compile(str(path))
    builtin = gatespec.compile("srnn")
    # the same cell under two names computes the same thing: compare with tanh(Wx + Wh + b)
    y, params, x = _numpy_outputs(builtin)
    h = np.zeros((2, 4))
    for t in range(5):
        h = np.tanh(x[t] @ params["W_hx"].T + h @ params["W_hh"].T + params["b_h"])
        np.testing.assert_allclose(y[t], h, rtol=1e-12)
    for module in (from_text, from_path, from_str_path):
        np.testing.assert_array_equal(_numpy_outputs(module)[0], y)
    assert from_path is from_str_path  # one file, one module
    assert builtin.__name__.startswith("gatespec.compiled.srnn_numpy_")
    assert sys.modules[builtin.__name__] is builtin


def test_same_text_same_module_and_same_name_different_cell_different_module():
    a = gatespec.compile(MY_RNN)
    assert gatespec.compile(MY_RNN) is a
    other = MY_RNN.replace("tanh(linear(x, h))", "sigmoid(linear(x, h))").replace(
        "equivalent torch.nn.RNN gates h\n", "")
    b = gatespec.compile(other)
    assert b is not a and b.__name__ != a.__name__
    assert a.__name__.startswith("gatespec.compiled.my_rnn_numpy_")
    assert b.__name__.startswith("gatespec.compiled.my_rnn_numpy_")
    # and they really differ: sigmoid outputs are all positive, tanh ones are not
    assert (_numpy_outputs(b)[0] > 0).all() and (_numpy_outputs(a)[0] < 0).any()


def test_numpy_functions_pickle_by_reference():
    module = gatespec.compile("srnn")
    assert pickle.loads(pickle.dumps(module.forward)) is module.forward


@pytest.mark.parametrize(("text", "error", "line", "column"), [
    ("cell bad\ninput x\nstate h\nh' = tanh(linear(x, h) +)\n", ParseError, 4, 25),
    ("cell bad\ninput x\nstate h\nh' = tanh(linear(x, h) + q)\n", CheckError, 4, 26),
])
def test_a_bad_cell_raises_with_its_place(text, error, line, column):
    with pytest.raises(error) as info:
        gatespec.compile(text)
    assert (info.value.span.path, info.value.span.line, info.value.span.column) == (
        "<string>", line, column)
    assert str(info.value).startswith(f"<string>:{line}:{column}: error: ")
    with pytest.raises(error) as info:
        gatespec.compile(text, name="mine.gate")
    assert str(info.value).startswith(f"mine.gate:{line}:{column}: error: ")


def test_unknown_names_files_and_targets_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="neither a .gate file nor a built-in cell"):
        gatespec.compile("no_such_cell")
    with pytest.raises(UsageError, match="cannot read"):
        gatespec.compile(tmp_path / "missing.gate")
    with pytest.raises(UsageError, match="numpy or torch"):
        gatespec.compile("srnn", target="triton")
    with pytest.raises(UsageError, match="unknown target"):
        gatespec.generate("srnn", "fortran", tmp_path)


@pytest.fixture
def torch_model():
    torch = require_torch()
    module = gatespec.compile(MY_RNN, target="torch")
    torch.manual_seed(0)
    model = module.MyRNN(3, 4, num_layers=2)
    x = torch.randn(6, 2, 3)
    return torch, module, model, x


def test_torch_model_pickles_deepcopies_and_saves(torch_model):
    torch, module, model, x = torch_model
    expected = model(x)[0]
    assert pickle.loads(pickle.dumps(module.MyRNN)) is module.MyRNN
    copies = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model)]
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    copies.append(torch.load(buffer, weights_only=False))
    for other in copies:
        assert type(other) is module.MyRNN and other is not model
        assert torch.equal(other(x)[0], expected)


def test_torch_impls_in_memory(torch_model):
    torch, module, model, x = torch_model
    expected = model(x)[0]
    model.impl = "autograd"
    torch.testing.assert_close(model(x)[0], expected, rtol=1e-6, atol=1e-6)
    for kind in ("triton", "cuda"):
        model.impl = kind
        with pytest.raises(ValueError, match=f"impl='{kind}' runs on CUDA tensors"):
            model(x)  # CPU tensors: refused before any kernel file is looked for
        # on a GPU the kernel files would be next: an in-memory module has none
        with pytest.raises(RuntimeError, match="compiled in memory: write them with gatespec.generate"):
            module._sibling(kind)


def test_generate_writes_files_and_refuses_a_foreign_one(tmp_path):
    out = tmp_path / "out"
    written = gatespec.generate(MY_RNN, "numpy", out)
    assert written == [out / "my_rnn_numpy.py"]
    # the file imported the ordinary way computes what the in-memory module computes
    from_file = load_module(written[0].read_text("utf-8"), "my_rnn_numpy")
    np.testing.assert_array_equal(_numpy_outputs(from_file)[0],
                                  _numpy_outputs(gatespec.compile(MY_RNN))[0])
    assert gatespec.generate(MY_RNN, "numpy", out) == written  # its own file: replaced
    mine = out / "srnn_torch.py"
    mine.write_text("# my own notes\n", "utf-8")
    with pytest.raises(UsageError, match="not generated by gatespec; not overwriting"):
        gatespec.generate("srnn", "torch", out)
    assert mine.read_text("utf-8") == "# my own notes\n"
