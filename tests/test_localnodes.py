"""Local nodes end to end: real Debian 12 userlands, real sshd, real SSH with strict host keys."""
from __future__ import annotations

import http.server
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest

from pallet.errors import PalletError
from pallet.runtime import localnodes
from pallet.runtime.localnodes import LocalNodes, NodesUnavailable


def host_key_from_node(manager: LocalNodes, name: str) -> str:
    """The node's public host key as the node itself has it (not as node.json says)."""
    r = manager.exec_in(name, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"], check=True)
    return " ".join(r.stdout.split()[:2])


def connect(node, known_hosts: Path) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())   # strict: no AutoAddPolicy
    client.connect(node.host, node.port, username=node.user, key_filename=node.private_key,
                   look_for_keys=False, allow_agent=False, timeout=10)
    return client


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _, out, err = client.exec_command(command, timeout=30)
    text = out.read().decode() + err.read().decode()
    return out.channel.recv_exit_status(), text


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def host_mounts_mentioning(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line]


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "known_hosts"


@pytest.mark.nodes
def test_two_nodes_are_debian_12_reached_over_strict_ssh_and_isolated(debian_nodes, local_nodes, known_hosts):
    a, b = debian_nodes(2)
    assert a.port != b.port and (a.host, a.user, a.os_family, a.os_version) == ("127.0.0.1", "root", "debian", "12")
    lines = []
    for node in (a, b):
        key = host_key_from_node(local_nodes, node.name)
        assert key == node.host_key
        lines.append(f"[{node.host}]:{node.port} {key}")
    known_hosts.write_text("\n".join(lines) + "\n")
    ca, cb = connect(a, known_hosts), connect(b, known_hosts)
    try:
        assert run(ca, "hostname") == (0, f"{a.name}\n")
        assert run(cb, "hostname") == (0, f"{b.name}\n")
        rc, release = run(ca, "cat /etc/os-release")
        assert rc == 0 and "ID=debian" in release and 'VERSION_ID="12"' in release
        # Files: a node's writes stay in its own overlay.
        assert run(ca, "echo only-a > /root/marker && cat /root/marker") == (0, "only-a\n")
        assert run(cb, "test -e /root/marker; echo $?") == (0, "1\n")
        # Processes: a node sees its own PID namespace only.
        rc, ps = run(ca, "ps -eo pid=,args=")
        pids = {int(line.split()[0]): line.split(None, 1)[1] for line in ps.splitlines()}
        assert "pallet-init" in pids[1] and "pytest" not in ps and len(pids) < 12, ps
        # What a configuration run needs: root via sudo, init.d services, python3.
        assert run(ca, "sudo -n true && echo ok") == (0, "ok\n")
        assert run(ca, "service ssh status")[0] == 0
        assert run(ca, "python3 -c 'print(6*7)'") == (0, "42\n")
    finally:
        ca.close()
        cb.close()


@pytest.mark.nodes
def test_strict_host_key_checking_refuses_unknown_and_wrong_keys(debian_nodes, known_hosts):
    a, b = debian_nodes(2)
    known_hosts.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(a, known_hosts)
    known_hosts.write_text(f"[{a.host}]:{a.port} {b.host_key}\n")     # b's key for a's address
    with pytest.raises(paramiko.BadHostKeyException):
        connect(a, known_hosts)


@pytest.mark.nodes
def test_node_without_network_runs_commands_through_exec_in(debian_nodes, local_nodes):
    (online,) = debian_nodes(1)
    (offline,) = debian_nodes(1, network="none")
    assert offline.network == "none"
    r = local_nodes.exec_in(offline.name, ["hostname"], check=True)
    assert r.stdout == f"{offline.name}\n"
    interfaces = local_nodes.exec_in(offline.name, ["cat", "/proc/net/dev"], check=True).stdout
    assert [line.split(":")[0].strip() for line in interfaces.splitlines()[2:]] == ["lo"]
    # Its 127.0.0.1 is its own: the other node's sshd, on the host's loopback, is not there.
    probe = (f"import socket\ntry:\n socket.create_connection(('127.0.0.1', {online.port}), 1)\n"
             " print('reached')\nexcept OSError:\n print('unreachable')\n")
    r = local_nodes.exec_in(offline.name, ["python3", "-c", probe], check=True)
    assert r.stdout == "unreachable\n"
    assert not port_open(offline.port)      # its sshd listens inside its own namespace only
    assert local_nodes.exec_in(offline.name, ["sh", "-c", "exit 3"]).returncode == 3


@pytest.mark.nodes
def test_destroy_stops_processes_closes_the_port_and_leaves_no_mounts(debian_nodes, local_nodes):
    (node,) = debian_nodes(1)
    node_dir = Path(node.dir)
    assert port_open(node.port)
    assert host_mounts_mentioning(node_dir) == []       # the overlay lives in the node's namespace
    assert node.name in [n.name for n in local_nodes.list()]
    local_nodes.destroy(node.name)
    assert not port_open(node.port)
    assert not Path(f"/proc/{node.init_pid}").exists() and not Path(f"/proc/{node.pid}").exists()
    assert host_mounts_mentioning(node_dir) == [] and not node_dir.exists()
    assert node.name not in [n.name for n in local_nodes.list()]
    with pytest.raises(PalletError, match="no local node"):
        local_nodes.exec_in(node.name, ["true"])


@pytest.mark.nodes
def test_list_notices_a_dead_node_and_start_brings_it_back_with_its_files(debian_nodes, local_nodes):
    (node,) = debian_nodes(1)
    local_nodes.exec_in(node.name, ["sh", "-c", "echo kept > /etc/kept"], check=True)
    os.kill(node.init_pid, signal.SIGKILL)             # as if the machine had rebooted
    deadline = time.monotonic() + 5
    while local_nodes.get(node.name).running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not local_nodes.get(node.name).running
    with pytest.raises(PalletError, match="not running"):
        local_nodes.exec_in(node.name, ["true"])
    again = local_nodes.start(node.name)
    assert again.running and again.port == node.port and again.init_pid != node.init_pid
    assert local_nodes.exec_in(node.name, ["cat", "/etc/kept"], check=True).stdout == "kept\n"


@pytest.mark.nodes
def test_ten_nodes_start_in_parallel(debian_nodes, local_nodes):
    began = time.monotonic()
    nodes = debian_nodes(10)
    seconds = time.monotonic() - began
    assert len({n.port for n in nodes}) == 10 and all(port_open(n.port) for n in nodes)
    assert seconds < 20, f"10 nodes took {seconds:.1f} s"    # about 0.4 s on 2 cores
    local_nodes.destroy_many([n.name for n in nodes])
    assert not any(port_open(n.port) for n in nodes)


def test_node_names_must_be_hostnames(tmp_path):
    with pytest.raises(PalletError, match="bad node name"):
        LocalNodes(tmp_path).create("Not_A_Hostname")


def test_without_root_the_error_says_what_to_do_instead(tmp_path, monkeypatch):
    monkeypatch.setattr(localnodes.os, "geteuid", lambda: 1000)
    with pytest.raises(NodesUnavailable) as caught:
        LocalNodes(tmp_path).create("n1")
    assert "need root" in caught.value.message and "inventory" in caught.value.message


@pytest.mark.nodes
def test_a_port_taken_after_it_was_chosen_is_replaced(local_nodes, monkeypatch):
    real = localnodes._free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        calls = []
        monkeypatch.setattr(localnodes, "_free_ports",
                            lambda n, avoid: calls.append(n) or ([busy] if len(calls) == 1 else real(n, avoid)))
        node = local_nodes.create("moved")
        assert node.port != busy and port_open(node.port)
        with pytest.raises(PalletError, match="did not start"):
            local_nodes.create("pinned", port=busy)           # a port asked for is not moved
    assert "pinned" not in [n.name for n in local_nodes.list()]
    local_nodes.destroy("moved")


@pytest.mark.nodes
def test_private_nodes_have_their_own_ports_and_no_route_out(debian_nodes, local_nodes, known_hosts):
    a, b = debian_nodes(2, network="private")
    known_hosts.write_text("".join(f"{n.known_hosts_line()}\n" for n in (a, b)))
    port = localnodes._free_ports(1, set())[0]
    serve = (f"cd /root; hostname > index.html; setsid python3 -m http.server {port} "
             f"--bind 127.0.0.1 >/dev/null 2>&1 < /dev/null & sleep 0.5; "
             f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/').read().decode(), end='')\"")
    for node in (a, b):
        client = connect(node, known_hosts)          # SSH from the host's loopback, strict keys
        try:
            # The same port in both nodes: each has its own loopback, and the host sees neither.
            assert run(client, serve) == (0, f"{node.name}\n")
            assert run(client, "tail -n +2 /proc/net/route") == (0, "")     # no route anywhere
        finally:
            client.close()
    assert not port_open(port)


class _Echo(http.server.BaseHTTPRequestHandler):
    """A "mirror" on loopback: answers every GET with its path and the Host it was asked for."""

    def do_GET(self):
        body = f"{self.path} via {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def echo_mirror():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()


# Fetches a URL through a private node's apt proxy: the body, or the HTTP status refused with.
FETCH = ("import sys, urllib.request, urllib.error\n"
         "opener = urllib.request.build_opener(urllib.request.ProxyHandler({'http': 'http://127.0.0.2:3142'}))\n"
         "try:\n print(opener.open(sys.argv[1], timeout=10).read().decode())\n"
         "except urllib.error.HTTPError as e:\n print(e.code)\n")


@pytest.mark.nodes
def test_private_node_apt_proxy_forwards_to_allowed_hosts_only(tmp_path):
    with echo_mirror() as port:
        manager = LocalNodes(tmp_path / "state", egress=[("deb.debian.org", "127.0.0.1", port)])
        try:
            node = manager.create("mirrored", network="private")
            r = manager.exec_in(node.name, ["python3", "-c", FETCH, "http://deb.debian.org/debian/x"], check=True)
            assert r.stdout == "http://deb.debian.org/debian/x via deb.debian.org\n"
            r = manager.exec_in(node.name, ["python3", "-c", FETCH, "http://example.org/"], check=True)
            assert r.stdout == "403\n"
            r = manager.exec_in(node.name, ["apt-config", "dump", "Acquire::http::Proxy"], check=True)
            assert "http://127.0.0.2:3142/" in r.stdout
        finally:
            manager.destroy_all()


@pytest.mark.nodes
def test_by_default_a_private_node_reaches_its_own_releases_mirrors_alone(local_nodes, tmp_path):
    """The default egress names every release's mirrors, but a Debian node's apt proxy lets
    through Debian's alone (not Ubuntu's archive). The mirrors' addresses point at a server on
    loopback here: no DNS, no internet."""
    with echo_mirror() as port:
        manager = LocalNodes(tmp_path / "state")
        hosts = sorted(e[0] for e in manager.egress)
        assert hosts == ["archive.ubuntu.com", "deb.debian.org", "security.ubuntu.com"]
        manager.egress = [(h, "127.0.0.1", port) for h in hosts]
        try:
            node = manager.create("own-mirrors", network="private")
            got = {h: manager.exec_in(node.name, ["python3", "-c", FETCH, f"http://{h}/x"], check=True).stdout
                   for h in hosts}
            assert got == {"deb.debian.org": "http://deb.debian.org/x via deb.debian.org\n", "archive.ubuntu.com": "403\n",
                           "security.ubuntu.com": "403\n"}
        finally:
            manager.destroy_all()


@pytest.mark.nodes
def test_a_group_asking_for_ubuntu_gets_ubuntu_22_04_nodes_over_strict_ssh(ubuntu_nodes, tmp_path):
    """The local provider makes the release a group's node-spec names (Ubuntu 22.04 from
    its own cached root filesystem); the record and the node itself say so."""
    from pallet.compiler.specs import NodeSpec
    from pallet.grammar.forms import Keyword
    from pallet.runtime.providers import LocalProvider
    provider = LocalProvider(tmp_path / "state", egress=())
    spec = NodeSpec(image={Keyword("os-family"): Keyword("ubuntu"), Keyword("os-version"): "22.04"})
    try:
        (record,) = provider.create_nodes("web", 1, spec)
        assert (record.name, record.os_family, record.os_version) == ("web-1", "ubuntu", "22.04")
        (node,) = provider.nodes.list()
        client = connect(node, provider.known_hosts)
        try:
            rc, release = run(client, "cat /etc/os-release")
            assert rc == 0 and "ID=ubuntu" in release and 'VERSION_ID="22.04"' in release
            assert run(client, "hostname") == (0, "web-1\n")
            assert run(client, "sudo -n true && echo ok") == (0, "ok\n")
            assert run(client, "service ssh status")[0] == 0
            assert run(client, "python3 -c 'print(6*7)'") == (0, "42\n")
            # No package lists, as on a fresh Ubuntu image (debootstrap's were of jammy main
            # alone): the first package install fetches those of its sources.
            assert run(client, "ls /var/lib/apt/lists") == (0, "partial\n")
            assert "universe" in run(client, "cat /etc/apt/sources.list")[1]
        finally:
            client.close()
    finally:
        provider.destroy_nodes(provider._names())
    assert provider.list_nodes() == []
