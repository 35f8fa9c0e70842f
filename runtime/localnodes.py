"""Local nodes: isolated Debian 12 (or Ubuntu 22.04) userlands on this machine, reached over
real SSH.

Each node is an overlayfs over one cached root filesystem of its release (RELEASES), mounted
inside a private mount namespace with its own UTS (hostname = node name), IPC and PID
namespaces. Its PID 1 is a small init (`pallet_init.py`) that runs sshd for a free port on
the host's loopback, with the node's own ed25519 host key and the state directory's key
pair in root's authorized_keys. Networks, chosen per node:

    host     the host's network namespace (the default): apt works as on the host, but the
             node's services share the host's ports (two nodes cannot both listen on :80)
    private  a network namespace of its own: its own ports and loopback; SSH still comes in
             on the host's loopback (a listening socket handed to the node, `sshd -i` per
             connection); only its apt reaches out, to its release's mirrors alone, through an
             HTTP proxy its init runs on 127.0.0.2:3142 (set in /etc/apt/apt.conf.d)
    none     a network namespace with only `lo`: reach the node with `exec_in`

Use "private" for clusters whose nodes run the same services. Nodes outlive the Python
process: everything about them lives in the state directory (default
~/.local/state/pallet/nodes, or `$PALLET_NODES_DIR`), and `list()` checks the stored pids.

Layout of a state directory::

    id_ed25519, id_ed25519.pub     the key pair that logs in as root on every node
    nodes/NAME/node.json           facts and pids of one node
    nodes/NAME/upper, work         the overlay's writable layer (the node's changes)
    nodes/NAME/root                mount point (empty from the host: the overlay lives in
                                   the node's mount namespace and vanishes with it)
    nodes/NAME/log                 the node's init and sshd output

Costs measured on a 2-core Debian 12 machine: the root filesystem (`debootstrap
--variant=minbase --include=openssh-server,python3,sudo,procps bookworm`, about 240 MB) is
built once per cache (`$PALLET_CACHE`, else ~/.cache/pallet) in 35-42 s; Ubuntu 22.04's
(jammy, from Ubuntu's archive, its Release signature checked with the archive key pinned in
archive_keys.py) in 38 s, about 145 MB. After that 10 nodes start in parallel in about
0.4 s (40 in 1.6 s), and destroying 10 takes about 0.1 s.

Inside a node there is no systemd: `service NAME start` (init.d scripts) works, `systemctl`
does not; a package's service starts on install as on a real server (the node has an init
and a runlevel for invoke-rc.d). apt works in "host" and "private" nodes when the host
reaches Debian's mirror (apt-get update plus nginx took about 4 s here).

Needs root (namespaces, mounts, chroot); without it `NodesUnavailable` says so and what to do
instead. Unprivileged user namespaces are not used, so their sysctls do not matter.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pallet.errors import PalletError

from .rootfs import (DEFAULT_OS, RELEASES, Egress, NodesUnavailable, _mirror_egress,  # noqa: F401
                     _mounts_under, _write, default_cache_dir, ensure_rootfs, file_lock, preflight,
                     release)

NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
START_TIMEOUT = 30.0
NETWORKS = ("host", "private", "none")
APT_PROXY = "127.0.0.2:3142"       # in a private node's own loopback
def default_state_dir() -> Path:
    if os.environ.get("PALLET_NODES_DIR"):
        return Path(os.environ["PALLET_NODES_DIR"])
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "pallet" / "nodes"


@dataclass(frozen=True)
class LocalNode:
    """The facts of one local node, as node.json keeps them."""

    name: str
    port: int
    private_key: str
    host_key: str                  # "ssh-ed25519 AAAA...", the node's public host key
    network: str                   # "host", "private" or "none"
    dir: str
    pid: int                       # the unshare process, leader of its process group
    init_pid: int                  # PID 1 of the node's PID namespace, as the host sees it
    start_time: int                # of init_pid, from /proc/PID/stat: guards against pid reuse
    host: str = "127.0.0.1"
    user: str = "root"
    os_family: str = "debian"
    os_version: str = "12"
    running: bool = True

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_key}"

    def inventory_entry(self, group: str | None = None) -> dict:
        """The node as a `[[node]]` table of a node-list inventory."""
        entry = {"name": self.name, "host": self.host, "port": self.port, "user": self.user,
                 "private-key": self.private_key, "os-family": self.os_family,
                 "os-version": self.os_version}
        return {**entry, "group": group} if group else entry


def _start_time(pid: int) -> int | None:
    """Start time of a live (not zombie) process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _free_ports(count: int, avoid: set[int]) -> list[int]:
    # Hold every socket until all are chosen so one call never returns the same port twice.
    socks, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            if s.getsockname()[1] not in avoid:
                ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _keypair(comment: str) -> tuple[bytes, bytes]:
    """A new ed25519 key pair in OpenSSH formats (no ssh-keygen process needed)."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    return private, public + f" {comment}\n".encode()


def _sshd_config(upper: Path, port: int) -> None:
    # In the config, not only on sshd's command line: `service ssh restart` keeps the port.
    _write(upper / "etc/ssh/sshd_config.d/pallet.conf",
           f"# Written by Pallet: this node's sshd, on loopback only.\nPort {port}\n"
           "ListenAddress 127.0.0.1\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
           "PermitRootLogin prohibit-password\nUseDNS no\n")


# Runs as PID 1 of the new namespaces (host tools), then becomes the node's init in the chroot.
_SETUP = r"""set -eu
R=$1 LOWER=$2 UPPER=$3 WORK=$4 NAME=$5
shift 5
# Never mount over the host's tree: only go on in a mount namespace of our own.
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || { echo "not in a new mount namespace" >&2; exit 97; }
case "$R" in /*/root) ;; *) echo "bad node root: $R" >&2; exit 97;; esac
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK" "$R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys" 2>/dev/null || true
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"
mkdir -m 1777 "$R/run/lock"
mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev"
for dev in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r n major minor <<DEV
$dev
DEV
  mknod -m 666 "$R/dev/$n" c "$major" "$minor"
done
mkdir "$R/dev/pts" && mkdir -m 1777 "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"; ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
hostname "$NAME"
exec chroot "$R" /usr/bin/env -i PATH=""" + NODE_PATH + r""" LANG=C.UTF-8 /usr/bin/python3 /usr/local/sbin/pallet-init "$@"
"""


class LocalNodes:
    """Create, list, run commands in and destroy local nodes kept in one state directory."""

    def __init__(self, state_dir: Path | str | None = None, cache_dir: Path | str | None = None,
                 egress: Sequence[Egress] | None = None):
        """egress: what a node with a private network may reach (default: the mirrors of the
        node's own release)."""
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.egress = list(egress) if egress is not None else _mirror_egress()
        # By default a node reaches only its own release's mirrors (an Ubuntu node not Debian's).
        self._egress_per_release = egress is None
        self._resolved: tuple[float, list[str]] | None = None
        self._checked = False
        self._procs: dict[int, subprocess.Popen] = {}   # to reap the nodes this process started
        self._log_at: dict[str, int] = {}                # where this start's log begins

    # -- keys and checks ---------------------------------------------------------------
    @property
    def private_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    def _check(self) -> None:
        if not self._checked:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            preflight(self.state_dir)
            self._checked = True

    def _ensure_keypair(self) -> str:
        with file_lock(self.state_dir / ".lock-key"):
            if not self.private_key.exists():
                private, public = _keypair("pallet-local-nodes")
                _write(self.state_dir / "id_ed25519.pub", public)
                _write(self.private_key, private, 0o600)
        return (self.state_dir / "id_ed25519.pub").read_text()

    def _dir(self, name: str) -> Path:
        return self.state_dir / "nodes" / name

    # -- create ------------------------------------------------------------------------
    def create(self, name: str, *, port: int | None = None, network: str = "host",
               os_name: str = DEFAULT_OS) -> LocalNode:
        return self.create_many([name], ports=[port] if port else None, network=network,
                                os_name=os_name)[0]

    def create_many(self, names: Sequence[str], *, ports: Sequence[int] | None = None,
                    network: str = "host", os_name: str = DEFAULT_OS) -> list[LocalNode]:
        """Create and start nodes in parallel; return when each one's sshd shows its banner.

        os_name: the release they run, a key of RELEASES (debian-12, ubuntu-22.04); each
        release's root filesystem is built once per cache.

        network: "host" (the host's network namespace; apt works, ports are shared), "private"
        (a namespace of its own: its own ports, SSH from the host's loopback, egress only to
        `self.egress`), or "none" (no network at all; use `exec_in`).
        """
        if network not in NETWORKS:
            raise PalletError(f"network must be one of {', '.join(NETWORKS)}, not {network!r}")
        names = list(names)
        for name in names:
            if not NAME_RE.match(name):
                raise PalletError(f"bad node name {name!r}: use lowercase letters, digits and '-' (a hostname)")
        if len(set(names)) != len(names):
            raise PalletError(f"node names repeat: {names}")
        release(os_name)
        self._check()
        rootfs = ensure_rootfs(self.cache_dir, os_name=os_name)
        public = self._ensure_keypair()
        with file_lock(self.state_dir / ".lock"):
            taken = [n for n in names if (self._dir(n) / "node.json").exists()]
            for name in names:              # a dir without node.json is a crashed create's
                if name not in taken:
                    shutil.rmtree(self._dir(name), ignore_errors=True)
            if taken:
                raise PalletError(f"local node(s) already exist: {', '.join(taken)} (destroy them first)")
            chosen = not ports              # ports we chose may move if taken; asked-for ones not
            ports = list(ports) if ports else _free_ports(len(names), {n.port for n in self.list()})
            try:
                for name, p in zip(names, ports):
                    self._prepare(name, p, network, rootfs, public, os_name)
            except BaseException:
                self._undo(names)
                raise
        try:
            return self._wait_ready({name: self._spawn(name) for name in names}, move_ports=chosen)
        except BaseException:
            self._undo(names)               # all or nothing: no half-made nodes stay behind
            raise

    def _undo(self, names: Sequence[str]) -> None:
        for name in names:
            if (self._dir(name) / "node.json").exists():
                self.destroy(name)
            else:
                shutil.rmtree(self._dir(name), ignore_errors=True)

    def _prepare(self, name: str, port: int, network: str, rootfs: Path, public: str,
                 os_name: str = DEFAULT_OS) -> None:
        d = self._dir(name)
        upper = d / "upper"
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True)
        # Directories made in the upper layer hide the lower ones' modes: match Debian's.
        for rel, mode in (("etc", 0o755), ("etc/ssh", 0o755), ("etc/ssh/sshd_config.d", 0o755),
                          ("usr", 0o755), ("usr/sbin", 0o755), ("usr/local", 0o755), ("usr/local/sbin", 0o755),
                          ("root", 0o700), ("root/.ssh", 0o700)):
            (upper / rel).mkdir(exist_ok=True)
            (upper / rel).chmod(mode)
        host_private, host_public = _keypair(f"root@{name}")
        _write(upper / "etc/ssh/ssh_host_ed25519_key", host_private, 0o600)
        _write(upper / "etc/ssh/ssh_host_ed25519_key.pub", host_public)
        _sshd_config(upper, port)
        _write(upper / "root/.ssh/authorized_keys", public, 0o600)
        _write(upper / "etc/hostname", f"{name}\n")
        _write(upper / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n"
               "::1\tlocalhost ip6-localhost ip6-loopback\n")
        if network == "private":
            # apt of a private node goes out through its init's proxy, to the mirror only.
            _write(upper / "etc/apt/apt.conf.d/00pallet-proxy",
                   f'// Written by Pallet: a private local node reaches its releases\' mirrors only.\n'
                   f'Acquire::http::Proxy "http://{APT_PROXY}/";\n')
        if network == "host" and Path("/etc/resolv.conf").exists():
            _write(upper / "etc/resolv.conf", Path("/etc/resolv.conf").read_bytes())
        _write(upper / "usr/local/sbin/pallet-init",
               (Path(__file__).parent / "pallet_init.py").read_bytes(), 0o755)
        # invoke-rc.d starts a package's service on install (as on a real server) only when
        # there is an init and it knows the runlevel.
        (upper / "usr/sbin/init").symlink_to("/usr/local/sbin/pallet-init")
        _write(upper / "usr/sbin/runlevel", "#!/bin/sh\necho N 2\n", 0o755)
        self._save(name, {"name": name, "port": port, "network": network, "rootfs": str(rootfs),
                          "os": os_name,
                          "private_key": str(self.private_key), "host_key": " ".join(host_public.decode().split()[:2]),
                          "dir": str(d), "pid": 0, "pid_start": 0, "init_pid": 0, "start_time": 0})

    def _spawn(self, name: str) -> subprocess.Popen:
        for pid, old in list(self._procs.items()):     # reap nodes of ours that died
            if old.poll() is not None:
                del self._procs[pid]
        rec = self._load(name)
        d = Path(rec["dir"])
        argv = ["unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child",
                *([] if rec["network"] == "host" else ["--net"]),
                "sh", "-c", _SETUP, "pallet-node", str(d / "root"), rec["rootfs"],
                str(d / "upper"), str(d / "work"), name]
        fds: list[int] = []
        listener = None
        if rec["network"] == "private":
            # The node's sshd is reached through a socket listening on the host's loopback,
            # made here and handed down; the node's own namespace has no route out.
            try:
                listener = socket.create_server(("127.0.0.1", rec["port"]), backlog=64)
            except OSError as e:
                raise PalletError(f"local node {name}: cannot listen on 127.0.0.1:{rec['port']}: {e}") from None
            fds = [listener.fileno(), os.open("/proc/self/ns/net", os.O_RDONLY)]
            argv += ["--ssh-fd", str(fds[0]), "--hostns-fd", str(fds[1])]
            argv += ["--proxy", APT_PROXY]
            own = {e[0] for e in _mirror_egress(rec.get("os", DEFAULT_OS))}
            for (name_port, _, port), address in zip(self.egress, self._upstreams()):
                if address and (name_port in own or not self._egress_per_release):
                    argv += ["--allow", f"{name_port}={address}:{port}"]
        try:
            with open(d / "log", "ab") as log:
                self._log_at[name] = log.tell()
                # A session of its own: the node is not killed with the caller's terminal or group.
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        start_new_session=True, pass_fds=fds,
                                        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        finally:
            if listener is not None:
                listener.close()
                os.close(fds[1])
        self._procs[proc.pid] = proc
        rec["pid"], rec["pid_start"] = proc.pid, _start_time(proc.pid)
        self._save(name, rec)
        return proc

    def _upstreams(self) -> list[str | None]:
        """The egress hosts' addresses, looked up on the host at most once a minute."""
        if self._resolved is None or time.monotonic() - self._resolved[0] > 60:
            found: list[str | None] = []
            for _, host, port in self.egress:
                try:
                    found.append(socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
                except OSError:
                    found.append(None)          # apt will say it cannot reach the mirror
            self._resolved = (time.monotonic(), found)
        return self._resolved[1]

    def _wait_ready(self, procs: dict[str, subprocess.Popen], move_ports: bool = False) -> list[LocalNode]:
        deadline = time.monotonic() + START_TIMEOUT
        pending = dict(procs)
        retries = dict.fromkeys(procs, 0)
        while pending:
            for name, proc in list(pending.items()):
                rec = self._load(name)
                if proc.poll() is not None:
                    raise self._failed(name, f"its process exited with status {proc.returncode}")
                if not rec["init_pid"]:
                    kids = _children(proc.pid)
                    if not kids:
                        continue
                    rec["init_pid"], rec["start_time"] = kids[0], _start_time(kids[0]) or 0
                    self._save(name, rec)
                log = self._log(name)
                if "pallet-init: started" not in log:
                    continue
                # A node without network has its loopback to itself: ask its sshd's pid file.
                ready = (Path(f"/proc/{rec['init_pid']}/root/run/sshd.pid").exists()
                         if rec["network"] == "none" else _banner(rec["port"]))
                if ready:
                    del pending[name]
                    continue
                if "sshd exited" not in log:
                    continue
                if "Address already in use" in log and move_ports and rec["network"] == "host" and retries[name] < 3:
                    # Another program took the port between our choice and sshd's bind.
                    retries[name] += 1
                    self._stop([rec])
                    rec.update(port=_free_ports(1, {n.port for n in self.list()})[0],
                               pid=0, pid_start=0, init_pid=0, start_time=0)
                    _sshd_config(Path(rec["dir"]) / "upper", rec["port"])
                    self._save(name, rec)
                    pending[name] = self._spawn(name)
                else:
                    raise self._failed(name, "its sshd exited")
            if pending and time.monotonic() > deadline:
                raise self._failed(next(iter(pending)), f"no SSH banner within {START_TIMEOUT:.0f} s")
            if pending:
                time.sleep(0.02)
        return [self.get(name) for name in procs]

    def _log(self, name: str) -> str:
        with open(self._dir(name) / "log", "rb") as f:
            f.seek(self._log_at.get(name, 0))
            return f.read().decode(errors="replace")

    def _failed(self, name: str, why: str) -> PalletError:
        return PalletError(f"local node {name} did not start: {why}; "
                           f"its log ({self._dir(name)}/log) says:\n{self._log(name)[-1500:]}")

    def start(self, name: str) -> LocalNode:
        """Start a stopped node again (after a reboot, say) with its files and port."""
        node = self.get(name)
        if node.running:
            return node
        self._check()
        self._save(name, {**self._load(name), "pid": 0, "pid_start": 0, "init_pid": 0, "start_time": 0})
        return self._wait_ready({name: self._spawn(name)})[0]

    # -- state -------------------------------------------------------------------------
    def _save(self, name: str, rec: dict) -> None:
        path = self._dir(name) / "node.json"
        tmp = path.with_suffix(f".tmp.{os.getpid()}")
        tmp.write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    def _load(self, name: str) -> dict:
        try:
            return json.loads((self._dir(name) / "node.json").read_text())
        except FileNotFoundError:
            raise PalletError(f"no local node named {name!r} in {self.state_dir}") from None

    def _alive(self, rec: dict) -> bool:
        return bool(rec["init_pid"]) and _start_time(rec["init_pid"]) == rec["start_time"]

    def get(self, name: str) -> LocalNode:
        rec = self._load(name)
        fields = {k: rec[k] for k in ("name", "port", "private_key", "host_key", "network", "dir",
                                      "pid", "init_pid", "start_time")}
        rel = RELEASES.get(rec.get("os", DEFAULT_OS)) or RELEASES[DEFAULT_OS]
        return LocalNode(**fields, os_family=rel.family, os_version=rel.version,
                         running=self._alive(rec))

    def list(self) -> list[LocalNode]:
        """Every node of this state directory; `running` is false where its init is gone."""
        root = self.state_dir / "nodes"
        names = sorted(p.parent.name for p in root.glob("*/node.json")) if root.is_dir() else []
        return [self.get(n) for n in names]

    # -- use ---------------------------------------------------------------------------
    def exec_in(self, name: str, argv: Sequence[str], *, input: str | None = None,
                timeout: float | None = 60, check: bool = False) -> subprocess.CompletedProcess:
        """Run argv as root inside the node (its namespaces and root), without SSH."""
        rec = self._load(name)
        if not self._alive(rec):
            raise PalletError(f"local node {name} is not running")
        cmd = ["nsenter", f"--target={rec['init_pid']}", "--mount", "--uts", "--ipc", "--pid",
               "--net", "--root", "--wd", "--", "/usr/bin/env", "-i", f"PATH={NODE_PATH}",
               "HOME=/root", "LANG=C.UTF-8", "USER=root", *argv]
        return subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout, check=check)

    # -- destroy -----------------------------------------------------------------------
    def destroy(self, name: str) -> None:
        """Stop the node by its stored pids, then remove its directory (its changes)."""
        self.destroy_many([name])

    def destroy_all(self) -> None:
        self.destroy_many([node.name for node in self.list()])

    def destroy_many(self, names: Sequence[str]) -> None:
        recs = [self._load(name) for name in names]
        self._stop(recs)
        for rec in recs:
            d = Path(rec["dir"])
            for point in _mounts_under(d):      # none normally: the mounts die with the namespace
                subprocess.run(["umount", "-l", point], capture_output=True)
            shutil.rmtree(d)

    def _stop(self, recs: list[dict]) -> None:
        """Stop nodes by their stored pids (checked against their start times)."""
        # PID 1 of each node stops its processes; the kernel kills what is left when it exits.
        for rec in recs:
            if self._alive(rec):
                os.kill(rec["init_pid"], signal.SIGTERM)
        self._gone(lambda: not any(self._alive(r) for r in recs), 3)
        for rec in recs:
            if self._alive(rec):
                os.kill(rec["init_pid"], signal.SIGKILL)
            if rec["pid"] and _start_time(rec["pid"]) == rec.get("pid_start"):
                try:
                    os.killpg(rec["pid"], signal.SIGKILL)   # unshare leads its own process group
                except ProcessLookupError:
                    pass
            proc = self._procs.pop(rec["pid"], None)
            if proc is not None:
                proc.wait(timeout=10)                   # ours: reap it, or it stays a zombie
        self._gone(lambda: not any(self._alive(r) or _start_time(r["pid"]) == r.get("pid_start")
                                   for r in recs), 10)

    @staticmethod
    def _gone(done, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

