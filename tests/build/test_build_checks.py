"""Cells that parse but are not valid: each check's message, exact place and rendering."""

import pytest

from gatespec.build import build
from gatespec.errors import CheckError, SpecError
from gatespec.parse import parse

PATH = "bad.gate"
HEAD = ("cell c", "input x", "state h")  # statements start on line 4
LSTM_HEAD = ("cell c", "input x", "state h, c")
GOOD_H = "h' = tanh(linear(x, h))"


def src(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def assert_check_error(source, message, line, column, at=None, note=None):
    """`at`: the text the column points to in its line."""
    cf = parse(source, PATH)
    with pytest.raises(CheckError) as info:
        build(cf)
    err = info.value
    assert message in err.message
    assert (err.span.line, err.span.column) == (line, column)
    text_line = source.splitlines()[line - 1]
    if at is not None:
        assert text_line[column - 1:].startswith(at)
    if note is not None:
        assert note in err.note
    rendered = err.render().splitlines()
    assert rendered[0] == f"{PATH}:{line}:{column}: error: {err.message}"
    assert rendered[1] == "    " + text_line
    assert rendered[2].startswith(" " * (4 + column - 1) + "^")
    assert rendered[2].strip(" ~") == "^"
    if note is not None:
        assert rendered[3] == f"note: {err.note}"
    return err


def case(id_, source, message, line, column, at=None, note=None):
    return pytest.param(source, message, line, column, at, note, id=id_)


NAMES = [
    case("unknown_name_close", src(*HEAD, "h' = tanh(linear(x, hh))"),
         "unknown name 'hh'", 4, 21, "hh", "did you mean 'h'?"),
    case("unknown_name_close_to_intermediate",
         src(*HEAD, "gate = sigmoid(linear(x, h))", "h' = gte * tanh(linear(x, h))"),
         "unknown name 'gte'", 5, 6, "gte", "did you mean 'gate'?"),
    case("unknown_name_far", src(*HEAD, "h' = tanh(linear(x, qqq))"),
         "unknown name 'qqq'", 4, 21, "qqq"),
    case("unknown_name_in_operand_expression", src(*HEAD, "h' = tanh(linear(x, r * h))"),
         "unknown name 'r'", 4, 21, "r * h"),
    case("keyword_used_as_a_value", src(*HEAD, "h' = tanh(linear(x, h)) + cell"),
         "unknown name 'cell'", 4, 27, "cell"),
    case("unknown_function_close", src(*HEAD, "h' = tahn(linear(x, h))"),
         "unknown function 'tahn'", 4, 6, "tahn", "did you mean 'tanh'?"),
    case("unknown_function_close_to_linear", src(*HEAD, "h' = tanh(lineer(x, h))"),
         "unknown function 'lineer'", 4, 11, "lineer", "did you mean 'linear'?"),
    case("unknown_function_far", src(*HEAD, "h' = zzzz(linear(x, h))"),
         "unknown function 'zzzz'", 4, 6, "zzzz"),
    case("unknown_function_with_keyword", src(*HEAD, "h' = zzzz(linear(x, h), k=1)"),
         "unknown function 'zzzz'", 4, 6, "zzzz"),
]

ARITY = [
    case("tanh_two", src(*HEAD, "h' = tanh(linear(x, h), h)"),
         "tanh() takes 1 operand, got 2", 4, 6, "tanh"),
    case("tanh_none", src(*HEAD, "h' = linear(x, h) + tanh()"),
         "tanh() takes 1 operand, got 0", 4, 21, "tanh"),
    case("max_one", src(*HEAD, "h' = max(linear(x, h))"),
         "max() takes 2 operands, got 1", 4, 6, "max"),
    case("min_three", src(*HEAD, "h' = min(linear(x, h), h, h)"),
         "min() takes 2 operands, got 3", 4, 6, "min"),
    case("identity_two", src(*HEAD, "h' = identity(linear(x, h), h)"),
         "identity() takes 1 operand, got 2", 4, 6, "identity"),
    case("diag_none", src(*HEAD, "h' = tanh(linear(x, h) + diag())"),
         "diag() takes 1 operand, got 0", 4, 26, "diag"),
    case("diag_two", src(*HEAD, "h' = tanh(linear(x, h) + diag(h, h))"),
         "diag() takes 1 operand, got 2", 4, 26, "diag"),
    case("linear_none", src(*HEAD, "h' = tanh(linear() + linear(x, h))"),
         "linear() needs at least one operand", 4, 11, "linear"),
    case("linear_only_keyword", src(*HEAD, "h' = tanh(linear(bias=false))"),
         "linear() needs at least one operand", 4, 11, "linear"),
    case("linear_constant_operand", src(*HEAD, "h' = tanh(linear(x, h, 2))"),
         "a linear map's operand must be a vector, not a constant", 4, 24, "2"),
    case("linear_constant_expression_operand", src(*HEAD, "h' = tanh(linear(x, h, 2 * 3))"),
         "a linear map's operand must be a vector", 4, 24, "2 * 3"),
    case("diag_constant_operand", src(*HEAD, "h' = tanh(linear(x, h) + diag(2))"),
         "the operand of diag() must be a vector, not a constant", 4, 31, "2"),
    # found by the fuzz test: operands whose terms cancel (a layer norm of them was exit 3)
    case("linear_cancelling_operand", src(*HEAD, "h' = tanh(linear(x, h - h))"),
         "a linear map's operand is a constant: its terms cancel", 4, 21, "h - h"),
    case("diag_cancelling_operand", src(*HEAD, "h' = tanh(linear(x) + diag(h - h))"),
         "'w_hh' vanishes from the value of 'h'", 4, 23, "diag"),
    case("layernorm_cancelling_operand", src(*HEAD, "h' = tanh(linear(x) + layernorm(h - h))"),
         "the operand of layernorm() is a constant: its terms cancel", 4, 33, "h - h"),
    # found by the fuzz test: a linear map times terms that cancel (its gradient buffer's
    # slice was never written)
    case("linear_times_zero", src(*HEAD, "h' = tanh(linear(x) * (h - h) + linear(h))"),
         "'W_hx' vanishes from the value of 'h'", 4, 18, "x"),
    case("diag_times_zero", src(*HEAD, "h' = tanh(linear(x, h) + 0 * diag(h))"),
         "'w_hh' vanishes from the value of 'h'", 4, 30, "diag"),
]

KEYWORDS = [
    case("linear_gain", src(*HEAD, "h' = tanh(linear(x, h, gain=2))"),
         "linear() has no option 'gain'", 4, 24, "gain"),
    case("linear_bias_maybe", src(*HEAD, "h' = tanh(linear(x, h, bias=maybe))"),
         "bias= takes true or false", 4, 29, "maybe"),
    case("linear_bias_number", src(*HEAD, "h' = tanh(linear(x, h, bias=0))"),
         "bias= takes true or false", 4, 29, "0"),
    case("linear_bias_expression", src(*HEAD, "h' = tanh(linear(x, h, bias=false + 1))"),
         "bias= takes true or false", 4, 29, "false + 1"),
    case("linear_bias_primed", src(*HEAD, "h' = tanh(linear(x, h, bias=false'))"),
         "bias= takes true or false", 4, 29, "false'"),
    case("linear_bias_twice", src(*HEAD, "h' = tanh(linear(x, h, bias=false, bias=true))"),
         "linear() is given bias= twice", 4, 36, "bias=true"),
    case("tanh_keyword", src(*HEAD, "h' = tanh(linear(x, h), bias=false)"),
         "tanh() takes no keyword arguments", 4, 25, "bias"),
    case("max_keyword", src(*HEAD, "h' = max(linear(x, h), h, k=1)"),
         "max() takes no keyword arguments", 4, 27, "k=1"),
    case("diag_keyword", src(*HEAD, "h' = tanh(linear(x, h) + diag(h, bias=false))"),
         "diag() takes no keyword arguments", 4, 34, "bias"),
    case("diag_keyword_only", src(*HEAD, "h' = tanh(linear(x, h) + diag(bias=false))"),
         "diag() takes no keyword arguments", 4, 31, "bias"),
    case("identity_keyword", src(*HEAD, "h' = identity(tanh(linear(x, h)), a=1)"),
         "identity() takes no keyword arguments", 4, 35, "a=1"),
]

UPDATES = [
    case("state_without_update", src(*LSTM_HEAD, GOOD_H),
         "state 'c' has no update", 3, 10, "c", "add a line `c' = ...`"),
    case("only_state_without_update", src(*HEAD, "a = linear(x)", "output a"),
         "state 'h' has no update", 3, 7, "h"),
    case("state_updated_twice", src(*HEAD, GOOD_H, "h' = h"),
         "state 'h' is updated twice", 5, 1, "h'", "first update at line 4"),
    case("update_of_intermediate", src(*HEAD, "i = linear(x)", "i' = i", GOOD_H),
         "'i'' updates 'i', which is not a state (an intermediate)", 5, 1, "i'",
         "declare it with `state i` or drop the prime"),
    case("update_of_intermediate_defined_later", src(*HEAD, "i' = i", "i = linear(x)", GOOD_H),
         "which is not a state (an intermediate)", 4, 1, "i'"),
    case("update_of_input", src(*HEAD, "x' = x", GOOD_H),
         "'x'' updates 'x', which is not a state (the input)", 4, 1, "x'"),
    case("update_of_undeclared", src(*HEAD, "q' = x", GOOD_H),
         "'q'' updates 'q', which is not a state (not declared)", 4, 1, "q'"),
    case("state_assigned_without_prime", src(*HEAD, "h = tanh(linear(x, h))"),
         "'h' is a state: write its update as h' = ...", 4, 1, "h ="),
    case("state_assigned_without_prime_besides_update", src(*HEAD, GOOD_H, "h = 2"),
         "'h' is a state", 5, 1, "h ="),
    case("input_assigned", src(*HEAD, "x = 1", GOOD_H),
         "'x' is an input and cannot be assigned", 4, 1, "x ="),
    case("input_assigned_other_name", src("cell c", "input u", "state h", "u = 1",
                                          "h' = tanh(linear(u, h))"),
         "'u' is an input and cannot be assigned", 4, 1, "u ="),
    case("further_input_assigned", src("cell c", "input x, u", "state h", "u = 1",
                                       "h' = tanh(linear(x, u, h))"),
         "'u' is an input and cannot be assigned", 4, 1, "u ="),
]

PRIMES = [
    case("primed_unknown", src(*HEAD, "h' = tanh(linear(x, h)) + q'"),
         "unknown name 'q''", 4, 27, "q'"),
    case("primed_intermediate", src(*HEAD, "a = linear(x)", "h' = tanh(a' + h)"),
         "'a'': 'a' is not a state, so it has no next value", 5, 11, "a'"),
    case("primed_input", src(*HEAD, "h' = tanh(linear(x', h))"),
         "'x'': 'x' is not a state", 4, 18, "x'"),
]

CYCLES = [
    case("two_intermediates", src(*HEAD, "a = b + 1", "b = a * 2", "h' = tanh(linear(x, h) + a)"),
         "cycle within one step: a -> b -> a", 4, 1, "a =", "read the previous value"),
    case("two_intermediates_reversed",
         src(*HEAD, "b = a * 2", "a = b + 1", "h' = tanh(linear(x, h) + a)"),
         "cycle within one step: b -> a -> b", 4, 1, "b ="),
    case("three_intermediates",
         src(*HEAD, "a = c * 2", "b = a + 1", "c = tanh(b)", "h' = tanh(linear(x, h) + c)"),
         "cycle within one step: a -> c -> b -> a", 4, 1, "a ="),
    case("state_reads_its_own_new_value", src(*LSTM_HEAD, "c' = c' * 2", GOOD_H + " + c"),
         "cycle within one step: c' -> c'", 4, 1, "c'"),
    case("intermediate_reads_itself", src(*HEAD, "a = a + 1", "h' = tanh(linear(x, h) + a)"),
         "cycle within one step: a -> a", 4, 1, "a ="),
    case("through_new_state", src(*HEAD, "a = h' * 2", "h' = tanh(linear(x, h) + a)"),
         "cycle within one step: a -> h' -> a", 4, 1, "a ="),
    case("through_linear", src(*HEAD, "a = tanh(linear(x, b))", "b = tanh(linear(a))", "h' = a + h"),
         "cycle within one step: a -> b -> a", 4, 1, "a ="),
    case("through_linear_reversed",
         src(*HEAD, "b = tanh(linear(a))", "a = tanh(linear(x, b))", "h' = a + h"),
         "cycle within one step: b -> a -> b", 4, 1, "b ="),
    case("state_through_its_own_linear", src(*HEAD, "h' = tanh(linear(x, h'))"),
         "cycle within one step: h' -> h'", 4, 1, "h'"),
    case("state_through_linear_operand_expression", src(*HEAD, "h' = tanh(linear(x, 2 * h'))"),
         "cycle within one step: h' -> h'", 4, 1, "h'"),
    case("through_diag", src(*HEAD, "h' = tanh(linear(x, h) + diag(h'))"),
         "cycle within one step: h' -> h'", 4, 1, "h'"),
]

UNUSED = [
    case("unused_input", src(*HEAD, "h' = tanh(linear(h))"),
         "input 'x' is never used", 2, 7, "x"),
    case("unused_input_constant_update", src(*HEAD, "h' = 2 * h"),
         "input 'x' is never used", 2, 7, "x"),
    case("constant_statement", src(*HEAD, "a = h - h + 1", GOOD_H.replace("linear(x, h)", "linear(x, h) * a")),
         "'a' is a constant: it reads no input, state or parameter", 4, 1, "a"),
    case("unused_intermediate", src(*HEAD, "a = linear(x)", GOOD_H),
         "'a' is computed but never used", 4, 1, "a ="),
    case("intermediate_used_only_by_unused", src(*HEAD, "a = linear(x)", "b = a * 2", GOOD_H),
         "'b' is computed but never used", 5, 1, "b ="),
]

SIZES = [
    case("proj_plus_hidden", src("cell c", "input x", "state h[proj], c", "c' = c + h",
                                 "h' = linear(x, c', bias=false)"),
         "size mismatch in '+': 'hidden' against 'proj'", 4, 8, "+"),
    case("proj_times_hidden", src("cell c", "input x", "state h[proj], c",
                                  "c' = c * h", "h' = linear(x, c')"),
         "size mismatch in '*': 'hidden' against 'proj'", 4, 8, "*"),
    case("linear_output_takes_operand_size", src("cell c", "input x", "state h[proj], c",
                                                 "c' = tanh(linear(x, h)) * h", "h' = linear(c')"),
         "size mismatch in the assignment to 'c'': 'hidden' against 'proj'", 4, 1, "c'"),
    case("proj_assigned_to_hidden", src("cell c", "input x", "state h[proj], c", "c' = h",
                                        "h' = linear(x, c')"),
         "size mismatch in the assignment to 'c'': 'hidden' against 'proj'", 4, 1, "c'"),
    case("input_added_to_hidden", src(*HEAD, "h' = tanh(x + linear(h))"),
         "size mismatch in the assignment to 'h'': 'hidden' against 'input'", 4, 1, "h'"),
    case("input_hidden_against_proj", src("cell c", "input x[hidden]", "state h[proj]",
                                          "h' = tanh(x + h)"),
         "size mismatch in '+': 'hidden' against 'proj'", 4, 13, "+"),
    case("input_hidden_into_linear_operand", src("cell c", "input x[hidden]", "state h[proj]",
                                                 "h' = linear(x + h)"),
         "size mismatch in '+': 'hidden' against 'proj'", 4, 15, "+"),
    case("named_sizes_differ", src("cell c", "input x[emb]", "state h[units]", "h' = tanh(x - h)"),
         "size mismatch in '-': 'emb' against 'units'", 4, 13, "-"),
    case("max_operands", src("cell c", "input x", "state h[proj], c",
                             "c' = max(c, h)", "h' = linear(x, c')"),
         "size mismatch in the operands of max(): 'hidden' against 'proj'", 4, 13, "h)"),
    case("through_intermediate", src("cell c", "input x", "state h[proj], c",
                                     "a = c * 2", "c' = tanh(linear(x, h))", "h' = h + a"),
         "size mismatch in '+': 'proj' against 'hidden'", 6, 8, "+"),
]

NAME_RULES = [
    case("python_keyword_lambda", src(*HEAD, "lambda = linear(x, h)", "h' = tanh(lambda)"),
         "'lambda' is a keyword in generated Python or C code", 4, 1, "lambda"),
    case("python_keyword_class_state", src("cell c", "input x", "state class",
                                           "class' = tanh(linear(x, class))"),
         "'class' is a keyword in generated Python or C code", 3, 7, "class"),
    case("python_soft_keyword", src(*HEAD, "match = linear(x, h)", "h' = tanh(match)"),
         "'match' is a keyword", 4, 1, "match"),
    case("c_keyword_int", src(*HEAD, "int = linear(x, h)", "h' = tanh(int)"),
         "'int' is a keyword in generated Python or C code", 4, 1, "int"),
    case("c_keyword_float_input", src("cell c", "input float", "state h",
                                      "h' = tanh(linear(float, h))"),
         "'float' is a keyword in generated Python or C code", 2, 7, "float"),
    case("c_keyword_false_target", src(*HEAD, "false = linear(x, h)", "h' = tanh(false)"),
         "'false' is a keyword", 4, 1, "false"),
    case("double_underscore", src(*HEAD, "a__b = linear(x, h)", "h' = tanh(a__b)"),
         "'a__b' is not a valid name: double underscores are reserved", 4, 1, "a__b"),
    case("double_underscore_state", src("cell c", "input x", "state h, c__d", GOOD_H),
         "double underscores are reserved", 3, 10, "c__d"),
    case("prefix_W", src(*HEAD, "W_a = linear(x, h)", "h' = tanh(W_a)"),
         "'W_a' starts with 'W_', which gatespec uses for generated names", 4, 1, "W_a"),
    case("prefix_b", src(*HEAD, "b_a = linear(x, h)", "h' = tanh(b_a)"),
         "'b_a' starts with 'b_'", 4, 1, "b_a"),
    case("prefix_w", src(*HEAD, "w_a = linear(x, h)", "h' = tanh(w_a)"),
         "'w_a' starts with 'w_'", 4, 1, "w_a"),
    case("prefix_d", src(*HEAD, "d_a = linear(x, h)", "h' = tanh(d_a)"),
         "'d_a' starts with 'd_'", 4, 1, "d_a"),
    case("prefix_m", src(*HEAD, "m_a = linear(x, h)", "h' = tanh(m_a)"),
         "'m_a' starts with 'm_'", 4, 1, "m_a"),
    case("prefix_s", src(*HEAD, "s_a = linear(x, h)", "h' = tanh(s_a)"),
         "'s_a' starts with 's_'", 4, 1, "s_a"),
    case("prefix_W_state", src("cell c", "input x", "state W_h", "W_h' = tanh(linear(x, W_h))"),
         "'W_h' starts with 'W_'", 3, 7, "W_h"),
    case("prefix_underscore", src(*HEAD, "_a = linear(x, h)", "h' = tanh(_a)"),
         "'_a' is not a valid name", 4, 1, "_a"),
    case("prefix_underscore_input", src("cell c", "input _x", "state h", "h' = tanh(linear(_x, h))"),
         "'_x' is not a valid name", 2, 7, "_x"),
    case("suffix_prev", src(*HEAD, "a_prev = linear(x, h)", "h' = tanh(a_prev)"),
         "'a_prev' ends with '_prev', which gatespec uses for generated names", 4, 1, "a_prev"),
    case("suffix_new", src(*HEAD, "a_new = linear(x, h)", "h' = tanh(a_new)"),
         "'a_new' ends with '_new'", 4, 1, "a_new"),
    case("suffix_new_state", src("cell c", "input x", "state h_new", "h_new' = tanh(linear(x, h_new))"),
         "'h_new' ends with '_new'", 3, 7, "h_new"),
    case("generated_params", src(*HEAD, "params = linear(x, h)", "h' = tanh(params)"),
         "'params' clashes with a name in the generated code", 4, 1, "params"),
    case("generated_cache_state", src("cell c", "input x", "state cache",
                                      "cache' = tanh(linear(x, cache))"),
         "'cache' clashes with a name in the generated code", 3, 7, "cache"),
    case("generated_np", src(*HEAD, "np = linear(x, h)", "h' = tanh(np)"),
         "'np' clashes with a name in the generated code", 4, 1, "np"),
    case("generated_t_input", src("cell c", "input t", "state h", "h' = tanh(linear(t, h))"),
         "'t' clashes with a name in the generated code", 2, 7, "t"),
    case("generated_x_when_input_is_not_x",
         src("cell c", "input u", "state h", "x = linear(u, h)", "h' = tanh(x)"),
         "'x' clashes with a name in the generated code", 4, 1, "x ="),
    case("generated_x_state", src("cell c", "input u", "state x", "x' = tanh(linear(u, x))"),
         "'x' clashes", 3, 7, "x"),
    case("python_builtin", src(*HEAD, "sum = linear(x, h)", "h' = tanh(sum)"),
         "'sum' clashes with a name in the generated code", 4, 1, "sum"),
    case("cell_name_keyword", src("cell lambda", "input x", "state h", GOOD_H),
         "'lambda' is a keyword", 1, 6, "lambda"),
    case("cell_name_double_underscore", src("cell my__cell", "input x", "state h", GOOD_H),
         "double underscores are reserved", 1, 6, "my__cell"),
    case("size_name_keyword", src("cell c", "input x[class]", "state h", GOOD_H),
         "'class' is not a valid size name", 2, 9, "class"),
    case("size_name_double_underscore", src("cell c", "input x", "state h[a__b]", GOOD_H),
         "'a__b' is not a valid size name", 3, 9, "a__b"),
]

DUPLICATES = [
    case("intermediate_twice", src(*HEAD, "a = linear(x, h)", "a = linear(x, h)", "h' = tanh(a)"),
         "'a' is defined twice", 5, 1, "a =", "first definition at line 4"),
    case("state_declared_twice", src("cell c", "input x", "state h, h", GOOD_H),
         "'h' is declared twice", 3, 10, "h"),
    case("state_declared_twice_on_two_lines", src("cell c", "input x", "state h", "state h", GOOD_H),
         "'h' is declared twice", 4, 7, "h"),
    case("state_named_like_input", src("cell c", "input h", "state h", "h' = tanh(linear(h))"),
         "'h' is declared twice", 3, 7, "h"),
    # further input sequences: each is declared once, read, sized, and never the output
    case("further_input_unused", src("cell c", "input x, u[ctx]", "state h", GOOD_H),
         "input 'u' is never used", 2, 10, "u[ctx]"),
    case("further_input_unused_own_line", src("cell c", "input x", "input y", "state h",
                                              GOOD_H),
         "input 'y' is never used", 3, 7, "y"),
    case("further_input_twice", src("cell c", "input x, u, u", "state h",
                                    "h' = tanh(linear(x, u, h))"),
         "'u' is declared twice", 2, 13, "u"),
    case("further_input_named_x", src("cell c", "input u, x", "state h",
                                      "h' = tanh(linear(u, x, h))"),
         "'x' clashes with a name in the generated code", 2, 10, "x"),
    case("further_input_size_mismatch", src("cell c", "input x, u[ctx]", "state h",
                                            "h' = tanh(linear(x, h)) + h * u"),
         "size mismatch in '*': 'hidden' against 'ctx'", 4, 29, "*"),
    case("further_input_as_output", src("cell c", "input x, u[hidden]", "state h",
                                        "output u", "h' = tanh(linear(x, h)) * u"),
         "output 'u' is not a state or an intermediate", 4, 8, "u"),
    case("further_input_primed", src("cell c", "input x, u[hidden]", "state h",
                                     "u' = u", "h' = tanh(linear(x, h)) * u"),
         "'u'' updates 'u', which is not a state (the input)", 4, 1, "u'"),
    case("same_parameter_twice", src(*HEAD, "n = tanh(linear(x) + linear(x))", "h' = n * h"),
         "this would create parameter 'W_nx' a second time", 4, 29, "x))",
         "first created at line 4, column 17"),
    case("same_operand_twice_in_one_linear", src(*HEAD, "h' = tanh(linear(x, x))"),
         "parameter 'W_hx' a second time", 4, 21, "x))", "first created at line 4, column 18"),
    case("same_weights_from_reordered_operands",
         src(*HEAD, "n = tanh(linear(x, h) + linear(h, x))", "h' = n * h"),
         "parameter 'W_nh' a second time", 4, 32, "h, x", "line 4, column 20"),
    case("operand_expressions_with_same_leaves",
         src(*HEAD, "n = tanh(linear(x) + linear(2 * x))", "h' = n * h"),
         "parameter 'W_nx' a second time", 4, 29, "2 * x"),
    case("nested_linear", src(*HEAD, "h' = tanh(linear(tanh(linear(x)), h))"),
         "parameter 'W_hx' a second time", 4, 18, "tanh(linear(x))"),
    case("diag_twice", src(*HEAD, "h' = tanh(linear(x, h) + diag(h) + diag(h))"),
         "parameter 'w_hh' a second time", 4, 36, "diag(h))", "line 4, column 26"),
]

OUTPUT_AND_DECLARATIONS = [
    case("output_unknown", src(*HEAD, "output q", GOOD_H),
         "output 'q' is not a state or an intermediate", 4, 8, "q"),
    case("output_close_to_state", src(*HEAD, "output hh", GOOD_H),
         "output 'hh' is not a state or an intermediate", 4, 8, "hh", "did you mean 'h'?"),
    case("output_is_input", src(*HEAD, "output x", GOOD_H),
         "output 'x' is not a state or an intermediate", 4, 8, "x"),
    case("missing_cell_line", src("input x", "state h", GOOD_H),
         "the cell has no name: start the file with `cell NAME`", 1, 1, "input"),
    case("missing_cell_line_after_comment", src("# a cell", "input x", "state h", GOOD_H),
         "the cell has no name", 1, 1, "# a cell"),
    case("no_input", src("cell c", "state h", "h' = tanh(linear(h))"),
         "the cell declares no input: add a line `input x`", 1, 1, "cell c"),
    case("no_state", src("cell c", "input x", "a = linear(x)", "output a"),
         "the cell declares no state: add a line `state h`", 1, 1, "cell c"),
    case("latex_of_unknown_name", src(*HEAD, 'latex q "q"', GOOD_H),
         "latex names unknown variable 'q'", 4, 7, "q"),
]

LAYERNORM = [
    case("layernorm_two_operands", src(*HEAD, "h' = tanh(layernorm(linear(x), h))"),
         "layernorm() takes 1 operand, got 2", 4, 11, "layernorm"),
    case("layernorm_no_operand", src(*HEAD, "h' = tanh(layernorm() + linear(x, h))"),
         "layernorm() takes 1 operand, got 0", 4, 11, "layernorm"),
    case("layernorm_only_keyword", src(*HEAD, "h' = tanh(layernorm(bias=false) + linear(x, h))"),
         "layernorm() takes 1 operand, got 0", 4, 11, "layernorm"),
    case("layernorm_gain_option", src(*HEAD, "h' = tanh(layernorm(linear(x, h), gain=2))"),
         "layernorm() has no option 'gain'; it takes `bias=false`", 4, 35, "gain"),
    case("layernorm_eps_option", src(*HEAD, "h' = tanh(layernorm(linear(x, h), eps=1e-3))"),
         "layernorm() has no option 'eps'", 4, 35, "eps"),
    case("layernorm_bias_maybe", src(*HEAD, "h' = tanh(layernorm(linear(x, h), bias=maybe))"),
         "bias= takes true or false", 4, 40, "maybe"),
    case("layernorm_bias_twice",
         src(*HEAD, "h' = tanh(layernorm(linear(x, h), bias=false, bias=true))"),
         "layernorm() is given bias= twice", 4, 47, "bias=true"),
    case("layernorm_constant_operand", src(*HEAD, "h' = tanh(linear(x, h) + layernorm(2))"),
         "the operand of layernorm() must be a vector, not a constant", 4, 36, "2"),
    case("layernorm_constant_expression_operand",
         src(*HEAD, "h' = tanh(linear(x, h) + layernorm(2 * 3))"),
         "the operand of layernorm() must be a vector, not a constant", 4, 36, "2 * 3"),
    case("layernorm_outputs_of_different_sizes_added",
         src("cell c", "input x", "state h[proj], c", "c' = layernorm(c) + layernorm(h)",
             "h' = linear(x, c')"),
         "size mismatch in '+': 'hidden' against 'proj'", 4, 19, "+"),
    case("layernorm_output_keeps_its_operand_size",
         src("cell c", "input x", "state h[proj], c", "c' = tanh(linear(x, h))",
             "h' = linear(c', bias=false) + layernorm(c')"),
         "size mismatch in the assignment to 'h'': 'proj' against 'hidden'", 5, 1, "h'"),
    case("layernorm_same_operand_twice",
         src(*HEAD, "h' = tanh(layernorm(linear(x)) + layernorm(linear(h)) + layernorm(h))"),
         "this would create parameter 'alpha_hh' a second time", 4, 57, "layernorm(h))",
         "first created at line 4, column 34"),
    case("layernorm_of_own_new_value",
         src(*HEAD, "h' = tanh(layernorm(linear(x, h)) + layernorm(h'))"),
         "cycle within one step: h' -> h'", 4, 1, "h'"),
]

# zoneout(new, old, rate) and dropout(v, rate, per=sequence|step): a constant rate in
# [0, 1), the operands of one size, per= one of two words
MASKS = [
    case("zoneout_rate_reads_a_value", src(*HEAD, "h' = zoneout(tanh(linear(x, h)), h, x)"),
         "the rate of zoneout() must be a constant number in [0, 1)", 4, 37, "x)"),
    case("zoneout_rate_one", src(*HEAD, "h' = zoneout(tanh(linear(x, h)), h, 1)"),
         "the rate of zoneout() must be in [0, 1), got 1", 4, 37, "1)",
         "1 would drop every one"),
    case("dropout_rate_negative", src(*HEAD, "h' = tanh(linear(x, dropout(h, -0.1)))"),
         "the rate of dropout() must be in [0, 1), got -1/10", 4, 32, "-0.1"),
    case("dropout_rate_folds_to_one", src(*HEAD, "h' = tanh(linear(x, dropout(h, 0.5 + 0.5)))"),
         "the rate of dropout() must be in [0, 1), got 1", 4, 32, "0.5 +"),
    case("zoneout_two_operands", src(*HEAD, "h' = zoneout(tanh(linear(x, h)), h)"),
         "zoneout() takes 3 operands (new, old, rate), got 2", 4, 6, "zoneout"),
    case("zoneout_keyword", src(*HEAD, "h' = zoneout(tanh(linear(x, h)), h, 0.1, per=step)"),
         "zoneout() takes no keyword arguments", 4, 42, "per"),
    case("zoneout_of_itself", src(*HEAD, "h' = tanh(linear(x, h)) + zoneout(h, h, 0.1)"),
         "zoneout() of a value and itself", 4, 38, "h, 0.1"),
    case("zoneout_sizes", src("cell c", "input x", "state h", "h' = zoneout(x, h, 0.1) + "
                              "tanh(linear(h))"),
         "size mismatch in the operands of zoneout(): 'input' against 'hidden'", 4, 17, "h,"),
    case("zoneout_of_constants", src(*HEAD, "h' = tanh(linear(x, h)) + zoneout(1, 2, 0.1)"),
         "zoneout() needs a vector", 4, 27, "zoneout"),
    case("dropout_per_unknown", src(*HEAD, "h' = tanh(linear(x, dropout(h, 0.1, per=time)))"),
         "per= takes sequence (one mask for all steps) or step", 4, 41, "time"),
    case("dropout_option_unknown", src(*HEAD, "h' = tanh(linear(x, dropout(h, 0.1, p=0.2)))"),
         "dropout() has no option 'p'", 4, 37, "p=0.2"),
    case("dropout_per_twice", src(*HEAD, "h' = tanh(linear(x, dropout(h, 0.1, per=step, "
                                         "per=step)))"),
         "dropout() is given per= twice", 4, 47, "per=step)"),
    case("dropout_one_operand", src(*HEAD, "h' = tanh(linear(x, dropout(h)))"),
         "dropout() takes 2 operands (value, rate), got 1", 4, 21, "dropout"),
    case("dropout_of_a_constant", src(*HEAD, "h' = tanh(linear(x, h)) + dropout(2, 0.1)"),
         "the operand of dropout() must be a vector, not a constant", 4, 35, "2,"),
    case("zoneout_misspelt", src(*HEAD, "h' = zonout(tanh(linear(x, h)), h, 0.1)"),
         "unknown function 'zonout'", 4, 6, "zonout", "did you mean 'zoneout'?"),
    case("mask_prefix_is_reserved", src(*HEAD, "mask_h = tanh(linear(x, h))", "h' = mask_h"),
         "'mask_h' starts with 'mask_', which gatespec uses for generated names", 4, 1,
         "mask_h"),
]

ALL = NAMES + ARITY + KEYWORDS + UPDATES + PRIMES + CYCLES + UNUSED + SIZES + NAME_RULES
ALL += DUPLICATES + OUTPUT_AND_DECLARATIONS + LAYERNORM + MASKS


@pytest.mark.parametrize("source, message, line, column, at, note", ALL)
def test_check_error(source, message, line, column, at, note):
    assert_check_error(source, message, line, column, at, note)


def test_empty_file_has_no_name():
    with pytest.raises(CheckError) as info:
        build(parse("", PATH))
    err = info.value
    assert "the cell has no name" in err.message
    assert (err.span.line, err.span.column) == (1, 1)
    assert err.render() == (
        "bad.gate:1:1: error: the cell has no name: start the file with `cell NAME`\n"
        "    \n"
        "    ^"
    )


def test_check_error_stage_and_str():
    cf = parse(src(*HEAD, "h' = tanh(linear(x, hh))"), PATH)
    with pytest.raises(CheckError) as info:
        build(cf)
    err = info.value
    assert err.stage == "check"
    assert str(err) == err.render()
    assert err.render() == (
        "bad.gate:4:21: error: unknown name 'hh'\n"
        "    h' = tanh(linear(x, hh))\n"
        "                        ^~\n"
        "note: did you mean 'h'?"
    )


def test_caret_spans_the_whole_name():
    err = assert_check_error(src(*HEAD, "lambda = linear(x, h)", "h' = tanh(lambda)"),
                             "'lambda' is a keyword", 4, 1, "lambda")
    assert err.render().splitlines()[2] == "    ^~~~~~"


def test_error_on_windows_line_endings():
    text = src(*HEAD, "h' = tanh(linear(x, hh))").replace("\n", "\r\n")
    assert_check_error(text, "unknown name 'hh'", 4, 21, "hh", "did you mean 'h'?")


def test_error_on_a_continued_line():
    assert_check_error(src(*HEAD, "h' = tanh(linear(x, \\", "    hh))"),
                       "unknown name 'hh'", 5, 5, "hh", "did you mean 'h'?")


SNIPPETS = [
    "h' = tanh(linear(x, h)) / 0",
    "h' = tanh(linear(x, h, bias=true))",
    "h' = tanh(linear(bias=false, x, h))",
    "h' = tanh(linear(x + linear(x)))",
    "h' = tanh(linear(x, h) + diag(2 * h'))",
    "h' = tanh(linear(x, h) + diag(x))",
    "h' = tanh(linear(x, h)) + true",
    "h' = max(1, 2) + linear(x, h)",
    "h' = linear(1 + 2 * 3)",
    "h' = diag(x') + linear(x, h)",
    "h' = tanh(linear(x, h))\nlatex h' \"a\"",
    "h' = tanh(layernorm(layernorm(linear(x, h)), bias=true))",
    "h' = tanh(layernorm(x * 2) + linear(h))",
    "h' = layernorm(1 + 2 * 3) + linear(x, h)",
    "h' = sigmoid(tanh(relu(exp(log(softplus(logsigmoid(hard_sigmoid(hard_tanh(abs(sqrt("
    "softsign(silu(linear(x, h))))))))))))))",
]


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_only_spec_errors_escape(snippet):
    """Odd but syntactically valid input builds or fails with a SpecError, never a traceback."""
    try:
        build(parse(src(*HEAD, snippet), PATH))
    except SpecError as err:
        assert err.span is not None and err.span.line >= 1 and err.span.column >= 1


def test_torch_layer_whose_output_no_state_carries():
    # issue 9: the output names an intermediate that is not a state's value; the layout
    # looked up a state named like the output (StopIteration, exit 3)
    source = src("cell c", "input x", "state h", "output y", "y = identity(h)",
                 "h' = tanh(linear(x, y))", "equivalent torch.nn.RNN gates h")
    assert_check_error(source, "torch.nn.RNN outputs its state at every step; this cell's "
                       "output 'y' is neither a state nor copied into one", 7, 12,
                       at="torch.nn.RNN")


def test_torch_layer_whose_state_copies_the_output():
    # h' = y with output y: the layer carries h, which equals y at every step
    source = src("cell c", "input x", "state h", "output y", "y = tanh(linear(x, h))",
                 "h' = y", "equivalent torch.nn.RNN gates y")
    layout = build(parse(source, PATH)).torch_layout
    assert layout.weights == (("weight_ih", ("W_yx",)), ("weight_hh", ("W_yh",)))
    assert layout.options == (("nonlinearity", "tanh"),)
