"""The reader: text -> forms with spans, using the Lark grammar in pallet.lark.

Syntax errors become PalletError with file, line, column, the source line and a caret. Bracket
and string errors are found by a small scanner first, because it can say which opener is
unclosed, which a parser error at end of file cannot.
"""
from __future__ import annotations

import dataclasses
import re
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput, VisitError

from pallet.errors import PalletError, Source, Span

from .forms import Atom, Form, Keyword, ListForm, MapForm, Regex, SetForm, Symbol, VectorForm

_DISCARD = object()
_CLOSERS = {"(": ")", "[": "]", "{": "}", "#{": "}", "#(": ")"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f", "0": "\0"}
_CHAR_NAMES = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r", "backspace": "\b",
               "formfeed": "\f"}
_FN_ARG = re.compile(r"%(?:[1-9][0-9]*|&)?\Z")
_SYMBOLIC = {"##Inf": float("inf"), "##-Inf": float("-inf"), "##NaN": float("nan")}
DEFAULT_NAMESPACE = "user"  # Clojure's namespace before any (ns ...)


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, "_Build"]:
    # The builder runs inside the LALR parser (no parse tree is made): several times faster.
    grammar = resources.files("pallet.grammar").joinpath("pallet.lark").read_text()
    builder = _Build()
    options = dict(parser="lalr", lexer="basic", transformer=builder, maybe_placeholders=False)
    try:
        # Lark keeps the analysed grammar in a file keyed by the grammar's hash: a command
        # starts ~35 ms sooner. Only a speed-up: without a writable temp dir, build it.
        return Lark(grammar, cache=True, **options), builder
    except OSError:
        return Lark(grammar, **options), builder


_lock = threading.Lock()


def read(text: str, name: str = "<string>", namespace: str = DEFAULT_NAMESPACE) -> tuple[Form, ...]:
    """Read every form in `text`; `name` is the file name shown in errors. `::kw` is a
    keyword of `namespace` until an `(ns name ...)` form names another."""
    source = Source(name, text)
    parser, builder = _parser()
    with _lock:  # the one builder holds the source being read
        builder.source = source
        builder.namespace = namespace
        builder.aliases = {}
        builder.fn_literals = set()
        try:
            return tuple(parser.parse(text))
        except UnexpectedInput as exc:
            raise _syntax_error(source, exc) from None
        except VisitError as exc:
            if isinstance(exc.orig_exc, PalletError):
                raise _brackets_first(source, exc.orig_exc) from None
            raise
        except PalletError as exc:
            raise _brackets_first(source, exc) from None


def _brackets_first(source: Source, exc: PalletError) -> PalletError:
    """An unbalanced bracket anywhere explains the errors found inside what it misgroups
    (an odd map, say): report it first."""
    return _scan_brackets(source) or exc


def read_file(path: str | Path) -> tuple[Form, ...]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PalletError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise PalletError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PalletError(f"{path}: cannot read: {exc.strerror}") from None
    return read(text, str(path))


class _Build(Transformer):
    source: Source
    namespace: str = DEFAULT_NAMESPACE
    aliases: dict[str, str]
    fn_literals: set[int]  # ids of the (fn ...) forms made from #(...), to refuse nesting

    def _span(self, first: Token, last: object) -> Span:
        end = last if isinstance(last, Token) else getattr(last, "span", None)
        end_line = end.end_line if end is not None else first.end_line
        end_col = end.end_column if end is not None else first.end_column
        return Span(self.source, first.line, first.column, end_line, end_col)

    @staticmethod
    def _items(children) -> tuple[Form, ...]:
        return tuple(c for c in children if c is not _DISCARD)

    def start(self, children):
        return self._items(children)

    def discard(self, children):
        return _DISCARD

    def list(self, children):
        form = ListForm(self._items(children[1:-1]), self._span(children[0], children[-1]))
        head = form.items[0] if form.items else None
        if type(head) is Symbol and head.name in ("ns", "in-ns"):
            self._enter_namespace(form)
        return form

    def _enter_namespace(self, form: ListForm) -> None:
        """`::kw` read after `(ns name ...)` (or `(in-ns 'name)`) belongs to that namespace;
        `::alias/kw` to the namespace a `:require`/`:use` clause gives that alias."""
        if len(form.items) < 2:
            return
        name = form.items[1]
        if isinstance(name, ListForm) and len(name.items) == 2 and name.items[0] == Symbol("quote"):
            name = name.items[1]
        if not isinstance(name, Symbol):
            return
        self.namespace = name.name
        self.aliases = {}
        for clause in form.items[2:]:
            if not (isinstance(clause, ListForm) and clause.items
                    and isinstance(clause.items[0], Keyword)
                    and clause.items[0].name in ("require", "use", "require-macros")):
                continue
            for spec in clause.items[1:]:
                if isinstance(spec, VectorForm) and spec.items and isinstance(spec.items[0], Symbol):
                    opts = spec.items[1:]
                    for key, value in zip(opts, opts[1:]):
                        if (isinstance(key, Keyword) and key.name in ("as", "as-alias")
                                and isinstance(value, Symbol)):
                            self.aliases[value.name] = spec.items[0].name

    def fn_literal(self, children):
        """`#(f % %2 %&)` is `(fn [%1 %2 & %&] (f %1 %2 %&))`, as Clojure reads it."""
        span = self._span(children[0], children[-1])
        body = ListForm(self._items(children[1:-1]), span)
        found: set[str] = set()
        body = self._fn_args(body, found)
        top = max((int(n[1:]) for n in found if n != "%&"), default=0)
        params: list[Form] = [Symbol(f"%{i}", span) for i in range(1, top + 1)]
        if "%&" in found:
            params += [Symbol("&", span), Symbol("%&", span)]
        form = ListForm((Symbol("fn", span), VectorForm(tuple(params), span), body), span)
        self.fn_literals.add(id(form))
        return form

    def _fn_args(self, form, found: set[str]):
        """The body with `%` as `%1`, noting which argument symbols it uses."""
        if type(form) is Symbol:
            if _FN_ARG.match(form.name):
                name = "%1" if form.name == "%" else form.name
                found.add(name)
                return form if name == form.name else dataclasses.replace(form, name=name)
            return form
        if isinstance(form, (ListForm, VectorForm, MapForm, SetForm)):
            if id(form) in self.fn_literals:
                raise PalletError("nested #()s are not allowed: write the inner one as (fn [x] ...)",
                                  form.span)
            items = tuple(self._fn_args(i, found) for i in form.items)
            if any(a is not b for a, b in zip(items, form.items)):
                return dataclasses.replace(form, items=items)
        return form

    def var_quote(self, children):
        return self._wrap("var", children)

    def syntax_quote(self, children):
        return self._wrap("syntax-quote", children)

    def meta(self, children):
        """`^meta form`: the metadata (a map; `^:k` is {:k true}, `^Type` and `^"Type"` are
        {:tag Type}) rides on the form when it is a symbol or a collection, and is dropped
        elsewhere (on a string or a number), as it has no effect there."""
        caret, meta, target = children
        span = self._span(caret, meta)
        if isinstance(meta, Keyword):
            pairs: tuple[Form, ...] = (meta, Atom(True, meta.span))
        elif isinstance(meta, Symbol) or (isinstance(meta, Atom) and isinstance(meta.value, str)):
            pairs = (Keyword("tag", meta.span), meta)
        elif isinstance(meta, MapForm):
            pairs = meta.items
        elif isinstance(meta, VectorForm):
            pairs = (Keyword("param-tags", meta.span), meta)
        else:
            raise PalletError("metadata must be a symbol, keyword, string or map", span_of_form(meta))
        if not isinstance(target, (Symbol, ListForm, VectorForm, MapForm, SetForm)):
            return target
        if target.meta is not None:  # ^:a ^:b x: both, the outer one winning
            inner = [(k, v) for k, v in target.meta.pairs if k not in pairs[::2]]
            pairs = tuple(x for kv in inner for x in kv) + pairs
        return dataclasses.replace(target, meta=MapForm(pairs, span))

    def vector(self, children):
        return VectorForm(self._items(children[1:-1]), self._span(children[0], children[-1]))

    def map(self, children):
        items = self._items(children[1:-1])
        span = self._span(children[0], children[-1])
        if len(items) % 2:
            raise PalletError("a map needs an even number of forms (a value for every key)", span)
        return MapForm(items, span)

    def set(self, children):
        return SetForm(self._items(children[1:-1]), self._span(children[0], children[-1]))

    def _wrap(self, name, children):
        span = self._span(children[0], children[-1])
        return ListForm((Symbol(name, span), children[-1]), span)

    def quote(self, children):
        return self._wrap("quote", children)

    def unquote(self, children):
        return self._wrap("unquote", children)

    def splice(self, children):
        return self._wrap("unquote-splicing", children)

    def deref(self, children):
        return self._wrap("deref", children)

    def atom(self, children):
        token: Token = children[0]
        span = Span(self.source, token.line, token.column, token.end_line, token.end_column)
        kind, text = token.type, str(token)
        if kind == "STRING":
            return Atom(_unescape(text[1:-1], span), span)
        if kind == "INT":
            return Atom(int(text), span)
        if kind == "FLOAT":
            return Atom(float(text), span)
        if kind == "KEYWORD":
            return Keyword(text[1:], span)
        if kind == "AUTO_KEYWORD":
            return Keyword(self._auto_keyword(text[2:], span), span)
        if kind == "CHAR":
            return Atom(_character(text[1:], span), span)
        if kind == "REGEX":
            return Atom(_regex(text[2:-1], span), span)
        if kind == "SYMBOLIC":
            return Atom(_SYMBOLIC[text], span)
        if text == "true":
            return Atom(True, span)
        if text == "false":
            return Atom(False, span)
        if text == "nil":
            return Atom(None, span)
        return Symbol(text, span)


    def _auto_keyword(self, name: str, span: Span) -> str:
        alias, sep, local = name.partition("/")
        if not sep or not local:
            return f"{self.namespace}/{name}"
        target = self.aliases.get(alias)
        if target is None:
            raise PalletError(f"::{name}: no namespace has the alias {alias!r} here (give one with "
                              f"[some.namespace :as {alias}] in the ns form's :require)", span)
        return f"{target}/{local}"


def span_of_form(form) -> Span | None:
    return getattr(form, "span", None)


def _character(body: str, span: Span) -> str:
    """A character literal's text after the backslash -> the character, a 1-character string."""
    if len(body) == 1:
        return body
    if body in _CHAR_NAMES:
        return _CHAR_NAMES[body]
    if re.fullmatch(r"u[0-9a-fA-F]{4}", body):
        return chr(int(body[1:], 16))
    if re.fullmatch(r"o[0-7]{1,3}", body) and int(body[1:], 8) <= 0o377:
        return chr(int(body[1:], 8))
    raise PalletError(f"unsupported character \\{body}: write one character (\\a), \\newline, "
                      "\\space, \\tab, \\return, \\backspace, \\formfeed or \\uXXXX", span)


def _regex(body: str, span: Span) -> Regex:
    # Java's named group (?<name>...) is Python's (?P<name>...); lookbehinds (?<= (?<! stay.
    pattern = re.sub(r"\(\?<(?![=!])", "(?P<", body)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PalletError(f"invalid regular expression: {exc}", span) from None
    return Regex(pattern)


def _unescape(body: str, span: Span) -> str:
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            line = span.line + body[:i].count("\n")
            col = (i - body.rfind("\n", 0, i)) if "\n" in body[:i] else span.column + 1 + i
            raise PalletError(f"unknown escape \\{nxt} in string (use \\\\ for a backslash)",
                              Span(span.source, line, col, line, col + 2))
    return "".join(out)


def _syntax_error(source: Source, exc: UnexpectedInput) -> PalletError:
    found = _scan_brackets(source)
    if found is not None:
        return found
    line, column = getattr(exc, "line", 1), getattr(exc, "column", 1)
    if line is None or line < 1:
        line, column = _end_position(source.text)
    span = Span(source, line, column, line, column + 1)
    char = getattr(exc, "char", None)
    if char is not None:
        what = {"#": _hash_message(source.text, exc),
                ":": "':' must be followed by a keyword name (:name, ::name)"}.get(
            char, f"unexpected character {char!r}")
        if char.isdigit() or char in "+-":
            what = "invalid number (a number must end at a space or bracket)"
        return PalletError(what, span)
    token = getattr(exc, "token", None)
    if token is not None and token.type == "$END":
        return PalletError("unexpected end of input: a form is missing after a reader macro", span)
    if token is not None:
        return PalletError(f"unexpected {str(token)!r}: a form was expected here", span)
    return PalletError("syntax error", span)


def _hash_message(text: str, exc: UnexpectedInput) -> str:
    pos = getattr(exc, "pos_in_stream", None)
    after = text[pos + 1:pos + 2] if isinstance(pos, int) else ""
    if after == "?":
        return "reader conditionals #?(...) are not supported; write the form for Clojure"
    if after.isalpha():
        return "tagged literals (#inst, #uuid, #name ...) are not supported"
    return ("'#' must start a set #{...}, a function #(...), a regular expression #\"...\", "
            "a var #'x, metadata #^ or a discard #_")


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _scan_brackets(source: Source) -> PalletError | None:
    """Find the first unbalanced bracket or unterminated string, skipping comments."""
    text = source.text
    stack: list[tuple[str, int, int]] = []
    line, col, i = 1, 1, 0

    def err(msg, ln, cl, width=1):
        return PalletError(msg, Span(source, ln, cl, ln, cl + width))

    while i < len(text):
        c = text[i]
        if c == ";":
            while i < len(text) and text[i] != "\n":
                i += 1
                col += 1
            continue
        if c == '"':
            start = (line, col)
            i += 1
            col += 1
            while i < len(text) and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                    col += 1
                if i < len(text) and text[i] == "\n":
                    line, col = line + 1, 0
                i += 1
                col += 1
            if i >= len(text):
                return err("unterminated string: no closing '\"'", *start)
            i += 1
            col += 1
            continue
        if c == "#" and text[i + 1 : i + 2] in ("{", "("):
            stack.append(("#" + text[i + 1], line, col))
            i += 2
            col += 2
            continue
        if c == "\\" and i + 1 < len(text):  # a character literal such as \( or \" or \;
            if text[i + 1] == "\n":
                line, col = line + 1, 0
            i += 2
            col += 2
            continue
        if c in "([{":
            stack.append((c, line, col))
        elif c in ")]}":
            if not stack:
                return err(f"unmatched {c!r}: nothing is open here", line, col)
            opener, oline, ocol = stack.pop()
            if _CLOSERS[opener] != c:
                return PalletError(
                    f"{c!r} closes {opener!r} opened at {oline}:{ocol}; expected {_CLOSERS[opener]!r}",
                    Span(source, line, col, line, col + 1))
        if c == "\n":
            line, col = line + 1, 0
        i += 1
        col += 1
    if stack:
        opener, oline, ocol = stack[-1]
        return err(f"unclosed {opener!r}: expected {_CLOSERS[opener]!r} before the end of the file",
                   oline, ocol, len(opener))
    return None
