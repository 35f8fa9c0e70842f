"""converge and lift when a group's nodes are on a compute service (a cloud), and
converge --dry-run / --provision-only on any provider. The rest of `run.py` is the path
of local nodes and inventories, unchanged.

Which service a group is on: `--compute NAME` for every group when given; else the group's
own `:compute`; else the operation's (`(converge ... :compute aws-ec2)`); else local nodes.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from pallet.errors import PalletError


def _group_computes(project, op, operation, compute_option, compute_default):
    groups = [g for g, _ in op.groups] if op is not None else list(project.groups)
    if op is None or operation == "converge":
        groups = list(project.groups)       # counts may name any group of the spec
    out = {}
    for g in groups:
        if compute_option is not None:
            out[g.name] = compute_option
        elif getattr(g, "compute", None) is not None:
            out[g.name] = g.compute
        else:
            out[g.name] = compute_default
    return out


def _inventory_ssh(o) -> dict:
    """How an inventory's hosts are reached: the SSH config, --jump and --jump-key."""
    return {"ssh_config": o.get("ssh_config"), "jump": o.get("jump"), "jump_key": o.get("jump_key")}


def choose_providers(project, op, operation, compute, o, spec):
    """(provider, None) for the path of run.py, or (None, {group: provider}) for this one."""
    from pallet.runtime.providers import LOCAL, NODE_LIST, provider_for
    spec_tag = Path(spec).stem
    from pallet.grammar.forms import Keyword
    if compute is None and op is not None and not o["inventory"]:
        if isinstance(op.compute, str):        # (converge ... :compute "lab")
            compute = op.compute
        elif isinstance(op.compute, Keyword):  # (converge ... :compute :lab)
            compute = op.compute.name
    computes = _group_computes(project, op, operation, o["compute"], compute)
    names = {getattr(c, "name", c) for c in computes.values()}
    builtin = {None, LOCAL, NODE_LIST}
    plain = names <= builtin and not o.get("dry_run") and not o.get("provision_only")
    span = op.span if op is not None and o["compute"] is None else None   # a name in the spec
    if plain:
        return provider_for(compute, o["inventory"], o["state_dir"], span=span,
                            services=o.get("services"), **_inventory_ssh(o)), None
    made: dict[object, object] = {}
    routes = {}
    for group, c in computes.items():
        key = getattr(c, "name", c)
        if key not in made:
            own = getattr(project.group(group), "compute", None) is not None and o["compute"] is None
            gspan = project.group(group).span if own else span
            made[key] = provider_for(c, o["inventory"] if key in (None, NODE_LIST) else None,
                                     o["state_dir"], span=gspan, services=o.get("services"),
                                     spec_tag=spec_tag, parallel=max(1, o["parallel"]), **_inventory_ssh(o))
        routes[group] = made[key]
    return None, routes


def _say(as_json: bool):
    if as_json:
        return lambda text: None
    def say(text: str) -> None:
        click.echo(text, err=True)
    return say


def _secrets_of(routes) -> list:
    return [p for p in {id(p): p for p in routes.values()}.values() if hasattr(p, "service")]


def execute(operation, spec, counts, o, project, op, routes, ssh_process, redactor=None) -> None:
    """`redactor`: the secrets of the spec and the run (pallet.secret.Redactor), masked in
    all the run shows and keeps."""
    from pallet.secret import Redactor
    redactor = redactor if redactor is not None else Redactor()
    try:
        _execute(operation, spec, counts, o, project, op, routes, ssh_process, redactor)
    except PalletError as exc:
        clouds = _secrets_of(routes)
        for p in clouds:                  # no secret leaves in an error
            exc.message = p.service.redact(exc.message)
        raise


def _execute(operation, spec, counts, o, project, op, routes, ssh_process, redactor) -> None:
    from pallet.runtime.cloud import converge as cloud
    from pallet.runtime.cloud.provider import CloudProvider
    from pallet.runtime.executor import Executor, RunReport
    from pallet.runtime.record import RunRecord, default_record_dir
    from pallet.runtime.report import Progress

    from ._spec import local_file_reader
    from ._run_common import _counts, check_still_nodes, failed_last_time, finish, options_for_run, ssh_options

    phases = tuple(p.lstrip(":") for p in o["phases"]) or (op.phases if op else ())
    clouds = [p for p in routes.values() if isinstance(p, CloudProvider)]
    known_hosts = o["known_hosts"] or (clouds[0].known_hosts if clouds else
                                       getattr(next(iter(routes.values())), "known_hosts", None))
    if known_hosts and clouds and not o["known_hosts"]:
        Path(known_hosts).parent.mkdir(parents=True, exist_ok=True)
    # the nodes a service makes are new hosts: their keys are recorded at first contact in
    # Pallet's own file (a changed key is still refused)
    ssh = ssh_options(o, known_hosts,
                      o["accept_new_host_keys"] or bool(clouds and not o["known_hosts"]))
    options = options_for_run(o, phases, ssh)
    say = _say(o["as_json"])

    if operation == "converge":
        wanted = _counts(counts, project, op)
        project.check_phases(tuple((None, project.group(g)) for g in wanted), options.phases)
        routes = {g: routes[g] for g in wanted}
        if o.get("dry_run"):
            plans, _ = cloud.plan(project, routes, wanted, every_template=True, addresses=False)
            order = [] if o.get("provision_only") else _phase_names(project, wanted, phases)
            if o["as_json"]:
                click.echo(json.dumps({"dry_run": True, "spec": spec,
                                       "groups": [p.as_json() for p in plans],
                                       "phases": order}, indent=2))
            else:
                boot = any(project.group(g).phase("bootstrap") for g in wanted)
                for line in cloud.describe_plan(plans, order, o.get("provision_only"), boot):
                    click.echo(line)
                click.echo("dry run: nothing was changed")
            return
    record_dir = Path(o["record_dir"]) if o["record_dir"] else default_record_dir()
    only_nodes = failed_last_time(o, spec, operation, record_dir)
    record = RunRecord(record_dir, operation, redactor)
    progress = None if o["as_json"] else Progress()
    connect = ssh_process.connect if ssh_process is not None else _no_ssh
    executor = Executor(project, options, local_file_reader(spec), record=record,
                        on_event=progress, connect=connect, redactor=redactor)
    executor.only_nodes = only_nodes
    report = RunReport(operation, spec)
    try:
        if operation == "converge":
            report = cloud.converge(executor, project, routes, wanted, record_path=record.path,
                                    provision_only=bool(o.get("provision_only")), say=say)
        else:
            groups = {g.name for g, _ in op.groups} if op else {g.name for g in project.groups}
            records = []
            for provider in {id(p): p for p in routes.values()}.values():
                records += [r for r in provider.list_nodes() if r.group in groups
                            and routes.get(r.group) is provider]
            if not records:
                where = ", ".join(sorted({p.name for p in routes.values()}))
                raise PalletError(f"no nodes of the groups {', '.join(sorted(groups))} in "
                                  f"{where}; converge first")
            check_still_nodes(only_nodes, records, ", ".join(sorted({p.name for p in routes.values()})), o)
            report = executor.lift(records)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        report.interrupted = True
    finally:
        for p in _secrets_of(routes):     # the services' credentials, as they were read
            redactor.add(p.service.secrets())
        report.record = str(record.path)
        record.summary(report)
    finish(report, o, ssh_process, redactor)


def _phase_names(project, groups, phases) -> list[str]:
    """The phases a converge of these groups runs (as the executor orders them)."""
    from pallet.compiler.specs import PHASE_ORDER
    if phases:
        return list(phases)
    names = set()
    for g in groups:
        spec = project.group(g)
        names |= set(spec.default_phases or [p for p, _ in spec.phases])
    names.discard("bootstrap")
    names.discard("settings")
    return sorted(names, key=lambda p: (PHASE_ORDER.index(p) if p in PHASE_ORDER else len(PHASE_ORDER), p))


def _no_ssh(endpoint, options):
    raise PalletError("--provision-only makes no SSH connection")
