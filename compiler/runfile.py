"""Offline bundles: one file per node, `NODE.run`, that converges a machine with no network.

    NODE.run = header (POSIX sh, runheader.sh filled in)
             + scripts: a gzip'd tar of every phase's bundle, the package index, FILES, manifest
               and downloads.list
             + packages: a tar of the .deb files (not compressed: they are), or nothing
             + downloads: the files remote-file :url names, each once, end to end, or nothing
               (downloads.list says where each URL's content starts and how long it is)

The header knows the sizes of the parts and the sha256 of everything after it; run, it
checks them before it writes anything (see runheader.sh). Everything here is pure: bundles,
package descriptions and index text in, bytes out; the same input gives the same bytes
(sorted entries, uid and gid 0, one fixed mtime, no name or time in the gzip header, no
build command). Reading the .deb files and writing the result is runtime/offline.py's.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterable

from pallet.errors import PalletError
from pallet.stevedore.emit_posix import quote_literal

from .bundle import Bundle, _dump

# The tar record: tarfile pads an archive to a multiple of it, as tar itself does.
RECORD = tarfile.RECORDSIZE


@dataclass(frozen=True)
class RunInfo:
    """What a run file is for, as `--info` prints it."""

    node: str
    group: str
    os: str                        # "debian-12"
    packager: str
    phases: tuple[str, ...]
    shells: tuple[str, ...]        # each phase's shell
    spec: str                      # the spec file's name (not its path: cwd-independent)
    spec_sha256: str
    version: str                   # pallet's


@dataclass(frozen=True)
class PackageFile:
    """A .deb the run file carries, in repo/NAME."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DownloadFile:
    """The content of a remote-file :url, downloaded when bundling: the run file carries it
    and the step takes it from there instead of the network."""

    url: str
    sha256: str
    size: int


def downloads_layout(downloads: Iterable[DownloadFile]) -> list[tuple[str, int, int]]:
    """(sha256, offset, size) of each distinct content in the downloads part, by sha256."""
    out, offset = [], 0
    for sha, size in sorted({(d.sha256, d.size) for d in downloads}):
        out.append((sha, offset, size))
        offset += size
    return out


def downloads_list(downloads: Iterable[DownloadFile]) -> bytes:
    """downloads.list: `OFFSET SIZE SHA256 URL` a line, by URL; the header reads it."""
    where = {sha: (offset, size) for sha, offset, size in downloads_layout(downloads)}
    lines = []
    for d in sorted(set(downloads), key=lambda d: d.url):
        if _URL_UNSAFE.search(d.url) or not d.url:
            raise PalletError(f"remote-file :url {d.url!r}: a URL has no spaces or control "
                              "characters")
        offset, size = where[d.sha256]
        lines.append(f"{offset} {size} {d.sha256} {d.url}\n")
    return "".join(lines).encode()


_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class RunParts:
    """A run file but for its packages' bytes: header + scripts, then the packages part
    (packages_tar_header/entries say how its bytes are laid out)."""

    header: bytes
    scripts: bytes
    packages_size: int


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def phase_files(bundles: Iterable[Bundle]) -> dict[str, bytes]:
    """Each phase's bundle under PHASE/: its script, its files and its manifest."""
    out: dict[str, bytes] = {}
    for b in bundles:
        if b.target.shell == "powershell":
            raise PalletError(f"node {b.node.name}: an offline bundle is a POSIX sh file; "
                              f"{b.target.describe()} runs PowerShell (use pallet compile)")
        out[f"{b.phase}/{b.script_name}"] = b.script.encode()
        for name, data in b.files:
            out[f"{b.phase}/{name}"] = data
        out[f"{b.phase}/manifest.json"] = _dump(b.manifest())
    return out


def scripts_part(info: RunInfo, files: dict[str, bytes], repo_index: dict[str, bytes] | None,
                 packages: tuple[PackageFile, ...], mtime: int,
                 downloads: tuple[DownloadFile, ...] = ()) -> tuple[bytes, int]:
    """The gzip'd tar of the scripts (with FILES, the list of every file the run file
    carries, and manifest.json), and how many bytes the whole run file unpacks to."""
    files = dict(files)
    if repo_index is not None:
        files.update({f"repo/{name}": data for name, data in repo_index.items()})
    layout = downloads_layout(downloads)
    if downloads:
        files["downloads.list"] = downloads_list(downloads)
    manifest = {"node": info.node, "group": info.group, "os": info.os,
                "packager": info.packager, "phases": list(info.phases),
                "spec": {"name": info.spec, "sha256": info.spec_sha256},
                "pallet": info.version,
                "packages": [{"file": f"repo/{p.name}", "sha256": p.sha256, "size": p.size}
                             for p in packages]}
    if downloads:
        manifest["downloads"] = [{"url": d.url, "file": f"downloads/{d.sha256}",
                                  "sha256": d.sha256, "size": d.size}
                                 for d in sorted(set(downloads), key=lambda d: d.url)]
    files["manifest.json"] = _dump(manifest)
    # A secret's checksum finds a short password: the list gives none for them.
    listing = [("(secret)".ljust(64) if is_secret_name(name) else sha256(data), len(data), name)
               for name, data in files.items()]
    listing += [(p.sha256, p.size, f"repo/{p.name}") for p in packages]
    listing += [(sha, size, f"downloads/{sha}") for sha, _, size in layout]
    files["FILES"] = "".join(f"{sha}  {size:>10}  {name}\n"
                             for sha, size, name in sorted(listing, key=lambda x: x[2])).encode()
    raw = tar_bytes(files, mtime)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=mtime, compresslevel=9) as gz:
        gz.write(raw)
    unpacked = (sum(len(d) for d in files.values()) + sum(p.size for p in packages)
                + sum(size for _, _, size in layout))
    return buf.getvalue(), unpacked


def is_secret_name(name: str) -> bool:
    """A file of a phase's secrets/ (its values and secret file contents)."""
    parts = name.split("/")
    return len(parts) >= 3 and parts[-2] == "secrets"


def _info(name: str, size: int, mtime: int, mode: int = 0o644,
          kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, mode, kind
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _check_name(name: str) -> None:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise PalletError(f"bad file name in an offline bundle: {name!r}")


def tar_bytes(files: dict[str, bytes], mtime: int) -> bytes:
    """A ustar archive of `files`: directories first met made 0755 (a phase's secrets/ 0700),
    scripts (run.sh) 0755, secret values 0600, the rest 0644; sorted by name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        made: set[str] = set()
        for name in sorted(files):
            _check_name(name)
            parts = name.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    private = i >= 2 and parts[i - 1] == "secrets"
                    tar.addfile(_info(d, 0, mtime, 0o700 if private else 0o755, tarfile.DIRTYPE))
            mode = (0o755 if parts[-1] in ("run.sh",) else
                    0o600 if is_secret_name(name) else 0o644)
            tar.addfile(_ustar(_info(name, len(files[name]), mtime, mode)), io.BytesIO(files[name]))
    return buf.getvalue()


def _ustar(info: tarfile.TarInfo) -> tarfile.TarInfo:
    try:
        info.tobuf(tarfile.USTAR_FORMAT)
    except ValueError:
        raise PalletError(f"file name too long for an offline bundle (ustar): {info.name!r}") from None
    return info


def packages_tar_layout(packages: tuple[PackageFile, ...], mtime: int
                        ) -> list[tuple[bytes, PackageFile | None, int]]:
    """The packages part as pieces: (tar header bytes, the package whose bytes follow, the
    zero padding after them); the last piece is the end of the archive. Writing the pieces
    with each package's bytes in place gives the same bytes as tarfile would."""
    out: list[tuple[bytes, PackageFile | None, int]] = []
    offset = 0
    for p in sorted(packages, key=lambda p: p.name):
        _check_name(p.name)
        head = _ustar(_info(p.name, p.size, mtime)).tobuf(tarfile.USTAR_FORMAT)
        pad = -p.size % tarfile.BLOCKSIZE
        out.append((head, p, pad))
        offset += len(head) + p.size + pad
    end = 2 * tarfile.BLOCKSIZE
    end += -(offset + end) % RECORD
    out.append((b"\0" * end, None, 0))
    return out


def packages_size(packages: tuple[PackageFile, ...], mtime: int) -> int:
    if not packages:
        return 0
    return sum(len(h) + (p.size if p else 0) + pad for h, p, pad in packages_tar_layout(packages, mtime))


@lru_cache(maxsize=1)
def _template() -> str:
    return resources.files("pallet.compiler").joinpath("runheader.sh").read_text(encoding="utf-8")


_COMMENT_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def header(info: RunInfo, run_name: str, scripts_size: int, packages_size_: int,
           payload_sha256: str, unpacked: int, package_count: int, repo: bool,
           downloads_size: int = 0, download_count: int = 0) -> bytes:
    """The header text, which states its own size: rendered until that size holds."""
    def comment(text: str) -> str:
        return _COMMENT_UNSAFE.sub("?", text)

    values = {
        "TITLE": comment(f"Pallet offline bundle for node {info.node} (group {info.group}, "
                         f"{info.os}): phases {' '.join(info.phases)}"),
        "VERSION": comment(info.version), "SPEC": comment(info.spec),
        "RUNFILE": comment(run_name),
        "SCRIPTS": str(scripts_size), "PACKAGES": str(packages_size_),
        "DOWNLOADS": str(downloads_size), "DOWNLOAD_COUNT": str(download_count),
        "UNPACKED_KB": str(unpacked // 1024 + 64),
        "SHA256": payload_sha256,
        "NODE": quote_literal(info.node), "GROUP": quote_literal(info.group),
        "OS": quote_literal(info.os), "PHASES": quote_literal(" ".join(info.phases)),
        "SHELLS": quote_literal(" ".join(info.shells)), "SPEC_Q": quote_literal(info.spec),
        "SPEC_SHA256": info.spec_sha256, "PACKAGE_COUNT": str(package_count),
        "VERSION_Q": quote_literal(info.version), "REPO": "1" if repo else "0",
    }
    for phase in info.phases:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", phase):
            raise PalletError(f"phase :{phase}: an offline bundle names its phases' directories "
                              "after them; use letters, digits, '.', '_' and '-'")
    template = _template()
    size = 0
    for _ in range(4):
        text = re.sub(r"@([A-Z0-9_]+)@", lambda m: values[m.group(1)] if m.group(1) != "HEADER"
                      else str(size), template)
        data = text.encode()
        if len(data) == size:
            return data
        size = len(data)
    raise AssertionError("the header's size did not settle")


HEADER_VALUE = re.compile(rb"^PALLET_([A-Z0-9_]+)=([0-9a-f]+)$", re.M)


def read_header(data: bytes) -> dict[str, str] | None:
    """The numbers and digests a run file's header states (from its first bytes), or None
    when the data is not a Pallet run file."""
    if not data.startswith(b"#!/bin/sh\n# Pallet offline bundle"):
        return None
    head = data[:4096]
    found = {m.group(1).decode(): m.group(2).decode() for m in HEADER_VALUE.finditer(head)}
    if not all(k in found for k in ("HEADER", "SCRIPTS", "PACKAGES", "SHA256")):
        return None
    found.setdefault("DOWNLOADS", "0")    # run files made before they carried downloads
    return found


def stated_size(values: dict[str, str]) -> int:
    """The whole run file's size, as its header states it (read_header's values)."""
    return sum(int(values[k]) for k in ("HEADER", "SCRIPTS", "PACKAGES", "DOWNLOADS"))

