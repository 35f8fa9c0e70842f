"""Shell names from Stevedore names, and the located error of the lowering stages."""
from __future__ import annotations

import re

from pallet.errors import PalletError, Span
from pallet.grammar.forms import span_of

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def munge(name: str, span: Span | None, what: str = "variable") -> str:
    """A Clojure-style name as a shell name: `auth-file` -> `auth_file`."""
    shell_name = name.replace("-", "_")
    if not _NAME.match(shell_name):
        hint = ""
        if what == "variable" and re.match(r"[A-Za-z_][A-Za-z0-9_]*-[^A-Za-z0-9_]", name):
            # Pallet's @TMPDIR-/tmp pasted ${TMPDIR-/tmp} as it was written
            var, _, default = name.partition("-")
            hint = f' (for a default value write (deref {var} :default "{default}"))'
        raise PalletError(f"invalid {what} name {name!r}: use letters, digits, '_' and '-', "
                          f"not starting with a digit{hint}", span)
    return shell_name


def err(message: str, form: object) -> PalletError:
    return PalletError(message, span_of(form))
