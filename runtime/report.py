"""What a person sees while a run goes and after it: live progress per node and phase, then a
summary table (ok / changed / failed per node and phase). Plain lines when not on a terminal."""
from __future__ import annotations

import sys
import threading


class Progress:
    """An on_event callback for the Executor."""

    def __init__(self, stream=None, live: bool | None = None):
        from rich.console import Console
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.live = self.stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str], list[int]] = {}

    def __call__(self, kind: str, **d) -> None:
        with self._lock:
            getattr(self, "_" + kind, lambda **_: None)(**d)

    def _create(self, group, count):
        self.console.print(f"[bold]creating[/] {count} node(s) of {group}")

    def _destroy(self, nodes):
        self.console.print(f"[bold]destroying[/] {len(nodes)} node(s): {', '.join(nodes)}")

    def _unreachable(self, node, error):
        self.console.print(f"[red]x[/] {node}: {error}")

    def _phase(self, phase, nodes):
        self.console.print(f"[bold]phase :{phase}[/] on {len(nodes)} node(s)")

    def _action(self, node, phase, index, status, label):
        if self.live and status != "ok":
            colour = {"changed": "yellow", "failed": "red"}.get(status, "green")
            self.console.print(f"  {node} :{phase} [{colour}]{status}[/] {label}")

    def _end(self, outcome):
        colour = {"ok": "green", "changed": "yellow", "failed": "red"}.get(outcome.status, "dim")
        detail = f" changed={outcome.changed}" if outcome.changed else ""
        if outcome.error:
            detail += f"  {outcome.error}"
        self.console.print(f"  [{colour}]{outcome.status:<7}[/] {outcome.node} :{outcome.phase} "
                           f"({outcome.seconds:.2f}s){detail}")

    def _interrupted(self):
        self.console.print("[red]interrupted[/]: stopping; the record keeps what ran")


def print_summary(report, stream=None) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(file=stream or sys.stdout, highlight=False)
    table = Table(title=f"pallet {report.operation} {report.spec}")
    for column in ("node", "group", "phase", "status", "ok", "changed", "failed", "seconds"):
        table.add_column(column, justify="right" if column in ("ok", "changed", "failed", "seconds") else "left")
    for o in report.outcomes:
        colour = {"ok": "green", "changed": "yellow", "failed": "red"}.get(o.status, "dim")
        table.add_row(o.node, o.group, f":{o.phase}", f"[{colour}]{o.status}[/]", str(o.ok),
                      str(o.changed), str(o.failed), f"{o.seconds:.2f}")
    console.print(table)
    failures = [o for o in report.outcomes if o.status == "failed"]
    for o in failures:
        console.print(f"[red]failed[/] {o.node} :{o.phase}: {o.error}")
    if report.created:
        console.print(f"created: {', '.join(report.created)}")
    if report.destroyed:
        console.print(f"destroyed: {', '.join(report.destroyed)}")
    if report.record:
        console.print(f"record: {report.record}")
    if report.error:
        console.print(f"[red]stopped[/]: a phase could not be compiled (see the error below)")
    verdict = "interrupted" if report.interrupted else ("ok" if report.ok else "FAILED")
    console.print(f"{verdict}: {len(report.nodes)} node(s), "
                  f"{sum(o.changed for o in report.outcomes)} change(s), {len(failures)} failure(s)")
