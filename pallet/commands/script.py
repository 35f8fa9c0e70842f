"""`pallet script FILE|-`: compile a file of Stevedore script forms to one shell script."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from pallet.errors import PalletError

SHELLS = ("bash", "sh", "powershell")
STDIN_NAME = "<stdin>"
STDOUT_NAME = "<stdout>"


@click.command()
@click.argument("file", metavar="FILE|-")
@click.option("-t", "--target", "shell", type=click.Choice(SHELLS), default="bash",
              show_default=True, help="The shell to emit.")
@click.option("--os", "os_spec", metavar="OS",
              help="The target's OS, e.g. debian-12; script functions (defimpl) dispatch on it.")
@click.option("-o", "--output", "out", metavar="OUT", type=click.Path(dir_okay=False),
              help="Write the script to OUT (replaced atomically) instead of stdout.")
@click.option("--check", is_flag=True,
              help="Check the output (shellcheck for bash/sh, a PowerShell parser for "
                   "powershell); exit 1 and print the findings if there are any.")
def script(file: str, shell: str, os_spec: str | None, out: str | None, check: bool) -> None:
    """Compile a file of script forms to bash, sh or PowerShell.

    FILE is a file of Stevedore script forms, or `-` for standard input. The script goes
    to standard output, or to OUT with -o.

    \b
    Exit status: 0 on success, 1 when --check found problems (the script is still
    written), 2 on an error in the input (printed as file:line:col with a caret).
    """
    name, text = _read_input(file)
    # Imported here so that `pallet --help` and other commands do not pay for the compiler.
    from pallet.stevedore import compile_script_text, target_for

    target = target_for(os_spec, shell)
    output = compile_script_text(text, name, shell, target)
    if out is None or out == "-":
        _write_stdout(output)
    else:
        write_atomically(Path(out), output)
    if check:
        findings = check_script(output, shell)
        if findings:
            from pallet.checks import format_findings

            label = out if out not in (None, "-") else STDOUT_NAME
            click.echo(format_findings(findings, label), err=True)
            click.echo(f"{len(findings)} finding(s) in the {shell} output of {name}", err=True)
            sys.exit(1)


def check_script(text: str, shell: str):
    """Findings for an emitted script: shellcheck for bash/sh, the parser for PowerShell."""
    from pallet import checks

    if shell == "powershell":
        return checks.parse_powershell(text)
    return checks.shellcheck(text, shell)


def _read_input(file: str) -> tuple[str, str]:
    """(name for messages, text) of FILE or stdin; unreadable input is a PalletError."""
    if file == "-":
        name, reader = STDIN_NAME, sys.stdin.buffer.read
    else:
        name = file
        reader = Path(file).read_bytes
    try:
        data = reader()
    except FileNotFoundError:
        raise PalletError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise PalletError(f"{name}: is a directory, not a script file") from None
    except OSError as exc:
        raise PalletError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PalletError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _write_stdout(text: str) -> None:
    # Bytes, not text: the script must come out exactly as emitted (UTF-8, \n line ends)
    # whatever the locale or platform of the terminal.
    stream = sys.stdout.buffer
    stream.write(text.encode("utf-8"))
    stream.flush()


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that no reader ever sees a half-written file.

    The temporary file is made in the same directory because os.replace is atomic only
    within one file system. An existing file keeps its permission bits; a new one gets the
    usual 0666 less the umask (mkstemp alone would give 0600).
    """
    folder = path.parent if str(path.parent) else Path(".")
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as exc:
        raise PalletError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise PalletError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        # Whatever went wrong (disk full, Ctrl-C), leave OUT as it was and no debris behind.
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise PalletError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
