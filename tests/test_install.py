"""A non-editable install (wheel into a fresh virtual environment) works: templates ship.

Runs the same in CI's system interpreter, a virtual environment and a conda env: the wheel is
built by this environment's setuptools (the `test` extra requires one new enough), and the
inner environment sees this environment's packages, not the base interpreter's."""

import os
import site
import subprocess
import sys
import tomllib
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

from conftest import ROOT


def _build_requirement() -> int:
    """The major version of setuptools that pyproject.toml's build-system asks for."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    (req,) = [r for r in requires if r.startswith("setuptools")]
    return int(req.split(">=")[1].split(".")[0])


def _site_dirs() -> list[str]:
    """This interpreter's site directories (a venv's own, a conda env's, the system's)."""
    dirs = [*site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


def test_wheel_into_fresh_venv(tmp_path):
    have = int(version("setuptools").split(".")[0])
    assert have >= _build_requirement(), (
        f"setuptools {version('setuptools')} cannot build gatespec (pyproject.toml asks for "
        f">={_build_requirement()}): pip install -e \".[test]\" installs one that can")
    dist = tmp_path / "dist"
    # No build isolation: no download; the backend is this environment's (checked above).
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("gatespec-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gatespec/templates/numpy/module.py.jinja" in names
    assert "gatespec/cells/lstm.gate" in names
    assert "gatespec/parse/grammar.lark" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    # Dependencies come from this interpreter's site directories, appended after the new
    # environment's own (a path line in a .pth file): no download, and the wheel's copy of
    # gatespec comes first. system_site_packages would see the base interpreter instead,
    # which lacks what a virtual environment installed.
    inner_site = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    (Path(inner_site) / "outer_env.pth").write_text("\n".join(_site_dirs()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed copy only
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, env=env)
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([env_dir / "bin" / "gatespec", "generate", "lstm", "-o", "out"],
                       cwd=work, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    located = subprocess.run([py, "-c", "import gatespec; print(gatespec.__file__)"], cwd=work,
                             capture_output=True, text=True, check=True, env=env).stdout
    assert located.startswith(str(env_dir)), located  # the installed copy, not the source tree
    assert (work / "out" / "lstm_numpy.py").read_text() == (
        ROOT / "generated" / "lstm_numpy.py").read_text()
