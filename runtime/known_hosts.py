"""known_hosts, as OpenSSH reads and writes it: host keys checked as with
`StrictHostKeyChecking yes` (the default here) or `accept-new`
(`SshOptions.accept_new_host_keys`).

A host is looked up as `host` (port 22) or `[host]:port`, in plain or hashed (`|1|salt|hash`)
entries, with `*`/`?` patterns and negations; `@revoked` keys are refused; a key that differs
from a recorded one is refused even with accept-new. New keys are appended (the file is made
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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pallet.errors import PalletError

from .model import Endpoint, SshOptions, transport_error

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

__all__ = ["known_hosts_name", "fingerprint", "check_host_key", "known_hosts_files",
           "read_known_hosts", "prefer_known_types"]


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


_KEY_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


def prefer_known_types(transport: "paramiko.Transport", known: list[_KnownKey]) -> None:
    """Ask the server for a host key of a type we have on record (as OpenSSH does), so a
    host with several keys is not taken for a changed one."""
    wanted: list[str] = []
    for key in known:
        if key.marker is None:
            for algo in _KEY_ALGORITHMS.get(key.keytype, (key.keytype,)):
                if algo not in wanted:
                    wanted.append(algo)
    if not wanted:
        return
    opts = transport.get_security_options()
    available = list(opts.key_types)
    first = [a for a in wanted if a in available]
    if first:
        opts.key_types = first + [a for a in available if a not in first]


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


def check_host_key(endpoint: Endpoint, options: SshOptions, key: "paramiko.PKey",
                    known: list[_KnownKey], file: Path) -> None:
    name = known_hosts_name(endpoint.host, endpoint.port)
    blob = key.asbytes()
    offered = f"{key.get_name()} {fingerprint(blob)}"
    for entry in known:
        if entry.marker == "@revoked" and entry.blob == blob:
            raise transport_error("host-key-changed",
                                  f"{name} offers the host key {offered}, which {entry.path} line "
                                  f"{entry.line} marks as @revoked; refusing to connect")
    recorded = [k for k in known if k.marker is None]
    if any(k.blob == blob for k in recorded):
        return
    if recorded:
        lines = "; ".join(f"{k.path} line {k.line} records {k.keytype} {fingerprint(k.blob)}"
                          for k in recorded)
        raise transport_error("host-key-changed",
                              f"the host key of {name} has CHANGED: it now offers {offered}, but {lines}. "
                              "Someone may be intercepting the connection. If the host was reinstalled or "
                              f"its key was replaced, delete that line (ssh-keygen -R '{name}' -f "
                              f"{recorded[0].path}) and connect again to record the new key "
                              "(--accept-new-host-keys). Pallet never replaces a recorded key itself.")
    if not options.accept_new_host_keys:
        raise transport_error("host-key-unknown",
                              f"{name} is not a known host: {file} records no key for it (it offers "
                              f"{offered}). Check that fingerprint, then connect with "
                              f"--accept-new-host-keys to record it, or add its key to {file} "
                              f"(ssh-keyscan -p {endpoint.port} {endpoint.host} >> {file}).")
    _record_host_key(file, name, key)


def known_hosts_files(options: SshOptions) -> tuple[Path, list[Path]]:
    """The file to check and record in, and every file to read."""
    if options.known_hosts is not None:
        path = Path(options.known_hosts).expanduser()
        return path, [path]
    user_file = Path.home() / ".ssh" / "known_hosts"
    return user_file, [user_file, Path("/etc/ssh/ssh_known_hosts")]
