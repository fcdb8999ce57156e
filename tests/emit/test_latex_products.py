"""A long product in the documents: its pieces are named π with adjoints of their own, so
each factor's adjoint has a few factors and the page grows linearly with the product."""

from gatespec.emit import latex


def gate_product(n: int) -> str:
    lines = ["cell product", "input x", "state h"]
    lines += [f"g{k} = sigmoid(linear(x, h))" for k in range(1, n + 1)]
    lines.append("h' = " + " * ".join(f"g{k}" for k in range(1, n + 1)))
    return "\n".join(lines) + "\n"


def test_pieces_are_named_and_adjoints_stay_short():
    eqs = latex.cell_equations(gate_product(24), "p.gate")
    printed = {e.lhs: " ".join(e.rhs) for e in eqs.backward_equations()}
    pieces = [lhs for lhs in printed if lhs.startswith(r"\boldsymbol{\pi}_{h")]
    assert pieces == [r"\boldsymbol{\pi}_{h3,t}", r"\boldsymbol{\pi}_{h2,t}",
                      r"\boldsymbol{\pi}_{h1,t}"]
    assert r"\delta\boldsymbol{\pi}_{h3,t}" in printed
    g1 = printed[r"\delta\boldsymbol{g}_{1,t}"]
    assert g1.startswith(r"\delta\boldsymbol{\pi}_{h1,t} \odot")
    assert max(text.count(r"\odot") for text in printed.values()) <= 8


def test_page_grows_linearly_with_the_product():
    small, large = (len(latex.render(gate_product(n), "p.gate", "md")) for n in (40, 80))
    assert 1.8 < large / small < 2.2
