"""A script value as text: `(str (script ...))`, as Pallet's `script` returned the shell text.

The text is the script compiled for the node being planned (its shell: bash, sh or
PowerShell), without the header, with the script functions it calls; only a phase knows the
node, so outside one it is a located error (ArgError, which the caller locates)."""
from __future__ import annotations

from pallet.stevedore import ScriptForms, compile_forms

from .evaluator import ArgError


def script_text(ev, value: ScriptForms, index: int | None = None) -> str:
    plan = ev.plan
    if plan is None:
        raise ArgError("a (script ...) becomes text only inside a phase: the node being "
                       "planned decides its shell (bash, sh or PowerShell)", index)
    from pallet.crates.actions import core_library  # the library the bundles use
    from .bundle import target_of
    text = compile_forms(value.forms, target_of(plan.node, plan.group), core_library(),
                         value.resolver, header=False)
    return text[:-1] if text.endswith("\n") else text
