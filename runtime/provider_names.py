"""The names of the built-in providers and of nodes: shared by runtime/providers.py and the
cloud providers (runtime/cloud), which it loads, so that neither imports the other."""
from __future__ import annotations

import re

LOCAL = "local"
NODE_LIST = "node-list"
PROVIDERS = (LOCAL, NODE_LIST)


def name_stem(group: str) -> str:
    """The node-name stem of a group: its name as a hostname part."""
    stem = re.sub(r"[^a-z0-9-]+", "-", group.lower()).strip("-")
    stem = re.sub(r"-{2,}", "-", stem)[:50].rstrip("-")
    return stem or "node"
