"""The compiler's data: what a phase records and what a bundle is compiled for.

Values of the spec language are plain Python data: str, int, float, bool, None, Keyword and
Symbol (from pallet.grammar.forms), tuple (vectors and lists), dict (maps), frozenset (sets),
plus functions, specs and ScriptForms (a `(script ...)` body with its resolver).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pallet.errors import Span


@dataclass(frozen=True)
class Action:
    """One thing a phase asked for, in the order it was asked."""

    kind: str                                   # "package", "file", "exec-script", ...
    args: tuple[Any, ...]                       # positional values, evaluated
    options: tuple[tuple[str, Any], ...] = ()   # keyword options, names without ':', as written
    span: Span | None = field(default=None, compare=False)
    label: str = ""                             # "file /opt/app/motd": status lines, explain
    # The crate functions the action was recorded through, outermost first, as
    # "name (file:line:col of the call)": explain shows where a spec asked for it.
    via: tuple[str, ...] = field(default=(), compare=False)
    # The outermost of those calls, in the user's file: where an error met while the action's
    # scripts are rendered is shown (the place inside the crate becomes a note).
    call: Span | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        """Where the action was asked for, outermost first: the call in the user's spec,
        each crate function it went through, the action itself, as in
        "spec.pallet:35:9 (via java/java) <crate java>:43:5". (Made once: rendering asks
        several times; functools.cached_property takes a lock each time.)"""
        made = self.__dict__.get("_where")
        if made is None:
            made = self._make_where()
            object.__setattr__(self, "_where", made)   # not a field: not in ==, hash, repr
        return made

    def _make_where(self) -> str:
        parts = []
        for call in self.via:
            name, _, place = call.partition(" (")
            parts.append(f"{place[:-1]} (via {name})")
        parts.append(str(self.span) if self.span is not None else "<unknown>")
        return " ".join(parts)

    def option(self, name: str, default: Any = None) -> Any:
        for key, value in self.options:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class NodeFacts:
    """What the compiler knows of one target node."""

    name: str
    group: str
    os_family: str
    os_version: str | None = None
    host: str | None = None          # the address Pallet reaches it at
    private_ip: str | None = None
    roles: frozenset[str] = frozenset()
    port: int = 22
    user: str = "root"
    private_key: str | None = None
    # The login and sudo passwords a spec's node-list gives (a str or a pallet.secret.Secret),
    # for `pallet lift`; never compiled into anything.
    password: Any = field(default=None, compare=False, repr=False)
    sudo_password: Any = field(default=None, compare=False, repr=False)
    # Where the node was described (its inventory entry), for errors about it.
    span: Span | None = field(default=None, compare=False, repr=False)

    # How the spec language names a node in messages, and what to write for its text.
    text_hint = "(node-name n) is its name, (node-ip n) its address"

    def describe(self) -> str:
        return f"the node {self.name!r}"
