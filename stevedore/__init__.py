"""Stevedore: the script language. Forms in, bash / sh / PowerShell text out.

    compile_script_text(text, name, shell, target) -> str   # a file of script forms
    compile_forms(forms, target, ...) -> str                 # forms already read
"""
from __future__ import annotations

from typing import Iterable

from pallet.grammar.forms import Form

from . import ast
from .functions import ScriptLibrary
from .lower import Lowering, Resolver, ScriptForms, literal_resolver
from .target import SHELLS, Target, target_for

__all__ = ["compile_script_text", "compile_forms", "lower_forms", "emit", "Target", "target_for",
           "ScriptLibrary", "ScriptForms", "SHELLS", "ast", "emit_word"]


def lower_forms(forms: Iterable[Form], target: Target, library: ScriptLibrary | None = None,
                resolver: Resolver = literal_resolver) -> ast.Script:
    return Lowering(target, library, resolver).program(forms)


def emit(script: ast.Script, shell: str, header: bool = True) -> str:
    if shell == "powershell":
        from .emit_powershell import emit_powershell
        return emit_powershell(script, header=header)
    from .emit_posix import emit_posix
    return emit_posix(script, shell, header=header)


def emit_word(word: ast.Word, shell: str) -> str:
    """One word as the shell's text (an argument of a command)."""
    if shell == "powershell":
        from .emit_powershell import _Emitter
        return _Emitter(ast.Script((), ast.Block(()))).word(word, "native")
    from .emit_posix import PosixEmitter
    return PosixEmitter(shell).word(word)


def compile_forms(forms: Iterable[Form], target: Target, library: ScriptLibrary | None = None,
                  resolver: Resolver = literal_resolver, header: bool = True) -> str:
    return emit(lower_forms(forms, target, library, resolver), target.shell, header)


def compile_script_text(text: str, name: str, shell: str = "bash",
                        target: Target | None = None) -> str:
    """Compile a file of script forms. `target` carries the OS; its shell is set to `shell`."""
    from pallet.grammar.reader import read
    base = target or Target()
    if base.shell != shell:
        base = Target(base.os_family, base.os_version, base.packager, shell)
    return compile_forms(read(text, name), base)
