"""What the runtime passes between providers, transports and the executor.

A provider knows nodes (inventory files, local nodes, clouds) and says how to reach each
(`Endpoint`); a transport opens a `Connection` to an endpoint and runs a bundle on it with
one upload and one exec; the executor decides what runs where and when.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from pallet.errors import PalletError

PHASE_TIMEOUT = 3600.0       # the default bound of one node's phase, in seconds (--phase-timeout)
KEEPALIVE_INTERVAL = 15.0    # seconds between keepalive requests that need a reply (--keepalive-interval)
KEEPALIVE_COUNT = 3          # unanswered keepalives in a row that end a connection (--keepalive-count)


@dataclass(frozen=True)
class Endpoint:
    """How to reach one node."""

    host: str
    port: int = 22
    user: str = "root"
    private_key: str | None = None       # a key file; else the agent and ~/.ssh keys
    password: str | None = field(default=None, repr=False)
    sudo_password: str | None = field(default=None, repr=False)  # else `sudo -n`
    jump: "Endpoint | None" = None       # a bastion host to go through
    local: bool = False                  # run on this machine, without SSH
    known_hosts: tuple[str, ...] = ()    # its own known_hosts files (UserKnownHostsFile), else the defaults


@dataclass(frozen=True)
class NodeRecord:
    """A node as a provider knows it."""

    name: str
    group: str
    endpoint: Endpoint
    provider: str
    os_family: str | None = None          # None: detected over the connection
    os_version: str | None = None
    private_ip: str | None = None
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SshOptions:
    known_hosts: Path | None = None       # None: ~/.ssh/known_hosts
    accept_new_host_keys: bool = False    # record keys of hosts not yet known
    connect_timeout: float = 10.0
    retries: int = 2                      # further attempts after a failed connect
    use_agent: bool = True
    keepalive_interval: float = KEEPALIVE_INTERVAL    # 0: no keepalives
    keepalive_count: int = KEEPALIVE_COUNT


@dataclass(frozen=True)
class ExecResult:
    exit_status: int
    stdout: str
    stderr: str


class TransportError(PalletError):
    """A node could not be reached, the connection broke, or a bundle ran out of time. `kind`
    is one of: unreachable, timeout, auth, host-key-unknown, host-key-changed, dropped, sudo.
    It may carry `attempts` (connecting) and `result` (an ExecResult: what the bundle printed
    before it broke or was stopped)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def transport_error(kind: str, message: str, **attrs) -> TransportError:
    """A TransportError with extra attributes (attempts, result)."""
    err = TransportError(kind, message)
    for key, value in attrs.items():
        setattr(err, key, value)
    return err


def where_of(endpoint: Endpoint) -> str:
    """How messages name an endpoint: user@host:port."""
    if endpoint.local:
        return f"{endpoint.user} on this machine"
    return f"{endpoint.user}@{endpoint.host}:{endpoint.port}"


class Connection(Protocol):
    def run_bundle(self, files: dict[str, bytes], script: str, shell: str,
                   on_line: Callable[[str], None] | None = None,
                   timeout: float | None = None) -> ExecResult:
        """Upload the bundle (`files`: relative path -> bytes, the script among them) and run
        `script` with `shell` in one exec, as root (sudo for another user); stream stdout
        lines to `on_line` as they arrive. The bundle's temporary directory is removed after.
        With `timeout` (seconds), a bundle that runs longer is stopped on the node (its
        process group: TERM, then KILL) and the call raises TransportError("timeout")."""

    def run(self, command: str) -> ExecResult:
        """Run one shell command (as the login user), for facts such as the OS."""

    def close(self) -> None: ...


class Provider(Protocol):
    name: str

    def list_nodes(self) -> Sequence[NodeRecord]: ...

    def create_nodes(self, group: str, names: Sequence[str], node_spec: object) -> Sequence[NodeRecord]:
        """Create nodes for a group; raise PalletError if this provider cannot."""

    def destroy_nodes(self, names: Sequence[str]) -> None: ...
