"""The OS packages an offline bundle carries: resolved with apt for the node's own installed
state (not this machine's), downloaded once into a cache by content, and indexed as a flat
repository.

Resolving: the node's apt configuration, keyrings and dpkg status go into a scratch
directory, and apt is pointed at it alone (APT_CONFIG holding `Dir "scratch/"`): its
`apt-get update` reads the node's sources and checks their signatures with the node's keys,
and `apt-get install --print-uris` lists exactly the packages that node lacks, with the
sha256 the signed index gives. The node's status file is never changed.

Cache ($PALLET_CACHE, else ~/.cache/pallet):

    packages/sha256/<sha256>.deb        a package, named by its content
    packages/sha256/<sha256>.control    its control fields (dpkg-deb -f), for the index
    apt/<key>/                          package lists, per set of sources and keys (used as
                                        they are for 10 minutes after a refresh; see
                                        PALLET_APT_LISTS_MAX_AGE)
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from pallet.compiler.runfile import PackageFile
from pallet.errors import PalletError, Span

from .localnodes import default_cache_dir, file_lock
from .node_state import NodeState

APT_TIMEOUT = 600
# Package lists refreshed this recently are used as they are (PALLET_APT_LISTS_MAX_AGE
# seconds; 0 refreshes every time): bundling several specs in a row fetches them once.
LISTS_MAX_AGE = 600


def lists_max_age() -> float:
    value = os.environ.get("PALLET_APT_LISTS_MAX_AGE", "")
    try:
        return float(value) if value else LISTS_MAX_AGE
    except ValueError:
        raise PalletError(f"PALLET_APT_LISTS_MAX_AGE must be a number of seconds, not {value!r}") from None


@dataclass(frozen=True)
class Wanted:
    """A package a node's phases install: its name, its pinned version or "", and where the
    spec asked for it (for errors)."""

    name: str
    version: str
    span: Span | None = None


@dataclass(frozen=True)
class Resolved:
    """The packages one node lacks, as the run file carries them, and their index."""

    packages: tuple[PackageFile, ...]
    paths: tuple[tuple[str, Path], ...]     # name -> the cached file
    index: dict[str, bytes]                 # Packages, Release


def cache_root() -> Path:
    return default_cache_dir()


def _rewrite_keyring_paths(text: str, scratch: Path) -> str:
    """signed-by paths name keyrings on the node; the scratch directory holds copies."""
    return re.sub(r"((?:signed-by=|Signed-By:\s*))(/(?:usr/share|etc/apt)/keyrings/)",
                  lambda m: m.group(1) + str(scratch) + m.group(2), text, flags=re.I)


class AptResolver:
    """Resolves and downloads packages for node states, sharing lists and a content cache."""

    def __init__(self, cache: Path | None = None, log=None, mtime: int = 0):
        self.cache = cache or cache_root()
        self.mtime = mtime
        self.debs = self.cache / "packages" / "sha256"
        self.log = log or (lambda msg: None)
        self._updated: set[str] = set()

    def _need_apt(self) -> None:
        for tool in ("apt-get", "apt-cache"):
            if not shutil.which(tool):
                raise PalletError(f"embedding Debian packages needs {tool} on this machine (it "
                                  "resolves them as apt on the node would); install apt, or "
                                  "give --no-packages")

    def _scratch(self, state: NodeState) -> Path:
        """The lists' directory for this apt configuration, with the node's files laid out."""
        key = state.sources_key()
        root = self.cache / "apt" / key
        for sub in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial",
                    "var/lib/dpkg", "etc/apt/apt.conf.d", "etc/apt/preferences.d",
                    "etc/apt/sources.list.d", "etc/apt/trusted.gpg.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for name, data in state.files:
            if not name.startswith(("etc/apt/", "usr/share/keyrings/")):
                continue
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.startswith("etc/apt/sources.list"):
                data = _rewrite_keyring_paths(data.decode("utf-8", "replace"), root).encode()
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)
        # The same sources can come with another apt.conf.d (the key leaves it out): only
        # this state's configuration files stay.
        wanted = {root / name for name, _ in state.files}
        for path in (root / "etc/apt").rglob("*"):
            if path.is_file() and path not in wanted:
                path.unlink()
        os.chmod(root, 0o755)
        return root

    def _config(self, root: Path, status: Path, arch: str, archives: Path | None = None) -> Path:
        lines = [f'Dir "{root}/";', f'Dir::State::status "{status}";',
                 f'APT::Architecture "{arch}";', 'APT::Sandbox::User "root";',
                 'Acquire::Languages "none";', 'Dpkg::Use-Pty "false";']
        if archives is not None:
            lines.append(f'Dir::Cache::Archives "{archives}/";')
        path = self._work / "apt.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _apt(self, config: Path, args: Sequence[str], tool: str = "apt-get",
             cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "APT_CONFIG": str(config), "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        try:
            return subprocess.run([tool, *host_network_options(), *args], env=env, cwd=cwd,
                                  capture_output=True, text=True,
                                  timeout=APT_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PalletError(f"apt-get {args[0]} took longer than {APT_TIMEOUT} s") from None

    def resolve(self, state: NodeState, wanted: Sequence[Wanted], node: str) -> Resolved:
        """What `node` (in `state`) lacks to install `wanted`, downloaded and indexed."""
        if state.packager != "apt":
            raise PalletError(f"node {node}: {state.os} is not an apt system", None)
        self._need_apt()
        specs = [w.name + (f"={w.version}" if w.version else "") for w in wanted]
        key = state.sources_key()
        with tempfile.TemporaryDirectory(prefix="pallet-resolve.") as tmp, \
                file_lock(self.cache / "apt" / f"{key}.lock"):
            root = self._scratch(state)
            work = Path(tmp)
            os.chmod(work, 0o755)
            self._work = work
            # One path per status content, written once: apt then keeps its cache of the
            # lists and that status (pkgcache.bin) from one bundle to the next.
            data = state.file("var/lib/dpkg/status") or b""
            status = root / "status" / hashlib.sha256(data).hexdigest()[:32]
            if not status.is_file():
                status.parent.mkdir(exist_ok=True)
                status.with_suffix(".tmp").write_bytes(data)
                os.replace(status.with_suffix(".tmp"), status)
            config = self._config(root, status, state.arch)
            marker = root / ".updated"
            age = time.time() - marker.stat().st_mtime if marker.exists() else None
            if key in self._updated:
                pass
            elif age is not None and age < lists_max_age():
                self.log(f"pallet: using the package lists for {state.os} refreshed "
                         f"{age:.0f} s ago")
                self._updated.add(key)
            else:
                self.log(f"pallet: refreshing the package lists for {state.os} ({state.origin})")
                r = self._apt(config, ["update", "-q"])
                if r.returncode != 0 or re.search(r"^(E|Err|W):", r.stdout + r.stderr, re.M):
                    raise PalletError(f"apt-get update for {state.os} ({state.origin}) "
                                      f"failed:\n{_tail(r)}")
                marker.write_text("")
                self._updated.add(key)
            # What apt would install on that node, then those versions' index entries
            # (Filename, Size, SHA256 from the signed lists).
            r = self._apt(config, ["install", "-s", "-qq", "-y", "--", *specs])
            if r.returncode != 0:
                raise PalletError(f"node {node}: apt cannot install {' '.join(specs)} on "
                                  f"{state.os} ({state.origin}):\n{_tail(r)}",
                                  wanted[0].span if wanted else None)
            chosen = [(m.group(1), m.group(2), m.group(3)) for m in
                      map(INST_LINE.match, r.stdout.splitlines()) if m]
            stanzas = self._index_entries(config, chosen) if chosen else []
            missing = [st for st in stanzas if not (self.debs / f"{st.sha256}.deb").is_file()]
            if missing:
                self._download(config, work, missing, state)
        packages = tuple(PackageFile(st.file, st.sha256, st.size) for st in stanzas)
        paths = tuple((st.file, self.debs / f"{st.sha256}.deb") for st in stanzas)
        return Resolved(packages, paths, repo_index([st.text for st in stanzas], state.arch,
                                                    self.mtime))

    def _index_entries(self, config: Path, chosen: list[tuple[str, str, str]]) -> list["Stanza"]:
        r = self._apt(config, ["show", "--", *(f"{n}={v}" for n, v, _ in chosen)], "apt-cache")
        if r.returncode != 0:
            raise PalletError(f"apt-cache show failed:\n{_tail(r)}")
        wanted = {(n, v, a) for n, v, a in chosen}
        found: dict[tuple[str, str, str], Stanza] = {}
        for text in r.stdout.split("\n\n"):
            st = Stanza.parse(text)
            if st is not None and st.key in wanted:
                found.setdefault(st.key, st)
        lost = wanted - set(found)
        if lost:
            raise PalletError("apt's lists have no entry for " + ", ".join(
                f"{n} {v} ({a})" for n, v, a in sorted(lost)))
        return sorted(found.values(), key=lambda st: st.file)

    def _download(self, config: Path, work: Path, missing: list["Stanza"], state: NodeState) -> None:
        archives = work / "archives"
        archives.mkdir()
        os.chmod(archives, 0o755)
        total = sum(st.size for st in missing)
        self.log(f"pallet: downloading {len(missing)} package(s), {total / 1e6:.1f} MB, for {state.os}")
        r = self._apt(config, ["download", "-q", "--",
                               *(f"{st.package}:{st.arch}={st.version}" for st in missing)],
                      cwd=archives)
        if r.returncode != 0:
            raise PalletError(f"downloading packages for {state.os} failed:\n{_tail(r)}")
        self.debs.mkdir(parents=True, exist_ok=True)
        got = {_file_sha256(p): p for p in archives.glob("*.deb")}
        for st in missing:
            path = got.get(st.sha256)
            if path is None:
                raise PalletError(f"{st.file}: apt did not download it with the sha256 the "
                                  f"signed index gives ({st.sha256})")
            tmp = self.debs / f".{st.sha256}.{os.getpid()}"
            shutil.copyfile(path, tmp)
            os.replace(tmp, self.debs / f"{st.sha256}.deb")


INST_LINE = re.compile(r"^Inst (\S+) (?:\[[^]]*\] )?\((\S+) .*\[([^]]+)\]\)")


@dataclass(frozen=True)
class Stanza:
    """One package's entry in apt's lists, with Filename pointing into the flat repository."""

    package: str
    version: str
    arch: str
    file: str            # the .deb's name in the repository
    size: int
    sha256: str
    text: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.package, self.version, self.arch)

    @classmethod
    def parse(cls, text: str) -> "Stanza | None":
        fields: dict[str, str] = {}
        lines = []
        for line in text.strip("\n").splitlines():
            if line and not line[0].isspace():
                name, _, value = line.partition(":")
                fields[name] = value.strip()
                if name == "Filename":
                    continue
            lines.append(line)
        try:
            file = fields["Filename"].rsplit("/", 1)[-1]
            st = cls(fields["Package"], fields["Version"], fields["Architecture"], file,
                     int(fields["Size"]), fields["SHA256"], "")
        except (KeyError, ValueError):
            return None
        # The entry as the lists have it, but for where the file is (and no field order change).
        kept = [line for line in lines if not line.startswith(("Size:", "SHA256:", "MD5sum:",
                                                               "SHA1:", "SHA512:"))]
        text = "\n".join(kept) + f"\nFilename: ./{file}\nSize: {st.size}\nSHA256: {st.sha256}\n"
        return cls(st.package, st.version, st.arch, file, st.size, st.sha256, text)


_PROXIES = ("Acquire::http::Proxy", "Acquire::https::Proxy", "Acquire::ftp::Proxy",
            "Acquire::http::Proxy-Auto-Detect", "Acquire::https::Proxy-Auto-Detect")


@lru_cache(maxsize=1)
def host_network_options() -> tuple[str, ...]:
    """How this machine reaches mirrors: its own apt proxy settings, given on the command line
    so that they win over the node's (a node's proxy is for the node's network)."""
    r = subprocess.run(["apt-config", "dump"], capture_output=True, text=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"})
    found = dict(re.findall(r'^(Acquire::\S+) "(.*)";$', r.stdout, re.M))
    return tuple(arg for name in _PROXIES for arg in
                 ("-o", f"{name}={found.get(name, 'DIRECT' if name.endswith('Proxy') else '')}"))


def repo_index(stanzas: Sequence[str], arch: str, mtime: int = 0) -> dict[str, bytes]:
    """A flat repository's Packages and (unsigned) Release: the run file's checked sha256
    vouches for both; apt checks every .deb against Packages. Its date is the bundle's
    fixed one (SOURCE_DATE_EPOCH, else 1970), never the clock."""
    from email.utils import formatdate
    packages = "\n".join(stanzas).encode()
    date = formatdate(mtime, usegmt=True)
    release = ("Origin: Pallet\nLabel: Pallet offline bundle\nSuite: pallet\nCodename: pallet\n"
               f"Date: {date}\n"
               f"Architectures: {arch} all\nDescription: the packages of one offline bundle\n"
               f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")
    return {"Packages": packages, "Release": release.encode()}


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tail(r: subprocess.CompletedProcess) -> str:
    text = "\n".join(x for x in (r.stdout.strip(), r.stderr.strip()) if x)
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join("  " + line for line in lines[-15:])
