"""`pallet crates` and `pallet doc NAME`: the crates within reach, and their documentation."""
from __future__ import annotations

import json

import click

from ._spec import crate_path_option, search_path


def _index(crate_path):
    from pallet.compiler.crates import CrateIndex
    return CrateIndex(search_path(crate_path))


def _origin(crate) -> str:
    if crate.origin == "bundled":
        return "bundled"
    return f"{crate.origin} {crate.where}"


@click.command(name="crates")
@crate_path_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def crates_command(crate_path, as_json):
    """List every crate within reach, one a line: its namespace, where it comes from (the
    search path, an installed package, bundled) and its summary. A crate found in two places
    is taken from the first (search path, then packages, then bundled); the line says which
    it shadows."""
    index = _index(crate_path)
    listed = index.list()
    for problem in index.problems:
        click.echo(f"warning: {problem}", err=True)
    rows = []
    for item in listed:
        crate = item.crate
        try:
            summary = crate.summary
        except Exception as exc:  # noqa: BLE001 - an unreadable file is listed, not fatal
            summary = f"(cannot read: {getattr(exc, 'message', exc)})"
        rows.append((item, summary))
    if as_json:
        out = {"crates": [{
            "namespace": item.crate.namespace, "origin": item.crate.origin,
            "where": item.crate.where, "entry_point": item.crate.entry_point,
            "file": item.crate.path, "summary": summary,
            "shadows": [{"origin": s.origin, "where": s.where, "entry_point": s.entry_point,
                         "file": s.path}
                        for s in item.shadows]} for item, summary in rows],
            "problems": index.problems}
        click.echo(json.dumps(out, indent=2))
        return
    if not rows:
        click.echo("no crates found")
        return
    name_w = max(len(item.crate.namespace) for item, _ in rows)
    origin_w = max(len(_origin(item.crate)) for item, _ in rows)
    for item, summary in rows:
        line = f"{item.crate.namespace.ljust(name_w)}  {_origin(item.crate).ljust(origin_w)}  {summary}"
        if item.shadows:
            line += "  [shadows " + "; ".join(_origin(s) for s in item.shadows) + "]"
        click.echo(line.rstrip())


@click.command(name="doc")
@click.argument("name")
@crate_path_option
def doc_command(name, crate_path):
    """Show the documentation of a crate function (`pallet doc java/java`): its signature,
    arguments, options with their defaults, and docstring; or of a whole crate (`pallet doc
    java`): its header and every function with its summary. The crate is loaded, no
    function of it is called: no node is needed."""
    from pallet.compiler import crate_doc as docs
    from pallet.compiler.core import pr_str
    from pallet.errors import PalletError

    index = _index(crate_path)
    namespace, sep, local = name.rpartition("/")
    if sep:
        if not namespace or not local:
            raise PalletError(f"{name!r}: name a crate (java) or a crate function (java/java)")
        crate, fn, value = docs.fn_doc(index, namespace, local)
        if fn is None:
            click.echo(f"{namespace}/{local}\n\n  a value of the crate {namespace} "
                       f"({docs.where_from(crate)}):\n\n  {pr_str(value)}")
            return
        click.echo(docs.render_fn(fn, crate))
        return
    if index.find(name) is None:
        raise docs.unknown_name(index, name)
    click.echo(docs.render_crate(docs.crate_doc(index, name)))
