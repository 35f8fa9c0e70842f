"""What `compile`, `explain` and (later) `lift` share: load a spec, pick its targets, plan."""
from __future__ import annotations

from pathlib import Path

import click

from pallet.errors import PalletError


def spec_options(fn):
    """--nodes/--os/--phase/--path options, in one place for every command that plans."""
    fn = click.option("--phase", "phases", multiple=True, metavar="P",
                      help="A phase to compile (repeatable); default: the spec's converge/lift "
                           "phases, else the group's :default-phases, else every phase the "
                           "group defines.")(fn)
    fn = click.option("--os", "os_spec", metavar="OS",
                      help="Compile each group for this OS, e.g. debian-12 (no inventory).")(fn)
    fn = click.option("--nodes", "inventory", metavar="INVENTORY", type=click.Path(dir_okay=False),
                      help="A TOML inventory of existing servers ([[node]] entries).")(fn)
    return crate_path_option(fn)


def crate_path_option(fn):
    """--crate-path DIR (repeatable): directories of .pallet crates, searched first."""
    return click.option("--crate-path", "crate_path", multiple=True, metavar="DIR",
                        type=click.Path(file_okay=False),
                        help="A directory of .pallet crates to search first (repeatable; also "
                             "PALLET_PATH, colon-separated).")(fn)


def search_path(crate_path: tuple[str, ...]) -> tuple[Path, ...]:
    import os
    env = tuple(p for p in os.environ.get("PALLET_PATH", "").split(":") if p)
    return tuple(Path(p) for p in (*crate_path, *env))


def read_inventory(path: str):
    from pallet.compiler.inventory import parse_inventory
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PalletError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PalletError(f"{path}: cannot read: {exc}") from None
    return parse_inventory(text, path)


def load_spec(spec: str, inventory: str | None, os_spec: str | None, phases: tuple[str, ...],
              crate_path: tuple[str, ...] = (), default_os: str | None = None):
    """(project, nodes, phases) for a spec file: its nodes from the inventory, else the OS,
    else the spec's own node-list, else `default_os` when given."""
    import os

    from pallet.compiler.project import load_project
    if inventory and os_spec:
        raise PalletError("give either --nodes or --os, not both")
    project = load_project(spec, search_path(crate_path), environ=dict(os.environ))
    if not inventory and not os_spec and project.spec_nodes() is None:
        os_spec = default_os
    nodes = project.targets(read_inventory(inventory) if inventory else None, os_spec)
    return project, nodes, tuple(p.lstrip(":") for p in phases)


def plan_spec(spec: str, inventory: str | None, os_spec: str | None, phases: tuple[str, ...],
              crate_path: tuple[str, ...] = (), default_os: str | None = None):
    """(project, nodes, plans) for a spec file (see load_spec)."""
    project, nodes, wanted = load_spec(spec, inventory, os_spec, phases, crate_path, default_os)
    return project, nodes, project.plan(nodes, wanted)


def local_file_reader(spec: str):
    """`:local-file` and `:template` paths are relative to the spec file."""
    base = Path(spec).resolve().parent

    def read(name: str) -> bytes:
        path = Path(name) if Path(name).is_absolute() else base / name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise PalletError(f"{name}: cannot read: {exc.strerror}") from None
    return read
