"""`pallet explain SPEC`: per node and phase, the actions and where they were written."""
from __future__ import annotations

import click

from ._spec import local_file_reader, plan_spec, spec_options


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@spec_options
def explain(spec, inventory, os_spec, phases, crate_path):
    """Show the plan: for each node and phase, the steps of its script, numbered as the
    script's status lines number them, with where each was asked for. No scripts are made
    (Pallet's explain-plan)."""
    from pallet.compiler.bundle import plan_steps

    _, nodes, plans = plan_spec(spec, inventory, os_spec, phases, crate_path)
    steps = plan_steps(plans, nodes, local_file_reader(spec))
    groups = {n.name: g.name for n, g in nodes}
    osname = {n.name: "-".join(p for p in (n.os_family, n.os_version) if p) for n, _ in nodes}
    for (node, phase), node_steps in steps.items():
        click.echo(f"{node} (group {groups[node]}, {osname[node]}) phase :{phase}")
        if not node_steps:
            click.echo("  (no actions)")
        for step in node_steps:
            click.echo(f"  {step.number:>3}. {step.label}  [{step.where}]")
            if len(step.sources) > 1:
                for source in step.sources:
                    click.echo(f"         gathered from {source}")
