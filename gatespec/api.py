"""The Python API: `gatespec.compile` to an in-memory module, `gatespec.generate` to a folder.

A cell is given as `source`, read in this order (README "Python API"):
  - a `str` containing a newline is the cell's text;
  - otherwise a `pathlib.Path`, a string ending in `.gate` or naming an existing file is a
    path to a .gate file;
  - otherwise a string is a built-in cell name (`gatespec list`).
Mistakes in the cell raise `ParseError` or `CheckError` (both `SpecError`, with
`file:line:col`); a missing file, an unknown name or target, or a refusal to overwrite
raise `UsageError`. All derive from `gatespec.errors.GatespecError`.
"""

from __future__ import annotations

import builtins
import hashlib
import linecache
import os
import sys
import threading
import types
from pathlib import Path

from gatespec import pipeline
from gatespec.errors import UsageError
from gatespec.files import write_all

__all__ = ["compile", "generate"]

COMPILE_TARGETS = ("numpy", "torch", "jax")
PACKAGE = "gatespec.compiled"  # compiled modules live in sys.modules under this prefix
_lock = threading.Lock()  # two threads compiling one text get one module


def _read(source: str | os.PathLike, name: str | None) -> tuple[str, str]:
    """(text, the path errors show) for text, a path or a built-in name."""
    if isinstance(source, str) and "\n" in source:
        return source, name or "<string>"
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
        if not source.endswith(".gate") and not Path(source).is_file():
            raise UsageError(f"cannot read {source}: no such file")
    if not isinstance(source, str):
        raise UsageError(f"source must be cell text, a path or a built-in cell name, "
                         f"not {type(source).__name__}")
    return pipeline.load_source(source)


def compile(source: str | os.PathLike, target: str = "numpy",  # noqa: A001 (gatespec.compile)
            name: str | None = None) -> types.ModuleType:
    """Generate a cell's NumPy, PyTorch or JAX module and import it from memory; no file is written.

    `source` is cell text, a path or a built-in name (see the module docstring); `name` is
    how errors name the text (default `<string>`). The module is registered in `sys.modules`
    as `gatespec.compiled.<file stem>_<sha256 prefix of the generated code>`, so its
    classes and functions pickle, deepcopy and `torch.save`/`torch.load` in this process;
    another process must make the same `compile` call before unpickling, as with a class
    defined in a notebook. The same generated code gives the same module object.

    A torch module compiled this way runs with impl "torch", "autograd" and "auto" (which
    picks "torch"); the Triton and CUDA kernels need files: write them with
    `generate(source, "torch", folder)` and `generate(source, "triton" or "cuda", folder)`
    and import from that folder.
    """
    if target not in COMPILE_TARGETS:
        raise UsageError(f"compile makes {' or '.join(COMPILE_TARGETS)} modules, not "
                         f"{target!r}; write other targets with gatespec.generate")
    files = pipeline.generate_text(*_read(source, name), target)
    (file_name, code), = files.items()
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()[:16]
    module_name = f"{PACKAGE}.{Path(file_name).stem}_{digest}"
    with _lock:
        module = sys.modules.get(module_name)
        if module is None:
            module = _load(code, module_name)
    return module


def _load(code: str, module_name: str) -> types.ModuleType:
    """Run generated code as a new module registered under `module_name`.

    This is the one place gatespec executes code it made. It is safe because `code` is
    gatespec's own template output: the user's text reaches it only as names the parser
    accepted as identifiers and as escaped string literals and comments, never as
    statements of its own."""
    filename = f"<{module_name}>"
    # tracebacks and inspect show the generated lines; no mtime, so it is never evicted
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module  # before running, as import does
    try:
        exec(builtins.compile(code, filename, "exec"), module.__dict__)  # noqa: S102 (see above)
    except BaseException:
        del sys.modules[module_name]
        raise
    if hasattr(module, "_sibling"):  # torch: no folder holds kernel files beside it
        module._sibling_exists = lambda kind: False
        module._sibling = _no_kernel_files(module.CELL_NAME)
    return module


def _no_kernel_files(cell: str):
    def sibling(kind: str):
        raise RuntimeError(
            f"impl={kind!r} needs the generated {kind} kernels in files, and this module "
            f"was compiled in memory: write them with gatespec.generate(..., 'torch', folder) "
            f"and gatespec.generate(..., {kind!r}, folder) (or `gatespec generate {cell} "
            f"--target {kind}`) and import the torch module from that folder")
    return sibling


def generate(source: str | os.PathLike, target: str = "numpy",
             folder: str | os.PathLike = ".", name: str | None = None) -> list[Path]:
    """Write a cell's generated files for `target` into `folder` (created if missing) and
    return their paths. `source` and `name` are as for `compile`; `target` is any of
    `gatespec generate --target`. A file gatespec did not write is never replaced (a
    `UsageError`, and nothing is written); files are replaced atomically."""
    if target not in pipeline.TARGETS:
        raise UsageError(f"unknown target {target!r} (known: {', '.join(pipeline.TARGETS)})")
    return write_all(Path(folder), pipeline.generate_text(*_read(source, name), target))
