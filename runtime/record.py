"""The record of a run, on disk: the exact scripts shipped, each node's output, exit codes and
timings, and a summary. Written as the run goes, so an interrupted run keeps what it did.

    RECORD_DIR/<run id>/summary.json
    RECORD_DIR/<run id>/<node>/<phase>/run.sh | run.ps1, files/..., manifest.json
    RECORD_DIR/<run id>/<node>/<phase>/stdout.log, stderr.log, result.json

A record keeps no secret: a bundle without its secrets/ (its manifest names them), and every
text the run knows to be secret masked in what the nodes printed, the results and the
summary (`redactor`, shared with the executor).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path


def default_record_dir() -> Path:
    return Path(os.environ.get("PALLET_RECORD_DIR", ".pallet/runs"))


class RunRecord:
    """Writes happen on threads of their own while the nodes run: a node's exec does not
    wait for the disk, and several files are created at once (on a busy disk each waits on
    its own). Each file is written to a temporary name and renamed, so a run that stops
    (Ctrl-C) never leaves one half-written. `summary` waits for what is queued, writes the
    summary and closes the record: what comes later (a node's thread that ends after an
    interrupted run was summed up) is not written."""

    WRITERS = 4

    def __init__(self, base: Path, operation: str, redactor=None):
        from pallet.secret import Redactor
        self.redact = redactor if redactor is not None else Redactor()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.path = Path(base) / f"{stamp}-{operation}-{os.getpid()}"
        self.path.mkdir(parents=True, exist_ok=False)
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._started = False
        self._closed = False
        self._made: set[Path] = {self.path}
        self._failure: BaseException | None = None

    def _submit(self, write, *args) -> None:
        with self._lock:
            if self._closed:
                return
            if not self._started:
                self._started = True
                for i in range(self.WRITERS):
                    threading.Thread(target=self._write_queued, daemon=True,
                                     name=f"pallet-record-{i}").start()
            self._queue.put((write, args))

    def _write_queued(self) -> None:
        while True:
            write, args = self._queue.get()
            try:
                write(*args)
            except BaseException as exc:  # noqa: BLE001 - kept, raised by flush()
                self._failure = self._failure or exc
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until everything queued is on disk."""
        self._queue.join()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _dir(self, *parts: str) -> Path:
        path = self.path
        for part in parts:
            path = path / part
            if path not in self._made:
                path.mkdir(exist_ok=True)
                self._made.add(path)
        return path

    def bundle(self, bundle) -> None:
        self._submit(self._bundle, bundle)

    def _bundle(self, bundle) -> None:
        base = self._dir(bundle.node.name, bundle.phase)
        files = bundle.public_files()
        if files:
            self._dir(bundle.node.name, bundle.phase, "files")
        _write(base / bundle.script_name, bundle.script.encode())
        for name, data in files:
            _write(base / name, data)
        from pallet.compiler.bundle import _dump
        _write(base / "manifest.json", _dump(bundle.manifest()))

    def result(self, outcome, stdout: str, stderr: str) -> None:
        data = {"node": outcome.node, "group": outcome.group, **outcome.as_json(),
                "actions": [{"index": n, "status": s, "label": label} for n, s, label in outcome.actions]}
        redact = self.redact
        self._submit(self._result, outcome.node, outcome.phase, redact.text(stdout) or "",
                     redact.text(stderr) or "", redact.data(data))

    def _result(self, node: str, phase: str, stdout: str, stderr: str, data: dict) -> None:
        from pallet.compiler.bundle import _dump
        base = self._dir(node, phase)
        _write(base / "stdout.log", stdout.encode())
        _write(base / "stderr.log", stderr.encode())
        _write(base / "result.json", _dump(data))

    def summary(self, report) -> None:
        with self._lock:
            self._closed = True       # first: what comes later is not waited for
        self.flush()
        from pallet.compiler.bundle import _dump
        _write(self.path / "summary.json", _dump(self.redact.data(report.as_json())))


def _write(path: Path, data: bytes) -> None:
    """The file, whole or not at all: a temporary name beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def last_failures(base: Path, spec: str) -> tuple[str, set[str]]:
    """The last run of `spec` recorded in `base` (the one whose summary was written last)
    and the nodes that failed in it, for --only-failed. A run killed before it wrote its
    summary does not count; neither do runs of other specs."""
    import json

    from pallet.errors import PalletError
    want = Path(spec).resolve()
    runs = []
    if Path(base).is_dir():
        for run in Path(base).iterdir():
            summary = run / "summary.json"
            try:
                data = json.loads(summary.read_text(encoding="utf-8"))
                when = summary.stat().st_mtime_ns
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and Path(str(data.get("spec", ""))).resolve() == want:
                runs.append((when, run.name, run, data))
    if not runs:
        raise PalletError(f"--only-failed: no run of {spec} is recorded in {base} (each run "
                          "of lift and converge leaves its record there; see --record-dir)")
    _, _, run, data = max(runs, key=lambda r: (r[0], r[1]))
    failed = {str(n.get("name")) for n in data.get("nodes") or ()
              if isinstance(n, dict) and any(isinstance(p, dict) and p.get("status") == "failed"
                                             for p in n.get("phases") or ())}
    return str(run), failed
