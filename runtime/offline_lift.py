"""`pallet lift --offline`: for nodes that can be reached over SSH but have no package mirror
(a bastion in front of an air-gapped network). Each node's installed state is read over its
connection, its run file is made here (packages resolved for that state, fetched by this
machine), and the file is shipped and run with one exec on the same connection:

    connect -> facts and state (one command each) -> NODE.run made -> upload + `sh NODE.run`

The run file prints `PALLET-PHASE <name>` before each phase, so the report has the usual
outcome per node and phase. The run files are kept in `--bundles DIR` when given.
"""
from __future__ import annotations

import re
import shlex
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from pallet.errors import PalletError

from .executor import ACTION_LINE, PhaseOutcome, RunReport, _failure
from .model import NodeRecord, TransportError

PHASE_LINE = re.compile(r"^PALLET-PHASE (\S+)$")
SUMMARY_LINE = re.compile(r"^PALLET-SUMMARY ok=(\d+) changed=(\d+) failed=(\d+)$")


def lift_offline(project, records: Sequence[NodeRecord], phases: tuple[str, ...], read_file,
                 spec: str, *, connect, ssh_options, parallel: int = 64,
                 on_event: Callable[..., None] = lambda kind, **d: None, keep: Path | None = None,
                 packages: bool = True, log=lambda msg: None) -> RunReport:
    from pallet.compiler.model import NodeFacts

    from .facts import detect_os
    from .node_state import STATE_SCRIPT, state_from_text
    from .offline import bundle_nodes, node_bundles

    report = RunReport("lift", project.file)
    records = [r for r in records if project.group(r.group) is not None]
    report.nodes = [(r.name, r.group) for r in records]
    conns: dict[str, object] = {}
    facts: dict[str, NodeFacts] = {}
    states: dict[str, object] = {}
    errors: dict[str, str] = {}

    def prepare(record: NodeRecord) -> None:
        on_event("connect", node=record.name)
        try:
            conn = connect(record.endpoint, ssh_options)
        except TransportError as exc:
            errors[record.name] = f"{exc.kind}: {exc.message}"
            on_event("unreachable", node=record.name, error=errors[record.name])
            return
        conns[record.name] = conn
        try:
            family, version = record.os_family, record.os_version
            if not family:
                found = detect_os(conn)
                family, version = found.family, found.version
            facts[record.name] = NodeFacts(
                record.name, record.group, family, version, host=record.endpoint.host,
                private_ip=record.private_ip, roles=record.roles, port=record.endpoint.port,
                user=record.endpoint.user, private_key=record.endpoint.private_key)
            if packages:
                result = conn.run("sh -c " + shlex.quote(STATE_SCRIPT))
                if result.exit_status != 0:
                    raise PalletError(f"the state script failed (exit status "
                                      f"{result.exit_status}): {result.stderr.strip()[-300:]}")
                states[record.name] = state_from_text(result.stdout, f"node {record.name}")
        except (TransportError, PalletError) as exc:
            errors[record.name] = exc.message
            on_event("unreachable", node=record.name, error=exc.message)

    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(records) or 1)))
    try:
        list(pool.map(prepare, records))
        ready = [r for r in records if r.name in facts and r.name not in errors]
        nodes = tuple((facts[r.name], project.group(r.group)) for r in ready)
        plans = project.plan(nodes, phases) if nodes else {}
        by_node = {n.name: n for n in node_bundles(plans, nodes, read_file)}
        with tempfile.TemporaryDirectory(prefix="pallet-offline.") as tmp:
            out = keep or Path(tmp) / "bundles"
            made = bundle_nodes(list(by_node.values()), out, spec, packages=packages,
                                state_for=lambda n: states.get(n.name), log=log) if by_node else []
            runs = {m.node: (out / m.path.name).read_bytes() for m in made}
            for name, why in errors.items():
                record = next(r for r in records if r.name == name)
                report.outcomes.append(PhaseOutcome(name, record.group, "offline", "failed",
                                                    error=why))
            if runs:
                on_event("phase", phase="offline", nodes=sorted(runs))
            results = pool.map(lambda n: _ship(conns[n.name], by_node[n.name], runs[n.name],
                                               on_event), [by_node[k] for k in runs])
            for outcomes in results:
                report.outcomes += outcomes
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for conn in conns.values():
            try:
                conn.close()
            except Exception:  # noqa: BLE001  (closing is best effort)
                pass
    return report


def _ship(conn, node, data: bytes, on_event) -> list[PhaseOutcome]:
    """Upload NODE.run and run it, in one exec; an outcome per phase it ran (or did not)."""
    phases = [b.phase for b in node.bundles]
    outcomes: list[PhaseOutcome] = []
    current: list[PhaseOutcome] = []
    started = [time.perf_counter()]

    def on_line(line: str) -> None:
        m = PHASE_LINE.match(line)
        if m:
            _close(current, started, on_event)
            outcome = PhaseOutcome(node.name, node.group, m.group(1), "ok")
            outcomes.append(outcome)
            current[:] = [outcome]
            started[0] = time.perf_counter()
            on_event("start", node=node.name, phase=m.group(1))
            return
        m = ACTION_LINE.match(line)
        if m and current:
            current[0].actions.append((int(m[1]), m[2], m[3]))
            on_event("action", node=node.name, phase=current[0].phase, index=int(m[1]),
                     status=m[2], label=m[3])

    name = f"{node.name}.run"
    files = {name: data, "run.sh": f'exec sh "$PALLET_BUNDLE_DIR"/{shlex.quote(name)}\n'.encode()}
    try:
        result = conn.run_bundle(files, "run.sh", "sh", on_line)
    except TransportError as exc:
        if not outcomes:
            outcomes.append(PhaseOutcome(node.name, node.group, phases[0], "failed"))
        outcomes[-1].status, outcomes[-1].error = "failed", f"{exc.kind}: {exc.message}"
        _close([], started, on_event)
        return outcomes
    if not outcomes:   # the file refused to run (its check failed) before any phase
        outcomes.append(PhaseOutcome(node.name, node.group, phases[0], "ok"))
        current[:] = outcomes[-1:]
    for o in outcomes:
        o.ok = sum(1 for _, s, _ in o.actions if s == "ok")
        o.changed = sum(1 for _, s, _ in o.actions if s == "changed")
        o.failed = sum(1 for _, s, _ in o.actions if s == "failed")
        o.status = "failed" if o.failed else "changed" if o.changed else "ok"
    last = outcomes[-1]
    if result.exit_status != 0:
        last.status, last.exit_status = "failed", result.exit_status
        last.error = _failure(result.stderr, result.exit_status, last)
    ran = {o.phase for o in outcomes}
    for phase in phases:
        if phase not in ran:
            outcomes.append(PhaseOutcome(node.name, node.group, phase, "skipped",
                                         error=f"not run: phase :{last.phase} failed"))
    _close(current, started, on_event)
    return outcomes


def _close(current: list[PhaseOutcome], started: list[float], on_event) -> None:
    if current:
        o = current[0]
        o.seconds = time.perf_counter() - started[0]
        o.ok = sum(1 for _, s, _ in o.actions if s == "ok")
        o.changed = sum(1 for _, s, _ in o.actions if s == "changed")
        o.failed = sum(1 for _, s, _ in o.actions if s == "failed")
        if o.status != "failed":
            o.status = "failed" if o.failed else "changed" if o.changed else "ok"
        on_event("end", outcome=o)
        current.clear()
