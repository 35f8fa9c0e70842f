"""A node's installed state, as offline bundles resolve packages against it.

A state is what `pallet state-script` collects on a node (its OS, architecture, dpkg status
file, apt configuration and keyrings), as text: a first line `pallet-state 1`, then the
base64 of a gzip'd tar. The same shape comes from three places:

    state_from_rootfs(dir)     a root filesystem on this machine (for --os debian-12: the
                               local provider's cached Debian root filesystem)
    state_from_text(text)      a state file the operator carried out (--state FILE), or
                               the script's output read over SSH (--nodes)

apt's credentials (auth.conf, auth.conf.d) are never collected.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pallet.errors import PalletError, Source, Span

MAGIC = "pallet-state 1"
# What is collected, relative to the node's root.
PATHS = ("etc/os-release", "var/lib/dpkg/status", "etc/apt", "usr/share/keyrings")
SKIPPED = ("etc/apt/auth.conf", "etc/apt/auth.conf.d")

STATE_SCRIPT = r"""#!/bin/sh
# Written by `pallet state-script`: collects what `pallet bundle --state FILE` needs to
# resolve OS packages for this node: its OS, architecture, dpkg status file, apt
# configuration and keyrings (never apt's auth.conf credentials). Changes nothing here.
# Run it on the node as any user, and carry its output out:  sh state.sh > NODE.state
set -eu
umask 077
d=$(mktemp -d "${TMPDIR:-/tmp}/pallet-state.XXXXXXXXXX")
trap 'rm -rf -- "$d"' EXIT
mkdir "$d/root"
for p in etc/os-release var/lib/dpkg/status etc/apt usr/share/keyrings; do
  if [ -e "/$p" ]; then
    mkdir -p -- "$d/root/${p%/*}"
    cp -RL -- "/$p" "$d/root/$p"
  fi
done
rm -rf -- "$d/root/etc/apt/auth.conf" "$d/root/etc/apt/auth.conf.d"
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
packager=none
if command -v dpkg >/dev/null 2>&1; then packager=apt
elif command -v rpm >/dev/null 2>&1; then packager=rpm
elif command -v apk >/dev/null 2>&1; then packager=apk
fi
printf 'arch=%s\npackager=%s\nhostname=%s\n' "$arch" "$packager" "$(uname -n)" > "$d/root/pallet-state"
printf '%s\n' 'pallet-state 1'
(cd "$d/root" && tar -c -f - . | gzip -9n | base64)
"""


@dataclass(frozen=True)
class NodeState:
    """A node's files as collected (relative paths -> bytes) and what they say."""

    files: tuple[tuple[str, bytes], ...]
    os_family: str
    os_version: str
    arch: str
    packager: str
    origin: str                       # where it came from, for messages

    def file(self, name: str) -> bytes | None:
        return dict(self.files).get(name)

    @property
    def os(self) -> str:
        return f"{self.os_family}-{self.os_version}" if self.os_version else self.os_family

    def sources_key(self) -> str:
        """What the package lists depend on: the sources, keyrings, arch (not apt.conf.d,
        which holds such things as the node's proxy)."""
        h = hashlib.sha256(self.arch.encode())
        for name, data in self.files:
            if name.startswith(("etc/apt/sources.list", "etc/apt/trusted.gpg", "etc/apt/keyrings/",
                                "usr/share/keyrings/")):
                h.update(f"\0{name}\0{len(data)}\0".encode())
                h.update(data)
        return h.hexdigest()[:32]


def _os_release(data: bytes | None) -> dict[str, str]:
    out = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def _make(files: dict[str, bytes], origin: str, arch: str | None = None,
          packager: str | None = None) -> NodeState:
    release = _os_release(files.get("etc/os-release"))
    family = release.get("ID", "")
    version = release.get("VERSION_ID", "")
    if family == "debian" and not version:   # testing/sid have no VERSION_ID
        version = release.get("VERSION_CODENAME", "")
    facts = {}
    for line in files.get("pallet-state", b"").decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key] = value
    arch = arch or facts.get("arch", "")
    packager = packager or facts.get("packager", "")
    if not family or not arch:
        raise PalletError(f"{origin}: not a node state (no etc/os-release or no architecture); "
                          "make one with the script `pallet state-script` prints")
    if packager == "apt" and "var/lib/dpkg/status" not in files:
        raise PalletError(f"{origin}: the node state has no var/lib/dpkg/status")
    return NodeState(tuple(sorted(files.items())), family, version, arch, packager, origin)


def state_from_rootfs(root: Path) -> NodeState:
    """The state of a root filesystem on this machine (files read as the script would)."""
    files: dict[str, bytes] = {}
    for rel in PATHS:
        path = root / rel
        if path.is_file():
            files[rel] = path.read_bytes()
        elif path.is_dir():
            for sub in sorted(path.rglob("*")):
                name = sub.relative_to(root).as_posix()
                if sub.is_file() and not any(name == s or name.startswith(s + "/") for s in SKIPPED):
                    files[name] = sub.read_bytes()
    arch = "amd64"
    arch_file = root / "var/lib/dpkg/arch"
    if arch_file.is_file() and arch_file.read_text().split():
        arch = arch_file.read_text().split()[0]
    else:
        import subprocess
        r = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            arch = r.stdout.strip()
    return _make(files, str(root), arch, "apt" if "var/lib/dpkg/status" in files else "none")


def state_from_text(text: str, origin: str) -> NodeState:
    """A state as the state script printed it."""
    lines = text.splitlines()
    first = Span(Source(origin, text[:200]), 1, 1, 1, 1 + len(lines[0]) if lines else 2)
    if not lines or lines[0].strip() != MAGIC:
        raise PalletError(f"not a Pallet node state (its first line is not {MAGIC!r}); make "
                          "one on the node with the script `pallet state-script` prints", first)
    try:
        raw = gzip.decompress(base64.b64decode("".join(lines[1:]), validate=True))
        files: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile() or name.startswith("/") or ".." in name.split("/"):
                    continue
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[name] = extracted.read()
    except (binascii.Error, ValueError, OSError, EOFError, tarfile.TarError) as exc:
        raise PalletError(f"the node state is damaged ({exc}); make it again with the script "
                          "`pallet state-script` prints", first) from None
    return _make(files, origin)


def read_state_file(path: str) -> NodeState:
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        raise PalletError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise PalletError("not a Pallet node state (not text); make one on the node with the "
                          "script `pallet state-script` prints", Span(Source(path, ""), 1, 1)) from None
    except OSError as exc:
        raise PalletError(f"{path}: cannot read: {exc.strerror}") from None
    return state_from_text(text, path)
