"""The bundle on the wire: what one exec reads on its stdin, and the command that reads it.

As root, a small bundle of text files travels as a script `sh -s` reads (`inline_bundle`):
one `{ ... }` block, read whole before any of it runs. Others (with sudo, a NUL byte, or
large) travel as a tar stream (gzip'd from 256 KiB) that a wrapper unpacks (`_posix_wrapper`).
Either makes a fresh private directory, runs the script there as root (`sudo` for another
user), and removes the directory on every exit path (an EXIT trap). With a timeout, a
watchdog the wrapper starts on the node stops the bundle's process group when it runs longer
(`_watchdog`). PowerShell bundles go to a `pwsh` command that unpacks the tar itself.

sudo with a password: the password is never in a command line. sudo runs with `-S` and a
prompt made of a random nonce (`BundleExchange.prompt`); the root wrapper announces itself
with another nonce (`started`), and only then is the bundle sent (runtime/exchange.py).
"""
from __future__ import annotations

import base64
import contextlib
import gzip
import io
import math
import secrets
import shlex
import tarfile
import time
from dataclasses import dataclass

from pallet.errors import PalletError

from .model import transport_error

__all__ = ["GZIP_FROM", "TERM_GRACE", "BundleExchange", "bundle_command", "bundle_tar",
           "inline_bundle", "prepare_bundle", "should_compress"]

TERM_GRACE = 2               # a phase out of time: seconds between TERM and KILL on the node


# Below this size a bundle travels as a plain tar: gzip would cost both ends more CPU than
# the loopback or LAN saves (a typical bundle is a few tens of KB).
GZIP_FROM = 256 * 1024


def should_compress(files: dict[str, bytes], script: str) -> bool:
    # An offline run file (`pallet lift --offline`) is compressed inside already: its .deb
    # files would cost seconds of gzip for nothing.
    return script.endswith(".ps1") or sum(len(d) for name, d in files.items()
                                          if not name.endswith(".run")) >= GZIP_FROM


def bundle_tar(files: dict[str, bytes], compressed: bool = True) -> bytes:
    """The bundle as a tar stream, gzip'd if `compressed` (relative paths; directories
    included)."""
    buf = io.BytesIO()
    now = int(time.time())
    gz = gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) if compressed else None
    with gz if gz is not None else contextlib.nullcontext():
        with tarfile.open(fileobj=gz if gz is not None else buf, mode="w",
                          format=tarfile.GNU_FORMAT) as tar:
            for name, new_dirs in _bundle_paths(files):
                for d in new_dirs:
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                    tar.addfile(info)
                data = files[name]
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, now
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass(frozen=True)
class BundleExchange:
    """What one run_bundle exec looks like: the command and how to talk to it."""

    command: str                  # a POSIX sh command line (or a pwsh one for .ps1)
    argv: list[str]               # the same, as an argv for a local subprocess
    started: bytes | None         # the line the root wrapper writes on stderr first (sudo only)
    prompt: bytes | None          # sudo's password prompt (with a sudo password only)
    timeout_marker: bytes | None = None   # the line the watchdog writes when time is up
    seconds: int | None = None    # the watchdog's limit on the node


def _watchdog(seconds: int | None, marker: bytes | None) -> str:
    """Shell lines that bound the bundle's time on the node (none without a limit): a
    background subshell that, after `seconds`, writes `marker` on stderr, sends TERM to the
    exec's process group (the wrapper, the script and everything they started that did not
    leave the group, as daemons do), removes the bundle's directory and sends KILL
    TERM_GRACE seconds later. The wrapper runs in a process group of its own (sshd makes a
    session per exec; the local transport a new session), so `kill 0` reaches only the bundle.
    When the wrapper exits first, its EXIT trap stops the watchdog (`_exit_trap`)."""
    if not seconds or marker is None:
        return ""
    return ("( trap 'kill $! 2>/dev/null; exit 0' TERM\n"
            f"  sleep {seconds} &\n"
            "  wait $!\n"
            "  trap '' TERM\n"
            f"  printf '%s\\n' {marker.decode()} >&2\n"
            "  kill -TERM 0\n"
            f"  sleep {TERM_GRACE}\n"
            '  cd / && rm -rf -- "$d"\n'
            "  kill -KILL 0\n"
            ") </dev/null >/dev/null &\n"
            "w=$!\n")


def _exit_trap(watched: bool) -> str:
    """The EXIT trap: stop the watchdog, if any (its own TERM trap takes its sleep with it),
    and remove the bundle's directory, on every way out."""
    if not watched:
        return "trap 'cd / && rm -rf -- \"$d\"' EXIT"
    return "w=; trap 'kill \"$w\" 2>/dev/null; cd / && rm -rf -- \"$d\"' EXIT"


def _run_script(script: str, shell: str) -> str:
    return (f"umask 022\nPALLET_BUNDLE_DIR=$d {shlex.quote(shell)} ./{shlex.quote(script)} "
            "</dev/null\nexit $?\n")


def _posix_wrapper(script: str, shell: str, started: bytes | None, compressed: bool = True,
                   seconds: int | None = None, marker: bytes | None = None) -> str:
    announce = f"printf '%s\\n' {started.decode()} >&2\n" if started else ""
    watchdog = _watchdog(seconds, marker)
    return (
        f"{announce}umask 077\n"
        'd=$(mktemp -d "${TMPDIR:-/tmp}/pallet-bundle.XXXXXXXXXX") || exit 125\n'
        f"{_exit_trap(bool(watchdog))}\n"
        "trap 'exit 129' HUP\ntrap 'exit 130' INT\ntrap 'exit 143' TERM\n"
        'cd "$d" || exit 125\n'
        f"{watchdog}"
        f'tar -x {"-z " if compressed else ""}-m -o -f - || '
        '{ echo "pallet: cannot unpack the bundle into $d" >&2; exit 125; }\n'
        f"{_run_script(script, shell)}")


def _powershell_command(script: str) -> str:
    # Untested here (no Windows node): .NET 7+ (PowerShell 7.3+) reads tar itself.
    ps = (
        "$ErrorActionPreference = 'Stop'\n"
        "$d = Join-Path ([IO.Path]::GetTempPath()) ('pallet-bundle-' + [guid]::NewGuid().ToString('N'))\n"
        "New-Item -ItemType Directory -Path $d | Out-Null\n"
        "$code = 125\n"
        "try {\n"
        "  $gz = [IO.Compression.GZipStream]::new([Console]::OpenStandardInput(), "
        "[IO.Compression.CompressionMode]::Decompress)\n"
        "  [System.Formats.Tar.TarFile]::ExtractToDirectory($gz, $d, $true)\n"
        "  $env:PALLET_BUNDLE_DIR = $d\n"
        "  Set-Location -LiteralPath $d\n"
        f"  pwsh -NoProfile -NonInteractive -File (Join-Path $d '{script}') < $null\n"
        "  $code = $LASTEXITCODE\n"
        "} finally {\n"
        "  Set-Location -LiteralPath ([IO.Path]::GetTempPath())\n"
        "  Remove-Item -LiteralPath $d -Recurse -Force -ErrorAction SilentlyContinue\n"
        "}\n"
        "exit $code\n")
    encoded = base64.b64encode(ps.encode("utf-16-le")).decode()
    return f"pwsh -NoProfile -NonInteractive -EncodedCommand {encoded}"


def prepare_bundle(files: dict[str, bytes], script: str, shell: str, *, is_root: bool,
                   sudo_password: str | None, where: str, timeout: float | None = None
                   ) -> tuple["BundleExchange", bytes, str | None]:
    """For either transport: the command that runs a bundle, the tar stream it reads, and
    the sudo password to feed (None: root already, or `sudo -n`). With a `timeout` (seconds),
    the node stops the bundle when it runs longer."""
    if script not in files:
        raise PalletError(f"the bundle has no {script!r} among its files")
    sudo = not is_root and not script.endswith(".ps1")
    password = sudo_password if sudo else None
    if password is not None and ("\n" in password or "\r" in password):
        raise transport_error("sudo", f"{where}: a sudo password cannot contain a line break")
    compressed = should_compress(files, script)
    # Inline (no tar) for root; sudo must say it started before the bundle is sent, which a
    # script read from stdin cannot.
    if not sudo and not compressed and not any(b"\0" in data for data in files.values()):
        exchange = bundle_command(script, shell, sudo=sudo, sudo_password=password is not None,
                                  inline=True, timeout=timeout)
        payload = inline_bundle(files, script, shell, exchange.started, exchange.seconds,
                                exchange.timeout_marker)
        return exchange, payload, password
    exchange = bundle_command(script, shell, sudo=sudo, sudo_password=password is not None,
                              compressed=compressed, timeout=timeout)
    return exchange, bundle_tar(files, compressed), password


def _bundle_paths(files: dict[str, bytes]) -> list[tuple[str, list[str]]]:
    """The bundle's file names in order, each with the directories it needs that no name
    before it needed; a name that is not a plain relative path is an error."""
    seen: set[str] = set()
    out = []
    for name in sorted(files):
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise PalletError(f"bad bundle file name {name!r}: use a relative path")
        new = ["/".join(parts[:i]) for i in range(1, len(parts))]
        new = [d for d in new if d not in seen]
        seen.update(new)
        out.append((name, new))
    return out


def inline_bundle(files: dict[str, bytes], script: str, shell: str,
                  started: bytes | None = None, seconds: int | None = None,
                  marker: bytes | None = None) -> bytes:
    """A small bundle of files without NUL bytes as the script `sh -s` reads on stdin: it
    makes a private directory of a random name (mkdir fails on a name that exists), writes
    each file with printf (a builtin: no tar to start), runs the bundle's script there and
    removes the directory. It is one compound command, which the shell reads whole before it
    runs any of it: a stream cut short is a syntax error, never a part run. With `seconds`,
    a watchdog bounds its time (`_watchdog`)."""
    dirs = [d for _, new in _bundle_paths(files) for d in new]
    made = " ".join(['"$d"', *(f'"$d"/{shlex.quote(d)}' for d in dirs)])
    watchdog = _watchdog(seconds, marker)
    head = [
        "{",
        f"printf '%s\\n' {started.decode()} >&2" if started else "",
        "umask 077",
        f'd="${{TMPDIR:-/tmp}}/pallet-bundle.{secrets.token_hex(10)}"',
        f"mkdir -- {made} || exit 125",
        _exit_trap(bool(watchdog)),
        "trap 'exit 129' HUP", "trap 'exit 130' INT", "trap 'exit 143' TERM",
        'cd "$d" || exit 125',
    ]
    out = [("\n".join(line for line in head if line) + "\n" + watchdog).encode()]
    for name in sorted(files):
        out += [b"printf '%s' '", files[name].replace(b"'", b"'\\''"),
                f"' > {shlex.quote(name)} || exit 125\n".encode()]
    out.append((_run_script(script, shell) + "}\n").encode())
    return b"".join(out)


def bundle_command(script: str, shell: str, *, sudo: bool, sudo_password: bool,
                   compressed: bool = True, inline: bool = False,
                   timeout: float | None = None) -> BundleExchange:
    """The one command that unpacks the bundle from stdin, runs it and cleans up: `sh -s`
    reading an inline bundle (see inline_bundle), or `sh -c WRAPPER` reading a tar stream.
    With a `timeout`, a watchdog on the node stops the bundle when it runs longer."""
    if script.endswith(".ps1"):
        command = _powershell_command(script)
        return BundleExchange(command, ["pwsh", *shlex.split(command)[1:]], None, None)
    started = f"pallet-wrapper-started-{secrets.token_hex(12)}".encode() if sudo else None
    seconds = math.ceil(timeout) if timeout else None
    marker = f"pallet-timeout-{secrets.token_hex(12)}".encode() if seconds else None
    shell_argv = ["sh", "-s"] if inline else ["sh", "-c", _posix_wrapper(
        script, shell, started, compressed, seconds, marker)]
    if not sudo:
        return BundleExchange(shlex.join(shell_argv), shell_argv, None, None, marker, seconds)
    if sudo_password:
        prompt = f"pallet-sudo-prompt-{secrets.token_hex(12)}:".encode()
        sudo_argv = ["sudo", "-S", "-p", prompt.decode()]
    else:
        prompt = None
        sudo_argv = ["sudo", "-n"]
    argv = [*sudo_argv, "--", *shell_argv]
    return BundleExchange(shlex.join(argv), argv, started, prompt, marker, seconds)
