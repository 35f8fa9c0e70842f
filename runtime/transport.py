"""SSH transport (paramiko): one connection per node, one exec per bundle.

`open_connection(endpoint, options)` connects (through a jump host if the endpoint names one),
checks the host key (runtime/known_hosts.py), authenticates (runtime/ssh_auth.py), and
returns a `Connection` that stays open across calls. `run_bundle` ships a bundle on the stdin
of ONE exec, in the form runtime/wire.py makes; stdout lines stream to a callback as they
arrive (runtime/exchange.py). With a timeout, the node stops a bundle that runs longer and the
call raises TransportError("timeout").

Every failure to connect is a TransportError of a kind: unreachable and timeout (the network,
a server too slow or gone: retried, `options.retries` times), auth and host-key-* (never
retried). A connection that broke since its last use is made again, with the same retries,
before the next exec on it (a node rebooted between phases). Keepalive requests that need an
answer (runtime/heartbeat.py) end a connection whose node stopped answering.

paramiko is imported inside the functions that need it, so importing this module is cheap.
"""
from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Callable

from .exchange import EXIT_GRACE, TIMEOUT_SLACK, OutputCollector, feed_stdin, sudo_failure, timed_out
from .heartbeat import Heartbeat
from .known_hosts import check_host_key, host_keys_of, ordered_transport
from .model import Endpoint, ExecResult, SshOptions, TransportError, transport_error, where_of
from .ssh_auth import authenticate
from .wire import TERM_GRACE, prepare_bundle

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

__all__ = ["open_connection", "SshConnection"]

BACKOFF = 0.25               # seconds before the first retry; doubled each time, at most 2 s
TCP_USER_TIMEOUT_MS = 120_000   # unacknowledged data this long: the connection is dead
# paramiko's transport thread wakes every 0.1 s on an idle socket (its read timeout) to see
# whether it was closed: ten wakeups a second per node while a fleet waits for its slowest
# node or for the compiler. Once logged in, it waits this long instead; closing shuts the
# socket down first, which ends the wait at once (`_close_transport`).
IDLE_READ_TIMEOUT = 1.0


def _retryable(err: TransportError) -> bool:
    return err.kind in ("unreachable", "timeout")


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
        raise transport_error("unreachable", f"cannot resolve {endpoint.host}: {e.strerror}") from None
    except (socket.timeout, TimeoutError):
        raise transport_error("timeout", f"no answer from {where} within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise transport_error("unreachable", f"{where} refused the connection (no SSH server on "
                                             "that port?)") from None
    except OSError as e:
        if e.errno == errno.ETIMEDOUT:
            raise transport_error("timeout", f"no answer from {where} within {timeout:g} s") from None
        raise transport_error("unreachable", f"cannot reach {where}: {e.strerror or e}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
    return sock


def _handshake_error(e: BaseException, where: str, timeout: float) -> TransportError:
    cause = e.__cause__ or e.__context__
    if (isinstance(e, (socket.timeout, TimeoutError)) or isinstance(cause, (socket.timeout, TimeoutError))
            or "timed out" in str(e)):
        return transport_error("timeout", f"{where} accepted the connection but sent no SSH banner or "
                                          f"handshake within {timeout:g} s")
    if isinstance(cause, (EOFError, ConnectionResetError)) or isinstance(e, (EOFError, ConnectionResetError)):
        return transport_error("unreachable", f"SSH handshake with {where} failed: the server closed "
                                              "the connection (not an SSH server, or too busy?)")
    return transport_error("unreachable", f"SSH handshake with {where} failed: {e or type(e).__name__}")


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
    file, known, portless = host_keys_of(endpoint, options)
    transport = ordered_transport(sock, known)    # certificates first for a host with a CA
    ok = False
    try:
        transport.banner_timeout = options.connect_timeout
        transport.handshake_timeout = options.connect_timeout
        transport.auth_timeout = max(options.connect_timeout, 10.0)
        try:
            transport.start_client(timeout=2 * options.connect_timeout)
            # start_client returns quietly when its time is up: the exchange is not done.
            if not transport.initial_kex_done or not transport.is_active():
                raise socket.timeout("timed out")
            server_key = transport.get_remote_server_key()
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _handshake_error(e, where, options.connect_timeout) from None
        check_host_key(endpoint, options, server_key, known, file, portless)
        try:
            authenticate(transport, endpoint, options)
        except (paramiko.SSHException, EOFError, OSError) as e:   # what ssh_auth does not map
            raise _handshake_error(e, where, options.connect_timeout) from None
        sock.settimeout(IDLE_READ_TIMEOUT)     # a socket, or a channel through a jump host
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
        raise transport_error(e.kind, f"jump host {where_of(endpoint.jump)}: {e.message}",
                              attempts=getattr(e, "attempts", 1)) from None
    jumps = [*under, jump_transport]

    def through_jump():
        try:
            chan = jump_transport.open_channel("direct-tcpip", (endpoint.host, endpoint.port),
                                               ("127.0.0.1", 0), timeout=options.connect_timeout)
        except paramiko.ChannelException as e:
            raise transport_error("unreachable", f"jump host {endpoint.jump.host}:{endpoint.jump.port} "
                                                 f"could not reach {endpoint.host}:{endpoint.port}: "
                                                 f"{e.text}") from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            text = str(e) or type(e).__name__
            kind = "timeout" if "timeout" in text.lower() else "unreachable"
            raise transport_error(kind, f"jump host {endpoint.jump.host}:{endpoint.jump.port}: cannot open a "
                                        f"channel to {endpoint.host}:{endpoint.port}: {text}") from None
        return _handshake(endpoint, options, chan)

    try:
        return _with_retries(through_jump, options), jumps
    except BaseException:
        for t in reversed(jumps):
            t.close()
        raise


# -- the connection ------------------------------------------------------------------------

class _Wakeup:
    """What paramiko's BufferedPipe calls when data arrives or the stream closes (`set`) or
    it is drained (`clear`): it wakes the one reader of both streams, without a descriptor
    (Channel.fileno makes a pipe per channel, which select() cannot watch above 1,024)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def set(self) -> None:
        self.event.set()

    def clear(self) -> None:
        pass        # the reader clears the shared event itself, before it drains both


class _ChannelPipes:
    """Reads an exec channel's stdout and stderr as data arrives (one thread, woken by either)."""

    def __init__(self, chan: "paramiko.Channel"):
        self.chan = chan
        self.ready = threading.Event()
        wakeup = _Wakeup(self.ready)
        chan.in_buffer.set_event(wakeup)
        chan.in_stderr_buffer.set_event(wakeup)

    def read(self, timeout: float) -> tuple[bytes, bytes, bool]:
        chan = self.chan
        self.ready.clear()      # first: data that arrives while we drain sets it again
        eof = chan.eof_received or chan.closed
        out, err = bytearray(), bytearray()
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if eof and not chan.recv_ready() and not chan.recv_stderr_ready():
            return bytes(out), bytes(err), True
        if not out and not err:
            self.ready.wait(timeout)
        return bytes(out), bytes(err), False

    def exited(self) -> bool:
        return self.chan.status_event.is_set()


class SshConnection:
    """An open SSH connection to one node. Calls are serialised (one exec at a time)."""

    def __init__(self, endpoint: Endpoint, options: SshOptions, transport: "paramiko.Transport",
                 jumps: list):
        self.endpoint = endpoint
        self.options = options
        self._lock = threading.Lock()
        self.connect_seconds = 0.0
        self.reconnects = 0          # connections made again after one broke between uses
        self._closed = False         # closed by its user: never made again
        self._use(transport, jumps)

    def _use(self, transport: "paramiko.Transport", jumps: list) -> None:
        self._transport = transport
        self._jumps = jumps
        interval = self.options.keepalive_interval
        self._heartbeat = (Heartbeat(transport, interval, self.options.keepalive_count,
                                     close_transport)
                           if interval and interval > 0 else None)

    def _gone_why(self) -> str:
        """Why the transport is closed, as far as known."""
        dead = self._heartbeat.dead if self._heartbeat is not None else None
        return dead or "the connection broke"

    def _reconnect(self, why: str) -> None:
        """The connection broke since its last use (a node rebooted between phases): make it
        again, with the usual retries. A failure then is the node's failure. A connection its
        user closed (the run was interrupted) stays closed."""
        if self._closed:
            raise transport_error("dropped", f"{where_of(self.endpoint)}: the connection is closed")
        self._close_transports()
        try:
            transport, jumps = _connect(self.endpoint, self.options)
        except TransportError as e:
            raise transport_error(e.kind, f"{where_of(self.endpoint)}: {why}, and connecting again "
                                          f"failed: {e.message}",
                                  attempts=getattr(e, "attempts", 1)) from None
        self._use(transport, jumps)
        if self._closed:         # closed while connecting again
            self._close_transports()
            raise transport_error("dropped", f"{where_of(self.endpoint)}: the connection is closed")
        self.reconnects += 1

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
        return f"<SshConnection {where_of(self.endpoint)}{via}>"

    @property
    def is_root(self) -> bool:
        return self.endpoint.user == "root"

    def _session(self) -> "paramiko.Channel":
        """A new channel; a connection found broken (nothing runs on it yet) is made again."""
        import paramiko
        if not self._transport.is_active():
            self._reconnect(f"{self._gone_why()} since its last use")
        try:
            return self._transport.open_session(timeout=self.options.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            first = e
        # The channel was refused or not answered: nothing ran. Once more on a new connection.
        self._reconnect(f"opening a session failed ({first or type(first).__name__})")
        try:
            return self._transport.open_session(timeout=self.options.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise transport_error("dropped", f"{where_of(self.endpoint)}: cannot open a session: "
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
                raise transport_error("dropped", f"{where_of(self.endpoint)}: exec failed: "
                                                 f"{e or type(e).__name__}") from None
            if payload is None:
                chan.shutdown_write()
            elif password is None and len(payload) <= chan.out_window_size:
                # The node's window takes it whole: sendall cannot block, so no writer
                # thread (one per node and phase) is needed.
                _send_whole(chan, payload)
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
        return transport_error("timeout", f"{where_of(self.endpoint)}: the bundle ran longer than the phase "
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
        why = (self._gone_why() if not alive
               else "the remote command ended without an exit status (killed by a signal?)")
        return transport_error("dropped", f"{where_of(self.endpoint)}: {why} while {what}",
                               result=collector.result(-1))

    def run_bundle(self, files: dict[str, bytes], script: str, shell: str = "bash",
                   on_line: Callable[[str], None] | None = None,
                   timeout: float | None = None) -> ExecResult:
        exchange, payload, password = prepare_bundle(
            files, script, shell, is_root=self.is_root,
            sudo_password=self.endpoint.sudo_password, where=where_of(self.endpoint),
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
        self._closed = True
        self._close_transports()

    def _close_transports(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
        close_transport(self._transport)
        for t in reversed(self._jumps):
            close_transport(t)


def _send_whole(chan: "paramiko.Channel", payload: bytes) -> None:
    """The bundle on the exec's stdin, then its end (as feed_stdin's writer does)."""
    try:
        chan.sendall(payload)
    except (OSError, EOFError, ValueError):
        pass                        # the exec ended early; its status says why
    try:
        chan.shutdown_write()
    except (OSError, EOFError, ValueError):
        pass


def close_transport(transport: "paramiko.Transport") -> None:
    """Close a transport now: its socket is shut down first, so its thread, waiting on the
    socket (IDLE_READ_TIMEOUT), sees the end at once and the node sees the close at once
    (a socket closed while another thread reads it stays open until that read returns)."""
    sock = transport.sock
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    transport.close()
