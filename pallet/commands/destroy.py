"""`pallet destroy`: stop and remove local nodes, by group, by name, or all."""
from __future__ import annotations

import sys

import click

from pallet.errors import PalletError

from .nodes import services_option, state_dir_option


@click.command()
@click.argument("targets", nargs=-1, metavar="[GROUP|NODE ...]")
@click.option("--all", "everything", is_flag=True, help="Destroy every node of the state directory.")
@click.option("--compute", metavar="NAME",
              help="local (the default), or a service of the services file; a node-list cannot destroy.")
@click.option("--nodes", "inventory", metavar="INVENTORY", type=click.Path(dir_okay=False),
              help="An inventory (node-list): refused, its servers are not Pallet's to destroy.")
@state_dir_option
@services_option
@click.option("--spec", "spec_tag", metavar="NAME",
              help="On a service: only the nodes of this spec (its file name without .pallet).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def destroy(targets, everything, compute, inventory, state_dir, services, spec_tag, yes):
    """Destroy local nodes: those of each GROUP named, each NODE named, or --all.
    Their processes are stopped and their files (all changes made on them) removed.
    With --compute SERVICE: that service's Pallet nodes (by group, name or id, or --all)."""
    from pallet.runtime.providers import LocalProvider, provider_for

    provider = provider_for(compute, inventory, state_dir, services=services)
    if hasattr(provider, "cloud_nodes"):
        return _destroy_cloud(provider, targets, everything, yes, spec_tag)
    if spec_tag:
        raise PalletError("--spec selects the nodes of a compute service: give --compute SERVICE")
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
        _confirm(len(chosen), f"destroy {', '.join(chosen)} (their files go too)?")
    provider.destroy_nodes(chosen)
    click.echo(f"destroyed {len(chosen)} node(s): {', '.join(chosen)}")


def _destroy_cloud(provider, targets, everything, yes, spec_tag=None) -> None:
    if everything and targets:
        raise PalletError("give GROUP/NODE names or --all, not both")
    if not everything and not targets:
        raise PalletError(f"nothing to destroy: name groups or nodes (see `pallet nodes --compute "
                          f"{provider.name}`), or give --all")
    known = [n for n in provider.cloud_nodes(every_spec=True) if spec_tag is None or n.spec == spec_tag]
    if everything:
        chosen = known
    else:
        chosen = []
        for target in targets:
            hits = [n for n in known if target in (n.name, n.group, n.id)]
            if not hits:
                groups = sorted({n.group for n in known if n.group})
                raise PalletError(f"no node or group named {target!r} on {provider.name}"
                                  + (f" (groups: {', '.join(groups)})" if groups else " (no Pallet nodes there)"))
            chosen += [n for n in hits if n not in chosen]
    if not chosen:
        click.echo(f"no Pallet nodes on {provider.name}")
        return
    names = [n.name for n in chosen]
    if not yes:
        _confirm(len(chosen), f"destroy {', '.join(names)} on {provider.name}?")
    provider.destroy(chosen)
    click.echo(f"destroyed {len(chosen)} node(s) on {provider.name}: {', '.join(names)}")


def _confirm(count: int, question: str) -> None:
    """Asked on a terminal; without one, refused: a script must say --yes."""
    if not sys.stdin.isatty():
        raise PalletError(f"destroying {count} node(s) needs confirmation: add --yes")
    click.confirm(question, abort=True, err=True)
