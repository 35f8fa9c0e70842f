"""The record of a run, on disk: the exact scripts shipped, each node's output, exit codes and
timings, and a summary. Written as the run goes, so an interrupted run keeps what it did.

    RECORD_DIR/<run id>/summary.json
    RECORD_DIR/<run id>/<node>/<phase>/run.sh | run.ps1, files/..., manifest.json
    RECORD_DIR/<run id>/<node>/<phase>/stdout.log, stderr.log, result.json
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
    its own). `summary` waits for what is queued, then writes the summary."""

    WRITERS = 4

    def __init__(self, base: Path, operation: str):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.path = Path(base) / f"{stamp}-{operation}-{os.getpid()}"
        self.path.mkdir(parents=True, exist_ok=False)
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writers: list[threading.Thread] = []
        self._made: set[Path] = {self.path}
        self._failure: BaseException | None = None

    def _submit(self, write, *args) -> None:
        with self._lock:
            if not self._writers:
                self._writers = [threading.Thread(target=self._write_queued, daemon=True,
                                                  name=f"pallet-record-{i}")
                                 for i in range(self.WRITERS)]
                for writer in self._writers:
                    writer.start()
        self._queue.put((write, args))

    def _write_queued(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            write, args = item
            try:
                write(*args)
            except BaseException as exc:  # noqa: BLE001 - kept, raised by flush()
                self._failure = self._failure or exc

    def flush(self) -> None:
        """Wait until everything queued is on disk."""
        with self._lock:
            writers, self._writers = self._writers, []
        for _ in writers:
            self._queue.put(None)
        for writer in writers:
            writer.join()
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
        if bundle.files:
            self._dir(bundle.node.name, bundle.phase, "files")
        (base / bundle.script_name).write_bytes(bundle.script.encode())
        for name, data in bundle.files:
            (base / name).write_bytes(data)
        from pallet.compiler.bundle import _dump
        (base / "manifest.json").write_bytes(_dump(bundle.manifest()))

    def result(self, outcome, stdout: str, stderr: str) -> None:
        data = {"node": outcome.node, "group": outcome.group, **outcome.as_json(),
                "actions": [{"index": n, "status": s, "label": label} for n, s, label in outcome.actions]}
        self._submit(self._result, outcome.node, outcome.phase, stdout, stderr, data)

    def _result(self, node: str, phase: str, stdout: str, stderr: str, data: dict) -> None:
        from pallet.compiler.bundle import _dump
        base = self._dir(node, phase)
        (base / "stdout.log").write_bytes(stdout.encode())
        (base / "stderr.log").write_bytes(stderr.encode())
        (base / "result.json").write_bytes(_dump(data))

    def summary(self, report) -> None:
        self.flush()
        from pallet.compiler.bundle import _dump
        with self._lock:
            (self.path / "summary.json").write_bytes(_dump(report.as_json()))
