"""What `pallet lift` and `converge` print: plain lines on a pipe (no rich imported), colour on
a terminal; text from specs and nodes printed as written, never read as markup."""
from __future__ import annotations

import io
import subprocess
import sys

from pallet.runtime.executor import PhaseOutcome, RunReport
from pallet.runtime.report import Progress, print_summary


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def report() -> RunReport:
    r = RunReport("lift", "fleet.pallet", nodes=[("web-1", "web"), ("web-22", "web")],
                  record="/tmp/rec")
    r.outcomes = [PhaseOutcome("web-1", "web", "configure", "changed", ok=3, changed=2, seconds=0.5),
                  PhaseOutcome("web-22", "web", "configure", "failed", ok=1, failed=1,
                               error="action 2 failed: file /x[bold]", seconds=12.25)]
    return r


def test_the_summary_on_a_pipe_is_an_aligned_plain_table():
    out = io.StringIO()
    print_summary(report(), out)
    assert out.getvalue().splitlines() == [
        "pallet lift fleet.pallet",
        "node    group  phase       status   ok  changed  failed  seconds",
        "web-1   web    :configure  changed   3        2       0     0.50",
        "web-22  web    :configure  failed    1        0       1    12.25",
        "failed web-22 :configure: action 2 failed: file /x[bold]",
        "record: /tmp/rec",
        "FAILED: 2 node(s), 2 change(s), 1 failure(s)"]


def test_the_summary_on_a_terminal_is_a_table_with_the_same_cells():
    out = Terminal()
    print_summary(report(), out)
    text = out.getvalue()
    assert "\x1b[" in text and "┏━" in text and "│ web-22 │" in text
    for cell in ("web-22", ":configure", "12.25", "file /x[bold]", "FAILED: 2 node(s)"):
        assert cell in text


def test_progress_lines():
    out = io.StringIO()
    progress = Progress(out)
    progress("phase", phase="configure", nodes=["a", "b"])
    progress("action", node="a", phase="configure", index=1, status="changed", label="x")
    progress("end", outcome=report().outcomes[1])
    progress("unreachable", node="b", error="connect: refused [red]")
    assert out.getvalue().splitlines() == [
        "phase :configure on 2 node(s)",
        "  failed  web-22 :configure (12.25s)  action 2 failed: file /x[bold]",
        "x b: connect: refused [red]"]
    live = Terminal()
    progress = Progress(live)
    progress("action", node="a", phase="configure", index=1, status="changed", label="[x]")
    assert "changed" in live.getvalue() and "[x]" in live.getvalue()


def test_reporting_on_a_pipe_does_not_import_rich():
    code = ("import io, sys\n"
            "sys.path.insert(0, 'tests')\n"
            "from test_report import report\n"
            "from pallet.runtime.report import Progress, print_summary\n"
            "Progress(io.StringIO())('phase', phase='p', nodes=[])\n"
            "print_summary(report(), io.StringIO())\n"
            "assert 'rich' not in sys.modules, 'rich was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
