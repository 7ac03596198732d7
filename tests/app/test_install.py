"""What a new user gets: a plain ``pip install`` of the wheel, its licence, and the machine checks.

The wheel is built from a copy of the sources and installed into a fresh venv without extras (pip
may fill it from its cache). That venv serves requests on every side with no plotting stack, and
says in one line what to install when a plot is asked for.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LOCAL, REPO, running

PLOTTING = ("matplotlib", "numpy", "PIL")


def _run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def lean_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the project's wheel and its required dependencies, nothing else."""
    root = tmp_path_factory.mktemp("lean")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for package in ("bridge", "app"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", root / "dist", source)
    (wheel,) = (root / "dist").glob("*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", wheel)
    yield venv


def test_no_plotting_stack_and_bridge_imports(lean_venv: Path) -> None:
    probe = f"import bridge, importlib.util as u; print([m for m in {PLOTTING!r} if u.find_spec(m)])"
    result = _run(lean_venv / "bin" / "python", "-c", probe, cwd=lean_venv)
    assert result.stdout == "[]\n"


def test_hybrid_serve_answers_on_every_side(lean_venv: Path) -> None:
    argv = [str(lean_venv / "bin" / "hybrid"), "serve", "--listen", LOCAL]
    with running(argv, cwd=lean_venv) as server:
        assert "(http twisted, loop asyncio)" in server.log()  # auto, without the fast extra
        for side in ("twisted", "asgi", "wsgi"):
            response = httpx.get(f"{server.url}/{side}/delayed?delay=0")
            assert response.status_code == 200, (side, response.text)


def test_version(lean_venv: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert _run(lean_venv / "bin" / "hybrid", "--version").stdout == f"hybrid {version}\n"


def test_plot_without_the_extra_is_one_line(lean_venv: Path, tmp_path: Path) -> None:
    """Checked before any request is sent: no server is needed to be told what is missing."""
    argv = [lean_venv / "bin" / "hybrid", "compare", "--plot", tmp_path / "t.png"]
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "hybrid compare: error: --plot needs matplotlib, which a plain install leaves out: "
        "pip install 'hybrid-twisted-asgi[plot]'\n"
    )


def test_licence_file_matches_pyproject() -> None:
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


def test_system_deps_fail_in_one_line_when_they_cannot_be_installed(tmp_path: Path) -> None:
    """No apt-get, nothing installed (an empty PATH): one line saying what to install, status 1."""
    result = subprocess.run(
        ["/bin/sh", str(REPO / "tests" / "system-deps.sh")],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("system-deps: cannot install ")
    assert "(no apt-get on this machine)" in line
