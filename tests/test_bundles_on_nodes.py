"""Compiled Debian bundles on real Debian 12 nodes over real SSH: the first run changes what
it must, a second run of the same bundles changes nothing and says so."""
from __future__ import annotations

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
            # Drift is put right, and only the drifted action reports a change.
            run_command(client, "echo tampered > /opt/app/motd && chmod 666 /opt/app/motd")
            third = run_bundle(client, out / node.name / "configure")
            assert third.summary == {"ok": 6, "changed": 1, "failed": 0}, third.stdout
            assert [label for _, s, label in third.actions if s == "changed"] == ["remote-file /opt/app/motd"]
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
