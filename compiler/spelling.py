"""Suggestions for a misspelt name (`did you mean 'file'?`), shared by the evaluator, the
namespaces, the specs, the plan and the crate index; it imports no module of the compiler."""
from __future__ import annotations

import difflib


def closest(name: str, candidates, cutoff: float = 0.75) -> str | None:
    """The candidate a misspelt `name` most likely meant, or None. difflib finds the similar
    names; the fewest edits (a swap of two neighbours counting as one) decides between them, so
    that `fiel` means `file`, not `fnil`."""
    close = difflib.get_close_matches(name, sorted(candidates), n=8, cutoff=cutoff)
    if not close:
        return None
    ratio = {c: difflib.SequenceMatcher(None, name, c).ratio() for c in close}
    return min(close, key=lambda c: (_edits(name, c), -ratio[c], c))


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    two adjacent characters."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


def did_you_mean(name: str, candidates) -> str:
    """`; did you mean 'x'?` for a message about `name`, or nothing."""
    close = closest(name, candidates)
    return f"; did you mean {close!r}?" if close else ""
