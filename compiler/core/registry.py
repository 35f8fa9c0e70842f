"""Argument checks shared by the core functions, and their registration in `CORE` (arity
checks and messages as every core function has them)."""
from __future__ import annotations

from typing import Any, Callable

from pallet.grammar.forms import ListForm

from ..values import ArgError, Builtin
from .printing import _is_callable, _set_order, describe, is_int, is_number


_MISSING = object()
_RANGE_LIMIT = 10_000_000


# ---- argument checks ----------------------------------------------------------------------------


def _num(x: Any, index: int | None) -> Any:
    if not is_number(x):
        raise ArgError(f"expected a number, got {describe(x)}", index)
    return x


def _int(x: Any, index: int | None) -> int:
    if not is_int(x):
        raise ArgError(f"expected an integer, got {describe(x)}", index)
    return x


def _string(x: Any, index: int | None) -> str:
    if type(x) is not str:
        raise ArgError(f"expected a string, got {describe(x)}", index)
    return x


def _map_or_nil(x: Any, index: int | None) -> dict:
    if x is None:
        return {}
    if type(x) is not dict:
        raise ArgError(f"expected a map, got {describe(x)}", index)
    return x


def _fn(x: Any, index: int | None) -> Any:
    if not _is_callable(x):
        raise ArgError(f"expected a function, got {describe(x)}", index)
    return x


def _hashable(x: Any, index: int | None, role: str = "a map key or a set member") -> Any:
    try:
        hash(x)
    except TypeError:
        raise ArgError(f"{describe(x)} cannot be {role}: maps, and collections holding maps, "
                       "are not hashable", index) from None
    return x


def seq_of(x: Any, index: int | None = None) -> tuple:
    """Anything sequential as a tuple: maps as [k v] pairs, sets sorted, strings as characters."""
    t = type(x)
    if t is tuple:
        return x
    if x is None:
        return ()
    if t is dict:
        return tuple(x.items())
    if t is frozenset or t is set:
        return tuple(_set_order(x))
    if t is str:
        return tuple(x)
    if t is list:
        return tuple(x)
    raise ArgError(f"expected a collection, got {describe(x)}", index)


def _at(form):
    """The call form with its arguments dropped: a function called on the user's behalf (by map,
    apply, ...) that complains about an argument is then located at the whole call, not at
    whichever argument happens to share its position."""
    if isinstance(form, ListForm) and len(form.items) > 1:
        return ListForm(form.items[:1], form.span)
    return form


def _call(ev, at, f, *args):
    return ev.apply(f, list(args), at)


# ---- registration -------------------------------------------------------------------------------

CORE: dict[str, Builtin] = {}


def _arity_text(lo: int, hi: int | None, n: int) -> str:
    if hi == lo:
        want = f"{lo} argument{'s' if lo != 1 else ''}"
    elif hi is None:
        want = f"at least {lo} argument{'s' if lo != 1 else ''}"
    else:
        want = f"{lo} to {hi} arguments"
    return f"takes {want}, got {n}"


def _wrap(name: str, fn: Callable, contextual: bool) -> Builtin:
    code = fn.__code__
    skip = 2 if contextual else 0
    npos = code.co_argcount - skip
    lo = npos - len(fn.__defaults__ or ())
    hi = None if code.co_flags & 0x04 else npos

    def check(n: int) -> None:
        if n < lo or (hi is not None and n > hi):
            raise ArgError(_arity_text(lo, hi, n))

    if contextual:
        def run(ev, form, *args):
            if len(args) < lo or (hi is not None and len(args) > hi):
                check(len(args))
            try:
                return fn(ev, form, *args)
            except OverflowError:
                raise ArgError("number too large") from None
    else:
        def run(*args):
            if len(args) < lo or (hi is not None and len(args) > hi):
                check(len(args))
            try:
                return fn(*args)
            except OverflowError:
                raise ArgError("number too large") from None
    run.__name__ = fn.__name__
    run.__wrapped__ = fn
    return Builtin(name, run, contextual)


def core(*names: str, contextual: bool = False):
    def register(fn):
        for name in names:
            CORE[name] = _wrap(name, fn, contextual)
        return fn
    return register


def _string_fn(*names: str, bare: bool = True, contextual: bool = False):
    """A clojure.string function: registered as str/x, string/x, clojure.string/x (and x)."""
    full = []
    for n in names:
        full += [f"str/{n}", f"string/{n}", f"clojure.string/{n}"] + ([n] if bare else [])
    return core(*full, contextual=contextual)
