"""SSH in a process of its own: connections are made and bundles run by a helper process
forked when `lift` or `converge` starts, while this process compiles.

Why: Python runs one thread at a time, and a run's first moments are all CPU: importing
paramiko and the compiler, loading the spec, compiling the first phase, the key exchanges.
Forked before any of it, the helper imports paramiko and makes the connections on another
CPU while this process compiles; the bundles then travel to it over a pipe.

    ssh = SshProcess.start()              # before any thread exists (it forks)
    conn = ssh.connect(endpoint, options)  # a Connection: run_bundle, run, close
    ssh.shutdown()

The helper holds the real SshConnections (runtime/transport.py); what crosses the pipe is
requests and results, each a length-prefixed pickle. Local endpoints (no SSH) are run here.
If the helper dies, every waiting call fails with TransportError("dropped"); when this
process is done or dies, the helper sees its pipe close and exits, which closes its sockets.
"""
from __future__ import annotations

import os
import pickle
import signal
import struct
import threading
from typing import Any, Callable

from .model import Endpoint, ExecResult, SshOptions, TransportError

_HEADER = struct.Struct("!I")


class _Pipe:
    """One direction of messages: write from any thread, read from one."""

    def __init__(self, fd: int, mode: str):
        self.file = os.fdopen(fd, mode)
        self.lock = threading.Lock()

    def send(self, message: tuple) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.file.write(_HEADER.pack(len(data)) + data)
            self.file.flush()

    def receive(self) -> tuple | None:
        head = self.file.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack(head)
        data = self.file.read(size)
        if len(data) < size:
            return None
        return pickle.loads(data)


def _error_message(exc: BaseException) -> tuple:
    if isinstance(exc, TransportError):  # with what the transport added, such as attempts
        extra = {k: v for k, v in vars(exc).items() if k not in ("kind", "message", "span", "notes")
                 and isinstance(v, (int, str, ExecResult))}
        return ("transport", exc.kind, exc.message, extra)
    from pallet.errors import PalletError
    if isinstance(exc, PalletError):
        return ("pallet", "", exc.message, {})
    return ("transport", "dropped", f"{type(exc).__name__}: {exc}", {})


def _raise(error: tuple):
    kind, transport_kind, message, extra = error
    if kind == "pallet":
        from pallet.errors import PalletError
        raise PalletError(message)
    exc = TransportError(transport_kind, message)
    for name, value in extra.items():
        setattr(exc, name, value)
    raise exc


class SshProcess:
    def __init__(self, pid: int, requests: _Pipe, responses: _Pipe):
        self.pid = pid
        self._requests, self._responses = requests, responses
        self._pending: dict[int, list] = {}     # request id -> [Event, result, on_line]
        self._lock = threading.Lock()
        self._next = 0
        self._reader: threading.Thread | None = None
        self._gone = False

    @classmethod
    def start(cls) -> "SshProcess":
        """Fork the helper. Call it while this process has one thread."""
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper
            code = 0
            try:
                os.close(down_w)
                os.close(up_r)
                _serve(_Pipe(down_r, "rb"), _Pipe(up_w, "wb"))
            except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code
                code = 1
            finally:
                os._exit(code)
        os.close(down_r)
        os.close(up_w)
        return cls(pid, _Pipe(down_w, "wb"), _Pipe(up_r, "rb"))

    # ---- requests ---------------------------------------------------------------------------

    def _call(self, kind: str, *args, on_line: Callable[[str], None] | None = None) -> Any:
        with self._lock:
            if self._gone:
                raise TransportError("dropped", "the SSH helper process has ended")
            self._next += 1
            rid = self._next
            waiter = [threading.Event(), None, on_line]
            self._pending[rid] = waiter
            if self._reader is None:
                self._reader = threading.Thread(target=self._read, daemon=True,
                                                name="pallet-ssh-replies")
                self._reader.start()
        try:
            self._requests.send((kind, rid, *args))
        except OSError:
            self._fail_all()
        waiter[0].wait()  # a reply, or _fail_all when the helper is gone
        status, value = waiter[1]
        if status == "error":
            _raise(value)
        return value

    def _tell(self, kind: str, *args) -> None:
        """A request whose answer nobody waits for."""
        with self._lock:
            if self._gone:
                return
            self._next += 1
            rid = self._next
        try:
            self._requests.send((kind, rid, *args))
        except OSError:
            self._fail_all()

    def _read(self) -> None:
        while True:
            try:
                message = self._responses.receive()
            except (OSError, EOFError, pickle.UnpicklingError):
                message = None
            if message is None:
                self._fail_all()
                return
            kind, rid, value = message
            waiter = self._pending.get(rid)
            if waiter is None:
                continue
            if kind == "line":
                if waiter[2] is not None:
                    waiter[2](value)
                continue
            with self._lock:
                self._pending.pop(rid, None)
            waiter[1] = (kind, value)
            waiter[0].set()

    def _fail_all(self) -> None:
        with self._lock:
            self._gone = True
            pending, self._pending = self._pending, {}
        for waiter in pending.values():
            waiter[1] = ("error", ("transport", "dropped", "the SSH helper process has ended", {}))
            waiter[0].set()

    def connect(self, endpoint: Endpoint, options: SshOptions | None = None):
        """A Connection to the endpoint (the Executor's `connect`)."""
        options = options or SshOptions()
        if endpoint.local:
            from .local_transport import LocalConnection
            return LocalConnection(endpoint)
        cid = self._call("open", endpoint, options)
        return _RemoteConnection(self, cid, endpoint)

    def shutdown(self) -> None:
        """Let the helper go: it exits when its pipe closes (its sockets close with it).
        It is reaped in the background; a command does not wait for its exit."""
        try:
            self._requests.file.close()
        except OSError:
            pass
        threading.Thread(target=_reap, args=(self.pid,), daemon=True,
                         name="pallet-ssh-reap").start()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


class _RemoteConnection:
    """A connection the helper holds."""

    def __init__(self, process: SshProcess, cid: int, endpoint: Endpoint):
        self._process, self._cid, self.endpoint = process, cid, endpoint

    def __repr__(self) -> str:
        return f"<connection {self.endpoint.user}@{self.endpoint.host}:{self.endpoint.port} (helper)>"

    def run_bundle(self, files: dict[str, bytes], script: str, shell: str = "bash",
                   on_line: Callable[[str], None] | None = None,
                   timeout: float | None = None) -> ExecResult:
        return self._process._call("run_bundle", self._cid, files, script, shell,
                                   on_line is not None, timeout, on_line=on_line)

    def run(self, command: str) -> ExecResult:
        return self._process._call("run", self._cid, command)

    def close(self) -> None:
        """Asked, not waited for (closing is best effort; a run ends with many at once)."""
        self._process._tell("close", self._cid)


# ---- the helper -------------------------------------------------------------------------------

def _import_paramiko() -> None:
    """paramiko, without the `invoke` package its config module imports (for `Match exec`
    in an SSH config, which the helper never parses: the main process reads SSH configs).
    invoke and its vendored YAML are about half of paramiko's import time."""
    import sys
    if "paramiko" in sys.modules or "invoke" in sys.modules:
        return
    sys.modules["invoke"] = None        # `import invoke` raises ImportError: paramiko copes
    try:
        import paramiko  # noqa: F401
    finally:
        if sys.modules.get("invoke", 0) is None:
            del sys.modules["invoke"]


def _serve(requests: _Pipe, responses: _Pipe) -> None:
    # Ctrl-C is for the parent: it closes the connections, which ends what runs here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .transport import SshConnection
    _import_paramiko()      # the reason for this process
    connections: dict[int, Any] = {}
    lock = threading.Lock()

    def handle(kind: str, rid: int, *args) -> None:
        try:
            if kind == "open":
                endpoint, options = args
                conn = SshConnection.open(endpoint, options)
                with lock:
                    connections[rid] = conn
                value: Any = rid
            elif kind == "run_bundle":
                cid, files, script, shell, stream, timeout = args
                on_line = (lambda line: responses.send(("line", rid, line))) if stream else None
                value = connections[cid].run_bundle(files, script, shell, on_line, timeout)
            elif kind == "run":
                cid, command = args
                value = connections[cid].run(command)
            else:
                raise TransportError("dropped", f"unknown request {kind!r}")
            responses.send(("ok", rid, value))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back as a reply
            try:
                responses.send(("error", rid, _error_message(exc)))
            except OSError:
                pass

    # Requests wait (a handshake, an exec): each runs on a thread of a pool that grows to
    # the most requests in flight at once and reuses its threads (a fleet asks to open,
    # run and close a connection per node: a thread each would be three per node).
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(max_workers=4096, thread_name_prefix="pallet-ssh")
    while True:
        message = requests.receive()
        if message is None:
            # The parent is done (or gone): exiting closes every connection's socket, and
            # sshd ends their sessions; closing each first would only make the parent wait.
            return
        if message[0] == "close":   # quick, and nobody waits for it: here
            with lock:
                conn = connections.pop(message[2], None)
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            continue
        pool.submit(handle, *message)
