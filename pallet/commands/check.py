"""`pallet check DIR|SPEC`: shellcheck every bash/sh script, parse every PowerShell one."""
from __future__ import annotations

import sys
from pathlib import Path

import click


def check_dir(out: Path) -> int:
    from pallet import checks
    count = 0
    scripts = sorted(p for p in out.rglob("run.*") if p.suffix in (".sh", ".ps1"))
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ps1":
            findings = checks.parse_powershell(text)
        else:
            shell = "sh" if text.startswith("#!/bin/sh") else "bash"
            findings = checks.shellcheck(text, shell)
        if findings:
            count += len(findings)
            click.echo(checks.format_findings(findings, str(path)), err=True)
    plural = "" if len(scripts) == 1 else "s"
    click.echo(f"checked {len(scripts)} script{plural}: {count} finding(s)", err=bool(count))
    return 1 if count else 0


@click.command()
@click.argument("target", metavar="DIR|SPEC", type=click.Path(exists=True))
@click.option("--os", "os_spec", metavar="OS", default="debian-12", show_default=True,
              help="For a SPEC: the OS to compile each group for before checking.")
@click.option("--nodes", "inventory", metavar="INVENTORY", type=click.Path(dir_okay=False),
              help="For a SPEC: compile for this inventory instead of --os.")
def check(target, os_spec, inventory):
    """Check bundles: a directory made by `pallet compile`, or a SPEC compiled on the fly.
    Exit 1 when any script has findings."""
    path = Path(target)
    if path.is_dir():
        sys.exit(check_dir(path))
    import tempfile

    from pallet.compiler.bundle import build_bundles, write_bundles

    from ._spec import local_file_reader, plan_spec
    _, nodes, plans = plan_spec(target, inventory, None if inventory else os_spec, ())
    bundles = build_bundles(plans, nodes, local_file_reader(target))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bundles"
        write_bundles(bundles, out, target)
        sys.exit(check_dir(out))
