"""Faults made for real on local nodes (the recipes of FAULT-NOTES.md), shared by the tests and
the fault suite (tests/fault_suite.py).

Nothing here is a double: a frozen session is the node's own sshd stopped with SIGSTOP, a
reboot is the node's PID 1 killed and the node started again, latency is a TCP proxy that
holds each chunk for a while before passing it on.
"""
from __future__ import annotations

import heapq
import os
import signal
import socket
import threading
import time

from pallet.runtime.localnodes import LocalNodes


def node_ps(manager: LocalNodes, name: str) -> list[tuple[int, int, str]]:
    """(pid, ppid, args) of every process of the node, as its own PID namespace numbers them."""
    out = manager.exec_in(name, ["ps", "-e", "-o", "pid=,ppid=,args="], check=True).stdout
    rows = []
    for line in out.splitlines():
        pid, ppid, args = line.split(None, 2) if len(line.split(None, 2)) == 3 else (*line.split(), "")
        rows.append((int(pid), int(ppid), args))
    return rows


def _listener(rows: list[tuple[int, int, str]]) -> int:
    """sshd's listener: the sshd that the node's init started."""
    return next(pid for pid, ppid, args in rows if ppid == 1 and "sshd" in (args.split() or [""])[0])


def listener_pid(manager: LocalNodes, name: str) -> int:
    return _listener(node_ps(manager, name))


def session_tree(manager: LocalNodes, name: str) -> list[int]:
    """The pids (node's numbering) of every SSH session's sshd and everything under them: the
    listener's children and their descendants, not the listener."""
    rows = [r for r in node_ps(manager, name) if "ps -e -o" not in r[2]]
    listener = _listener(rows)
    tree, todo = [], [pid for pid, ppid, _ in rows if ppid == listener]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += [p for p, pp, _ in rows if pp == pid]
    return tree


def signal_in(manager: LocalNodes, name: str, sig: str, pids: list[int]) -> None:
    if pids:
        manager.exec_in(name, ["kill", f"-{sig}", *map(str, pids)])


def freeze_sessions(manager: LocalNodes, name: str) -> list[int]:
    """SIGSTOP every session's sshd and what runs under it; returns the pids (for thaw)."""
    pids = session_tree(manager, name)
    signal_in(manager, name, "STOP", pids)
    return pids


def thaw(manager: LocalNodes, name: str, pids: list[int]) -> None:
    signal_in(manager, name, "CONT", pids)


def drop_sessions(manager: LocalNodes, name: str) -> list[int]:
    """kill -9 every session's sshd (the listener's children): their connections drop.
    Returns the pids killed."""
    rows = node_ps(manager, name)
    listener = _listener(rows)
    pids = [pid for pid, ppid, args in rows if ppid == listener and "ps -e -o" not in args]
    signal_in(manager, name, "KILL", pids)
    return pids


def reboot(manager: LocalNodes, name: str) -> float:
    """kill -9 the node's PID 1 (every process of the node dies with it), then start the node
    again with its files and port; returns the seconds it was away."""
    node = manager.get(name)
    start = time.monotonic()
    os.kill(node.init_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while manager.get(name).running and time.monotonic() < deadline:
        time.sleep(0.02)
    manager.start(name)
    return time.monotonic() - start


class DelayProxy:
    """A TCP proxy on 127.0.0.1 to `port` that delivers every chunk `delay` seconds after it
    arrived, in each direction (a link with that one-way latency, in user space: this kernel
    has no netem). `close()` ends it and every connection through it."""

    def __init__(self, port: int, delay: float):
        self.target, self.delay = port, delay
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.server.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                a.close()
                continue
            self.socks += [a, b]
            for src, dst in ((a, b), (b, a)):
                queue: list = []
                cond = threading.Condition()
                threading.Thread(target=self._read, args=(src, queue, cond), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, queue, cond), daemon=True).start()

    def _read(self, src: socket.socket, queue: list, cond: threading.Condition) -> None:
        n = 0
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with cond:
                n += 1
                heapq.heappush(queue, (time.monotonic() + self.delay, n, data))
                cond.notify()
            if not data:
                return

    def _write(self, dst: socket.socket, queue: list, cond: threading.Condition) -> None:
        while True:
            with cond:
                while not queue:
                    cond.wait()
                due, _, data = queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    cond.wait(wait)
                    continue
                heapq.heappop(queue)
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
