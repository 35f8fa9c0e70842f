"""The SSH transport (paramiko) on real local Debian nodes over real SSH, the local transport,
and OS detection. No mocks: every fault is made for real (a closed port, a key the node does
not know, a wrong host key on record, a session's sshd killed mid-run, sudo without a password).
"""
from __future__ import annotations

import base64
import concurrent.futures as cf
import logging
import os
import platform
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pallet.errors import PalletError
from pallet.runtime.facts import OsFacts, detect_os, os_facts, parse_os_release
from pallet.runtime.local_transport import LocalConnection
from pallet.runtime.model import Endpoint, SshOptions, TransportError
from pallet.runtime.known_hosts import fingerprint
from pallet.runtime.transport import SshConnection, open_connection
from pallet.runtime.wire import GZIP_FROM, prepare_bundle

from faults import DelayProxy, freeze_sessions, reboot, thaw

PALLET = str(Path(sys.executable).parent / "pallet")
SUDO_PASSWORD = "s3cret pass'\"$x"        # quotes and a dollar: it must never meet a shell

TINY_SPEC = """
(def tiny
  (group-spec "tiny"
    :phases
    {:configure
     (phase-fn
       (directory "DIR" :mode "755")
       (remote-file "DIR/hello.txt" :content "hello\\n" :mode "640"))}))
"""


# -- helpers ---------------------------------------------------------------------------------

def compile_tiny(tmp_path: Path, target_dir: str) -> tuple[dict[str, bytes], str]:
    """A real compiled bundle (pallet compile --os debian-12) of two actions on target_dir."""
    spec = tmp_path / "tiny.pallet"
    spec.write_text(TINY_SPEC.replace("DIR", target_dir))
    out = tmp_path / "out"
    r = subprocess.run([PALLET, "compile", str(spec), "--os", "debian-12", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return load_bundle(out / "tiny" / "configure")


def load_bundle(directory: Path) -> tuple[dict[str, bytes], str]:
    import json
    manifest = json.loads((directory / "manifest.json").read_text())
    files = {name: (directory / name).read_bytes() for name in manifest["files"]}
    return files, manifest["script"]


def script(text: str) -> dict[str, bytes]:
    return {"run.sh": text.encode()}


def pallet_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("PALLET-")]


def endpoint(node, **kw) -> Endpoint:
    return Endpoint(node.host, node.port, kw.pop("user", "root"), private_key=kw.pop("private_key", node.private_key), **kw)


def new_public_key() -> tuple[bytes, str]:
    """A fresh ed25519 key pair: (OpenSSH private key, "ssh-ed25519 AAAA...")."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    return private, public


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """A TCP server on loopback that counts connections and either closes them at once or
    holds them without a word (no SSH banner)."""

    def __init__(self, mode: str):
        self.mode, self.accepted, self.held = mode, 0, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "close":
                conn.close()
            else:
                self.held.append(conn)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nodes(debian_nodes, local_nodes):
    """Two nodes: `a` (with users deploy: NOPASSWD sudo, ops: sudo with a password, nosudo)
    and `b`."""
    a, b = debian_nodes(2, prefix="tr")
    public = Path(a.private_key + ".pub").read_text().strip()
    setup = f"""set -e
for u in deploy ops nosudo; do
  useradd -m -s /bin/bash "$u"
  install -d -m 700 -o "$u" -g "$u" "/home/$u/.ssh"
  echo '{public}' > "/home/$u/.ssh/authorized_keys"
  chown "$u:$u" "/home/$u/.ssh/authorized_keys"
done
echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy
echo 'ops ALL=(ALL) ALL' > /etc/sudoers.d/ops
chmod 440 /etc/sudoers.d/deploy /etc/sudoers.d/ops
chpasswd
"""
    local_nodes.exec_in(a.name, ["sh", "-c", setup], input=f"ops:{SUDO_PASSWORD}\n", check=True)
    return a, b


@pytest.fixture
def known_hosts(tmp_path, nodes) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("".join(n.known_hosts_line() + "\n" for n in nodes))
    return path


@pytest.fixture
def options(known_hosts) -> SshOptions:
    return SshOptions(known_hosts=known_hosts, use_agent=False)


# -- bundles over SSH ------------------------------------------------------------------------

@pytest.mark.nodes
def test_compiled_bundle_runs_and_streams_its_lines(nodes, options, tmp_path):
    a, _ = nodes
    files, name = compile_tiny(tmp_path, "/var/tmp/pallet-tiny")
    seen: list[str] = []
    with open_connection(endpoint(a), options) as conn:
        assert isinstance(conn, SshConnection)
        first = conn.run_bundle(files, name, "bash", on_line=seen.append)
        assert first.exit_status == 0, first.stderr
        assert pallet_lines(first.stdout) == [
            "PALLET-ACTION 1 changed directory /var/tmp/pallet-tiny",
            "PALLET-ACTION 2 changed remote-file /var/tmp/pallet-tiny/hello.txt",
            "PALLET-SUMMARY ok=0 changed=2 failed=0"]
        assert seen == first.stdout.splitlines()
        second = conn.run_bundle(files, name, "bash")
        assert pallet_lines(second.stdout)[-1] == "PALLET-SUMMARY ok=2 changed=0 failed=0"
        made = conn.run("stat -c '%a %U' /var/tmp/pallet-tiny/hello.txt; cat /var/tmp/pallet-tiny/hello.txt")
        assert made.stdout == "640 root\nhello\n"
        conn.run("rm -rf /var/tmp/pallet-tiny")


@pytest.mark.nodes
def test_lines_reach_on_line_as_they_are_printed(nodes, options):
    a, _ = nodes
    at: dict[str, float] = {}
    body = "echo first; echo 'to stderr' >&2; sleep 1; echo second; printf 'no newline'"
    with open_connection(endpoint(a), options) as conn:
        start = time.monotonic()
        result = conn.run_bundle(script(body), "run.sh", "bash",
                                 on_line=lambda line: at.setdefault(line, time.monotonic() - start))
        end = time.monotonic() - start
    assert list(at) == ["first", "second", "no newline"]
    assert at["first"] < end - 0.7, (at, end)         # not held back until the end
    assert result.stdout == "first\nsecond\nno newline"
    assert result.stderr == "to stderr\n"


@pytest.mark.nodes
def test_private_temp_dir_is_removed_after_success_and_failure(nodes, options):
    a, _ = nodes
    body = ('echo "dir=$PALLET_BUNDLE_DIR pwd=$(pwd) mode=$(stat -c %a "$PALLET_BUNDLE_DIR")"; '
            'ls "$PALLET_BUNDLE_DIR" "$PALLET_BUNDLE_DIR/files"; exit "$(cat files/code)"')
    with open_connection(endpoint(a), options) as conn:
        for code in (0, 3):
            files = {**script(body), "files/code": f"{code}\n".encode()}
            result = conn.run_bundle(files, "run.sh", "bash")
            assert result.exit_status == code, result.stderr
            head = dict(kv.split("=", 1) for kv in result.stdout.splitlines()[0].split())
            assert head["dir"] == head["pwd"] and head["dir"].startswith("/tmp/pallet-bundle.")
            assert head["mode"] == "700"
            assert "run.sh" in result.stdout and "code" in result.stdout
            assert conn.run(f"test -e {head['dir']}").exit_status == 1     # gone
        assert conn.run("ls -A /tmp").stdout == ""



@pytest.mark.nodes
def test_large_bundle_and_output_both_ways(nodes, options):
    """8 MB in (random, so gzip cannot shrink it) and 8 MB out at once: neither pipe blocks."""
    import hashlib
    a, _ = nodes
    blob = os.urandom(8 << 20)
    body = 'sha256sum files/blob | cut -c1-64; head -c 8388608 /dev/zero | tr "\\0" x | fold -w 1023; echo; echo done'
    lines = []
    with open_connection(endpoint(a), options) as conn:
        result = conn.run_bundle({**script(body), "files/blob": blob}, "run.sh", "bash", on_line=lines.append)
    assert result.exit_status == 0, result.stderr
    assert lines[0] == hashlib.sha256(blob).hexdigest()
    assert lines[-1] == "done" and sum(len(line) for line in lines[1:-1]) == 8 << 20

@pytest.mark.nodes
def test_one_connection_and_one_exec_channel_per_run_bundle(nodes, options, caplog):
    """Counted by paramiko's own log (a line per channel the server opens for us, a line per
    connection), and on the node by sshd's log of logins."""
    a, _ = nodes
    sshd_log = Path(a.dir) / "log"
    logins_before = sshd_log.read_text().count("Accepted publickey for root")
    caplog.set_level(logging.DEBUG, logger="paramiko.transport")
    with open_connection(endpoint(a), options) as conn:
        channels = lambda: sum(bool(re.match(r"Secsh channel \d+ opened", r.getMessage()))
                               for r in caplog.records)
        assert channels() == 0
        for n in range(1, 4):
            conn.run_bundle(script("echo hi"), "run.sh", "bash")
            assert channels() == n
    assert sum(r.getMessage().startswith("Connected (version") for r in caplog.records) == 1
    deadline = time.monotonic() + 2
    while sshd_log.read_text().count("Accepted publickey for root") == logins_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sshd_log.read_text().count("Accepted publickey for root") == logins_before + 1


@pytest.mark.nodes
def test_calls_from_two_threads_take_turns(nodes, options):
    a, _ = nodes
    results = []
    with open_connection(endpoint(a), options) as conn:
        threads = [threading.Thread(target=lambda i=i: results.append(
            conn.run_bundle(script(f"sleep 0.2; echo {i}"), "run.sh", "bash"))) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(r.stdout for r in results) == ["0\n", "1\n", "2\n"]


# -- host keys -------------------------------------------------------------------------------

@pytest.mark.nodes
def test_unknown_host_is_rejected_by_default(nodes, tmp_path):
    a, _ = nodes
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError) as e:
        open_connection(endpoint(a), SshOptions(known_hosts=empty, use_agent=False))
    assert e.value.kind == "host-key-unknown"
    msg = e.value.message
    assert f"[127.0.0.1]:{a.port}" in msg and "--accept-new-host-keys" in msg and str(empty) in msg
    host_blob = base64.b64decode(a.host_key.split()[1])
    assert fingerprint(host_blob) in msg
    assert empty.read_text() == ""


@pytest.mark.nodes
def test_accept_new_records_the_key_in_the_default_file(nodes, tmp_path, monkeypatch):
    """~/.ssh/known_hosts is the default; accept-new makes it (mode 600) with OpenSSH's
    `[host]:port` entry, which ssh-keygen finds, and the next connection needs no option."""
    a, _ = nodes
    monkeypatch.setenv("HOME", str(tmp_path))
    default = tmp_path / ".ssh" / "known_hosts"
    with pytest.raises(TransportError) as e:
        open_connection(endpoint(a), SshOptions(use_agent=False))
    assert e.value.kind == "host-key-unknown" and str(default) in e.value.message
    with open_connection(endpoint(a), SshOptions(accept_new_host_keys=True, use_agent=False)) as conn:
        assert conn.run("hostname").stdout == f"{a.name}\n"
    assert default.read_text() == a.known_hosts_line() + "\n"
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{a.port}", "-f", str(default)],
                           capture_output=True, text=True)
    assert found.returncode == 0 and a.host_key in found.stdout
    with open_connection(endpoint(a), SshOptions(use_agent=False)) as conn:
        assert conn.run("true").exit_status == 0
    assert default.read_text() == a.known_hosts_line() + "\n"       # recorded once


@pytest.mark.nodes
def test_accept_new_hashes_the_entry_in_a_hashed_file(nodes, tmp_path):
    a, b = nodes
    path = tmp_path / "known_hosts"
    path.write_text(b.known_hosts_line() + "\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    assert path.read_text().startswith("|1|")
    opts = SshOptions(known_hosts=path, accept_new_host_keys=True, use_agent=False)
    with open_connection(endpoint(a), opts):
        pass
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("|1|") and f"{a.port}" not in lines[1]
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{a.port}", "-f", str(path)],
                           capture_output=True, text=True)
    assert found.returncode == 0 and a.host_key.split()[1] in found.stdout
    with open_connection(endpoint(a), SshOptions(known_hosts=path, use_agent=False)):
        pass


@pytest.mark.nodes
def test_changed_host_key_is_rejected_even_with_accept_new(nodes, tmp_path):
    a, _ = nodes
    _, wrong = new_public_key()
    path = tmp_path / "known_hosts"
    text = f"# servers\n[127.0.0.1]:{a.port} {wrong}\n"
    path.write_text(text)
    for accept in (False, True):
        with pytest.raises(TransportError) as e:
            open_connection(endpoint(a), SshOptions(known_hosts=path, accept_new_host_keys=accept,
                                                    use_agent=False))
        assert e.value.kind == "host-key-changed"
        msg = e.value.message
        offered = fingerprint(base64.b64decode(a.host_key.split()[1]))
        recorded = fingerprint(base64.b64decode(wrong.split()[1]))
        assert f"[127.0.0.1]:{a.port}" in msg and offered in msg and recorded in msg
        assert f"{path} line 2" in msg and "ssh-keygen -R" in msg
    assert path.read_text() == text


# -- keys -------------------------------------------------------------------------------------

@pytest.fixture
def key_files(nodes, local_nodes, tmp_path) -> dict[str, Path]:
    """RSA, ECDSA and a passphrase-protected ed25519 key (passphrase "pp"), authorized for
    root on node b."""
    _, b = nodes
    found = {}
    for kind, extra in (("rsa", ["-t", "rsa", "-b", "2048", "-N", ""]), ("ecdsa", ["-t", "ecdsa", "-N", ""]),
                        ("encrypted", ["-t", "ed25519", "-N", "pp"])):
        path = tmp_path / f"id_{kind}"
        subprocess.run(["ssh-keygen", "-q", "-C", kind, "-f", str(path), *extra], check=True)
        found[kind] = path
    public = "".join(Path(f"{p}.pub").read_text() for p in found.values())
    local_nodes.exec_in(b.name, ["sh", "-c", "cat >> /root/.ssh/authorized_keys"], input=public, check=True)
    return found


@pytest.fixture
def ssh_agent(tmp_path, monkeypatch):
    """A real ssh-agent of this test (stopped by its pid); returns `add(key, passphrase)`."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))

        def add(key: Path, passphrase: str = "") -> None:
            askpass = tmp_path / "askpass"
            askpass.write_text(f"#!/bin/sh\necho '{passphrase}'\n")
            askpass.chmod(0o700)
            env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
            subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, stdin=subprocess.DEVNULL,
                           capture_output=True)
        yield add
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.nodes
def test_rsa_ecdsa_and_encrypted_key_files(nodes, options, key_files):
    _, b = nodes
    for kind in ("rsa", "ecdsa"):
        with open_connection(endpoint(b, private_key=str(key_files[kind])), options) as conn:
            assert conn.run("hostname").stdout == f"{b.name}\n"
    # The endpoint's password opens an encrypted key file (as SSHClient does).
    with open_connection(endpoint(b, private_key=str(key_files["encrypted"]), password="pp"), options) as conn:
        assert conn.run("true").exit_status == 0
    with pytest.raises(TransportError) as e:
        open_connection(endpoint(b, private_key=str(key_files["encrypted"])), options)
    assert e.value.kind == "auth" and "encrypted" in e.value.message
    with pytest.raises(TransportError) as e:
        open_connection(endpoint(b, private_key=str(key_files["rsa"]) + ".missing"), options)
    assert e.value.kind == "auth" and "does not exist" in e.value.message


@pytest.mark.nodes
def test_default_keys_and_the_agent_when_no_key_file_is_given(nodes, options, key_files, tmp_path,
                                                              monkeypatch, ssh_agent):
    _, b = nodes
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    no_key = Endpoint(b.host, b.port, "root")
    options = SshOptions(known_hosts=options.known_hosts, use_agent=True)
    # Nothing to offer: the agent is empty, ~/.ssh has no keys.
    with pytest.raises(TransportError) as e:
        open_connection(no_key, options)
    assert e.value.kind == "auth" and "no key or password to try" in e.value.message
    assert "no agent keys" in e.value.message
    # ~/.ssh/id_ecdsa is a default key.
    (home / ".ssh" / "id_ecdsa").write_bytes(key_files["ecdsa"].read_bytes())
    (home / ".ssh" / "id_ecdsa").chmod(0o600)
    with open_connection(no_key, options) as conn:
        assert conn.run("true").exit_status == 0
    (home / ".ssh" / "id_ecdsa").unlink()
    # The agent's keys, unless use_agent is off; an encrypted key file the agent holds.
    ssh_agent(key_files["encrypted"], "pp")
    with open_connection(no_key, options) as conn:
        assert conn.run("true").exit_status == 0
    with pytest.raises(TransportError) as e:
        open_connection(no_key, SshOptions(known_hosts=options.known_hosts, use_agent=False))
    assert e.value.kind == "auth" and "agent not used" in e.value.message
    with open_connection(endpoint(b, private_key=str(key_files["encrypted"])), options) as conn:
        assert conn.run("true").exit_status == 0


# -- connect faults --------------------------------------------------------------------------

@pytest.mark.nodes
def test_refused_key_is_an_auth_error_naming_user_and_key(nodes, options, tmp_path):
    a, _ = nodes
    private, _ = new_public_key()
    key = tmp_path / "stranger"
    key.write_bytes(private)
    key.chmod(0o600)
    start = time.monotonic()
    with pytest.raises(TransportError) as e:
        open_connection(endpoint(a, private_key=str(key)), options)
    assert e.value.kind == "auth"
    assert getattr(e.value, "attempts", 1) == 1          # never retried
    assert time.monotonic() - start < 3
    msg = e.value.message
    assert f"root@127.0.0.1:{a.port}" in msg and str(key) in msg and "publickey" in msg
    # A password the server does not accept for root (prohibit-password) is auth too.
    with pytest.raises(TransportError) as e:
        open_connection(Endpoint(a.host, a.port, "root", password="nope"), options)
    assert e.value.kind == "auth" and "password" in e.value.message


def test_closed_port_is_unreachable_quickly_after_the_retries(tmp_path):
    port = free_port()
    start = time.monotonic()
    with pytest.raises(TransportError) as e:
        open_connection(Endpoint("127.0.0.1", port), SshOptions(known_hosts=tmp_path / "kh", retries=2,
                                                                use_agent=False))
    elapsed = time.monotonic() - start
    assert e.value.kind == "unreachable" and e.value.attempts == 3
    assert f"127.0.0.1:{port}" in e.value.message and "3 attempts" in e.value.message
    assert 0.7 < elapsed < 2.0          # backoff 0.25 s + 0.5 s


def test_retries_are_counted_by_the_server_side(tmp_path):
    """A port that accepts and hangs up: each attempt is a real connection (counted by the
    listener); a port that accepts and never speaks is a timeout."""
    closing = Listener("close")
    try:
        with pytest.raises(TransportError) as e:
            open_connection(Endpoint("127.0.0.1", closing.port),
                            SshOptions(known_hosts=tmp_path / "kh", retries=3, use_agent=False))
        assert e.value.kind == "unreachable" and "handshake" in e.value.message
        assert closing.accepted == 4 and e.value.attempts == 4
    finally:
        closing.close()
    silent = Listener("hold")
    try:
        start = time.monotonic()
        with pytest.raises(TransportError) as e:
            open_connection(Endpoint("127.0.0.1", silent.port),
                            SshOptions(known_hosts=tmp_path / "kh", retries=1, connect_timeout=0.5,
                                       use_agent=False))
        assert e.value.kind == "timeout" and silent.accepted == 2
        assert time.monotonic() - start < 3
    finally:
        silent.close()


@pytest.mark.nodes
def test_connection_dropped_mid_exec(nodes, options, local_nodes):
    """The session's sshd is killed (from inside the node) while the bundle sleeps."""
    a, _ = nodes
    body = ('sshd_pid=$(ps -o ppid= -p "$PPID" | tr -d " "); echo "session $sshd_pid"; '
            'sleep 5; echo never')

    def on_line(line):
        if line.startswith("session "):
            pid = line.split()[1]
            assert "sshd" in local_nodes.exec_in(a.name, ["ps", "-o", "args=", "-p", pid]).stdout
            local_nodes.exec_in(a.name, ["kill", "-9", pid], check=True)

    conn = open_connection(endpoint(a), options)
    start = time.monotonic()
    try:
        with pytest.raises(TransportError) as e:
            conn.run_bundle(script(body), "run.sh", "bash", on_line=on_line)
        assert e.value.kind == "dropped" and "connection broke" in e.value.message
        assert e.value.result.stdout.startswith("session ")       # what came before
        assert time.monotonic() - start < 4
        # The connection is made again for the next use (nothing of it had run yet).
        assert conn.run("echo again").stdout == "again\n" and conn.reconnects == 1
    finally:
        conn.close()


@pytest.mark.nodes
def test_a_frozen_session_is_given_up_after_its_unanswered_keepalives(debian_nodes, local_nodes, tmp_path):
    """SIGSTOP on the session's sshd and everything under it: the kernel still ACKs, only a
    keepalive that needs a reply notices. 3 unanswered at 0.5 s apart: dropped within
    0.5 x 4 s (plus the load's slack), saying why; the next use connects again."""
    (node,) = debian_nodes(1, prefix="frz")
    known = tmp_path / "known_hosts"
    known.write_text(node.known_hosts_line() + "\n")
    opts = SshOptions(known_hosts=known, use_agent=False, keepalive_interval=0.5, keepalive_count=3)
    frozen: list[int] = []
    marks: dict[str, float] = {}

    def on_line(line):
        if line == "running":
            frozen.extend(freeze_sessions(local_nodes, node.name))
            marks["frozen"] = time.monotonic()

    conn = open_connection(endpoint(node), opts)
    try:
        with pytest.raises(TransportError) as e:
            conn.run_bundle(script("echo running; sleep 30; echo never"), "run.sh", "bash",
                            on_line=on_line)
        took = time.monotonic() - marks["frozen"]
        assert frozen, "nothing was frozen"
        assert e.value.kind == "dropped", e.value.message
        assert "stopped answering: no reply to 3 keepalive requests sent 0.5 s apart" in e.value.message
        assert 1.0 <= took < 2.0 + 4, took
        assert conn.run("echo back").stdout == "back\n" and conn.reconnects == 1
    finally:
        thaw(local_nodes, node.name, frozen)
        conn.close()


@pytest.mark.nodes
def test_one_thread_times_every_keepalive_and_a_frozen_node_holds_up_no_other(debian_nodes, local_nodes, tmp_path):
    """The keepalives of all connections are timed by one thread (runtime/heartbeat.py). While
    one node is frozen and given up on, the other connection's keepalives (0.5 s apart, 3
    unanswered drop it) are still sent and answered: its 3 s bundle ends well, unbroken."""
    frz, live = debian_nodes(2, prefix="kpa")
    known = tmp_path / "known_hosts"
    known.write_text(frz.known_hosts_line() + "\n" + live.known_hosts_line() + "\n")
    opts = SshOptions(known_hosts=known, use_agent=False, keepalive_interval=0.5, keepalive_count=3)
    frozen: list[int] = []

    def on_line(line):
        if line == "running":
            frozen.extend(freeze_sessions(local_nodes, frz.name))

    a, b = open_connection(endpoint(frz), opts), open_connection(endpoint(live), opts)
    try:
        assert [t.name for t in threading.enumerate()].count("pallet-keepalive") == 1
        with cf.ThreadPoolExecutor(1) as pool:
            other = pool.submit(b.run_bundle, script("sleep 3; echo alive"), "run.sh", "bash")
            with pytest.raises(TransportError) as e:
                a.run_bundle(script("echo running; sleep 30; echo never"), "run.sh", "bash",
                             on_line=on_line)
            result = other.result(timeout=30)
        assert frozen, "nothing was frozen"
        assert "stopped answering: no reply to 3 keepalive requests" in e.value.message
        assert result.exit_status == 0 and result.stdout == "alive\n" and b.reconnects == 0
    finally:
        thaw(local_nodes, frz.name, frozen)
        a.close()
        b.close()


@pytest.mark.nodes
def test_a_handshake_slower_than_the_connect_timeout_is_a_retried_timeout(nodes, tmp_path):
    """250 ms each way (a delaying proxy): with --connect-timeout 0.4 the key exchange cannot
    finish in time. That is a typed, retried timeout naming the step, never paramiko's
    `No existing session`; with a timeout that allows it, the same link works."""
    a, _ = nodes
    proxy = DelayProxy(a.port, 0.25)
    try:
        known = tmp_path / "known_hosts"
        known.write_text(a.known_hosts_line().replace(f"]:{a.port} ", f"]:{proxy.port} ") + "\n")
        slow = Endpoint("127.0.0.1", proxy.port, private_key=a.private_key)
        with pytest.raises(TransportError) as e:
            open_connection(slow, SshOptions(known_hosts=known, use_agent=False, connect_timeout=0.4,
                                             retries=1))
        assert e.value.kind == "timeout" and e.value.attempts == 2, e.value.message
        assert "no SSH banner or handshake within 0.4 s (2 attempts)" in e.value.message
        assert "No existing session" not in e.value.message
        with open_connection(slow, SshOptions(known_hosts=known, use_agent=False,
                                              connect_timeout=5)) as conn:
            assert conn.run("echo slow").stdout == "slow\n"
    finally:
        proxy.close()


@pytest.mark.nodes
def test_a_connection_broken_between_uses_is_made_again_with_retries(debian_nodes, local_nodes, tmp_path):
    """The node reboots between two uses: the next use connects again. While the node is
    down, the error is the connect's own (unreachable, its attempts) and says what broke."""
    (node,) = debian_nodes(1, prefix="rbt")
    known = tmp_path / "known_hosts"
    known.write_text(node.known_hosts_line() + "\n")
    opts = SshOptions(known_hosts=known, use_agent=False, retries=1)
    with open_connection(endpoint(node), opts) as conn:
        assert conn.run("echo one").stdout == "one\n"
        reboot(local_nodes, node.name)
        assert conn.run_bundle(script("echo two"), "run.sh", "bash").stdout == "two\n"
        assert conn.reconnects == 1
        os.kill(local_nodes.get(node.name).init_pid, 9)          # down, and it stays down
        deadline = time.monotonic() + 10
        while local_nodes.get(node.name).running and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(TransportError) as e:
            conn.run("echo three")
        assert e.value.kind == "unreachable" and e.value.attempts == 2, e.value.message
        assert "the connection broke since its last use, and connecting again failed" in e.value.message
        assert "refused the connection" in e.value.message and "(2 attempts)" in e.value.message
        local_nodes.start(node.name)
        assert conn.run("echo four").stdout == "four\n" and conn.reconnects == 2
        conn.close()             # closed by its user (Ctrl-C): never made again
        with pytest.raises(TransportError) as e:
            conn.run("echo five")
        assert e.value.kind == "dropped" and "the connection is closed" in e.value.message
        assert conn.reconnects == 2


# -- phase timeout ---------------------------------------------------------------------------

def node_processes(local_nodes, node) -> list[str]:
    """Every process of the node but its init, sshd and this ps (the node's own PID namespace)."""
    out = local_nodes.exec_in(node.name, ["ps", "-e", "-o", "pid=,args="], check=True).stdout
    return [line.strip() for line in out.splitlines()
            if not re.search(r"^\s*1 |sshd|ps -e -o", line)]


def left_on_node(local_nodes, node, before: set[str]) -> set[str]:
    """The node's processes that were not there `before`, once they are gone or 3 s have
    passed: a process killed a moment ago may still be ending, or a zombie (`<defunct>`)
    that the node's init has not reaped yet, when the call that killed it has returned."""
    deadline = time.monotonic() + 3
    while True:
        left = set(node_processes(local_nodes, node)) - before
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.mark.nodes
@pytest.mark.parametrize("how", ["inline", "tar", "sudo", "ignores TERM"])
def test_a_bundle_out_of_time_is_stopped_on_the_node(nodes, options, local_nodes, how):
    """A 120 s step with a 2 s limit: the call fails with `timeout` in seconds, with what the
    bundle printed, and nothing of the bundle is left on the node: no process (the step's
    sleep, a child it put in the background, the watchdog's own sleep) and no directory."""
    a, _ = nodes
    body = 'echo "dir=$PALLET_BUNDLE_DIR"; sleep 123 & sleep 120; echo never'
    files = script(("trap '' TERM; " if how == "ignores TERM" else "") + body)
    if how in ("tar", "ignores TERM"):
        files["files/nul"] = b"\0"           # a NUL byte: the tar stream, not sh -s
    user = "deploy" if how == "sudo" else "root"
    before = set(node_processes(local_nodes, a))     # what earlier tests left running
    with open_connection(endpoint(a, user=user), options) as conn:
        start = time.monotonic()
        with pytest.raises(TransportError) as e:
            conn.run_bundle(files, "run.sh", "bash", timeout=2)
        took = time.monotonic() - start
        assert e.value.kind == "timeout", e.value.message
        assert "ran longer than the phase timeout of 2 s" in e.value.message, e.value.message
        assert e.value.result.stdout.startswith("dir=/tmp/pallet-bundle.")
        assert "pallet-timeout" not in e.value.result.stderr
        assert took < 2 + 2 + 2, took               # the limit, TERM's grace, some slack
        assert left_on_node(local_nodes, a, before) == set()
        assert e.value.result.stdout.split("=")[1].strip() not in conn.run("ls -d /tmp/*").stdout
        # The connection still serves, and a bundle that ends in time is left alone.
        result = conn.run_bundle(script("sleep 0.2; echo in time"), "run.sh", "bash", timeout=2)
        assert result.stdout == "in time\n" and result.exit_status == 0
        assert left_on_node(local_nodes, a, before) == set()


# -- sudo ------------------------------------------------------------------------------------

ID_BUNDLE = script('echo "uid=$(id -u) dir=$PALLET_BUNDLE_DIR"')


def _uid_and_dir(result) -> tuple[str, str]:
    fields = dict(kv.split("=", 1) for kv in result.stdout.split())
    return fields["uid"], fields["dir"]


@pytest.mark.nodes
def test_passwordless_sudo_runs_the_bundle_as_root(nodes, options):
    a, _ = nodes
    with open_connection(endpoint(a, user="deploy"), options) as conn:
        assert conn.run("id -un").stdout == "deploy\n"       # run() is the login user
        result = conn.run_bundle(ID_BUNDLE, "run.sh", "bash")
        assert result.exit_status == 0 and result.stderr == "", result.stderr
        uid, where = _uid_and_dir(result)
        assert uid == "0"
        assert conn.run(f"sudo -n test -e {where}").exit_status == 1
    # A sudo password given for a NOPASSWD user is never asked for, and harmless.
    with open_connection(endpoint(a, user="deploy", sudo_password="unused"), options) as conn:
        assert _uid_and_dir(conn.run_bundle(ID_BUNDLE, "run.sh", "bash"))[0] == "0"


@pytest.mark.nodes
def test_sudo_password_is_fed_on_stdin_and_required(nodes, options, tmp_path):
    a, _ = nodes
    files, name = compile_tiny(tmp_path, "/var/tmp/pallet-ops")
    with open_connection(endpoint(a, user="ops", sudo_password=SUDO_PASSWORD), options) as conn:
        result = conn.run_bundle(ID_BUNDLE, "run.sh", "bash")
        assert result.exit_status == 0 and _uid_and_dir(result)[0] == "0"
        assert SUDO_PASSWORD not in result.stdout + result.stderr
        assert "pallet-sudo-prompt" not in result.stderr
        compiled = conn.run_bundle(files, name, "bash")              # the tar stream after the password
        assert pallet_lines(compiled.stdout)[-1] == "PALLET-SUMMARY ok=0 changed=2 failed=0", compiled
    with open_connection(endpoint(a, user="ops"), options) as conn:
        with pytest.raises(TransportError) as e:
            conn.run_bundle(ID_BUNDLE, "run.sh", "bash")
        assert e.value.kind == "sudo"
        assert "ops" in e.value.message and "sudo password" in e.value.message
    with open_connection(endpoint(a, user="ops", sudo_password="wrong"), options) as conn:
        with pytest.raises(TransportError) as e:
            conn.run_bundle(ID_BUNDLE, "run.sh", "bash")
        assert e.value.kind == "sudo" and "refused the sudo password" in e.value.message
        assert "wrong" not in e.value.message
    with open_connection(endpoint(a, user="nosudo"), options) as conn:
        with pytest.raises(TransportError) as e:
            conn.run_bundle(ID_BUNDLE, "run.sh", "bash")
        assert e.value.kind == "sudo" and "nosudo" in e.value.message
    with open_connection(endpoint(a), options) as conn:
        conn.run("rm -rf /var/tmp/pallet-ops")


# -- jump host -------------------------------------------------------------------------------

@pytest.mark.nodes
def test_jump_host_reaches_the_inner_node(nodes, options):
    a, b = nodes
    via_a = endpoint(b, jump=endpoint(a))
    with open_connection(via_a, options) as conn:
        assert conn.run("hostname").stdout == f"{b.name}\n"
        result = conn.run_bundle(script("echo PALLET-SUMMARY ok=0 changed=0 failed=0; hostname"),
                                 "run.sh", "bash")
        assert result.stdout == f"PALLET-SUMMARY ok=0 changed=0 failed=0\n{b.name}\n"
    closed = Endpoint("127.0.0.1", free_port(), jump=endpoint(a))
    with pytest.raises(TransportError) as e:
        open_connection(closed, SshOptions(known_hosts=options.known_hosts, retries=0, use_agent=False))
    assert e.value.kind == "unreachable" and f"jump host 127.0.0.1:{a.port}" in e.value.message


@pytest.mark.nodes
def test_jump_host_key_is_checked_too(nodes, tmp_path):
    a, b = nodes
    path = tmp_path / "known_hosts"
    path.write_text(b.known_hosts_line() + "\n")           # the inner node only
    with pytest.raises(TransportError) as e:
        open_connection(endpoint(b, jump=endpoint(a)), SshOptions(known_hosts=path, use_agent=False))
    assert e.value.kind == "host-key-unknown" and e.value.message.startswith(f"jump host root@127.0.0.1:{a.port}")


# -- OS detection ----------------------------------------------------------------------------

@pytest.mark.nodes
def test_detect_os_on_a_node(nodes, options, local_nodes):
    a, b = nodes
    with open_connection(endpoint(a), options) as conn:
        assert detect_os(conn) == OsFacts("debian", "12", platform.machine())
    local_nodes.exec_in(b.name, ["sh", "-c", "cp -P /etc/os-release /root/os-release.saved && "
                                 "rm /etc/os-release && printf 'ID=plan9\\nVERSION_ID=4\\n' > /etc/os-release"],
                        check=True)
    try:
        with open_connection(endpoint(b), options) as conn:
            with pytest.raises(PalletError, match=r"unknown OS on 127.0.0.1: its /etc/os-release says ID=plan9"):
                detect_os(conn)
    finally:
        local_nodes.exec_in(b.name, ["sh", "-c", "rm /etc/os-release && mv /root/os-release.saved /etc/os-release"],
                            check=True)


@pytest.mark.parametrize("release, family, version", [
    ('ID=debian\nVERSION_ID="12"\n', "debian", "12"),
    ('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n', "ubuntu", "22.04"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n', "rocky", "9"),
    ('ID="almalinux"\nVERSION_ID="9.4"\n', "alma", "9"),
    ('ID="rhel"\nVERSION_ID="8.9"\n', "rhel", "8"),
    ('ID="centos"\nVERSION_ID="9"\n', "centos", "9"),
    ('ID="amzn"\nVERSION_ID="2023"\n', "amzn", "2023"),
    ("ID=alpine\nVERSION_ID=3.20.3\n", "alpine", "3.20"),
    ("ID=arch\nBUILD_ID=rolling\n", "arch", None),
    ('ID="opensuse-leap"\nVERSION_ID="15.5"\n', "opensuse", "15"),
    ('ID="opensuse-tumbleweed"\nVERSION_ID="20240101"\n', "opensuse", "tumbleweed"),
    ('ID="sles"\nVERSION_ID="15.5"\n', "sles", "15"),
    ("ID=fedora\nVERSION_ID=40\n", "fedora", "40"),
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="21.3"\n', "ubuntu", None),
])
def test_os_release_mapping(release, family, version):
    assert os_facts(parse_os_release(release), "x86_64") == OsFacts(family, version, "x86_64")


def test_unknown_os_release():
    assert os_facts(parse_os_release("ID=plan9\n"), "x86_64") is None


# -- the local transport ---------------------------------------------------------------------

def test_local_transport_runs_the_same_bundle(tmp_path):
    target = tmp_path / "made"
    files, name = compile_tiny(tmp_path, str(target))
    seen: list[str] = []
    conn = open_connection(Endpoint("localhost", local=True), SshOptions())
    assert isinstance(conn, LocalConnection)
    with conn:
        if os.geteuid() != 0:
            pytest.skip("the local transport runs bundles as root (sudo -n for another user)")
        first = conn.run_bundle(files, name, "bash", on_line=seen.append)
        assert first.exit_status == 0, first.stderr
        assert pallet_lines(first.stdout) == [
            f"PALLET-ACTION 1 changed directory {target}",
            f"PALLET-ACTION 2 changed remote-file {target}/hello.txt",
            "PALLET-SUMMARY ok=0 changed=2 failed=0"]
        assert seen == first.stdout.splitlines()
        assert (target / "hello.txt").read_text() == "hello\n"
        assert stat.S_IMODE((target / "hello.txt").stat().st_mode) == 0o640
        second = conn.run_bundle(files, name, "bash")
        assert pallet_lines(second.stdout)[-1] == "PALLET-SUMMARY ok=2 changed=0 failed=0"
        probe = conn.run_bundle(script('echo "$PALLET_BUNDLE_DIR"; exit 4'), "run.sh", "sh")
        assert probe.exit_status == 4
        assert not Path(probe.stdout.strip()).exists()
        assert conn.run("echo out; echo err >&2; exit 2") == type(probe)(2, "out\n", "err\n")


def test_local_transport_streams_lines(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the local transport runs bundles as root")
    at: dict[str, float] = {}
    with LocalConnection() as conn:
        start = time.monotonic()
        conn.run_bundle(script("echo first; sleep 1; echo second"), "run.sh", "sh",
                        on_line=lambda line: at.setdefault(line, time.monotonic() - start))
        end = time.monotonic() - start
    assert list(at) == ["first", "second"] and at["first"] < end - 0.7


# -- the SSH helper process ------------------------------------------------------------------

HELPER_SCRIPT = r'''
import json, os, sys
from pallet.runtime.ssh_process import SshProcess
helper = SshProcess.start()          # first, as `pallet lift` does
from pallet.runtime.model import Endpoint, SshOptions, TransportError
host, port, key, known, empty, closed, bundle = sys.argv[1:]
manifest = json.loads(open(os.path.join(bundle, "manifest.json")).read())
files = {n: open(os.path.join(bundle, n), "rb").read() for n in manifest["files"]}
out = {}
conn = helper.connect(Endpoint(host, int(port), "root", private_key=key),
                      SshOptions(known_hosts=known, use_agent=False))
lines = []
first = conn.run_bundle(files, manifest["script"], "bash", on_line=lines.append)
out["first"] = [first.exit_status, first.stdout, lines]
out["second"] = conn.run_bundle(files, manifest["script"], "bash").stdout.splitlines()[-1]
out["run"] = conn.run("cat /var/tmp/pallet-helper/hello.txt; echo err >&2; exit 4").__dict__
for what, endpoint, options in (
        ("unknown", Endpoint(host, int(port), "root", private_key=key), SshOptions(known_hosts=empty, use_agent=False)),
        ("closed", Endpoint("127.0.0.1", int(closed), "root", private_key=key), SshOptions(known_hosts=known, use_agent=False, retries=1))):
    try:
        helper.connect(endpoint, options)
    except TransportError as e:
        out[what] = [e.kind, getattr(e, "attempts", None), e.message]
conn.run("rm -rf /var/tmp/pallet-helper")
os.kill(helper.pid, 9)               # the helper dies: calls fail, they do not hang
try:
    conn.run("true")
except TransportError as e:
    out["dead"] = e.kind
helper.shutdown()
out["paramiko here"] = "paramiko" in sys.modules
print(json.dumps(out))
'''


@pytest.mark.nodes
def test_the_ssh_helper_process_connects_runs_and_fails_like_the_transport(nodes, known_hosts, tmp_path):
    """`pallet lift` makes its connections in a forked helper process (runtime/ssh_process.py):
    the same bundles, streamed lines, results and errors as the transport in this process,
    and this process never imports paramiko."""
    import json
    a, _ = nodes
    compile_tiny(tmp_path, "/var/tmp/pallet-helper")
    (tmp_path / "empty").write_text("")
    args = [a.host, str(a.port), a.private_key, str(known_hosts), str(tmp_path / "empty"),
            str(free_port()), str(tmp_path / "out" / "tiny" / "configure")]
    proc = subprocess.run([sys.executable, "-c", HELPER_SCRIPT, *args], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    status, stdout, lines = out["first"]
    assert status == 0 and lines == stdout.splitlines()
    assert pallet_lines(stdout)[-1] == "PALLET-SUMMARY ok=0 changed=2 failed=0"
    assert out["second"] == "PALLET-SUMMARY ok=2 changed=0 failed=0"
    assert out["run"] == {"exit_status": 4, "stdout": "hello\n", "stderr": "err\n"}
    assert out["unknown"][0] == "host-key-unknown" and "--accept-new-host-keys" in out["unknown"][2]
    assert out["closed"][:2] == ["unreachable", 2]
    assert out["dead"] == "dropped"
    assert out["paramiko here"] is False


# -- the inline bundle (no tar) ----------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=400).filter(lambda b: b"\0" not in b),
       text=st.text(max_size=100).filter(lambda t: "\0" not in t))
def test_an_inline_bundle_writes_every_byte(tmp_path_factory, data, text):
    """What `sh -s` unpacks is byte for byte what was sent (quotes, $, backslashes, bytes that
    are not UTF-8, newlines at the end), and the private directory is gone afterwards."""
    tmp = tmp_path_factory.mktemp("inline")
    check = 'cat files/a > "$OUT/a"; cat "files/b c" > "$OUT/b"; stat -c %a "$PALLET_BUNDLE_DIR" > "$OUT/mode"; echo "$PALLET_BUNDLE_DIR" > "$OUT/dir"\n'
    files = {"run.sh": check.encode(), "files/a": data, "files/b c": text.encode()}
    exchange, payload, _ = prepare_bundle(files, "run.sh", "sh", is_root=True, sudo_password=None,
                                          where="here")
    assert exchange.argv == ["sh", "-s"]
    proc = subprocess.run(exchange.argv, input=payload, capture_output=True,
                          env={**os.environ, "OUT": str(tmp), "TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stderr
    assert (tmp / "a").read_bytes() == data and (tmp / "b").read_bytes() == text.encode()
    assert (tmp / "mode").read_text() == "700\n"
    assert not Path((tmp / "dir").read_text().strip()).exists()


def test_an_inline_bundle_cut_short_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    files = {"run.sh": f"touch {marker}\n".encode(), "files/x": b"x" * 1000}
    _, payload, _ = prepare_bundle(files, "run.sh", "sh", is_root=True, sudo_password=None,
                                   where="here")
    for cut in (10, len(payload) // 2, len(payload) - 60, len(payload) - 2):
        proc = subprocess.run(["sh", "-s"], input=payload[:cut], capture_output=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
        assert proc.returncode != 0 and not marker.exists(), cut
    assert subprocess.run(["sh", "-s"], input=payload, env={**os.environ, "TMPDIR": str(tmp_path)}
                          ).returncode == 0 and marker.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ran"]


def test_bundles_with_nul_bytes_large_ones_and_sudo_travel_as_tar():
    small = {"run.sh": b"true\n"}
    for files, root in (({**small, "files/bin": b"\0\1"}, True),
                        ({**small, "files/big": b"x" * GZIP_FROM}, True), (small, False)):
        exchange, payload, _ = prepare_bundle(files, "run.sh", "bash", is_root=root,
                                              sudo_password=None, where="here")
        assert exchange.argv[-2] == "-c" and "tar -x" in exchange.argv[-1]
