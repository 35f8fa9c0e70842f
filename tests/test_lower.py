"""Stevedore's lowering: the lists of forms it recognises match what it implements."""
from __future__ import annotations

import pytest

from pallet.grammar.forms import Atom, ListForm, Symbol
from pallet.stevedore import target_for
from pallet.stevedore.lower import _WORD_FORMS, Lowering

SAMPLE_ARGS = {"deref": (Symbol("x"),), "aget": (Symbol("a"), Atom(0)), "get": (Symbol("m"), Atom("k"))}


@pytest.mark.parametrize("name", sorted(_WORD_FORMS))
def test_every_word_form_makes_a_word(name):
    """A head listed as a word form is refused as a command ("makes a word"), so word() must
    make it: a listed name it does not implement would be usable nowhere."""
    args = SAMPLE_ARGS.get(name, (Atom(1), Atom(2)))
    word = Lowering(target_for("debian-12")).word(ListForm((Symbol(name), *args)))
    assert word.parts
