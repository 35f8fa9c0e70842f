"""Versions and the OS hierarchy, as Pallet's crates use them (pallet.versions,
pallet.version-dispatch, pallet.compute/os-hierarchy).

A version is a dotted string ("1.0.3") or a vector of numbers ([1 0 3]). A version spec is a
version, which matches it and its point versions ([12] matches 12.04), or a range of two
versions [[10] [12]] (inclusive; nil leaves an end open). The OS hierarchy is Pallet's
(:debian and :ubuntu derive from :debian-base, :centos from :rh-base, all from :linux, which
derives from :os), with this project's other families added where they belong.

    (os-map {{:os :linux} [6] {:os :ubuntu :os-version [[10] [12]]} [7]})
    (os-map-lookup m)        ; the value for the node being planned: the most specific match
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from pallet.grammar.forms import Keyword

from .values import ArgError, Builtin


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """A Clojure hierarchy: each tag's parents (keywords)."""

    parents: dict = field(default_factory=dict)

    def ancestors(self, tag: Any) -> set:
        out: set = set()
        todo = list(self.parents.get(tag, ()))
        while todo:
            t = todo.pop()
            if t not in out:
                out.add(t)
                todo.extend(self.parents.get(t, ()))
        return out

    def isa(self, child: Any, parent: Any) -> bool:
        from .core import equal
        if equal(child, parent):
            return True
        if isinstance(child, tuple) and isinstance(parent, tuple) and len(child) == len(parent):
            return all(self.isa(c, p) for c, p in zip(child, parent))
        return parent in self.ancestors(child)

    def derive(self, child: Any, parent: Any) -> "Hierarchy":
        if child == parent or child in self.ancestors(parent):
            raise ArgError(f"{child} cannot derive from {parent}: that would be a cycle")
        parents = dict(self.parents)
        parents[child] = frozenset(parents.get(child, frozenset()) | {parent})
        return Hierarchy(parents)

    def tags(self) -> set:
        return set(self.parents) | {p for ps in self.parents.values() for p in ps}

    def describe(self) -> str:
        return "a hierarchy"


def _hierarchy(pairs: str) -> Hierarchy:
    h = Hierarchy()
    for pair in pairs.split(","):
        child, parent = pair.split()
        h = h.derive(Keyword(child), Keyword(parent))
    return h


OS_HIERARCHY = _hierarchy(
    # Pallet's own
    "linux os, rh-base linux, debian-base linux, arch-base linux, suse-base linux, "
    "bsd-base linux, gentoo-base linux, centos rh-base, rhel rh-base, amzn-linux rh-base, "
    "fedora rh-base, debian debian-base, ubuntu debian-base, jeos debian-base, suse suse-base, "
    "arch arch-base, gentoo gentoo-base, darwin bsd-base, os-x bsd-base, "
    # the families this project names that Pallet's hierarchy did not have
    "rocky rh-base, alma rh-base, amzn rh-base, opensuse suse-base, sles suse-base, "
    "alpine linux, windows os")


# ---- version vectors --------------------------------------------------------------------------


def read_version_number(text: Any) -> int | None:
    digits = re.sub(r"[a-zA-Z_-]", "", str(text))
    return int(digits) if digits.isdigit() else None


def version_vector(text: Any) -> tuple:
    if not isinstance(text, str):
        raise ArgError(f"a version is a dotted string such as \"1.2\", not {text!r}", 0)
    return tuple(n for n in (read_version_number(p) for p in text.split(".")) if n is not None)


def as_version_vector(version: Any) -> Any:
    if isinstance(version, str):
        return version_vector(version)
    if isinstance(version, int) and not isinstance(version, bool):
        return (version,)   # a bare major version, as a crate's option may give it
    return version


def version_string(vector: Any) -> str:
    if isinstance(vector, str):
        return vector
    if not isinstance(vector, (tuple, list)) or not vector:
        raise ArgError(f"version-string takes a version vector such as [1 2], not {vector!r}", 0)
    return ".".join(str(v) for v in vector)


def as_version_string(version: Any) -> str:
    return version if isinstance(version, str) else version_string(version)


def version_less(v1: Any, v2: Any) -> bool:
    a, b = tuple(v1 or ()), tuple(v2 or ())
    for x, y in zip(a, b):
        if x < y:
            return True
        if x > y:
            return False
    return len(a) < len(b)


def _matches_version(version, spec) -> bool:
    version = tuple(version or ())
    for i, s in enumerate(spec):
        if i >= len(version) or version[i] != s:
            return False
    return True


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def version_matches(version: Any, spec: Any) -> bool:
    """A version vector against a spec: a version (and its point versions), or a range."""
    if spec is None:
        return True
    spec = tuple(spec)
    if spec and _is_number(spec[0]):
        return _matches_version(version, spec)
    if not spec:
        return True
    low = spec[0] if len(spec) > 0 else None
    high = spec[1] if len(spec) > 1 else None
    return ((low is None or not version_less(version, low))
            and (high is None or not version_less(high, version)))


def version_spec_less(a: Any, b: Any) -> bool:
    """Whether spec a is more specific than spec b."""
    a = tuple(a) if a is not None else ()
    b = tuple(b) if b is not None else ()
    if a and _is_number(a[0]):
        return len(a) > len(b) if (b and _is_number(b[0])) else True
    if b and _is_number(b[0]):
        return False
    from1, to1 = (a + (None, None))[:2]
    from2, to2 = (b + (None, None))[:2]
    return (not version_less(from1, from2) and not version_less(to2, to1) and a != b)


# ---- dispatch on os and version ---------------------------------------------------------------


def _get(m: dict, key: str):
    return m.get(Keyword(key)) if isinstance(m, dict) else None


def _match_less(h: Hierarchy, i: dict, j: dict) -> bool:
    """Pallet's order of two dispatch keys: the more specific one first."""
    osi, osj = _get(i, "os"), _get(j, "os")
    if osi is not None and osj is not None:
        if h.isa(osi, osj) and not h.isa(osj, osi):
            return True
        if h.isa(osj, osi) and not h.isa(osi, osj):
            return False
    if version_spec_less(_get(i, "os-version"), _get(j, "os-version")):
        return True
    if version_spec_less(_get(j, "os-version"), _get(i, "os-version")):
        return False
    return version_spec_less(_get(i, "version"), _get(j, "version"))


def _compare(h: Hierarchy):
    def cmp(a, b) -> int:
        if _match_less(h, a[0], b[0]):
            return -1
        if _match_less(h, b[0], a[0]):
            return 1
        return 0
    return functools.cmp_to_key(cmp)


def best_match(h: Hierarchy, entries, os: Any, os_version: Any, version: Any = None,
               os_key: str = "os", version_key: str = "os-version"):
    """The (key, value) of `entries` that fits os, os-version (and version) most specifically,
    or None."""
    fitting = []
    for key, value in entries:
        if not isinstance(key, dict):
            continue
        want = _get(key, os_key)
        if want is not None and not h.isa(os, want):
            continue
        if not version_matches(os_version, _get(key, version_key)):
            continue
        if version is not None or _get(key, "version") is not None:
            if not version_matches(version, _get(key, "version")):
                continue
        fitting.append((key, value))
    if not fitting:
        return None
    return sorted(fitting, key=_compare(h))[0]


@dataclass(frozen=True, eq=False)
class VersionMap:
    """Pallet's os-map: looked up by a map of :os and :os-version, it answers the value of
    the most specific key that fits, else the :default entry's."""

    data: dict
    hierarchy: Hierarchy = OS_HIERARCHY

    def lookup(self, key: Any, default: Any = None) -> Any:
        if not isinstance(key, dict):
            return self.data.get(key, default)
        found = best_match(self.hierarchy, self.data.items(), _get(key, "os"),
                           as_version_vector(_get(key, "os-version")))
        if found is not None:
            return found[1]
        if Keyword("default") in self.data:
            return self.data[Keyword("default")]
        return default

    def invoke(self, ev, args, form):
        if len(args) not in (1, 2):
            from pallet.errors import PalletError
            raise PalletError("an os-map as a function takes a key (and a default)", form.span)
        return self.lookup(*args)

    def describe(self) -> str:
        return f"an os-map of {len(self.data)} entries"


def _os_map(pairs):
    if not isinstance(pairs, dict):
        raise ArgError("os-map takes a map of {:os ... :os-version ...} keys to values", 0)
    return VersionMap(dict(pairs))


def _make_hierarchy():
    return Hierarchy()


def _derive(h, child, parent=None):
    if parent is None or not isinstance(h, Hierarchy):
        raise ArgError("derive takes a hierarchy, a tag and its parent (there is no global "
                       "hierarchy here): (derive (make-hierarchy) :child :parent)")
    return h.derive(child, parent)


def _isa(a, b, c=None):
    if c is None:  # no global hierarchy here: equality, item by item for vectors
        return Hierarchy().isa(a, b)
    if not isinstance(a, Hierarchy):
        raise ArgError("isa? with three arguments takes a hierarchy first", 0)
    return a.isa(b, c)


def _ancestors(h, tag=None):
    if tag is None:
        return None
    return frozenset(h.ancestors(tag)) or None


def _parents(h, tag=None):
    if tag is None:
        return None
    return frozenset(h.parents.get(tag, ())) or None


BUILTINS = {
    "make-hierarchy": Builtin("make-hierarchy", _make_hierarchy),
    "derive": Builtin("derive", _derive),
    "isa?": Builtin("isa?", _isa),
    "ancestors": Builtin("ancestors", _ancestors),
    "parents": Builtin("parents", _parents),
    "pallet.compute/os-hierarchy": OS_HIERARCHY,
    "pallet.version-dispatch/os-map": Builtin("os-map", _os_map),
    "pallet.versions/read-version-number": Builtin("read-version-number", read_version_number),
    "pallet.versions/version-vector": Builtin("version-vector", version_vector),
    "pallet.versions/as-version-vector": Builtin("as-version-vector", as_version_vector),
    "pallet.versions/version-string": Builtin("version-string", version_string),
    "pallet.versions/as-version-string": Builtin("as-version-string", as_version_string),
    "pallet.versions/version-less": Builtin("version-less", version_less),
    "pallet.versions/version-matches?": Builtin("version-matches?", version_matches),
    "pallet.versions/version-spec-less": Builtin("version-spec-less", version_spec_less),
}
