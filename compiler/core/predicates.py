"""Equality, logic and type predicates, and keywords, symbols and names."""
from __future__ import annotations

import re

from pallet.grammar.forms import Keyword, Regex, Symbol

from ..values import ArgError, Builtin, Fn
from .printing import ExInfo, _is_callable, describe, is_fn, is_int, is_number, truthy
from .equality import equal
from .registry import _MISSING, _int, _num, _string, core


# ---- equality, logic, predicates ----------------------------------------------------------------


@core("=")
def _eq(x, *xs):
    return all(equal(x, y) for y in xs)


@core("not=")
def _not_eq(x, *xs):
    return not all(equal(x, y) for y in xs)


@core("not")
def _not(x):
    return not truthy(x)


@core("boolean")
def _boolean(x):
    return truthy(x)


@core("identity")
def _identity(x):
    return x


def _pred(name, test):
    core(name)(lambda x: bool(test(x)))


_pred("nil?", lambda x: x is None)
_pred("some?", lambda x: x is not None)
_pred("true?", lambda x: x is True)
_pred("false?", lambda x: x is False)
_pred("boolean?", lambda x: type(x) is bool)
_pred("string?", lambda x: type(x) is str)
_pred("number?", is_number)
_pred("integer?", is_int)
_pred("int?", is_int)
_pred("float?", lambda x: type(x) is float)
_pred("double?", lambda x: type(x) is float)
_pred("keyword?", lambda x: type(x) is Keyword)
_pred("symbol?", lambda x: type(x) is Symbol)
_pred("map?", lambda x: type(x) is dict)
_pred("vector?", lambda x: type(x) is tuple)
_pred("list?", lambda x: type(x) is tuple)
_pred("seq?", lambda x: type(x) is tuple)
_pred("sequential?", lambda x: type(x) is tuple)
_pred("set?", lambda x: type(x) is frozenset)
_pred("coll?", lambda x: type(x) in (tuple, dict, frozenset))
_pred("fn?", is_fn)
_pred("ifn?", _is_callable)


def _int_pred(name, test):
    core(name)(lambda x: test(_int(x, 0)))


_int_pred("even?", lambda n: n % 2 == 0)
_int_pred("odd?", lambda n: n % 2 == 1)


def _num_pred(name, test):
    core(name)(lambda x: test(_num(x, 0)))


_num_pred("pos?", lambda n: n > 0)
_num_pred("neg?", lambda n: n < 0)
_num_pred("zero?", lambda n: n == 0)


@core("type")
def _type(x):
    t = type(x)
    name = {type(None): "nil", bool: "boolean", int: "integer", float: "float", str: "string",
            Keyword: "keyword", Symbol: "symbol", tuple: "vector", dict: "map", frozenset: "set",
            Regex: "regex", ExInfo: "error"}.get(t)
    if name is None:
        if isinstance(x, (Fn, Builtin)):
            name = "fn"
        else:  # PhaseFn -> :phase-fn, ScriptForms -> :script, other values by their class
            name = re.sub(r"(?<!^)(?=[A-Z])", "-", t.__name__).lower()
            name = {"script-forms": "script", "node-facts": "node", "compute-ref": "compute",
                    "node-list-service": "compute"}.get(name, name)
    return Keyword(name)


# ---- keywords, symbols, names -------------------------------------------------------------------


def _split_name(name: str) -> tuple[str | None, str]:
    ns, sep, local = name.rpartition("/")
    return (ns, local) if sep and ns and local else (None, name)


def _qualified(ns, name) -> str:
    """(keyword ns name), (symbol ns name): "ns/name", or the name alone when ns is nil."""
    if ns is not None:
        _string(ns, 0)
    _string(name, 1)
    return f"{ns}/{name}" if ns else name


@core("keyword")
def _keyword(a, b=_MISSING):
    if b is not _MISSING:
        return Keyword(_qualified(a, b))
    if a is None:
        return None
    if type(a) is Keyword:
        return a
    if type(a) is Symbol:
        return Keyword(a.name)
    if type(a) is str:
        if not a:
            raise ArgError("a keyword needs a name, got the empty string", 0)
        return Keyword(a)
    raise ArgError(f"expected a string, keyword or symbol, got {describe(a)}", 0)


@core("symbol")
def _symbol(a, b=_MISSING):
    if b is not _MISSING:
        return Symbol(_qualified(a, b))
    if type(a) is Symbol:
        return a
    if type(a) is Keyword:
        return Symbol(a.name)
    if type(a) is str and a:
        return Symbol(a)
    raise ArgError(f"expected a string, keyword or symbol, got {describe(a)}", 0)


@core("name")
def _name(x):
    if type(x) is str:
        return x
    if type(x) in (Keyword, Symbol):
        return _split_name(x.name)[1]
    raise ArgError(f"expected a string, keyword or symbol, got {describe(x)}", 0)


@core("namespace")
def _namespace(x):
    if type(x) in (Keyword, Symbol):
        return _split_name(x.name)[0]
    raise ArgError(f"expected a keyword or symbol, got {describe(x)}", 0)
