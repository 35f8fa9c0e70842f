"""Pallet 0.8's own crates (tests/pallet08, unmodified) converged on real Debian 12 nodes:
pallet's automated_admin_user.clj (with ssh_key.clj and the sudoers crate) over SSH, after
which the admin user it made logs in with its key and sudoes without a password; java-crate's
java.clj as an offline run file on a node with no network, after which java runs from the
JAVA_HOME the crate wrote into /etc/environment."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bundle_runner import connect, run_bundle, run_command
from pallet.runtime.model import Endpoint, SshOptions
from pallet.runtime.transport import open_connection

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "pallet08"
SRC = DATA / "src"
pytestmark = pytest.mark.nodes


def pallet(*args, cwd=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pallet", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def test_automated_admin_user_converges_and_the_user_logs_in_and_sudoes(debian_nodes, tmp_path):
    (node,) = debian_nodes(1, prefix="aau")
    # The driver spec as it is, beside a key of this test's own (the driver reads pallet.pub)
    shutil.copy(DATA / "automated_admin_user.pallet", tmp_path)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pallet@test",
                    "-f", str(tmp_path / "pallet")], check=True)
    public_key = (tmp_path / "pallet.pub").read_text()
    entry = node.inventory_entry("admins")
    (tmp_path / "nodes.toml").write_text("[[node]]\n" + "".join(
        f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v}\n" for k, v in entry.items()))
    out = tmp_path / "out"
    proc = pallet("compile", tmp_path / "automated_admin_user.pallet", "--crate-path", SRC,
                  "--nodes", tmp_path / "nodes.toml", "-o", out, "--check")
    assert proc.returncode == 0, proc.stderr
    bundle = out / node.name / "configure"
    client = connect(node, tmp_path / "known_hosts")
    try:
        first = run_bundle(client, bundle)
        assert first.exit_status == 0, first.stdout + first.stderr
        assert first.summary["failed"] == 0, first.stdout
        changed = [label for _, status, label in first.actions if status == "changed"]
        assert "user pallet" in changed and "exec-checked-script sudoers /etc/sudoers.d/pallet-pallet" in changed
        # A second run: the user, its directory, its file and its sudoers entry are as they were
        # (Pallet's exec-checked-script reports a change each time it runs)
        second = run_bundle(client, bundle)
        assert second.exit_status == 0, second.stdout + second.stderr
        assert {label: status for _, status, label in second.actions if not label.startswith(
            "exec-checked-script")} == {"packages sudo": "ok", "user pallet": "ok",
                                         'directory "$(getent passwd pallet | cut -d: -f6)/.ssh/"': "ok",
                                         'file "$(getent passwd pallet | cut -d: -f6)/.ssh/authorized_keys"': "ok"}
        assert second.actions[-1][1:] == ("ok", "exec-checked-script sudoers /etc/sudoers.d/pallet-pallet")
        # The key once (the crate's grep guard), with the blank line Pallet's echo of the
        # slurped file (its own newline, then echo's) gave too
        assert run_command(client, "cat ~pallet/.ssh/authorized_keys") == public_key + "\n"
        assert run_command(client, "getent passwd pallet | cut -d: -f6,7") == "/home/pallet:/bin/bash\n"
        assert run_command(client, "stat -c '%a %U' ~pallet/.ssh ~pallet/.ssh/authorized_keys") == (
            "755 pallet\n644 pallet\n")
        assert run_command(client, "visudo -c -q && echo valid") == "valid\n"
    finally:
        client.close()
    known = tmp_path / "known_hosts"
    as_admin = open_connection(Endpoint(node.host, node.port, "pallet", str(tmp_path / "pallet")),
                               SshOptions(known_hosts=known, use_agent=False))
    try:
        assert run_command(as_admin, "id -un; sudo -n id -u") == "pallet\n0\n"
    finally:
        as_admin.close()


def test_java_crate_converges_offline_and_sets_java_home(local_nodes, debian_nodes, tmp_path):
    """java.clj with the package Debian 12 has (java_jre17.pallet): `pallet bundle` makes one
    run file with the packages (from Debian's mirror, cached in $PALLET_CACHE), run on a node
    with only `lo`."""
    if os.geteuid() != 0:
        pytest.skip("local nodes need root (CI runs as root)")
    proc = pallet("bundle", DATA / "java_jre17.pallet", "--crate-path", SRC, "--os", "debian-12",
                  "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    (run_file,) = (tmp_path / "out").glob("*.run")
    (node,) = debian_nodes(1, network="none")
    Path(f"/proc/{node.init_pid}/root/root/java.run").write_bytes(run_file.read_bytes())

    def sh(command):
        return local_nodes.exec_in(node.name, ["sh", "-c", command], timeout=900)

    first = sh("sh /root/java.run")
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"^PALLET-ACTION 1 changed packages? openjdk-17-jre-headless$", first.stdout, re.M), first.stdout
    env = sh("cat /etc/environment").stdout
    assert re.search(r'^JAVA_HOME="/usr/lib/jvm/java-17-openjdk-[a-z0-9]+"$', env, re.M), env
    check = sh(". /etc/environment && \"$JAVA_HOME/bin/java\" -version 2>&1 | head -n 1")
    assert check.returncode == 0 and 'openjdk version "17.' in check.stdout, check.stdout + check.stderr
    second = sh("sh /root/java.run")
    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"^PALLET-ACTION 1 ok packages? openjdk-17-jre-headless$", second.stdout, re.M)
    assert sh("cat /etc/environment").stdout == env          # the line set once, not added again
