"""Dead-peer detection for an SSH connection: keepalive requests that need an answer.

paramiko's own keepalive (`Transport.set_keepalive`) asks for no reply, so a node whose sshd
is frozen (SIGSTOP, a hung machine behind a live kernel) still looks alive: the kernel ACKs
the packets. As OpenSSH's ServerAliveInterval / ServerAliveCountMax do, every `interval`
seconds a global request `keepalive@openssh.com` with want-reply goes out; every SSH server
answers it (OpenSSH with a failure reply: it knows no such request, which is the point). When
`count` requests in a row get no answer, the node is given up on: the transport is closed,
which ends whatever waits on it, and `dead` says why. With the defaults (runtime/model.py: 15 s, 3), a frozen
node is reported 45 to 60 s after it stopped answering.

Replies are counted through the transport's `completion_event`, which paramiko sets on every
global-request reply (success or failure) and after a key exchange; nothing else of this
runtime waits on it once the handshake is done.

One thread keeps the time of every connection's keepalives (a fleet's run holds hundreds of
connections, most ended before their first keepalive is due: a thread each cost its start
for nothing). Each request is sent from a thread of its own, so a send that blocks (a peer
that stopped reading, its socket buffer full) holds up no other connection; while it is
blocked, that connection's beats are neither sent nor counted, as when its own thread sent.
"""
from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

__all__ = ["Heartbeat"]

REQUEST = "keepalive@openssh.com"


class _Replies:
    """Stands in for paramiko's completion_event: counts the calls of `set`."""

    def __init__(self) -> None:
        self.count = 0

    def set(self) -> None:
        self.count += 1

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:  # pragma: no cover - not called after kex
        return False


def _request(kind: str) -> "paramiko.Message":
    import paramiko
    from paramiko.common import cMSG_GLOBAL_REQUEST
    m = paramiko.Message()
    m.add_byte(cMSG_GLOBAL_REQUEST)
    m.add_string(kind)
    m.add_boolean(True)         # want-reply: the one thing paramiko's keepalive leaves out
    return m


class _Clock:
    """The one thread that wakes each heartbeat when its next keepalive is due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, "Heartbeat"]] = []   # a heap: (when, order, beat)
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, beat: "Heartbeat", when: float) -> None:
        with self._cond:
            heapq.heappush(self._due, (when, next(self._order), beat))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="pallet-keepalive")
                self._thread.start()
            elif self._due[0][2] is beat:     # due before what the thread waits for
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._due:
                        self._cond.wait()
                        continue
                    when, _, beat = self._due[0]
                    delay = when - time.monotonic()
                    if delay <= 0:
                        heapq.heappop(self._due)
                        break
                    self._cond.wait(delay)
            try:
                again = beat._beat()
            except Exception:  # noqa: BLE001 - one connection's failure stops only its beats
                again = False
            if again:
                self.add(beat, max(when + beat.interval, time.monotonic()))


_clock: _Clock | None = None
_clock_lock = threading.Lock()


def _the_clock() -> _Clock:
    global _clock
    with _clock_lock:
        if _clock is None:
            _clock = _Clock()
        return _clock


def _forget_clock() -> None:
    """In a forked child the clock's thread does not exist (and its lock may be held)."""
    global _clock, _clock_lock
    _clock, _clock_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_clock)


class Heartbeat:
    """Sends keepalive requests on an authenticated transport and closes it when the peer
    answers none of `count` in a row."""

    def __init__(self, transport: "paramiko.Transport", interval: float, count: int,
                 close: "Callable[[paramiko.Transport], None] | None" = None):
        self.transport = transport
        self._close = close or (lambda t: t.close())   # how a dead peer's transport is closed
        self.interval = interval
        self.count = max(1, count)
        self.dead: str | None = None     # why the connection was given up on
        self._stop = threading.Event()
        self._replies = _Replies()
        transport.completion_event = self._replies
        self._seen, self._unanswered, self._sent = self._replies.count, 0, False
        self._sending = False            # a request's send has not returned yet
        _the_clock().add(self, time.monotonic() + interval)

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> bool:
        """One interval has passed: count, give up on the peer, or send. Whether to go on."""
        transport, replies = self.transport, self._replies
        if self._stop.is_set() or not transport.is_active():
            return False
        if self._sending:                # blocked in the send: nothing to count yet
            return True
        if transport.completion_event is not replies:   # a re-key of our own: ours again
            transport.completion_event = replies
        if replies.count != self._seen:
            self._seen, self._unanswered = replies.count, 0
        elif self._sent:
            self._unanswered += 1
        if self._unanswered >= self.count:
            self.dead = (f"the node stopped answering: no reply to {self.count} keepalive "
                         f"requests sent {self.interval:g} s apart")
            threading.Thread(target=self._close, args=(transport,), daemon=True,
                             name="pallet-keepalive-close").start()
            return False
        self._sending = True
        threading.Thread(target=self._send, daemon=True, name="pallet-keepalive-send").start()
        return True

    def _send(self) -> None:
        try:
            self.transport._send_user_message(_request(REQUEST))
            self._sent = True
        except Exception:  # noqa: BLE001 - a transport that broke: its reader says so
            self._stop.set()
        finally:
            self._sending = False
