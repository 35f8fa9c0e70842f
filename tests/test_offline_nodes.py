"""Offline bundles with real Debian and Ubuntu packages, on local nodes with no network at all:
a network namespace of their own with only `lo`, so nothing reaches them but the run file,
written into their root filesystem. The packages come from Debian's mirror (Ubuntu's archive)
when the bundle is made (on this machine), cached by content in $PALLET_CACHE for every
later session. The Ubuntu 22.04 proof skips, saying so, where Ubuntu's archive cannot be
reached."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_http import Served

pytestmark = pytest.mark.nodes

SPEC = r'''
(def web
  (group-spec "web"
    :extends [(cron/server :jobs {"tidy" {:schedule "0 3 * * *" :user "root"
                                          :command "find /tmp -mtime +7 -delete"}})]
    :phases {:configure (phase-fn
                          (packages ["jq" "tree"])
                          (user "deploy" :create-home true :shell "/bin/bash")
                          (directory "/etc/offline")
                          (remote-file "/etc/offline/motd" :content "converged offline\n"
                                       :owner "deploy" :mode "640")
                          (remote-file "/opt/tool.bin" :url "@URL@/tool.bin" :sha256 "@SHA256@"
                                       :mode "755"))}))
'''
# What remote-file :url downloads when bundling (from a loopback server of the test's):
# the node, with no network, gets it from its run file.
TOOL = b"#!/bin/sh\necho tool from the run file\n" + b"#" * 50_000 + b"\n"


# For the lift: packages too, but few (the SSH path is what it tests).
SMALL = r'''
(def web
  (group-spec "web"
    :phases {:install (phase-fn (package "jq"))
             :configure (phase-fn (user "deploy" :create-home true))}))
'''


def pallet(*args, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pallet", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def _bundle(tmp_path_factory, os_name: str):
    """The spec bundled for a clean install of os_name (the nodes' own root filesystem)."""
    if os.geteuid() != 0:
        pytest.skip("local nodes need root (CI runs as root)")
    import hashlib
    base = tmp_path_factory.mktemp(f"offline-{os_name}")
    (base / "www").mkdir()
    (base / "www/tool.bin").write_bytes(TOOL)
    server = Served(base / "www")
    try:
        (base / "web.pallet").write_text(SPEC.replace("@URL@", server.url).replace(
            "@SHA256@", hashlib.sha256(TOOL).hexdigest()))
        proc = pallet("bundle", base / "web.pallet", "--os", os_name, "-o", base / "out")
    finally:
        server.stop()    # later bundles of the same spec find the file in the cache
    assert proc.returncode == 0, proc.stderr
    return base, proc


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    return _bundle(tmp_path_factory, "debian-12")


# What differs between the releases' packages (tree's version).
TREE = {"debian-12": "tree v2.1", "ubuntu-22.04": "tree v2.0"}


@pytest.fixture(scope="module", params=["debian-12", "ubuntu-22.04"])
def release(request, tmp_path_factory):
    """(os, bundled, node factory) for each release local nodes run. Ubuntu's nodes come
    first: its fixture skips (saying why) where Ubuntu's archive cannot be reached."""
    if request.param == "debian-12":
        return request.param, request.getfixturevalue("bundled"), request.getfixturevalue("debian_nodes")
    nodes = request.getfixturevalue("ubuntu_nodes")
    return request.param, _bundle(tmp_path_factory, request.param), nodes


def put(node, data: bytes, path: str = "/root/web.run") -> None:
    """Into the node's root filesystem (its mount namespace, seen through /proc)."""
    Path(f"/proc/{node.init_pid}/root{path}").write_bytes(data)


def sh(local_nodes, node, command: str, timeout=600) -> subprocess.CompletedProcess:
    return local_nodes.exec_in(node.name, ["sh", "-c", command], timeout=timeout)


def test_converges_with_no_network_from_the_file_alone(release, local_nodes):
    os_name, (base, proc), make_nodes = release
    line = proc.stdout.strip()
    count = int(re.search(r"phases install configure, (\d+) packages, 1 download$", line).group(1))
    assert count >= 5      # jq, libjq1, libonig5, tree, cron (and what cron needs)
    run_file = (base / "out/web.run").read_bytes()
    (node,) = make_nodes(1, network="none")
    assert sh(local_nodes, node, ". /etc/os-release; echo $ID-$VERSION_ID").stdout == f"{os_name}\n"
    links = sh(local_nodes, node, "cat /proc/net/dev | tail -n +3 | cut -d: -f1").stdout.split()
    assert links == ["lo"]
    before = sh(local_nodes, node, "ls -l /var/lib/apt/lists; cat /etc/apt/sources.list; "
                                   "ls /etc/apt/sources.list.d; ls /var/cache/apt").stdout
    put(node, run_file)
    first = sh(local_nodes, node, "sh /root/web.run")
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.findall(r"^PALLET-PHASE (\S+)$", first.stdout, re.M) == ["install", "configure"]
    assert re.search(r"^PALLET-ACTION \d+ changed packages cron$", first.stdout, re.M)
    assert re.search(r"^PALLET-ACTION \d+ changed packages jq tree$", first.stdout, re.M)
    assert re.findall(r"^PALLET-SUMMARY .*$", first.stdout, re.M)[-1] == \
        "PALLET-SUMMARY ok=0 changed=6 failed=0"
    check = sh(local_nodes, node,
               "jq -n '{a: 1}' -c && tree --version | cut -c1-9 && dpkg-query -W -f '${Status}\\n' cron"
               " && id -un deploy && stat -c '%U %a' /etc/offline/motd && cat /etc/offline/motd"
               " && cat /etc/cron.d/tidy | tail -n 1 && /opt/tool.bin && dpkg --audit"
               " && echo audit-clean")
    assert check.returncode == 0, check.stderr
    assert check.stdout == ('{"a":1}\n' + TREE[os_name] + '\ninstall ok installed\ndeploy\ndeploy 640\n'
                            "converged offline\n0 3 * * * root find /tmp -mtime +7 -delete\n"
                            "tool from the run file\naudit-clean\n")
    after = sh(local_nodes, node, "ls -l /var/lib/apt/lists; cat /etc/apt/sources.list; "
                                  "ls /etc/apt/sources.list.d; ls /var/cache/apt").stdout
    assert after == before           # the node's own apt sources, lists and caches: untouched
    assert sh(local_nodes, node, "ls /tmp").stdout == ""
    # A second run changes nothing, and does not unpack the packages to see that.
    started = time.monotonic()
    second = sh(local_nodes, node, "sh /root/web.run --keep")
    seconds = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert re.findall(r"^PALLET-SUMMARY .*$", second.stdout, re.M) == [
        "PALLET-SUMMARY ok=3 changed=0 failed=0", "PALLET-SUMMARY ok=6 changed=0 failed=0"]
    kept = re.search(r"kept (\S+)", second.stderr).group(1)
    listing = sh(local_nodes, node, f"ls {kept}/repo").stdout.split()
    assert listing == ["Packages", "Release"], listing
    assert seconds < 30                    # (speed is bench/bench_offline.py's to measure)


def test_a_tampered_file_runs_nothing_and_installs_nothing(release, local_nodes):
    _, (base, _), make_nodes = release
    data = bytearray((base / "out/web.run").read_bytes())
    data[len(data) // 2] ^= 0x20           # inside a package
    (node,) = make_nodes(1, network="none")
    put(node, bytes(data))
    proc = sh(local_nodes, node, "sh /root/web.run")
    assert proc.returncode == 1
    assert "the file was changed or damaged; nothing was run" in proc.stderr
    assert "PALLET-" not in proc.stdout
    left = sh(local_nodes, node, "for p in jq tree cron; do dpkg-query -W -f '${Status}\\n' $p; done;"
                                 " id deploy; ls /etc/offline; ls /opt/tool.bin; ls /tmp")
    assert "install ok installed" not in left.stdout and "no such user" in left.stderr
    assert "/etc/offline" in left.stderr and "/opt/tool.bin" in left.stderr
    assert "/tmp" not in left.stdout


def test_reproducible_with_packages(bundled, tmp_path):
    base, _ = bundled
    env = {**os.environ, "PYTHONHASHSEED": "77"}
    proc = subprocess.run(
        [sys.executable, "-c", "import os, sys; os.umask(0o077); from pallet.cli import main; "
         f"sys.argv = ['pallet', 'bundle', {str(base / 'web.pallet')!r}, '--os', 'debian-12', '-o', {str(tmp_path / 'again')!r}]; main()"],
        cwd=base, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "again/web.run").read_bytes() == (base / "out/web.run").read_bytes()
    assert (tmp_path / "again/SHA256SUMS").read_bytes() == (base / "out/SHA256SUMS").read_bytes()


def test_state_file_from_the_node_and_state_over_ssh(bundled, local_nodes, debian_nodes, tmp_path):
    """--state FILE from `pallet state-script` run on a node with no network, and --nodes
    reading the same over SSH: both resolve what that node lacks (it has jq already)."""
    base, _ = bundled
    script = pallet("state-script").stdout
    (offline,) = debian_nodes(1, network="none")
    (reachable,) = debian_nodes(1)
    for node in (offline, reachable):
        put(node, (base / "out/web.run").read_bytes())
        assert sh(local_nodes, node, "sh /root/web.run --quiet --phase configure").returncode == 0
    state = sh(local_nodes, offline, script)
    assert state.returncode == 0, state.stderr
    (tmp_path / "node.state").write_text(state.stdout)
    proc = pallet("bundle", base / "web.pallet", "--state", tmp_path / "node.state",
                  "-o", tmp_path / "from-state")
    assert proc.returncode == 0, proc.stderr
    # jq and tree are there: only cron and what it needs are carried
    assert re.search(r"phases install configure, (\d+) packages", proc.stdout)
    listing = subprocess.run(["sh", str(tmp_path / "from-state/web.run"), "--list"],
                             capture_output=True, text=True).stdout
    debs = sorted(re.findall(r"repo/(\S+?)_", listing))
    assert "cron" in debs and "jq" not in debs and "tree" not in debs
    inventory = tmp_path / "inventory.toml"
    inventory.write_text("[[node]]\n" + "".join(
        f"{k} = {v!r}\n" if isinstance(v, str) else f"{k} = {v}\n"
        for k, v in reachable.inventory_entry("web").items()).replace("'", '"'))
    known = tmp_path / "known_hosts"
    known.write_text(reachable.known_hosts_line() + "\n")
    proc = pallet("bundle", base / "web.pallet", "--nodes", inventory, "--known-hosts", known,
                  "-o", tmp_path / "from-ssh")
    assert proc.returncode == 0, proc.stderr
    listing = subprocess.run(["sh", str(tmp_path / f"from-ssh/{reachable.name}.run"), "--list"],
                             capture_output=True, text=True).stdout
    assert sorted(re.findall(r"repo/(\S+?)_", listing)) == debs


def _inventory(nodes, path: Path, known: Path) -> None:
    lines = []
    for node in nodes:
        lines.append("[[node]]")
        for key, value in node.inventory_entry("web").items():
            lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n")
    known.write_text("".join(n.known_hosts_line() + "\n" for n in nodes))


def test_lift_offline_over_ssh_to_nodes_with_no_route_out(bundled, local_nodes, debian_nodes,
                                                          tmp_path):
    """Nodes in network namespaces of their own that reach nothing (no mirror, no proxy),
    reached over SSH: `pallet lift --offline` reads each one's state, makes its run file
    here and runs it there, one exec per node; the second lift changes nothing."""
    (tmp_path / "small.pallet").write_text(SMALL)
    nodes = debian_nodes(2, network="private")
    unreachable = local_nodes.exec_in(nodes[0].name, ["sh", "-c", "apt-get update -q 2>&1; true"])
    assert "Err" in unreachable.stdout or "Could not" in unreachable.stdout   # no route out
    inventory, known = tmp_path / "inventory.toml", tmp_path / "known_hosts"
    _inventory(nodes, inventory, known)
    args = ("lift", tmp_path / "small.pallet", "--nodes", inventory, "--known-hosts", known,
            "--offline", "--record-dir", tmp_path / "runs")
    first = pallet(*args, "--bundles", tmp_path / "kept", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert report["ok"] is True
    for node in report["nodes"]:
        assert [(p["phase"], p["status"]) for p in node["phases"]] == [
            ("install", "changed"), ("configure", "changed")]
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == sorted(
        ["SHA256SUMS", *(f"{n.name}.run" for n in nodes)])
    for node in nodes:
        done = local_nodes.exec_in(node.name, ["sh", "-c", "jq --version; id -un deploy; dpkg --audit"])
        assert done.stdout == "jq-1.6\ndeploy\n", done.stderr
    second = pallet(*args, "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    for node in again["nodes"]:
        assert [(p["phase"], p["status"], p["changed"]) for p in node["phases"]] == [
            ("install", "ok", 0), ("configure", "ok", 0)]
