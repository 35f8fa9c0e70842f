"""Secrets in the spec language: `(env "NAME")`, `(secret v)`, and values made from secrets.

`(env "NAME")` is the controller's environment variable NAME, read when the spec is
compiled. The compiler does not read the environment itself: the command line hands it in
(`Evaluator(environ=...)`), so compiling stays a function of its inputs.

`(secret v)` marks a value secret (`pallet.secret.Secret`). What is made from one stays
secret: a builtin that reads a secret's text (`str`, `format`, `upper-case`, `subs`, `=`,
...) gets the plain values and its result is marked again, every string, number and keyword
in it; a truth value or nil is not (tests must work: `(empty? pw)`, `(= pw "")`). Builtins
that only hold or pick values (`get`, `assoc`, `conj`, `first`, `merge`, `map`, ...) pass
secrets through untouched, so a map holding one password keeps its other fields plain.
Actions record secrets as they are; the bundle keeps them out of its script
(crates/actions.py and stevedore/lower.py). Errors raised while a builtin held plain values
are masked before they leave it.
"""
from __future__ import annotations

from typing import Any

from pallet.errors import PalletError
from pallet.grammar.forms import Keyword, Symbol, span_of
from pallet.secret import Redactor, Secret, has_secret, reveal, secret_text

from .core import _wrap, describe  # _wrap: arity checks and messages as every core function has them
from .values import ArgError, Builtin

_MISSING = object()


class SecretRegistry:
    """The texts of the secrets an evaluation made: `origins` (by `(secret ...)`) and
    `derived` (made from them). The command line masks both in what it shows."""

    def __init__(self) -> None:
        self.origins: set[str] = set()
        self.derived: set[str] = set()

    def teach(self, redactor: Redactor) -> None:
        """Add the secrets made so far to `redactor` (phases are planned as a run goes)."""
        redactor.add(tuple(self.origins))
        redactor.add(tuple(self.derived), lines=False)

    def redactor(self, extra=()) -> Redactor:
        redactor = Redactor(self.origins)
        redactor.add(self.derived, lines=False)
        redactor.add(extra)
        return redactor


# Builtins that hold, pick or arrange the values they are given without reading them: a
# secret among their arguments passes through them as it is.
HOLDERS = frozenset("""
    identity get get-in assoc assoc-in dissoc merge conj disj into keys vals find select-keys
    zipmap vec vector list hash-map array-map hash-set set empty first second last rest next
    butlast cons nth peek take drop take-last drop-last reverse concat repeat distinct
    interpose interleave flatten partition partition-all partial comp constantly complement
    juxt fnil ex-message ex-data secret secret?
""".split())
# These read only the shape of a collection, the text of a string: secret when the argument
# itself is.
SHAPE = frozenset(("count", "empty?", "not-empty", "seq"))
# What these say of a secret (its type, its length) is not secret.
PLAIN_RESULT = frozenset(("type", "count"))
# Builtins of the evaluator (given it as their first argument) are higher-order functions,
# actions and queries: they pass secrets on. These few read text themselves.
READING = frozenset("""
    str pr-str print-str format join str/join string/join clojure.string/join
    fail sort sort-by replace str/replace string/replace clojure.string/replace
    str/replace-first string/replace-first clojure.string/replace-first replace-first
""".split())


def reads_secret(fn: "Builtin", args: list[Any]) -> bool:
    """Does calling `fn` on `args` read the text of a secret among them?"""
    name = fn.name
    if name in HOLDERS:
        return False
    if name in SHAPE:
        return bool(args) and type(args[0]) is Secret
    if fn.contextual and name not in READING:
        return False
    return has_secret(args)


def call_revealed(ev, fn: "Builtin", args: list[Any], form) -> Any:
    """`fn` applied to the plain values of `args`; its result secret again, its errors
    masked."""
    revealed: list[str] = []
    plain = [reveal(a, revealed) for a in args]
    try:
        result = ev.apply(fn, plain, form)
    except PalletError as exc:
        raise Redactor(revealed, shortest=1).error(exc) from None
    if fn.name in PLAIN_RESULT:
        return result
    if fn.name == "ex-info":   # an error value: its message masked, its data kept secret
        from dataclasses import replace
        return replace(result, message=Redactor(revealed, shortest=1).text(result.message),
                       data=conceal(result.data, ev.secrets.derived))
    return conceal(result, ev.secrets.derived)


def conceal(value: Any, texts: set[str]) -> Any:
    """Every string, number, keyword and symbol in `value` as a Secret (its text added to
    `texts`); truth values, nil and other values (functions, specs) as they are."""
    kind = type(value)
    if value is None or kind is bool or kind is Secret:
        return value
    if kind in (str, int, float, Keyword, Symbol):
        secret = Secret(value)
        texts.add(secret_text(secret))
        return secret
    if kind is tuple:
        return tuple(conceal(v, texts) for v in value)
    if kind is dict:   # keyword keys stay keys: (:password m) still finds its value
        return {(k if type(k) is Keyword else conceal(k, texts)): conceal(v, texts)
                for k, v in value.items()}
    if kind is frozenset:
        return frozenset(conceal(v, texts) for v in value)
    return value


def _registry(ev) -> SecretRegistry:
    if ev.secrets is None:
        ev.secrets = SecretRegistry()
    return ev.secrets


def _secret(ev, form, value):
    """(secret v): v marked secret; a collection's strings, numbers and keywords each."""
    if value is None:
        return None
    _check_secretable(value)
    registry = _registry(ev)
    marked = conceal(value, registry.origins)
    if type(value) is bool:     # conceal leaves truth values plain; asked for, it is secret
        marked = Secret(value)
        registry.origins.add(secret_text(marked))
    return marked


def _check_secretable(value: Any) -> None:
    kind = type(value)
    if kind in (str, int, float, bool, Keyword, Symbol, Secret) or value is None:
        return
    if kind in (tuple, dict, frozenset):
        for item in (value.items() if kind is dict else value):
            for v in (item if kind is dict else (item,)):
                _check_secretable(v)
        return
    raise ArgError("takes a string, a number, a keyword or a collection of them, not "
                   f"{describe(value)}", 0)


def _is_secret(value) -> bool:
    return has_secret(value)


def _env(ev, form, name, default=_MISSING):
    """(env "NAME") or (env "NAME" default): the controller's environment variable NAME,
    read when the spec is compiled."""
    if type(name) is Secret or not isinstance(name, str) or not name or "=" in name or "\0" in name:
        raise ArgError("takes the name of an environment variable, such as \"DB_PASSWORD\"", 0)
    environ = ev.environ
    if environ is not None and name in environ:
        return environ[name]
    if default is not _MISSING:
        return default
    if environ is None:
        why = "this compiler was given no environment (Evaluator(environ=...))"
    else:
        why = f"{name} is not set in the environment of pallet"
    raise PalletError(f"env: {why}; set it (export {name}=...), or give a default: "
                      f'(env "{name}" "...")', span_of(form))


def secret_builtins() -> dict[str, Builtin]:
    """`secret`, `secret?` and `env`, for the evaluator's core environment."""
    return {"secret": _wrap("secret", _secret, True),
            "secret?": _wrap("secret?", _is_secret, False),
            "env": _wrap("env", _env, True)}
