"""The crate conformance harness (`make conformance`): every crate converges on fresh local
Debian nodes, a second run changes nothing, and what it built is checked from outside.

A test writes a spec that uses the crate as a user would, calls `converge(spec, {group: n})`,
and checks the nodes with `result.sh(node, command)` (a command run inside the node, not
through Pallet) or over the network. Nodes live in a state directory of the test and are
destroyed afterwards. `network="private"` gives each node its own network namespace (its own
ports); package installs then go through the node's apt proxy to Debian's mirror.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pallet.runtime.localnodes import LocalNodes

PALLET = str(Path(sys.executable).parent / "pallet")


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    # The hook sees every item of the session: mark only the cases of this directory.
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.nodes)
            item.add_marker(pytest.mark.conformance)


@dataclass
class Converged:
    state: Path
    first: dict
    second: dict
    nodes: list[str] = field(default_factory=list)

    def sh(self, node: str, command: str, check: bool = True) -> str:
        """Run a shell command inside the node (as root, not through Pallet)."""
        result = LocalNodes(self.state).exec_in(node, ["sh", "-c", command], timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{node}: {command}: exit {result.returncode}\n{result.stderr}")
        return result.stdout

    def phase(self, report: str, node: str, phase: str) -> dict:
        data = self.first if report == "first" else self.second
        for n in data["nodes"]:
            for p in n["phases"]:
                if n["name"] == node and p["phase"] == phase:
                    return p
        raise KeyError((node, phase))


def _pallet(args, state: Path, network: str, cwd: Path) -> tuple[int, dict, str]:
    env = {**os.environ, "PALLET_NODES_DIR": str(state), "PALLET_LOCAL_NETWORK": network}
    result = subprocess.run([PALLET, *args, "--json", "--record-dir", str(cwd / "runs")],
                            capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    assert "Traceback" not in result.stderr, result.stderr
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"pallet {' '.join(args)}: exit {result.returncode}\n"
                             f"{result.stdout}\n{result.stderr}") from None
    return result.returncode, report, result.stderr


@pytest.fixture
def converge(tmp_path_factory, local_nodes):
    """converge(spec_text, {"group": count}, phases=(), network="host") -> Converged."""
    states: list[Path] = []

    def run(spec: str, counts: dict[str, int], phases: tuple[str, ...] = (),
            network: str = "host", files: dict[str, str] | None = None) -> Converged:
        work = tmp_path_factory.mktemp("conformance")
        state = work / "nodes"
        states.append(state)
        (work / "spec.pallet").write_text(spec)
        for name, text in (files or {}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        args = ["converge", "spec.pallet", *(f"{g}={n}" for g, n in counts.items())]
        for p in phases:
            args += ["--phase", p]
        code, first, err = _pallet(args, state, network, work)
        assert code == 0 and first["ok"], json.dumps(first, indent=1) + err
        assert any(p["changed"] for n in first["nodes"] for p in n["phases"]), first
        lift = ["lift", "spec.pallet", *sum((["--phase", p] for p in phases), [])]
        code, second, err = _pallet(lift, state, network, work)
        assert code == 0 and second["ok"], json.dumps(second, indent=1) + err
        changed = {(n["name"], p["phase"]): p["changed"] for n in second["nodes"] for p in n["phases"]
                   if p["changed"]}
        assert not changed, f"a second run changed something: {changed}"
        return Converged(state, first, second, sorted(n["name"] for n in first["nodes"]))

    yield run
    for state in states:
        LocalNodes(state).destroy_all()
