"""`pallet bundle`: one run file per node, written into an output directory.

    DIR/NODE.run          the header, the scripts of every phase, the packages (runfile.py)
    DIR/NODE.run.sig      with --sign: an SSH signature of NODE.run, namespace pallet-bundle
    DIR/NODE.user-data    with --cloud-init: a cloud-config that runs NODE.run at first boot
    DIR/SHA256SUMS        every file above, as `sha256sum -c` reads it

The directory is made beside and put in place whole, only when every file is made: a failed
bundle leaves the previous one as it was. A directory that holds anything else is refused.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from pallet import __version__
from pallet.compiler.bundle import Bundle, build_bundles
from pallet.compiler.model import Action, NodeFacts
from pallet.compiler.specs import GroupSpec
from pallet.compiler.runfile import (DownloadFile, PackageFile, RunInfo, downloads_layout,
                                     header, packages_size, packages_tar_layout, phase_files,
                                     scripts_part)
from pallet.errors import PalletError

from .node_state import NodeState
from .offline_downloads import DownloadCache, Fetched, wanted_downloads
from .offline_packages import AptResolver, Resolved, Wanted, repo_index

NAMESPACE = "pallet-bundle"
OUTPUT_FILES = re.compile(r"^(SHA256SUMS|.+\.run|.+\.run\.sig|.+\.user-data)$")
DEFAULT_MAX_USER_DATA = 16 * 1024
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
USER_DATA_PATH = "/var/lib/pallet/offline"


@dataclass
class NodeBundle:
    """One node's phases, in order, and what it will carry."""

    name: str
    group: str
    bundles: list[Bundle] = field(default_factory=list)
    actions: list[list[Action]] = field(default_factory=list)   # each phase's


@dataclass(frozen=True)
class Made:
    node: str
    path: Path
    size: int
    phases: tuple[str, ...]
    packages: int
    header: int
    downloads: int = 0


def node_bundles(plans: dict[tuple[str, str], tuple[Action, ...]],
                 nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
                 read_file: Callable[[str], bytes]) -> list[NodeBundle]:
    """Each node's phases, in order, compiled for an offline bundle (the :offline target:
    packages and downloads come from the run file)."""
    by_node: dict[str, NodeBundle] = {}
    built = build_bundles(plans, nodes, read_file, offline=True) if plans else ()
    for b, actions in zip(built, plans.values()):
        node = by_node.setdefault(b.node.name, NodeBundle(b.node.name, b.group))
        node.bundles.append(b)
        node.actions.append(list(actions))
    return list(by_node.values())


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set (reproducible builds' convention), else 0: never the clock."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise PalletError(f"SOURCE_DATE_EPOCH must be a number of seconds, not {value!r}")
    return int(value)


def wanted_packages(node: NodeBundle) -> list[Wanted]:
    """Every package the node's phases install (package actions, and the package lists of
    every crate, which come down to them), in first-asked order."""
    from pallet.crates.action_content import gather_packages
    out: dict[str, Wanted] = {}
    for bundle, actions in zip(node.bundles, node.actions):
        package_actions = [a for a in actions if a.kind in ("package", "packages")]
        if not package_actions:
            continue
        installs, _ = gather_packages(package_actions, bundle.target)
        for name, version in installs:
            span = next((a.span for a in package_actions if _names_package(a, name)),
                        package_actions[0].span)
            out.setdefault(name, Wanted(name, version, span))
    return list(out.values())


def _names_package(action: Action, name: str) -> bool:
    return any(name == a or (isinstance(a, (tuple, list, frozenset)) and name in a)
               for a in action.args)


def refuse_packages(node: NodeBundle, wanted: list[Wanted], why: str) -> None:
    raise PalletError(f"node {node.name}: {why}; an offline bundle cannot carry the packages "
                      f"{' '.join(w.name for w in wanted)} (give --no-packages if the node "
                      "has a mirror of its own)", wanted[0].span)


def check_package_sources(node: NodeBundle) -> None:
    for actions in node.actions:
        for a in actions:
            if a.kind == "package-source":
                raise PalletError(f"node {node.name}: package-source in an offline bundle: the "
                                  "packages are resolved from the node's own apt sources, and a "
                                  "source the spec adds is not read when bundling (give "
                                  "--no-packages, or add the source to the node first)", a.span)


@dataclass(frozen=True)
class RunPlan:
    """A run file but for the bytes of its packages and downloads, which follow from files."""

    top: bytes
    scripts: bytes
    packages: tuple[PackageFile, ...]
    paths: tuple[tuple[str, Path], ...]          # package name -> its cached file
    downloads: tuple[tuple[str, Path], ...]      # content sha256 -> its cached file, in order


def build_run(node: NodeBundle, os_name: str, packager: str, spec: str, spec_sha256: str,
              resolved: Resolved | None, mtime: int, fetched: Sequence[Fetched] = ()) -> RunPlan:
    """The header and scripts part of the node's run file, and the packages and downloads
    that follow."""
    bundles = node.bundles
    info = RunInfo(node.name, node.group, os_name, packager, tuple(b.phase for b in bundles),
                   tuple(b.target.shell for b in bundles), spec, spec_sha256, __version__)
    packages = resolved.packages if resolved else ()
    paths = resolved.paths if resolved else ()
    files: tuple[DownloadFile, ...] = tuple(f.file for f in fetched)
    scripts, unpacked = scripts_part(info, phase_files(bundles),
                                     resolved.index if resolved else None, packages, mtime, files)
    size = packages_size(packages, mtime)
    digest = hashlib.sha256(scripts)
    by_name = dict(paths)
    for head, package, pad in packages_tar_layout(packages, mtime) if packages else ():
        digest.update(head)
        if package is not None:
            _hash_file(digest, by_name[package.name])
            digest.update(b"\0" * pad)
    by_sha = {f.file.sha256: f.path for f in fetched}
    layout = downloads_layout(files)
    for sha, _, _ in layout:
        _hash_file(digest, by_sha[sha])
    top = header(info, f"{node.name}.run", len(scripts), size, digest.hexdigest(), unpacked,
                 len(packages), resolved is not None, sum(n for _, _, n in layout), len(layout))
    return RunPlan(top, scripts, packages, paths, tuple((sha, by_sha[sha]) for sha, _, _ in layout))


def _hash_file(digest, path: Path) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def write_run(path: Path, plan: RunPlan, mtime: int, secret: bool = False) -> int:
    """Write the run file: executable, and by its owner alone when it carries secrets."""
    by_name = dict(plan.paths)
    with open(path, "wb") as out:
        out.write(plan.top)
        out.write(plan.scripts)
        if plan.packages:
            for head, package, pad in packages_tar_layout(plan.packages, mtime):
                out.write(head)
                if package is not None:
                    with open(by_name[package.name], "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
                    out.write(b"\0" * pad)
        for _, cached in plan.downloads:
            with open(cached, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    os.chmod(path, 0o700 if secret else 0o755)
    return path.stat().st_size


def sign(path: Path, key: str) -> None:
    """An SSH signature of the file in namespace pallet-bundle (PROTOCOL.sshsig), beside it."""
    if not shutil.which("ssh-keygen"):
        raise PalletError("--sign needs ssh-keygen (Debian: apt-get install openssh-client)")
    if not Path(key).is_file():
        raise PalletError(f"--sign {key}: no such key file")
    sig = path.with_name(path.name + ".sig")
    if sig.exists():
        sig.unlink()  # ssh-keygen would ask before overwriting it
    r = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", key, "-n", NAMESPACE, str(path)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if r.returncode != 0 or not sig.is_file():
        why = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise PalletError(f"--sign {key}: ssh-keygen cannot sign with it: "
                          f"{why[-1] if why else 'exit status ' + str(r.returncode)}")


def user_data(node: str, run: bytes, limit: int) -> bytes:
    """A cloud-config that writes NODE.run and runs it once at first boot."""
    packed = base64.b64encode(gzip.compress(run, compresslevel=9, mtime=0)).decode()
    path = f"{USER_DATA_PATH}/{node}.run"
    text = ("#cloud-config\n"
            f"# Pallet offline bundle for node {node}: written at first boot, checked and run.\n"
            "write_files:\n"
            f"  - path: {path}\n"
            "    owner: root:root\n"
            "    permissions: '0700'\n"
            "    encoding: gz+b64\n"
            f"    content: {packed}\n"
            "runcmd:\n"
            f"  - [sh, {path}]\n")
    data = text.encode()
    if len(data) > limit:
        raise PalletError(f"node {node}: the cloud-init user-data would be {len(data):,} bytes, "
                          f"over --max-user-data {limit:,} (EC2 takes 16 KiB); bundle fewer "
                          "packages (--no-packages), or carry NODE.run another way")
    return data


class OutputDir:
    """An output directory of run files: new content is written beside and swapped in."""

    def __init__(self, out: Path):
        self.out = out
        if out.exists():
            if not out.is_dir():
                raise PalletError(f"{out} exists and is not a directory; choose another -o")
            strangers = [p.name for p in out.iterdir() if not OUTPUT_FILES.match(p.name)]
            entries = list(out.iterdir())
            if strangers or (entries and not (out / "SHA256SUMS").is_file()):
                raise PalletError(f"{out} exists and is not a Pallet bundle directory (it holds "
                                  f"{', '.join(sorted(strangers)[:3]) or 'no SHA256SUMS'}); "
                                  "choose another -o")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        except OSError as exc:
            raise PalletError(f"-o {out}: cannot make the output directory there "
                              f"({exc.strerror or exc}); choose another -o") from None

    def finish(self) -> None:
        names = sorted(p.name for p in self.staging.iterdir())
        sums = "".join(f"{_sha256_of(self.staging / n)}  {n}\n" for n in names)
        (self.staging / "SHA256SUMS").write_text(sums)
        os.chmod(self.staging, 0o755)
        old = None
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old.{os.getpid()}")
            self.out.rename(old)
        self.staging.rename(self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    _hash_file(h, path)
    return h.hexdigest()


def bundle_nodes(nodes: Sequence[NodeBundle], out: Path, spec: str, *, packages: bool,
                 state_for: Callable[[NodeBundle], NodeState | None], sign_key: str | None = None,
                 cloud_init: bool = False, max_user_data: int = DEFAULT_MAX_USER_DATA,
                 log=lambda msg: None) -> list[Made]:
    """Write every node's run file (and signature, user-data) into `out`, whole or not at all."""
    spec_path = Path(spec)
    spec_sha256 = hashlib.sha256(spec_path.read_bytes()).hexdigest()
    mtime = source_date_epoch()
    resolver = AptResolver(log=log, mtime=mtime)
    downloads = DownloadCache(resolver.cache, log=log)
    plans = []
    memo: dict[tuple, Resolved] = {}     # nodes alike (a fleet) are resolved once
    for node in nodes:   # every check and download before anything is written
        if not SAFE_NAME.fullmatch(node.name):
            raise PalletError(f"node {node.name!r}: an offline bundle is named after its node "
                              "(NODE.run); use letters, digits, '.', '_' and '-'")
        target = node.bundles[0].target
        os_name = "-".join(p for p in (target.os_family, target.os_version) if p)
        resolved = None
        wanted = wanted_packages(node) if packages else []
        if packages and wanted:
            check_package_sources(node)
            if target.packager != "apt":
                refuse_packages(node, wanted, f"{os_name} installs packages with "
                                f"{target.packager or 'no known packager'}, and only apt "
                                "(Debian, Ubuntu) repositories are embedded")
            state = state_for(node)
            if state is None:
                from .rootfs import RELEASES
                known = " and ".join(f"{r.name}'s" for r in RELEASES.values())
                refuse_packages(node, wanted, f"no installed state of {os_name} is known here "
                                f"(only {known}: the local nodes' root filesystems; "
                                f"packages for {os_name} are resolved for a node's own state: "
                                "give --state FILE from `pallet state-script` run on it, or "
                                "--nodes, and this machine must reach the archive its apt "
                                "sources name)")
            if state.packager != "apt" or state.os_family != target.os_family:
                refuse_packages(node, wanted, f"its state ({state.origin}) is of {state.os} "
                                f"({state.packager}), not {os_name}")
            key = (hashlib.sha256(repr(state.files).encode()).hexdigest(), state.arch,
                   tuple((w.name, w.version) for w in wanted))
            if key not in memo:
                memo[key] = resolver.resolve(state, wanted, node.name)
            resolved = memo[key]
        elif packages and target.packager == "apt":
            resolved = Resolved((), (), repo_index([], "all", mtime))
        # remote-file :url: the run file carries the content, downloaded now and checked.
        fetched = [downloads.fetch(w) for w in
                   wanted_downloads(a for actions in node.actions for a in actions)]
        plans.append((node, os_name, target.packager or "", resolved, fetched))
    writer = OutputDir(out)
    made = []
    try:
        for node, os_name, packager, resolved, fetched in plans:
            plan = build_run(node, os_name, packager, spec_path.name, spec_sha256, resolved,
                             mtime, fetched)
            path = writer.staging / f"{node.name}.run"
            secret = any(b.secret_files for b in node.bundles)
            if secret and cloud_init:
                raise PalletError(f"--cloud-init: node {node.name}'s bundle carries secret "
                                  "values, and user data is not a place for them (every process "
                                  "of the instance reads it from the metadata service, the "
                                  "provider keeps it); carry the .run file in another way")
            size = write_run(path, plan, mtime, secret)
            if sign_key:
                sign(path, sign_key)
            if cloud_init:
                (writer.staging / f"{node.name}.user-data").write_bytes(
                    user_data(node.name, path.read_bytes(), max_user_data))
            made.append(Made(node.name, out / path.name, size, tuple(b.phase for b in node.bundles),
                             len(plan.packages), len(plan.top), len(plan.downloads)))
        writer.finish()
    except OSError as exc:     # a full disk, say: the previous bundles stay as they were
        writer.discard()
        raise PalletError(f"-o {out}: cannot write the bundles ({exc.strerror or exc}); "
                          "nothing was changed there") from None
    except BaseException:
        writer.discard()
        raise
    return made

