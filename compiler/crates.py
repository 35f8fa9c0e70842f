"""Where crates come from: the search path, installed Python packages, the bundled crates.

A crate is a `.pallet` file; its namespace is its path below the directory that holds it,
`/` read as `.` and `_` as `-` (`my_crate.pallet` is `my-crate`, `my/crate.pallet` is
`my.crate`). Crates are looked for, the first found winning:

1. the search path: the `--crate-path` directories, then those of `PALLET_PATH`;
2. third-party packages: each entry point of the group `pallet.crates` names a package and,
   optionally, a directory inside it: `mycrates = "mycrates:crates"` is the directory
   `crates/` of the package `mycrates`, `mycrates = "mycrates"` the package's own directory;
3. the crates bundled with Pallet (`pallet.crates`, not its `core/` script library).

Installed packages are only looked at when a crate is not on the search path (and to list
every crate): `importlib.metadata` reads every installed distribution, which takes time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from .spelling import closest

ENTRY_POINT_GROUP = "pallet.crates"
BUNDLED_PACKAGE = "pallet.crates"
_SKIP_DIRS = {"__pycache__", "node_modules"}


@dataclass(frozen=True)
class CrateFile:
    """One crate file and where it was found."""

    namespace: str
    origin: str            # "path", "package" or "bundled"
    where: str             # the search directory, "DIST VERSION" of a package, or "bundled"
    display: str           # the file name errors show
    resource: Any = field(repr=False, compare=False)   # a Path or an importlib Traversable
    entry_point: str | None = None                     # of a package: the entry point's name

    def read(self) -> str:
        from pallet.errors import PalletError
        try:
            return self.resource.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PalletError(f"{self.display}: cannot read: {exc}") from None

    @property
    def path(self) -> str:
        """The file's real path where it has one (the display name otherwise)."""
        return str(self.resource) if isinstance(self.resource, Path) else self.display

    @property
    def summary(self) -> str:
        return summary_of(self.read(), self.namespace)


@dataclass(frozen=True)
class Listed:
    """A crate as `pallet crates` shows it: the file that wins and those it shadows."""

    crate: CrateFile
    shadows: tuple[CrateFile, ...] = ()


# A crate is a .pallet file, or a Clojure file of Pallet's (pallet/crate/java.clj, a crate of
# Pallet 0.8 on the search path as it was written).
EXTENSIONS = (".pallet", ".clj")


def file_names(namespace: str) -> tuple[tuple[str, ...], ...]:
    """The relative paths (as parts) a namespace may be stored at, in the order they win."""
    parts = namespace.split(".")
    underscored = tuple(p.replace("-", "_") for p in parts)
    out: list[tuple[str, ...]] = []
    for ext in EXTENSIONS:
        for stem in (underscored, tuple(parts)):
            name = (*stem[:-1], stem[-1] + ext)
            if name not in out:
                out.append(name)
    return tuple(out)


def namespace_of(parts: Iterable[str]) -> str:
    """The namespace of a crate file at this relative path."""
    parts = list(parts)
    parts[-1] = parts[-1].rsplit(".", 1)[0]
    return ".".join(p.replace("_", "-") for p in parts)


class CrateIndex:
    """Finds crates by namespace, and lists them. Installed packages are read at most once,
    and only when needed."""

    def __init__(self, search_path: Iterable[Path] = ()):
        self.search = tuple(Path(p) for p in search_path)
        self._packages: list[tuple[str, str, Any]] | None = None   # (where, entry point, dir)
        self.problems: list[str] = []                          # broken entry points

    # ---- the three places -----------------------------------------------------------------

    def packages(self) -> list[tuple[str, str, Any]]:
        """(package, entry point, directory) of every `pallet.crates` entry point, in a
        stable order: by package name, then entry point name."""
        if self._packages is None:
            self._packages = []
            from importlib.metadata import entry_points
            eps = sorted(entry_points(group=ENTRY_POINT_GROUP),
                         key=lambda ep: ((ep.dist.name.lower() if ep.dist else ""), ep.name))
            for ep in eps:
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "an unknown package"
                directory = self._entry_point_dir(ep, f"{dist} (entry point {ep.name})")
                if directory is not None:
                    self._packages.append((dist, ep.name, directory))
        return self._packages

    def _entry_point_dir(self, ep, where: str):
        module, attr = ep.module, ep.attr
        try:
            directory = resources.files(module)
        except Exception as exc:  # an installed package that fails to import is its problem
            self.problems.append(f"{where}: cannot import {module}: {exc}")
            return None
        if attr:
            directory = directory.joinpath(*attr.split("."))
        if not directory.is_dir():
            self.problems.append(f"{where}: {ep.value} is not a directory of .pallet crates "
                                 f"(expected the directory {attr or '.'} in the package {module})")
            return None
        return directory

    @staticmethod
    def bundled_dir():
        return resources.files(BUNDLED_PACKAGE)

    # ---- finding one ----------------------------------------------------------------------

    def find(self, namespace: str) -> CrateFile | None:
        names = file_names(namespace)
        for directory in self.search:
            for parts in names:
                candidate = directory.joinpath(*parts)
                if candidate.is_file():
                    return CrateFile(namespace, "path", str(directory), str(candidate), candidate)
        for where, ep, directory in self.packages():
            for parts in names:
                candidate = directory.joinpath(*parts)
                if candidate.is_file():
                    return CrateFile(namespace, "package", where, _display(candidate, namespace),
                                     candidate, ep)
        if names[0][0] != "core":
            bundled = self.bundled_dir()
            for parts in names:
                candidate = bundled.joinpath(*parts)
                if candidate.is_file():
                    return CrateFile(namespace, "bundled", "bundled", f"<crate {namespace}>",
                                     candidate)
        return None

    def not_found(self, namespace: str) -> str:
        """The message for a namespace found nowhere."""
        places = "".join(f"{p}, " for p in self.search)
        known = {c.crate.namespace for c in self.list()}
        close = closest(namespace, known, cutoff=0.6)
        text = (f"no crate or file named {namespace!r} (looked in {places}installed crate "
                f"packages and the bundled crates)")
        if close:
            text += f"; did you mean {close!r}?"
        return text

    # ---- listing them all -----------------------------------------------------------------

    def list(self) -> list[Listed]:
        """Every reachable crate, by namespace, with the files it shadows."""
        found: dict[str, list[CrateFile]] = {}
        for directory in self.search:
            for parts, resource in _walk(directory):
                ns = namespace_of(parts)
                found.setdefault(ns, []).append(
                    CrateFile(ns, "path", str(directory), str(resource), resource))
        for where, ep, directory in self.packages():
            for parts, resource in _walk(directory):
                ns = namespace_of(parts)
                found.setdefault(ns, []).append(
                    CrateFile(ns, "package", where, _display(resource, ns), resource, ep))
        for parts, resource in _walk(self.bundled_dir(), skip=("core",)):
            ns = namespace_of(parts)
            found.setdefault(ns, []).append(
                CrateFile(ns, "bundled", "bundled", f"<crate {ns}>", resource))
        return [Listed(files[0], tuple(files[1:])) for ns, files in sorted(found.items())]


def _display(resource, namespace: str) -> str:
    return str(resource) if isinstance(resource, Path) else f"<crate {namespace}>"


def _walk(directory, skip: tuple[str, ...] = (), prefix: tuple[str, ...] = (), depth: int = 0):
    """(relative parts, resource) of every crate file (.pallet, .clj) below a directory (a Path or a
    Traversable), in name order; hidden directories and __pycache__ are skipped."""
    try:
        if not directory.is_dir():
            return
        entries = sorted(directory.iterdir(), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir():
            if depth < 4 and name not in _SKIP_DIRS and name not in skip:
                yield from _walk(entry, (), (*prefix, name), depth + 1)
        elif name.endswith(EXTENSIONS) and not name.startswith(EXTENSIONS):
            yield (*prefix, name), entry


# ---- the header comment and summaries -------------------------------------------------------

def header_of(text: str) -> list[str]:
    """The comment lines at the top of a crate file, without their `;`s (a line of only
    `;;` is an empty string, a paragraph break)."""
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            if out:
                break
            continue
        if not stripped.startswith(";"):
            break
        out.append(stripped.lstrip(";").strip())
    return out


_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)")


def summary_of(text: str, namespace: str = "") -> str:
    """A crate's one-line summary: the first sentence of its header comment, without a
    leading `NAME:`."""
    paragraph: list[str] = []
    for line in header_of(text):
        if not line:
            if paragraph:
                break
            continue
        paragraph.append(line)
    if not paragraph:
        return ""
    first = paragraph[0]
    names = {namespace, namespace.rsplit(".", 1)[-1], namespace.replace("-", "_")} - {""}
    head, sep, rest = first.partition(":")
    if sep and head.strip() in names and rest.strip():
        paragraph[0] = rest.strip()
    return first_sentence(" ".join(paragraph), fallback=paragraph[0])


def first_sentence(text: str, fallback: str | None = None) -> str:
    text = " ".join(text.split())
    m = _SENTENCE.match(text)
    if m:
        return m.group(1)
    return fallback if fallback is not None else text
