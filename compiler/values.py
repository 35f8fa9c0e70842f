"""Value types the compiler's modules share, in a module that imports none of them: the
evaluator, the special forms, the core library, the specs and the plan all make or take
functions (Fn, Builtin), report bad arguments (ArgError) and meet namespaces and phases, so
these live below all of them and no module needs a late import to reach them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pallet.errors import PalletError, Span
from pallet.grammar.forms import Form, span_of


class KeyMap(dict):
    """A map that is the key of another map or a member of a set (Pallet's os-map is keyed by
    {:os ... :os-version ...} maps): a dict, hashable by its items, equal to the same dict."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    @staticmethod
    def of(value: Any) -> Any:
        """`value` made hashable where it is a map, or a vector or set holding maps."""
        t = type(value)
        if t is dict:
            return KeyMap({KeyMap.of(k): KeyMap.of(v) for k, v in value.items()})
        if t is tuple:
            return tuple(KeyMap.of(v) for v in value)
        if t is frozenset:
            return frozenset(KeyMap.of(v) for v in value)
        return value


class ArgError(Exception):
    """Raised by a builtin about one of its arguments (index from 0), or the whole call."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.message = message
        self.index = index


@dataclass(frozen=True, eq=False)
class Builtin:
    name: str
    fn: Callable[..., Any]
    # Builtins that need the evaluator (actions, session queries, higher-order functions)
    # receive it, and the call form, as their first two arguments.
    contextual: bool = False

    def describe(self) -> str:
        return f"the function {self.name}"


@dataclass(eq=False)
class Fn:
    name: str
    params: Form                  # a vector form, destructured at each call
    body: tuple[Form, ...]
    env: "Env"
    span: Span | None = None
    doc: str | None = None
    kind: str = "fn"              # "fn", "crate-fn"
    meta: Form | None = None      # the attr-map written before the arguments, unevaluated
    # {:pre [...] :post [...]} conditions, checked at each call (% is the result in :post)
    pre: tuple[Form, ...] = ()
    post: tuple[Form, ...] = ()
    # Every arity of a multi-arity fn, (params, body, pre, post) each; () for one arity, which
    # params and body hold (they hold the first arity too, for what shows a signature).
    arities: tuple[tuple[Form, tuple[Form, ...], tuple[Form, ...], tuple[Form, ...]], ...] = ()

    def describe(self) -> str:
        return f"the function {self.name}"


@dataclass(eq=False)
class Env:
    vars: dict[str, Any]
    parent: "Env | None" = None
    ns: "Namespace | None" = None

    def lookup(self, name: str) -> tuple[bool, Any]:
        env: Env | None = self
        while env is not None:
            if name in env.vars:
                return True, env.vars[name]
            env = env.parent
        return False, None

    def child(self, bindings: dict[str, Any] | None = None) -> "Env":
        return Env(dict(bindings or {}), self, self.ns)

    def names(self) -> set[str]:
        out: set[str] = set()
        env: Env | None = self
        while env is not None:
            out.update(env.vars)
            env = env.parent
        return out


@dataclass(eq=False)
class Namespace:
    name: str
    env: Env
    file: str
    aliases: dict[str, str] = field(default_factory=dict)
    # Names referred from one of Pallet's namespaces that this project lacks: local -> ns/name.
    unsupported: dict[str, str] = field(default_factory=dict)
    # Of one of Pallet's namespaces (pallet_api.py): every name Pallet's had.
    pallet_names: frozenset[str] = frozenset()

    def describe(self) -> str:
        return f"the namespace {self.name}"


@dataclass(eq=False)
class PhaseFn:
    """A phase: evaluated once per target node, it records actions."""

    body: tuple[Form, ...]
    env: Any
    span: Span | None
    name: str = "phase-fn"

    def invoke(self, ev, args, form):
        if ev.plan is None:
            raise PalletError("a phase function runs only while a phase is planned for a node",
                              span_of(form))
        result = None
        for f in self.body:
            result = ev.eval(f, self.env)
        return result

    def describe(self) -> str:
        return "a phase function"
