"""`pallet lift` and `pallet converge`: run a spec's phases on nodes, and report."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import click

from pallet.errors import PalletError
from pallet.runtime.model import KEEPALIVE_COUNT, KEEPALIVE_INTERVAL, PHASE_TIMEOUT

from ._run_common import (_counts, check_still_nodes, failed_last_time, finish, options_for_run,
                          raise_descriptor_limit, ssh_options)
from ._spec import local_file_reader, search_path


def run_options(fn):
    """Options every run shares: phases, how to reach nodes, how to run, how to report."""
    options = [
        click.option("--phase", "phases", multiple=True, metavar="P",
                     help="A phase to run (repeatable); default: the spec's own, else every phase."),
        click.option("--compute", metavar="NAME",
                     help="Where the nodes are: local (default), node-list, or a service of the "
                          "services file."),
        click.option("--services", "services", metavar="FILE", type=click.Path(dir_okay=False),
                     help="The services file (default ~/.config/pallet/services.toml, or "
                          "PALLET_SERVICES)."),
        click.option("--nodes", "inventory", metavar="INVENTORY", type=click.Path(dir_okay=False),
                     help="A TOML inventory of existing servers (the node-list provider)."),
        click.option("--state-dir", type=click.Path(file_okay=False),
                     help="Local nodes' state directory (default ~/.local/state/pallet/nodes)."),
        click.option("--jump", metavar="[USER@]HOST[:PORT]",
                     help="Reach the nodes through this jump host (unless the inventory gives one)."),
        click.option("--jump-key", type=click.Path(dir_okay=False), metavar="FILE",
                     help="The key for the jump host (default: each node's key)."),
        click.option("--ask-sudo-password", is_flag=True,
                     help="Ask for the sudo password of a non-root login (else sudo -n; also "
                          "PALLET_SUDO_PASSWORD, or sudo-password in the inventory)."),
        click.option("--ssh-config", metavar="FILE",
                     help="The OpenSSH client config for the inventory's hosts (Host aliases, "
                          "HostName, Port, User, IdentityFile, ProxyJump, UserKnownHostsFile); "
                          "default ~/.ssh/config and /etc/ssh/ssh_config, or PALLET_SSH_CONFIG; "
                          "none: no config."),
        click.option("--known-hosts", type=click.Path(dir_okay=False),
                     help="Check host keys against this file (default ~/.ssh/known_hosts)."),
        click.option("--accept-new-host-keys", is_flag=True,
                     help="Accept and record the keys of hosts not yet known (never a changed key)."),
        click.option("--parallel", default=64, show_default=True, metavar="N",
                     help="Nodes running a phase at once."),
        click.option("--serial", type=int, metavar="N", help="Roll through the nodes N at a time."),
        click.option("--keep-going", is_flag=True,
                     help="Run later phases after a failure (on the nodes that did not fail)."),
        click.option("--max-fail-percent", type=click.FloatRange(0, 100), metavar="P",
                     help="Stop rolling when more than P%% of a batch (of --serial N nodes; "
                          "else of all) fails; below that, only the failed nodes sit out."),
        click.option("--only-failed", is_flag=True,
                     help="Run only on the nodes that failed in the last run of this spec "
                          "(read from the run records)."),
        click.option("--connect-timeout", default=10.0, show_default=True, metavar="S"),
        click.option("--retries", default=2, show_default=True, metavar="N",
                     help="Further connection attempts to an unreachable node."),
        click.option("--keepalive-interval", default=KEEPALIVE_INTERVAL, show_default=True,
                     metavar="S", type=click.FloatRange(min=0),
                     help="Seconds between SSH keepalive requests that need an answer; 0: none."),
        click.option("--keepalive-count", default=KEEPALIVE_COUNT, show_default=True, metavar="N",
                     type=click.IntRange(min=1),
                     help="Unanswered keepalives in a row after which a node is given up on "
                          "(a frozen node is reported within INTERVAL x (N+1) s)."),
        click.option("--phase-timeout", default=PHASE_TIMEOUT, show_default=True, metavar="SECONDS",
                     type=click.FloatRange(min=0),
                     help="Stop a node's phase that runs longer (its processes on the node), "
                          "and report it failed; 0: no limit."),
        click.option("--record-dir", type=click.Path(file_okay=False),
                     help="Where run records go (default .pallet/runs, or PALLET_RECORD_DIR)."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead."),
        click.option("--crate-path", multiple=True, metavar="DIR", type=click.Path(file_okay=False)),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _execute(operation: str, spec: str, counts: tuple[str, ...], o: dict) -> None:
    from pallet.runtime.ssh_process import SshProcess
    raise_descriptor_limit()           # before the fork: the helper holds the sockets
    # First, while this process has one thread: the helper that imports paramiko and makes
    # the connections on another CPU while this one loads and compiles the spec.
    # --dry-run and --provision-only make no SSH connection: no helper for them.
    ssh_process = None if o.get("dry_run") or o.get("provision_only") else SshProcess.start()
    try:
        _execute_with(operation, spec, counts, o, ssh_process)
    finally:
        if ssh_process is not None:
            ssh_process.shutdown()


def _execute_with(operation: str, spec: str, counts: tuple[str, ...], o: dict,
                  ssh_process) -> None:
    from pallet.secret import Redactor

    # Whatever this command shows or keeps is masked with every secret it knows: the spec's
    # (secret ...) values, the passwords of the nodes and the sudo password.
    redactor = Redactor()
    try:
        _run(operation, spec, counts, o, ssh_process, redactor)
    except PalletError as exc:
        raise redactor.error(exc) from None


def _run(operation, spec, counts, o, ssh_process, redactor) -> None:
    from pallet.compiler.project import load_project
    from pallet.compiler.specs import ComputeRef
    from pallet.runtime.executor import Executor, RunReport
    from pallet.runtime.record import RunRecord, default_record_dir
    from pallet.runtime.report import Progress

    project = load_project(spec, search_path(o["crate_path"]), environ=dict(os.environ))
    if project.evaluator.secrets is not None:
        project.evaluator.secrets.teach(redactor)
    op = next((x for x in project.operations if x.kind == operation), None)
    compute = o["compute"]
    if compute is None and op is not None and isinstance(op.compute, ComputeRef) and not o["inventory"]:
        compute = op.compute.name
    spec_nodes = project.spec_nodes() if not o["inventory"] and compute in (None, "node-list") else None
    if spec_nodes is not None:  # the spec's own (node-list ...)
        from pallet.runtime.providers import SpecNodeList
        provider = SpecNodeList(spec_nodes, Path(spec).resolve().parent)
    else:
        from ._cloud import choose_providers
        provider, routes = choose_providers(project, op, operation, compute, o, spec)
        if routes is not None:   # a cloud, --dry-run or --provision-only: runtime/cloud
            from ._cloud import execute
            return execute(operation, spec, counts, o, project, op, routes, ssh_process,
                           redactor)
    sudo_password = os.environ.get("PALLET_SUDO_PASSWORD")
    if o["ask_sudo_password"]:
        sudo_password = click.prompt("sudo password", hide_input=True, err=True)
    redactor.add([sudo_password] if sudo_password else [])
    if o["jump"] or sudo_password:
        from pallet.runtime.providers import NodeListProvider, WithEndpointDefaults
        from pallet.runtime.ssh_config import SshConfig
        jump = None
        if o["jump"] and not isinstance(provider, NodeListProvider):   # an inventory applies its own
            jump = SshConfig.named(o.get("ssh_config")).jump_endpoint(o["jump"], o["jump_key"])
        provider = WithEndpointDefaults(provider, jump, sudo_password)
    record_dir = Path(o["record_dir"]) if o["record_dir"] else default_record_dir()
    only_nodes = failed_last_time(o, spec, operation, record_dir)
    phases = tuple(p.lstrip(":") for p in o["phases"]) or (op.phases if op else ())
    known_hosts = o["known_hosts"] or getattr(provider, "known_hosts", None)  # local nodes' own
    ssh = ssh_options(o, known_hosts, o["accept_new_host_keys"])
    options = options_for_run(o, phases, ssh)
    record = RunRecord(record_dir, operation, redactor)
    # --json prints one document: no live progress, and no rich to import for it.
    progress = None if o["as_json"] else Progress()
    executor = Executor(project, options, local_file_reader(spec), record=record,
                        on_event=progress, connect=ssh_process.connect, redactor=redactor)
    executor.only_nodes = only_nodes
    report = RunReport(operation, spec)
    try:
        if operation == "converge":
            wanted = _counts(counts, project, op)
            report = executor.converge(provider, wanted)
        else:
            groups = {g.name for g, _ in op.groups} if op else {g.name for g in project.groups}
            records = [r for r in provider.list_nodes() if r.group in groups]
            if not records:
                raise PalletError(f"no nodes of the groups {', '.join(sorted(groups))} in "
                                  f"{provider.name}; converge first, or give --nodes")
            check_still_nodes(only_nodes, records, provider.name, o)
            if o.get("offline"):
                from pallet.runtime.offline_lift import lift_offline
                report = lift_offline(
                    project, records, phases, local_file_reader(spec), spec,
                    connect=ssh_process.connect, ssh_options=ssh, parallel=options.parallel,
                    on_event=_masked_events(progress or (lambda kind, **d: None), project,
                                            redactor),
                    keep=Path(o["bundles"]) if o.get("bundles") else None,
                    log=lambda msg: click.echo(msg, err=True))
            else:
                report = executor.lift(records)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        report.interrupted = True
    finally:
        report.record = str(record.path)
        record.summary(report)
    finish(report, o, ssh_process, redactor)


def _masked_events(on_event, project, redactor):
    """`on_event` given what the nodes said with every secret the spec made masked (the
    offline path: the executor masks its own)."""
    def masked(kind, **details):
        registry = project.evaluator.secrets
        if registry is not None:
            registry.teach(redactor)
        if "error" in details:
            details["error"] = redactor.text(details["error"])
        outcome = details.get("outcome")
        if outcome is not None:
            outcome.error = redactor.text(outcome.error)
        on_event(kind, **details)
    return masked


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@run_options
@click.option("--offline", is_flag=True,
              help="For nodes with no package mirror: read each node's state, make its "
                   "NODE.run here (packages inside) and run it there, one exec per node.")
@click.option("--bundles", type=click.Path(file_okay=False), metavar="DIR",
              help="With --offline: keep the run files in DIR (a Pallet bundle directory).")
def lift(spec, **o):
    """Run SPEC's phases on its existing nodes (an inventory with --nodes, or local nodes).

    Each phase is a barrier: its bundles run on every node in parallel, then the next phase
    is planned and compiled (so it can read values earlier phases published). With
    --offline each node runs its whole NODE.run (`pallet bundle`) at once instead. Exit
    status: 0 all ok, 1 a node failed, 2 bad input, 130 interrupted."""
    if o["bundles"] and not o["offline"]:
        raise PalletError("--bundles DIR goes with --offline")
    _execute("lift", spec, (), o)


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.argument("counts", nargs=-1, metavar="[GROUP=COUNT]...")
@run_options
@click.option("--dry-run", is_flag=True,
              help="Print what converge would create and destroy (size, image, location per "
                   "group) and the phases; change nothing.")
@click.option("--provision-only", is_flag=True,
              help="Create and destroy nodes to the counts; run no phase (no SSH).")
def converge(spec, counts, **o):
    """Bring each group to COUNT nodes (creating or destroying local nodes), run :bootstrap on
    new nodes, then the phases on all. Without counts, the spec's own (converge ...) form."""
    _execute("converge", spec, counts, o)
