"""`pallet check DIR|SPEC`: shellcheck every bash/sh script, parse every PowerShell one."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from pallet.errors import PalletError

from ._spec import spec_options


def check_dir(out: Path, verbose: bool = False) -> int:
    """Check every script under `out` once per distinct text (a fleet's bundles are mostly
    alike), print the findings, and return 1 when there are any. Past a few dozen scripts
    with findings, each distinct script's findings are printed once, with how many other
    scripts share them (-v names every one)."""
    from pallet import checks

    from .listing import LIST_LIMIT, plural
    from pallet.runtime.verify import run_file_scripts
    found = [(str(p), p.name, p.read_text(encoding="utf-8"))
             for p in sorted(out.rglob("run.*")) if p.suffix in (".sh", ".ps1")]
    problems: list[str] = []
    for run in sorted(out.rglob("*.run")):   # offline bundles: the header and every script
        inside, bad = run_file_scripts(run)
        found += inside
        problems += bad
    scripts = [where for where, _, _ in found]
    alike: dict[tuple[str, str], list[str]] = {}
    for where, name, text in found:
        alike.setdefault((name, text), []).append(where)
    count = failing = 0
    for problem in problems:      # a run file that fails its own check, or SHA256SUMS
        click.echo(problem, err=True)
        count += 1
    summarise = not verbose and len(scripts) > LIST_LIMIT
    reported = []
    for (name, text), paths, findings in _check_all(alike):
        if not findings:
            continue
        count += len(findings) * len(paths)
        failing += len(paths)
        reported.append((findings, paths))
    if summarise and failing > LIST_LIMIT:
        for findings, paths in reported:
            click.echo(checks.format_findings(findings, str(paths[0])), err=True)
            if len(paths) > 1:
                click.echo(f"  (the same in {plural(len(paths) - 1, 'other script')} with this "
                           "text; -v names them)", err=True)
    else:
        for findings, paths in sorted(reported, key=lambda r: r[1][0]):
            for path in paths:
                click.echo(checks.format_findings(findings, str(path)), err=True)
    distinct = f" ({len(alike):,} distinct)" if len(scripts) > LIST_LIMIT else ""
    where = f" in {plural(failing, 'script')}" if count and summarise else ""
    click.echo(f"checked {plural(len(scripts), 'script')}{distinct}: {count} finding(s){where}",
               err=bool(count))
    return 1 if count else 0


def _check_all(alike: dict[tuple[str, str], list[str]]):
    """(key, paths, findings) per distinct script, shellcheck runs on every CPU at once (a
    process each; the PowerShell parser is not shared across threads, so it runs here)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from pallet import checks
    keys = list(alike)
    shell_keys = [k for k in keys if not k[0].endswith(".ps1")]
    with ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0)))) as pool:
        shell = dict(zip(shell_keys, pool.map(lambda k: checks.check_script(*k), shell_keys)))
    for key in keys:
        found = shell[key] if key in shell else checks.check_script(*key)
        yield key, alike[key], found


@click.command()
@click.argument("target", metavar="DIR|SPEC", type=click.Path(exists=True))
@spec_options
@click.option("-v", "--verbose", is_flag=True,
              help="Print every script's findings even past a few dozen scripts.")
def check(target, inventory, os_spec, phases, crate_path, verbose):
    """Check bundles: a directory made by `pallet compile`, or a SPEC compiled on the fly
    (as `pallet compile` would, with the same options; given neither --nodes, --os nor a
    node-list in the spec, for --os debian-12). Exit 1 when any script has findings."""
    path = Path(target)
    if path.is_dir():
        if inventory or os_spec or phases or crate_path:
            raise PalletError("--nodes, --os, --phase and --crate-path are for a SPEC; "
                              f"{target} is a compiled directory")
        sys.exit(check_dir(path, verbose))
    import tempfile

    from pallet.compiler.compile_project import compile_to_directory

    from ._spec import load_spec, local_file_reader
    project, nodes, wanted = load_spec(target, inventory, os_spec, phases, crate_path,
                                       default_os="debian-12")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bundles"
        compile_to_directory(project, nodes, wanted, local_file_reader(target), out, target)
        sys.exit(check_dir(out, verbose))
