"""Every example a new user starts from compiles, for the OSes it is meant for, to scripts
that pass the checks: the spec examples to bundles, the script examples for every shell."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet import checks
from pallet.commands._spec import local_file_reader
from pallet.compiler.bundle import build_bundles
from pallet.compiler.project import load_project
from pallet.stevedore import compile_script_text, target_for

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "examples").glob("*.pallet"))
SCRIPTS = sorted((ROOT / "examples" / "scripts").glob("*.pallet"))


def _oses(spec: Path) -> tuple[str, ...]:
    return ("windows",) if "windows" in spec.name else ("debian-12", "ubuntu-22.04", "rocky-9", "alpine-3.20")


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_spec_example_compiles_and_checks(spec, monkeypatch):
    assert len(SPECS) >= 5
    monkeypatch.chdir(ROOT)
    path = str(spec.relative_to(ROOT))
    project = load_project(path)
    for os_spec in _oses(spec):
        nodes = project.targets(None, os_spec)
        bundles = build_bundles(project.plan(nodes), nodes, local_file_reader(path))
        assert bundles, f"{path} compiles to no bundle for {os_spec}"
        for b in bundles:
            if b.script_name.endswith(".ps1"):
                findings = checks.parse_powershell(b.script)
            else:
                findings = checks.shellcheck(b.script, b.target.shell)
            assert not findings, checks.format_findings(findings, f"{path}@{os_spec}:{b.path}")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
@pytest.mark.parametrize("shell", ["bash", "sh", "powershell"])
def test_script_example_compiles_and_checks(script, shell):
    os_spec = "windows" if shell == "powershell" else "debian-12"
    text = compile_script_text(script.read_text(), str(script), shell, target_for(os_spec, shell))
    findings = checks.parse_powershell(text) if shell == "powershell" else checks.shellcheck(text, shell)
    assert not findings, checks.format_findings(findings, f"{script.name} ({shell})")
