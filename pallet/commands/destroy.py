"""`pallet destroy`: stop and remove local nodes, by group, by name, or all."""
from __future__ import annotations

import sys

import click

from pallet.errors import PalletError

from .nodes import state_dir_option


@click.command()
@click.argument("targets", nargs=-1, metavar="[GROUP|NODE ...]")
@click.option("--all", "everything", is_flag=True, help="Destroy every node of the state directory.")
@click.option("--compute", metavar="NAME", help="local (the default); a node-list cannot destroy.")
@click.option("--nodes", "inventory", metavar="INVENTORY", type=click.Path(dir_okay=False),
              help="An inventory (node-list): refused, its servers are not Pallet's to destroy.")
@state_dir_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def destroy(targets, everything, compute, inventory, state_dir, yes):
    """Destroy local nodes: those of each GROUP named, each NODE named, or --all.
    Their processes are stopped and their files (all changes made on them) removed."""
    from pallet.runtime.providers import LocalProvider, provider_for

    provider = provider_for(compute, inventory, state_dir)
    if not isinstance(provider, LocalProvider):
        provider.destroy_nodes(list(targets))         # says why it cannot
        return
    if everything and targets:
        raise PalletError("give GROUP/NODE names or --all, not both")
    if not everything and not targets:
        raise PalletError("nothing to destroy: name groups or nodes (see `pallet nodes`), or give --all")
    known = [rec for rec, _ in provider.nodes_with_state()]
    if everything:
        chosen = [r.name for r in known]
    else:
        chosen = []
        for target in targets:
            hits = [r.name for r in known if r.name == target or r.group == target]
            if not hits:
                raise PalletError(f"no local node or group named {target!r} in {provider.state_dir}"
                                  + (f" (groups: {', '.join(sorted({r.group for r in known}))})" if known else ""))
            chosen += hits
        chosen = list(dict.fromkeys(chosen))
    if not chosen:
        click.echo(f"no nodes in {provider.state_dir}")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise PalletError(f"destroying {len(chosen)} node(s) needs confirmation: add --yes")
        click.confirm(f"destroy {', '.join(chosen)} (their files go too)?", abort=True, err=True)
    provider.destroy_nodes(chosen)
    click.echo(f"destroyed {len(chosen)} node(s): {', '.join(chosen)}")
