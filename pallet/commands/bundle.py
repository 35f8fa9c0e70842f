"""`pallet bundle SPEC`: one self-checking file per node (NODE.run) that converges a machine
with no network; `pallet verify NODE.run`: its SSH signature and payload, checked outside
the file; `pallet state-script`: the script that collects a node's installed state."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from pallet.errors import PalletError

from ._spec import load_spec, local_file_reader, spec_options


def _states(values: tuple[str, ...]) -> tuple[object | None, dict[str, object]]:
    """--state FILE (every node) and --state NODE=FILE (one node)."""
    from pallet.runtime.node_state import read_state_file
    every, per_node = None, {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name and not Path(value).exists():
            per_node[name] = read_state_file(path)
        elif every is None:
            every = read_state_file(value)
        else:
            raise PalletError("--state FILE is given twice; name the node of each: --state NODE=FILE")
    return every, per_node


def _os_of_states(every, per_node) -> str | None:
    oses = {s.os for s in ([every] if every else []) + list(per_node.values())}
    if len(oses) > 1:
        raise PalletError(f"the --state files are of different systems ({', '.join(sorted(oses))}); "
                          "give --os or --nodes to say which node is which")
    return next(iter(oses), None)


@click.command(name="bundle")
@click.argument("spec", type=click.Path(dir_okay=False))
@spec_options
@click.option("-o", "--output", "out", default="bundles", show_default=True, metavar="DIR",
              help="Where NODE.run files go (replaced whole; only a Pallet bundle directory).")
@click.option("--state", "states", multiple=True, metavar="[NODE=]FILE",
              help="A node's installed state, written on it by the script `pallet "
                   "state-script` prints (repeatable, NODE=FILE for one node).")
@click.option("--no-packages", is_flag=True,
              help="Carry no OS packages: the node installs them from its own mirror.")
@click.option("--sign", "sign_key", metavar="KEY", type=click.Path(dir_okay=False),
              help="Sign each NODE.run with this SSH private key (NODE.run.sig, namespace "
                   "pallet-bundle).")
@click.option("--cloud-init", is_flag=True,
              help="Also write NODE.user-data: a cloud-config that runs NODE.run at first boot.")
@click.option("--max-user-data", default=16384, show_default=True, metavar="BYTES",
              type=click.IntRange(min=1), help="Refuse user-data larger than this.")
@click.option("--known-hosts", type=click.Path(dir_okay=False),
              help="With --nodes: check host keys against this file (default ~/.ssh/known_hosts).")
@click.option("--check", is_flag=True, help="Also shellcheck every script; exit 1 on findings.")
def bundle_command(spec, inventory, os_spec, phases, crate_path, out, states, no_packages,
                   sign_key, cloud_init, max_user_data, known_hosts, check):
    """Make one executable file per node, DIR/NODE.run, holding every requested phase and the
    OS packages the node lacks; run on the node as root (`sh NODE.run`) it checks itself,
    converges the node with no network and cleans up. DIR/SHA256SUMS lists every file.

    Packages are resolved for the node's own installed state: for --os debian-12 or
    ubuntu-22.04 a clean install of it (the local nodes' root filesystem), for --nodes each
    node's state read over SSH, or --state FILE for a node nobody can reach."""
    from pallet.runtime.localnodes import RELEASES
    from pallet.runtime.offline import bundle_nodes, node_bundles

    every, per_node = _states(states)
    if not os_spec and not inventory and (every or per_node):
        os_spec = _os_of_states(every, per_node)
    project, nodes, wanted = load_spec(spec, inventory, os_spec, phases, crate_path)
    if not nodes:
        raise PalletError(f"{spec}: no nodes to bundle")
    for name in per_node:
        if name not in {n.name for n, _ in nodes}:
            raise PalletError(f"--state {name}=...: no node {name!r} to bundle "
                              f"(nodes: {', '.join(n.name for n, _ in nodes)})")
    from pallet.compiler.bundle import target_of
    for node, group in nodes:
        target = target_of(node, group)
        if target.shell == "powershell":
            raise PalletError(f"node {node.name}: an offline bundle is a POSIX sh file; "
                              f"{target.describe()} runs PowerShell (use pallet compile)", node.span)
    plans = project.plan(nodes, wanted)
    by_node = {n.name: n for n in node_bundles(plans, nodes, local_file_reader(spec))}
    missing = [n.name for n, _ in nodes if n.name not in by_node]
    if missing:
        raise PalletError(f"no phase to bundle for {', '.join(missing)} (phases: "
                          f"{' '.join(wanted) or 'the defaults'})")
    facts = {n.name: n for n, _ in nodes}
    remote = inventory is not None or (not os_spec and project.spec_nodes() is not None)

    def state_for(node):
        if node.name in per_node:
            return per_node[node.name]
        if every is not None:
            return every
        if remote:
            return _remote_state(facts[node.name], known_hosts)
        target = node.bundles[0].target
        os_name = f"{target.os_family}-{target.os_version}"
        return _rootfs_state(os_name) if os_name in RELEASES else None

    def log(msg):
        click.echo(msg, err=True)

    made = bundle_nodes(list(by_node.values()), Path(out), spec, packages=not no_packages,
                        state_for=state_for, sign_key=sign_key, cloud_init=cloud_init,
                        max_user_data=max_user_data, log=log)
    for m in made:
        extra = f", {m.packages} package{'' if m.packages == 1 else 's'}" if m.packages else ""
        if m.downloads:
            extra += f", {m.downloads} download{'' if m.downloads == 1 else 's'}"
        click.echo(f"{m.path}  {m.size:,} bytes  phases {' '.join(m.phases)}{extra}"
                   f"{'  signed' if sign_key else ''}")
    if check:
        from .check import check_dir
        raise SystemExit(check_dir(Path(out)))


def _rootfs_state(os_name: str):
    """A clean install of a release local nodes run: their cached root filesystem."""
    from pallet.runtime.localnodes import RELEASES, NodesUnavailable, ensure_rootfs
    from pallet.runtime.node_state import state_from_rootfs
    try:
        return state_from_rootfs(ensure_rootfs(os_name=os_name))
    except NodesUnavailable as exc:
        raise PalletError(f"--os {os_name} resolves packages against a clean "
                          f"{RELEASES[os_name].name} root filesystem, which cannot be made "
                          f"here: {exc.message}; give --state FILE (from `pallet "
                          "state-script`) or --no-packages") from None


def _remote_state(node, known_hosts):
    """The node's state, read over SSH by running the state script there."""
    import shlex

    from pallet.runtime.model import Endpoint, SshOptions, TransportError
    from pallet.runtime.node_state import STATE_SCRIPT, state_from_text
    from pallet.runtime.transport import open_connection
    if not node.host:
        return None
    endpoint = Endpoint(node.host, node.port, node.user, node.private_key)
    options = SshOptions(known_hosts=Path(known_hosts) if known_hosts else None)
    try:
        conn = open_connection(endpoint, options)
        try:
            result = conn.run("sh -c " + shlex.quote(STATE_SCRIPT))
        finally:
            conn.close()
    except TransportError as exc:
        raise PalletError(f"node {node.name}: cannot read its state over SSH ({exc.kind}: "
                          f"{exc.message}); give --state {node.name}=FILE instead") from None
    if result.exit_status != 0:
        raise PalletError(f"node {node.name}: the state script failed (exit status "
                          f"{result.exit_status}): {result.stderr.strip()[-300:]}")
    return state_from_text(result.stdout, f"node {node.name}")


@click.command(name="verify")
@click.argument("runs", metavar="NODE.run...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--allowed-signers", type=click.Path(dir_okay=False), metavar="FILE",
              help="ssh-keygen's allowed_signers file: who may sign bundles. Without it only "
                   "the payload is checked.")
@click.option("--identity", "-I", metavar="ID",
              help="The signer's identity in FILE (default: whoever FILE finds for the signature).")
def verify_command(runs, allowed_signers, identity):
    """Check NODE.run files outside themselves, before they run: the SSH signature
    NODE.run.sig (namespace pallet-bundle) against --allowed-signers, and the payload's size
    and sha256 as the header states them. Exit 0 when all are good, 1 otherwise."""
    from pallet.runtime.verify import verify_run
    bad = 0
    for run in runs:
        ok, message = verify_run(Path(run), Path(allowed_signers) if allowed_signers else None,
                                 identity)
        click.echo(f"{run}: {message}", err=not ok)
        bad += not ok
    sys.exit(1 if bad else 0)


@click.command(name="state-script")
def state_script_command():
    """Print the script that collects a node's installed state for `pallet bundle --state`:
    run it on the node (any user; it changes nothing) and carry its output out:

        sh state.sh > NODE.state"""
    from pallet.runtime.node_state import STATE_SCRIPT
    click.echo(STATE_SCRIPT, nl=False)
