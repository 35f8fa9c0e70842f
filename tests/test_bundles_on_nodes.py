"""Compiled Debian bundles on real Debian 12 nodes over real SSH: the first run changes what
it must, a second run of the same bundles changes nothing and says so."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bundle_runner import connect, run_bundle, run_command

ROOT = Path(__file__).resolve().parent.parent
PALLET = str(Path(sys.executable).parent / "pallet")
pytestmark = pytest.mark.nodes

SERVICES_SPEC = r'''
;; Core actions beyond the fleet job, none of which needs the network.
(def ops
  (group-spec "ops"
    :phases
    {:configure
     (phase-fn
       (group "deploy" :system true)
       (user "deployer" :groups ["deploy"] :shell "/bin/sh" :create-home true)
       (ssh-key/authorize-key "deployer" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPallet deployer@ci")
       (package "openssh-server")
       (directory "/etc/motd.d")
       (remote-file "/etc/motd.d/it's $quoted" :content "it's `quoted` $HOME\n" :mode "600")
       ;; sed edits a file Pallet does not own (a remote-file and a sed on one file would
       ;; undo each other on every run)
       (exec-checked-script "seed app.ini" :creates "/etc/app.ini"
         (printf "mode = debug\\nport = 80\\n" ">" "/etc/app.ini"))
       (sed "/etc/app.ini" {"^mode = .*$" "mode = production"})
       (exec-checked-script "record the kernel"
         :creates "/var/tmp/kernel.txt"
         (pipe (uname "-s") (tr "[:lower:]" "[:upper:]" ">" "/var/tmp/kernel.txt")))
       (service "ssh" :action :start))}))
'''


def _inventory(nodes, group: str) -> str:
    rows = []
    for node in nodes:
        entry = node.inventory_entry(group)
        rows.append("[[node]]\n" + "".join(
            f"{k} = {v!r}\n".replace("'", '"') if isinstance(v, str) else f"{k} = {v}\n"
            for k, v in entry.items()))
    return "\n".join(rows)


def _compile(spec: Path, inventory: Path, out: Path) -> None:
    result = subprocess.run([PALLET, "compile", str(spec), "--nodes", str(inventory), "-o", str(out),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fleet_bundles_converge_then_change_nothing(debian_nodes, tmp_path):
    nodes = debian_nodes(3, prefix="fleet")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory(nodes, "fleet"))
    out = tmp_path / "out"
    _compile(ROOT / "examples" / "fleet.pallet", inventory, out)
    names = sorted(n.name for n in nodes)
    for node in nodes:
        client = connect(node, tmp_path / f"{node.name}.known_hosts")
        try:
            first = run_bundle(client, out / node.name / "configure")
            assert first.exit_status == 0, first.stderr
            assert first.summary == {"ok": 0, "changed": 7, "failed": 0}, first.stdout
            second = run_bundle(client, out / node.name / "configure")
            assert second.exit_status == 0, second.stderr
            assert second.summary == {"ok": 7, "changed": 0, "failed": 0}, second.stdout
            assert [s for _, s, _ in second.actions] == ["ok"] * 7
            # What the job built, seen from outside the bundle.
            peers = ",".join(n for n in names if n != node.name)
            assert run_command(client, "cat /opt/app/app.conf") == (
                f"[app]\nname = {node.name}\nport = 8080\npeers = {peers}\n")
            assert run_command(client, "stat -c '%a %U' /opt/app /opt/app/motd /opt/app/app.conf") == (
                "755 root\n644 app\n640 app\n")
            assert run_command(client, "cat /opt/app/motd /etc/sysctl.d/99-app.conf") == (
                "hello fleet\nnet.ipv4.ip_forward = 1\n")
            assert run_command(client, "readlink /opt/app/current; test -e /opt/app/.initialized && echo yes") == (
                "/opt/app\nyes\n")
            assert run_command(client, "getent passwd app | cut -d: -f6,7") == "/opt/app:/bin/bash\n"
            # Content edited by hand is left alone (the drift guard: the step fails and says so)...
            run_command(client, "echo tampered > /opt/app/motd && chmod 666 /opt/app/motd")
            third = run_bundle(client, out / node.name / "configure")
            assert third.summary == {"ok": 2, "changed": 0, "failed": 1}, third.stdout
            assert "/opt/app/motd was changed outside Pallet" in third.stderr, third.stderr
            assert run_command(client, "cat /opt/app/motd") == "tampered\n"
            # ...drifted attributes are put right, and only the drifted action reports a change.
            run_command(client, "echo 'hello fleet' > /opt/app/motd")
            fourth = run_bundle(client, out / node.name / "configure")
            assert fourth.summary == {"ok": 6, "changed": 1, "failed": 0}, fourth.stdout
            assert [label for _, s, label in fourth.actions if s == "changed"] == ["remote-file /opt/app/motd"]
            assert run_command(client, "cat /opt/app/motd; stat -c %a /opt/app/motd") == "hello fleet\n644\n"
        finally:
            client.close()


def test_core_actions_on_a_node_second_run_changes_nothing(debian_nodes, tmp_path):
    (node,) = debian_nodes(1, prefix="ops")
    spec = tmp_path / "ops.pallet"
    spec.write_text(SERVICES_SPEC)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory([node], "ops"))
    out = tmp_path / "out"
    _compile(spec, inventory, out)
    client = connect(node, tmp_path / "known_hosts")
    try:
        first = run_bundle(client, out / node.name / "configure")
        assert first.exit_status == 0, first.stdout + first.stderr
        assert first.summary["failed"] == 0 and first.summary["changed"] > 0, first.stdout
        second = run_bundle(client, out / node.name / "configure")
        assert second.exit_status == 0, second.stdout + second.stderr
        assert second.summary["changed"] == 0, second.stdout
        assert run_command(client, "id -nG deployer") == "deployer deploy\n"
        assert run_command(client, "cat ~deployer/.ssh/authorized_keys") == (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPallet deployer@ci\n")
        assert run_command(client, "cat \"/etc/motd.d/it's \\$quoted\"") == "it's `quoted` $HOME\n"
        assert run_command(client, "cat /etc/app.ini") == "mode = production\nport = 80\n"
        assert run_command(client, "cat /var/tmp/kernel.txt") == "LINUX\n"
    finally:
        client.close()


def test_a_failing_action_stops_the_bundle_and_names_it(debian_nodes, tmp_path):
    (node,) = debian_nodes(1, prefix="fail")
    spec = tmp_path / "fail.pallet"
    spec.write_text('''
(def broken
  (group-spec "broken"
    :phases {:configure (phase-fn
                          (directory "/opt/before")
                          (exec-checked-script "this fails" (false))
                          (directory "/opt/after"))}))
''')
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory([node], "broken"))
    out = tmp_path / "out"
    _compile(spec, inventory, out)
    client = connect(node, tmp_path / "known_hosts")
    try:
        run = run_bundle(client, out / node.name / "configure")
        assert run.exit_status != 0
        assert [(n, s) for n, s, _ in run.actions] == [(1, "changed"), (2, "failed")]
        assert "this fails" in run.stderr and f"{spec}:6:27" in run.stderr, run.stderr
        assert run.summary == {"ok": 0, "changed": 1, "failed": 1}
        assert run_command(client, "test -d /opt/after || echo absent") == "absent\n"
    finally:
        client.close()


DRIFT_SPEC = r'''
;; A file Pallet manages, edited by hand on the node.
(def conf
  (group-spec "conf"
    :phases {:configure
             (phase-fn
               (directory "/etc/drift-demo")
               (remote-file "/etc/drift-demo/app.conf" :content "port = 80\n" :mode "644"
                            OVERWRITE))}))
'''


def _lift(spec: Path, inventory: Path, records: Path) -> tuple[int, dict]:
    """`pallet lift` as a user runs it (the node's key is in known_hosts beside the inventory)."""
    result = subprocess.run([PALLET, "lift", str(spec), "--nodes", str(inventory), "--json",
                             "--known-hosts", str(inventory.parent / "known_hosts"),
                             "--record-dir", str(records)], capture_output=True, text=True,
                            timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_file_edited_on_the_node_is_kept_until_pallet_is_told(debian_nodes, tmp_path):
    (node,) = debian_nodes(1, prefix="drift")
    guarded, told = tmp_path / "guarded.pallet", tmp_path / "told.pallet"
    guarded.write_text(DRIFT_SPEC.replace("OVERWRITE", ""))
    told.write_text(DRIFT_SPEC.replace("OVERWRITE", ":overwrite-changes true"))
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(_inventory([node], "conf"))
    records = tmp_path / "runs"
    client = connect(node, tmp_path / "known_hosts")
    try:
        code, report = _lift(guarded, inventory, records)
        assert code == 0 and report["nodes"][0]["phases"][0]["status"] == "changed", json.dumps(report)
        assert run_command(client, "cat /var/lib/pallet/files/etc/drift-demo/app.conf.sha256; "
                                   "cd / && sha256sum -c /var/lib/pallet/files/etc/drift-demo/app.conf.sha256") == (
            f"{hashlib.sha256(b'port = 80' + bytes([10])).hexdigest()}  /etc/drift-demo/app.conf\n"
            "/etc/drift-demo/app.conf: OK\n")

        run_command(client, "echo 'port = 8080  # hotfix' > /etc/drift-demo/app.conf")
        code, report = _lift(guarded, inventory, records)
        (phase,) = report["nodes"][0]["phases"]
        assert code != 0 and phase["status"] == "failed" and phase["failed"] == 1, report
        assert "action 2 failed (exit status 1): remote-file /etc/drift-demo/app.conf: " in phase["error"]
        assert ("/etc/drift-demo/app.conf was changed outside Pallet since Pallet wrote it"
                in phase["error"]) and ":overwrite-changes true" in phase["error"], phase["error"]
        assert run_command(client, "cat /etc/drift-demo/app.conf") == "port = 8080  # hotfix\n"
        # the run record shows what replacing it would have changed
        stderr_log = Path(report["record"]) / node.name / "configure" / "stderr.log"
        assert "-port = 8080  # hotfix\n+port = 80\n" in stderr_log.read_text()

        code, report = _lift(told, inventory, records)
        assert code == 0 and report["nodes"][0]["phases"][0]["changed"] == 1, report
        assert run_command(client, "cat /etc/drift-demo/app.conf; "
                                   "cat /var/lib/pallet/backups/etc/drift-demo/app.conf.1; "
                                   "ls /etc/drift-demo") == (
            "port = 80\nport = 8080  # hotfix\napp.conf\n")
        code, report = _lift(guarded, inventory, records)
        assert code == 0 and report["nodes"][0]["phases"][0]["status"] == "ok", report
    finally:
        client.close()
