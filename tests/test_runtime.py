"""pallet converge / lift end to end: real local Debian nodes, real SSH, the real CLI.

Each test runs the `pallet` command as a user would and reads its --json report, the run
record it leaves on disk, and the nodes themselves.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pallet.runtime.localnodes import LocalNodes

ROOT = Path(__file__).resolve().parent.parent
PALLET = str(Path(sys.executable).parent / "pallet")
pytestmark = pytest.mark.nodes


@pytest.fixture
def state(tmp_path_factory, local_nodes):
    """A local-nodes state directory of its own; every node in it is destroyed afterwards."""
    directory = tmp_path_factory.mktemp("local-nodes-runtime")
    yield directory
    LocalNodes(directory).destroy_all()


def pallet(*args, state_dir=None, cwd=None, timeout=300) -> tuple[int, dict | None, str]:
    env = {**os.environ, "PALLET_LOCAL_NETWORK": "host"}
    if state_dir is not None:
        env["PALLET_NODES_DIR"] = str(state_dir)
    result = subprocess.run([PALLET, *args], capture_output=True, text=True, cwd=cwd, env=env,
                            timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    data = None
    if "--json" in args and result.stdout.strip():
        data = json.loads(result.stdout)
    return result.returncode, data, result.stdout + result.stderr


def phases(report: dict) -> dict[tuple[str, str], dict]:
    return {(n["name"], p["phase"]): p for n in report["nodes"] for p in n["phases"]}


def in_node(state_dir: Path, name: str, *argv: str) -> str:
    return LocalNodes(state_dir).exec_in(name, list(argv), check=True).stdout


def test_converge_then_lift_changes_nothing_then_scale_down(state, tmp_path):
    spec = ROOT / "examples" / "fleet.pallet"
    code, report, out = pallet("converge", str(spec), "fleet=3", "--json", "--record-dir",
                               str(tmp_path / "runs"), state_dir=state)
    assert code == 0, out
    assert report["ok"] is True and report["created"] == ["fleet-1", "fleet-2", "fleet-3"]
    assert sorted(n["name"] for n in report["nodes"]) == ["fleet-1", "fleet-2", "fleet-3"]
    for node in report["nodes"]:
        assert node["group"] == "fleet"
        (p,) = node["phases"]
        assert (p["phase"], p["status"], p["changed"], p["failed"], p["error"]) == (
            "configure", "changed", 7, 0, None)
    assert in_node(state, "fleet-2", "cat", "/opt/app/app.conf") == (
        "[app]\nname = fleet-2\nport = 8080\npeers = fleet-1,fleet-3\n")

    # The record: the exact script shipped, the node's output, the result, a summary.
    record = Path(report["record"])
    assert (record / "fleet-1" / "configure" / "run.sh").read_text().startswith("#!/usr/bin/env bash")
    assert "PALLET-SUMMARY ok=0 changed=7 failed=0" in (record / "fleet-1" / "configure" / "stdout.log").read_text()
    assert json.loads((record / "fleet-1" / "configure" / "result.json").read_text())["status"] == "changed"
    assert json.loads((record / "summary.json").read_text())["ok"] is True

    code, report, out = pallet("lift", str(spec), "--json", "--record-dir", str(tmp_path / "runs"),
                               state_dir=state)
    assert code == 0, out
    assert {k: (p["status"], p["changed"]) for k, p in phases(report).items()} == {
        (f"fleet-{i}", "configure"): ("ok", 0) for i in (1, 2, 3)}

    code, report, out = pallet("nodes", "--json", state_dir=state)
    assert code == 0, out
    listed = json.loads(out[: out.rindex("]") + 1])
    assert sorted(n["name"] for n in listed) == ["fleet-1", "fleet-2", "fleet-3"]

    # Scaling down destroys the extra node; the others are lifted again (peers changed).
    code, report, out = pallet("converge", str(spec), "fleet=2", "--json", "--record-dir",
                               str(tmp_path / "runs"), state_dir=state)
    assert code == 0, out
    assert report["destroyed"] == ["fleet-3"]
    assert {k: p["changed"] for k, p in phases(report).items()} == {
        ("fleet-1", "configure"): 1, ("fleet-2", "configure"): 1}
    assert in_node(state, "fleet-1", "cat", "/opt/app/app.conf").endswith("peers = fleet-2\n")


KEYS_SPEC = r'''
;; The talk's relationship, at run time: the job tracker generates a key for its hadoop user
;; and publishes it; the task trackers authorize it in a later phase.
(def hadoop-user
  (server-spec :phases {:configure (phase-fn (user "hadoop" :create-home true :shell "/bin/sh"))}))

(def job-trackers
  (group-spec "jt" :extends [hadoop-user]
    :phases {:configure (phase-fn (ssh-key/generate-key "hadoop")
                                  (ssh-key/publish-public-key "hadoop"))}))

(def task-trackers
  (group-spec "tt" :extends [hadoop-user]
    :phases {:authorize (phase-fn
                          (doseq [jt (nodes-in-group :jt)]
                            (when-let [k (published jt :ssh-public-key)]
                              (ssh-key/authorize-key "hadoop" k))))}))

(converge {job-trackers 1 task-trackers 2} :phase [:configure :authorize])
'''


def test_a_key_generated_on_one_group_is_authorized_on_another(state, tmp_path):
    spec = tmp_path / "keys.pallet"
    spec.write_text(KEYS_SPEC)
    code, report, out = pallet("converge", str(spec), "--json", "--record-dir", str(tmp_path / "runs"),
                               state_dir=state)
    assert code == 0, out
    by = phases(report)
    assert by[("jt-1", "configure")]["status"] == "changed"
    assert by[("tt-1", "authorize")]["status"] == "changed"
    public = in_node(state, "jt-1", "cat", "/home/hadoop/.ssh/id_ed25519.pub")
    assert public.startswith("ssh-ed25519 ")
    for tt in ("tt-1", "tt-2"):
        assert in_node(state, tt, "cat", "/home/hadoop/.ssh/authorized_keys") == public
    # Run again: the key is not made anew, nothing changes.
    code, report, out = pallet("converge", str(spec), "--json", "--record-dir", str(tmp_path / "runs"),
                               state_dir=state)
    assert code == 0, out
    assert all(p["changed"] == 0 for p in phases(report).values()), out
    assert in_node(state, "tt-2", "cat", "/home/hadoop/.ssh/authorized_keys") == public


FAILING_SPEC = r'''
(def app
  (group-spec "app"
    :phases {:configure (phase-fn
                          (directory "/opt/first")
                          (when (= (target-name) "app-2")
                            (exec-checked-script "app-2 breaks" (false)))
                          (directory "/opt/second"))
             :start (phase-fn (file "/opt/started"))}))
'''


def test_a_failing_node_stops_later_phases_unless_keep_going(state, tmp_path):
    spec = tmp_path / "app.pallet"
    spec.write_text(FAILING_SPEC)
    code, report, out = pallet("converge", str(spec), "app=3", "--json", "--phase", "configure",
                               "--phase", "start", "--record-dir", str(tmp_path / "runs"), state_dir=state)
    assert code == 1, out
    by = phases(report)
    assert by[("app-2", "configure")]["status"] == "failed"
    assert "app-2 breaks" in by[("app-2", "configure")]["error"]
    assert by[("app-1", "configure")]["status"] == "changed"
    assert all(by[(f"app-{i}", "start")]["status"] == "skipped" for i in (1, 2, 3))
    # The failed node stopped at its failing action; nothing half-done was left after it.
    assert in_node(state, "app-2", "sh", "-c", "test -d /opt/second || echo absent") == "absent\n"

    code, report, out = pallet("lift", str(spec), "--json", "--keep-going", "--phase", "configure",
                               "--phase", "start", "--record-dir", str(tmp_path / "runs"), state_dir=state)
    assert code == 1, out
    by = phases(report)
    assert by[("app-1", "start")]["status"] == "changed"
    assert by[("app-3", "start")]["status"] == "changed"
    assert by[("app-2", "start")]["status"] == "skipped"

    # Rolling one node at a time: the batch with the failure is the last one run.
    code, report, out = pallet("lift", str(spec), "--json", "--serial", "1", "--phase", "configure",
                               "--record-dir", str(tmp_path / "runs"), state_dir=state)
    assert code == 1, out
    statuses = [phases(report)[(f"app-{i}", "configure")]["status"] for i in (1, 2, 3)]
    assert statuses == ["ok", "failed", "skipped"]


def _inventory(nodes, extra: str = "") -> str:
    rows = []
    for n in nodes:
        rows.append(f'[[node]]\nname = "{n.name}"\ngroup = "fleet"\nhost = "{n.host}"\nport = {n.port}\n'
                    f'user = "root"\nprivate-key = "{n.private_key}"\n')
    return "\n".join(rows) + extra


def test_unreachable_node_and_changed_host_key_are_reported_others_finish(debian_nodes, tmp_path):
    nodes = debian_nodes(3, prefix="fault")
    closed = _free_port()
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory(nodes, f'\n[[node]]\nname = "gone"\ngroup = "fleet"\n'
                                           f'host = "127.0.0.1"\nport = {closed}\n'
                                           f'os-family = "debian"\nos-version = "12"\n'))
    known = tmp_path / "known_hosts"
    other_key = nodes[0].host_key  # fault-3 is recorded with fault-1's key: a changed key
    known.write_text(nodes[0].known_hosts_line() + "\n" + nodes[1].known_hosts_line() + "\n" +
                     f"[{nodes[2].host}]:{nodes[2].port} {other_key}\n")
    code, report, out = pallet("lift", str(ROOT / "examples" / "fleet.pallet"), "--nodes", str(inventory),
                               "--known-hosts", str(known), "--accept-new-host-keys", "--retries", "0",
                               "--json", "--record-dir", str(tmp_path / "runs"))
    assert code == 1, out
    by = phases(report)
    assert by[("gone", "configure")]["status"] == "failed"
    assert by[("gone", "configure")]["error"].startswith("unreachable")
    assert by[("fault-3", "configure")]["status"] == "failed"
    assert by[("fault-3", "configure")]["error"].startswith("host-key-changed")
    assert by[("fault-1", "configure")]["status"] == "changed"
    assert by[("fault-2", "configure")]["status"] == "changed"
    # The changed key was not accepted, even with --accept-new-host-keys.
    assert other_key in known.read_text() and nodes[2].host_key not in known.read_text()


def test_a_dropped_connection_is_reported_for_its_node(debian_nodes, tmp_path):
    nodes = debian_nodes(2, prefix="drop")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory(nodes).replace('group = "fleet"', 'group = "d"'))
    known = tmp_path / "known_hosts"
    known.write_text("".join(n.known_hosts_line() + "\n" for n in nodes))
    spec = tmp_path / "drop.pallet"
    # drop-1's bundle kills the sshd process serving it: the connection breaks mid-phase.
    spec.write_text(r'''
(def d (group-spec "d" :phases {:configure (phase-fn
  (directory "/opt/before-drop")
  (when (= (target-name) "drop-1")
    (exec-script "cut the line"
      (pipe (ps "-o" "ppid=" "-p" @PPID) (xargs kill "-9"))
      (sleep 5)))
  (directory "/opt/after-drop"))}))
''')
    code, report, out = pallet("lift", str(spec), "--nodes", str(inventory), "--known-hosts", str(known),
                               "--json", "--record-dir", str(tmp_path / "runs"))
    assert code == 1, out
    by = phases(report)
    assert by[("drop-1", "configure")]["status"] == "failed"
    assert by[("drop-1", "configure")]["error"].startswith("dropped"), by
    assert by[("drop-2", "configure")]["status"] == "changed"


def test_the_cause_of_a_failed_step_is_in_the_summary_and_json(debian_nodes, local_nodes, tmp_path):
    """A missing command and a full disk: the last line the failing step wrote to stderr is
    in --json's error and the summary, not only in the record's stderr.log. The file on the
    full filesystem keeps its old content, and no temporary file is left beside it."""
    nodes = debian_nodes(2, prefix="cause")
    local_nodes.exec_in("cause-2", ["sh", "-c", "mkdir -p /srv/full && mount -t tmpfs -o size=64k "
                                    "tmpfs /srv/full && echo old > /srv/full/app.conf"], check=True)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory(nodes).replace('group = "fleet"', 'group = "c"'))
    known = tmp_path / "known_hosts"
    known.write_text("".join(n.known_hosts_line() + "\n" for n in nodes))
    spec = tmp_path / "cause.pallet"
    spec.write_text('''
(def c (group-spec "c" :phases {:configure (phase-fn
  (if (= (target-name) "cause-1")
    (exec-script "missing" (no-such-command-here "x"))
    (remote-file "/srv/full/app.conf" :content (apply str (repeat 20000 "0123456789")))))}))
''')
    args = ("lift", str(spec), "--nodes", str(inventory), "--known-hosts", str(known),
            "--record-dir", str(tmp_path / "runs"))
    code, report, out = pallet(*args, "--json")
    assert code == 1, out
    by = phases(report)
    missing, full = by[("cause-1", "configure")], by[("cause-2", "configure")]
    assert re.search(r"action 1 failed \(exit status 127\): exec-script missing: .*"
                     r"no-such-command-here: command not found$", missing["error"]), missing
    assert re.search(r"action 1 failed \(exit status 1\): remote-file /srv/full/app.conf: "
                     r".*No space left on device$", full["error"]), full
    assert local_nodes.exec_in("cause-2", ["cat", "/srv/full/app.conf"]).stdout == "old\n"
    assert local_nodes.exec_in("cause-2", ["ls", "-A", "/srv/full"]).stdout == "app.conf\n"
    code, _, out = pallet(*args)
    assert code == 1
    assert re.search(r"failed cause-1 :configure: .*no-such-command-here: command not found", out), out
    assert re.search(r"failed cause-2 :configure: .*No space left on device", out), out


def test_a_phase_out_of_time_is_stopped_and_reported_for_its_node(debian_nodes, local_nodes, tmp_path):
    """A 120 s step with --phase-timeout 5: its node fails with a timeout cause in seconds,
    the other node finishes, nothing of the bundle runs on the node afterwards, exit 1."""
    nodes = debian_nodes(2, prefix="slow")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory(nodes).replace('group = "fleet"', 'group = "t"'))
    known = tmp_path / "known_hosts"
    known.write_text("".join(n.known_hosts_line() + "\n" for n in nodes))
    spec = tmp_path / "slow.pallet"
    spec.write_text('''
(def t (group-spec "t" :phases {:configure (phase-fn
  (directory "/opt/before")
  (when (= (target-name) "slow-1")
    (exec-script "hang" (sleep 120)))
  (directory "/opt/after"))
  :start (phase-fn (directory "/opt/started"))}))
''')
    args = ("lift", str(spec), "--nodes", str(inventory), "--known-hosts", str(known),
            "--phase-timeout", "5", "--record-dir", str(tmp_path / "runs"))
    start = time.monotonic()
    code, report, out = pallet(*args, "--json")
    took = time.monotonic() - start
    assert code == 1, out
    assert took < 30, took
    by = phases(report)
    slow = by[("slow-1", "configure")]
    assert slow["status"] == "failed" and slow["cause"] == "timeout", slow
    assert slow["error"].startswith("timeout: ") and "phase timeout of 5 s" in slow["error"]
    assert 5 <= slow["seconds"] < 12 and slow["exit_status"] is None
    assert slow["changed"] == 1              # /opt/before was made before the step hung
    assert by[("slow-2", "configure")]["status"] == "changed"
    assert by[("slow-1", "start")]["status"] == "skipped"
    record = Path(report["record"])
    result = json.loads((record / "slow-1" / "configure" / "result.json").read_text())
    assert result["cause"] == "timeout" and result["status"] == "failed"
    assert "PALLET-ACTION 1 changed" in (record / "slow-1" / "configure" / "stdout.log").read_text()
    # Nothing of the bundle is left on the node: no process but init and sshd, no directory.
    manager = local_nodes
    ps = manager.exec_in("slow-1", ["ps", "-e", "-o", "args="], check=True).stdout
    assert "sleep" not in ps and "run.sh" not in ps, ps
    assert manager.exec_in("slow-1", ["sh", "-c", "ls -A /tmp"], check=True).stdout == ""
    assert manager.exec_in("slow-1", ["test", "-e", "/opt/after"]).returncode == 1
    # The summary says it too, in words.
    code, _, out = pallet(*args)
    assert code == 1
    assert re.search(r"failed slow-1 :configure: timeout: .*ran longer than the phase timeout "
                     r"of 5 s", out), out


def test_ctrl_c_stops_cleanly_and_keeps_the_record(state, tmp_path):
    """Ctrl-C with four nodes in their phase: exit 130 within 2 s, the summary and every
    node's result.json say interrupted, twice in a row (the record is not left to a race)."""
    spec = tmp_path / "slow.pallet"
    spec.write_text('(def s (group-spec "slow" :phases {:configure (phase-fn '
                    '(exec-script "wait" (sleep 60)))}))\n')
    code, _, _ = pallet("converge", str(spec), "slow=4", "--phase", "nothing-yet", state_dir=state)
    assert code == 2                                      # a bad phase: nothing created
    env = {**os.environ, "PALLET_NODES_DIR": str(state)}
    for attempt in ("converge", "lift"):
        runs = tmp_path / f"runs-{attempt}"
        args = [PALLET, attempt, str(spec), *(["slow=4"] if attempt == "converge" else []),
                "--json", "--record-dir", str(runs)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        try:
            deadline = time.monotonic() + 120
            while len(list(runs.glob("*/slow-*/configure/run.sh"))) < 4:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the phase never started"
                time.sleep(0.1)
            time.sleep(1.0)
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, (proc.returncode, stdout[-2000:], stderr[-3000:])
        assert took < 2.0, took
        assert "Traceback" not in stderr
        report = json.loads(stdout)
        assert report["interrupted"] is True
        record = Path(report["record"])
        assert json.loads((record / "summary.json").read_text())["interrupted"] is True
        for n in range(1, 5):
            phase = record / f"slow-{n}" / "configure"
            assert (phase / "run.sh").exists()
            result = json.loads((phase / "result.json").read_text())
            assert result["status"] == "failed" and result["cause"] == "interrupted", result
            assert result["error"].startswith("interrupted: Ctrl-C while the phase ran")
        assert not list(record.rglob(".*.tmp"))                # nothing half-written
        assert {p["cause"] for n in report["nodes"] for p in n["phases"]} == {"interrupted"}


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lift_through_a_jump_host_from_the_inventory_and_the_command_line(debian_nodes, tmp_path):
    bastion, target = debian_nodes(2, prefix="jump")
    known = tmp_path / "known_hosts"
    known.write_text(bastion.known_hosts_line() + "\n" + target.known_hosts_line() + "\n")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory([target]) + f'jump = "root@127.0.0.1:{bastion.port}"\n')
    spec = ROOT / "examples" / "fleet.pallet"
    code, report, out = pallet("lift", str(spec), "--nodes", str(inventory), "--known-hosts", str(known),
                               "--json", "--record-dir", str(tmp_path / "runs"))
    assert code == 0, out
    assert phases(report)[("jump-2", "configure")]["status"] == "changed"
    # The same through --jump; a jump host that refuses connections is reported as such.
    inventory.write_text(_inventory([target]))
    code, report, out = pallet("lift", str(spec), "--nodes", str(inventory), "--known-hosts", str(known),
                               "--jump", f"127.0.0.1:{bastion.port}", "--json",
                               "--record-dir", str(tmp_path / "runs"))
    assert code == 0, out
    assert phases(report)[("jump-2", "configure")]["status"] == "ok"
    code, report, out = pallet("lift", str(spec), "--nodes", str(inventory), "--known-hosts", str(known),
                               "--jump", f"127.0.0.1:{_free_port()}", "--retries", "0", "--json",
                               "--record-dir", str(tmp_path / "runs"))
    assert code == 1, out
    assert phases(report)[("jump-2", "configure")]["error"].startswith("unreachable"), report


ORDER_SPEC = r'''
(def a (group-spec "a" :phases {:configure (phase-fn (file "/opt/a-configured"))
                                :bootstrap (phase-fn (file "/opt/bootstrapped"))}))
(def b (group-spec "b" :phases {:install (phase-fn (file "/opt/b-installed"))
                                :configure (phase-fn (exec-checked-script "installed first"
                                                       (test "-e" "/opt/b-installed")))
                                :later (phase-fn (exec-checked-script "broken later"
                                                   ~(fail "this phase cannot compile")))}))
'''


def test_phase_order_bootstrap_and_bad_phases(state, tmp_path):
    spec = tmp_path / "order.pallet"
    spec.write_text(ORDER_SPEC)
    runs = str(tmp_path / "runs")
    # A misspelt phase is refused before any node is made.
    code, _, out = pallet("converge", str(spec), "a=1", "b=1", "--phase", "configre", "--record-dir", runs,
                          state_dir=state)
    assert code == 2 and "did you mean :configure" in out, out
    assert LocalNodes(state).list() == []
    # Named phases: new nodes still bootstrap first; across groups install runs before configure.
    code, report, out = pallet("converge", str(spec), "a=1", "b=1", "--phase", "install", "--phase",
                               "configure", "--json", "--record-dir", runs, state_dir=state)
    assert code == 0, out
    by = phases(report)
    assert by[("a-1", "bootstrap")]["status"] == "changed"
    assert by[("b-1", "configure")]["status"] == "changed"
    # A phase that cannot compile stops the run with exit 2, after reporting what ran.
    code, report, out = pallet("lift", str(spec), "--phase", "configure", "--phase", "later", "--json",
                               "--record-dir", runs, state_dir=state)
    assert code == 2, out
    assert "this phase cannot compile" in report["error"]
    assert report["ok"] is False and phases(report)[("b-1", "configure")]["status"] == "changed"
    # Converging one group leaves the other alone, but the world still holds its nodes.
    code, report, out = pallet("converge", str(spec), "a=2", "--json", "--record-dir", runs, state_dir=state)
    assert code == 0, out
    assert sorted(n["name"] for n in report["nodes"]) == ["a-1", "a-2"]
    assert report["created"] == ["a-2"]


def test_lift_uses_the_specs_own_node_list(debian_nodes, tmp_path):
    nodes = debian_nodes(2, prefix="nl")
    rows = " ".join(f'{{:name "{n.name}" :group "fleet" :host "{n.host}" :port {n.port} '
                    f':private-key "{n.private_key}" :os-family :debian :os-version "12"}}' for n in nodes)
    spec = tmp_path / "fleet-here.pallet"
    spec.write_text((ROOT / "examples" / "fleet.pallet").read_text().replace(
        "(lift fleet :phase [:configure])", f"(lift fleet :phase [:configure] :compute (node-list [{rows}]))"))
    known = tmp_path / "known_hosts"
    known.write_text("".join(n.known_hosts_line() + "\n" for n in nodes))
    code, report, out = pallet("lift", str(spec), "--known-hosts", str(known), "--json",
                               "--record-dir", str(tmp_path / "runs"))
    assert code == 0, out
    assert {k: p["status"] for k, p in phases(report).items()} == {
        ("nl-1", "configure"): "changed", ("nl-2", "configure"): "changed"}


def test_a_run_with_1100_inherited_descriptors(debian_nodes, tmp_path):
    """A fleet of about 900 nodes holds more than 1,024 descriptors: sockets and pipes then
    get numbers select() cannot watch. With 1,100 descriptors inherited, the run still works."""
    nodes = debian_nodes(1, prefix="fds")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory(nodes))
    known = tmp_path / "known_hosts"
    known.write_text(nodes[0].known_hosts_line() + "\n")
    # A launcher takes the numbers 3 to 1102 (inheritable), then execs the command.
    launcher = ("import os, sys\n"
                "for _ in range(1100):\n"
                "    os.set_inheritable(os.open('/dev/null', os.O_RDONLY), True)\n"
                "os.execv(sys.argv[1], sys.argv[1:])\n")
    result = subprocess.run(
        [sys.executable, "-c", launcher, PALLET, "lift", str(ROOT / "examples" / "fleet.pallet"),
         "--nodes", str(inventory), "--known-hosts", str(known), "--json",
         "--record-dir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert json.loads(result.stdout)["nodes"][0]["phases"][0]["status"] == "changed"


def test_the_descriptor_limit_is_raised_to_what_the_system_allows():
    """A shell's soft limit of 1,024 descriptors is not the fleet's: lift and converge raise it
    to the hard limit."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit("
            "resource.RLIMIT_NOFILE)[1]))\n"
            "from pallet.commands._run_common import raise_descriptor_limit; raise_descriptor_limit()\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); print(soft == hard, soft)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "True", out.stdout
