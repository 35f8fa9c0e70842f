"""Script libraries from forms: a file of `defscript` and `defimpl` forms (such as the
bundled crates' core actions) becomes a ScriptLibrary that scripts are lowered with."""
from __future__ import annotations

from typing import Iterable

from pallet.errors import PalletError
from pallet.grammar.forms import Form, head_name, span_of

from .functions import ScriptLibrary
from .lower import Lowering
from .target import Target

_DEFINITIONS = ("defscript", "defimpl")


def library_from_forms(forms: Iterable[Form], base: ScriptLibrary | None = None) -> ScriptLibrary:
    """A new library holding `base`'s functions plus those the forms define. Only
    definitions are allowed: a library is loaded once and shared, so it runs nothing."""
    forms = tuple(forms)
    for form in forms:
        if head_name(form) not in _DEFINITIONS:
            raise PalletError("a script library holds only defscript and defimpl forms", span_of(form))
    lowering = Lowering(Target(), base)
    lowering.block(forms)  # registers the definitions; they lower to no statements
    return lowering.library
