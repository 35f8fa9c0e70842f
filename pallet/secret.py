"""Secret values, and how they are kept out of everything Pallet shows or keeps.

A `Secret` wraps a value a spec marked with `(secret ...)` (or made from one). Printed by
Python (`str`, `repr`, f-strings, error messages) it is `<secret>`: the plain value comes out
only where code asks for it on purpose (`Secret.value`), which the compiler does at the two
places that need it, the bundle's secret store and the content of a secret file.

`Redactor` is the second line: the texts of every secret known to a command (and the
passwords it was given), masked in anything that leaves it (what the nodes print, errors,
reports, records), however the text got there.

This module is a leaf (it imports nothing of Pallet's but errors), so the reader, Stevedore,
the compiler and the runtime can all share it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

MASK = "<secret>"

# Shorter values are not masked in what nodes print: a secret "1" would mask every number.
# (They never reach a script, a record or a report by Pallet's own doing: see Secret.)
MASK_FROM = 3


@dataclass(frozen=True)
class Secret:
    """A secret value: a string (most often), a number, a boolean or a keyword."""

    value: Any

    def __str__(self) -> str:
        return MASK

    __repr__ = __str__

    def describe(self) -> str:     # how error messages name a value (compiler.core.describe)
        return "a secret value"


def has_secret(value: Any) -> bool:
    """Is `value` a Secret, or a collection holding one (at any depth)?"""
    kind = type(value)
    if kind is Secret:
        return True
    if kind is tuple or kind is list or kind is frozenset or kind is set:
        return any(has_secret(v) for v in value)
    if kind is dict:
        return any(has_secret(k) or has_secret(v) for k, v in value.items())
    return False


def reveal(value: Any, revealed: list[str]) -> Any:
    """`value` with each Secret in it replaced by its plain value, whose text is appended to
    `revealed` (so that what is made of them can be masked)."""
    kind = type(value)
    if kind is Secret:
        revealed.append(secret_text(value))
        return value.value
    if kind is tuple or kind is list:
        return kind(reveal(v, revealed) for v in value)
    if kind is dict:
        return {reveal(k, revealed): reveal(v, revealed) for k, v in value.items()}
    if kind is frozenset:
        return frozenset(reveal(v, revealed) for v in value)
    return value


def secret_text(secret: Secret) -> str:
    """The text a secret is as a shell word: a string as it is, a keyword by its name, a
    boolean as true/false, a number as written."""
    value = secret.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    name = getattr(value, "name", None)     # Keyword, Symbol
    if isinstance(name, str):
        return name
    return str(value)


class Redactor:
    """Masks known secret texts: `text(s)` for a string, `data(obj)` for a JSON-like value.

    Values are added from one thread (the command's) and masked from any: the compiled
    pattern is replaced whole, never changed in place."""

    def __init__(self, values: Iterable[str] = (), shortest: int = MASK_FROM):
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.shortest = shortest
        self.add(values)

    def add(self, values: Iterable[Any], lines: bool = True) -> None:
        """Mask these texts from now on; with `lines`, each line of a text of several
        lines too (a key, a certificate: output often shows one line of it). Without `lines`
        (texts made from other secrets), a text holding a secret already known is left to
        that one: "cannot use <secret>" says more than "<secret>"."""
        new = set()
        for value in values:
            if isinstance(value, Secret):
                value = secret_text(value)
            if not isinstance(value, str):
                continue
            if not lines and self._pattern is not None and self._pattern.search(value):
                continue
            parts = [line.strip() for line in value.splitlines()] if lines and "\n" in value else []
            for text in (value, *parts):
                if len(text) >= max(self.shortest, 1) and text not in self._values:
                    new.add(text)
        if new:
            self._values |= new
            # Longest first, so that a value containing another is masked whole.
            alternatives = sorted(self._values, key=lambda v: (-len(v), v))
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str | None) -> str | None:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def error(self, exc):
        """The PalletError `exc` with every known secret masked: its message, its notes and
        what it prints (the source line too). The same error when there is nothing to mask."""
        from pallet.errors import PalletError
        pattern = self._pattern
        if pattern is None:
            return exc
        formatted = exc.format()
        if pattern.search(formatted) is None:
            return exc
        masked = PalletError(self.text(exc.message), exc.span,
                             tuple(self.text(n) for n in exc.notes))
        masked.format = lambda: pattern.sub(MASK, formatted)   # type: ignore[method-assign]
        for attr in ("kind", "attempts", "result"):     # TransportError's details
            if hasattr(exc, attr):
                setattr(masked, attr, getattr(exc, attr))
        return masked

SECRET_VAR = "pallet_secret_"     # the shell variables a bundle's secrets are read into


class SecretStore:
    """The secret values of one script: each distinct text once, numbered in the order the
    script first uses it. The bundle carries them as secrets/N; the script reads secrets/N
    into the variable pallet_secret_N when it starts, and its words name the variable."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def variable(self, text: str) -> str:
        number = self._numbers.setdefault(text, len(self._numbers) + 1)
        return f"{SECRET_VAR}{number}"

    def __len__(self) -> int:
        return len(self._numbers)

    def texts(self) -> tuple[str, ...]:
        return tuple(self._numbers)

    def files(self) -> tuple[tuple[str, bytes], ...]:
        return tuple((f"secrets/{n}", text.encode("utf-8")) for text, n in self._numbers.items())
