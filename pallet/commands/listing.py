"""What `compile` and `check` print: every bundle for a small output, a summary past a few
dozen bundles (the full list with -v). 1,000 nodes make 3,000 bundles; nobody reads 3,000
lines, and the manifest lists them all anyway."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

# Above this many bundles the listing becomes a summary.
LIST_LIMIT = 40


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def bundle_lines(entries: Sequence, out: Path) -> str:
    lines = []
    for e in entries:
        script = out / e.path / e.script_name   # `-o out/` names out/web-1/..., not out//
        lines.append(f"{script}  {plural(e.steps, 'action')}\n")
    return "".join(lines)


def compile_summary(entries: Sequence, out: Path) -> str:
    """One paragraph: how many bundles, nodes, groups, phases and actions, and where."""
    nodes = {e.node for e in entries}
    groups = {e.group for e in entries}
    phases = list(dict.fromkeys(e.phase for e in entries))
    actions = sum(e.steps for e in entries)
    shown = " ".join(f":{p}" for p in phases)
    return (f"{plural(len(entries), 'bundle')} for {plural(len(nodes), 'node')} in "
            f"{plural(len(groups), 'group')}, {plural(len(phases), 'phase')} ({shown}), "
            f"{plural(actions, 'action')}, in {out}/\n"
            f"  {out / 'manifest.json'} lists every bundle; -v prints one line per bundle\n")


def compile_listing(entries: Sequence, out: Path, verbose: bool) -> str:
    text = bundle_lines(entries, out) if verbose or len(entries) <= LIST_LIMIT else \
        compile_summary(entries, out)
    return text + secrets_note(entries, out)


def secrets_note(entries: Sequence, out: Path) -> str:
    """Where the secret values went: the one place of the output that holds them."""
    holding = [e for e in entries if getattr(e, "secrets", 0)]
    if not holding:
        return ""
    first = out / holding[0].path / "secrets"
    verb = "carries" if len(holding) == 1 else "carry"
    return (f"{plural(len(holding), 'bundle')} {verb} secret values, in NODE/PHASE/secrets/ "
            f"(mode 600, such as {first}/): keep {out}/ private and out of version control\n")
