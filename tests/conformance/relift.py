"""Run a changed spec again on the nodes a `converge` fixture made: what the crates do when
their data changes (a restart, a reload, a refresh, once), and that the run after it changes
nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PALLET = str(Path(sys.executable).parent / "pallet")


def lift(result, spec: str, network: str = "private") -> dict:
    """Write `spec` over the converged one and lift it on the same nodes; the run's report."""
    work = result.state.parent
    (work / "spec.pallet").write_text(spec)
    env = {**os.environ, "PALLET_NODES_DIR": str(result.state), "PALLET_LOCAL_NETWORK": network}
    run = subprocess.run([PALLET, "lift", "spec.pallet", "--json", "--record-dir", str(work / "runs")],
                         capture_output=True, text=True, env=env, cwd=work, timeout=300)
    assert "Traceback" not in run.stderr, run.stderr
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"], run.stdout + run.stderr
    return report


def changes(report: dict) -> int:
    """How many steps changed something, over every node and phase of a run."""
    return sum(p["changed"] for n in report["nodes"] for p in n["phases"])


def changed_phases(report: dict) -> list[tuple[str, str]]:
    """(node, phase) of each phase that changed something."""
    return [(n["name"], p["phase"]) for n in report["nodes"] for p in n["phases"] if p["changed"]]
