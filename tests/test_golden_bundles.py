"""Golden bundles: the examples compiled for several OSes, every file of every bundle side by
side in one text file per (example, OS). `make golden` (PALLET_UPDATE_GOLDEN=1) rewrites them;
review the diff. Every script in them must also pass `pallet check`'s checks."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet import checks
from pallet.compiler.bundle import build_bundles
from pallet.compiler.project import load_project
from pallet.commands._spec import local_file_reader

from golden import bundles_text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "bundles"
UPDATE = os.environ.get("PALLET_UPDATE_GOLDEN") == "1"

CASES = [
    ("fleet", "debian-12"), ("fleet", "ubuntu-22.04"), ("fleet", "rocky-9"),
    ("fleet", "alpine-3.20"), ("fleet", "arch"), ("fleet", "opensuse-15"),
    ("hadoop", "debian-12"), ("hadoop", "rocky-9"), ("hadoop_cluster", "ubuntu-22.04"),
    ("windows", "windows"),
]


def render(example: str, os_spec: str) -> tuple[str, list[tuple[str, str]]]:
    """The golden text of every bundle, and the (name, text) of each script in it."""
    spec = f"examples/{example}.pallet"
    cwd = os.getcwd()
    os.chdir(ROOT)  # spec paths (and so source locations) relative to the repository
    try:
        project = load_project(spec)
        nodes = project.targets(None, os_spec)
        bundles = build_bundles(project.plan(nodes), nodes, local_file_reader(spec))
    finally:
        os.chdir(cwd)
    text, scripts = bundles_text(bundles, spec)
    return f";; pallet compile {spec} --os {os_spec}\n" + text, scripts


@pytest.mark.parametrize("example,os_spec", CASES, ids=[f"{e}@{o}" for e, o in CASES])
def test_golden_bundle(example, os_spec):
    text, scripts = render(example, os_spec)
    path = GOLDEN / f"{example}@{os_spec}.golden"
    if UPDATE:
        path.write_bytes(text.encode())
    assert path.exists(), f"no golden file {path}: run make golden"
    assert text == path.read_bytes().decode(), f"{path} differs from the compiler's output (make golden)"
    for name, script in scripts:
        findings = checks.check_script(name, script)
        assert not findings, checks.format_findings(findings, name)
