"""The files an offline bundle carries for remote-file :url: downloaded once, when bundling,
into a cache by content, and checked against the checksum the spec gives, so that the node
installs them from its NODE.run and never reaches the network.

Cache ($PALLET_CACHE, else ~/.cache/pallet):

    downloads/sha256/<sha256>     a file, named by the checksum the spec gives
    downloads/sha512/<sha512>

A cached file is checked again each time it is used (a damaged cache is downloaded anew);
a download is written beside and renamed into place only once its checksum holds.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pallet.compiler.model import Action
from pallet.compiler.runfile import DownloadFile
from pallet.errors import PalletError, Span

TIMEOUT = 60
SCHEMES = ("http://", "https://", "ftp://", "file:")


@dataclass(frozen=True)
class WantedDownload:
    """A remote-file :url of a node's phases: its URL, the checksum the spec gives (a sha256
    or a sha512, as hex) and where the spec asked for it."""

    url: str
    digest: str
    span: Span | None = None

    @property
    def algorithm(self) -> str:
        return "sha512" if len(self.digest) == 128 else "sha256"


@dataclass(frozen=True)
class Fetched:
    file: DownloadFile
    path: Path


def wanted_downloads(actions: Iterable[Action]) -> list[WantedDownload]:
    """Every remote-file :url among the actions, in first-asked order (the same URL with two
    checksums is an error: one of them cannot hold)."""
    from pallet.crates import action_content
    from pallet.crates.actions import _choice, _options
    out: dict[str, WantedDownload] = {}
    for action in actions:
        if action.kind != "remote-file":
            continue
        opts = _options(action)
        if (opts.get("url") is None
                or _choice(action, opts, "action", ("create", "delete"), "create") == "delete"):
            continue
        # The compiler's own check: a :url needs its :sha256 or :sha512 (a located error).
        _, url, digest = action_content.remote_file_content(action, opts, _no_file)
        seen = out.get(url)
        if seen is not None and seen.digest != digest:
            raise PalletError(f"remote-file :url {url} is given two checksums ({seen.digest[:16]}... "
                              f"and {digest[:16]}...); an offline bundle carries one file for it",
                              action.span)
        out.setdefault(url, WantedDownload(url, digest, action.span))
    return list(out.values())


def _no_file(path: str) -> bytes:
    raise AssertionError("a remote-file :url reads no local file")


class DownloadCache:
    def __init__(self, cache: Path, log=lambda msg: None):
        self.root = cache / "downloads"
        self.log = log

    def fetch(self, wanted: WantedDownload) -> Fetched:
        """The URL's content, from the cache or downloaded now; checked either way."""
        path = self.root / wanted.algorithm / wanted.digest
        if path.is_file():
            sums = _digests(path, wanted.algorithm)
            if sums is not None and sums[0] == wanted.digest:
                return Fetched(DownloadFile(wanted.url, sums[1], path.stat().st_size), path)
            path.unlink(missing_ok=True)   # damaged: fetched again
        if not wanted.url.startswith(SCHEMES):
            raise PalletError(f"remote-file :url {wanted.url}: an offline bundle downloads it "
                              f"when bundling, and can fetch only {', '.join(SCHEMES)} URLs",
                              wanted.span)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log(f"pallet bundle: downloading {wanted.url}")
        fd, tmp = tempfile.mkstemp(prefix=f".{wanted.digest[:16]}.", dir=path.parent)
        given = hashlib.new(wanted.algorithm)
        content = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with urllib.request.urlopen(wanted.url, timeout=TIMEOUT) as response:
                        for block in iter(lambda: response.read(1 << 20), b""):
                            given.update(block)
                            content.update(block)
                            out.write(block)
                            size += len(block)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    why = (f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError)
                           else getattr(exc, "reason", None) or exc)
                    raise PalletError(
                        f"remote-file :url {wanted.url}: cannot download it when bundling "
                        f"({why}); an offline bundle carries the file, so this machine must "
                        "reach the URL (or give the file as :local-file)", wanted.span) from None
            if given.hexdigest() != wanted.digest:
                raise PalletError(
                    f"remote-file :url {wanted.url}: the downloaded file's {wanted.algorithm} is "
                    f"{given.hexdigest()}, not the :{wanted.algorithm} given ({wanted.digest}); "
                    "nothing was bundled", wanted.span)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Fetched(DownloadFile(wanted.url, content.hexdigest(), size), path)


def _digests(path: Path, algorithm: str) -> tuple[str, str] | None:
    """(the file's `algorithm` digest, its sha256), or None when it cannot be read."""
    given, content = hashlib.new(algorithm), hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                given.update(block)
                content.update(block)
    except OSError:
        return None
    return given.hexdigest(), content.hexdigest()
