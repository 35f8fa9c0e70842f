"""A second provider's API shape: libcloud's OpenStack driver against mimic (an OpenStack
simulator: Keystone v2 tokens, Nova servers, flavors, images, key pairs, metadata) on
127.0.0.1 (tests/mimic_server.py). Template from OpenStack's flavors and images, counts,
idempotence, surplus, metadata tags, the key pair, nodes and destroy, a node that boots
into ERROR, a create the API refuses, and credentials nowhere. Every run is
--provision-only: mimic's addresses (198.101.x) are not ours to connect to, and the pallet
processes refuse anything outside 127.0.0.0/8. Not proven here: user data (mimic keeps
none) and security groups (mimic has none; Pallet makes firewall rules on EC2 only)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cloud_env import HERE, ssh_key

USER = "pallet-stack-user"
PASSWORD = "Stack+Pass-Never-Printed-51f0"
WEB = """
(def web
  (group-spec "web"
    :node-spec (node-spec :image {:os-family :ubuntu :os-version-matches "14.04"}
                          :hardware {:min-cores 2 :min-ram 1024})
    :phases {:configure (phase-fn (file "/etc/web"))}))
"""


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mimic(tmp_path_factory):
    """The auth URL of mimic on 127.0.0.1, for the session."""
    port = free_port()
    log = tmp_path_factory.mktemp("mimic") / "mimic.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(HERE / "mimic_server.py"), str(port)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"mimic did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    yield url + "/identity"
    proc.terminate()
    proc.wait(timeout=30)


class Stack:
    """One test's OpenStack services (a tenant of its own) and pallet runs."""

    def __init__(self, tmp: Path, auth_url: str):
        self.tmp = tmp
        ssh_key(tmp / "id_test")
        (tmp / "stack-secret").write_text(PASSWORD + "\n")
        tenant = f"t-{tmp.name[-24:]}"
        self.user = f"{USER}-{tenant}"        # mimic binds a user name to its first tenant
        common = (f'provider = "openstack"\nregion = "ORD"\nidentity = "env:STACK_USER"\n'
                  f'credential = "file:stack-secret"\nendpoint = "{auth_url}"\nprivate-key = "id_test"\n')
        driver = (f'ex_force_auth_version = "2.0_password"\nex_tenant_name = "{tenant}"\n'
                  'ex_force_service_name = "cloudServersOpenStack"\n')
        self.services = tmp / "services.toml"
        # mimic's behaviours are asked for in a server's metadata: the service's tags
        self.services.write_text(
            f"[services.stack]\n{common}\n[services.stack.driver]\n{driver}\n"
            f"[services.broken]\n{common}tags = {{ server_error = \"1\" }}\n"
            f"[services.broken.driver]\n{driver}\n"
            f"[services.refusing]\n{common}"
            "tags = { create_server_failure = '{\"message\": \"No valid host was found\", \"code\": 500}' }\n"
            f"[services.refusing.driver]\n{driver}")
        self.env = {**os.environ, "STACK_USER": self.user, "PALLET_SERVICES": str(self.services),
                    "PALLET_CLOUD_STATE": str(tmp / "cloud-state"), "PALLET_RECORD_DIR": str(tmp / "runs"),
                    "PYTHONPATH": os.pathsep.join([str(HERE / "loopback_only"),
                                                   os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.spec = tmp / "web.pallet"
        self.spec.write_text(WEB)

    def pallet(self, *args) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "pallet", *map(str, args)], capture_output=True,
                           text=True, timeout=180, env=self.env, cwd=self.tmp, stdin=subprocess.DEVNULL)
        assert "Traceback" not in p.stderr, p.stderr
        return p

    def driver(self, service: str = "stack"):
        """libcloud's driver for the service, made by Pallet (this process reaches loopback
        only: the test's own look at what the API holds)."""
        from pallet.runtime.cloud.drivers import make_driver
        from pallet.runtime.cloud.services import load_services
        os.environ["STACK_USER"] = self.user
        return make_driver(load_services(self.services)[service])


@pytest.fixture
def stack(mimic, tmp_path) -> Stack:
    return Stack(tmp_path, mimic)


def test_openstack_template_counts_tags_key_pair_and_destroy(stack):
    s = stack
    p = s.pallet("converge", s.spec, "web=3", "--compute", "stack", "--dry-run")
    assert p.returncode == 0, p.stderr
    plan = p.stdout.splitlines()[0]
    # the smallest flavor with 2 cores and 1 GB (general1-2 has less disk than the 2GB
    # Standard Instance), an Ubuntu 14.04 image read from OpenStack's image names
    assert plan.startswith("web on stack: 0 -> 3 node(s): create 3: general1-2 (2 cores, 2048 MB, 40 GB), image ")
    assert "(Ubuntu 14.04 LTS (Trusty Tahr) (PVHVM): ubuntu 14.04)" in plan and plan.endswith("login ubuntu")
    assert s.driver().list_nodes() == []

    p = s.pallet("converge", s.spec, "web=3", "--compute", "stack", "--provision-only", "--json")
    assert p.returncode == 0, p.stderr
    made = json.loads(p.stdout)["created"]
    assert len(made) == 3
    d = s.driver()
    servers = d.list_nodes()
    assert sorted(n.name for n in servers) == sorted(made)
    pairs = d.list_key_pairs()
    assert len(pairs) == 1 and pairs[0].name.startswith("pallet-")
    for n in servers:
        assert n.extra["metadata"] == {"pallet-group": "web", "pallet-spec": "web",
                                       "pallet-login-user": "ubuntu", "pallet-name": n.name}
        assert n.extra["key_name"] == pairs[0].name and n.extra["flavorId"] == "general1-2"

    # the same counts change nothing; one: two destroyed
    p = s.pallet("converge", s.spec, "web=3", "--compute", "stack", "--provision-only", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["created"] == [], p.stderr
    p = s.pallet("converge", s.spec, "web=1", "--compute", "stack", "--provision-only", "--json")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["destroyed"]) == 2
    p = s.pallet("nodes", "--compute", "stack", "--json")
    rows = json.loads(p.stdout)
    assert len(rows) == 1 and rows[0]["name"] in made and rows[0]["size"] == "general1-2"
    assert rows[0]["state"] == "running" and rows[0]["group"] == "web"
    assert [n.name for n in d.list_nodes()] == [rows[0]["name"]]
    assert s.pallet("destroy", "--compute", "stack", "--all", "--yes").returncode == 0
    assert d.list_nodes() == [] and len(d.list_key_pairs()) == 1    # the key pair stays


def test_openstack_faults_are_reported_and_nothing_is_left(stack):
    s = stack
    # a node that boots into ERROR is destroyed and reported; exit 1
    p = s.pallet("converge", s.spec, "web=2", "--compute", "broken", "--provision-only", "--json")
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    failed = [(n["name"], ph) for n in doc["nodes"] for ph in n["phases"] if ph["status"] == "failed"]
    assert len(failed) == 2 and all("did not boot: the provider says error" in ph["error"]
                                    for _, ph in failed), failed
    assert sorted(name for name, _ in failed) == sorted(doc["destroyed"])
    assert s.driver("broken").list_nodes() == []
    # a create the API refuses: its message, exit 1
    p = s.pallet("converge", s.spec, "web=1", "--compute", "refusing", "--provision-only")
    assert p.returncode == 1 and "No valid host was found" in p.stdout + p.stderr, p.stdout + p.stderr
    assert "1 node(s) of web not created: 500 Internal Server Error No valid host was found" in p.stderr
    assert s.driver("refusing").list_nodes() == []
    # a node-spec no image fits: a located error with the nearest images, exit 2
    (s.tmp / "jammy.pallet").write_text(WEB.replace('"14.04"', '"22.04"'))
    p = s.pallet("converge", s.tmp / "jammy.pallet", "web=1", "--compute", "stack", "--dry-run")
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"{s.tmp / 'jammy.pallet'}:") and "Ubuntu 14.04" in p.stderr, p.stderr
    # the credentials nowhere; --check logs in
    p = s.pallet("services", "--check")
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr
    outputs = p.stdout + p.stderr
    for line in (s.tmp / "runs").rglob("*"):
        if line.is_file():
            outputs += line.read_text(errors="replace")
    assert PASSWORD not in outputs and s.user not in outputs
