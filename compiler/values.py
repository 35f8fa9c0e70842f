"""Value types the compiler's modules share, in a module that imports none of them."""
from __future__ import annotations

from typing import Any


class KeyMap(dict):
    """A map that is the key of another map or a member of a set (Pallet's os-map is keyed by
    {:os ... :os-version ...} maps): a dict, hashable by its items, equal to the same dict."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    @staticmethod
    def of(value: Any) -> Any:
        """`value` made hashable where it is a map, or a vector or set holding maps."""
        t = type(value)
        if t is dict:
            return KeyMap({KeyMap.of(k): KeyMap.of(v) for k, v in value.items()})
        if t is tuple:
            return tuple(KeyMap.of(v) for v in value)
        if t is frozenset:
            return frozenset(KeyMap.of(v) for v in value)
        return value
