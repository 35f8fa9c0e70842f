"""Providers: node-list inventories, local nodes with their groups, `pallet nodes`/`pallet destroy`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

from pallet.compiler.specs import ComputeRef
from pallet.errors import PalletError, Source, Span
from pallet.runtime.localnodes import LocalNodes, _start_time
from pallet.runtime.model import NodeRecord
from pallet.runtime.providers import (LocalProvider, NodeListProvider, name_stem,
                                      provider_for)

INVENTORY = """\
[[node]]
name = "web-a"
group = "web"
host = "10.0.0.1"
private-key = "keys/id_ed25519"
password = "login-secret"
sudo-password = "sudo-secret"
roles = ["frontend"]

[[node]]
name = "db-a"
group = "db"
host = "db.example.org"
port = 2222
user = "admin"
private-key = "/etc/pallet/db_key"
os-family = "debian"
os-version = 12
private-ip = "192.168.1.5"
"""


def pallet_cmd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pallet", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def write_inventory(tmp_path: Path, text: str = INVENTORY) -> Path:
    path = tmp_path / "servers" / "inventory.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- node-list ---------------------------------------------------------------------------
def test_node_list_lists_the_inventory_with_endpoints(tmp_path):
    path = write_inventory(tmp_path)
    web, db = NodeListProvider(path).list_nodes()
    assert isinstance(web, NodeRecord) and (web.name, web.group, web.provider) == ("web-a", "web", "node-list")
    # A relative key is relative to the inventory's directory, not to the working directory.
    assert web.endpoint.private_key == str(path.parent.absolute() / "keys" / "id_ed25519")
    assert (web.endpoint.host, web.endpoint.port, web.endpoint.user) == ("10.0.0.1", 22, "root")
    assert (web.endpoint.password, web.endpoint.sudo_password) == ("login-secret", "sudo-secret")
    assert (web.os_family, web.os_version, web.roles) == (None, None, frozenset({"frontend"}))
    assert "secret" not in repr(web)
    assert db.endpoint.private_key == "/etc/pallet/db_key"
    assert (db.endpoint.host, db.endpoint.port, db.endpoint.user) == ("db.example.org", 2222, "admin")
    assert (db.os_family, db.os_version, db.private_ip) == ("debian", "12", "192.168.1.5")
    assert db.endpoint.password is None and db.endpoint.sudo_password is None


def test_node_list_relative_inventory_path_and_home_key(tmp_path, monkeypatch):
    write_inventory(tmp_path, '[[node]]\nname = "a"\ngroup = "g"\nhost = "h"\nprivate-key = "~/.ssh/k"\n'
                              '[[node]]\nname = "b"\ngroup = "g"\nhost = "h"\nprivate-key = "../k2"\n')
    monkeypatch.chdir(tmp_path)
    a, b = NodeListProvider("servers/inventory.toml").list_nodes()
    assert a.endpoint.private_key == str(Path("~/.ssh/k").expanduser())
    assert Path(b.endpoint.private_key) == tmp_path / "servers" / ".." / "k2"


@pytest.mark.parametrize("text, message, line", [
    ('[[node]]\nname = "a"\nhost = "h"\n', 'needs group', 1),
    ('[[node]]\nname = "a"\ngroup = "g"\nhost = "h"\n\n[[node]]\nname = "a"\ngroup = "g"\nhost = "i"\n',
     "used twice", 7),
    ('[[node]]\nname = "a"\ngroup = "g"\nhost = "h"\nport = 0\n', "port must be", 5),
    ('[[node]]\nname = "a"\ngroup = "g"\nhost = "h"\npassword = 7\n', "password must be a string", 5),
    ('[[node]]\nname = "a"\ngroup = "g"\nhost = "h"\nsudo-password = ["x"]\n', "sudo-password must be", 5),
    ('[[node]]\nname = "a"\ngroup = "g"\nhost = "h"\nhots = "x"\n', "unknown key 'hots'", 5),
    ('[[node]]\nname = "a\n', "invalid TOML", 2),
])
def test_node_list_errors_are_located(tmp_path, text, message, line):
    path = write_inventory(tmp_path, text)
    with pytest.raises(PalletError, match=message) as info:
        NodeListProvider(path).list_nodes()
    assert info.value.span is not None and info.value.span.file == str(path)
    assert info.value.span.line == line
    assert info.value.format().startswith(f"{path}:{line}:")


def test_node_list_missing_file(tmp_path):
    with pytest.raises(PalletError, match="no such file"):
        NodeListProvider(tmp_path / "nope.toml").list_nodes()


def test_node_list_cannot_create_or_destroy(tmp_path):
    provider = NodeListProvider(write_inventory(tmp_path))
    with pytest.raises(PalletError, match="cannot create nodes.*edit the inventory"):
        provider.create_nodes("web", ["web-b"], None)
    with pytest.raises(PalletError, match="cannot destroy nodes.*edit the inventory"):
        provider.destroy_nodes(["web-a"])


# -- choosing a provider -----------------------------------------------------------------
def test_provider_for_defaults_and_names(tmp_path):
    inv = write_inventory(tmp_path)
    local = provider_for(None, None, tmp_path / "state")
    assert isinstance(local, LocalProvider) and local.state_dir == tmp_path / "state"
    assert isinstance(provider_for("local", None, tmp_path / "state"), LocalProvider)
    assert isinstance(provider_for(ComputeRef("local"), None, tmp_path), LocalProvider)
    assert isinstance(provider_for(None, inv, None), NodeListProvider)
    assert isinstance(provider_for("node-list", str(inv), None), NodeListProvider)
    assert isinstance(provider_for(ComputeRef("node-list"), inv, None), NodeListProvider)


def test_provider_for_default_state_dir_is_the_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PALLET_NODES_DIR", str(tmp_path / "env-state"))
    assert provider_for(None, None, None).state_dir == tmp_path / "env-state"


def test_provider_for_errors(tmp_path):
    with pytest.raises(PalletError, match="needs an inventory: --nodes INVENTORY"):
        provider_for("node-list", None, None)
    with pytest.raises(PalletError, match="either --nodes INVENTORY .* or --compute local, not both"):
        provider_for("local", tmp_path / "inv.toml", None)
    with pytest.raises(PalletError) as info:
        provider_for("aws-ec2", None, None)
    assert info.value.message.startswith(
        "compute service aws-ec2 is not configured: add a [services.aws-ec2] table to ")
    assert "services.toml" in info.value.message and "--compute local" in info.value.message
    with pytest.raises(PalletError, match="did you mean local"):
        provider_for("lcoal", None, None)
    with pytest.raises(PalletError, match="unknown compute service 'mainframe'"):
        provider_for("mainframe", None, None)
    services = tmp_path / "services.toml"
    services.write_text('[services.lab-east]\nprovider = "ec2"\n')
    with pytest.raises(PalletError, match="unknown compute service 'lab-eats'; did you mean "
                                          "lab-east.*add a \\[services.lab-eats\\] table"):
        provider_for("lab-eats", None, None, services=services)


def test_provider_for_a_spec_compute_is_located():
    source = Source("cluster.pallet", "(converge {web 2}\n  :compute aws-ec2)\n")
    span = Span(source, 1, 1, 2, 20)
    with pytest.raises(PalletError, match="compute service aws-ec2 is not configured") as info:
        provider_for(ComputeRef("aws-ec2"), None, None, span=span)
    assert info.value.format().startswith("cluster.pallet:1:1: compute service aws-ec2")


def test_local_network_option(tmp_path, monkeypatch):
    assert LocalProvider(tmp_path).network == "host"
    assert LocalProvider(tmp_path, network="private").network == "private"
    monkeypatch.setenv("PALLET_LOCAL_NETWORK", "private")
    assert LocalProvider(tmp_path).network == "private"
    monkeypatch.setenv("PALLET_LOCAL_NETWORK", "bridge")
    with pytest.raises(PalletError, match=r"\$PALLET_LOCAL_NETWORK must be one of host, private, none"):
        LocalProvider(tmp_path)


# -- local, without nodes ----------------------------------------------------------------
def test_local_names_take_the_lowest_free_numbers(tmp_path):
    provider = LocalProvider(tmp_path)
    assert provider.list_nodes() == [] and provider.next_names("web", 2) == ["web-1", "web-2"]
    for name in ("web-1", "web-3", "db-1"):
        (tmp_path / "nodes" / name).mkdir(parents=True)
    assert provider.next_names("web", 3) == ["web-2", "web-4", "web-5"]
    assert provider.next_names("db", 1) == ["db-2"]
    assert name_stem("Task_Tracker") == "task-tracker" and name_stem("job trackers!") == "job-trackers"
    assert name_stem("__") == "node"


def test_local_group_comes_from_group_json_else_the_name(tmp_path):
    provider = LocalProvider(tmp_path)
    (tmp_path / "nodes" / "tt-1").mkdir(parents=True)
    (tmp_path / "nodes" / "tt-1" / "group.json").write_text('{"group": "task_tracker"}\n')
    (tmp_path / "nodes" / "web-front-2").mkdir(parents=True)
    assert provider._group_of("tt-1") == "task_tracker"
    assert provider._group_of("web-front-2") == "web-front"


def test_local_without_root_says_use_an_inventory(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    provider = LocalProvider(tmp_path / "state")
    for call in (lambda: provider.create_nodes("web", 2, None),
                 lambda: provider.destroy_nodes(["web-1"])):
        with pytest.raises(PalletError) as info:
            call()
        assert "need root" in info.value.message and "--nodes" in info.value.message
    assert not (tmp_path / "state").exists()          # nothing was made
    assert provider.list_nodes() == []                # looking needs no root


def test_local_refuses_a_node_spec_for_another_os(tmp_path, monkeypatch):
    from pallet.compiler.specs import NodeSpec
    from pallet.grammar.forms import Keyword
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    provider = LocalProvider(tmp_path / "state")
    with pytest.raises(PalletError, match="os-family centos, but local nodes run Debian 12"):
        provider.create_nodes("web", 1, NodeSpec(image={Keyword("os-family"): Keyword("centos")}))
    with pytest.raises(PalletError, match="os-version 11, but local nodes run Debian 12"):
        provider.create_nodes("web", 1, NodeSpec(image={Keyword("os-version"): "11"}))
    assert not (tmp_path / "state").exists()


def test_local_destroy_unknown_name(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(PalletError, match="no local node named web-9"):
        LocalProvider(tmp_path).destroy_nodes(["web-9"])


# -- the commands, without nodes ---------------------------------------------------------
def test_nodes_command_lists_an_inventory(tmp_path):
    inv = write_inventory(tmp_path)
    proc = pallet_cmd("nodes", "--nodes", str(inv), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["name"], r["group"], r["address"], r["os"], r["provider"]) for r in rows] == [
        ("web-a", "web", "10.0.0.1:22", None, "node-list"),
        ("db-a", "db", "db.example.org:2222", "debian-12", "node-list")]
    assert "secret" not in proc.stdout
    proc = pallet_cmd("nodes", "--nodes", str(inv))
    assert proc.returncode == 0
    head, web, db = proc.stdout.splitlines()
    assert head.split() == ["NAME", "GROUP", "ADDRESS", "OS", "PROVIDER"]
    assert db.split() == ["db-a", "db", "db.example.org:2222", "debian-12", "node-list"]


def test_nodes_command_on_an_empty_state_dir(tmp_path):
    proc = pallet_cmd("nodes", "--state-dir", str(tmp_path / "s"), "--json")
    assert (proc.returncode, json.loads(proc.stdout)) == (0, [])
    proc = pallet_cmd("nodes", "--state-dir", str(tmp_path / "s"))
    assert (proc.returncode, proc.stdout) == (0, f"no nodes in {tmp_path / 's'}\n")


@pytest.mark.parametrize("args, message", [
    (["--compute", "aws-ec2"], "compute service aws-ec2 is not configured"),
    (["--compute", "node-list"], "needs an inventory"),
])
def test_nodes_command_errors(args, message):
    proc = pallet_cmd("nodes", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_destroy_command_refusals(tmp_path):
    state = str(tmp_path / "s")
    proc = pallet_cmd("destroy", "--state-dir", state)
    assert proc.returncode == 2 and "nothing to destroy" in proc.stderr
    proc = pallet_cmd("destroy", "web", "--state-dir", state, "--yes")
    assert proc.returncode == 2 and "no local node or group named 'web'" in proc.stderr
    proc = pallet_cmd("destroy", "web", "--all", "--state-dir", state)
    assert proc.returncode == 2 and "not both" in proc.stderr
    proc = pallet_cmd("destroy", "--all", "--state-dir", state, "--yes")
    assert (proc.returncode, proc.stdout) == (0, f"no nodes in {state}\n")
    proc = pallet_cmd("destroy", "web-a", "--nodes", str(write_inventory(tmp_path)), "--yes")
    assert proc.returncode == 2 and "cannot destroy nodes" in proc.stderr and "edit the inventory" in proc.stderr
    proc = pallet_cmd("destroy", "--all", "--compute", "aws-ec2", "--yes")
    assert proc.returncode == 2 and "aws-ec2 is not configured" in proc.stderr


def test_commands_do_not_import_paramiko():
    code = ("import sys, pallet.cli, pallet.commands.nodes, pallet.commands.destroy, "
            "pallet.runtime.providers; assert 'paramiko' not in sys.modules, 'paramiko'; "
            "assert 'cryptography' not in sys.modules, 'cryptography'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- local, on real nodes ----------------------------------------------------------------
@pytest.fixture(scope="module")
def provider_state(local_nodes: LocalNodes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory of this session for LocalProvider (the `local_nodes` fixture skips
    without root and builds the root filesystem); every node in it is destroyed after."""
    state = tmp_path_factory.mktemp("local-nodes-providers")     # an old session's: cleaned by conftest
    yield state
    leftover = LocalNodes(state).list()
    LocalNodes(state).destroy_all()
    assert not any(_start_time(n.init_pid) == n.start_time for n in leftover)
    assert not list((state / "nodes").glob("*")) if (state / "nodes").exists() else True


def ssh_hostname(record: NodeRecord, known_hosts: Path) -> str:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    e = record.endpoint
    client.connect(e.host, e.port, username=e.user, key_filename=e.private_key,
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        _, out, _ = client.exec_command("hostname", timeout=30)
        return out.read().decode().strip()
    finally:
        client.close()


@pytest.mark.nodes
def test_local_provider_creates_lists_and_destroys_by_group(provider_state):
    provider = LocalProvider(provider_state, egress=())
    web = provider.create_nodes("web", 2, None)
    db = provider.create_nodes("db", ["db-1"], None)
    assert [n.name for n in web] == ["web-1", "web-2"] and [n.name for n in db] == ["db-1"]
    for fresh in (provider, LocalProvider(provider_state)):     # a new instance: the state on disk
        nodes = {n.name: n for n in fresh.list_nodes()}
        assert {name: n.group for name, n in nodes.items()} == {"web-1": "web", "web-2": "web", "db-1": "db"}
        for n in nodes.values():
            e = n.endpoint
            assert (e.host, e.user, e.private_key) == ("127.0.0.1", "root", str(provider_state / "id_ed25519"))
            assert (n.os_family, n.os_version, n.provider) == ("debian", "12", "local")
        assert len({n.endpoint.port for n in nodes.values()}) == 3
    # The provider's known_hosts lets a strict client in; the endpoint is all it needs.
    assert len(provider.known_hosts.read_text().splitlines()) == 3
    assert ssh_hostname(nodes["web-2"], provider.known_hosts) == "web-2"

    proc = pallet_cmd("nodes", "--state-dir", str(provider_state), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["name"], r["group"], r["state"], r["os"], r["provider"]) for r in rows] == [
        ("db-1", "db", "running", "debian-12", "local"), ("web-1", "web", "running", "debian-12", "local"),
        ("web-2", "web", "running", "debian-12", "local")]
    assert {r["address"] for r in rows} == {f"127.0.0.1:{n.endpoint.port}" for n in nodes.values()}

    pids = {n.name: n.init_pid for n in provider.nodes.list()}
    proc = pallet_cmd("destroy", "web", "--state-dir", str(provider_state), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "destroyed 2 node(s): web-1, web-2\n"
    assert [(n.name, n.group) for n in provider.list_nodes()] == [("db-1", "db")]
    assert not (provider_state / "nodes" / "web-1").exists()
    assert all(_start_time(pids[name]) is None for name in ("web-1", "web-2"))
    assert len(provider.known_hosts.read_text().splitlines()) == 1

    # Freed numbers are used again; a node can be destroyed by name.
    (again,) = provider.create_nodes("web", 1, None)
    assert again.name == "web-1" and again.group == "web"
    provider.destroy_nodes(["db-1"])
    assert [n.name for n in LocalProvider(provider_state).list_nodes()] == ["web-1"]
    proc = pallet_cmd("destroy", "--all", "--state-dir", str(provider_state), "--yes")
    assert (proc.returncode, proc.stdout) == (0, "destroyed 1 node(s): web-1\n")
    assert provider.list_nodes() == [] and provider.known_hosts.read_text() == ""
