#!/usr/bin/python3
"""PID 1 of a Pallet local node (copied into each node as /usr/local/sbin/pallet-init).

Runs with the node's own python3, inside the node's chroot and namespaces. It is not sshd
itself so that `service ssh restart` inside the node does not end the node, and so that the
daemons `service` starts have an init that reaps them. Standard library only.
"""
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import time

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
sshd: subprocess.Popen


def loopback_up() -> None:
    # A node with its own network namespace starts with `lo` down; sshd binds 127.0.0.1.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))[:18])[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == sshd.pid:
            print(f"pallet-init: sshd exited with status {status}", file=sys.stderr, flush=True)


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


def main() -> None:
    global sshd
    loopback_up()
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e"], stdin=subprocess.DEVNULL)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT})
    print("pallet-init: started", file=sys.stderr, flush=True)
    while True:
        # The timeout also reaps a child whose SIGCHLD came before the mask was set.
        info = signal.sigtimedwait({signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}, 5)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
            stop()
        reap()


if __name__ == "__main__":
    main()
