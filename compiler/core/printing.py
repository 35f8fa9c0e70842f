"""Describing and printing values: how error messages name a value (describe), EDN text
(pr_str), the text `str` makes (str_of, text_of), and ex-info's error value."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pallet.grammar.forms import Keyword, Regex, Symbol
from pallet.stevedore import ScriptForms

from ..values import ArgError, Builtin, Fn, KeyMap


@dataclass(frozen=True, eq=False)
class ExInfo:
    """An error value made by `ex-info`, raised by `throw`."""

    message: str
    data: Any = None

    def describe(self) -> str:
        return f"the error {self.message!r}"


# ---- describing and printing values -------------------------------------------------------------


def truthy(value: Any) -> bool:
    return value is not None and value is not False


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_fn(x: Any) -> bool:
    return isinstance(x, (Fn, Builtin)) or hasattr(x, "invoke")


def _is_callable(x: Any) -> bool:
    return is_fn(x) or isinstance(x, (Keyword, dict, frozenset, set))


def describe(value: Any) -> str:
    """A value as error messages name it: `the string "x"`, `the number 5`, `nil`, `a map`."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, Fn):
        return f"the function {value.name}"
    if isinstance(value, Builtin):
        return f"the function {value.name}"
    kind = {str: "string", int: "number", float: "number", Keyword: "keyword", Symbol: "symbol",
            tuple: "vector", dict: "map", frozenset: "set"}.get(type(value))
    if kind is None:
        if hasattr(value, "describe"):
            return value.describe()
        return "a value of the compiler's own"
    try:
        text = pr_str(value)
    except RecursionError:
        text = ""
    if len(text) > 40 or not text:
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{article} {kind}" + (f" of {_plural(len(value), 'item')}" if kind in ("vector", "map", "set") else "")
    return f"the {kind} {text}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _items(n: int) -> str:
    return f"a vector of {_plural(n, 'item')}"


def float_str(x: float) -> str:
    """A float as Clojure (Java's Double.toString) prints it: 1.0, 1.0E20, 1.0E-4."""
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    a = abs(x)
    if a == 0 or 1e-3 <= a < 1e7:
        return repr(x)
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    e10 = len(digits) - 1 + exp
    return f"{'-' if sign else ''}{ds[0]}.{ds[1:] or '0'}E{e10}"


_PR_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b",
               "\f": "\\f"}
_PR_ESCAPE_RE = re.compile(r'["\\\n\t\r\b\f]')


def _set_order(s) -> list:
    return sorted(s, key=repr)


class NotText(Exception):
    """A value that has no text (a function, a spec, a node...), met by `str` and friends."""

    def __init__(self, value: Any):
        super().__init__()
        self.value = value


def pr_str(x: Any, readably: bool = True, strict: bool = False) -> str:
    """A value printed back as EDN text. Values that are not data (functions, specs, nodes,
    scripts) print as `#<what they are>` in messages; with `strict` (the language's str,
    pr-str, format...) they raise NotText instead."""
    t = type(x)
    if t is str:
        if not readably:
            return x
        return '"' + _PR_ESCAPE_RE.sub(lambda m: _PR_ESCAPES[m.group()], x) + '"'
    if x is None:
        return "nil"
    if x is True:
        return "true"
    if x is False:
        return "false"
    if t is int:
        return str(x)
    if t is float:
        if x != x:
            return "##NaN"
        if x in (math.inf, -math.inf):
            return "##Inf" if x > 0 else "##-Inf"
        return float_str(x)
    if t is Keyword:
        return ":" + x.name
    if t is Symbol:
        return x.name
    if t is tuple or t is list:
        return "[" + " ".join(pr_str(i, readably, strict) for i in x) + "]"
    if t is dict or t is KeyMap:  # (a map that is a key, values.py, prints as a map)
        return "{" + ", ".join(pr_str(k, readably, strict) + " " + pr_str(v, readably, strict)
                               for k, v in x.items()) + "}"
    if t is frozenset or t is set:
        return "#{" + " ".join(pr_str(i, readably, strict) for i in _set_order(x)) + "}"
    if t is Regex:
        return '#"' + x.pattern + '"'
    if isinstance(x, ExInfo):
        return (f"#error {{:message {pr_str(x.message)}, "
                f":data {pr_str(x.data, readably, strict)}}}")
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if strict:
        raise NotText(x)
    if isinstance(x, (Fn, Builtin)):
        return f"#<fn {x.name}>"
    return f"#<{describe(x)}>"


def str_of(x: Any, strict: bool = False) -> str:
    """One value as `str` shows it: nil is empty, strings as they are, the rest as pr-str
    (with `strict`, a value that is not data raises NotText)."""
    t = type(x)
    if t is str:
        return x
    if x is None:
        return ""
    if t is float:
        return float_str(x)
    if t is Symbol:
        return x.name
    if t is Regex:
        return x.pattern
    if isinstance(x, ExInfo):
        return x.message
    return pr_str(x, True, strict)


def _not_text(value: Any) -> str:
    """Why a value cannot be text, and what to write instead."""
    if isinstance(value, ScriptForms):
        return ("a (script ...) inside a collection is not text; (str the-script) makes its "
                "text, and ~ splices it into another script")
    if isinstance(value, (Fn, Builtin)):
        return f"{describe(value)} is not text; call it: ({value.name} ...)"
    hint = getattr(value, "text_hint", None)
    return f"{describe(value)} is not text" + (f"; {hint}" if hint else "")


def text_of(ev, x: Any, index: int | None, readably: bool | None = None) -> str:
    """The language's text of a value, for str, pr-str, print-str, format and join: a script
    is its shell text for the node being planned; a value that is not data is an error (at
    argument `index`); readably None is str's way (strings as they are), else pr-str's."""
    if type(x) is ScriptForms:
        from ..script_text import script_text
        x = script_text(ev, x, index)
    try:
        return str_of(x, True) if readably is None else pr_str(x, readably, True)
    except NotText as exc:
        raise ArgError(_not_text(exc.value), index) from None
