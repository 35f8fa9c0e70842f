"""The forms the reader produces: EDN data that remembers where it was written.

Spans never take part in equality, so `Symbol("x")` read from two places compares equal.
Strings, numbers, booleans, nil, characters (one-character strings) and regular expressions
(`Regex`) are `Atom`s so that they, too, carry a span. Metadata written with `^` rides on
symbols and collections as `meta` (a MapForm), as in Clojure; like spans it is not compared.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from pallet.errors import Span


@dataclass(frozen=True)
class Regex:
    """A regular expression value: read from `#"..."` or made by `re-pattern`. The pattern
    is Python `re` syntax (a Java-only `(?<name>...)` group is read as `(?P<name>...)`)."""

    pattern: str

    def describe(self) -> str:
        return f'the regular expression #"{self.pattern}"'


@dataclass(frozen=True)
class Symbol:
    name: str
    span: Span | None = field(default=None, compare=False, repr=False)
    meta: "MapForm | None" = field(default=None, compare=False, repr=False)

    @property
    def namespace(self) -> str | None:
        ns, sep, _ = self.name.rpartition("/")
        return ns if sep and ns else None

    @property
    def local(self) -> str:
        ns, sep, local = self.name.rpartition("/")
        return local if sep and ns else self.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Keyword:
    name: str  # without the leading colon; may be "ns/name"
    span: Span | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return ":" + self.name


@dataclass(frozen=True)
class Atom:
    """A string, integer, float, boolean, nil or regular expression."""

    value: Union[str, int, float, bool, None, Regex]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ListForm:
    items: tuple["Form", ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    meta: "MapForm | None" = field(default=None, compare=False, repr=False)

    @property
    def head(self) -> "Form | None":
        return self.items[0] if self.items else None


@dataclass(frozen=True)
class VectorForm:
    items: tuple["Form", ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    meta: "MapForm | None" = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MapForm:
    """Keys and values alternate in `items`, as written."""

    items: tuple["Form", ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    meta: "MapForm | None" = field(default=None, compare=False, repr=False)

    @property
    def pairs(self) -> tuple[tuple["Form", "Form"], ...]:
        it = iter(self.items)
        return tuple(zip(it, it))


@dataclass(frozen=True)
class SetForm:
    items: tuple["Form", ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    meta: "MapForm | None" = field(default=None, compare=False, repr=False)


Form = Union[Symbol, Keyword, Atom, ListForm, VectorForm, MapForm, SetForm]


def head_name(form: object) -> str | None:
    """The symbol name at the head of a list form, if there is one."""
    if isinstance(form, ListForm) and form.items and isinstance(form.items[0], Symbol):
        return form.items[0].name
    return None


def span_of(form: object) -> Span | None:
    return getattr(form, "span", None)


def show(form: object) -> str:
    """Print a form back as source text (for messages and explain output)."""
    if isinstance(form, Symbol):
        return form.name
    if isinstance(form, Keyword):
        return ":" + form.name
    if isinstance(form, Atom):
        v = form.value
        if v is None:
            return "nil"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, Regex):
            return '#"' + v.pattern + '"'
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        return repr(v)
    if isinstance(form, ListForm):
        return "(" + " ".join(show(i) for i in form.items) + ")"
    if isinstance(form, VectorForm):
        return "[" + " ".join(show(i) for i in form.items) + "]"
    if isinstance(form, MapForm):
        return "{" + " ".join(show(i) for i in form.items) + "}"
    if isinstance(form, SetForm):
        return "#{" + " ".join(show(i) for i in form.items) + "}"
    return repr(form)
