"""Script functions: `defscript` declares one, `defimpl` adds an implementation for a set of
specialisers, and a call picks the implementation that fits the target most specifically.

The library is a plain registry. Bundled crates register into a base library; a script file's
own `defscript`/`defimpl` forms go into a copy of it, so compiling never changes shared state.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pallet.errors import PalletError, Span
from pallet.grammar.forms import Form

from .target import Target


@dataclass(frozen=True)
class ScriptFn:
    name: str
    params: tuple[str, ...]
    doc: str | None = None
    span: Span | None = field(default=None, compare=False)


@dataclass(eq=False)
class SpecScriptFn:
    """A script function defined in spec code (Pallet's pallet.script/defscript and defimpl):
    the defscript form and each defimpl form with the resolver of the place it was written.
    A script calls it as (~name args...); the lowering adopts its forms into its library."""

    name: str
    declaration: Form
    impls: list = field(default_factory=list)      # (defimpl form, resolver)
    span: Span | None = None

    def describe(self) -> str:
        return f"the script function {self.name}"


@dataclass(frozen=True)
class Impl:
    """One implementation. Each entry of `specialisers` is a set of alternatives (a keyword
    alone is a set of one); all entries must hold. An empty tuple is `:default`."""

    fn: str
    specialisers: tuple[frozenset[str], ...]
    params: tuple[str, ...]
    body: tuple[Form, ...]
    span: Span | None = field(default=None, compare=False)
    # The resolver for `~` inside the body: where the implementation was written.
    resolver: object = field(default=None, compare=False, repr=False)

    def score(self, target: Target) -> tuple[int, int] | None:
        """(how many specialisers, how specific they are), or None when one does not hold."""
        total = 0
        for alternatives in self.specialisers:
            weight = max((target.weight(s) for s in alternatives), default=0)
            if weight == 0:
                return None
            total += weight
        return (len(self.specialisers), total)

    def describe(self) -> str:
        if not self.specialisers:
            return ":default"
        return "[" + " ".join(
            ":" + next(iter(s)) if len(s) == 1 else "#{" + " ".join(sorted(":" + x for x in s)) + "}"
            for s in self.specialisers) + "]"


class ScriptLibrary:
    def __init__(self) -> None:
        self.functions: dict[str, ScriptFn] = {}
        self.impls: dict[str, list[Impl]] = {}
        # (id(impl), target) -> (impl, FuncDef, functions it called): shared by copies, since
        # an Impl never changes and copies only add implementations.
        self.lowered: dict[tuple, tuple] = {}

    def copy(self) -> "ScriptLibrary":
        other = ScriptLibrary()
        other.functions = dict(self.functions)
        other.impls = {k: list(v) for k, v in self.impls.items()}
        other.lowered = self.lowered
        return other

    def declare(self, fn: ScriptFn) -> None:
        self.functions[fn.name] = fn
        self.impls.setdefault(fn.name, [])

    def implement(self, impl: Impl) -> None:
        fn = self.functions.get(impl.fn)
        if fn is None:
            raise PalletError(f"defimpl of {impl.fn!r}, which no defscript declares; "
                              f"write (defscript {impl.fn} [...]) first", impl.span)
        if len(impl.params) != len(fn.params):
            raise PalletError(
                f"defimpl of {impl.fn!r} takes {len(impl.params)} arguments but its defscript "
                f"declares {len(fn.params)} ({' '.join(fn.params)})", impl.span)
        self.impls[impl.fn] = [i for i in self.impls[impl.fn]
                               if i.specialisers != impl.specialisers] + [impl]

    def select(self, name: str, target: Target, span: Span | None) -> Impl:
        scored = [(s, impl) for impl in self.impls.get(name, ()) if (s := impl.score(target))]
        if not scored:
            known = ", ".join(i.describe() for i in self.impls.get(name, ())) or "none"
            raise PalletError(f"no implementation of {name!r} fits the target ({target.describe()}); "
                              f"implementations: {known}", span)
        scored.sort(key=lambda pair: pair[0], reverse=True)
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            a, b = scored[0][1], scored[1][1]
            raise PalletError(f"ambiguous call of {name!r} for {target.describe()}: "
                              f"{a.describe()} and {b.describe()} fit equally well", span)
        return scored[0][1]
