"""`gatespec show` says where the epilogue fusion puts the input-only sums: the step's
GEMM starts from them, so `i = sigmoid(m_ih)` reads s_i + W_ih h_prev, not W_ih h_prev."""

from conftest import ROOT

from gatespec.cli import main


def _show(name, capsys) -> str:
    assert main(["show", name]) == 0
    return capsys.readouterr().out


def test_fused_gemm_names_the_sums_it_starts_from(capsys):
    text = _show("lstm", capsys)
    static, loop = text.split("forward, each time step:")
    for k in "ifgo":  # the sums, defined in the input-only section
        assert f"  s_{k} = b_{k} + m_{k}x\n" in static
    assert ("  [m_ih, m_fh, m_gh, m_oh] = [s_i, s_f, s_g, s_o] + h_prev @ "
            "[W_ih, W_fh, W_gh, W_oh]^T   (one GEMM, started from the input-only sums: "
            "m_ih = s_i + W_ih @ h_prev)\n") in loop
    assert "  i = sigmoid(m_ih)\n" in loop  # the line that needed the note


def test_unfused_gemm_has_no_note(capsys):
    # the article's GRU applies r before W_nh, so its step GEMMs are plain products
    text = _show("gru", capsys)
    assert "  [m_rh, m_zh] = h_prev @ [W_rh, W_zh]^T   (one GEMM)\n" in text
    assert "started from" not in text


def test_show_says_which_states_are_scanned_and_why_not():
    """The lines the README quotes."""
    from gatespec.pipeline import plan_for
    from gatespec.show import render_plan

    assert "  h: yes (h' = a * h + b, a and b read no state)\n" in render_plan(plan_for("mingru"))
    lstm = render_plan(plan_for("lstm"))
    assert "  h: no, f reads h through the matrix W_fh, which mixes its units\n" in lstm
    assert ("  c: no, its update reads the state h, so its coefficients are not known before "
            "the loop\n") in lstm


def test_show_lists_bias_and_scalar_with_roles_and_inits(capsys):
    text = _show(str(ROOT / "tests" / "corpus" / "learned_params.gate"), capsys)
    params = text.split("parameters:\n")[1].split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line for line in params}
    assert rows["b_offset"].split()[1:4] == ["(hidden)", "unit_bias", "starts"]
    assert "starts at -0.5 (line 9, offset)" in rows["b_offset"]
    assert "unit_bias (line 10, g)" in rows["b_g"]  # no init: uniform, like other biases
    assert rows["gamma_c1"].split()[1:] == ["()", "scalar", "starts", "at", "1.0", "(line",
                                            "12,", "c)"]
    assert "scalar starts at 0.5" in rows["gamma_c2"]
    assert "scalar starts at -1.0" in rows["gamma_h"]
