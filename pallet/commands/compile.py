"""`pallet compile SPEC`: one bundle per node and phase."""
from __future__ import annotations

import click

from ._spec import load_spec, local_file_reader, spec_options


@click.command(name="compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@spec_options
@click.option("-o", "--output", "out", default="out", show_default=True, metavar="DIR",
              help="Where the bundles go (replaced as a whole; only a Pallet output directory).")
@click.option("--check", is_flag=True, help="Also shellcheck/parse every script; exit 1 on findings.")
def compile_command(spec, inventory, os_spec, phases, crate_path, out, check):
    """Compile SPEC to bundles: DIR/NODE/PHASE/run.sh (or run.ps1), the files each installs,
    and manifests. Recompiling the same input gives byte-identical output."""
    import os
    from pathlib import Path

    from pallet.compiler.compile_project import compile_to_directory

    project, nodes, wanted = load_spec(spec, inventory, os_spec, phases, crate_path)
    entries = compile_to_directory(project, nodes, wanted, local_file_reader(spec), Path(out),
                                   spec, jobs=len(os.sched_getaffinity(0)))
    lines = []
    for e in entries:
        script = Path(out) / e.path / e.script_name   # `-o out/` names out/web-1/..., not out//
        lines.append(f"{script}  {e.steps} action{'' if e.steps == 1 else 's'}\n")
    click.echo("".join(lines), nl=False)
    if check:
        from .check import check_dir
        raise SystemExit(check_dir(Path(out)))
