"""`gatespec build`: compile cells' C++ CPU loops into the build cache ahead of first use.

The generated `<cell>_cpp.py` names its library by a hash of its source, flags and torch
version, so a library built here from the same cell and version is the one it loads.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from gatespec import pipeline
from gatespec.errors import UsageError


def build_cells(specs: list[str]) -> list[tuple[str, str, float | None]]:
    """(spec, library path, seconds, or None when it was cached) for each cell, every
    cell generated first (a mistake in any is reported before a compiler runs)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("gatespec build compiles against torch, which is not installed "
                         "(pip install torch)") from None
    generated = [(spec, pipeline.generate(spec, "cpp")) for spec in specs]
    results = []
    with tempfile.TemporaryDirectory(prefix="gatespec-build-") as tmp:
        for spec, files in generated:
            folder = Path(tmp) / str(len(results))
            folder.mkdir()
            for name, text in files.items():
                (folder / name).write_text(text, "utf-8")
            module = _load(next(folder.glob("*_cpp.py")))
            if not module.can_build() and not module.is_built():
                raise UsageError("no C++ compiler was found: set CXX, or install g++")
            cached = module.is_built()
            start = time.perf_counter()
            path = module.build(quiet=True)
            results.append((spec, path, None if cached else time.perf_counter() - start))
    return results


def _load(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"gatespec_build_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
