"""The `pallet` command line.

Each subcommand lives in its own module under `pallet.commands` and is imported only when it
is run (or when `--help` lists it): `pallet script` must start fast, so nothing heavy
(paramiko, libcloud, jinja2, rich) is imported here. To add a command, write
`pallet/commands/NAME.py` defining a click command and add a line to `COMMANDS`.

Errors: a `PalletError` from any command is printed as `file:line:col: message`, the source
line and a caret, and the exit status is 2; never a traceback. Exit 1 means "ran, and found
problems" (e.g. `--check` findings).
"""
from __future__ import annotations

import importlib
import sys

import click

from pallet import __version__
from pallet.errors import PalletError

EXIT_FINDINGS = 1
EXIT_ERROR = 2

# name -> "module:attribute" of the click command; listed in this order by --help.
COMMANDS: dict[str, str] = {
    "script": "pallet.commands.script:script",
    "compile": "pallet.commands.compile:compile_command",
    "explain": "pallet.commands.explain:explain",
    "check": "pallet.commands.check:check",
    "bundle": "pallet.commands.bundle:bundle_command",
    "verify": "pallet.commands.bundle:verify_command",
    "state-script": "pallet.commands.bundle:state_script_command",
    "converge": "pallet.commands.run:converge",
    "lift": "pallet.commands.run:lift",
    "nodes": "pallet.commands.nodes:nodes",
    "destroy": "pallet.commands.destroy:destroy",
    "services": "pallet.commands.services:services",
    "crates": "pallet.commands.crates:crates_command",
    "doc": "pallet.commands.crates:doc_command",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *sorted(super().list_commands(ctx))]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module_name, _, attr = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):
        # One place turns user errors into exit 2 for every subcommand, present and future.
        try:
            return super().invoke(ctx)
        except PalletError as exc:
            report_error(exc)
            ctx.exit(EXIT_ERROR)


def report_error(exc: PalletError) -> None:
    click.echo(exc.format(), err=True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="pallet",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """Pallet: infrastructure as data, compiled to plain shell scripts.

    Scripts are written once as s-expressions (Stevedore) and compiled to bash, POSIX sh or
    PowerShell, quoted correctly and checked.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `pallet` console script and of `python -m pallet`."""
    try:
        cli.main(args=argv, prog_name="pallet")
    except BrokenPipeError:
        # `pallet script x | head`: the reader went away; that is not an error worth a trace.
        # Point stdout at devnull so the interpreter's final flush does not complain again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FINDINGS)
