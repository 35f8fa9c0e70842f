"""Converge and lift: find or create nodes, then run each phase's bundles on them.

Phases are barriers: a phase is planned and compiled for every node (so it can read values
the phases before it published), then its bundles run in parallel, up to `parallel` nodes at
a time, in batches of `serial` nodes when rolling. After a phase with a failure no further
phase runs, unless `keep_going` (then the nodes that failed sit out the rest). One connection
per node serves the whole operation: each phase is one upload and one exec on it.
"""
from __future__ import annotations

import base64
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

from pallet.compiler.bundle import Bundle, build_bundles
from pallet.compiler.compile_project import no_cycle_collection
from pallet.compiler.model import NodeFacts
from pallet.compiler.project import Project
from pallet.errors import PalletError
from pallet.secret import Redactor

from .model import PHASE_TIMEOUT, NodeRecord, Provider, SshOptions, TransportError

ACTION_LINE = re.compile(r"^PALLET-ACTION (\d+) (ok|changed|failed) (.*)$")
SUMMARY_LINE = re.compile(r"^PALLET-SUMMARY ok=(\d+) changed=(\d+) failed=(\d+)$")
VALUE_LINE = re.compile(r"^PALLET-VALUE (\S+) ?(\S*)$")


@dataclass(frozen=True)
class RunOptions:
    phases: tuple[str, ...] = ()
    parallel: int = 64              # nodes running a phase at once
    serial: int | None = None       # rolling batches of this many nodes
    keep_going: bool = False
    # Stop rolling when more than this percent of a batch (all the phase's nodes without
    # `serial`) fails; a failure within it only takes its nodes out of the later phases.
    max_fail_percent: float | None = None
    ssh: SshOptions = SshOptions()
    phase_timeout: float | None = PHASE_TIMEOUT   # seconds a node's phase may run; None: no limit


@dataclass
class PhaseOutcome:
    node: str
    group: str
    phase: str
    status: str                     # ok | changed | failed | skipped
    ok: int = 0
    changed: int = 0
    failed: int = 0
    error: str | None = None
    exit_status: int | None = None
    seconds: float = 0.0
    actions: list[tuple[int, str, str]] = field(default_factory=list)
    cause: str | None = None        # a failure's kind: action, exit, timeout, dropped, ...

    def as_json(self) -> dict:
        return {"phase": self.phase, "status": self.status, "changed": self.changed,
                "failed": self.failed, "ok": self.ok, "error": self.error, "cause": self.cause,
                "exit_status": self.exit_status, "seconds": round(self.seconds, 3)}

    def count_actions(self) -> None:
        self.ok = sum(1 for _, s, _ in self.actions if s == "ok")
        self.changed = sum(1 for _, s, _ in self.actions if s == "changed")
        self.failed = sum(1 for _, s, _ in self.actions if s == "failed")


@dataclass
class RunReport:
    operation: str
    spec: str
    nodes: list[tuple[str, str]] = field(default_factory=list)       # (name, group)
    outcomes: list[PhaseOutcome] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    interrupted: bool = False
    record: str | None = None
    error: str | None = None       # a phase that could not be compiled (bad input)

    @property
    def ok(self) -> bool:
        return (not self.interrupted and self.error is None
                and all(o.status != "failed" for o in self.outcomes))

    def as_json(self) -> dict:
        by_node: dict[str, list[PhaseOutcome]] = {}
        for o in self.outcomes:
            by_node.setdefault(o.node, []).append(o)
        return {"ok": self.ok, "operation": self.operation, "spec": self.spec,
                "interrupted": self.interrupted, "record": self.record, "error": self.error,
                "created": self.created, "destroyed": self.destroyed,
                "nodes": [{"name": name, "group": group,
                           "phases": [o.as_json() for o in by_node.get(name, [])]}
                          for name, group in self.nodes]}


Event = Callable[..., None]   # on_event(kind, **details): progress for the terminal


class Executor:
    def __init__(self, project: Project, options: RunOptions, read_file: Callable[[str], bytes],
                 record=None, on_event: Event | None = None, connect=None,
                 redactor: Redactor | None = None):
        if connect is None:
            from .transport import open_connection as connect
        self.project = project
        # Every secret known to the run (the spec's, its bundles', the passwords of the
        # nodes), masked in whatever the nodes say before it is shown or kept.
        self.redact = redactor if redactor is not None else Redactor()
        self.options = options
        self.read_file = read_file
        self.record = record
        self.on_event = on_event or (lambda kind, **details: None)
        self.connect = connect
        self.connections: dict[str, object] = {}
        self._connecting: dict[str, object] = {}     # node -> Future of its connection
        self._connect_pool: ThreadPoolExecutor | None = None
        self._detected: dict[str, object] = {}      # node -> its OsFacts, or why not (PalletError)
        self._conn_lock = threading.Lock()
        self._closed = False
        self._in_flight: list[PhaseOutcome] = []    # outcomes of the phase Ctrl-C stopped
        self._stop = threading.Event()
        # Each node's phase is recorded once: by its worker, or, for the nodes a Ctrl-C caught
        # running, by the main thread as interrupted (the worker's later word is dropped).
        self._live: dict[tuple[str, str], tuple[PhaseOutcome, float]] = {}
        self._recorded: set[tuple[str, str]] = set()
        self._record_lock = threading.Lock()
        self._over_budget: str | None = None         # why the roll stopped (--max-fail-percent)
        # --only-failed: the nodes the phases run on (and the nodes a converge makes); the
        # others are known to relationships but not touched. None: every node.
        self.only_nodes: set[str] | None = None

    # ---- operations -------------------------------------------------------------------------

    def lift(self, records: Sequence[NodeRecord], report: RunReport | None = None,
             bootstrap: Sequence[str] = (), only: set[str] | None = None) -> RunReport:
        """Run the phases on `records` (those of the groups in `only`, when given, and of
        those the nodes of `self.only_nodes` and `bootstrap`, when that is given; the others
        are known to relationships but not touched)."""
        report = report or RunReport("lift", self.project.file)
        records = [r for r in records if self.project.group(r.group) is not None]
        self.redact.add(p for r in records for e in (r.endpoint, r.endpoint.jump) if e is not None
                        for p in (e.password, e.sudo_password) if p)
        running = [r for r in records if (only is None or r.group in only)
                   and (self.only_nodes is None or r.name in self.only_nodes
                        or r.name in bootstrap)]
        report.nodes = [(r.name, r.group) for r in running]
        try:
            self._run(records, running, report, tuple(bootstrap))
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C: no traceback
            report.interrupted = True
            report.outcomes += self._in_flight
            self._stop.set()
            self.on_event("interrupted")
        except PalletError as exc:
            # A phase that fails to compile stops the run; what ran is still reported.
            self._learn_secrets(())
            report.error = self.redact.text(exc.format())
        finally:
            self.close()
        return report

    def converge(self, provider: Provider, counts: dict[str, int]) -> RunReport:
        report = RunReport("converge", self.project.file)
        for group in counts:
            if self.project.group(group) is None:
                known = ", ".join(g.name for g in self.project.groups)
                raise PalletError(f"converge: {self.project.file} defines no group {group!r} "
                                  f"(groups: {known})")
        # Bad phases are found before any node is created or destroyed.
        self.project.check_phases(tuple((None, self.project.group(g)) for g in counts),
                                  self.options.phases)
        existing = [r for r in provider.list_nodes() if r.group in counts]
        new: list[str] = []
        for group, count in counts.items():
            spec = self.project.group(group)
            have = sorted((r for r in existing if r.group == group), key=lambda r: _number(r.name))
            if len(have) > count:
                extra = [r.name for r in have[count:]]
                self.on_event("destroy", nodes=extra)
                provider.destroy_nodes(extra)
                report.destroyed += extra
            elif len(have) < count:
                self.on_event("create", group=group, count=count - len(have))
                made = provider.create_nodes(group, count - len(have), spec.node_spec)
                names = [r.name for r in made]
                new += names
                report.created += names
        # Every node of the spec's groups is in the world (relationships see them all); the
        # phases run on the converged groups' nodes.
        records = [r for r in provider.list_nodes() if self.project.group(r.group) is not None]
        return self.lift(records, report, bootstrap=new, only=set(counts))

    def close(self) -> None:
        with self._conn_lock:
            self._closed = True
            connections, self.connections = list(self.connections.values()), {}
        for conn in connections:
            try:
                conn.close()
            except Exception:  # noqa: BLE001  (closing is best effort)
                pass
        if self._connect_pool is not None:
            self._connect_pool.shutdown(wait=False, cancel_futures=True)

    # ---- connections: opened in the background while the first phase compiles ---------------

    def _start_connecting(self, records: list[NodeRecord]) -> None:
        self._connect_pool = ThreadPoolExecutor(
            max_workers=max(1, min(self.options.parallel, len(records) or 1)))
        self._connecting = {r.name: self._connect_pool.submit(self._open, r) for r in records}

    def _open(self, record: NodeRecord):
        self.on_event("connect", node=record.name)
        conn = self.connect(record.endpoint, self.options.ssh)
        with self._conn_lock:
            if self._closed:  # the run was interrupted while this node was connecting
                conn.close()
                raise TransportError("dropped", "the run was interrupted")
            self.connections[record.name] = conn
        if not record.os_family:
            # Detected here, as soon as the node's own connection is up: all nodes at once,
            # not one after another once every connection is made.
            from .facts import detect_os
            try:
                self._detected[record.name] = detect_os(conn)
            except PalletError as exc:
                self._detected[record.name] = exc
        return conn

    def _connection(self, name: str):
        """The node's connection, waiting for it; TransportError if it could not be made."""
        return self._connecting[name].result()

    def _connect_error(self, name: str) -> str | None:
        try:
            self._connection(name)
        except TransportError as exc:
            why = self.redact.text(f"{exc.kind}: {exc.message}")
            self.on_event("unreachable", node=name, error=why)
            return why
        return None

    # ---- one operation ----------------------------------------------------------------------

    def _run(self, records: list[NodeRecord], running: list[NodeRecord], report: RunReport,
             bootstrap: tuple[str, ...]) -> None:
        self._start_connecting(running)
        errors: dict[str, str] = {}
        if not all(r.os_family for r in running):
            # Facts come from the nodes: wait for every connection before planning.
            for r in running:
                why = self._connect_error(r.name)
                if why:
                    errors[r.name] = why
        # Otherwise the first phase is planned and compiled while the connections open, and
        # each node runs its bundle as soon as its own connection is up.
        facts = {r.name: self._facts(r, errors) for r in records}
        nodes = tuple((facts[r.name], self.project.group(r.group)) for r in records)
        targets = tuple(pair for pair in nodes if pair[0].name in {r.name for r in running})
        requested = self.options.phases
        self.project.check_phases(targets, requested)
        with no_cycle_collection():
            world = self.project.world(nodes)
        phases = list(self.project.phase_order(targets, requested))
        if bootstrap and any(g.phase("bootstrap") for _, g in targets) and "bootstrap" not in phases:
            phases.insert(0, "bootstrap")  # new nodes bootstrap first, whatever phases are named
        out_of_play = dict(errors)           # node -> why it no longer runs phases
        groups = {r.name: r.group for r in running}
        if errors and running:   # the nodes that could not be reached count against the budget
            self._check_budget(len(errors), len(running), "of the nodes could not be reached")
        for phase in phases:
            if self._stop.is_set():
                break
            runs_here = {n.name for n, _ in targets if n.name not in out_of_play and
                         (phase != "bootstrap" or n.name in bootstrap or "bootstrap" in requested)}
            wanted = (phase,) if phase == "bootstrap" else requested
            with no_cycle_collection():  # planning and building: many objects, no cycles
                plans = {k: v for k, v in self.project.plan_phase(world, phase, wanted).items()
                         if k in runs_here}
            for name, why in out_of_play.items():
                if self.project.group(groups[name]).phase(phase):
                    first = name in errors and not any(o.node == name for o in report.outcomes)
                    report.outcomes.append(PhaseOutcome(
                        name, groups[name], phase, "failed" if first else "skipped", error=why,
                        cause=why.split(":", 1)[0] if first else None))
            if not plans:
                continue
            self.on_event("phase", phase=phase, nodes=sorted(plans))
            with no_cycle_collection():
                bundles = build_bundles({(n, phase): a for n, a in plans.items()}, nodes,
                                        self.read_file)
            self._learn_secrets(bundles)
            outcomes = self._run_phase(bundles, world)
            report.outcomes += outcomes
            failed = [o for o in outcomes if o.status == "failed"]
            for o in failed:
                out_of_play[o.node] = f"failed in phase :{phase}"
            within_budget = self.options.max_fail_percent is not None and not self._over_budget
            if (failed or errors) and not self.options.keep_going and not within_budget:
                why = (f"not run: {self._over_budget}" if self._over_budget
                       else f"not run: phase :{phase} failed")
                for later in phases[phases.index(phase) + 1:]:
                    for n, g in targets:
                        if g.phase(later) and n.name not in errors:
                            report.outcomes.append(PhaseOutcome(
                                n.name, g.name, later, "skipped", error=why))
                break

    def _learn_secrets(self, bundles: Sequence[Bundle]) -> None:
        """The secrets the spec made so far (phases are planned as the run goes) and those
        the bundles carry, masked from now on."""
        registry = getattr(self.project.evaluator, "secrets", None)
        if registry is not None:
            registry.teach(self.redact)
        for bundle in bundles:
            self.redact.add(bundle.secret_texts, lines=False)

    def _facts(self, record: NodeRecord, errors: dict[str, str]) -> NodeFacts:
        family, version = record.os_family, record.os_version
        if not family and record.name not in errors:
            self._connection(record.name)      # connected, and detected (in _open)
            os_facts = self._detected[record.name]
            if isinstance(os_facts, PalletError):
                errors[record.name] = self.redact.text(f"facts: {os_facts.message}")
            else:
                family, version = os_facts.family, os_facts.version
        return NodeFacts(record.name, record.group, family or "unknown", version,
                         host=record.endpoint.host, private_ip=record.private_ip,
                         roles=record.roles, port=record.endpoint.port, user=record.endpoint.user,
                         private_key=record.endpoint.private_key)

    def _check_budget(self, failed: int, of: int, what: str) -> bool:
        """With --max-fail-percent P: is `failed` of `of` nodes more than P percent? Then the
        roll stops, and `_over_budget` says why."""
        limit = self.options.max_fail_percent
        if limit is None or failed * 100 <= limit * of:
            return False
        self._over_budget = (f"{failed} of {of} {what} ({failed * 100 / of:.0f}%), more than "
                             f"--max-fail-percent {limit:g}")
        return True

    def _run_phase(self, bundles: Sequence[Bundle], world) -> list[PhaseOutcome]:
        batch = self.options.serial or len(bundles) or 1
        outcomes: list[PhaseOutcome] = []
        if self._over_budget:   # the nodes that could not be reached were too many
            return [PhaseOutcome(b.node.name, b.group, b.phase, "skipped",
                                 error=f"not run: {self._over_budget}") for b in bundles]
        for start in range(0, len(bundles), batch):
            chunk = bundles[start:start + batch]
            pool = ThreadPoolExecutor(max_workers=max(1, min(self.options.parallel, len(chunk))))
            futures = []
            try:
                futures += [pool.submit(self._run_bundle, b) for b in chunk]
                results = [f.result() for f in futures]
            except KeyboardInterrupt:
                self._interrupted(pool, futures, chunk, outcomes)
                raise
            pool.shutdown()
            for outcome, values in results:
                outcomes.append(outcome)
                if values:
                    world.published.setdefault(outcome.node, {}).update(values)
            rest = bundles[start + batch:]
            if self.options.max_fail_percent is not None:
                failed = sum(1 for o, _ in results if o.status == "failed")
                number = start // batch + 1
                what = ("of the phase's nodes failed" if len(chunk) == len(bundles)
                        else f"nodes of batch {number} failed")
                if self._check_budget(failed, len(chunk), what):
                    if rest:
                        self.on_event("budget", reason=self._over_budget)
                    for b in rest:
                        outcomes.append(PhaseOutcome(b.node.name, b.group, b.phase, "skipped",
                                                     error=f"not run: {self._over_budget}"))
                    break
            elif self.options.serial and any(o.status == "failed" for o in outcomes) \
                    and not self.options.keep_going:
                for b in rest:
                    outcomes.append(PhaseOutcome(b.node.name, b.group, b.phase, "skipped",
                                                 error="not run: an earlier batch failed"))
                break
        return outcomes

    def _interrupted(self, pool: ThreadPoolExecutor, futures: list, chunk: Sequence[Bundle],
                     outcomes: list[PhaseOutcome]) -> None:
        """Ctrl-C while a batch runs: every node of it that had not finished is recorded as
        interrupted, then the connections are closed (which ends the execs the workers wait
        on); nobody waits for the nodes."""
        self._stop.set()
        now = time.perf_counter()
        caught = []
        for i, b in enumerate(chunk):
            f = futures[i] if i < len(futures) else None
            if f is not None and f.done() and not f.cancelled() and f.exception() is None:
                caught.append(f.result()[0])
                continue
            key = (b.node.name, b.phase)
            live, started = self._live.get(key, (None, now))
            outcome = PhaseOutcome(b.node.name, b.group, b.phase, "failed",
                                   actions=list(live.actions) if live else [],
                                   cause="interrupted", seconds=now - started)
            outcome.count_actions()
            outcome.error = ("interrupted: Ctrl-C while the phase ran on the node; the "
                             "connection was closed" if live else
                             "interrupted: Ctrl-C before the phase started on the node")
            if live is None:
                outcome.status, outcome.cause = "skipped", None
            if not self._record_once(outcome, "", "", force=True) and live is not None:
                outcome = live           # its worker finished and recorded it meanwhile
            caught.append(outcome)
        self._in_flight = outcomes + caught
        self.close()
        pool.shutdown(wait=False, cancel_futures=True)

    def _record_once(self, outcome: PhaseOutcome, stdout: str, stderr: str,
                     force: bool = False) -> bool:
        """Record a node's phase result unless it is recorded already, or the run was
        interrupted (then the main thread records it). Says whether it did."""
        key = (outcome.node, outcome.phase)
        with self._record_lock:
            if key in self._recorded or (self._stop.is_set() and not force):
                return False
            self._recorded.add(key)
        if self.record is not None:
            self.record.result(outcome, stdout, stderr)
        return True

    def _run_bundle(self, bundle: Bundle) -> tuple[PhaseOutcome, dict[str, str]]:
        outcome = PhaseOutcome(bundle.node.name, bundle.group, bundle.phase, "ok")
        values: dict[str, str] = {}
        if self._stop.is_set():
            outcome.status, outcome.error = "skipped", "interrupted"
            return outcome, values
        files = {bundle.script_name: bundle.script.encode(), **dict(bundle.files)}
        if self.record is not None:
            self.record.bundle(bundle)
        self._live[(outcome.node, outcome.phase)] = (outcome, time.perf_counter())
        self.on_event("start", node=outcome.node, phase=outcome.phase)

        def on_line(line: str) -> None:
            m = ACTION_LINE.match(self.redact.text(line))
            if m:
                outcome.actions.append((int(m[1]), m[2], m[3]))
                self.on_event("action", node=outcome.node, phase=outcome.phase,
                              index=int(m[1]), status=m[2], label=m[3])

        started = time.perf_counter()
        try:
            conn = self._connection(outcome.node)
            result = conn.run_bundle(files, bundle.script_name, bundle.target.shell, on_line,
                                     timeout=self.options.phase_timeout)
        except TransportError as exc:
            outcome.status = "failed"
            outcome.error = self.redact.text(f"{exc.kind}: {exc.message}")
            outcome.cause = exc.kind
            outcome.seconds = time.perf_counter() - started
            outcome.count_actions()
            said = getattr(exc, "result", None)
            if self._record_once(outcome, self.redact.text(said.stdout) if said else "",
                                 self.redact.text(said.stderr) if said else ""):
                self.on_event("end", outcome=outcome)
            return outcome, values
        outcome.seconds = time.perf_counter() - started
        outcome.exit_status = result.exit_status
        if not outcome.actions:  # a transport that does not stream lines
            for line in result.stdout.splitlines():
                on_line(line)
        for line in result.stdout.splitlines():
            m = VALUE_LINE.match(line)
            if m:
                values[m[1]] = base64.b64decode(m[2]).decode("utf-8", "replace")
        outcome.count_actions()
        stdout, stderr = self.redact.text(result.stdout), self.redact.text(result.stderr)
        if result.exit_status != 0 or outcome.failed:
            outcome.status = "failed"
            outcome.cause = "action" if outcome.failed else "exit"
            outcome.error = _failure(stderr, result.exit_status, outcome)
        elif outcome.changed:
            outcome.status = "changed"
        if self._record_once(outcome, stdout, stderr):
            self.on_event("end", outcome=outcome)
        return outcome, values


def _failure(stderr: str, status: int, outcome: PhaseOutcome) -> str:
    """The line the bundle wrote about its failed action with its cause: the last line written
    to stderr before it (`No space left on device`, `command not found`, remote-file's drift
    guard); else the last line of stderr."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    located = [i for i, line in enumerate(lines) if " failed (exit status " in line]
    if located:
        i = located[-1]
        if i > 0 and " failed (exit status " not in lines[i - 1]:
            cause = lines[i - 1].strip()
            return f"{lines[i]}: {cause.removeprefix('pallet: ')}"
        return lines[i]
    failed = [label for _, s, label in outcome.actions if s == "failed"]
    if failed:
        return f"{failed[0]} failed" + (f": {lines[-1]}" if lines else "")
    return (lines[-1] if lines else "the script") + f" (exit status {status})"


def _number(name: str) -> int:
    m = re.search(r"-(\d+)$", name)
    return int(m.group(1)) if m else 0
