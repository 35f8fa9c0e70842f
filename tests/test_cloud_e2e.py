"""End to end on a cloud, with real SSH: a libcloud NodeDriver whose nodes are local nodes
(tests/cloud_localdriver.py), registered from the services file as a third-party driver
is. converge creates them through Pallet's libcloud path, waits for running and SSH, runs
:bootstrap and :configure over SSH with the user's key (imported as a key pair), converges
to a smaller count, lifts, lists and destroys."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cloud_env import HERE, ssh_key


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


pytestmark = pytest.mark.nodes

SPEC = """
(def web
  (group-spec "web"
    :node-spec (node-spec :image {:os-family :debian :os-version-matches "12"})
    :phases {:bootstrap (phase-fn (remote-file "/etc/bootstrapped" :content "yes"))
             :configure (phase-fn (remote-file "/etc/web.conf"
                                               :content (str "peers=" (count (nodes-in-group "web")))))}))
"""


def test_converge_lift_scale_down_and_destroy_through_libcloud(local_nodes, tmp_path):
    state = tmp_path / "driver-nodes"
    ssh_key(tmp_path / "id_user")
    (tmp_path / "services.toml").write_text(f"""\
[services.here]
provider = "pallet-local"
driver-module = "cloud_localdriver"
driver-class = "LocalNodeDriver"
private-key = "id_user"
login-user = "root"

[services.here.driver]
state_dir = "{state}"
cache_dir = "{local_nodes.cache_dir}"
""")
    (tmp_path / "site.pallet").write_text(SPEC)
    env = {**os.environ, "PALLET_SERVICES": str(tmp_path / "services.toml"),
           "PALLET_CLOUD_STATE": str(tmp_path / "cloud-state"),
           "PALLET_RECORD_DIR": str(tmp_path / "runs"),
           "PYTHONPATH": os.pathsep.join([str(HERE / "loopback_only"), str(HERE)])}

    def pallet(*args):
        p = subprocess.run([sys.executable, "-m", "pallet", *args], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=300, stdin=subprocess.DEVNULL)
        assert "Traceback" not in p.stderr, p.stderr
        return p

    from pallet.runtime.localnodes import LocalNodes
    nodes = LocalNodes(state, local_nodes.cache_dir)
    try:
        p = pallet("converge", "site.pallet", "web=2", "--compute", "here", "--json")
        assert p.returncode == 0, p.stderr + p.stdout
        report = json.loads(p.stdout)
        assert len(report["created"]) == 2
        phases = {(n["name"], ph["phase"]): ph["status"] for n in report["nodes"] for ph in n["phases"]}
        assert set(phases.values()) == {"changed"}
        assert sorted(ph for _, ph in phases) == ["bootstrap", "bootstrap", "configure", "configure"]
        # Surplus nodes go last first in natural order of their names (web-5a.. before web-36..)
        names = sorted(report["created"], key=_natural)
        for name in names:
            assert name.startswith("web-")
            out = nodes.exec_in(name, ["cat", "/etc/bootstrapped", "/etc/web.conf"], check=True).stdout
            assert out == "yespeers=2"
        # the user's key came in as a key pair (root's key of the local nodes is there too)
        pub = (tmp_path / "id_user.pub").read_text().split()[1]
        assert pub in nodes.exec_in(names[0], ["cat", "/root/.ssh/authorized_keys"]).stdout
        p = pallet("nodes", "--compute", "here", "--json")
        rows = json.loads(p.stdout)
        assert sorted((r["name"] for r in rows), key=_natural) == names
        assert all(r["address"] == "127.0.0.1" and r["state"] == "running" for r in rows)
        # lift: the same bundles change nothing
        p = pallet("lift", "site.pallet", "--compute", "here", "--json")
        assert p.returncode == 0, p.stderr
        assert {ph["status"] for n in json.loads(p.stdout)["nodes"] for ph in n["phases"]} == {"ok"}
        # scale down: one destroyed, the other's configuration follows (peers=1)
        p = pallet("converge", "site.pallet", "web=1", "--compute", "here", "--json")
        assert p.returncode == 0, p.stderr
        report = json.loads(p.stdout)
        assert report["destroyed"] == [names[1]] and report["created"] == []
        assert [n["name"] for n in report["nodes"]] == [names[0]]
        assert nodes.exec_in(names[0], ["cat", "/etc/web.conf"]).stdout == "peers=1"
        assert [n.name for n in nodes.list()] == [names[0]]
        p = pallet("destroy", "--compute", "here", "--all", "--yes")
        assert p.returncode == 0, p.stderr
        assert nodes.list() == []
    finally:
        nodes.destroy_all()


def test_dry_run_and_provision_only_on_local_nodes(local_nodes, tmp_path):
    """--dry-run and --provision-only work on the default provider too."""
    (tmp_path / "site.pallet").write_text(SPEC)
    state = tmp_path / "nodes"
    env = {**os.environ, "PALLET_CACHE": str(local_nodes.cache_dir),
           "PALLET_RECORD_DIR": str(tmp_path / "runs")}

    def pallet(*args):
        p = subprocess.run([sys.executable, "-m", "pallet", *args, "--state-dir", str(state)],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
                           stdin=subprocess.DEVNULL)
        assert "Traceback" not in p.stderr, p.stderr
        return p

    from pallet.runtime.localnodes import LocalNodes
    nodes = LocalNodes(state, local_nodes.cache_dir)
    try:
        p = pallet("converge", "site.pallet", "web=2", "--dry-run")
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines()[0] == "web on local: 0 -> 2 node(s): create 2"
        assert nodes.list() == []
        p = pallet("converge", "site.pallet", "web=2", "--provision-only", "--json")
        assert p.returncode == 0, p.stderr
        report = json.loads(p.stdout)
        assert sorted(report["created"]) == ["web-1", "web-2"]
        assert all(n["phases"] == [] for n in report["nodes"])        # no phase ran
        for name in ("web-1", "web-2"):
            assert nodes.exec_in(name, ["test", "-e", "/etc/bootstrapped"]).returncode == 1
        p = pallet("converge", "site.pallet", "web=1", "--provision-only", "--json")
        assert json.loads(p.stdout)["destroyed"] == ["web-2"]
    finally:
        nodes.destroy_all()
