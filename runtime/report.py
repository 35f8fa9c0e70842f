"""What a person sees while a run goes and after it: live progress per node and phase, then a
summary table (ok / changed / failed per node and phase).

On a terminal, with colour (rich); elsewhere (a pipe, a CI log), the same lines in plain text
without importing rich. Messages are built as (text, style) pieces, so text from a spec or a
node (labels, errors) is never read as markup."""
from __future__ import annotations

import sys
import threading
from typing import Callable, Sequence

Pieces = Sequence[tuple[str, str | None]]   # (text, rich style or None)

_STATUS_STYLE = {"ok": "green", "changed": "yellow", "failed": "red"}


def _printer(stream, styled: bool) -> Callable[[Pieces], None]:
    if not styled:
        def plain(pieces: Pieces) -> None:
            stream.write("".join(text for text, _ in pieces) + "\n")
            stream.flush()
        return plain
    from rich.console import Console
    from rich.text import Text
    console = Console(file=stream, highlight=False, soft_wrap=True)
    return lambda pieces: console.print(Text.assemble(*((t, s or "") for t, s in pieces)))


class Progress:
    """An on_event callback for the Executor."""

    def __init__(self, stream=None, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.print = _printer(self.stream, self.live)
        self._lock = threading.Lock()

    def __call__(self, kind: str, **d) -> None:
        with self._lock:
            getattr(self, "_" + kind, lambda **_: None)(**d)

    def _create(self, group, count):
        self.print([("creating", "bold"), (f" {count} node(s) of {group}", None)])

    def _destroy(self, nodes):
        self.print([("destroying", "bold"), (f" {len(nodes)} node(s): {', '.join(nodes)}", None)])

    def _unreachable(self, node, error):
        self.print([("x", "red"), (f" {node}: {error}", None)])

    def _phase(self, phase, nodes):
        self.print([(f"phase :{phase}", "bold"), (f" on {len(nodes)} node(s)", None)])

    def _action(self, node, phase, index, status, label):
        if self.live and status != "ok":
            self.print([(f"  {node} :{phase} ", None), (status, _STATUS_STYLE.get(status, "green")),
                        (f" {label}", None)])

    def _end(self, outcome):
        detail = f" changed={outcome.changed}" if outcome.changed else ""
        if outcome.error:
            detail += f"  {outcome.error}"
        self.print([("  ", None), (f"{outcome.status:<7}", _STATUS_STYLE.get(outcome.status, "dim")),
                    (f" {outcome.node} :{outcome.phase} ({outcome.seconds:.2f}s){detail}", None)])

    def _budget(self, reason):
        self.print([("stopping the roll", "red"), (f": {reason}", None)])

    def _interrupted(self):
        self.print([("interrupted", "red"), (": stopping; the record keeps what ran", None)])


_COLUMNS = ("node", "group", "phase", "status", "ok", "changed", "failed", "seconds")
_NUMERIC = ("ok", "changed", "failed", "seconds")


def print_summary(report, stream=None) -> None:
    stream = stream or sys.stdout
    styled = stream.isatty()
    rows = [(o.node, o.group, f":{o.phase}", o.status, str(o.ok), str(o.changed), str(o.failed),
             f"{o.seconds:.2f}") for o in report.outcomes]
    title = f"pallet {report.operation} {report.spec}"
    if not rows:                    # no phase ran (converge --provision-only, no nodes): no table
        stream.write(title + "\n")
    elif styled:
        from rich.console import Console
        from rich.table import Table
        console = Console(file=stream, highlight=False)
        table = Table(title=title)
        for column in _COLUMNS:
            table.add_column(column, justify="right" if column in _NUMERIC else "left")
        for row in rows:
            cells = list(row)
            cells[3] = f"[{_STATUS_STYLE.get(row[3], 'dim')}]{row[3]}[/]"
            table.add_row(*(c if i == 3 else _escape(c) for i, c in enumerate(cells)))
        console.print(table)
    else:
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]

        def line(cells) -> str:
            return "  ".join(c.rjust(w) if name in _NUMERIC else c.ljust(w)
                             for c, w, name in zip(cells, widths, _COLUMNS)).rstrip()
        stream.write("\n".join([title, line(_COLUMNS), *(line(r) for r in rows)]) + "\n")
    out = _printer(stream, styled)
    failures = [o for o in report.outcomes if o.status == "failed"]
    for o in failures:
        out([("failed", "red"), (f" {o.node} :{o.phase}: {o.error}", None)])
    if report.created:
        out([(f"created: {', '.join(report.created)}", None)])
    if report.destroyed:
        out([(f"destroyed: {', '.join(report.destroyed)}", None)])
    if report.record:
        out([(f"record: {report.record}", None)])
    if report.error:
        out([("stopped", "red"), (": a phase could not be compiled (see the error below)", None)])
    verdict = "interrupted" if report.interrupted else ("ok" if report.ok else "FAILED")
    out([(f"{verdict}: {len(report.nodes)} node(s), "
          f"{sum(o.changed for o in report.outcomes)} change(s), {len(failures)} failure(s)", None)])


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)
