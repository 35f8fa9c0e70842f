"""OS detection over a connection: `/etc/os-release` and `uname -m` in one command.

Families and versions are named as the compiler's targets name them (`debian-12`,
`ubuntu-22.04`, `rocky-9`, `alpine-3.20`, `opensuse-15`, `arch`):

    ID                                  family     version
    debian                              debian     VERSION_ID ("12")
    ubuntu                              ubuntu     VERSION_ID ("22.04")
    fedora                              fedora     major ("40")
    rhel, centos, rocky                 the same   major ("9.3" -> "9")
    almalinux                           alma       major
    amzn                                amzn       VERSION_ID ("2023", "2")
    alpine                              alpine     major.minor ("3.20.3" -> "3.20")
    arch, archarm                       arch       none (rolling)
    opensuse-leap, opensuse             opensuse   major ("15.5" -> "15")
    opensuse-tumbleweed                 opensuse   "tumbleweed"
    sles, sled                          sles       major

An ID not in the table is looked up through ID_LIKE (a derivative takes its parent's family
only when the parent is one of the above, and then keeps no version, since its own
numbering is not the parent's).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from pallet.errors import PalletError

__all__ = ["OsFacts", "detect_os", "parse_os_release", "os_facts", "DETECT_COMMAND"]

_SEPARATOR = "--pallet-uname--"
DETECT_COMMAND = (
    "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; "
    f"echo; echo {_SEPARATOR}; uname -m")

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class OsFacts:
    family: str
    version: str | None
    arch: str

    @property
    def os(self) -> str:
        """As a target names it: `debian-12`, `arch`."""
        return f"{self.family}-{self.version}" if self.version else self.family


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines, values unquoted as a shell would (os-release(5))."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        found[key.strip()] = words[0] if words else ""
    return found


def _major(version: str) -> str:
    return version.split(".")[0]


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# ID -> (family, how to name the version)
_FAMILIES = {
    "debian": ("debian", str),
    "ubuntu": ("ubuntu", str),
    "fedora": ("fedora", _major),
    "rhel": ("rhel", _major),
    "centos": ("centos", _major),
    "rocky": ("rocky", _major),
    "almalinux": ("alma", _major),
    "alma": ("alma", _major),
    "amzn": ("amzn", str),
    "alpine": ("alpine", _major_minor),
    "arch": ("arch", None),
    "archarm": ("arch", None),
    "opensuse-leap": ("opensuse", _major),
    "opensuse": ("opensuse", _major),
    "opensuse-tumbleweed": ("opensuse", lambda v: "tumbleweed"),
    "sles": ("sles", _major),
    "sled": ("sles", _major),
}


def os_facts(os_release: dict[str, str], machine: str) -> OsFacts | None:
    """The facts from parsed os-release and `uname -m`, or None if the OS is not known."""
    arch = _ARCH_ALIASES.get(machine.strip(), machine.strip()) or "unknown"
    ident = os_release.get("ID", "").lower()
    version_id = os_release.get("VERSION_ID", "")
    if ident in _FAMILIES:
        family, name = _FAMILIES[ident]
        version = name(version_id) if name and version_id else None
        return OsFacts(family, version, arch)
    for like in os_release.get("ID_LIKE", "").lower().split():
        if like in _FAMILIES:
            return OsFacts(_FAMILIES[like][0], None, arch)
    return None


def detect_os(conn) -> OsFacts:
    """Detect the node's OS and architecture in one command over `conn` (a Connection)."""
    result = conn.run(DETECT_COMMAND)
    text, sep, machine = result.stdout.partition(_SEPARATOR)
    where = getattr(getattr(conn, "endpoint", None), "host", "the node")
    if not sep:
        raise PalletError(f"cannot detect the OS of {where}: the detection command failed "
                          f"(exit {result.exit_status}): {result.stderr.strip() or result.stdout.strip()[:200]}; "
                          "set os-family and os-version for it in the inventory")
    release = parse_os_release(text)
    facts = os_facts(release, machine.strip().splitlines()[0] if machine.strip() else "")
    if facts is None:
        if release:
            seen = ", ".join(f"{k}={release[k]}" for k in ("ID", "ID_LIKE", "VERSION_ID") if k in release)
            why = f"its /etc/os-release says {seen or 'nothing Pallet knows'}"
        else:
            why = "it has no /etc/os-release"
        raise PalletError(
            f"unknown OS on {where}: {why}. Pallet knows " + ", ".join(sorted({f for f, _ in _FAMILIES.values()}))
            + "; set os-family and os-version for this node in the inventory")
    return facts
