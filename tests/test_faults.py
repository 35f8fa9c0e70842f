"""The fault suite (tests/fault_suite.py, `make faults`) as part of `make test`: every fault of
FAULT-NOTES.md on real local nodes, each row asserting its expected outcome."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parent / "fault_suite.py"
pytestmark = pytest.mark.nodes


def test_every_fault_is_reported_as_expected_and_leaves_the_node_whole(local_nodes, capsys):
    # local_nodes: root, and the cached root filesystem built (outside the rows' namespaces)
    done = subprocess.run([sys.executable, str(SUITE)], capture_output=True, text=True, timeout=600)
    with capsys.disabled():
        print("\n" + done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "rows as expected" in done.stdout and "FAILED" not in done.stdout
