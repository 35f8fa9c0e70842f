#!/usr/bin/python3
"""PID 1 of a Pallet local node (copied into each node as /usr/local/sbin/pallet-init).

Runs with the node's own python3, inside the node's chroot and namespaces. It is not sshd
itself so that `service ssh restart` inside the node does not end the node, and so that the
daemons `service` starts have an init that reaps them. Standard library only.

    pallet-init                          run `sshd -D` (the node's config gives the port)
    pallet-init --ssh-fd N --hostns-fd M [--proxy IP:PORT --allow HOST=IP:PORT ...]
        a node with a private network: fd N is a socket listening on the host's loopback,
        each connection gets `sshd -i`; fd M is the host's network namespace. The proxy is
        an HTTP proxy for apt that forwards requests for the allowed hosts only (Debian's
        mirror), connecting from the host's namespace; nothing else gets out.
"""
import ctypes
import fcntl
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
CLONE_NEWNET = 0x40000000
sshd: subprocess.Popen | None = None


def log(message: str) -> None:
    print(f"pallet-init: {message}", file=sys.stderr, flush=True)


def loopback_up() -> None:
    # A node with its own network namespace starts with `lo` down.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))[:18])[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def spawn(argv: list[str], stdio: int | None = None) -> int:
    # posix_spawn, not fork: this process blocks signals and has threads; children must not.
    actions = [(os.POSIX_SPAWN_DUP2, stdio, 0), (os.POSIX_SPAWN_DUP2, stdio, 1)] if stdio is not None else []
    return os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions,
                          setsigmask=(), setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))


def serve_ssh(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        try:
            spawn(["/usr/sbin/sshd", "-i", "-e"], conn.fileno())
        except OSError as e:
            log(f"cannot start sshd -i: {e}")
        finally:
            conn.close()


def serve_proxy(server: socket.socket, allowed: dict[str, tuple[str, int]], hostns: int) -> None:
    while True:
        conn, _ = server.accept()
        threading.Thread(target=proxy, args=(conn, allowed, hostns), daemon=True).start()


def proxy(conn: socket.socket, allowed: dict[str, tuple[str, int]], hostns: int) -> None:
    # apt sends absolute-form requests ("GET http://host/path HTTP/1.1") and keeps one
    # connection per host, so the first request line decides the upstream of the whole stream.
    head = b""
    while b"\n" not in head and len(head) < 8192:
        chunk = conn.recv(8192)
        if not chunk:
            conn.close()
            return
        head += chunk
    parts = head.split(b"\n", 1)[0].split()
    host = ""
    if len(parts) == 3 and parts[1].startswith(b"http://"):
        host = parts[1][7:].split(b"/", 1)[0].decode(errors="replace").lower()
    if host not in allowed:
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()
        return
    # setns changes this thread only: its upstream socket is made in the host's namespace.
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        if libc.setns(hostns, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        up = socket.create_connection(allowed[host], timeout=20)
    except OSError as e:
        log(f"proxy to {host} failed: {e}")
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()
        return
    up.settimeout(None)
    up.sendall(head)
    pump(conn, up)


def pump(a: socket.socket, b: socket.socket) -> None:
    # selectors (epoll), not select(): a descriptor above 1,024 is no error
    peers = {a: b, b: a}
    sel = selectors.DefaultSelector()
    for s in (a, b):
        sel.register(s, selectors.EVENT_READ)
    try:
        while sel.get_map():
            ready = sel.select(600)
            if not ready:
                break
            for key, _ in ready:
                s = key.fileobj
                data = s.recv(65536)
                if data:
                    peers[s].sendall(data)
                else:                   # one side is done: pass the end of stream on
                    sel.unregister(s)
                    peers[s].shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sel.close()
        a.close()
        b.close()


def reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if sshd is not None and pid == sshd.pid:
            log(f"sshd exited with status {status}")


def stop() -> None:
    # kill(-1) from PID 1 reaches every other process of this PID namespace.
    try:
        os.kill(-1, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.02)
        except ChildProcessError:
            break
    sys.exit(0)


def main(args: list[str]) -> None:
    global sshd
    options: dict[str, list[str]] = {}
    for flag, value in zip(args[::2], args[1::2]):
        options.setdefault(flag, []).append(value)
    ssh_fd = int(options["--ssh-fd"][0]) if "--ssh-fd" in options else None
    hostns = int(options["--hostns-fd"][0]) if "--hostns-fd" in options else None
    for fd in (ssh_fd, hostns):
        if fd is not None:
            os.set_inheritable(fd, False)   # no process of the node may hold the host's
    loopback_up()
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    if ssh_fd is None:
        sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e"], stdin=subprocess.DEVNULL)
    # Block before starting threads so that they inherit the mask: signals come to sigtimedwait.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT})
    if ssh_fd is not None:
        listener = socket.socket(fileno=ssh_fd)
        threading.Thread(target=serve_ssh, args=(listener,), daemon=True).start()
    if "--proxy" in options:
        here, port = options["--proxy"][0].rsplit(":", 1)
        allowed = {}
        for spec in options.get("--allow", []):
            name, upstream = spec.split("=")
            allowed[name] = (upstream.rsplit(":", 1)[0], int(upstream.rsplit(":", 1)[1]))
        server = socket.create_server((here, int(port)))     # bound before "started"
        threading.Thread(target=serve_proxy, args=(server, allowed, hostns), daemon=True).start()
    log("started")
    while True:
        # The timeout also reaps a child whose SIGCHLD came before the mask was set.
        info = signal.sigtimedwait({signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}, 5)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
            stop()
        reap()


if __name__ == "__main__":
    main(sys.argv[1:])
