"""Stevedore forms as Pallet's scripts spell them, beyond the core table of lower.py: `defvar`,
`let` (arithmetic), `alias`, `apply`, `checked-script`, `chained-script`, maps with `assoc!`,
`merge!` and `get`, and the Pallet names this project does not support, each a located error.

Each statement form takes the Lowering and the form, as the methods of lower.py's table do;
lower.py merges STATEMENTS into that table (this module does not import lower.py).
"""
from __future__ import annotations

import re

from pallet.grammar.forms import (Atom, Form, Keyword, ListForm, MapForm, SetForm, Symbol,
                                  VectorForm, head_name, show)

from . import ast as A
from .names import err, munge

_ALIAS_NAME = re.compile(r"[A-Za-z0-9_.:+-]+\Z")

# Pallet's Stevedore (0.8) forms and operators with no meaning here, or none yet.
UNSUPPORTED = {
    "literally": "emitted its argument as it was; write (raw \"...\")",
    "new": "was for JavaScript-like targets",
    "<<": "was an infix operator pasted as text", ">>>": "was an infix operator pasted as text",
    "<<<": "was an infix operator pasted as text", "&": "was an infix operator pasted as text",
    "|": "was an infix operator pasted as text; write (pipe a b)",
}


def literal_value(low, form: Form, what: str) -> object:
    """The compile-time value of an option or a map: literal data, or `~x` of spec values."""
    if isinstance(form, Atom):
        return form.value
    if isinstance(form, Keyword):
        return form
    if isinstance(form, Symbol):
        return form.name
    if head_name(form) == "unquote":
        return low.resolver(form.items[1])
    if isinstance(form, MapForm):
        return {_key(literal_value(low, k, what)): literal_value(low, v, what) for k, v in form.pairs}
    if isinstance(form, (VectorForm, SetForm)):
        return [literal_value(low, f, what) for f in form.items]
    raise err(f"{what} must be known when the script is compiled (literal data or ~ of a spec "
              f"value), found {show(form)}", form)


def _key(value: object) -> object:
    return value.name if isinstance(value, (Keyword, Symbol)) else value


def _defvar(low, form):
    return low._assign(form)


def _let(low, form):
    """Stevedore's (let x expr): bash's arithmetic `let`, written as an assignment of
    `$(( ))` so that a result of 0 does not stop a script running with `set -e`."""
    args = low._args(form, 2, 2, "(let name arithmetic)")
    if not isinstance(args[0], Symbol):
        raise err("in a script, let is Stevedore's arithmetic (let x (+ x 1)); bindings "
                  "[name value] belong in the spec code around the script", args[0])
    name = munge(args[0].name, args[0].span)
    expr = low.arith(args[1])
    if isinstance(expr, A.ArithNum):
        return A.Assign("var", name, A.lit(str(expr.value)))
    return A.Assign("var", name, A.Word((A.Arith(expr),)))


def _alias(low, form):
    args = low._args(form, 2, 2, "(alias name (command ...))")
    name = args[0]
    if not (isinstance(name, (Symbol, Atom)) and _ALIAS_NAME.match(str(getattr(name, "name", None)
                                                                          or name.value))):
        raise err("alias needs a name of letters, digits and _ . : + -", name)
    if low.target.shell == "powershell":
        raise err("alias with a command line is not available in PowerShell (Set-Alias names "
                  "one command); write a defn", form)
    text = name.name if isinstance(name, Symbol) else name.value
    return A.Alias(text, low.stmt(args[1]))


def _apply(low, form):
    """(apply cmd a b coll): the command with the items of its last argument spliced."""
    args = low._args(form, 2, None, "(apply command args... collection)")
    last = args[-1]
    if head_name(last) == "unquote":
        spliced: tuple[Form, ...] = (ListForm((Symbol("unquote-splicing"), last.items[1]), last.span),)
    elif isinstance(last, VectorForm):
        spliced = last.items
    else:
        spliced = (last,)
    return low.stmt(ListForm((*args[:-1], *spliced), form.span))


def _chained_script(low, form):
    """(chained-script a b ...): each form runs only when the one before succeeded."""
    stmts = tuple(s for s in (low.stmt(f) for f in form.items[1:]) if s is not None)
    if not stmts:
        return None
    return stmts[0] if len(stmts) == 1 else A.AndOr("&&", stmts)


def _checked_script(low, form):
    """(checked-script "message" forms...), as Pallet's: says `message...`, runs the forms
    chained with &&, and on a failure says `#> message : FAIL` on standard error and exits
    1; else `#> message : SUCCESS`."""
    args = low._args(form, 1, None, '(checked-script "message" forms...)')
    message = literal_value(low, args[0], "the message of checked-script")
    if not isinstance(message, str):
        raise err("checked-script needs a message string first", args[0])
    chained = _chained_script(low, ListForm((Symbol("chained-script"), *args[1:]), form.span))
    if chained is None:
        return None
    fail = A.Group(A.Block((A.Print((A.lit(f"#> {message} : FAIL"),), redirects=A.TO_STDERR),
                            A.Command((A.lit("exit"), A.lit("1"))))))
    return A.Block((A.Print((A.lit(f"{message}..."),)),
                    A.AndOr("||", (A.Group(A.Block((chained,))), fail)),
                    A.Print((A.lit(f"#> {message} : SUCCESS"),))))


# ---- maps: bash 4 associative arrays, PowerShell hashtables -----------------------------------


def require_maps(low, form) -> None:
    if low.target.shell == "sh":
        raise err("maps (associative arrays) are not available in POSIX sh; compile for bash "
                  "or powershell", form)


def map_assign(low, form, kind: str, name: str, value: MapForm):
    require_maps(low, value)
    if kind not in ("var", "set", "local"):
        raise err(f"{form.items[0]} cannot hold a map; use var", value)
    low.maps.add(name)
    pairs = tuple((map_key(low, k), low.word(v)) for k, v in value.pairs)
    return A.MapAssign(name, pairs, local=kind == "local", in_function=low._fn_depth > 0)


def map_key(low, form: Form) -> A.Word:
    word = A.lit(form.name) if isinstance(form, Keyword) else low.word(form)
    if word.literal == "":
        raise err("a map key cannot be empty (bash refuses an empty subscript)", form)
    return word


def _map_name(low, form: Form) -> str:
    if not isinstance(form, Symbol):
        raise err("needs the map's name", form)
    return munge(form.name, form.span)


def _assoc(low, form):
    args = low._args(form, 3, 3, "(assoc! map key value)")
    require_maps(low, form)
    name = _map_name(low, args[0])
    return _declared(low, name, A.MapSet(name, map_key(low, args[1]), low.word(args[2])))


def _merge(low, form):
    args = low._args(form, 2, 2, "(merge! map {key value ...})")
    require_maps(low, form)
    name = _map_name(low, args[0])
    if not isinstance(args[1], MapForm):
        raise err("merge! takes a map literal {key value ...}", args[1])
    sets = tuple(A.MapSet(name, map_key(low, k), low.word(v)) for k, v in args[1].pairs)
    return _declared(low, name, *sets)


def _declared(low, name: str, *stmts: A.Stmt) -> A.Stmt:
    """A map first named by assoc! or merge! is made empty first, as Pallet's hash_set did;
    one made earlier in the script keeps its values."""
    if name in low.maps:
        return stmts[0] if len(stmts) == 1 else A.Block(stmts)
    low.maps.add(name)
    return A.Block((A.MapAssign(name, (), in_function=low._fn_depth > 0), *stmts))


def map_ref(low, form: ListForm) -> A.Word:
    """(get m key), or (aget m key) of a map."""
    args = low._args(form, 2, 2, f"({form.items[0]} map key)")
    require_maps(low, form)
    return A.Word((A.MapRef(_map_name(low, args[0]), map_key(low, args[1])),))


def _unsupported(low, form):
    name = form.items[0].name
    raise err(f"{name} is a Pallet Stevedore form not supported here: it {UNSUPPORTED[name]}", form)


STATEMENTS = {
    "defvar": _defvar, "let": _let, "alias": _alias, "apply": _apply,
    "chained-script": _chained_script, "checked-script": _checked_script,
    "assoc!": _assoc, "merge!": _merge,
    **{name: _unsupported for name in UNSUPPORTED},
}
