"""The root filesystems local nodes are made of: one per release (RELEASES), debootstrapped
once into the cache (`$PALLET_CACHE`, else ~/.cache/pallet) under a lock, and what a machine
needs to run local nodes at all (`preflight`). Costs are in localnodes.py's docstring."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from pallet.errors import PalletError

SUITE = "bookworm"
PACKAGES = "openssh-server,python3,sudo,procps"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_OS = "debian-12"

# What a private node's apt may reach: (host[:port] as in the URL, upstream host, port).
Egress = tuple[str, str, int]


def _mirror_egress(os_name: str | None = None) -> list[Egress]:
    """The mirrors the sources of a release name (of every release when None: Debian's,
    Ubuntu's archive and security)."""
    urls = {DEFAULT_MIRROR} if os_name in (None, DEFAULT_OS) else set()
    for rel in RELEASES.values() if os_name is None else (release(os_name),):
        urls.update(line.split()[1] for line in rel.sources.format(mirror=rel.mirror_url()).splitlines())
    found = {(u.netloc.lower(), u.hostname, u.port or 80) for u in map(urlsplit, urls) if u.hostname}
    return sorted(found)


class NodesUnavailable(PalletError):
    """Local nodes cannot run on this machine; the message says why and what to do."""


@dataclass(frozen=True)
class Release:
    """A release local nodes are made of: how its root filesystem is debootstrapped and what
    its apt sources are afterwards (those of a fresh install of it)."""

    os: str                        # as targets name it: debian-12, ubuntu-22.04
    family: str
    version: str
    suite: str
    mirror: str                    # the default mirror, overridden by $mirror_env
    mirror_env: str
    sources: str                   # sources.list, with {mirror}
    name: str                      # for messages

    def mirror_url(self) -> str:
        return os.environ.get(self.mirror_env) or self.mirror


RELEASES = {r.os: r for r in (
    Release("debian-12", "debian", "12", SUITE, DEFAULT_MIRROR, "PALLET_DEBIAN_MIRROR",
            "deb {mirror} bookworm main\ndeb {mirror} bookworm-updates main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n", "Debian 12"),
    # Ubuntu's installer enables these components and pockets; security is on the archive too.
    Release("ubuntu-22.04", "ubuntu", "22.04", "jammy", "http://archive.ubuntu.com/ubuntu",
            "PALLET_UBUNTU_MIRROR",
            "deb {mirror} jammy main restricted universe multiverse\n"
            "deb {mirror} jammy-updates main restricted universe multiverse\n"
            "deb http://security.ubuntu.com/ubuntu jammy-security main restricted universe multiverse\n",
            "Ubuntu 22.04"),
)}


def release(os_name: str) -> Release:
    try:
        return RELEASES[os_name]
    except KeyError:
        raise PalletError(f"local nodes run {' or '.join(RELEASES)}, not {os_name}") from None


def default_cache_dir() -> Path:
    if os.environ.get("PALLET_CACHE"):
        return Path(os.environ["PALLET_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pallet"


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _mounts_under(prefix: Path) -> list[str]:
    """Host mount points at or below prefix (longest first, for unmounting)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(prefix) or point.startswith(f"{prefix}/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def preflight(state_dir: Path | None = None) -> None:
    """Raise NodesUnavailable unless this machine can run local nodes."""
    if os.geteuid() != 0:
        raise NodesUnavailable(
            "local nodes need root: each node is an overlayfs mount in its own mount, PID and "
            "UTS namespaces, which only root can make. Run as root (sudo), or target existing "
            "servers with an inventory instead (`--nodes inventory.toml`, a [[node]] table per "
            "server with name, host, port, user, private-key).")
    missing = [t for t in ("unshare", "nsenter", "chroot", "mount") if not shutil.which(t)]
    if missing:
        raise NodesUnavailable(f"local nodes need {', '.join(missing)} (Debian: apt-get install util-linux mount coreutils)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        subprocess.run(["modprobe", "overlay"], capture_output=True)
        if "overlay" not in Path("/proc/filesystems").read_text():
            raise NodesUnavailable("local nodes need overlayfs, which this kernel does not offer (modprobe overlay failed)")
    if state_dir is not None:
        # The upper dir must be on a filesystem overlayfs accepts (not overlayfs itself, say).
        probe = state_dir / ".probe"
        shutil.rmtree(probe, ignore_errors=True)
        for sub in ("l", "u", "w", "m"):
            (probe / sub).mkdir(parents=True)
        opts = f"lowerdir={probe}/l,upperdir={probe}/u,workdir={probe}/w"
        r = subprocess.run(["unshare", "--mount", "--uts", "--ipc", "--pid", "--fork",
                            "mount", "-t", "overlay", "overlay", "-o", opts, str(probe / "m")],
                           capture_output=True, text=True)
        shutil.rmtree(probe, ignore_errors=True)
        if r.returncode != 0:
            raise NodesUnavailable(
                f"cannot make namespaces with an overlay mount under {state_dir}: {r.stderr.strip()} "
                "(a container without CAP_SYS_ADMIN, or a state directory on a filesystem "
                "overlayfs refuses; set PALLET_NODES_DIR to a directory on ext4/xfs/tmpfs)")


def ensure_rootfs(cache_dir: Path | None = None, mirror: str | None = None,
                  log=lambda msg: print(msg, file=sys.stderr), os_name: str = DEFAULT_OS) -> Path:
    """The cached root filesystem of a release (default Debian 12), built once (atomically,
    under a lock) if missing: `$PALLET_CACHE/rootfs-SUITE`."""
    rel = release(os_name)
    cache = cache_dir or default_cache_dir()
    stem = f"rootfs-{rel.suite}"
    final = cache / stem
    if final.is_dir():
        return final
    if os.geteuid() != 0:
        preflight()
    with file_lock(cache / f"{stem}.lock"):
        if final.is_dir():                      # another process built it while we waited
            return final
        if not shutil.which("debootstrap"):
            log("pallet: installing debootstrap with apt-get")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
            r = subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise NodesUnavailable(f"cannot install debootstrap: {r.stderr.strip()[-500:]}")
        for stale in cache.glob(f"{stem}.tmp.*"):   # left by a build that died
            _remove_tree(stale)
        tmp = cache / f"{stem}.tmp.{os.getpid()}"
        mirror = mirror or rel.mirror_url()
        keyring: list[str] = []
        if rel.family == "ubuntu":
            # debootstrap checks the Release signature with this key (pinned by fingerprint).
            from .archive_keys import ubuntu_keyring
            try:
                keyring = [f"--keyring={ubuntu_keyring(cache, mirror)}"]
            except PalletError as exc:
                raise NodesUnavailable(f"no {rel.name} root filesystem: {exc.message}") from None
        log(f"pallet: building the {rel.name} ({rel.suite}) root filesystem in {final} "
            "(once; about 35 s)")
        began = time.monotonic()
        with open(cache / f"{stem}.log", "w") as out:
            r = subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}",
                                *keyring, rel.suite, str(tmp), mirror],
                               stdout=out, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            _remove_tree(tmp)
            tail = (cache / f"{stem}.log").read_text()[-800:]
            raise NodesUnavailable(f"debootstrap failed (exit {r.returncode}); end of its log:\n{tail}")
        # Every node makes its own host key; none may share the ones debootstrap generated.
        for key in (tmp / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        for deb in (tmp / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        _write(tmp / "etc/apt/sources.list", rel.sources.format(mirror=mirror))
        if rel.family == "ubuntu":
            # debootstrap's lists are of jammy main alone, not the sources above (universe
            # is where jq's and tree's live): no lists, as on a fresh Ubuntu image, so the
            # first install fetches them (the package crate's apt-get update when none).
            for path in (tmp / "var/lib/apt/lists").glob("*"):
                if path.is_file():
                    path.unlink()
        seconds = round(time.monotonic() - began, 1)
        _write(cache / f"{stem}.json", json.dumps(
            {"os": rel.os, "suite": rel.suite, "packages": PACKAGES, "mirror": mirror,
             "seconds": seconds, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2) + "\n")
        os.rename(tmp, final)
        log(f"pallet: root filesystem built in {seconds} s")
        return final


def _remove_tree(path: Path) -> None:
    for point in _mounts_under(path):           # debootstrap mounts proc/sys while it runs
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)
