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
"""
from __future__ import annotations

import threading
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
        self._thread = threading.Thread(target=self._run, daemon=True, name="pallet-keepalive")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        transport, replies = self.transport, self._replies
        seen, unanswered, sent = replies.count, 0, False
        while not self._stop.wait(self.interval):
            if not transport.is_active():
                return
            if transport.completion_event is not replies:   # a re-key of our own: ours again
                transport.completion_event = replies
            if replies.count != seen:
                seen, unanswered = replies.count, 0
            elif sent:
                unanswered += 1
            if unanswered >= self.count:
                self.dead = (f"the node stopped answering: no reply to {self.count} keepalive "
                             f"requests sent {self.interval:g} s apart")
                self._close(transport)
                return
            try:
                transport._send_user_message(_request(REQUEST))
                sent = True
            except Exception:  # noqa: BLE001 - a transport that broke: its reader says so
                return
