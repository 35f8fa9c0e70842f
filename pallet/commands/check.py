"""`pallet check DIR|SPEC`: shellcheck every bash/sh script, parse every PowerShell one."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from pallet.errors import PalletError

from ._spec import spec_options


def check_dir(out: Path) -> int:
    from pallet import checks
    count = 0
    scripts = sorted(p for p in out.rglob("run.*") if p.suffix in (".sh", ".ps1"))
    for path in scripts:
        findings = checks.check_script(path.name, path.read_text(encoding="utf-8"))
        if findings:
            count += len(findings)
            click.echo(checks.format_findings(findings, str(path)), err=True)
    plural = "" if len(scripts) == 1 else "s"
    click.echo(f"checked {len(scripts)} script{plural}: {count} finding(s)", err=bool(count))
    return 1 if count else 0


@click.command()
@click.argument("target", metavar="DIR|SPEC", type=click.Path(exists=True))
@spec_options
def check(target, inventory, os_spec, phases, crate_path):
    """Check bundles: a directory made by `pallet compile`, or a SPEC compiled on the fly
    (as `pallet compile` would, with the same options; given neither --nodes, --os nor a
    node-list in the spec, for --os debian-12). Exit 1 when any script has findings."""
    path = Path(target)
    if path.is_dir():
        if inventory or os_spec or phases or crate_path:
            raise PalletError("--nodes, --os, --phase and --crate-path are for a SPEC; "
                              f"{target} is a compiled directory")
        sys.exit(check_dir(path))
    import tempfile

    from pallet.compiler.compile_project import compile_to_directory

    from ._spec import load_spec, local_file_reader
    project, nodes, wanted = load_spec(target, inventory, os_spec, phases, crate_path,
                                       default_os="debian-12")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bundles"
        compile_to_directory(project, nodes, wanted, local_file_reader(target), out, target)
        sys.exit(check_dir(out))
