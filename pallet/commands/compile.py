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
@click.option("-v", "--verbose", is_flag=True,
              help="One line per bundle even past a few dozen (the default then is a summary).")
def compile_command(spec, inventory, os_spec, phases, crate_path, out, check, verbose):
    """Compile SPEC to bundles: DIR/NODE/PHASE/run.sh (or run.ps1), the files each installs,
    and manifests. Recompiling the same input gives byte-identical output."""
    import gc
    import os
    from pathlib import Path

    from pallet.compiler.compile_project import compile_to_directory
    # One command, then the process ends: loading a spec and compiling it make many objects
    # that live to the end and little cyclic garbage, so the cycle collector would only scan
    # them again and again (compile_to_directory pauses it too; here loading and the listing
    # go without it as well), and frozen at the end they are not scanned at exit.
    gc.disable()

    project, nodes, wanted = load_spec(spec, inventory, os_spec, phases, crate_path)
    entries = compile_to_directory(project, nodes, wanted, local_file_reader(spec), Path(out),
                                   spec, jobs=len(os.sched_getaffinity(0)))
    from .listing import compile_listing
    click.echo(compile_listing(entries, Path(out), verbose), nl=False)
    gc.freeze()
    if check:
        from .check import check_dir
        raise SystemExit(check_dir(Path(out), verbose))
