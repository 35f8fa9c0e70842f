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

from pallet.grammar.forms import Regex

from .printing import (ExInfo, NotText, describe, float_str, is_fn, is_int, is_number, pr_str,
                       str_of, text_of, truthy)
from .equality import compare, equal
from .registry import CORE, _arity_text, _fn, _wrap, seq_of
# The modules that register their functions in CORE when imported, by concern:
from . import numbers, predicates, maps_sets, sequences, higher_order, strings, errors, format

__all__ = ["CORE", "ExInfo", "NotText", "Regex", "compare", "describe", "equal", "float_str",
           "is_fn", "is_int", "is_number", "pr_str", "seq_of", "str_of", "text_of", "truthy",
           "_arity_text", "_fn", "_wrap",
           "numbers", "predicates", "maps_sets", "sequences", "higher_order", "strings", "errors",
           "format"]
