"""~/.ssh/config for the hosts of an inventory (runtime/ssh_config.py): Host aliases with
HostName, Port, User, IdentityFile, ProxyJump and UserKnownHostsFile, the inventory's own
values winning; on real local nodes through the real CLI, including a ProxyJump through
another node. No test reads the real ~/.ssh/config: conftest sets PALLET_SSH_CONFIG=none,
and these tests name their own file or HOME.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pallet.errors import PalletError
from pallet.runtime.model import Endpoint
from pallet.runtime.providers import NodeListProvider
from pallet.runtime.ssh_config import SshConfig, parse_hop

ROOT = Path(__file__).resolve().parent.parent
PALLET = str(Path(sys.executable).parent / "pallet")


def config(tmp_path: Path, text: str) -> SshConfig:
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return SshConfig.named(str(path))


def test_a_host_alias_gives_hostname_port_user_key_and_known_hosts(tmp_path):
    key = tmp_path / "id_web"
    key.write_text("not read here")
    c = config(tmp_path, f"""
Host web web-*
    HostName 10.0.0.5
    Port 2222
    User deploy
    IdentityFile {tmp_path}/missing_key
    IdentityFile {key}
    UserKnownHostsFile {tmp_path}/kh1 ~/kh2

Host *
    User nobody
    Port 2200
""")
    e = c.endpoint("web")
    assert (e.host, e.port, e.user, e.private_key) == ("10.0.0.5", 2222, "deploy", str(key))
    assert e.known_hosts == (f"{tmp_path}/kh1", str(Path.home() / "kh2")) and e.jump is None
    # First value wins: Host * comes later. An alias no block names keeps its name.
    other = c.endpoint("db")
    assert (other.host, other.port, other.user, other.private_key) == ("db", 2200, "nobody", None)
    # The inventory's values win over the config.
    mine = c.endpoint("web-1", port=22, user="root", private_key="/k")
    assert (mine.host, mine.port, mine.user, mine.private_key) == ("10.0.0.5", 22, "root", "/k")


def test_the_example_of_the_docs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "deploy_ed25519").write_text("a key")
    text = (ROOT / "docs" / "runtime.md").read_text().split("### SSH config")[1].split("```")[1]
    e = config(tmp_path, text).endpoint("web-1")
    assert (e.host, e.port, e.user, e.private_key) == ("web-1.internal.example", 22, "deploy",
                                                       str(tmp_path / ".ssh" / "deploy_ed25519"))
    assert (e.jump.host, e.jump.port, e.jump.user, e.jump.jump) == ("203.0.113.10", 2222, "root", None)


def test_proxyjump_chains_and_each_hop_is_looked_up(tmp_path):
    c = config(tmp_path, """
Host inner
    HostName 192.168.1.9
    ProxyJump ops@gate:2022,mid
Host gate
    HostName 10.0.0.1
    ProxyJump outer
Host mid
    HostName 10.0.0.2
    User relay
    ProxyJump ignored-for-a-later-hop
Host outer
    HostName 203.0.113.7
Host loop
    ProxyJump loop
""")
    e = c.endpoint("inner")
    mid = e.jump
    assert (mid.host, mid.port, mid.user) == ("10.0.0.2", 22, "relay")
    gate = mid.jump
    assert (gate.host, gate.port, gate.user) == ("10.0.0.1", 2022, "ops")
    assert gate.jump == Endpoint("203.0.113.7") and gate.jump.jump is None
    # A jump given (the inventory's jump, --jump) wins over ProxyJump; ProxyJump none is none.
    assert c.endpoint("inner", jump=Endpoint("j")).jump == Endpoint("j")
    assert config(tmp_path, "Host x\n  ProxyJump none\n").endpoint("x").jump is None
    with pytest.raises(PalletError, match="more than 8 jump hosts"):
        c.endpoint("loop")
    assert parse_hop("ssh://u@[::1]:2200") == ("u", "::1", 2200)
    with pytest.raises(PalletError, match="cannot read the jump host"):
        parse_hop("a b")


def test_include_none_and_bad_files(tmp_path, monkeypatch):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "web.conf").write_text("Host web\n  HostName 10.1.1.1\n")
    c = config(tmp_path, f"Include {tmp_path}/conf.d/*.conf\nHost *\n  User u\n")
    assert (c.endpoint("web").host, c.endpoint("web").user) == ("10.1.1.1", "u")
    assert SshConfig.named("none").endpoint("web") == Endpoint("web")
    with pytest.raises(PalletError, match="the SSH config .*nope does not exist"):
        SshConfig.named(str(tmp_path / "nope"))
    with pytest.raises(PalletError, match="Port 'abc' of web is not a number"):
        config(tmp_path, "Host web\n  Port abc\n").endpoint("web")
    # By default: ~/.ssh/config (relative Includes under ~/.ssh), unless PALLET_SSH_CONFIG names one.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Include extra\n")
    (home / ".ssh" / "extra").write_text("Host web\n  HostName 10.2.2.2\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PALLET_SSH_CONFIG")
    assert SshConfig.named().endpoint("web").host == "10.2.2.2"


def test_a_config_that_sets_nothing_pallet_reads_gives_the_defaults_without_paramiko(tmp_path):
    # Debian's /etc/ssh/ssh_config: nothing in it changes an endpoint, so the process that
    # compiles does not import paramiko to parse it (the SSH helper has its own).
    path = tmp_path / "ssh_config"
    path.write_text("Include /nonexistent.d/*.conf\nHost *\n    SendEnv LANG LC_*\n"
                    "    HashKnownHosts yes\n    GSSAPIAuthentication yes\n    PortForwarding x\n")
    code = ("import sys; from pallet.runtime.ssh_config import SshConfig; "
            f"e = SshConfig.named({str(path)!r}).endpoint('web', private_key='k'); "
            "print(e.host, e.port, e.user, e.private_key, e.known_hosts, 'paramiko' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["web", "22", "root", "k", "()", "False"]
    # One keyword Pallet reads, anywhere (here as keyword=value), and the config is applied.
    path.write_text("Host *\n    SendEnv LANG\nHost web\n    port=2222\n")
    assert SshConfig.named(str(path)).endpoint("web").port == 2222
    path.write_text("Match host web\n    User deploy\n")
    assert SshConfig.named(str(path)).endpoint("web").user == "deploy"


def test_an_inventory_entry_takes_the_config_and_wins_over_it(tmp_path):
    c = config(tmp_path, """
Host web-1
    HostName 10.0.0.5
    Port 2222
    User deploy
Host bastion
    HostName 10.9.9.9
    User jumper
""")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text('[[node]]\nname = "web-1"\ngroup = "web"\nhost = "web-1"\n\n'
                         '[[node]]\nname = "web-2"\ngroup = "web"\nhost = "web-1"\nport = 22\nuser = "root"\n'
                         'jump = "bastion:2022"\n')
    one, two = NodeListProvider(inventory, c).list_nodes()
    assert (one.endpoint.host, one.endpoint.port, one.endpoint.user) == ("10.0.0.5", 2222, "deploy")
    assert (two.endpoint.host, two.endpoint.port, two.endpoint.user) == ("10.0.0.5", 22, "root")
    assert (two.endpoint.jump.host, two.endpoint.jump.port, two.endpoint.jump.user) == ("10.9.9.9", 2022, "jumper")
    # --jump for entries without their own jump, also looked up in the config.
    one, _ = NodeListProvider(inventory, c, jump="bastion").list_nodes()
    assert one.endpoint.jump.host == "10.9.9.9"


# -- on real local nodes, through the CLI ----------------------------------------------------

def pallet(*args, env=None) -> tuple[int, dict | None, str]:
    result = subprocess.run([PALLET, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **(env or {})})
    assert "Traceback" not in result.stderr, result.stderr
    data = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result.returncode, data, result.stdout + result.stderr


def statuses(report: dict) -> dict[str, tuple[str, str | None]]:
    return {n["name"]: (n["phases"][0]["status"], n["phases"][0].get("error")) for n in report["nodes"]}


@pytest.mark.nodes
def test_lift_reaches_host_aliases_and_jumps_through_a_node(debian_nodes, local_nodes, tmp_path):
    web, inner = debian_nodes(2, prefix="sshcfg")
    known = tmp_path / "known_hosts"
    known.write_text(f"{web.known_hosts_line()}\n{inner.known_hosts_line()}\n")
    cfg = tmp_path / "config"
    cfg.write_text(f"""
Host web
    HostName 127.0.0.1
    Port {web.port}
    User root
    IdentityFile {web.private_key}
    UserKnownHostsFile {known}

# Reached only through web: the jump host's sshd connects to 127.0.0.1:PORT for us.
Host inner
    HostName 127.0.0.1
    Port {inner.port}
    IdentityFile {inner.private_key}
    ProxyJump web
    UserKnownHostsFile {known}

Host stranger
    HostName 127.0.0.1
    Port {web.port}
    IdentityFile {web.private_key}
    UserKnownHostsFile {tmp_path}/empty_known_hosts
""")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text('[[node]]\nname = "web"\ngroup = "fleet"\nhost = "web"\nos-family = "debian"\nos-version = "12"\n\n'
                         '[[node]]\nname = "inner-1"\ngroup = "fleet"\nhost = "inner"\n')
    spec = str(ROOT / "examples" / "fleet.pallet")
    runs = str(tmp_path / "runs")
    code, report, out = pallet("lift", spec, "--nodes", str(inventory), "--ssh-config", str(cfg),
                               "--json", "--record-dir", runs)
    assert code == 0, out
    assert statuses(report) == {"web": ("changed", None), "inner-1": ("changed", None)}, out

    def app_conf(node) -> str:
        return local_nodes.exec_in(node.name, ["cat", "/opt/app/app.conf"], check=True).stdout

    assert "name = web\n" in app_conf(web) and "name = inner-1\n" in app_conf(inner)
    # The inventory's port wins over the config's: "web" on inner's port is inner's sshd.
    inventory.write_text(f'[[node]]\nname = "web"\ngroup = "fleet"\nhost = "web"\nport = {inner.port}\n')
    code, report, out = pallet("lift", spec, "--nodes", str(inventory), "--ssh-config", str(cfg),
                               "--json", "--record-dir", runs)
    assert code == 0 and statuses(report) == {"web": ("changed", None)}, out
    assert "name = web\n" in app_conf(inner)
    # UserKnownHostsFile is the file checked: a host it does not know is refused, naming it.
    inventory.write_text('[[node]]\nname = "s"\ngroup = "fleet"\nhost = "stranger"\n')
    code, report, out = pallet("lift", spec, "--nodes", str(inventory), "--ssh-config", str(cfg),
                               "--json", "--record-dir", runs)
    assert code == 1, out
    error = statuses(report)["s"][1]
    assert error.startswith("host-key-unknown: ") and f"{tmp_path}/empty_known_hosts records no key" in error
    assert not (tmp_path / "empty_known_hosts").exists()
    # Without a config, the alias is a name to resolve (what happened before).
    inventory.write_text('[[node]]\nname = "web"\ngroup = "fleet"\nhost = "web"\nos-family = "debian"\nos-version = "12"\n')
    code, report, out = pallet("lift", spec, "--nodes", str(inventory), "--ssh-config", "none",
                               "--known-hosts", str(known), "--retries", "0", "--json", "--record-dir", runs)
    assert code == 1 and statuses(report)["web"][1].startswith("unreachable: cannot resolve web"), out
    # By default ~/.ssh/config is read (HOME of the test, never the real one).
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(cfg.read_text())
    code, report, out = pallet("lift", spec, "--nodes", str(inventory), "--json", "--record-dir", runs,
                               env={"HOME": str(home), "PALLET_SSH_CONFIG": ""})
    assert code == 0 and statuses(report) == {"web": ("changed", None)}, out   # peers: none now
    assert "name = web\nport = 8080\npeers = \n" in app_conf(web)
