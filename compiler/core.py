"""The core library of the spec language: the functions over data a Clojure user reaches for.

`CORE` maps each name to a `Builtin`. Values are Python data: str, int, float, bool, None,
Keyword and Symbol, tuple (vectors and lists alike), dict (maps, in insertion order),
frozenset (sets), Fn/Builtin (functions), and `Regex` from `re-pattern`. No function mutates
an argument; "changed" collections are new ones.

Where this library departs from Clojure, on purpose:

- No ratios: `(/ 6 3)` is 2 and `(/ 7 2)` is 3.5 (an int when the division is exact).
- `=` compares numbers by value, so `(= 1 1.0)` is true (Clojure's `==`), but booleans are never
  equal to numbers: `(= 1 true)` is false, also inside collections, and `get`, `contains?`
  and `find` tell them apart. One limit remains: maps are Python dicts, so one map (or set)
  cannot hold both `1` and `true` (or `0` and `false`) as keys.
- Sequences are eager and are tuples; lists and vectors are one type, so `conj` always appends.
  A map is a sequence of `[key value]` pairs, a string of one-character strings, nil of nothing.
- A set is walked in a stable order (sorted by repr) so that output is reproducible.
- Regular expressions are Python `re` patterns, written `#"..."` (a `Regex`) or as strings;
  `(re-pattern "...")` makes one from a string. `split` takes a regular expression, as
  clojure.string/split does; `replace` with a string pattern replaces literal text, with a
  `re-pattern` it replaces matches (`$1` in the replacement names a group, as in Java).
- `parse-long`, `parse-int`, `parse-double` and `parse-boolean` return nil for text that is not
  a number (Clojure 1.11); `Integer/parseInt` and `Long/parseLong` fail with a located error.
- `format` follows java.util.Formatter (`%s %d %f %e %g %x %o %c %b %n %%`, flags `-#+ 0,(`,
  width, precision, `%2$s`, `%<s`); `%f` also accepts integers, and `%s` of nil is "null" as
  in Clojure. Date conversions (`%t`) are not supported.
- `type` returns a keyword: :nil :boolean :integer :float :string :keyword :symbol :vector
  :map :set :fn :regex (or another keyword for other values, e.g. :script).
- `(fail "message" args...)` stops evaluation with a located error (args are `format`ted);
  `(throw (ex-info "message" {...}))` and `(throw "message")` do the same.
- Names from clojure.string are registered under `str/`, `string/` and `clojure.string/`, and
  most also bare (`join`, `split`, `trim`, ...). Bare `replace` replaces in a string, or, given a
  map and a collection, is clojure.core/replace. `str/reverse` reverses a string; `reverse`
  returns a sequence.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Callable

from pallet.errors import PalletError
from pallet.grammar.forms import Keyword, ListForm, Regex, Symbol, span_of

from pallet.stevedore import ScriptForms

from .evaluator import ArgError, Builtin, Fn
from .values import KeyMap
from . import script_words

_MISSING = object()
_RANGE_LIMIT = 10_000_000


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
        from .script_text import script_text
        x = script_text(ev, x, index)
    try:
        return str_of(x, True) if readably is None else pr_str(x, readably, True)
    except NotText as exc:
        raise ArgError(_not_text(exc.value), index) from None


# ---- equality and ordering ----------------------------------------------------------------------


def equal(a: Any, b: Any) -> bool:
    """The language's `=`: Python equality, except that booleans never equal numbers."""
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return False  # not the same object, so two booleans that differ, or a bool and a non-bool
    if ta is tuple:
        return tb is tuple and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if ta is dict:
        if tb is not dict or len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not equal(v, b[k]):
                return False
            if type(k) is bool or is_int(k):  # {1 x} and {true x} share a Python key
                for k2 in b:
                    if k2 == k and (type(k2) is bool) != (type(k) is bool):
                        return False
        return True
    if ta is frozenset:
        return tb is frozenset and len(a) == len(b) and _hkey(a) == _hkey(b)
    return a == b


def _hkey(x: Any) -> Any:
    """A hashable key that keeps booleans apart from numbers, for distinct and friends."""
    t = type(x)
    if t is bool:
        return ("#bool", x)
    if t is tuple:
        return ("#vec",) + tuple(_hkey(i) for i in x)
    if t is dict:
        return ("#map", frozenset((_hkey(k), _hkey(v)) for k, v in x.items()))
    if t is frozenset:
        return ("#set", frozenset(_hkey(i) for i in x))
    return x


class _Incomparable(Exception):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b


def _ident_key(x):
    ns, sep, local = x.name.rpartition("/")
    return (bool(sep and ns), ns if sep else "", local if sep and ns else x.name)


def compare(a: Any, b: Any) -> int:
    """Clojure's compare: nil first, numbers, strings, keywords, symbols, booleans, and vectors
    (shorter first, then item by item)."""
    if a is None:
        return 0 if b is None else -1
    if b is None:
        return 1
    ta, tb = type(a), type(b)
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if ta is tb:
        if ta is str or ta is bool:
            return (a > b) - (a < b)
        if ta is Keyword or ta is Symbol:
            ka, kb = _ident_key(a), _ident_key(b)
            return (ka > kb) - (ka < kb)
        if ta is tuple:
            if len(a) != len(b):
                return -1 if len(a) < len(b) else 1
            for x, y in zip(a, b):
                c = compare(x, y)
                if c:
                    return c
            return 0
    raise _Incomparable(a, b)


def _sorted(items: tuple, index: int | None, cmp: Callable[[Any, Any], int] = compare, key=None) -> tuple:
    values = items if key is None else tuple(key(i) for i in items)
    if cmp is compare and values:
        first = type(values[0])
        if (first is str and all(type(v) is str for v in values)) or (
                first in (int, float) and all(type(v) in (int, float) for v in values)):
            if key is None:
                return tuple(sorted(items))
            order = sorted(range(len(items)), key=values.__getitem__)
            return tuple(items[i] for i in order)
    try:
        if key is None:
            return tuple(sorted(items, key=functools.cmp_to_key(cmp)))
        ck = functools.cmp_to_key(cmp)
        order = sorted(range(len(items)), key=lambda i: ck(values[i]))
        return tuple(items[i] for i in order)
    except _Incomparable as exc:
        raise ArgError(f"cannot compare {describe(exc.a)} with {describe(exc.b)}", index) from None


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


# ---- numbers ------------------------------------------------------------------------------------


@core("+")
def _add(*xs):
    total = 0
    for i, x in enumerate(xs):
        total += _num(x, i)
    return total


@core("-")
def _sub(x, *xs):
    _num(x, 0)
    if not xs:
        return -x
    for i, y in enumerate(xs, 1):
        x -= _num(y, i)
    return x


@core("*")
def _mul(*xs):
    total = 1
    for i, x in enumerate(xs):
        total *= _num(x, i)
    return total


def _div2(a, b, index):
    if b == 0:
        raise ArgError("division by zero", index)
    if is_int(a) and is_int(b):
        q, r = divmod(a, b)
        if r == 0:
            return q
    return a / b


@core("/")
def _divide(x, *xs):
    _num(x, 0)
    if not xs:
        return _div2(1, x, 0)
    for i, y in enumerate(xs, 1):
        x = _div2(x, _num(y, i), i)
    return x


def _quot(a, b):
    _num(a, 0)
    if _num(b, 1) == 0:
        raise ArgError("division by zero", 1)
    if is_int(a) and is_int(b):
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return float(math.trunc(a / b))


core("quot")(_quot)


@core("rem")
def _rem(a, b):
    q = _quot(a, b)
    if is_int(a) and is_int(b):
        return a - b * q
    return math.fmod(a, b)


@core("mod")
def _mod(a, b):
    _num(a, 0)
    if _num(b, 1) == 0:
        raise ArgError("division by zero", 1)
    return a % b


@core("inc")
def _inc(x):
    return _num(x, 0) + 1


@core("dec")
def _dec(x):
    return _num(x, 0) - 1


@core("abs")
def _abs(x):
    return abs(_num(x, 0))


@core("max")
def _max(x, *xs):
    best = _num(x, 0)
    for i, y in enumerate(xs, 1):
        if _num(y, i) > best:
            best = y
    return best


@core("min")
def _min(x, *xs):
    best = _num(x, 0)
    for i, y in enumerate(xs, 1):
        if _num(y, i) < best:
            best = y
    return best


def _chain(op):
    def compare_all(x, *xs):
        _num(x, 0)
        ok = True
        for i, y in enumerate(xs, 1):
            _num(y, i)
            if ok and not op(x, y):
                ok = False
            x = y
        return ok
    return compare_all


core("<")(_chain(lambda a, b: a < b))
core(">")(_chain(lambda a, b: a > b))
core("<=")(_chain(lambda a, b: a <= b))
core(">=")(_chain(lambda a, b: a >= b))
core("==")(_chain(lambda a, b: a == b))


@core("compare")
def _compare(a, b):
    try:
        return compare(a, b)
    except _Incomparable:
        raise ArgError(f"cannot compare {describe(a)} with {describe(b)}") from None


@core("int")
def _to_int(x):
    if is_int(x):
        return x
    if type(x) is float:
        if x != x or x in (math.inf, -math.inf):
            raise ArgError(f"cannot make an integer of {float_str(x)}", 0)
        return int(x)
    raise ArgError(f"expected a number, got {describe(x)}", 0)


@core("double", "float")
def _to_float(x):
    return float(_num(x, 0))


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


@core("keyword")
def _keyword(a, b=_MISSING):
    if b is not _MISSING:
        if a is not None:
            _string(a, 0)
        _string(b, 1)
        return Keyword(f"{a}/{b}" if a else b)
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
        if a is not None:
            _string(a, 0)
        _string(b, 1)
        return Symbol(f"{a}/{b}" if a else b)
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


# ---- maps and collections -----------------------------------------------------------------------


def _bool_clash(m, k) -> bool:
    """True when k is found in m only because Python equates true with 1 (or false with 0)."""
    if k is True or k is False or (type(k) is int and (k == 0 or k == 1)):
        return not any(type(stored) is type(k) and stored == k for stored in m)
    return False


def _get(m, k, default=None):
    t = type(m)
    if t is dict:
        try:
            value = m.get(k, _MISSING)
        except TypeError:  # a map as the key: found if the map holds it (values.KeyMap)
            try:
                value = m.get(KeyMap.of(k), _MISSING)
            except TypeError:
                return default
        if value is _MISSING or _bool_clash(m, k):
            return default
        return value
    if t is tuple or t is str:
        if is_int(k) and 0 <= k < len(m):
            return m[k]
        return default
    if t is frozenset:
        try:
            return k if k in m and not _bool_clash(m, k) else default
        except TypeError:
            return default
    return default


@core("get")
def _get_fn(m, k, default=None):
    return _get(m, k, default)


@core("get-in")
def _get_in(m, ks, default=None):
    for k in seq_of(ks, 1):
        m = _get(m, k, _MISSING)
        if m is _MISSING:
            return default
    return m


def _assoc1(m, k, v, m_index, k_index):
    t = type(m)
    if m is None or t is dict:
        k = _hashable(k, k_index, "a map key")
        out = dict(m) if m else {}
        out[k] = v
        return out
    if t is tuple:
        if not is_int(k):
            raise ArgError(f"a vector is indexed by an integer, got {describe(k)}", k_index)
        if not 0 <= k <= len(m):
            raise ArgError(f"index {k} is out of range for {_items(len(m))}", k_index)
        return m + (v,) if k == len(m) else m[:k] + (v,) + m[k + 1:]
    raise ArgError(f"expected a map or a vector, got {describe(m)}", m_index)


@core("assoc")
def _assoc(m, k, v, *kvs):
    if len(kvs) % 2:
        raise ArgError("needs a value for every key", 3 + len(kvs) - 1)
    m = _assoc1(m, k, v, 0, 1)
    for i in range(0, len(kvs), 2):
        m = _assoc1(m, kvs[i], kvs[i + 1], 0, 3 + i)
    return m


def _path(ks, index):
    path = seq_of(ks, index)
    if not path:
        raise ArgError("the path of keys is empty", index)
    return path


def _in_path(m, path, depth, fn):
    """Replace the value at path[depth:] in m by fn(old value), making maps where needed."""
    k = path[depth]
    if m is not None and type(m) not in (dict, tuple):
        where = pr_str(tuple(path[:depth]))
        raise ArgError(f"cannot change {pr_str(k)} inside {describe(m)} (at {where})", 0)
    if type(m) is tuple and not (is_int(k) and 0 <= k <= len(m)):
        where = pr_str(tuple(path[:depth]))
        raise ArgError(f"cannot change {pr_str(k)} inside {_items(len(m))} (at {where})", 1)
    inner = _get(m, k)
    new = fn(inner) if depth == len(path) - 1 else _in_path(inner, path, depth + 1, fn)
    return _assoc1(m, k, new, 0, 1)


@core("assoc-in")
def _assoc_in(m, ks, v):
    return _in_path(m, _path(ks, 1), 0, lambda old: v)


@core("dissoc")
def _dissoc(m, *ks):
    if m is None:
        return None
    if type(m) is not dict:
        raise ArgError(f"expected a map, got {describe(m)}", 0)
    out = dict(m)
    for k in ks:
        try:
            out.pop(k, None)
        except TypeError:
            pass
    return out


@core("update", contextual=True)
def _update(ev, form, m, k, f, *args):
    _fn(f, 2)
    if m is not None and type(m) not in (dict, tuple):
        raise ArgError(f"expected a map or a vector, got {describe(m)}", 0)
    return _assoc1(m, k, _call(ev, _at(form), f, _get(m, k), *args), 0, 1)


@core("update-in", contextual=True)
def _update_in(ev, form, m, ks, f, *args):
    _fn(f, 2)
    at = _at(form)
    return _in_path(m, _path(ks, 1), 0, lambda old: _call(ev, at, f, old, *args))


@core("merge")
def _merge(*maps):
    out = None
    for i, m in enumerate(maps):
        if m is None:
            continue
        if type(m) is not dict:
            raise ArgError(f"expected a map, got {describe(m)}", i)
        if out is None:
            out = dict(m)
        else:
            out.update(m)
    return out


@core("merge-with", contextual=True)
def _merge_with(ev, form, f, *maps):
    _fn(f, 0)
    at = _at(form)
    out = None
    for i, m in enumerate(maps, 1):
        if m is None:
            continue
        if type(m) is not dict:
            raise ArgError(f"expected a map, got {describe(m)}", i)
        if out is None:
            out = dict(m)
            continue
        for k, v in m.items():
            out[k] = _call(ev, at, f, out[k], v) if k in out else v
    return out


def _conj1(coll, x, index):
    t = type(coll)
    if t is tuple:
        return coll + (x,)
    if t is dict:
        if type(x) is dict:
            out = dict(coll)
            out.update(x)
            return out
        if type(x) is tuple and len(x) == 2:
            out = dict(coll)
            out[_hashable(x[0], index, "a map key")] = x[1]
            return out
        if x is None:
            return coll
        raise ArgError(f"adding to a map takes [key value] pairs or maps, got {describe(x)}", index)
    if t is frozenset:
        return coll | {_hashable(x, index, "a set member")}
    raise ArgError(f"expected a vector, map or set, got {describe(coll)}", 0)


@core("conj")
def _conj(coll=(), *xs):
    if coll is None:
        return tuple(xs)
    if type(coll) is tuple:
        return coll + xs
    if type(coll) not in (dict, frozenset):
        raise ArgError(f"expected a vector, map or set, got {describe(coll)}", 0)
    for i, x in enumerate(xs, 1):
        coll = _conj1(coll, x, i)
    return coll


@core("disj")
def _disj(s, *xs):
    if s is None:
        return None
    if type(s) is not frozenset:
        raise ArgError(f"expected a set, got {describe(s)}", 0)
    out = set(s)
    for x in xs:
        try:
            out.discard(x)
        except TypeError:
            pass
    return frozenset(out)


@core("into")
def _into(to, frm):
    items = seq_of(frm, 1)
    if to is None:
        return items
    t = type(to)
    if t is tuple:
        return to + items
    if t is dict:
        out = dict(to)
        for x in items:
            if type(x) is tuple and len(x) == 2:
                out[_hashable(x[0], 1, "a map key")] = x[1]
            elif type(x) is dict:
                out.update(x)
            elif x is not None:
                raise ArgError(f"into a map takes [key value] pairs or maps, got {describe(x)}", 1)
        return out
    if t is frozenset:
        return to | frozenset(_hashable(x, 1, "a set member") for x in items)
    raise ArgError(f"expected a vector, map or set, got {describe(to)}", 0)


@core("keys")
def _keys(m):
    m = _map_or_nil(m, 0)
    return tuple(m) or None


@core("vals")
def _vals(m):
    m = _map_or_nil(m, 0)
    return tuple(m.values()) or None


@core("contains?")
def _contains(coll, k):
    t = type(coll)
    if t is dict or t is frozenset:
        try:
            return k in coll and not _bool_clash(coll, k)
        except TypeError:
            return False
    if t is tuple or t is str:
        return is_int(k) and 0 <= k < len(coll)
    if coll is None:
        return False
    raise ArgError(f"expected a map, set or vector, got {describe(coll)}", 0)


@core("find")
def _find(m, k):
    m = _map_or_nil(m, 0)
    try:
        return (k, m[k]) if k in m and not _bool_clash(m, k) else None
    except TypeError:
        return None


@core("select-keys")
def _select_keys(m, ks):
    m = _map_or_nil(m, 0)
    out = {}
    for k in seq_of(ks, 1):
        try:
            if k in m:
                out[k] = m[k]
        except TypeError:
            pass
    return out


@core("zipmap")
def _zipmap(ks, vs):
    out = {}
    for k, v in zip(seq_of(ks, 0), seq_of(vs, 1)):
        out[_hashable(k, 0, "a map key")] = v
    return out


@core("update-keys", contextual=True)
def _update_keys(ev, form, m, f):
    m, at = _map_or_nil(m, 0), _at(form)
    _fn(f, 1)
    out = {}
    for k, v in m.items():
        out[_hashable(_call(ev, at, f, k), 1, "a map key")] = v
    return out


@core("update-vals", contextual=True)
def _update_vals(ev, form, m, f):
    m, at = _map_or_nil(m, 0), _at(form)
    _fn(f, 1)
    return {k: _call(ev, at, f, v) for k, v in m.items()}


@core("vec")
def _vec(coll):
    return seq_of(coll, 0)


@core("vector", "list")
def _vector(*xs):
    return xs


@core("hash-map", "array-map")
def _hash_map(*kvs):
    if len(kvs) % 2:
        raise ArgError("needs a value for every key", len(kvs) - 1)
    out = {}
    for i in range(0, len(kvs), 2):
        out[_hashable(kvs[i], i, "a map key")] = kvs[i + 1]
    return out


@core("hash-set")
def _hash_set(*xs):
    return frozenset(_hashable(x, i, "a set member") for i, x in enumerate(xs))


@core("set")
def _set(coll):
    items = seq_of(coll, 0)
    for x in items:
        _hashable(x, 0, "a set member")
    return frozenset(items)


@core("empty")
def _empty(coll):
    t = type(coll)
    if t in (tuple, dict, frozenset):
        return t()
    if coll is None or t is str:
        return None
    raise ArgError(f"expected a collection, got {describe(coll)}", 0)


@core("frequencies")
def _frequencies(coll):
    out: dict = {}
    for x in seq_of(coll, 0):
        _hashable(x, 0)
        out[x] = out.get(x, 0) + 1
    return out


@core("group-by", contextual=True)
def _group_by(ev, form, f, coll):
    _fn(f, 0)
    at = _at(form)
    out: dict = {}
    for x in seq_of(coll, 1):
        k = _hashable(_call(ev, at, f, x), 0, "a map key (group-by makes a map)")
        out[k] = out.get(k, ()) + (x,)
    return out


# ---- sequences ----------------------------------------------------------------------------------


@core("seq")
def _seq(coll):
    return seq_of(coll, 0) or None


@core("count")
def _count(coll):
    if coll is None:
        return 0
    if type(coll) in (tuple, dict, frozenset, str):
        return len(coll)
    raise ArgError(f"expected a collection or a string, got {describe(coll)}", 0)


@core("empty?")
def _is_empty(coll):
    return _count(coll) == 0


@core("not-empty")
def _not_empty(coll):
    return coll if _count(coll) else None


@core("first")
def _first(coll):
    items = seq_of(coll, 0)
    return items[0] if items else None


@core("second")
def _second(coll):
    items = seq_of(coll, 0)
    return items[1] if len(items) > 1 else None


@core("last")
def _last(coll):
    items = seq_of(coll, 0)
    return items[-1] if items else None


@core("rest")
def _rest(coll):
    return seq_of(coll, 0)[1:]


@core("next")
def _next(coll):
    return seq_of(coll, 0)[1:] or None


@core("butlast")
def _butlast(coll):
    return seq_of(coll, 0)[:-1] or None


@core("cons")
def _cons(x, coll):
    return (x,) + seq_of(coll, 1)


@core("nth")
def _nth(coll, i, default=_MISSING):
    if type(coll) not in (tuple, str) and coll is not None:
        raise ArgError(f"expected a vector or a string, got {describe(coll)}", 0)
    _int(i, 1)
    if coll is not None and 0 <= i < len(coll):
        return coll[i]
    if default is not _MISSING:
        return default
    if coll is None:
        return None
    what = _items(len(coll)) if type(coll) is tuple else f"a string of length {len(coll)}"
    raise ArgError(f"index {i} is out of range for {what}", 1)


@core("peek")
def _peek(coll):
    return _last(coll)


@core("take")
def _take(n, coll):
    _int(n, 0)
    return seq_of(coll, 1)[:max(n, 0)]


@core("drop")
def _drop(n, coll):
    _int(n, 0)
    return seq_of(coll, 1)[max(n, 0):]


@core("take-last")
def _take_last(n, coll):
    _int(n, 0)
    items = seq_of(coll, 1)
    return items[len(items) - n:] if n > 0 else ()


@core("drop-last")
def _drop_last(a, b=_MISSING):
    n, coll, ci = (1, a, 0) if b is _MISSING else (_int(a, 0), b, 1)
    items = seq_of(coll, ci)
    return items[:len(items) - n] if n > 0 else items


@core("reverse")
def _reverse(coll):
    return seq_of(coll, 0)[::-1]


@core("concat")
def _concat(*colls):
    out: tuple = ()
    for i, c in enumerate(colls):
        out += seq_of(c, i)
    return out


@core("range")
def _range(a=_MISSING, b=_MISSING, step=1):
    if a is _MISSING:
        raise ArgError("an endless range cannot be made; give an end: (range n)")
    start, end = (0, a) if b is _MISSING else (a, b)
    _num(start, 0)
    _num(end, 0 if b is _MISSING else 1)
    _num(step, 2)
    if step == 0:
        if start == end:
            return ()
        raise ArgError("a step of 0 never reaches the end", 2)
    count = max(0, math.ceil((end - start) / step))
    if count > _RANGE_LIMIT:
        raise ArgError(f"a range of {count} numbers is too large (at most {_RANGE_LIMIT})")
    if is_int(start) and is_int(end) and is_int(step):
        return tuple(range(start, end, step))
    out = []
    x = start
    while (x < end) if step > 0 else (x > end):
        out.append(x)
        x += step
    return tuple(out)


@core("repeat")
def _repeat(n, x):
    _int(n, 0)
    if n > _RANGE_LIMIT:
        raise ArgError(f"at most {_RANGE_LIMIT} repetitions", 0)
    return (x,) * max(n, 0)


@core("distinct")
def _distinct(coll):
    seen: set = set()
    out = []
    for x in seq_of(coll, 0):
        try:
            key = _hkey(x)
            if key in seen:
                continue
            seen.add(key)
        except TypeError:  # a map inside a vector, say: compare the slow way
            if any(equal(x, y) for y in out):
                continue
        out.append(x)
    return tuple(out)


@core("interpose")
def _interpose(sep, coll):
    out = []
    for i, x in enumerate(seq_of(coll, 1)):
        if i:
            out.append(sep)
        out.append(x)
    return tuple(out)


@core("interleave")
def _interleave(*colls):
    seqs = [seq_of(c, i) for i, c in enumerate(colls)]
    return tuple(x for group in zip(*seqs) for x in group)


@core("flatten")
def _flatten(x):
    if type(x) is not tuple:
        return ()
    out: list = []
    stack = [iter(x)]
    while stack:
        for item in stack[-1]:
            if type(item) is tuple:
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return tuple(out)


@core("partition")
def _partition(n, a, b=_MISSING):
    step, coll, ci = (n, a, 1) if b is _MISSING else (a, b, 2)
    if _int(n, 0) <= 0:
        raise ArgError("the size must be positive", 0)
    if _int(step, 1) <= 0:
        raise ArgError("the step must be positive", 1)
    items = seq_of(coll, ci)
    return tuple(items[i:i + n] for i in range(0, len(items) - n + 1, step))


@core("partition-all")
def _partition_all(n, a, b=_MISSING):
    step, coll, ci = (n, a, 1) if b is _MISSING else (a, b, 2)
    if _int(n, 0) <= 0:
        raise ArgError("the size must be positive", 0)
    if _int(step, 1) <= 0:
        raise ArgError("the step must be positive", 1)
    items = seq_of(coll, ci)
    return tuple(items[i:i + n] for i in range(0, len(items), step))


@core("sort", contextual=True)
def _sort(ev, form, a, b=_MISSING):
    if b is _MISSING:
        return _sorted(seq_of(a, 0), 0)
    _fn(a, 0)
    return _sorted(seq_of(b, 1), 1, _user_cmp(ev, _at(form), a))


@core("sort-by", contextual=True)
def _sort_by(ev, form, keyfn, a, b=_MISSING):
    _fn(keyfn, 0)
    at = _at(form)
    coll, ci, cmp = (a, 1, compare) if b is _MISSING else (b, 2, _user_cmp(ev, at, _fn(a, 1)))
    items = seq_of(coll, ci)
    return _sorted(items, ci, cmp, key=lambda x: _call(ev, at, keyfn, x))


def _user_cmp(ev, at, f):
    """A comparator from a function: a number (compare) or a boolean (like <)."""
    def cmp(x, y):
        r = _call(ev, at, f, x, y)
        if is_number(r):
            return (r > 0) - (r < 0)
        if truthy(r):
            return -1
        return 1 if truthy(_call(ev, at, f, y, x)) else 0
    return cmp


# ---- functions of functions ---------------------------------------------------------------------


@core("map", contextual=True)
def _map(ev, form, f, coll, *colls):
    _fn(f, 0)
    at = _at(form)
    if not colls:
        return tuple(_call(ev, at, f, x) for x in seq_of(coll, 1))
    seqs = [seq_of(coll, 1)] + [seq_of(c, i) for i, c in enumerate(colls, 2)]
    return tuple(_call(ev, at, f, *xs) for xs in zip(*seqs))


CORE["mapv"] = Builtin("mapv", CORE["map"].fn, True)


@core("map-indexed", contextual=True)
def _map_indexed(ev, form, f, coll):
    _fn(f, 0)
    at = _at(form)
    return tuple(_call(ev, at, f, i, x) for i, x in enumerate(seq_of(coll, 1)))


@core("mapcat", contextual=True)
def _mapcat(ev, form, f, coll, *colls):
    out: tuple = ()
    for part in _map(ev, form, f, coll, *colls):
        if part is not None and type(part) not in (tuple, dict, frozenset, str):
            raise ArgError(f"the function must return a collection, got {describe(part)}", 0)
        out += seq_of(part)
    return out


@core("filter", "filterv", contextual=True)
def _filter(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    return tuple(x for x in seq_of(coll, 1) if truthy(_call(ev, at, pred, x)))


@core("remove", contextual=True)
def _remove(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    return tuple(x for x in seq_of(coll, 1) if not truthy(_call(ev, at, pred, x)))


@core("keep", contextual=True)
def _keep(ev, form, f, coll):
    _fn(f, 0)
    at = _at(form)
    return tuple(r for r in (_call(ev, at, f, x) for x in seq_of(coll, 1)) if r is not None)


@core("take-while", contextual=True)
def _take_while(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    out = []
    for x in seq_of(coll, 1):
        if not truthy(_call(ev, at, pred, x)):
            break
        out.append(x)
    return tuple(out)


@core("drop-while", contextual=True)
def _drop_while(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    items = seq_of(coll, 1)
    for i, x in enumerate(items):
        if not truthy(_call(ev, at, pred, x)):
            return items[i:]
    return ()


@core("reduce", contextual=True)
def _reduce(ev, form, f, a, b=_MISSING):
    _fn(f, 0)
    at = _at(form)
    if b is _MISSING:
        items = seq_of(a, 1)
        if not items:
            return _call(ev, at, f)
        acc, items = items[0], items[1:]
    else:
        acc, items = a, seq_of(b, 2)
    for x in items:
        acc = _call(ev, at, f, acc, x)
    return acc


@core("reduce-kv", contextual=True)
def _reduce_kv(ev, form, f, init, m):
    _fn(f, 0)
    at = _at(form)
    acc = init
    for k, v in _map_or_nil(m, 2).items():
        acc = _call(ev, at, f, acc, k, v)
    return acc


@core("some", contextual=True)
def _some(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    for x in seq_of(coll, 1):
        r = _call(ev, at, pred, x)
        if truthy(r):
            return r
    return None


@core("every?", contextual=True)
def _every(ev, form, pred, coll):
    _fn(pred, 0)
    at = _at(form)
    return all(truthy(_call(ev, at, pred, x)) for x in seq_of(coll, 1))


@core("not-every?", contextual=True)
def _not_every(ev, form, pred, coll):
    return not _every(ev, form, pred, coll)


@core("not-any?", contextual=True)
def _not_any(ev, form, pred, coll):
    return _some(ev, form, pred, coll) is None


@core("max-key", contextual=True)
def _max_key(ev, form, k, x, *xs):
    _fn(k, 0)
    at = _at(form)
    best, best_key = x, _num(_call(ev, at, k, x), 1)
    for i, y in enumerate(xs, 2):
        key = _num(_call(ev, at, k, y), i)
        if key >= best_key:
            best, best_key = y, key
    return best


@core("min-key", contextual=True)
def _min_key(ev, form, k, x, *xs):
    _fn(k, 0)
    at = _at(form)
    best, best_key = x, _num(_call(ev, at, k, x), 1)
    for i, y in enumerate(xs, 2):
        key = _num(_call(ev, at, k, y), i)
        if key <= best_key:
            best, best_key = y, key
    return best


@core("apply", contextual=True)
def _apply(ev, form, f, *args):
    _fn(f, 0)
    if not args:
        raise ArgError("needs a collection of arguments: (apply f args)")
    spread = args[:-1] + seq_of(args[-1], len(args))
    return _call(ev, _at(form), f, *spread)


@core("partial")
def _partial(f, *bound):
    _fn(f, 0)
    return Builtin("partial", lambda ev, form, *more: _call(ev, _at(form), f, *bound, *more), True)


@core("comp")
def _comp(*fs):
    for i, f in enumerate(fs):
        _fn(f, i)
    if not fs:
        return CORE["identity"]

    def composed(ev, form, *args):
        at = _at(form)
        result = _call(ev, at, fs[-1], *args)
        for f in reversed(fs[:-1]):
            result = _call(ev, at, f, result)
        return result
    return Builtin("comp", composed, True)


@core("constantly")
def _constantly(x):
    return Builtin("constantly", lambda *args: x)


@core("complement")
def _complement(f):
    _fn(f, 0)
    return Builtin("complement", lambda ev, form, *args: not truthy(_call(ev, _at(form), f, *args)),
                   True)


@core("juxt")
def _juxt(f, *fs):
    for i, g in enumerate((f,) + fs):
        _fn(g, i)
    return Builtin("juxt", lambda ev, form, *args: tuple(
        _call(ev, _at(form), g, *args) for g in (f,) + fs), True)


@core("fnil")
def _fnil(f, *defaults):
    _fn(f, 0)

    def patched(ev, form, *args):
        args = tuple(d if i < len(defaults) and a is None else a
                     for i, (a, d) in enumerate(zip(args, defaults + (None,) * len(args))))
        return _call(ev, _at(form), f, *args)
    return Builtin("fnil", patched, True)


# ---- strings ------------------------------------------------------------------------------------


@core("str", contextual=True)
def _str(ev, form, *xs):
    for x in xs:
        if type(x) is not str and script_words.is_word(x):  # shell code that is one word
            return script_words.concat(ev, xs, lambda v, i: text_of(ev, v, i))
    out = []
    for i, x in enumerate(xs):
        t = type(x)
        out.append(x if t is str else "" if x is None else text_of(ev, x, i))
    return "".join(out)


@core("pr-str", contextual=True)
def _pr_str(ev, form, *xs):
    return " ".join(text_of(ev, x, i, readably=True) for i, x in enumerate(xs))


@core("print-str", contextual=True)
def _print_str(ev, form, *xs):
    return " ".join(text_of(ev, x, i, readably=False) for i, x in enumerate(xs))


@core("subs")
def _subs(s, start, end=_MISSING):
    _string(s, 0)
    _int(start, 1)
    if end is _MISSING:
        end = len(s)
    else:
        _int(end, 2)
    if not 0 <= start <= len(s):
        raise ArgError(f"index {start} is out of range for a string of length {len(s)}", 1)
    if not start <= end <= len(s):
        raise ArgError(f"end {end} is out of range (start {start}, length {len(s)})", 2)
    return s[start:end]


@_string_fn("join", contextual=True)
def _join(ev, form, a, b=_MISSING):
    sep, coll, ci = ("", a, 0) if b is _MISSING else (text_of(ev, a, 0), b, 1)
    return sep.join(text_of(ev, x, ci) for x in seq_of(coll, ci))


_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z])")
_JAVA_BACKREF = re.compile(r"(?<!\\)\\k<([A-Za-z][A-Za-z0-9]*)>")


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern:
    # Java spells named groups (?<name>...) and \k<name>; Python (?P<name>...) and (?P=name)
    pattern = _JAVA_BACKREF.sub(r"(?P=\1)", _JAVA_NAMED_GROUP.sub("(?P<", pattern))
    return re.compile(pattern)


def _pattern(x: Any, index: int) -> re.Pattern:
    if type(x) is Regex:
        x = x.pattern
    elif type(x) is not str:
        raise ArgError(f"expected a regular expression (a string), got {describe(x)}", index)
    try:
        return _compile(x)
    except re.error as exc:
        raise ArgError(f"invalid regular expression {pr_str(x)}: {exc}", index) from None


@core("re-pattern")
def _re_pattern(x):
    if type(x) is Regex:
        return x
    _pattern(x, 0)
    return Regex(x)


def _match_value(m: re.Match):
    if m.re.groups == 0:
        return m.group(0)
    return (m.group(0),) + m.groups()


@core("re-find")
def _re_find(pattern, s):
    m = _pattern(pattern, 0).search(_string(s, 1))
    return _match_value(m) if m else None


@core("re-matches")
def _re_matches(pattern, s):
    m = _pattern(pattern, 0).fullmatch(_string(s, 1))
    return _match_value(m) if m else None


@core("re-seq")
def _re_seq(pattern, s):
    return tuple(_match_value(m) for m in _pattern(pattern, 0).finditer(_string(s, 1))) or None


@_string_fn("split")
def _split(s, pattern, limit=0):
    """As java.lang.String.split: trailing empty strings dropped unless a limit is given."""
    _string(s, 0)
    rx = _pattern(pattern, 1)
    _int(limit, 2)
    parts: list[str] = []
    pos = 0
    matched = False
    for m in rx.finditer(s):
        if limit > 0 and len(parts) == limit - 1:
            break
        if m.end() == 0:  # a zero-width match at the start never makes a leading empty string
            continue
        if m.start() == m.end() and m.start() >= len(s):
            break
        matched = True
        parts.append(s[pos:m.start()])
        pos = m.end()
    if not matched:
        return (s,)
    parts.append(s[pos:])
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return tuple(parts)


@_string_fn("split-lines")
def _split_lines(s):
    return _split(s, "\r?\n")


@_string_fn("trim")
def _trim(s):
    return _string(s, 0).strip()


@_string_fn("triml")
def _triml(s):
    return _string(s, 0).lstrip()


@_string_fn("trimr")
def _trimr(s):
    return _string(s, 0).rstrip()


@_string_fn("trim-newline")
def _trim_newline(s):
    return _string(s, 0).rstrip("\r\n")


@_string_fn("upper-case")
def _upper(s):
    return _string(s, 0).upper()


@_string_fn("lower-case")
def _lower(s):
    return _string(s, 0).lower()


@_string_fn("capitalize")
def _capitalize(s):
    s = _string(s, 0)
    return s[:1].upper() + s[1:].lower()


@_string_fn("blank?")
def _blank(s):
    return s is None or _string(s, 0).strip() == ""


@_string_fn("starts-with?")
def _starts_with(s, prefix):
    return _string(s, 0).startswith(_string(prefix, 1))


@_string_fn("ends-with?")
def _ends_with(s, suffix):
    return _string(s, 0).endswith(_string(suffix, 1))


@_string_fn("includes?")
def _includes(s, part):
    return _string(part, 1) in _string(s, 0)


@_string_fn("index-of")
def _index_of(s, part, start=0):
    i = _string(s, 0).find(_string(part, 1), _int(start, 2))
    return i if i >= 0 else None


@_string_fn("last-index-of")
def _last_index_of(s, part):
    i = _string(s, 0).rfind(_string(part, 1))
    return i if i >= 0 else None


@core("str/reverse", "string/reverse", "clojure.string/reverse")
def _str_reverse(s):
    return _string(s, 0)[::-1]


_GROUP_REF = re.compile(r"\\(.)|\$(\d+)|\$\{([A-Za-z][A-Za-z0-9]*)\}|(\$)", re.S)


def _java_replacement(template: str, rx: re.Pattern, index: int) -> Callable[[re.Match], str]:
    """A Java replacement string ($1, ${name}, \\$ for a dollar) as a function of a match."""
    parts: list[tuple[Any, bool]] = []  # (text, False) or (group number or name, True)
    pos = 0
    for m in _GROUP_REF.finditer(template):
        parts.append((template[pos:m.start()], False))
        pos = m.end()
        if m.group(1) is not None:
            parts.append((m.group(1), False))
        elif m.group(2) is not None:
            digits = m.group(2)
            n, used = int(digits[0]), 1  # as Java: take more digits while they name a group
            while used < len(digits) and int(digits[:used + 1]) <= rx.groups:
                used += 1
                n = int(digits[:used])
            if n > rx.groups:
                raise ArgError(f"the replacement names group {n}, but the pattern has {rx.groups}", index)
            parts.append((n, True))
            parts.append((digits[used:], False))
        elif m.group(3) is not None:
            if m.group(3) not in rx.groupindex:
                raise ArgError(f"the replacement names group {m.group(3)!r}, which the pattern lacks", index)
            parts.append((m.group(3), True))
        else:
            raise ArgError("a $ in the replacement must name a group ($1) or be escaped (\\\\$)", index)
    parts.append((template[pos:], False))

    def expand(match: re.Match) -> str:
        return "".join((match.group(p) or "") if is_group else p for p, is_group in parts)
    return expand


def _replace_in(ev, form, s, match, replacement, count):
    _string(s, 0)
    at = _at(form)
    if type(match) is str:
        if is_fn(replacement):
            raise ArgError("a function replacement needs a (re-pattern ...) to match", 2)
        return s.replace(match, _string(replacement, 2), count if count else -1)
    if type(match) is not Regex:
        raise ArgError(f"expected a string or a (re-pattern ...), got {describe(match)}", 1)
    rx = _pattern(match, 1)
    if is_fn(replacement):
        def repl(m):
            r = _call(ev, at, replacement, _match_value(m))
            if type(r) is not str:
                raise ArgError(f"the replacement function must return a string, got {describe(r)}", 2)
            return r
    else:
        repl = _java_replacement(_string(replacement, 2), rx, 2)
    return rx.sub(repl, s, count=count)


@core("replace", contextual=True)
def _replace(ev, form, a, b, c=_MISSING):
    if c is _MISSING:  # clojure.core/replace: (replace smap coll)
        smap = _map_or_nil(a, 0)
        return tuple(_get(smap, x, x) for x in seq_of(b, 1))
    return _replace_in(ev, form, a, b, c, 0)


@core("str/replace", "string/replace", "clojure.string/replace", contextual=True)
def _str_replace(ev, form, s, match, replacement):
    return _replace_in(ev, form, s, match, replacement, 0)


@_string_fn("replace-first", contextual=True)
def _replace_first(ev, form, s, match, replacement):
    return _replace_in(ev, form, s, match, replacement, 1)


# ---- parsing ------------------------------------------------------------------------------------

_LONG = re.compile(r"[+-]?[0-9]+")
_DOUBLE = re.compile(r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?")


@core("parse-long", "parse-int")
def _parse_long(s):
    _string(s, 0)
    return int(s) if _LONG.fullmatch(s) else None


@core("parse-double")
def _parse_double(s):
    _string(s, 0)
    text = s.strip()
    if not _DOUBLE.fullmatch(text):
        return None
    text = text.rstrip("fFdD")
    return float(text.replace("Infinity", "inf"))


@core("parse-boolean")
def _parse_boolean(s):
    return {"true": True, "false": False}.get(_string(s, 0))


def _java_parse(bits: int):
    def parse(s, radix=10):
        _string(s, 0)
        _int(radix, 1)
        if not 2 <= radix <= 36:
            raise ArgError(f"radix {radix} is not between 2 and 36", 1)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:radix]
        body = s[1:] if s[:1] in "+-" else s
        if not body or any(c not in digits for c in body.lower()):
            raise ArgError(f"{pr_str(s)} is not an integer" + (f" in base {radix}" if radix != 10 else ""), 0)
        n = int(s, radix)
        if not -(1 << (bits - 1)) <= n < (1 << (bits - 1)):
            raise ArgError(f"{pr_str(s)} is out of range for a {bits}-bit integer", 0)
        return n
    return parse


core("Integer/parseInt", "Integer/valueOf")(_java_parse(32))
core("Long/parseLong", "Long/valueOf")(_java_parse(64))


@core("Double/parseDouble")
def _java_parse_double(s):
    r = _parse_double(s)
    if r is None:
        raise ArgError(f"{pr_str(s)} is not a number", 0)
    return r


# ---- errors -------------------------------------------------------------------------------------


@core("fail", contextual=True)
def _fail(ev, form, message, *args):
    text = _format_text(ev, form, message, *args) if args else text_of(ev, message, 0)
    raise PalletError(text, span_of(form))


@core("check-option", contextual=True)
def _check_option(ev, form, option, value, pred, description):
    """(check-option :version version integer? "a major version such as 17"): the value when
    it is nil (not given) or satisfies pred; else a compile error, `crate/fn: :version is a
    major version such as 17, not "x"`, located at the option's value in the call of the
    crate function (or at the call, when the options were not written in it)."""
    if not isinstance(option, Keyword):
        raise ArgError(f"the option's name is a keyword, such as :version, not {describe(option)}", 0)
    if value is None or truthy(ev.apply(pred, [value], form)):
        return value
    where = span_of(form)
    prefix = ""
    if ev.crate_calls:
        qualified, call = ev.crate_calls[-1]
        prefix = f"{qualified}: "
        if call is not None:
            where = span_of(call) or where
            items = call.items
            for i in range(len(items) - 2, 0, -1):
                if items[i] == option:
                    where = span_of(items[i + 1]) or where
                    break
    raise PalletError(f"{prefix}{option} is {str_of(description)}, not {pr_str(value)}", where)


@core("ex-info")
def _ex_info(message, data=None):
    return ExInfo(str_of(message), data)


@core("ex-message")
def _ex_message(e):
    return e.message if isinstance(e, ExInfo) else None


@core("ex-data")
def _ex_data(e):
    return e.data if isinstance(e, ExInfo) else None


@core("throw", contextual=True)
def _throw(ev, form, e):
    if isinstance(e, ExInfo):
        text = e.message
        if e.data:
            text += " " + pr_str(e.data)
    elif type(e) is str:
        text = e
    else:
        raise ArgError(f"throws an (ex-info ...) or a string, got {describe(e)}", 0)
    raise PalletError(text, span_of(form))


# ---- format -------------------------------------------------------------------------------------

_SPEC = re.compile(r"%(?:([0-9]+)\$|(<))?([-#+ 0,(]*)([0-9]+)?(?:\.([0-9]+))?([a-zA-Z%])")


def _pad(text: str, width: int | None, left: bool) -> str:
    if width is None or len(text) >= width:
        return text
    return text.ljust(width) if left else text.rjust(width)


def _signed(negative: bool, body: str, flags: str, width: int | None, prefix: str = "") -> str:
    """Sign, parentheses, zero padding and justification for a number's digits."""
    if negative:
        sign, suffix = ("(", ")") if "(" in flags else ("-", "")
    else:
        sign, suffix = ("+" if "+" in flags else " " if " " in flags else ""), ""
    sign += prefix
    if "0" in flags and "-" not in flags and width is not None:
        body = body.rjust(width - len(sign) - len(suffix), "0")
    return _pad(sign + body + suffix, width, "-" in flags)


def _decimal(x) -> Decimal:
    return Decimal(repr(x)) if type(x) is float else Decimal(x)


def _group(digits: str, flags: str) -> str:
    """Thousands separators on the integer part of a plain decimal string."""
    if "," not in flags:
        return digits
    whole, dot, frac = digits.partition(".")
    return f"{int(whole):,}" + dot + frac


def _fixed(d: Decimal, precision: int) -> str:
    with localcontext() as ctx:
        ctx.prec = max(28, d.adjusted() + precision + 2)
        q = d.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)
    return f"{q:f}"


def _scientific(d: Decimal, precision: int) -> str:
    if d == 0:
        mantissa, exp = "0" + ("." + "0" * precision if precision else ""), 0
    else:
        with localcontext() as ctx:
            ctx.prec = precision + 1
            ctx.rounding = ROUND_HALF_UP
            r = ctx.plus(d)
        exp = r.adjusted()
        mantissa = _fixed(r.scaleb(-exp), precision)
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _float_conversion(conv: str, x, flags: str, width, precision) -> str:
    if type(x) is float and (x != x or x in (math.inf, -math.inf)):
        text = "NaN" if x != x else "Infinity"
        neg = x == -math.inf
        return _signed(neg, text, flags.replace("0", ""), width)
    d = _decimal(x)
    negative = d.is_signed()
    d = abs(d)
    p = 6 if precision is None else precision
    if conv == "f":
        body = _group(_fixed(d, p), flags)
    elif conv == "e":
        body = _scientific(d, p)
    else:  # g, as Java: scientific outside 10^-4 .. 10^precision, never trailing-zero trimmed
        p = 1 if p == 0 else p
        if d == 0:
            body = _fixed(d, p - 1)
        else:
            with localcontext() as ctx:
                ctx.prec = p
                ctx.rounding = ROUND_HALF_UP
                r = ctx.plus(d)
            if Decimal("0.0001") <= r < Decimal(10) ** p:
                body = _group(_fixed(d, max(p - 1 - r.adjusted(), 0)), flags)
            else:
                body = _scientific(d, p - 1)
    return _signed(negative, body, flags, width)


def _format(fmt, *args, ev=None) -> str:
    """java.util.Formatter's format. With `ev` (the language's format), %s of a script is its
    text and %s of a value that is not data is an error; without, a message's best text."""
    _string(fmt, 0)
    out: list[str] = []
    pos = 0
    ordinary = 0
    last: int | None = None
    for m in re.finditer("%", fmt):
        if m.start() < pos:
            continue
        out.append(fmt[pos:m.start()])
        spec = _SPEC.match(fmt, m.start())
        if spec is None:
            rest = fmt[m.start():m.start() + 6]
            if m.start() == len(fmt) - 1:
                raise ArgError("the format ends with a lone %; write %% for a percent sign", 0)
            raise ArgError(f"bad format specifier {rest!r}", 0)
        pos = spec.end()
        explicit, relative, flags, width_s, prec_s, conv = spec.groups()
        width = int(width_s) if width_s else None
        precision = int(prec_s) if prec_s else None
        if conv == "%":
            out.append(_pad("%", width, "-" in flags))
            continue
        if conv == "n":
            out.append("\n")
            continue
        if explicit is not None:
            index = int(explicit) - 1
            if index < 0:
                raise ArgError(f"argument index {explicit}$ must be 1 or more", 0)
        elif relative:
            if last is None:
                raise ArgError("%< refers to the previous argument, but there is none", 0)
            index = last
        else:
            index = ordinary
            ordinary += 1
        if index >= len(args):
            raise ArgError(f"the format {spec.group()!r} needs argument {index + 1}, "
                           f"but {len(args)} {'was' if len(args) == 1 else 'were'} given", 0)
        last = index
        x = args[index]
        where = index + 1
        lower = conv.lower()
        if lower == "s":
            text = "null" if x is None else str_of(x) if ev is None else text_of(ev, x, where)
            if precision is not None:
                text = text[:precision]
            text = _pad(text, width, "-" in flags)
        elif lower == "b":
            text = "false" if x is None or x is False else "true"
            if precision is not None:
                text = text[:precision]
            text = _pad(text, width, "-" in flags)
        elif lower == "c":
            if type(x) is str and len(x) == 1:
                text = x
            elif is_int(x) and 0 <= x <= 0x10FFFF:
                text = chr(x)
            else:
                raise ArgError(f"{spec.group()} needs a one-character string or a code point, "
                               f"got {describe(x)}", where)
            text = _pad(text, width, "-" in flags)
        elif conv == "d":
            if not is_int(x):
                raise ArgError(f"{spec.group()} needs an integer, got {describe(x)}", where)
            text = _signed(x < 0, _group(str(abs(x)), flags), flags, width)
        elif lower in ("x", "o"):
            if not is_int(x):
                raise ArgError(f"{spec.group()} needs an integer, got {describe(x)}", where)
            n, negative = x, False
            if n < 0:
                if n >= -(1 << 63):
                    n += 1 << 64  # a Java long prints as its two's complement
                else:
                    n, negative = -n, True
            body = format(n, "x" if lower == "x" else "o")
            prefix = ("0x" if lower == "x" else "0") if "#" in flags else ""
            text = _signed(negative, body, flags.replace("+", "").replace(" ", "").replace(",", ""),
                           width, prefix)
        elif lower in ("f", "e", "g"):
            if not is_number(x):
                raise ArgError(f"{spec.group()} needs a number, got {describe(x)}", where)
            text = _float_conversion(lower, x, flags, width, precision)
        elif lower == "t":
            raise ArgError("date and time conversions (%t) are not supported", 0)
        else:
            raise ArgError(f"unknown conversion {spec.group()!r} in the format", 0)
        out.append(text.upper() if conv.isupper() else text)
    out.append(fmt[pos:])
    return "".join(out)


@core("format", contextual=True)
def _format_text(ev, form, fmt, *args):
    return _format(fmt, *args, ev=ev)
