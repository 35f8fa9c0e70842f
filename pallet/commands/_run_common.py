"""What `lift` and `converge` share with the cloud path (commands/_cloud.py): options of the
command line made into the runtime's, the report printed and the exit, --only-failed."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from pallet.errors import PalletError


def raise_descriptor_limit() -> None:
    """Raise the soft limit of open files to the hard one: a fleet holds a socket per node
    and pipes per exec, and a shell's usual soft limit (1,024) is no limit of the fleet's."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def ssh_options(o: dict, known_hosts, accept_new_host_keys: bool):
    """The SshOptions of the command line (for every kind of compute)."""
    from pallet.runtime.model import SshOptions
    return SshOptions(known_hosts=Path(known_hosts) if known_hosts else None,
                      accept_new_host_keys=accept_new_host_keys,
                      connect_timeout=o["connect_timeout"], retries=o["retries"],
                      keepalive_interval=o["keepalive_interval"], keepalive_count=o["keepalive_count"])


def options_for_run(o: dict, phases: tuple[str, ...], ssh):
    """The RunOptions of the command line (for every kind of compute)."""
    from pallet.runtime.executor import RunOptions
    if o.get("offline") and o.get("max_fail_percent") is not None:
        raise PalletError("--max-fail-percent does not go with --offline (which runs each "
                          "node's whole NODE.run at once, in no batches)")
    if o["keep_going"] and o.get("max_fail_percent") is not None:
        raise PalletError("--keep-going goes on whatever fails, --max-fail-percent stops when "
                          "too many nodes do: give one of them")
    return RunOptions(phases=phases, parallel=max(1, o["parallel"]), serial=o["serial"],
                      keep_going=o["keep_going"], max_fail_percent=o.get("max_fail_percent"),
                      ssh=ssh, phase_timeout=o["phase_timeout"] or None)


def finish(report, o: dict, ssh_process, redactor=None) -> None:
    """Print the report (every secret the run knows masked) and exit with its status."""
    if redactor is not None:
        report.error = redactor.text(report.error)
        for outcome in report.outcomes:
            outcome.error = redactor.text(outcome.error)
    if o["as_json"]:
        data = report.as_json()
        click.echo(json.dumps(redactor.data(data) if redactor is not None else data, indent=2))
    else:
        from pallet.runtime.report import print_summary
        print_summary(report)
    if report.error:
        click.echo(report.error, err=True)
        sys.exit(2)
    if report.interrupted:
        # Everything is written (the record is closed): exit now, without waiting for the
        # threads still waiting on the closed connections.
        sys.stdout.flush()
        sys.stderr.flush()
        if ssh_process is not None:
            ssh_process.shutdown()
        os._exit(130)
    sys.exit(0 if report.ok else 1)


def failed_last_time(o: dict, spec: str, operation: str, record_dir: Path) -> set[str] | None:
    """With --only-failed: the nodes that failed in the last recorded run of `spec` (when
    none did, say so and exit 0). Else None: every node."""
    if not o["only_failed"]:
        return None
    if o.get("offline"):
        raise PalletError("--only-failed does not go with --offline (which runs each node's "
                          "whole NODE.run): give --nodes an inventory of the nodes to run again")
    from pallet.runtime.executor import RunReport
    from pallet.runtime.record import last_failures
    last, failed = last_failures(record_dir, spec)
    if not failed:
        click.echo(f"--only-failed: no node failed in the last run of {spec} ({last}): "
                   "nothing to run", err=True)
        if o["as_json"]:
            click.echo(json.dumps(RunReport(operation, spec).as_json(), indent=2))
        sys.exit(0)
    if not o["as_json"]:
        click.echo(f"--only-failed: {len(failed)} node(s) failed in the last run ({last}): "
                   f"{', '.join(sorted(failed))}", err=True)
    return failed


def check_still_nodes(only_nodes: set[str] | None, records, where: str, o: dict) -> None:
    """--only-failed on lift: the failed nodes that are no longer nodes are said; none left
    is an error."""
    if only_nodes is None:
        return
    gone = sorted(only_nodes - {r.name for r in records})
    if len(gone) == len(only_nodes):
        raise PalletError(f"--only-failed: the nodes that failed in the last run "
                          f"({', '.join(gone)}) are no longer nodes of {where}")
    if gone and not o["as_json"]:
        click.echo(f"--only-failed: no longer a node: {', '.join(gone)}", err=True)


def _counts(args: tuple[str, ...], project, op) -> dict[str, int]:
    if args:
        counts = {}
        for arg in args:
            group, sep, count = arg.partition("=")
            if not sep or not count.isdigit():
                raise PalletError(f"{arg!r}: write counts as GROUP=COUNT, e.g. web=3")
            if project.group(group) is None:
                known = ", ".join(g.name for g in project.groups)
                raise PalletError(f"{arg!r}: {project.file} defines no group {group!r} (groups: {known})")
            counts[group] = int(count)
        return counts
    if op is not None and op.kind == "converge":
        return {g.name: (n if n is not None else 1) for g, n in op.groups}
    raise PalletError(f"say how many nodes: pallet converge {project.file} GROUP=COUNT ..., "
                      "or write a (converge {group count} ...) form in the spec")
