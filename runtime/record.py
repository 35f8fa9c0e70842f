"""The record of a run, on disk: the exact scripts shipped, each node's output, exit codes and
timings, and a summary. Written as the run goes, so an interrupted run keeps what it did.

    RECORD_DIR/<run id>/summary.json
    RECORD_DIR/<run id>/<node>/<phase>/run.sh | run.ps1, files/..., manifest.json
    RECORD_DIR/<run id>/<node>/<phase>/stdout.log, stderr.log, result.json
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


def default_record_dir() -> Path:
    return Path(os.environ.get("PALLET_RECORD_DIR", ".pallet/runs"))


class RunRecord:
    def __init__(self, base: Path, operation: str):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.path = Path(base) / f"{stamp}-{operation}-{os.getpid()}"
        self.path.mkdir(parents=True, exist_ok=False)
        self._lock = threading.Lock()

    def bundle(self, bundle) -> None:
        base = self.path / bundle.node.name / bundle.phase
        (base / "files").mkdir(parents=True, exist_ok=True)
        (base / bundle.script_name).write_text(bundle.script)
        for name, data in bundle.files:
            (base / name).write_bytes(data)
        from pallet.compiler.bundle import _dump
        (base / "manifest.json").write_bytes(_dump(bundle.manifest()))

    def result(self, outcome, stdout: str, stderr: str) -> None:
        base = self.path / outcome.node / outcome.phase
        base.mkdir(parents=True, exist_ok=True)
        (base / "stdout.log").write_text(stdout)
        (base / "stderr.log").write_text(stderr)
        data = {"node": outcome.node, "group": outcome.group, **outcome.as_json(),
                "actions": [{"index": n, "status": s, "label": label} for n, s, label in outcome.actions]}
        (base / "result.json").write_text(json.dumps(data, indent=2) + "\n")

    def summary(self, report) -> None:
        with self._lock:
            (self.path / "summary.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
