"""`pallet compile SPEC`: one bundle per node and phase."""
from __future__ import annotations

import click

from ._spec import local_file_reader, plan_spec, spec_options


@click.command(name="compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@spec_options
@click.option("-o", "--output", "out", default="out", show_default=True, metavar="DIR",
              help="Where the bundles go (replaced as a whole; only a Pallet output directory).")
@click.option("--check", is_flag=True, help="Also shellcheck/parse every script; exit 1 on findings.")
def compile_command(spec, inventory, os_spec, phases, crate_path, out, check):
    """Compile SPEC to bundles: DIR/NODE/PHASE/run.sh (or run.ps1), the files each installs,
    and manifests. Recompiling the same input gives byte-identical output."""
    from pathlib import Path

    from pallet.compiler.bundle import build_bundles, write_bundles

    project, nodes, plans = plan_spec(spec, inventory, os_spec, phases, crate_path)
    import os
    bundles = build_bundles(plans, nodes, local_file_reader(spec), jobs=os.cpu_count() or 1)
    write_bundles(bundles, Path(out), spec)
    for b in bundles:
        count = len(b.steps)
        script = Path(out) / b.path / b.script_name   # `-o out/` names out/web-1/..., not out//
        click.echo(f"{script}  {count} action{'' if count == 1 else 's'}")
    if check:
        from .check import check_dir
        raise SystemExit(check_dir(Path(out)))
