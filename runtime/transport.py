"""SSH transport (paramiko): one connection per node, one exec per bundle.

`open_connection(endpoint, options)` connects (through a jump host if the endpoint names one),
checks the host key against a known_hosts file, authenticates, and returns a `Connection`
that stays open across calls. `run_bundle` ships a bundle on the stdin of ONE exec: as a
script `sh -s` reads (inline_bundle: small text bundles, as root) or as a tar stream a
wrapper unpacks (gzip'd from 256 KiB); either makes a fresh private directory, runs the
script there as root (`sudo` for another user), and removes the directory on every exit
path (an EXIT trap). stdout lines stream to a callback as they arrive. With a timeout, a
watchdog the wrapper starts on the node stops the bundle's process group when it runs
longer (`_watchdog`), and the call raises TransportError("timeout").

Host keys, as OpenSSH with `StrictHostKeyChecking yes` (the default here) or `accept-new`
(`SshOptions.accept_new_host_keys`): a host is looked up as `host` (port 22) or
`[host]:port`, in plain or hashed (`|1|salt|hash`) entries, with `*`/`?` patterns and
negations; `@revoked` keys are refused; a key that differs from a recorded one is refused
even with accept-new. New keys are appended (the file is made with mode 600), hashed when
the file already holds only hashed entries.

sudo with a password: the password is never in a command line. sudo runs with `-S` and a
prompt made of a random nonce; the client sends the password only when that prompt shows
on stderr, and the bundle only once the root wrapper has announced itself (another nonce
on stderr). A second prompt means a wrong password: stdin is closed at once and the call
fails with TransportError("sudo").

paramiko is imported inside the functions that need it, so importing this module is cheap.
"""
from __future__ import annotations

import base64
import errno
import fcntl
import contextlib
import gzip
import hashlib
import hmac
import io
import logging
import math
import os
import re
import secrets
import select
import shlex
import socket
import tarfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pallet.errors import PalletError

from .model import Endpoint, ExecResult, SshOptions, TransportError

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

__all__ = ["open_connection", "SshConnection", "OutputCollector", "bundle_tar", "inline_bundle",
           "bundle_command", "should_compress", "prepare_bundle",
           "BundleExchange", "DEFAULT_KEY_FILES", "known_hosts_name", "fingerprint"]

DEFAULT_KEY_FILES = ("id_ed25519", "id_ecdsa", "id_rsa")
BACKOFF = 0.25               # seconds before the first retry; doubled each time, at most 2 s
KEEPALIVE = 15               # seconds between SSH keepalives on an idle connection
TCP_USER_TIMEOUT_MS = 120_000   # unacknowledged data this long: the connection is dead
EXIT_GRACE = 2.0             # after the exit status, how long to wait for the output's EOF
                             # (a daemon the script started may hold the pipes open)
TERM_GRACE = 2               # a phase out of time: seconds between TERM and KILL on the node
TIMEOUT_SLACK = 3.0          # ... and how much longer the client waits for the node to say so


# -- errors --------------------------------------------------------------------------------

def _error(kind: str, message: str, **attrs) -> TransportError:
    err = TransportError(kind, message)
    for key, value in attrs.items():
        setattr(err, key, value)
    return err


def _where(endpoint: Endpoint) -> str:
    if endpoint.local:
        return f"{endpoint.user} on this machine"
    return f"{endpoint.user}@{endpoint.host}:{endpoint.port}"


def _retryable(err: TransportError) -> bool:
    return err.kind in ("unreachable", "timeout")


# -- known hosts ---------------------------------------------------------------------------

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


def _read_known_hosts(path: Path, name: str) -> tuple[list[_KnownKey], bool]:
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


def _prefer_known_types(transport: "paramiko.Transport", known: list[_KnownKey]) -> None:
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
            known, only_hashed = _read_known_hosts(path, name)
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


def _check_host_key(endpoint: Endpoint, options: SshOptions, key: "paramiko.PKey",
                    known: list[_KnownKey], file: Path) -> None:
    name = known_hosts_name(endpoint.host, endpoint.port)
    blob = key.asbytes()
    offered = f"{key.get_name()} {fingerprint(blob)}"
    for entry in known:
        if entry.marker == "@revoked" and entry.blob == blob:
            raise _error("host-key-changed",
                         f"{name} offers the host key {offered}, which {entry.path} line {entry.line} "
                         "marks as @revoked; refusing to connect")
    recorded = [k for k in known if k.marker is None]
    if any(k.blob == blob for k in recorded):
        return
    if recorded:
        lines = "; ".join(f"{k.path} line {k.line} records {k.keytype} {fingerprint(k.blob)}"
                          for k in recorded)
        raise _error("host-key-changed",
                     f"the host key of {name} has CHANGED: it now offers {offered}, but {lines}. "
                     "Someone may be intercepting the connection. If the host was reinstalled or "
                     f"its key was replaced, delete that line (ssh-keygen -R '{name}' -f "
                     f"{recorded[0].path}) and connect again to record the new key "
                     "(--accept-new-host-keys). Pallet never replaces a recorded key itself.")
    if not options.accept_new_host_keys:
        raise _error("host-key-unknown",
                     f"{name} is not a known host: {file} records no key for it (it offers "
                     f"{offered}). Check that fingerprint, then connect with "
                     f"--accept-new-host-keys to record it, or add its key to {file} "
                     f"(ssh-keyscan -p {endpoint.port} {endpoint.host} >> {file}).")
    _record_host_key(file, name, key)


def _known_hosts_files(options: SshOptions) -> tuple[Path, list[Path]]:
    """The file to check and record in, and every file to read."""
    if options.known_hosts is not None:
        path = Path(options.known_hosts).expanduser()
        return path, [path]
    user_file = Path.home() / ".ssh" / "known_hosts"
    return user_file, [user_file, Path("/etc/ssh/ssh_known_hosts")]


# -- connecting ----------------------------------------------------------------------------

def open_connection(endpoint: Endpoint, options: SshOptions | None = None):
    """A Connection to the endpoint: LocalConnection for `endpoint.local`, else SSH."""
    options = options or SshOptions()
    if endpoint.local:
        from .local_transport import LocalConnection
        return LocalConnection(endpoint)
    return SshConnection.open(endpoint, options)


def _tcp_socket(endpoint: Endpoint, timeout: float) -> socket.socket:
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except socket.gaierror as e:
        raise _error("unreachable", f"cannot resolve {endpoint.host}: {e.strerror}") from None
    except (socket.timeout, TimeoutError):
        raise _error("timeout", f"no answer from {where} within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise _error("unreachable", f"{where} refused the connection (no SSH server on that port?)") from None
    except OSError as e:
        if e.errno == errno.ETIMEDOUT:
            raise _error("timeout", f"no answer from {where} within {timeout:g} s") from None
        raise _error("unreachable", f"cannot reach {where}: {e.strerror or e}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
    return sock


def _load_key_file(path: str, passphrase: str | None, endpoint: Endpoint) -> "paramiko.PKey":
    import paramiko
    file = Path(path).expanduser()
    try:
        # bytes: PKey.from_path hands the password to cryptography, which wants bytes
        return paramiko.PKey.from_path(file, passphrase.encode() if passphrase is not None else None)
    except FileNotFoundError:
        raise _error("auth", f"{_where(endpoint)}: the private key file {file} does not exist") from None
    except PermissionError:
        raise _error("auth", f"{_where(endpoint)}: cannot read the private key file {file}") from None
    except TypeError:       # cryptography: encrypted, and no password given
        raise _error("auth", f"{_where(endpoint)}: the private key {file} is encrypted; add it to "
                             "ssh-agent (ssh-add) or give its passphrase as the password") from None
    except (ValueError, paramiko.SSHException) as e:
        why = "wrong passphrase, or not a private key" if passphrase else str(e) or "not a private key"
        raise _error("auth", f"{_where(endpoint)}: cannot load the private key {file}: {why}") from None


def _agent_key_for(file: Path, agent_keys: list):
    try:
        blob = base64.b64decode(Path(f"{file}.pub").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return next((k for k in agent_keys if k.asbytes() == blob), None)


def _describe_key(key: "paramiko.PKey", origin: str) -> str:
    return f"{origin} ({key.get_name()} {fingerprint(key.asbytes())})"


def _authenticate(transport: "paramiko.Transport", endpoint: Endpoint, options: SshOptions) -> None:
    import paramiko
    agent = None
    if options.use_agent and os.environ.get("SSH_AUTH_SOCK"):
        try:
            agent = paramiko.Agent()
        except (paramiko.SSHException, OSError):
            agent = None
    try:
        _authenticate_with(transport, endpoint, options, list(agent.get_keys()) if agent else [])
    finally:
        if agent is not None:
            agent.close()


def _authenticate_with(transport: "paramiko.Transport", endpoint: Endpoint, options: SshOptions,
                       agent_keys: list) -> None:
    import paramiko
    user = endpoint.user
    tried: list[str] = []
    skipped: list[str] = []
    allowed: list[str] | None = None
    keys: list[tuple[paramiko.PKey, str]] = []
    if endpoint.private_key:
        file = Path(endpoint.private_key).expanduser()
        try:
            keys.append((_load_key_file(endpoint.private_key, endpoint.password, endpoint), f"key file {file}"))
        except TransportError:
            # An encrypted key file the agent holds (found by its .pub file) is used as OpenSSH would.
            held = _agent_key_for(file, agent_keys)
            if held is None:
                raise
            keys.append((held, f"ssh-agent key for {file}"))
    else:
        keys += [(k, "ssh-agent key") for k in agent_keys]
        for name in DEFAULT_KEY_FILES:
            path = Path.home() / ".ssh" / name
            if not path.exists():
                continue
            try:
                keys.append((paramiko.PKey.from_path(path, None), f"key file {path}"))
            except Exception:  # encrypted or unreadable: the agent may hold it
                skipped.append(f"{path} (encrypted or unreadable)")

    def fail() -> TransportError:
        nonlocal allowed
        if allowed is None:         # learn what the server accepts, for the message
            try:
                transport.auth_none(user)
                allowed = ["none"]
            except paramiko.BadAuthenticationType as e:
                allowed = list(e.allowed_types)
            except Exception:
                pass
        parts = [f"{_where(endpoint)} refused to log in {user}"]
        if tried:
            parts.append("tried " + ", ".join(tried))
        else:
            parts.append("no key or password to try (no key file given, "
                         + ("no agent keys, " if options.use_agent else "agent not used, ")
                         + "no ~/.ssh/id_* keys)")
        if skipped:
            parts.append("skipped " + ", ".join(skipped))
        if allowed is not None:
            parts.append("the server accepts: " + ", ".join(allowed))
        return _error("auth", "; ".join(parts))

    for key, origin in keys:
        if allowed is not None and "publickey" not in allowed:
            break
        tried.append(f"the {_describe_key(key, origin)}")
        try:
            more = transport.auth_publickey(user, key)
        except paramiko.BadAuthenticationType as e:
            allowed = list(e.allowed_types)
            continue
        except paramiko.AuthenticationException:
            continue
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _error("auth", f"{_where(endpoint)}: the connection broke during authentication "
                                 f"({e or type(e).__name__}); tried {', '.join(tried)}") from None
        if not more:
            return
        allowed = list(more)     # partial success: the server wants another method too
    if endpoint.password is not None and (allowed is None or "password" in allowed
                                          or "keyboard-interactive" in allowed):
        tried.append("a password")
        try:
            more = transport.auth_password(user, endpoint.password)
            if not more:
                return
            allowed = list(more)
        except paramiko.BadAuthenticationType as e:
            allowed = list(e.allowed_types)
        except paramiko.AuthenticationException:
            pass
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _error("auth", f"{_where(endpoint)}: the connection broke during authentication "
                                 f"({e or type(e).__name__})") from None
    raise fail()


def _handshake_error(e: BaseException, where: str, timeout: float) -> TransportError:
    cause = e.__cause__ or e.__context__
    if (isinstance(e, (socket.timeout, TimeoutError)) or isinstance(cause, (socket.timeout, TimeoutError))
            or "timed out" in str(e)):
        return _error("timeout", f"{where} accepted the connection but sent no SSH banner or "
                                 f"handshake within {timeout:g} s")
    if isinstance(cause, (EOFError, ConnectionResetError)) or isinstance(e, (EOFError, ConnectionResetError)):
        return _error("unreachable", f"SSH handshake with {where} failed: the server closed "
                                     "the connection (not an SSH server, or too busy?)")
    return _error("unreachable", f"SSH handshake with {where} failed: {e or type(e).__name__}")


def _quiet_paramiko():
    """paramiko, its errors kept out of stderr unless the program configures logging (its
    transport thread logs every failed handshake with a traceback)."""
    import paramiko
    logger = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return paramiko


def _handshake(endpoint: Endpoint, options: SshOptions, sock) -> "paramiko.Transport":
    """SSH on a connected socket: key exchange, host key check, authentication."""
    paramiko = _quiet_paramiko()
    where = f"{endpoint.host}:{endpoint.port}"
    name = known_hosts_name(endpoint.host, endpoint.port)
    file, files = _known_hosts_files(options)
    known: list[_KnownKey] = []
    for path in files:
        known += _read_known_hosts(path, name)[0]
    transport = paramiko.Transport(sock)
    ok = False
    try:
        transport.banner_timeout = options.connect_timeout
        transport.handshake_timeout = options.connect_timeout
        transport.auth_timeout = max(options.connect_timeout, 10.0)
        _prefer_known_types(transport, known)
        try:
            transport.start_client(timeout=2 * options.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _handshake_error(e, where, options.connect_timeout) from None
        _check_host_key(endpoint, options, transport.get_remote_server_key(), known, file)
        _authenticate(transport, endpoint, options)
        transport.set_keepalive(KEEPALIVE)
        ok = True
        return transport
    finally:
        if not ok:
            transport.close()
            sock.close()


def _with_retries(what: Callable[[], object], options: SshOptions):
    """Call `what`; retry an unreachable or timed-out attempt `options.retries` times with a
    short backoff. Never retries auth or host-key failures. The error raised carries
    `attempts`."""
    attempts = 1 + max(0, options.retries)
    for attempt in range(1, attempts + 1):
        try:
            return what()
        except TransportError as e:
            e.attempts = attempt
            if not _retryable(e) or attempt == attempts:
                if attempt > 1:
                    e.message = f"{e.message} ({attempt} attempts)"
                    e.args = (e.message,)
                raise
        time.sleep(min(BACKOFF * 2 ** (attempt - 1), 2.0))
    raise AssertionError("unreachable")


def _connect(endpoint: Endpoint, options: SshOptions) -> tuple["paramiko.Transport", list]:
    """An authenticated transport to the endpoint, and the jump transports under it."""
    import paramiko
    jumps: list = []
    if endpoint.jump is None:
        def attempt():
            return _handshake(endpoint, options, _tcp_socket(endpoint, options.connect_timeout))
        return _with_retries(attempt, options), jumps
    try:
        jump_transport, under = _connect(endpoint.jump, options)
    except TransportError as e:
        raise _error(e.kind, f"jump host {_where(endpoint.jump)}: {e.message}",
                     attempts=getattr(e, "attempts", 1)) from None
    jumps = [*under, jump_transport]

    def through_jump():
        try:
            chan = jump_transport.open_channel("direct-tcpip", (endpoint.host, endpoint.port),
                                               ("127.0.0.1", 0), timeout=options.connect_timeout)
        except paramiko.ChannelException as e:
            raise _error("unreachable", f"jump host {endpoint.jump.host}:{endpoint.jump.port} could "
                                        f"not reach {endpoint.host}:{endpoint.port}: {e.text}") from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            text = str(e) or type(e).__name__
            kind = "timeout" if "timeout" in text.lower() else "unreachable"
            raise _error(kind, f"jump host {endpoint.jump.host}:{endpoint.jump.port}: cannot open a "
                               f"channel to {endpoint.host}:{endpoint.port}: {text}") from None
        return _handshake(endpoint, options, chan)

    try:
        return _with_retries(through_jump, options), jumps
    except BaseException:
        for t in reversed(jumps):
            t.close()
        raise


# -- bundles -------------------------------------------------------------------------------

# Below this size a bundle travels as a plain tar: gzip would cost both ends more CPU than
# the loopback or LAN saves (a typical bundle is a few tens of KB).
GZIP_FROM = 256 * 1024


def should_compress(files: dict[str, bytes], script: str) -> bool:
    return script.endswith(".ps1") or sum(len(d) for d in files.values()) >= GZIP_FROM


def bundle_tar(files: dict[str, bytes], compressed: bool = True) -> bytes:
    """The bundle as a tar stream, gzip'd if `compressed` (relative paths; directories
    included)."""
    buf = io.BytesIO()
    now = int(time.time())
    gz = gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) if compressed else None
    with gz if gz is not None else contextlib.nullcontext():
        with tarfile.open(fileobj=gz if gz is not None else buf, mode="w",
                          format=tarfile.GNU_FORMAT) as tar:
            for name, new_dirs in _bundle_paths(files):
                for d in new_dirs:
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                    tar.addfile(info)
                data = files[name]
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, now
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass(frozen=True)
class BundleExchange:
    """What one run_bundle exec looks like: the command and how to talk to it."""

    command: str                  # a POSIX sh command line (or a pwsh one for .ps1)
    argv: list[str]               # the same, as an argv for a local subprocess
    started: bytes | None         # the line the root wrapper writes on stderr first (sudo only)
    prompt: bytes | None          # sudo's password prompt (with a sudo password only)
    timeout_marker: bytes | None = None   # the line the watchdog writes when time is up
    seconds: int | None = None    # the watchdog's limit on the node


def _watchdog(seconds: int | None, marker: bytes | None) -> str:
    """Shell lines that bound the bundle's time on the node (none without a limit): a
    background subshell that, after `seconds`, writes `marker` on stderr, sends TERM to the
    exec's process group (the wrapper, the script and everything they started that did not
    leave the group, as daemons do), removes the bundle's directory and sends KILL
    TERM_GRACE seconds later. The wrapper runs in a process group of its own (sshd makes a
    session per exec; the local transport a new session), so `kill 0` reaches only the bundle.
    When the wrapper exits first, its EXIT trap stops the watchdog (`_exit_trap`)."""
    if not seconds or marker is None:
        return ""
    return ("( trap 'kill $! 2>/dev/null; exit 0' TERM\n"
            f"  sleep {seconds} &\n"
            "  wait $!\n"
            "  trap '' TERM\n"
            f"  printf '%s\\n' {marker.decode()} >&2\n"
            "  kill -TERM 0\n"
            f"  sleep {TERM_GRACE}\n"
            '  cd / && rm -rf -- "$d"\n'
            "  kill -KILL 0\n"
            ") </dev/null >/dev/null &\n"
            "w=$!\n")


def _exit_trap(watched: bool) -> str:
    """The EXIT trap: stop the watchdog, if any (its own TERM trap takes its sleep with it),
    and remove the bundle's directory, on every way out."""
    if not watched:
        return "trap 'cd / && rm -rf -- \"$d\"' EXIT"
    return "w=; trap 'kill \"$w\" 2>/dev/null; cd / && rm -rf -- \"$d\"' EXIT"


def _run_script(script: str, shell: str) -> str:
    return (f"umask 022\nPALLET_BUNDLE_DIR=$d {shlex.quote(shell)} ./{shlex.quote(script)} "
            "</dev/null\nexit $?\n")


def _posix_wrapper(script: str, shell: str, started: bytes | None, compressed: bool = True,
                   seconds: int | None = None, marker: bytes | None = None) -> str:
    announce = f"printf '%s\\n' {started.decode()} >&2\n" if started else ""
    watchdog = _watchdog(seconds, marker)
    return (
        f"{announce}umask 077\n"
        'd=$(mktemp -d "${TMPDIR:-/tmp}/pallet-bundle.XXXXXXXXXX") || exit 125\n'
        f"{_exit_trap(bool(watchdog))}\n"
        "trap 'exit 129' HUP\ntrap 'exit 130' INT\ntrap 'exit 143' TERM\n"
        'cd "$d" || exit 125\n'
        f"{watchdog}"
        f'tar -x {"-z " if compressed else ""}-m -o -f - || '
        '{ echo "pallet: cannot unpack the bundle into $d" >&2; exit 125; }\n'
        f"{_run_script(script, shell)}")


def _powershell_command(script: str) -> str:
    # Untested here (no Windows node): .NET 7+ (PowerShell 7.3+) reads tar itself.
    ps = (
        "$ErrorActionPreference = 'Stop'\n"
        "$d = Join-Path ([IO.Path]::GetTempPath()) ('pallet-bundle-' + [guid]::NewGuid().ToString('N'))\n"
        "New-Item -ItemType Directory -Path $d | Out-Null\n"
        "$code = 125\n"
        "try {\n"
        "  $gz = [IO.Compression.GZipStream]::new([Console]::OpenStandardInput(), "
        "[IO.Compression.CompressionMode]::Decompress)\n"
        "  [System.Formats.Tar.TarFile]::ExtractToDirectory($gz, $d, $true)\n"
        "  $env:PALLET_BUNDLE_DIR = $d\n"
        "  Set-Location -LiteralPath $d\n"
        f"  pwsh -NoProfile -NonInteractive -File (Join-Path $d '{script}') < $null\n"
        "  $code = $LASTEXITCODE\n"
        "} finally {\n"
        "  Set-Location -LiteralPath ([IO.Path]::GetTempPath())\n"
        "  Remove-Item -LiteralPath $d -Recurse -Force -ErrorAction SilentlyContinue\n"
        "}\n"
        "exit $code\n")
    encoded = base64.b64encode(ps.encode("utf-16-le")).decode()
    return f"pwsh -NoProfile -NonInteractive -EncodedCommand {encoded}"


def prepare_bundle(files: dict[str, bytes], script: str, shell: str, *, is_root: bool,
                   sudo_password: str | None, where: str, timeout: float | None = None
                   ) -> tuple["BundleExchange", bytes, str | None]:
    """For either transport: the command that runs a bundle, the tar stream it reads, and
    the sudo password to feed (None: root already, or `sudo -n`). With a `timeout` (seconds),
    the node stops the bundle when it runs longer."""
    if script not in files:
        raise PalletError(f"the bundle has no {script!r} among its files")
    sudo = not is_root and not script.endswith(".ps1")
    password = sudo_password if sudo else None
    if password is not None and ("\n" in password or "\r" in password):
        raise _error("sudo", f"{where}: a sudo password cannot contain a line break")
    compressed = should_compress(files, script)
    # Inline (no tar) for root; sudo must say it started before the bundle is sent, which a
    # script read from stdin cannot.
    if not sudo and not compressed and not any(b"\0" in data for data in files.values()):
        exchange = bundle_command(script, shell, sudo=sudo, sudo_password=password is not None,
                                  inline=True, timeout=timeout)
        payload = inline_bundle(files, script, shell, exchange.started, exchange.seconds,
                                exchange.timeout_marker)
        return exchange, payload, password
    exchange = bundle_command(script, shell, sudo=sudo, sudo_password=password is not None,
                              compressed=compressed, timeout=timeout)
    return exchange, bundle_tar(files, compressed), password


def _bundle_paths(files: dict[str, bytes]) -> list[tuple[str, list[str]]]:
    """The bundle's file names in order, each with the directories it needs that no name
    before it needed; a name that is not a plain relative path is an error."""
    seen: set[str] = set()
    out = []
    for name in sorted(files):
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise PalletError(f"bad bundle file name {name!r}: use a relative path")
        new = ["/".join(parts[:i]) for i in range(1, len(parts))]
        new = [d for d in new if d not in seen]
        seen.update(new)
        out.append((name, new))
    return out


def inline_bundle(files: dict[str, bytes], script: str, shell: str,
                  started: bytes | None = None, seconds: int | None = None,
                  marker: bytes | None = None) -> bytes:
    """A small bundle of files without NUL bytes as the script `sh -s` reads on stdin: it
    makes a private directory of a random name (mkdir fails on a name that exists), writes
    each file with printf (a builtin: no tar to start), runs the bundle's script there and
    removes the directory. It is one compound command, which the shell reads whole before it
    runs any of it: a stream cut short is a syntax error, never a part run. With `seconds`,
    a watchdog bounds its time (`_watchdog`)."""
    dirs = [d for _, new in _bundle_paths(files) for d in new]
    made = " ".join(['"$d"', *(f'"$d"/{shlex.quote(d)}' for d in dirs)])
    watchdog = _watchdog(seconds, marker)
    head = [
        "{",
        f"printf '%s\\n' {started.decode()} >&2" if started else "",
        "umask 077",
        f'd="${{TMPDIR:-/tmp}}/pallet-bundle.{secrets.token_hex(10)}"',
        f"mkdir -- {made} || exit 125",
        _exit_trap(bool(watchdog)),
        "trap 'exit 129' HUP", "trap 'exit 130' INT", "trap 'exit 143' TERM",
        'cd "$d" || exit 125',
    ]
    out = [("\n".join(line for line in head if line) + "\n" + watchdog).encode()]
    for name in sorted(files):
        out += [b"printf '%s' '", files[name].replace(b"'", b"'\\''"),
                f"' > {shlex.quote(name)} || exit 125\n".encode()]
    out.append((_run_script(script, shell) + "}\n").encode())
    return b"".join(out)


def bundle_command(script: str, shell: str, *, sudo: bool, sudo_password: bool,
                   compressed: bool = True, inline: bool = False,
                   timeout: float | None = None) -> BundleExchange:
    """The one command that unpacks the bundle from stdin, runs it and cleans up: `sh -s`
    reading an inline bundle (see inline_bundle), or `sh -c WRAPPER` reading a tar stream.
    With a `timeout`, a watchdog on the node stops the bundle when it runs longer."""
    if script.endswith(".ps1"):
        command = _powershell_command(script)
        return BundleExchange(command, ["pwsh", *shlex.split(command)[1:]], None, None)
    started = f"pallet-wrapper-started-{secrets.token_hex(12)}".encode() if sudo else None
    seconds = math.ceil(timeout) if timeout else None
    marker = f"pallet-timeout-{secrets.token_hex(12)}".encode() if seconds else None
    shell_argv = ["sh", "-s"] if inline else ["sh", "-c", _posix_wrapper(
        script, shell, started, compressed, seconds, marker)]
    if not sudo:
        return BundleExchange(shlex.join(shell_argv), shell_argv, None, None, marker, seconds)
    if sudo_password:
        prompt = f"pallet-sudo-prompt-{secrets.token_hex(12)}:".encode()
        sudo_argv = ["sudo", "-S", "-p", prompt.decode()]
    else:
        prompt = None
        sudo_argv = ["sudo", "-n"]
    argv = [*sudo_argv, "--", *shell_argv]
    return BundleExchange(shlex.join(argv), argv, started, prompt, marker, seconds)


class OutputCollector:
    """Collects an exec's stdout and stderr: stdout lines go to `on_line` as they complete;
    with sudo, stderr is watched for the password prompt and the wrapper's start line."""

    def __init__(self, on_line: Callable[[str], None] | None, started: bytes | None,
                 prompt: bytes | None, timeout_marker: bytes | None = None):
        self.on_line = on_line
        self.started_marker = started
        self.prompt = prompt
        self.timeout_marker = timeout_marker
        self.timed_out = False              # the node's watchdog said the time was up
        self.out = bytearray()
        self.err = bytearray()
        self._pending = b""                 # stdout after the last newline
        self._pre = bytearray()             # stderr before the wrapper started
        self.started = started is None
        self.prompts = 0
        self.cond = threading.Condition()
        self.done = False

    def stdout(self, data: bytes) -> None:
        if not data:
            return
        self.out += data
        if self.on_line is None:
            return
        data = self._pending + data
        *lines, self._pending = data.split(b"\n")
        for line in lines:
            self.on_line(line.rstrip(b"\r").decode("utf-8", "replace"))

    def stderr(self, data: bytes) -> None:
        if not data:
            return
        if self.started:
            self.err += data
            self._watch(len(data))
            return
        self._pre += data
        with self.cond:
            if self.prompt is not None:
                self.prompts = self._pre.count(self.prompt)
            marker = self.started_marker + b"\n"
            at = self._pre.find(marker)
            if at >= 0:
                self.started = True
                rest = self._pre[at + len(marker):]
                self.err += self._clean(self._pre[:at]) + rest
                self._pre = bytearray()
                self._watch(len(rest))
            self.cond.notify_all()

    def _watch(self, new: int) -> None:
        """Whether the bytes just added to stderr complete the watchdog's line."""
        if self.timeout_marker is not None and not self.timed_out:
            tail = self.err[-(new + len(self.timeout_marker) + 1):]
            self.timed_out = self.timeout_marker + b"\n" in tail

    def _clean(self, data: bytes | bytearray) -> bytes:
        return bytes(data).replace(self.prompt, b"") if self.prompt else bytes(data)

    def finish(self) -> None:
        if self.done:
            return
        with self.cond:
            self.done = True
            self.cond.notify_all()
        if self._pending and self.on_line is not None:
            self.on_line(self._pending.rstrip(b"\r").decode("utf-8", "replace"))
            self._pending = b""

    def pre_start_stderr(self) -> str:
        return self._clean(self._pre).decode("utf-8", "replace").strip()

    def result(self, status: int) -> ExecResult:
        err = self.err if self.started else self._clean(self._pre)
        if self.timed_out:
            err = err.replace(self.timeout_marker + b"\n", b"")
        return ExecResult(status, bytes(self.out).decode("utf-8", "replace"),
                          bytes(err).decode("utf-8", "replace"))


def feed_stdin(collector: OutputCollector, send: Callable[[bytes], None],
               close: Callable[[], None], payload: bytes, password: str | None) -> Callable[[], None]:
    """Start the thread that writes the exec's stdin: (password on sudo's prompt, then) the
    bundle. Returns a function that waits for it and says whether the password was refused."""
    state = {"refused": False}

    def writer():
        try:
            if password is not None:
                with collector.cond:
                    collector.cond.wait_for(lambda: collector.prompts >= 1 or collector.started
                                            or collector.done)
                    ask = collector.prompts >= 1 and not collector.started and not collector.done
                if ask:
                    send(password.encode() + b"\n")
                with collector.cond:
                    collector.cond.wait_for(lambda: collector.prompts >= 2 or collector.started
                                            or collector.done)
                    if not collector.started:
                        state["refused"] = collector.prompts >= 2
                        return          # close stdin: sudo gives up at once
            send(payload)
        except (OSError, EOFError, ValueError):
            pass                        # the exec ended early; its status says why
        finally:
            try:
                close()
            except (OSError, EOFError, ValueError):
                pass

    thread = threading.Thread(target=writer, name="pallet-stdin", daemon=True)
    thread.start()

    def join() -> bool:
        thread.join()
        return state["refused"]
    return join


def timed_out(endpoint: Endpoint, timeout: float | None, collector: OutputCollector,
              status: int | None) -> TransportError:
    """The bundle ran out of time and the node's watchdog stopped it."""
    return _error("timeout", f"{_where(endpoint)}: the bundle ran longer than the phase timeout "
                             f"of {timeout:g} s; its processes on the node were stopped (TERM, "
                             f"then KILL {TERM_GRACE} s later)",
                  result=collector.result(-1 if status is None else status))


def sudo_failure(endpoint: Endpoint, collector: OutputCollector, status: int,
                 refused: bool, with_password: bool) -> TransportError:
    said = collector.pre_start_stderr()
    where = _where(endpoint)
    if refused:
        return _error("sudo", f"{where}: sudo refused the sudo password given for {endpoint.user}")
    if status == 127 or "not found" in said:
        return _error("sudo", f"{where}: {endpoint.user} is not root and sudo is not installed ({said})")
    if not with_password and "password" in said.lower():
        return _error("sudo", f"{where}: sudo asks {endpoint.user} for a password; give a sudo "
                              f"password for this node, or allow it NOPASSWD in sudoers (sudo said: {said})")
    return _error("sudo", f"{where}: sudo did not run the bundle for {endpoint.user} "
                          f"(exit {status}): {said or 'no message'}")


# -- the connection ------------------------------------------------------------------------

class _ChannelPipes:
    """Reads an exec channel's stdout and stderr as data arrives (one thread, select on the
    channel's event pipe, which both streams signal)."""

    def __init__(self, chan: "paramiko.Channel"):
        self.chan = chan
        self.fd = chan.fileno()

    def read(self, timeout: float) -> tuple[bytes, bytes, bool]:
        chan = self.chan
        eof = chan.eof_received or chan.closed
        out, err = bytearray(), bytearray()
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if eof and not chan.recv_ready() and not chan.recv_stderr_ready():
            return bytes(out), bytes(err), True
        if not out and not err:
            select.select([self.fd], [], [], timeout)
        return bytes(out), bytes(err), False

    def exited(self) -> bool:
        return self.chan.status_event.is_set()


class SshConnection:
    """An open SSH connection to one node. Calls are serialised (one exec at a time)."""

    def __init__(self, endpoint: Endpoint, options: SshOptions, transport: "paramiko.Transport",
                 jumps: list):
        self.endpoint = endpoint
        self.options = options
        self._transport = transport
        self._jumps = jumps
        self._lock = threading.Lock()
        self.connect_seconds = 0.0

    @classmethod
    def open(cls, endpoint: Endpoint, options: SshOptions) -> "SshConnection":
        start = time.perf_counter()
        transport, jumps = _connect(endpoint, options)
        conn = cls(endpoint, options, transport, jumps)
        conn.connect_seconds = time.perf_counter() - start
        return conn

    def __enter__(self) -> "SshConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        via = f" via {self.endpoint.jump.host}:{self.endpoint.jump.port}" if self.endpoint.jump else ""
        return f"<SshConnection {_where(self.endpoint)}{via}>"

    @property
    def is_root(self) -> bool:
        return self.endpoint.user == "root"

    def _session(self) -> "paramiko.Channel":
        import paramiko
        if not self._transport.is_active():
            raise _error("dropped", f"{_where(self.endpoint)}: the connection is closed")
        try:
            return self._transport.open_session(timeout=self.options.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _error("dropped", f"{_where(self.endpoint)}: cannot open a session: "
                                    f"{e or type(e).__name__}") from None

    def _exchange(self, command: str, collector: OutputCollector, payload: bytes | None,
                  password: str | None, timeout: float | None = None) -> tuple[int | None, bool]:
        """Run `command` on a new channel; returns (exit status or None if the channel closed
        without one, whether sudo refused the password). With `timeout`, a node that has not
        ended the command (its watchdog's work) TERM_GRACE + TIMEOUT_SLACK seconds after it
        is given up on: the channel is closed and the call raises `timeout`."""
        import paramiko
        chan = self._session()
        join = None
        give_up = time.monotonic() + timeout + TERM_GRACE + TIMEOUT_SLACK if timeout else None
        try:
            try:
                chan.exec_command(command)
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise _error("dropped", f"{_where(self.endpoint)}: exec failed: {e or type(e).__name__}") from None
            if payload is None:
                chan.shutdown_write()
            else:
                join = feed_stdin(collector, chan.sendall, chan.shutdown_write, payload, password)
            pipes = _ChannelPipes(chan)
            exited_at = None
            while True:
                wait = 0.5 if give_up is None else min(0.5, max(0.0, give_up - time.monotonic()))
                out, err, eof = pipes.read(wait)
                collector.stdout(out)
                collector.stderr(err)
                if eof:
                    break
                now = time.monotonic()
                if give_up is not None and now >= give_up:
                    chan.close()          # also ends a stdin writer the node no longer reads
                    raise self._late(timeout, collector)
                if pipes.exited():
                    # The command ended; something it started may hold the pipes open (after
                    # a timeout, the watchdog until its KILL).
                    exited_at = exited_at or now
                    grace = TERM_GRACE + TIMEOUT_SLACK if collector.timed_out else EXIT_GRACE
                    if now - exited_at > grace:
                        break
            collector.finish()
            chan.status_event.wait(None if give_up is None else max(0.0, give_up - time.monotonic()))
            refused = join() if join else False
            status = chan.exit_status if chan.status_event.is_set() else -1
            return (None if status == -1 else status), refused
        finally:
            collector.finish()
            chan.close()

    def _late(self, timeout: float, collector: OutputCollector) -> TransportError:
        said = ("began to stop it but did not finish" if collector.timed_out
                else "did not answer")
        return _error("timeout", f"{_where(self.endpoint)}: the bundle ran longer than the phase "
                                 f"timeout of {timeout:g} s, and the node {said} within "
                                 f"{TERM_GRACE + TIMEOUT_SLACK:g} s more; Pallet stopped "
                                 "waiting (the bundle's watchdog stops it on the node)",
                      result=collector.result(-1))

    def _dropped(self, what: str, collector: OutputCollector) -> TransportError:
        alive = self._transport.is_active()
        for _ in range(20):
            if not alive:
                break
            time.sleep(0.01)
            alive = self._transport.is_active()
        why = ("the connection broke" if not alive
               else "the remote command ended without an exit status (killed by a signal?)")
        return _error("dropped", f"{_where(self.endpoint)}: {why} while {what}",
                      result=collector.result(-1))

    def run_bundle(self, files: dict[str, bytes], script: str, shell: str = "bash",
                   on_line: Callable[[str], None] | None = None,
                   timeout: float | None = None) -> ExecResult:
        exchange, payload, password = prepare_bundle(
            files, script, shell, is_root=self.is_root,
            sudo_password=self.endpoint.sudo_password, where=_where(self.endpoint),
            timeout=timeout)
        with self._lock:
            collector = OutputCollector(on_line, exchange.started, exchange.prompt,
                                        exchange.timeout_marker)
            status, refused = self._exchange(exchange.command, collector, payload, password,
                                             timeout)
            if collector.timed_out:
                raise timed_out(self.endpoint, timeout, collector, status)
            if status is None and collector.started:
                raise self._dropped(f"running {script}", collector)
            if not collector.started:
                if status is None:
                    raise self._dropped("starting sudo", collector)
                raise sudo_failure(self.endpoint, collector, status, refused, password is not None)
            return collector.result(status)

    def run(self, command: str) -> ExecResult:
        with self._lock:
            collector = OutputCollector(None, None, None)
            status, _ = self._exchange(command, collector, None, None)
            if status is None:
                raise self._dropped(f"running {command!r}", collector)
            return collector.result(status)

    def close(self) -> None:
        self._transport.close()
        for t in reversed(self._jumps):
            t.close()
