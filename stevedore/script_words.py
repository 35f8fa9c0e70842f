"""Shell words made in spec code from scripts: Pallet's `(str (script (~lib/user-home ~u))
"/.ssh/")` was the text `$(getent passwd u | cut -d: -f6)/.ssh/`, a path that the shell
expands when the action runs. Here such a value is a `ScriptWord`: a string whose text is the
shell code (for messages, comparisons, and where text is wanted), which remembers its pieces
(literal text, and scripts that make one word each), so that where it becomes a word of a
script again, an action's path or a `~` value, it is that word: the literal pieces quoted,
the scripts' parts (command output, variables) expanded. Nothing is pasted as text.
"""
from __future__ import annotations

from typing import Any

from pallet.grammar.forms import Form, ListForm, head_name


class ScriptWord(str):
    """Text that is one shell word: pieces of literal text (str) and one-word scripts."""

    __slots__ = ("pieces",)

    def __new__(cls, text: str, pieces: tuple):
        self = super().__new__(cls, text)
        self.pieces = pieces
        return self

    def __eq__(self, other: object) -> bool:
        return type(other) is ScriptWord and str.__eq__(self, other) and self.pieces == other.pieces

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def describe(self) -> str:
        return f"the shell word {str.__str__(self)!r} (made from a script)"


_WORD_HEADS = frozenset({"deref", "str", "quoted"})


def word_form(forms: tuple[Form, ...], resolver: Any) -> Form | None:
    """The one form of a script that makes a word (`@x`, `@(cmd)`, `(str ...)`, a value
    function of Pallet's script library such as `(lib/user-home u)`), or None."""
    if len(forms) != 1 or not isinstance(forms[0], ListForm) or not forms[0].items:
        return None
    form = forms[0]
    if head_name(form) in _WORD_HEADS:
        return form
    from . import script_lib

    class _Probe:  # what lib_name reads of a lowering
        pass
    probe = _Probe()
    probe.resolver = resolver
    name = script_lib.lib_name(probe, form.items[0])
    if name is not None and script_lib.FUNCTIONS[name].value:
        return form
    return None
