"""A non-editable install (wheel into a fresh virtual environment) works: templates ship."""

import subprocess
import sys
import venv
import zipfile

from conftest import ROOT


def test_wheel_into_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("gatespec-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gatespec/templates/numpy/module.py.jinja" in names
    assert "gatespec/cells/lstm.gate" in names
    assert "gatespec/parse/grammar.lark" in names

    env_dir = tmp_path / "venv"
    # Dependencies come from this interpreter's site-packages: no download here.
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True)
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([env_dir / "bin" / "gatespec", "generate", "lstm", "-o", "out"],
                       cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    located = subprocess.run([py, "-c", "import gatespec; print(gatespec.__file__)"], cwd=work,
                             capture_output=True, text=True, check=True).stdout
    assert str(env_dir) in located  # the installed copy, not the source tree
    assert (work / "out" / "lstm_numpy.py").read_text() == (
        ROOT / "generated" / "lstm_numpy.py").read_text()
