"""Variable-length batches in the PyTorch module: a PackedSequence or lengths= against
torch.nn.LSTM / GRU / RNN on packed input (outputs, final states and every gradient), and
every built-in cell against each sequence run alone at its own length (an independent
check: the plain full-length path), in both implementations of the schedule."""

import pytest
from conftest import require_torch
from helpers import extra_inputs, module_class, small_sizes, torch_module

from gatespec import cells

torch = require_torch()
F64 = torch.float64
pack = torch.nn.utils.rnn.pack_padded_sequence
unpack = torch.nn.utils.rnn.pad_packed_sequence
PackedSequence = torch.nn.utils.rnn.PackedSequence


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def _projection(tensors, seed=7):
    """A fixed random linear function of the tensors: a loss whose gradient reaches each."""
    gen = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in tensors)


def _torch_layout_grads(ours, name):
    """Our parameters' gradients keyed by torch.nn's names (weights stacked as torch's);
    a bias torch keeps twice is compared with each of its two chunks."""
    mod = torch_module(name)
    grads = {}
    for layer, suffix in ours._layers():
        for torch_name, names in mod.TORCH_WEIGHTS:
            parts = [getattr(ours, f"{n}_l{layer}{suffix}").grad for n in names]
            grads[f"{torch_name}_l{layer}{suffix}"] = torch.cat(parts)
        for bias, k, kind in mod.TORCH_BIASES:
            for which in ("ih", "hh"):
                if kind in ("sum", which):
                    key = (f"bias_{which}_l{layer}{suffix}", k)
                    grads[key] = getattr(ours, f"{bias}_l{layer}{suffix}").grad
    return grads


CASES = [("lstm", "LSTM", {}), ("gru_torch", "GRU", {}),
         ("srnn", "RNN", {"nonlinearity": "tanh"})]


@pytest.mark.parametrize("name,layer,kwargs", CASES)
@pytest.mark.parametrize("enforce_sorted,batch_first", [(False, True), (True, False)])
def test_packed_matches_torch_nn(name, layer, kwargs, enforce_sorted, batch_first):
    torch.manual_seed(0)
    ref = getattr(torch.nn, layer)(3, 4, num_layers=2, bidirectional=True,
                                   batch_first=batch_first, dtype=F64, **kwargs)
    ours = module_class(torch_module(name)).from_torch(ref)
    lengths = [6, 4, 4, 1] if enforce_sorted else [3, 6, 1, 4, 6]
    B, T = len(lengths), 6
    x = torch.randn(*((B, T) if batch_first else (T, B)), 3, dtype=F64)
    states = [torch.randn(4, B, 4, dtype=F64) for _ in range(2 if layer == "LSTM" else 1)]
    results = []
    for module in (ref, ours):
        leaves = [t.clone().requires_grad_() for t in (x, *states)]
        packed = pack(leaves[0], lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
        state = tuple(leaves[1:]) if layer == "LSTM" else leaves[1]
        out, final = module(packed, state)
        assert isinstance(out, PackedSequence)
        finals = final if isinstance(final, tuple) else (final,)
        _projection([out.data, *finals]).backward()
        results.append((out, finals, [t.grad for t in leaves]))
    (out1, fin1, g1), (out2, fin2, g2) = results
    assert torch.equal(out1.batch_sizes, out2.batch_sizes)
    for a, b in ((out1.sorted_indices, out2.sorted_indices),
                 (out1.unsorted_indices, out2.unsorted_indices)):
        assert (a is None and b is None) or torch.equal(a, b)
    assert _rel(out2.data, out1.data) <= 1e-12
    for a, b in zip(fin2, fin1, strict=True):
        assert a.shape == b.shape and _rel(a, b) <= 1e-12
    for a, b in zip(g2, g1, strict=True):  # input and initial states
        assert _rel(a, b) <= 1e-10
    grads = _torch_layout_grads(ours, name)
    gates = torch_module(name).TORCH_GATES
    for key, value in grads.items():
        expected = (getattr(ref, key[0]).grad.chunk(gates)[key[1]] if isinstance(key, tuple)
                    else getattr(ref, key).grad)
        assert _rel(value, expected) <= 1e-10, key
    covered = {k if isinstance(k, str) else k[0] for k in grads}
    assert {n for n, _ in ref.named_parameters()} <= covered  # every weight was compared


@pytest.mark.parametrize("name,layer,batch_first,as_list", [("lstm", "LSTM", True, False),
                                                            ("gru_torch", "GRU", False, True)])
def test_lengths_keyword_matches_torch_nn_packed(name, layer, batch_first, as_list):
    torch.manual_seed(1)
    ref = getattr(torch.nn, layer)(3, 4, num_layers=2, bidirectional=True,
                                   batch_first=batch_first, dtype=F64)
    ours = module_class(torch_module(name)).from_torch(ref)
    lengths = [2, 5, 1, 5]  # the longest is shorter than the padded T = 7
    T, B = 7, len(lengths)
    x = torch.randn(*((B, T) if batch_first else (T, B)), 3, dtype=F64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, fin1 = ref(pack(x1, lengths, batch_first=batch_first, enforce_sorted=False))
    out1 = unpack(out1, batch_first=batch_first, total_length=T)[0]
    out2, fin2 = ours(x2, lengths=lengths if as_list else torch.tensor(lengths))
    assert out2.shape == out1.shape and _rel(out2, out1) <= 1e-12
    fin1 = fin1 if isinstance(fin1, tuple) else (fin1,)
    fin2 = fin2 if isinstance(fin2, tuple) else (fin2,)
    for a, b in zip(fin2, fin1, strict=True):
        assert _rel(a, b) <= 1e-12
    _projection([out1, *fin1]).backward()
    _projection([out2, *fin2]).backward()
    assert _rel(x2.grad, x1.grad) <= 1e-10
    assert (x2.grad[0, 2:] if batch_first else x2.grad[2:, 0]).abs().max() == 0


def _make(name, seed=0, **kwargs):
    mod = torch_module(name)
    sizes = small_sizes(mod, hidden=3, input_=2, other=2)
    extra = [sizes[s] for s in mod.SIZES if s not in ("input", "hidden")]
    torch.manual_seed(seed)
    return mod, module_class(mod)(sizes["input"], sizes["hidden"], *extra, dtype=F64,
                                  **kwargs), sizes


@pytest.mark.parametrize("name", cells.names())
def test_packed_matches_each_sequence_alone(name):
    """Every built-in cell (lstm_peephole, the article's gru, lstm_layernorm, ... have no
    torch.nn twin), 2 layers and both directions where the cell stacks them, unsorted
    lengths; the fused schedule (impl="torch") and the step-by-step reference under
    autograd, which masks whole rows instead of running the active ones (impl="autograd")."""
    both = torch_module(name).INPUT_SIZE == "input"
    mod, layer, sizes = _make(name, num_layers=2, bidirectional=both)
    if hasattr(mod, "MASKS"):  # drawn masks differ between the runs: their expectation
        layer.eval()
    lengths, T = [2, 4, 1], 4
    B, k = len(lengths), 4 if both else 2
    x = torch.randn(T, B, sizes["input"], dtype=F64, requires_grad=True)
    # positive states: sLSTM's normaliser state divides
    states = [(0.5 + 0.5 * torch.rand(k, B, sizes[mod.STATE_SIZES[s]], dtype=F64)).requires_grad_()
              for s in mod.STATES]
    # further input sequences (gru_cond's context): cut, packed and reversed along with x
    extras = extra_inputs(mod, sizes, T, B, lambda shape: torch.randn(
        shape, dtype=F64, requires_grad=True))
    leaves = [x, *extras.values(), *states, *layer.parameters()]

    def call(inp, sts, given):
        out, final = layer(inp, sts[0] if len(sts) == 1 else tuple(sts), **given)
        return out, final if isinstance(final, tuple) else (final,)

    gen = torch.Generator().manual_seed(3)
    g_out = torch.randn(T, B, layer.output_size * (2 if both else 1), generator=gen, dtype=F64)
    g_fin = [torch.randn(s.shape, generator=gen, dtype=F64) for s in states]
    alone_out, alone_fin, loss = [], [], 0
    for b, n in enumerate(lengths):
        out, finals = call(x[:n, b:b + 1], [s[:, b:b + 1] for s in states],
                           {k: v[:n, b:b + 1] for k, v in extras.items()})
        alone_out.append(out[:, 0])
        alone_fin.append(finals)
        loss = loss + (out[:, 0] * g_out[:n, b]).sum()
        loss = loss + sum((f * g[:, b:b + 1]).sum() for f, g in zip(finals, g_fin, strict=True))
    alone_grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    for impl in ("torch", "autograd"):
        layer.impl = impl
        packed, finals = call(pack(x, lengths, enforce_sorted=False), states,
                              {k: pack(v, lengths, enforce_sorted=False)
                               for k, v in extras.items()})
        out = unpack(packed, total_length=T)[0]
        for b, n in enumerate(lengths):
            assert _rel(out[:n, b], alone_out[b]) <= 1e-12, impl
            assert out[n:, b].abs().max() == 0 if n < T else True
            for f, a in zip(finals, alone_fin[b], strict=True):
                assert _rel(f[:, b], a[:, 0]) <= 1e-12, impl
        loss = (out * g_out).sum() + sum((f * g).sum() for f, g in zip(finals, g_fin, strict=True))
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        for (pname, value), a, b in zip([("x", x), *extras.items(), *(("state", s) for s in states),
                                         *layer.named_parameters()], grads, alone_grads,
                                        strict=True):
            a = torch.zeros_like(value) if a is None else a
            b = torch.zeros_like(value) if b is None else b
            assert (a - b).abs().max() <= 1e-10 * max(1.0, b.abs().max().item()), (impl, pname)


def test_dropout_between_layers_and_no_grad():
    mod, layer, sizes = _make("lstm", num_layers=3, dropout=0.5, bidirectional=True)
    x = torch.randn(5, 3, sizes["input"], dtype=F64, requires_grad=True)
    out, (h, c) = layer(x, lengths=[5, 2, 3])
    assert out[2:, 1].abs().max() == 0 and out[3:, 2].abs().max() == 0
    out.sum().backward()
    assert x.grad[2:, 1].abs().max() == 0
    layer.eval()
    with torch.no_grad():
        packed, _ = layer(pack(x, [5, 2, 3], enforce_sorted=False))
        again, _ = layer(x, lengths=torch.tensor([5, 2, 3]))
    assert torch.equal(unpack(packed)[0], again)


@pytest.mark.parametrize("name", ["lstm_layernorm", "sru"])
def test_padding_is_never_read(name):
    """NaN in the padding of x given with lengths= changes nothing, and its gradient is zero."""
    mod, layer, sizes = _make(name, num_layers=2)
    lengths = torch.tensor([3, 5, 1])
    x = torch.randn(5, 3, sizes["input"], dtype=F64)
    padded = (torch.arange(5)[:, None] >= lengths)[..., None]
    results = []
    for inp in (x.masked_fill(padded, 0), x.masked_fill(padded, float("nan"))):
        inp.requires_grad_()
        out, final = layer(inp, lengths=lengths)
        finals = final if isinstance(final, tuple) else (final,)
        grads = torch.autograd.grad(_projection([out, *finals]), [inp, *layer.parameters()])
        results.append([out, *finals, *grads])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_full_lengths_match_the_plain_path():
    _, layer, sizes = _make("gru", num_layers=2, bidirectional=True)
    x = torch.randn(4, 3, sizes["input"], dtype=F64)
    plain, h1 = layer(x)
    with_lengths, h2 = layer(x, lengths=[4, 4, 4])
    assert _rel(with_lengths, plain) <= 1e-14 and _rel(h2, h1) <= 1e-14


@pytest.mark.parametrize("call,error,match", [
    (lambda m, x: m(pack(x, [3, 2]), lengths=[3, 2]), ValueError,
     r"lengths= is for a padded input: a PackedSequence carries its own lengths"),
    (lambda m, x: m(x, lengths=[3, 2, 1]), ValueError,
     r"lengths must have shape \(B,\) = \(2,\), one length per sequence; got \(3,\)"),
    (lambda m, x: m(x, lengths=[3, 0]), ValueError, r"lengths must be in 1\.\.T = 1\.\.3; got 0\.\.3"),
    (lambda m, x: m(x, lengths=[4, 2]), ValueError, r"lengths must be in 1\.\.T = 1\.\.3; got 2\.\.4"),
    (lambda m, x: m(x, lengths=torch.tensor([3.0, 2.0])), TypeError,
     r"lengths must hold integers, got torch\.float32"),
    (lambda m, x: m(x, lengths="32"), TypeError, r"lengths must be a 1-D integer tensor"),
    (lambda m, x: m(x[:, 0], lengths=[3]), ValueError, r"lengths= needs a batched input"),
    (lambda m, x: m(pack(x, [3, 2]), torch.zeros(1, 3, 3, dtype=F64)), ValueError,
     r"Expected state \(h_0\) size \(1, 2, 3\), got \[1, 3, 3\]"),
])
def test_bad_variable_length_calls_are_refused(call, error, match):
    _, layer, sizes = _make("srnn")
    x = torch.randn(3, 2, sizes["input"], dtype=F64)
    with pytest.raises(error, match=match):
        call(layer, x)


@pytest.mark.parametrize("batch_sizes,match", [
    (torch.tensor([2, 2]), r"shape \(T,\) = \(3,\)"),
    (torch.tensor([2, 1, 1], dtype=torch.int32), r"CPU int64 tensor"),
    (torch.tensor([2, 1, 2]), r"non-increasing from B = 2 down to at least 1.*\[2, 1, 2\]"),
    (torch.tensor([3, 2, 1]), r"non-increasing from B = 2"),
    (torch.tensor([2, 1, 0]), r"down to at least 1"),
])
def test_run_layer_refuses_bad_batch_sizes(batch_sizes, match):
    mod, layer, sizes = _make("srnn")
    x = torch.randn(3, 2, sizes["input"], dtype=F64)
    with pytest.raises(ValueError, match=match):
        mod.run_layer(x, (torch.zeros(2, 3, dtype=F64),), layer.layer_params(0),
                      batch_sizes=batch_sizes)
