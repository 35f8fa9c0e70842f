"""known_hosts, as OpenSSH reads and writes it: host keys checked as with
`StrictHostKeyChecking yes` (the default here) or `accept-new`
(`SshOptions.accept_new_host_keys`).

A host is looked up as `host` (port 22) or `[host]:port`, in plain or hashed (`|1|salt|hash`)
entries, with `*`/`?` patterns and negations; `@revoked` keys (and keys certified by a revoked
CA) are refused; a host certificate is accepted when a `@cert-authority` line for the host
names its CA and it vouches for the host (runtime/host_certs.py), else its key is checked as
a plain one, as OpenSSH does; a key that differs from a recorded one is refused even with
accept-new. New keys are appended (the file is made
with mode 600), hashed when the file already holds only hashed entries. A file is parsed once
per run (cached by inode, mtime and size), with an index by host name.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pallet.errors import PalletError

from .host_certs import (CERT_SUFFIX, CertificateError, HostCertificate, certificate_problem,
                         parse_certificate)
from .model import Endpoint, SshOptions, transport_error

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

__all__ = ["known_hosts_name", "fingerprint", "check_host_key", "known_hosts_files",
           "read_known_hosts", "host_keys_of", "host_key_order", "ordered_transport"]


def known_hosts_name(host: str, port: int) -> str:
    """The name OpenSSH records a host under: `host` on port 22, else `[host]:port`."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class _KnownKey:
    path: Path
    line: int
    marker: str | None          # None, "@revoked" or "@cert-authority"
    keytype: str
    blob: bytes
    hashed: bool


def _pattern_matches(pattern: str, name: str) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == name.lower()
    return _pattern_regex(pattern).fullmatch(name) is not None


@lru_cache(maxsize=1024)
def _pattern_regex(pattern: str) -> "re.Pattern[str]":
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern), re.IGNORECASE)


def _hosts_match(hosts: str, name: str) -> bool:
    if hosts.startswith("|1|"):
        try:
            _, _, salt, digest = hosts.split("|")
            mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(mac, base64.b64decode(digest))
        except (ValueError, TypeError):
            return False
    matched = False
    for pattern in hosts.split(","):
        negated = pattern.startswith("!")
        if _pattern_matches(pattern[1:] if negated else pattern, name):
            if negated:
                return False
            matched = True
    return matched


@dataclass(frozen=True)
class _KnownHostsFile:
    """A known_hosts file, parsed: its entries (line, marker, hosts, key type, base64 key),
    and for the entries naming plain hosts, the entries of each name (lower case). Hashed
    and wildcard entries are tried for every name."""

    entries: tuple[tuple[int, str | None, str, str, str], ...]
    by_name: dict[str, tuple[int, ...]]
    others: tuple[int, ...]
    only_hashed: bool


# path -> ((inode, mtime, size), parsed): a run connecting to many hosts reads the file once.
_parsed_known_hosts: dict[Path, tuple[tuple[int, int, int], _KnownHostsFile]] = {}


def _known_hosts_file(path: Path) -> _KnownHostsFile | None:
    try:
        st = path.stat()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _parsed_known_hosts.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PalletError(f"cannot read the known_hosts file {path}: {e.strerror}") from None
    entries, by_name, others, plain, hashed = [], {}, [], 0, 0
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = None
        if fields[0].startswith("@"):
            marker, fields = fields[0], fields[1:]
        if len(fields) < 3:
            continue
        hosts, keytype, b64 = fields[:3]
        index = len(entries)
        entries.append((number, marker, hosts, keytype, b64))
        if hosts.startswith("|1|"):
            hashed += 1
            others.append(index)
            continue
        plain += 1
        if any(c in hosts for c in "*?!"):
            others.append(index)
        else:
            for host in hosts.split(","):
                by_name.setdefault(host.lower(), []).append(index)
    parsed = _KnownHostsFile(tuple(entries), {k: tuple(v) for k, v in by_name.items()},
                             tuple(others), hashed > 0 and plain == 0)
    _parsed_known_hosts[path] = (stamp, parsed)
    return parsed


def read_known_hosts(path: Path, name: str) -> tuple[list[_KnownKey], bool]:
    """Keys recorded for `name` in one file, and whether the file holds only hashed entries."""
    parsed = _known_hosts_file(path)
    if parsed is None:
        return [], False
    found = []
    named = parsed.by_name.get(name.lower(), ())
    for index in sorted({*named, *parsed.others}):
        number, marker, hosts, keytype, b64 = parsed.entries[index]
        if index not in named and not _hosts_match(hosts, name):
            continue
        try:
            blob = base64.b64decode(b64, validate=True)
        except ValueError:
            continue
        found.append(_KnownKey(path, number, marker, keytype, blob, hosts.startswith("|1|")))
    return found, parsed.only_hashed


# paramiko's host key algorithms, in OpenSSH's order; each has a certificate form.
_PLAIN_ALGORITHMS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                     "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256")
_CERT_ALGORITHMS = tuple(a + CERT_SUFFIX for a in _PLAIN_ALGORITHMS)


def _key_type_of(algorithm: str) -> str:
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm


def host_key_order(known: list[_KnownKey]) -> tuple[str, ...]:
    """The host key algorithms to ask for, as OpenSSH orders them for this host: every
    certificate algorithm first when a `@cert-authority` line names the host, then those of
    the keys on record (so a host with several keys is not taken for a changed one), then
    the rest (certificates before plain keys)."""
    has_ca = any(k.marker == "@cert-authority" for k in known)
    recorded = {k.keytype for k in known if k.marker is None}
    first = [*(_CERT_ALGORITHMS if has_ca else ()),
             *(a for a in _PLAIN_ALGORITHMS if _key_type_of(a) in recorded)]
    return (*first, *(a for a in (*_CERT_ALGORITHMS, *_PLAIN_ALGORITHMS) if a not in first))


@lru_cache(maxsize=1)
def _ordered_transport_class():
    import paramiko

    class OrderedTransport(paramiko.Transport):
        """A client Transport that asks for host key algorithms in a given order (paramiko's
        own list puts every certificate algorithm after every plain one)."""

        host_key_algorithms: tuple[str, ...] = ()

        @property
        def preferred_keys(self):
            default = super().preferred_keys
            return tuple(a for a in self.host_key_algorithms if a in default) or default

    return OrderedTransport


def ordered_transport(sock, known: list[_KnownKey]) -> "paramiko.Transport":
    """A paramiko Transport on `sock` that asks for the host's key algorithms in
    `host_key_order(known)`."""
    transport = _ordered_transport_class()(sock)
    transport.host_key_algorithms = host_key_order(known)
    return transport


_record_lock = threading.Lock()


def _record_host_key(path: Path, name: str, key: "paramiko.PKey") -> None:
    """Append `name`'s key to the known_hosts file (made with mode 600), under a lock."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    blob = key.asbytes()
    with _record_lock:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            # Another thread or process may have recorded this host meanwhile.
            known, only_hashed = read_known_hosts(path, name)
            if any(k.blob == blob and k.marker is None for k in known):
                return
            if only_hashed:
                salt = secrets.token_bytes(20)
                digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
                hosts = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
            else:
                hosts = name
            f.seek(0, os.SEEK_END)
            prefix = b""
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    prefix = b"\n"
            f.write(prefix + f"{hosts} {key.get_name()} {base64.b64encode(blob).decode()}\n".encode())
            f.flush()
            os.fsync(f.fileno())


def _certificate_of(key: "paramiko.PKey") -> HostCertificate | str | None:
    """The certificate a server offered with its key (or why it cannot be read), if any."""
    blob = getattr(key, "public_blob", None)
    if blob is None or not blob.key_type.endswith(CERT_SUFFIX):
        return None
    try:
        return parse_certificate(blob.key_blob)
    except CertificateError as e:
        return str(e)


def _certificate_status(cert: HostCertificate, blob: bytes, known: list[_KnownKey], host: str,
                        now: float) -> tuple[str, object]:
    """OpenSSH's verdict on a certificate against one name's entries: ("ok", None),
    ("revoked", entry), ("invalid", why: a CA of the host signed it but it does not vouch for
    the host) or ("new", None: no @cert-authority line of the host names its CA)."""
    for entry in known:
        if entry.marker == "@revoked" and entry.blob in (blob, cert.ca_blob):
            return "revoked", entry
    authorities = [k for k in known if k.marker == "@cert-authority" and k.blob == cert.ca_blob]
    if not authorities:
        return "new", None
    problem = certificate_problem(cert, host, now)
    if problem is None:
        return "ok", None
    return "invalid", f"its host certificate from the CA of {authorities[0].path} line " \
                      f"{authorities[0].line} is refused: {problem}"


def _key_status(blob: bytes, known: list[_KnownKey]) -> tuple[str, object]:
    """OpenSSH's verdict on a plain key against one name's entries: ("ok", None),
    ("revoked", entry), ("changed", the keys recorded) or ("new", None)."""
    for entry in known:
        if entry.marker == "@revoked" and entry.blob == blob:
            return "revoked", entry
    recorded = [k for k in known if k.marker is None]
    if any(k.blob == blob for k in recorded):
        return "ok", None
    return ("changed", recorded) if recorded else ("new", None)


def check_host_key(endpoint: Endpoint, options: SshOptions, key: "paramiko.PKey",
                   known: list[_KnownKey], file: Path, portless: list[_KnownKey] = (),
                   now: float | None = None) -> None:
    """Accept the server's key as `ssh -o StrictHostKeyChecking=yes` would (accept-new with
    `options.accept_new_host_keys`), else raise host-key-changed or host-key-unknown.

    `known` holds the entries for the host's known_hosts name (`[host]:port` off port 22),
    `portless` those for the bare host name. As OpenSSH does: a certificate is accepted when
    a `@cert-authority` line names its CA and it vouches for the host; else its key is
    checked as a plain key. A key or CA found under neither form is looked up under the
    bare name too (accepted there, never recorded there). `@revoked` refuses at once."""
    name = known_hosts_name(endpoint.host, endpoint.port)
    blob = key.asbytes()
    offered = f"{key.get_name()} {fingerprint(blob)}"
    now = time.time() if now is None else now
    cert = _certificate_of(key)
    why_not = ""             # why a certificate offered was not enough, for the message
    if isinstance(cert, str):
        why_not = f"; its host certificate cannot be read: {cert}"
    elif cert is not None:
        status, detail = _certificate_status(cert, blob, known, endpoint.host, now)
        if status == "ok":
            return
        if status == "revoked":
            what = "key" if detail.blob == blob else f"CA's key ({fingerprint(cert.ca_blob)})"
            raise _revoked(name, offered, detail, what)
        if status == "new" and portless and \
                _certificate_status(cert, blob, portless, endpoint.host, now)[0] == "ok":
            return
        why_not = (f"; {detail}" if status == "invalid" else
                   f"; it offers a host certificate signed by the CA {fingerprint(cert.ca_blob)}, "
                   f"which no @cert-authority line for {name} names")
    status, detail = _key_status(blob, known)
    if status == "ok":
        return
    if status == "revoked":
        raise _revoked(name, offered, detail, "key")
    if status == "changed":
        lines = "; ".join(f"{k.path} line {k.line} records {k.keytype} {fingerprint(k.blob)}"
                          for k in detail)
        raise transport_error("host-key-changed",
                              f"the host key of {name} has CHANGED: it now offers {offered}, but {lines}"
                              f"{why_not}. Someone may be intercepting the connection. If the host was "
                              f"reinstalled or its key was replaced, delete that line (ssh-keygen -R '{name}' -f "
                              f"{detail[0].path}) and connect again to record the new key "
                              "(--accept-new-host-keys). Pallet never replaces a recorded key itself.")
    if portless and _key_status(blob, portless)[0] == "ok":
        return
    if not options.accept_new_host_keys:
        raise transport_error("host-key-unknown",
                              f"{name} is not a known host: {file} records no key for it (it offers "
                              f"{offered}){why_not}. Check that fingerprint, then connect with "
                              f"--accept-new-host-keys to record it, or add its key to {file} "
                              f"(ssh-keyscan -p {endpoint.port} {endpoint.host} >> {file}).")
    _record_host_key(file, name, key)


def _revoked(name: str, offered: str, entry: _KnownKey, what: str):
    return transport_error("host-key-changed",
                           f"{name} offers the host key {offered}, whose {what} {entry.path} line "
                           f"{entry.line} marks as @revoked; refusing to connect")


def known_hosts_files(options: SshOptions, endpoint: Endpoint | None = None) -> tuple[Path, list[Path]]:
    """The file to record in, and every file to read: `--known-hosts` alone, else the
    endpoint's own files (UserKnownHostsFile of the SSH config) or ~/.ssh/known_hosts, and
    /etc/ssh/ssh_known_hosts."""
    if options.known_hosts is not None:
        path = Path(options.known_hosts).expanduser()
        return path, [path]
    own = [Path(p).expanduser() for p in endpoint.known_hosts] if endpoint is not None else []
    user_files = own or [Path.home() / ".ssh" / "known_hosts"]
    return user_files[0], [*user_files, Path("/etc/ssh/ssh_known_hosts")]


def host_keys_of(endpoint: Endpoint, options: SshOptions) -> tuple[Path, list[_KnownKey], list[_KnownKey]]:
    """The file to record a new key in, the entries for the endpoint's known_hosts name, and
    (off port 22) those for its bare host name, from every file to read."""
    file, files = known_hosts_files(options, endpoint)
    name = known_hosts_name(endpoint.host, endpoint.port)
    known: list[_KnownKey] = []
    portless: list[_KnownKey] = []
    for path in files:
        known += read_known_hosts(path, name)[0]
        if name != endpoint.host:
            portless += read_known_hosts(path, endpoint.host)[0]
    return file, known, portless
