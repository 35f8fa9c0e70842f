"""The local transport: run bundles and commands on this machine, without SSH.

The same wrapper as over SSH (the bundle as a tar stream on stdin, unpacked into a fresh
`mktemp -d` directory that an EXIT trap removes), run by a subprocess instead of an exec
channel, so a bundle behaves the same whichever way it arrives. As root it runs directly;
as another user through `sudo -n`, or `sudo -S` with the endpoint's sudo password (sent
only when sudo prompts, as over SSH).
"""
from __future__ import annotations

import os
import pwd
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import replace
from typing import Callable

from pallet.errors import PalletError

from .model import Endpoint, ExecResult, TransportError
from .exchange import EXIT_GRACE, TIMEOUT_SLACK, OutputCollector, feed_stdin, sudo_failure, timed_out
from .wire import TERM_GRACE, prepare_bundle

__all__ = ["LocalConnection"]


class LocalConnection:
    """A Connection to this machine. Calls are serialised (one process at a time)."""

    def __init__(self, endpoint: Endpoint | None = None):
        endpoint = endpoint or Endpoint(host="localhost", local=True)
        # Bundles run as this process's user (root, or sudo from it): name it in messages.
        self.endpoint = replace(endpoint, user=pwd.getpwuid(os.geteuid()).pw_name, local=True)
        self._lock = threading.Lock()
        self.connect_seconds = 0.0

    def __enter__(self) -> "LocalConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<LocalConnection>"

    @property
    def is_root(self) -> bool:
        return os.geteuid() == 0

    def _exchange(self, argv: list[str], collector: OutputCollector, payload: bytes | None,
                  password: str | None, timeout: float | None = None) -> tuple[int, bool]:
        try:
            # A session of its own: the wrapper's watchdog stops its process group, not ours.
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
        except FileNotFoundError as e:
            raise PalletError(f"cannot run {argv[0]} on this machine: {e.strerror}") from None
        join = None
        give_up = time.monotonic() + timeout + TERM_GRACE + TIMEOUT_SLACK if timeout else None
        try:
            if payload is None:
                proc.stdin.close()
            else:
                def send(data: bytes, pipe=proc.stdin) -> None:
                    view = memoryview(data)
                    while view:
                        view = view[pipe.write(view):]
                join = feed_stdin(collector, send, proc.stdin.close, payload, password)
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ, collector.stdout)
            sel.register(proc.stderr, selectors.EVENT_READ, collector.stderr)
            open_pipes = 2
            exited_at = None
            while open_pipes:
                for key, _ in sel.select(0.5):
                    data = os.read(key.fd, 65536)
                    if data:
                        key.data(data)
                    else:
                        sel.unregister(key.fileobj)
                        open_pipes -= 1
                now = time.monotonic()
                if give_up is not None and now >= give_up and proc.poll() is None:
                    raise TransportError("timeout", f"this machine: the bundle ran longer "
                                                    f"than the phase timeout of {timeout:g} s "
                                                    "and did not stop")
                if proc.poll() is not None:
                    # The command ended; something it started may hold the pipes open.
                    exited_at = exited_at or now
                    grace = TERM_GRACE + TIMEOUT_SLACK if collector.timed_out else EXIT_GRACE
                    if now - exited_at > grace:
                        break
            sel.close()
            collector.finish()
            status = proc.wait()
            refused = join() if join else False
            return status, refused
        finally:
            collector.finish()
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:       # root's, through sudo: its own watchdog stops it
                    pass
                try:
                    proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()

    def run_bundle(self, files: dict[str, bytes], script: str, shell: str = "bash",
                   on_line: Callable[[str], None] | None = None,
                   timeout: float | None = None) -> ExecResult:
        exchange, payload, password = prepare_bundle(
            files, script, shell, is_root=self.is_root,
            sudo_password=self.endpoint.sudo_password, where="this machine", timeout=timeout)
        with self._lock:
            collector = OutputCollector(on_line, exchange.started, exchange.prompt,
                                        exchange.timeout_marker)
            status, refused = self._exchange(exchange.argv, collector, payload, password, timeout)
            if collector.timed_out:
                raise timed_out(self.endpoint, timeout, collector, status)
            if not collector.started:
                raise sudo_failure(self.endpoint, collector, status, refused, password is not None)
            return collector.result(status)

    def run(self, command: str) -> ExecResult:
        with self._lock:
            collector = OutputCollector(None, None, None)
            status, _ = self._exchange(["sh", "-c", command], collector, None, None)
            return collector.result(status)

    def close(self) -> None:
        pass
