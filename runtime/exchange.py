"""One exec's conversation, for either transport (SSH, local): its stdout and stderr as they
arrive (`OutputCollector`), its stdin (`feed_stdin`: the sudo password on sudo's prompt, then
the bundle), and what a failure to start or a timeout is called.

A second sudo prompt means a wrong password: stdin is closed at once and the call fails with
TransportError("sudo").
"""
from __future__ import annotations

import threading
from typing import Callable

from .model import Endpoint, ExecResult, TransportError, transport_error, where_of
from .wire import TERM_GRACE

__all__ = ["EXIT_GRACE", "TIMEOUT_SLACK", "OutputCollector", "feed_stdin", "sudo_failure",
           "timed_out"]

EXIT_GRACE = 2.0             # after the exit status, how long to wait for the output's EOF
                             # (a daemon the script started may hold the pipes open)
TIMEOUT_SLACK = 3.0          # a phase out of time: how much longer than its timeout and
                             # TERM_GRACE the client waits for the node to say so


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
    return transport_error("timeout", f"{where_of(endpoint)}: the bundle ran longer than the phase timeout "
                                      f"of {timeout:g} s; its processes on the node were stopped (TERM, "
                                      f"then KILL {TERM_GRACE} s later)",
                           result=collector.result(-1 if status is None else status))


def sudo_failure(endpoint: Endpoint, collector: OutputCollector, status: int,
                 refused: bool, with_password: bool) -> TransportError:
    said = collector.pre_start_stderr()
    where = where_of(endpoint)
    if refused:
        return transport_error("sudo", f"{where}: sudo refused the sudo password given for {endpoint.user}")
    if status == 127 or "not found" in said:
        return transport_error("sudo", f"{where}: {endpoint.user} is not root and sudo is not "
                                       f"installed ({said})")
    if not with_password and "password" in said.lower():
        return transport_error("sudo", f"{where}: sudo asks {endpoint.user} for a password; give a sudo "
                                       "password for this node, or allow it NOPASSWD in sudoers "
                                       f"(sudo said: {said})")
    return transport_error("sudo", f"{where}: sudo did not run the bundle for {endpoint.user} "
                                   f"(exit {status}): {said or 'no message'}")
