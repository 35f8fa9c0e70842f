"""Strings (str, subs, clojure.string) and regular expressions (re-find, split, replace)."""
from __future__ import annotations

import functools
import re
from typing import Any, Callable

from pallet.grammar.forms import Regex

from .. import script_words
from ..values import ArgError
from .printing import describe, is_fn, pr_str, text_of
from .registry import _MISSING, _at, _call, _int, _map_or_nil, _string, _string_fn, core, seq_of
from .maps_sets import _get


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
