"""Host keys as OpenSSH checks them: plain keys, @revoked, @cert-authority and host
certificates, hashed names and [host]:port forms.

The matrix runs real `ssh -o StrictHostKeyChecking=yes` and Pallet's transport against the
same sshd servers (on a local node, each with its own HostCertificate made by real
`ssh-keygen -s ... -h -n ... -V ...`) and the same known_hosts file, and asserts that both
give the same answer, the one expected, and that a refusal leaves the file byte-identical.
The certificate checks themselves are also tested without nodes.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from pallet.runtime.host_certs import certificate_problem, parse_certificate
from pallet.runtime.known_hosts import host_key_order, read_known_hosts
from pallet.runtime.model import Endpoint, SshOptions, TransportError
from pallet.runtime.transport import SshConnection

HOST = "127.0.0.1"


def keygen(*args: str, cwd: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], cwd=cwd, check=True, capture_output=True, text=True)


def make_key(directory: Path, name: str, kind: str = "ed25519") -> Path:
    path = directory / name
    keygen("-t", kind, *(["-b", "2048"] if kind == "rsa" else []), "-N", "", "-C", name,
           "-f", str(path), cwd=directory)
    return path


def sign(directory: Path, ca: Path, public: str, name: str, *options: str) -> Path:
    """A certificate of `public` made by `ssh-keygen -s ca OPTIONS`: NAME-cert.pub."""
    (directory / f"{name}.pub").write_text(public + "\n")
    keygen("-s", str(ca), "-I", f"{name}-id", *options, f"{name}.pub", cwd=directory)
    return directory / f"{name}-cert.pub"


def public_of(path: Path) -> str:
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


def cert_blob(path: Path) -> bytes:
    return base64.b64decode(path.read_text().split()[1])


# -- the certificate checks, without nodes ---------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    ca, host = make_key(d, "ca"), make_key(d, "host")
    rsa_ca = make_key(d, "rsa_ca", "rsa")
    pub = public_of(host)
    made = {
        "valid": sign(d, ca, pub, "valid", "-h", "-n", "web.example,127.0.0.1", "-V", "-5m:+1h", "-z", "42"),
        "expired": sign(d, ca, pub, "expired", "-h", "-n", HOST, "-V", "20200101:20200102"),
        "future": sign(d, ca, pub, "future", "-h", "-n", HOST, "-V", "+1d:+2d"),
        "user": sign(d, ca, pub, "user", "-n", HOST),
        "anyhost": sign(d, ca, pub, "anyhost", "-h"),
        "rsa": sign(d, rsa_ca, pub, "rsa", "-h", "-n", HOST),
        "sha1": sign(d, rsa_ca, pub, "sha1", "-h", "-n", HOST, "-t", "ssh-rsa"),
    }
    return d, ca, host, made


def test_a_certificate_is_read_field_by_field(certs):
    d, ca, host, made = certs
    cert = parse_certificate(cert_blob(made["valid"]))
    assert cert.keytype == "ssh-ed25519" and cert.cert_type == 2 and cert.serial == 42
    assert cert.key_id == "valid-id" and cert.principals == ("web.example", HOST)
    assert cert.key_blob == base64.b64decode(public_of(host).split()[1])
    assert cert.ca_blob == base64.b64decode(public_of(ca).split()[1])
    assert cert.valid_before - cert.valid_after == 65 * 60
    assert parse_certificate(cert_blob(made["anyhost"])).valid_before == 2**64 - 1


def test_what_a_certificate_vouches_for(certs):
    _, _, _, made = certs
    now = time.time()

    def problem(name, host=HOST, at=now):
        return certificate_problem(parse_certificate(cert_blob(made[name])), host, at)

    assert problem("valid") is None and problem("valid", "WEB.example") is None
    assert problem("valid", "db.example") == "it names the principals web.example, 127.0.0.1, not db.example"
    assert problem("valid", at=now + 7200).startswith("it expired at ")
    assert problem("expired") == "it expired at 2020-01-02 00:00:00 UTC"
    assert problem("future").startswith("it is not valid before ")
    assert problem("user") == "it is a user certificate, not a host certificate"
    assert problem("anyhost", "anything.example") is None      # no principals: any host
    assert problem("rsa") is None                               # an RSA CA, rsa-sha2-512
    assert problem("sha1") == "its CA signed it with ssh-rsa, which OpenSSH refuses by default"


def test_a_tampered_certificate_does_not_verify(certs):
    _, _, _, made = certs
    blob = bytearray(cert_blob(made["valid"]))
    at = bytes(blob).index(b"web.example")
    blob[at:at + 3] = b"WEB"
    assert certificate_problem(parse_certificate(bytes(blob)), "WEB.example", time.time()) == \
        "its CA signature does not verify"


def test_host_key_algorithms_are_asked_for_in_openssh_order(tmp_path, certs):
    d, ca, host, _ = certs
    kh = tmp_path / "kh"
    kh.write_text(f"@cert-authority web.* {public_of(ca)}\n"
                  f"web.example {Path(str(host) + '.pub').read_text()}"
                  f"rsa.example ssh-rsa {base64.b64encode(b'x').decode()}\n")
    order = host_key_order(read_known_hosts(kh, "web.example")[0])
    assert order[:7] == ("ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
                         "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
                         "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
                         "ssh-ed25519")
    rsa = host_key_order(read_known_hosts(kh, "rsa.example")[0])
    assert rsa[:2] == ("rsa-sha2-512", "rsa-sha2-256") and rsa[2].endswith("-cert-v01@openssh.com")
    assert host_key_order([])[0] == "ssh-ed25519-cert-v01@openssh.com"


# -- the matrix against real OpenSSH on a local node -----------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_banner(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                if s.recv(8).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"no sshd on port {port}")


@dataclass(frozen=True)
class Server:
    port: int


@dataclass(frozen=True)
class Row:
    name: str
    server: str                       # which sshd: "plain" or a certificate's name
    known_hosts: Callable[[dict], str]   # the file's text, from the facts
    accepts: bool                     # what OpenSSH does (asserted, so the matrix is meaningful)
    accept_new: bool = False          # StrictHostKeyChecking=accept-new / --accept-new-host-keys


def name(port: int) -> str:
    return f"[{HOST}]:{port}"


ROWS = [
    Row("plain key known", "plain", lambda f: f"{name(f['plain'])} {f['host']}\n", True),
    Row("plain key known, hashed name", "plain", lambda f: f"{name(f['plain'])} {f['host']}\n", True),
    Row("plain key known by a pattern [127.0.0.1]:*", "plain", lambda f: f"[{HOST}]:* {f['host']}\n", True),
    Row("plain key for the host without its port", "plain", lambda f: f"{HOST} {f['host']}\n", True),
    Row("plain key for the host without its port, another under the port", "plain",
        lambda f: f"{HOST} {f['host']}\n{name(f['plain'])} {f['stranger']}\n", False),
    Row("unknown", "plain", lambda f: f"{name(f['other'])} {f['host']}\n", False),
    Row("changed", "plain", lambda f: f"{name(f['plain'])} {f['stranger']}\n", False),
    Row("revoked (and known)", "plain",
        lambda f: f"{name(f['plain'])} {f['host']}\n@revoked * {f['host']}\n", False),
    Row("CA-signed", "valid", lambda f: f"@cert-authority {name(f['valid'])} {f['ca']}\n", True),
    Row("CA-signed, hashed name", "valid", lambda f: f"@cert-authority {name(f['valid'])} {f['ca']}\n", True),
    Row("CA-signed, CA for every host (*)", "valid", lambda f: f"@cert-authority * {f['ca']}\n", True),
    Row("CA-signed, CA for the host without its port", "valid",
        lambda f: f"@cert-authority {HOST} {f['ca']}\n", True),
    Row("CA-signed by an RSA CA", "rsa", lambda f: f"@cert-authority * {f['rsa_ca']}\n", True),
    Row("CA-signed, no principals (any host)", "anyhost", lambda f: f"@cert-authority * {f['ca']}\n", True),
    Row("CA-signed, principal pattern 127.0.0.*", "wildcard", lambda f: f"@cert-authority * {f['ca']}\n", False),
    Row("CA-signed, CA revoked", "valid",
        lambda f: f"@cert-authority * {f['ca']}\n@revoked * {f['ca']}\n", False),
    Row("CA-signed, host key revoked", "valid",
        lambda f: f"@cert-authority * {f['ca']}\n@revoked * {f['host']}\n", False),
    Row("CA-signed, a different plain key recorded", "valid",
        lambda f: f"@cert-authority * {f['ca']}\n{name(f['valid'])} {f['stranger']}\n", True),
    Row("signed by another CA", "valid", lambda f: f"@cert-authority * {f['ca2']}\n", False),
    Row("signed by another CA, plain key known", "valid",
        lambda f: f"@cert-authority * {f['ca2']}\n{name(f['valid'])} {f['host']}\n", True),
    Row("certificate, no CA line, unknown", "valid", lambda f: "", False),
    Row("expired certificate", "expired", lambda f: f"@cert-authority * {f['ca']}\n", False),
    Row("expired certificate, plain key known", "expired",
        lambda f: f"@cert-authority * {f['ca']}\n{name(f['expired'])} {f['host']}\n", True),
    Row("certificate not yet valid", "future", lambda f: f"@cert-authority * {f['ca']}\n", False),
    Row("wrong principal", "wrongname", lambda f: f"@cert-authority * {f['ca']}\n", False),
    Row("user certificate, not a host one", "user", lambda f: f"@cert-authority * {f['ca']}\n", False),
    Row("CA signature with SHA-1 (ssh-rsa)", "sha1", lambda f: f"@cert-authority * {f['rsa_ca']}\n", False),
    Row("accept-new: unknown is recorded", "plain", lambda f: "", True, accept_new=True),
    Row("accept-new: certificate by another CA, plain key recorded", "valid",
        lambda f: f"@cert-authority * {f['ca2']}\n", True, accept_new=True),
    Row("accept-new: changed", "plain", lambda f: f"{name(f['plain'])} {f['stranger']}\n", False,
        accept_new=True),
]


@pytest.fixture(scope="module")
def servers(debian_nodes, local_nodes, tmp_path_factory):
    """One local node running, beside its own sshd ("plain"), one sshd per certificate."""
    (node,) = debian_nodes(1, prefix="hk")
    d = tmp_path_factory.mktemp("hostcerts")
    ca, ca2, stranger = (make_key(d, n) for n in ("ca", "ca2", "stranger"))
    rsa_ca = make_key(d, "rsa_ca", "rsa")
    host = node.host_key
    certs = {
        "valid": ("-h", "-n", f"web.example,{HOST}", "-V", "-5m:+1h"),
        "anyhost": ("-h", "-V", "-5m:+1h"),
        "wildcard": ("-h", "-n", "127.0.0.*", "-V", "-5m:+1h"),
        "expired": ("-h", "-n", HOST, "-V", "20200101:20200102"),
        "future": ("-h", "-n", HOST, "-V", "+1d:+2d"),
        "wrongname": ("-h", "-n", "db.example", "-V", "-5m:+1h"),
        "user": ("-n", HOST, "-V", "-5m:+1h"),
    }
    made = {n: sign(d, ca, host, n, *opts) for n, opts in certs.items()}
    made["rsa"] = sign(d, rsa_ca, host, "rsa", "-h", "-n", HOST)
    made["sha1"] = sign(d, rsa_ca, host, "sha1", "-h", "-n", HOST, "-t", "ssh-rsa")
    facts = {"plain": node.port, "other": free_port(), "host": host, "ca": public_of(ca),
             "ca2": public_of(ca2), "rsa_ca": public_of(rsa_ca), "stranger": public_of(stranger)}
    for cert_name, path in made.items():
        port = free_port()
        remote = f"/etc/ssh/{cert_name}-cert.pub"
        local_nodes.exec_in(node.name, ["sh", "-c", f"cat > {remote}"], input=path.read_text(), check=True)
        local_nodes.exec_in(node.name, ["/usr/sbin/sshd", "-p", str(port), "-o", f"HostCertificate={remote}",
                                        "-o", f"PidFile=/run/sshd-{cert_name}.pid"], check=True)
        facts[cert_name] = port
    for cert_name in made:
        wait_for_banner(facts[cert_name])
    return node, facts


def openssh_answer(node, port: int, kh: Path, home: Path, accept_new: bool) -> tuple[bool, str]:
    strict = "accept-new" if accept_new else "yes"
    proc = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", f"StrictHostKeyChecking={strict}", "-o", f"UserKnownHostsFile={kh}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", "CheckHostIP=no", "-o", "ConnectTimeout=10", "-i", node.private_key, "-p", str(port),
         f"root@{HOST}", "echo", "in"],
        capture_output=True, text=True, timeout=30,
        env={"PATH": os.environ["PATH"], "HOME": str(home)})
    if proc.returncode == 0 and proc.stdout == "in\n":
        return True, ""
    assert proc.returncode == 255 and "Host key verification failed" in proc.stderr, proc.stderr
    return False, proc.stderr.strip().splitlines()[-2] if proc.stderr.count("\n") > 1 else proc.stderr.strip()


def pallet_answer(node, port: int, kh: Path, accept_new: bool) -> tuple[bool, str]:
    endpoint = Endpoint(HOST, port, "root", private_key=node.private_key)
    options = SshOptions(known_hosts=kh, accept_new_host_keys=accept_new, retries=0, use_agent=False)
    try:
        with SshConnection.open(endpoint, options) as conn:
            assert conn.run("echo in").stdout == "in\n"
        return True, ""
    except TransportError as e:
        assert e.kind in ("host-key-unknown", "host-key-changed"), e.message
        return False, f"{e.kind}: {e.message}"


def hashed_name(host: str) -> str:
    """A known_hosts name hashed as OpenSSH hashes it: |1|salt|HMAC-SHA1(salt, name)."""
    salt = os.urandom(20)
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def write_known_hosts(path: Path, text: str, hashed: bool) -> None:
    path.write_text(text)
    if hashed:
        # Plain lines hashed by OpenSSH itself; ssh-keygen -H leaves marked lines alone.
        keygen("-H", "-f", str(path), cwd=path.parent)
        Path(f"{path}.old").unlink()
        lines = [line.split(" ", 2) for line in path.read_text().splitlines()]
        path.write_text("".join(f"{m} {hashed_name(h)} {k}\n" if m.startswith("@") else " ".join((m, h, k)) + "\n"
                                for m, h, k in lines))
        assert "|1|" in path.read_text() and HOST not in path.read_text()


@pytest.mark.nodes
def test_host_keys_are_accepted_exactly_when_openssh_accepts_them(servers, tmp_path, capsys):
    node, facts = servers
    assert shutil.which("ssh"), "the OpenSSH client (openssh-client) is needed"

    def answer(index: int, row: Row, who: str):
        kh = tmp_path / f"{who}-{index}" / "known_hosts"
        kh.parent.mkdir()
        write_known_hosts(kh, row.known_hosts(facts), "hashed" in row.name)
        before = kh.read_bytes()
        port = facts[row.server]
        if who == "openssh":
            accepted, said = openssh_answer(node, port, kh, tmp_path, row.accept_new)
        else:
            accepted, said = pallet_answer(node, port, kh, row.accept_new)
        after = kh.read_bytes()
        if not accepted or not row.accept_new:
            assert after == before, f"{row.name}: {who} changed known_hosts"
        return accepted, said, after

    with ThreadPoolExecutor(4) as pool:      # each answer is a connection: a few at a time
        futures = [(row, {who: pool.submit(answer, i, row, who) for who in ("openssh", "pallet")})
                   for i, row in enumerate(ROWS)]
        table = [(row, {who: f.result() for who, f in done.items()}) for row, done in futures]
    with capsys.disabled():
        print("\nhost-key matrix (StrictHostKeyChecking=yes unless accept-new):")
        print(f"  {'row':<68} {'OpenSSH':<8} {'Pallet':<8}")
        for row, a in table:
            word = {True: "accept", False: "refuse"}
            print(f"  {row.name:<68} {word[a['openssh'][0]]:<8} {word[a['pallet'][0]]:<8}")
    for row, a in table:
        assert a["openssh"][0] == row.accepts, f"{row.name}: OpenSSH said {a['openssh'][1]}"
        assert a["pallet"][0] == a["openssh"][0], f"{row.name}: Pallet: {a['pallet'][1]}"
        if row.accept_new and row.accepts:   # both recorded the same line
            assert a["pallet"][2] == a["openssh"][2], row.name
            assert a["pallet"][2].decode().endswith(f"{name(port_of(row, facts))} {facts['host']}\n")


def port_of(row: Row, facts: dict) -> int:
    return facts[row.server]


@pytest.mark.nodes
def test_refusals_say_why_the_certificate_was_not_enough(servers, tmp_path):
    node, facts = servers
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@cert-authority * {facts['ca']}\n")
    said = pallet_answer(node, facts["expired"], kh, False)[1]
    assert said.startswith(f"host-key-unknown: [{HOST}]:{facts['expired']} is not a known host")
    assert f"its host certificate from the CA of {kh} line 1 is refused: it expired at 2020-01-02" in said
    said = pallet_answer(node, facts["wrongname"], kh, False)[1]
    assert "it names the principals db.example, not 127.0.0.1" in said
    kh.write_text(f"@cert-authority * {facts['ca2']}\n")
    said = pallet_answer(node, facts["valid"], kh, False)[1]
    assert "signed by the CA SHA256:" in said and "which no @cert-authority line" in said
    kh.write_text(f"@cert-authority * {facts['ca']}\n@revoked * {facts['ca']}\n")
    said = pallet_answer(node, facts["valid"], kh, False)[1]
    assert said.startswith("host-key-changed: ") and f"whose CA's key (SHA256:" in said
    assert f"{kh} line 2 marks as @revoked" in said
