"""Rolling with a fail budget (--serial N --max-fail-percent P) and running again on what
failed (--only-failed), with the real CLI over real SSH to local nodes: six inventory nodes
on two local Debian nodes, whose spec fails on the nodes that $FAIL names."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PALLET = str(Path(sys.executable).parent / "pallet")
pytestmark = pytest.mark.nodes
NAMES = [f"r-{i}" for i in range(1, 7)]

SPEC = '''
(def failing (set (str/split (env "FAIL" "") ",")))
(def tag (env "TAG"))     ; each test's own files on the machines

(def web
  (group-spec "web"
    :phases {:configure (phase-fn
                          (when (contains? failing (target-name))
                            (exec-checked-script "fail on purpose" (exit 1)))
                          (file (str "/var/tmp/rolled-" tag "-" (target-name))))
             :start (phase-fn (file (str "/var/tmp/started-" tag "-" (target-name))))}))
'''


@pytest.fixture(scope="module")
def machines(debian_nodes):
    return debian_nodes(2, prefix="roll")


@pytest.fixture
def project(tmp_path, machines):
    (tmp_path / "spec.pallet").write_text(SPEC)
    (tmp_path / "kh").write_text("".join(m.known_hosts_line() + "\n" for m in machines))
    toml = ""
    for i, name in enumerate(NAMES):
        m = machines[i % 2]
        toml += (f'[[node]]\nname = "{name}"\ngroup = "web"\nhost = "{m.host}"\nport = {m.port}\n'
                 f'private-key = "{m.private_key}"\nos-family = "debian"\nos-version = "12"\n\n')
    (tmp_path / "inventory.toml").write_text(toml)
    return tmp_path


def lift(project: Path, *args, fail: str = "") -> tuple[int, dict | None, str]:
    result = subprocess.run(
        [PALLET, "lift", "spec.pallet", "--nodes", "inventory.toml", "--known-hosts", "kh",
         "--record-dir", "runs", *args],
        capture_output=True, text=True, cwd=project, timeout=300,
        env={**os.environ, "FAIL": fail, "TAG": project.name})
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result.returncode, report, result.stdout + result.stderr


def statuses(report: dict) -> dict[tuple[str, str], str]:
    return {(n["name"], p["phase"]): p["status"] for n in report["nodes"] for p in n["phases"]}


def errors(report: dict) -> dict[tuple[str, str], str]:
    return {(n["name"], p["phase"]): p["error"] for n in report["nodes"] for p in n["phases"]}


def test_the_roll_stops_when_a_batch_fails_more_than_the_budget(project):
    # Batch 1 (r-1, r-2): r-2 fails, 1 of 2 = 50% > 40%: the roll stops there.
    code, report, out = lift(project, "--serial", "2", "--max-fail-percent", "40", "--json",
                             fail="r-2,r-4")
    assert code == 1, out
    s = statuses(report)
    assert (s[("r-1", "configure")], s[("r-2", "configure")]) == ("changed", "failed")
    assert all(s[(n, "configure")] == "skipped" for n in NAMES[2:])
    assert all(s[(n, "start")] == "skipped" for n in NAMES)
    why = errors(report)[("r-3", "configure")]
    assert why == ("not run: 1 of 2 nodes of batch 1 failed (50%), more than "
                   "--max-fail-percent 40"), why
    assert errors(report)[("r-1", "start")] == why


def test_within_the_budget_the_roll_goes_on_without_the_failed_nodes(project):
    # 50% of a batch is not more than 50%: every batch runs; the failed nodes sit out :start.
    code, report, out = lift(project, "--serial", "2", "--max-fail-percent", "50", "--json",
                             fail="r-2,r-4")
    assert code == 1, out           # a node failed: the run failed, though it rolled on
    s = statuses(report)
    assert [s[(n, "configure")] for n in NAMES] == ["changed", "failed", "changed", "failed",
                                                    "changed", "changed"]
    assert [s[(n, "start")] for n in NAMES] == ["changed", "skipped", "changed", "skipped",
                                                "changed", "changed"]
    assert errors(report)[("r-2", "start")] == "failed in phase :configure"
    # Without --serial the budget is a share of all the phase's nodes: 2 of 6 = 33%.
    code, report, _ = lift(project, "--max-fail-percent", "30", "--json", fail="r-2,r-4")
    s = statuses(report)
    assert code == 1 and all(s[(n, "start")] == "skipped" for n in NAMES)
    assert "2 of 6 of the phase's nodes failed (33%), more than --max-fail-percent 30" in \
        errors(report)[("r-1", "start")]
    code, report, _ = lift(project, "--max-fail-percent", "34", "--json", fail="r-2,r-4")
    assert statuses(report)[("r-1", "start")] == "ok"
    # Progress says why the roll stopped.
    code, _, out = lift(project, "--serial", "3", "--max-fail-percent", "0", fail="r-1")
    assert code == 1 and "stopping the roll: 1 of 3 nodes of batch 1 failed (33%), more than " \
        "--max-fail-percent 0" in out
    code, _, out = lift(project, "--keep-going", "--max-fail-percent", "10")
    assert code == 2 and "give one of them" in out


def test_only_failed_runs_again_on_the_nodes_that_failed_last(project):
    code, _, out = lift(project, "--only-failed")
    assert code == 2 and "--only-failed: no run of spec.pallet is recorded in runs" in out
    code, report, _ = lift(project, "--max-fail-percent", "50", "--json", fail="r-3,r-5")
    assert code == 1
    # Still failing: only r-3 and r-5 run (and fail again).
    code, report, out = lift(project, "--only-failed", "--json", fail="r-3,r-5")
    assert code == 1 and sorted(n["name"] for n in report["nodes"]) == ["r-3", "r-5"]
    assert set(statuses(report).values()) == {"failed", "skipped"}
    # Fixed: the run on the two succeeds; the other nodes are left alone.
    code, report, out = lift(project, "--only-failed")
    assert code == 0, out
    assert "--only-failed: 2 node(s) failed in the last run" in out and "r-3, r-5" in out
    assert "r-1" not in out.split("pallet lift", 1)[1]
    # Nothing failed last time: nothing to do, and it says so.
    code, report, out = lift(project, "--only-failed", "--json")
    assert code == 0 and report["nodes"] == [] and report["ok"] is True
    assert "no node failed in the last run of spec.pallet" in out
