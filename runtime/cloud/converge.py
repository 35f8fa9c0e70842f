"""converge where some group's nodes come from a compute service (a cloud).

    1. list each service's nodes of the spec's groups (by tags);
    2. match each group that needs nodes to a template (image, size, location): a node-spec
       that matches nothing stops the run here, before anything is created or destroyed;
    3. --dry-run: print the plan, and stop;
    4. destroy the surplus nodes;
    5. create the missing ones, in parallel; each node is written to the run record's
       `nodes.jsonl` as soon as the provider returns its id;
    6. wait until they run (then, unless --provision-only, until SSH answers and cloud-init
       has finished); a node that does not is destroyed and reported as failed;
    7. --provision-only stops here; else :bootstrap runs on the new nodes, then the phases
       on all (the executor's lift).

Groups may be on different services (a group-spec's own :compute); each step runs for all
of them at once. Failures leave the other nodes going on; the run exits 1.
"""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pallet.errors import PalletError

from ..executor import PhaseOutcome, RunReport
from .provider import CloudNode, CloudProvider

CLOUD_INIT_WAIT = ("if command -v cloud-init >/dev/null 2>&1; then "
                   "cloud-init status --wait >/dev/null 2>&1; s=$?; "
                   "if [ \"$s\" -eq 1 ]; then cloud-init status 2>&1 | tail -n 3; exit 1; fi; fi; exit 0")


@dataclass
class GroupPlan:
    group: str
    provider: object
    have: list = field(default_factory=list)          # NodeRecord
    want: int = 0
    template: object = None

    @property
    def surplus(self) -> list:
        if len(self.have) <= self.want:
            return []
        # local nodes: the highest numbers go first (web-10 after web-9), as in lift's converge
        return sorted(self.have, key=lambda r: _natural(r.name))[self.want:]

    @property
    def missing(self) -> int:
        return max(0, self.want - len(self.have))

    def as_json(self) -> dict:
        t = self.template
        return {"group": self.group, "compute": self.provider.name, "have": len(self.have),
                "want": self.want, "create": self.missing,
                "destroy": [r.name for r in self.surplus],
                "size": t.size_info.id if t else None, "image": t.image_info.id if t else None,
                "image_name": t.image_info.name if t else None,
                "location": getattr(t.location, "name", None) if t else None,
                "inbound_ports": list(t.inbound_ports) if t else None,
                "login_user": t.login_user if t else None}


def _natural(name: str) -> tuple:
    import re
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


class Journal:
    """RECORD/nodes.jsonl: each node made or destroyed, written and synced as it happens."""

    def __init__(self, record_path: Path | None):
        self.path = Path(record_path) / "nodes.jsonl" if record_path else None
        self._lock = threading.Lock()

    def write(self, event: str, service: str, node: CloudNode | None = None, **extra) -> None:
        entry = {"event": event, "service": service, **extra}
        if node is not None:
            entry.update(id=node.id, name=node.name, group=node.group)
        self.write_entries([entry])

    def write_nodes(self, event: str, service: str, nodes, **extra) -> None:
        """One line per node (CloudNode, or NodeRecord without an id), synced once."""
        self.write_entries([{"event": event, "service": service, **extra,
                             **({"id": n.id} if hasattr(n, "id") else {}),
                             "name": n.name, "group": n.group} for n in nodes])

    def write_entries(self, entries: list[dict]) -> None:
        if self.path is None or not entries:
            return
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(e) + "\n" for e in entries))
            f.flush()
            os.fsync(f.fileno())


def plan(project, routes: dict[str, object], counts: dict[str, int],
         every_template: bool = False, addresses: bool = True) -> tuple[list[GroupPlan], list]:
    """Steps 1 and 2: what each group has and needs, with its template; and the nodes of
    the spec's other groups on the same services (relationships see them). Without
    `addresses` (--dry-run, --provision-only: no connection), a cloud's nodes are listed
    without them.

    The services are listed at once, and each service's templates of the groups that may
    need nodes (a count above 0) are looked up meanwhile (read-only calls: the catalogue,
    the key pairs, the security groups): one round trip less before creating. A template
    is used, and its error raised, only if the listing shows the group needs nodes."""
    providers = list({id(p): p for p in routes.values()}.values())
    ahead: dict[int, list[str]] = {}
    for group, count in counts.items():
        provider = routes[group]
        if isinstance(provider, CloudProvider) and (count > 0 or every_template):
            ahead.setdefault(id(provider), []).append(group)
    for p in providers:
        if isinstance(p, CloudProvider):
            p.driver                  # made once, here, before two threads need it
    pool = ThreadPoolExecutor(max_workers=max(1, len(providers) + len(ahead)),
                              thread_name_prefix="pallet-plan")

    def templates(provider, groups):
        found = {}
        for group in groups:          # one service's in turn: its catalogue is read once
            spec = project.group(group)
            try:
                found[group] = provider.template(group, spec.node_spec, spec.span)
            except PalletError as exc:
                found[group] = exc
        return found

    try:
        looked_up = {id(p): pool.submit(templates, p, ahead[id(p)]) for p in providers if id(p) in ahead}
        listings = {id(p): pool.submit(p.list_nodes, addresses=addresses)
                    for p in providers if isinstance(p, CloudProvider)}
        listed = {id(p): list(p.list_nodes()) for p in providers if not isinstance(p, CloudProvider)}
        listed.update({key: list(f.result()) for key, f in listings.items()})
        plans = []
        for group, count in counts.items():
            provider = routes[group]
            have = [r for r in listed[id(provider)] if r.group == group]
            gp = GroupPlan(group, provider, have, count)
            if isinstance(provider, CloudProvider) and (gp.missing or every_template):
                template = looked_up[id(provider)].result()[group]
                if isinstance(template, PalletError):
                    raise template
                gp.template = template
            plans.append(gp)
    finally:
        pool.shutdown(wait=False)
    others = [r for rs in listed.values() for r in rs
              if r.group not in counts and project.group(r.group) is not None]
    return plans, others


def describe_plan(plans: list[GroupPlan], phases: list[str], provision_only: bool,
                  bootstrap: bool = False) -> list[str]:
    """The lines of --dry-run; `bootstrap`: a converged group defines :bootstrap."""
    lines = []
    for p in plans:
        head = f"{p.group} on {p.provider.name}: {len(p.have)} -> {p.want} node(s)"
        if p.missing:
            what = f"create {p.missing}"
            if p.template is not None:
                what += f": {p.template.describe()}; ports {', '.join(map(str, p.template.inbound_ports))}; login {p.template.login_user}"
            lines.append(f"{head}: {what}")
        elif p.surplus:
            lines.append(f"{head}: destroy {', '.join(r.name for r in p.surplus)}")
        else:
            lines.append(f"{head}: nothing to change")
    if provision_only:
        lines.append("then no phase (--provision-only)")
    elif phases:
        new = bootstrap and any(p.missing for p in plans)
        lines.append("then " + (":bootstrap on the new nodes, " if new else "")
                     + f"phases {' '.join(':' + x for x in phases)} on every node of the groups")
    return lines


def converge(executor, project, routes: dict[str, object], counts: dict[str, int], *,
             record_path: Path | None, provision_only: bool = False,
             say: Callable[[str], None] | None = None) -> RunReport:
    """Steps 4 to 7 (the plan first)."""
    say = say or (lambda text: None)
    report = RunReport("converge", project.file)
    plans, others = plan(project, routes, counts, addresses=not provision_only)
    journal = Journal(record_path)
    failures: list[PhaseOutcome] = []
    stop = threading.Event()
    new: dict[str, CloudNode] = {}          # name -> node, made in this run
    new_by: dict[str, list[CloudNode]] = {}
    lock = threading.Lock()

    # 4. surplus
    by_provider: dict[int, tuple[object, list]] = {}
    for p in plans:
        if p.surplus:
            by_provider.setdefault(id(p.provider), (p.provider, []))[1].extend(p.surplus)
    for provider, records in by_provider.values():
        names = [r.name for r in records]
        say(f"{provider.name}: destroying {len(names)} node(s): {', '.join(names)}")
        provider.destroy_nodes(names)
        journal.write_nodes("destroyed", provider.name, records)
        report.destroyed += names

    # 5. create
    def created(provider, nodes):
        with lock:
            journal.write_nodes("created", provider.name, nodes)     # before anything else
            for n in nodes:
                new[n.name] = n
                new_by.setdefault(provider.name, []).append(n)
                report.created.append(n.name)
        say(f"{provider.name}: created {', '.join(f'{n.name} ({n.id})' for n in nodes)}")

    def failed(group, provider, count, why):
        with lock:
            failures.append(PhaseOutcome(f"({count} node(s) not created)", group, "create",
                                         "failed", failed=count, error=why))
        say(f"{provider.name}: {count} node(s) of {group} not created: {why}")

    work = [p for p in plans if p.missing]
    others = [p for p in work if not isinstance(p.provider, CloudProvider)]
    made_here: list = []                 # nodes the other providers made (local nodes)
    for p in others:                     # local nodes: the provider's own create
        made = p.provider.create_nodes(p.group, p.missing, project.group(p.group).node_spec)
        report.created += [r.name for r in made]
        made_here += made
    clouds = [p for p in work if isinstance(p.provider, CloudProvider)]
    for p in clouds:
        say(f"{p.provider.name}: creating {p.missing} node(s) of {p.group}: {p.template.describe()}")
    interrupted = False
    if clouds:
        pool = ThreadPoolExecutor(max_workers=len(clouds), thread_name_prefix="pallet-provision")
        futures = [pool.submit(p.provider.provision, p.group, p.missing, p.template,
                               lambda nodes, pr=p.provider: created(pr, nodes),
                               lambda n, why, g=p.group, pr=p.provider: failed(g, pr, n, why), stop)
                   for p in clouds]
        try:
            for f, p in zip(futures, clouds):
                try:
                    f.result()
                except PalletError as exc:       # a key pair or firewall the service refused
                    failed(p.group, p.provider, p.missing, exc.message)
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            from .provider import _wait_through_interrupts
            _wait_through_interrupts(futures)
        finally:
            pool.shutdown(wait=False)
    if interrupted:
        report.interrupted = True
        report.nodes = [(n.name, n.group) for n in new.values()]
        _add_failures(report, failures)
        say("interrupted: every node created so far is in the record; converge again to go on")
        return report

    # 6. wait: running, then SSH and cloud-init
    ready: dict[str, object] = {}        # name -> NodeRecord
    bad: dict[str, tuple[object, CloudNode, str]] = {}
    providers = {p.provider.name: p.provider for p in clouds}
    try:
        for pname, nodes in new_by.items():
            provider = providers[pname]
            up, down = provider.wait_running(nodes, stop, addresses=not provision_only)
            for n in up:
                ready[n.name] = provider.record(n)
                new[n.name] = n
            for n in nodes:
                if n.name in down:
                    bad[n.name] = (provider, n, down[n.name])
        if not provision_only and ready:
            waiting = list(ready.items())
            pool = ThreadPoolExecutor(max_workers=max(1, min(executor.options.parallel, len(waiting))))
            try:
                results = list(pool.map(lambda item: _ready_for_ssh(executor, providers[item[1].provider],
                                                                     item[1], stop), waiting))
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
            for (name, rec), why in zip(waiting, results):
                if why:
                    bad[name] = (providers[rec.provider], new[name], why)
                    del ready[name]
        if bad:
            by: dict[str, list] = {}
            for name, (provider, node, why) in bad.items():
                say(f"{provider.name}: {name} failed: {why}; destroying it")
                failures.append(PhaseOutcome(name, node.group or "", "create", "failed", failed=1,
                                             error=why))
                by.setdefault(provider.name, []).append(node)
            for pname, nodes in by.items():
                try:
                    providers[pname].destroy(nodes)
                except PalletError as exc:
                    say(f"{pname}: could not destroy {', '.join(n.name for n in nodes)}: {exc.message}")
                    continue
                journal.write_nodes("destroyed", pname, nodes, why="failed to boot")
                report.destroyed += [n.name for n in nodes]

    except KeyboardInterrupt:
        # Every node made is in nodes.jsonl already; the report says which, and stops here.
        stop.set()                           # the SSH waits in flight give up
        report.interrupted = True
        report.nodes = [(n.name, n.group) for n in new.values()]
        _add_failures(report, failures)
        return report

    # 7. phases
    records = [r for p in plans for r in p.have if r.name not in report.destroyed]
    records += made_here + list(ready.values())
    if provision_only:
        report.nodes = [(r.name, r.group) for r in records]
        _add_failures(report, failures)
        return report
    report = executor.lift(records + others, report,
                           bootstrap=[r.name for r in [*made_here, *ready.values()]], only=set(counts))
    _add_failures(report, failures)
    return report


def _add_failures(report: RunReport, failures: list[PhaseOutcome]) -> None:
    """Nodes that failed to be made or to boot: first in the report, each as a node."""
    report.outcomes[:0] = failures
    known = {name for name, _ in report.nodes}
    for f in failures:
        if f.node not in known:
            report.nodes.append((f.node, f.group))
            known.add(f.node)


def _ready_for_ssh(executor, provider: CloudProvider, record, stop=None) -> str | None:
    """None when the node answers SSH and cloud-init has finished; else why not."""
    why = provider.wait_ssh(record, stop=stop)
    if why:
        return why
    try:
        conn = executor.connect(record.endpoint, executor.options.ssh)
    except PalletError as exc:
        return f"SSH: {getattr(exc, 'kind', 'error')}: {exc.message}"
    try:
        result = conn.run(CLOUD_INIT_WAIT)
        if result.exit_status != 0:
            return f"cloud-init failed: {' '.join((result.stdout + result.stderr).split())[:300]}"
    except PalletError as exc:
        return f"waiting for cloud-init: {exc.message}"
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    return None
