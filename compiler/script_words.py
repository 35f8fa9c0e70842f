"""`str` over scripts that make one word, as Pallet's crates build paths:

    (str (script (~lib/user-home ~user)) "/.ssh/")

is a ScriptWord (stevedore/script_words.py): its text is the shell code for the node being
planned, `"$(getent passwd u | cut -d: -f6)"/.ssh/`, and where it becomes a word again (an
action's path, `~` in a script) it is that word, expanded by the shell when the step runs.
Only a phase knows the node, so outside one such a `str` is a located error.
"""
from __future__ import annotations

from typing import Any

from pallet.stevedore import ScriptForms
from pallet.stevedore.script_words import ScriptWord, word_form

from .values import ArgError


def is_word(value: Any) -> bool:
    """A value `str` keeps as shell code: a ScriptWord, or a script that makes one word."""
    return type(value) is ScriptWord or (
        type(value) is ScriptForms and word_form(value.forms, value.resolver) is not None)


def concat(ev, values, text_of) -> ScriptWord:
    """The ScriptWord of `(str values...)`: `text_of(value, index)` gives the text of the
    values that are plain data."""
    pieces: list = []
    for i, value in enumerate(values):
        if type(value) is ScriptWord:
            pieces.extend(value.pieces)
        elif type(value) is ScriptForms:
            pieces.append(value)
        elif value is not None:
            pieces.append(text_of(value, i))
    merged: list = []
    for piece in pieces:   # neighbouring literal text as one piece
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return ScriptWord(_text(ev, tuple(merged)), tuple(merged))


def _text(ev, pieces: tuple) -> str:
    plan = ev.plan
    if plan is None:
        raise ArgError("a (script ...) becomes text only inside a phase: the node being "
                       "planned decides its shell code")
    from pallet.stevedore.lower import Lowering
    from pallet.stevedore import emit_word
    target = plan.script_target()
    probe = ScriptWord("", pieces)
    word = Lowering(target, plan.script_library())._value_word(probe, None)
    return emit_word(word, target.shell)


def lib_call(ev, fn, args, form):
    """A function of Pallet's script library called in spec code, `(lib/user-home "u")`: as
    in Pallet, its text for the node being planned. A value function (a path, a command's
    output) is a ScriptWord; a command belongs in a script."""
    from pallet.errors import Span  # noqa: F401  (for the type of form.span)
    from pallet.grammar.forms import Keyword, ListForm, Symbol
    from pallet.stevedore.script_lib import FUNCTIONS, NAMESPACE
    span = getattr(form, "span", None)
    if not FUNCTIONS[fn.name].value:
        raise ArgError(f"{NAMESPACE}/{fn.name} is a command: run it in a script, such as "
                       f"(exec-checked-script \"...\" (lib/{fn.name} ...))")
    values = {f"pallet-arg-{i}": v for i, v in enumerate(args)}
    items = [Symbol(f"lib/{fn.name}", span)]
    for key, value in values.items():
        items.append(value if isinstance(value, Keyword) else
                     ListForm((Symbol("unquote", span), Symbol(key, span)), span))
    forms = (ListForm(tuple(items), span),)
    script = ScriptForms(forms, lambda f: values[f.name])
    return concat(ev, (script,), lambda v, i: str(v))
