"""The reader: text -> forms with spans, using the Lark grammar in pallet.lark.

Syntax errors become PalletError with file, line, column, the source line and a caret. Bracket
and string errors are found by a small scanner first, because it can say which opener is
unclosed, which a parser error at end of file cannot.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput, VisitError

from pallet.errors import PalletError, Source, Span

from .forms import Atom, Form, Keyword, ListForm, MapForm, SetForm, Symbol, VectorForm

_DISCARD = object()
_CLOSERS = {"(": ")", "[": "]", "{": "}", "#{": "}"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f", "0": "\0"}


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


def read(text: str, name: str = "<string>") -> tuple[Form, ...]:
    """Read every form in `text`; `name` is the file name shown in errors."""
    source = Source(name, text)
    parser, builder = _parser()
    with _lock:  # the one builder holds the source being read
        builder.source = source
        try:
            return tuple(parser.parse(text))
        except UnexpectedInput as exc:
            raise _syntax_error(source, exc) from None
        except VisitError as exc:
            if isinstance(exc.orig_exc, PalletError):
                raise exc.orig_exc from None
            raise


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
        return ListForm(self._items(children[1:-1]), self._span(children[0], children[-1]))

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
        if text == "true":
            return Atom(True, span)
        if text == "false":
            return Atom(False, span)
        if text == "nil":
            return Atom(None, span)
        return Symbol(text, span)


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
        what = {"#": "'#' must start a set #{...} or a discard #_",
                "\\": "character literals (\\c) are not supported; write a string"}.get(
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
        if c == "#" and text[i + 1 : i + 2] == "{":
            stack.append(("#{", line, col))
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
