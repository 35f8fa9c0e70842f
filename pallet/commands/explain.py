"""`pallet explain SPEC`: per node and phase, the actions and where they were written."""
from __future__ import annotations

import click

from ._spec import plan_spec, spec_options


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@spec_options
def explain(spec, inventory, os_spec, phases, crate_path):
    """Show the plan: for each node and phase, the actions with their source locations.
    No scripts are made (Pallet's explain-plan)."""
    _, nodes, plans = plan_spec(spec, inventory, os_spec, phases, crate_path)
    groups = {n.name: g.name for n, g in nodes}
    osname = {n.name: "-".join(p for p in (n.os_family, n.os_version) if p) for n, _ in nodes}
    for (node, phase), actions in plans.items():
        click.echo(f"{node} (group {groups[node]}, {osname[node]}) phase :{phase}")
        if not actions:
            click.echo("  (no actions)")
        for i, action in enumerate(actions, start=1):
            where = f"  [{action.span}]" if action.span else ""
            click.echo(f"  {i:>3}. {action.label}{where}")
            for call in action.via:
                click.echo(f"         via {call}")
