"""A script value as text: `(str (script ...))`, as Pallet's `script` returned the shell text.

The text is the script compiled for the node being planned (its shell: bash, sh or
PowerShell), without the header, with the script functions it calls; only a phase knows the
node, so outside one it is a located error (ArgError, which the caller locates)."""
from __future__ import annotations

from pallet.stevedore import ScriptForms, compile_forms

from .values import ArgError


def script_text(ev, value: ScriptForms, index: int | None = None) -> str:
    plan = ev.plan
    if plan is None:
        raise ArgError("a (script ...) becomes text only inside a phase: the node being "
                       "planned decides its shell (bash, sh or PowerShell)", index)
    text = compile_forms(value.forms, plan.script_target(), plan.script_library(),
                         value.resolver, header=False)
    return text[:-1] if text.endswith("\n") else text
