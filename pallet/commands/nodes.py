"""`pallet nodes`: the nodes a provider knows (local nodes by default, or an inventory)."""
from __future__ import annotations

import json

import click


def state_dir_option(fn):
    return click.option("--state-dir", "state_dir", metavar="DIR", type=click.Path(file_okay=False),
                        help="The local nodes' state directory (default $PALLET_NODES_DIR, "
                             "else ~/.local/state/pallet/nodes).")(fn)


def node_row(record, state: str | None) -> dict:
    e = record.endpoint
    return {"name": record.name, "group": record.group, "address": f"{e.host}:{e.port}",
            "host": e.host, "port": e.port, "user": e.user, "private_key": e.private_key,
            "os": "-".join(p for p in (record.os_family, record.os_version) if p) or None,
            "os_family": record.os_family, "os_version": record.os_version,
            "private_ip": record.private_ip, "roles": sorted(record.roles),
            "provider": record.provider, "state": state}


def services_option(fn):
    return click.option("--services", "services", metavar="FILE", type=click.Path(dir_okay=False),
                        help="The services file (default ~/.config/pallet/services.toml, or "
                             "PALLET_SERVICES).")(fn)


@click.command()
@click.option("--compute", metavar="NAME",
              help="local (the default), node-list, or a service of the services file.")
@click.option("--nodes", "inventory", metavar="INVENTORY", type=click.Path(dir_okay=False),
              help="List the servers of this TOML inventory (a node-list).")
@state_dir_option
@services_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def nodes(compute, inventory, state_dir, services, as_json):
    """List nodes: name, group, address, OS, provider (and whether a local node runs); on a
    compute service: name, group, spec, id, address, state, size, image."""
    from pallet.runtime.providers import LocalProvider, provider_for

    provider = provider_for(compute, inventory, state_dir, services=services)
    if hasattr(provider, "cloud_nodes"):
        return _cloud_nodes(provider, as_json)
    if isinstance(provider, LocalProvider):
        rows = [node_row(rec, "running" if node.running else "stopped")
                for rec, node in provider.nodes_with_state()]
    else:
        rows = [node_row(rec, None) for rec in provider.list_nodes()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        where = provider.state_dir if isinstance(provider, LocalProvider) else inventory
        click.echo(f"no nodes in {where}")
        return
    head = ["NAME", "GROUP", "ADDRESS", "OS", "PROVIDER"] + (["STATE"] if rows[0]["state"] else [])
    table = [[r["name"], r["group"], r["address"], r["os"] or "?", r["provider"]]
             + ([r["state"]] if r["state"] else []) for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *table)]
    for line in (head, *table):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())


def _cloud_nodes(provider, as_json: bool) -> None:
    rows = [n.row() for n in provider.cloud_nodes(every_spec=True)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no Pallet nodes on {provider.name}")
        return
    keys = ["name", "group", "spec", "id", "address", "state", "size", "image"]
    table = [[str(r[k] if r[k] is not None else "-") for k in keys] for r in rows]
    head = [k.upper() for k in keys]
    widths = [max(len(c) for c in col) for col in zip(head, *table)]
    for line in (head, *table):
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
