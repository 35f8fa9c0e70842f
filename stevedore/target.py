"""The target a script is compiled for: passed explicitly, never held in a global."""
from __future__ import annotations

import re
from dataclasses import dataclass

from pallet.errors import PalletError

SHELLS = ("bash", "sh", "powershell")

# Each OS family's default package manager (the packager specialiser).
PACKAGERS = {
    "debian": "apt", "ubuntu": "apt",
    "rhel": "dnf", "centos": "dnf", "rocky": "dnf", "alma": "dnf", "fedora": "dnf",
    "amzn": "dnf", "alpine": "apk", "arch": "pacman", "suse": "zypper", "opensuse": "zypper",
    "sles": "zypper", "windows": "choco",
}

# Families that derive from another, as in Pallet's os hierarchy: an implementation for
# :debian serves Ubuntu too, unless one for :ubuntu exists.
PARENT_FAMILY = {"ubuntu": "debian", "centos": "rhel", "rocky": "rhel", "alma": "rhel",
                 "amzn": "rhel", "opensuse": "suse", "sles": "suse"}


@dataclass(frozen=True)
class Target:
    os_family: str | None = None
    os_version: str | None = None
    packager: str | None = None
    shell: str = "bash"
    # The script runs from an offline bundle (`pallet bundle`: NODE.run), which carries the
    # packages and downloads it needs: implementations for `:offline` take them from there.
    offline: bool = False

    def weight(self, specialiser: str) -> int:
        """How specifically `specialiser` (a keyword name) describes this target; 0 if it
        does not hold. The exact os-family-version counts most."""
        if specialiser == "offline":
            return 2 if self.offline else 0
        if self.os_family and self.os_version and specialiser == f"{self.os_family}-{self.os_version}":
            return 4
        if specialiser == self.os_family:
            return 3
        parent = PARENT_FAMILY.get(self.os_family or "")
        if parent and specialiser == parent:
            return 1
        if specialiser in (self.packager, self.shell):
            return 2
        return 0

    def describe(self) -> str:
        os = "-".join(p for p in (self.os_family, self.os_version) if p) or "any os"
        return (f"{os}, {self.packager or 'no packager'}, {self.shell}"
                + (", offline bundle" if self.offline else ""))


def target_for(os_spec: str | None, shell: str = "bash") -> Target:
    """A target from an OS name such as `debian-12`, `ubuntu-22.04` or `windows`."""
    if shell not in SHELLS:
        raise PalletError(f"unknown shell {shell!r}; expected one of {', '.join(SHELLS)}")
    if not os_spec:
        return Target(shell=shell)
    m = re.fullmatch(r"([a-z]+)(?:-([0-9][0-9a-z.]*))?", os_spec.strip().lower())
    if not m:
        raise PalletError(f"cannot read OS {os_spec!r}; write it as family-version, e.g. debian-12")
    family, version = m.group(1), m.group(2)
    return Target(family, version, PACKAGERS.get(family), shell)
