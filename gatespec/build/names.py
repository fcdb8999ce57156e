"""Which names a cell may use: safe identifiers in Python and C that cannot clash
with the names gatespec generates."""

from __future__ import annotations

import builtins
import keyword
import re

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")

_C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for
    goto if inline int long register restrict return short signed sizeof static struct
    switch typedef union unsigned void volatile while bool true false class namespace
    template typename this new delete operator private public protected virtual friend
    using nullptr constexpr decltype half""".split()
)

# Locals, arguments and modules of the generated code; `out`, whose adjoint d_out would be
# the output's gradient; `prev`, whose bias b_prev would be a state b's previous value.
_GENERATED = frozenset(
    """np torch math tl triton F x t T B params cache state state0 outputs final_state
    d_outputs d_final_state dx d_state0 d_params sizes rng dtype shape name k impl
    self input_size hidden_size device save_t keep_cache out prev
    lengths batch_sizes bt steps jax jnp keep residuals masks generator""".split()
)

# Prefixes and suffixes gatespec uses for the names it makes (weights, products, adjoints).
_PREFIXES = ("W_", "b_", "w_", "alpha_", "beta_", "gamma_", "d_", "m_", "mm_", "s_", "size_",
             "_", "mask_")
_SUFFIXES = ("_prev", "_new", "_next", "_all", "_gemm", "_ln", "_xhat", "_rstd",
             "_smax")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a variable, or None if it can."""
    if not _IDENT.match(name):
        return f"'{name}' is not a valid name: use letters, digits and single underscores"
    if "__" in name:
        return f"'{name}' is not a valid name: double underscores are reserved"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _C_KEYWORDS:
        return f"'{name}' is a keyword in generated Python or C code"
    if name in ("l", "I", "O"):  # ruff's E741: generated code must pass ruff
        return f"'{name}' is too easily read as 1 or 0 (ruff E741): choose another name"
    if name in _GENERATED or name in dir(builtins):
        return f"'{name}' clashes with a name in the generated code"
    if name.startswith(_PREFIXES):
        return f"'{name}' starts with '{name.split('_')[0]}_', which gatespec uses for generated names"
    if name.endswith(_SUFFIXES):
        return f"'{name}' ends with '_{name.rsplit('_', 1)[1]}', which gatespec uses for generated names"
    return None


# Generated files are named CELL_TARGET.py: a cell named gru_torch would write
# gru_torch_numpy.py beside the torch module of a cell gru (gru_torch.py).
TARGET_SUFFIXES = ("_numpy", "_torch", "_triton", "_cuda", "_cpp", "_onnx", "_jax", "_docs")


def cell_name_problem(name: str) -> str | None:
    """Why `name` cannot name a cell, or None if it can."""
    problem = name_problem(name)
    if problem is None and name.endswith(TARGET_SUFFIXES):
        suffix = "_" + name.rsplit("_", 1)[1]
        problem = (f"'{name}' ends with '{suffix}', which gatespec uses in generated file "
                   f"names (cell {name[:-len(suffix)]} --target {suffix[1:]} writes "
                   f"{name}.py): choose another name")
    return problem


def is_reserved(name: str) -> bool:
    """Whether a name starts with a prefix of gatespec's own names (a parameter, a product,
    an adjoint): a node name made from a user's name (`b` + `_softplus`) must not."""
    return name.startswith(_PREFIXES)


def size_name_problem(name: str) -> str | None:
    if not _IDENT.match(name) or "__" in name or keyword.iskeyword(name):
        return f"'{name}' is not a valid size name"
    return None
