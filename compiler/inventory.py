"""Inventories of existing servers (Pallet's node-list), from TOML:

    [[node]]
    name = "tt-1"            # unique
    group = "task-tracker"
    host = "127.0.0.1"
    port = 2301              # default 22
    user = "root"
    private-key = "keys/id_ed25519"
    os-family = "debian"     # optional once runtime detection exists
    os-version = "12"

Errors point at the `[[node]]` entry (or the key) in the file.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Callable

from pallet.errors import PalletError, Source, Span
from pallet.secret import Secret

from .model import NodeFacts

KEYS = {"name", "group", "host", "port", "user", "private-key", "os-family", "os-version",
        "private-ip", "roles", "password", "sudo-password", "jump", "jump-key"}
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_inventory(text: str, name: str) -> tuple[NodeFacts, ...]:
    source = Source(name, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS.search(str(exc))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        raise PalletError(f"invalid TOML: {_TOML_POS.sub('', str(exc)).strip()}",
                          Span(source, line, col, line, col + 1)) from None
    entries = data.get("node")
    extra = set(data) - {"node"}
    if extra:
        raise PalletError(f"unknown table {sorted(extra)[0]!r}; an inventory holds [[node]] entries",
                          _key_span(source, sorted(extra)[0], 0))
    if not isinstance(entries, list) or not entries:
        raise PalletError("an inventory needs at least one [[node]] entry", Span(source, 1, 1, 1, 2))
    lines = text.splitlines()   # split once: every entry's spans are looked up in them
    headers = [i + 1 for i, line in enumerate(lines) if line.strip() == "[[node]]"]
    nodes: list[NodeFacts] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries):
        line = headers[index] if index < len(headers) else 1
        span = Span(source, line, 1, line, 9)

        def err(message, key=None):
            return PalletError(message, _key_span(source, key, line, lines) if key else span)

        nodes.append(node_facts(entry, err, seen, f"line {line}",
                                _key_span(source, "group", line, lines)))
    return tuple(nodes)


@dataclass(frozen=True)
class Words:
    """How messages write a key and an entry: in TOML (`name = "..."`, `[[node]]`), or in the
    spec language's (node-list [{...}]) (`:name "..."`, `a node`)."""

    key: Callable[[str], str]
    quoted: Callable[[str], str]     # a key in "unknown key ..."
    needs: Callable[[str], str]
    entry: str
    sequence: str


TOML_WORDS = Words(lambda k: k, repr, lambda k: f'{k} = "..."', "[[node]]", "list of strings")
SPEC_WORDS = Words(lambda k: f":{k}", lambda k: f":{k}", lambda k: f':{k} "..."', "a node",
                   "vector or set of keywords")


def node_facts(entry: dict, err, seen: dict[str, str], place: str, span: Span | None,
               words: Words = TOML_WORDS) -> NodeFacts:
    """One node of an inventory from its entry (plain data: strings, numbers, lists), checked
    as every inventory is; `err(message, key)` makes the located error, `seen` maps the names
    met so far to where (`place`), `span` is where the node was described."""
    for key in entry:
        if key not in KEYS:
            raise err(f"unknown key {words.quoted(key)} in {words.entry}; keys: "
                      f"{', '.join(sorted(words.key(k) for k in KEYS))}", key)
    for key in ("name", "group", "host"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise err(f"{words.entry} needs {words.needs(key)}", key if key in entry else None)
    if entry["name"] in seen:
        raise err(f"node name {entry['name']!r} is used twice (first at {seen[entry['name']]})", "name")
    seen[entry["name"]] = place
    port = entry.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise err(f"{words.key('port')} must be a number from 1 to 65535", "port")
    for key in ("user", "private-key", "os-family", "private-ip", "password", "sudo-password",
                "jump", "jump-key"):
        if key in entry and not isinstance(entry[key], str) and not (
                key in ("password", "sudo-password") and isinstance(entry[key], Secret)
                and isinstance(entry[key].value, str)):
            raise err(f"{words.key(key)} must be a string", key)
    version = entry.get("os-version")
    if version is not None and (isinstance(version, bool) or
                                not isinstance(version, (str, int, float))):
        raise err(f"{words.key('os-version')} must be a string such as \"12\"", "os-version")
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise err(f"{words.key('roles')} must be a {words.sequence}", "roles")
    return NodeFacts(
        name=entry["name"], group=entry["group"], os_family=entry.get("os-family", ""),
        os_version=str(version) if version is not None else None, host=entry["host"],
        private_ip=entry.get("private-ip"), roles=frozenset(roles), port=port,
        user=entry.get("user", "root"), private_key=entry.get("private-key"),
        password=entry.get("password"), sudo_password=entry.get("sudo-password"), span=span)


def _key_span(source: Source, key: str | None, after_line: int,
              lines: list[str] | None = None) -> Span:
    """The first line from `after_line` on that sets `key` (`lines`: the source's lines)."""
    if lines is None:
        lines = source.text.splitlines()
    for i in range(max(after_line - 1, 0), len(lines)):
        stripped = lines[i].lstrip()
        if key and (stripped.startswith(key + " ") or stripped.startswith(key + "=")
                    or stripped.startswith(f"[{key}")):
            col = len(lines[i]) - len(stripped) + 1
            return Span(source, i + 1, col, i + 1, col + len(key))
    return Span(source, max(after_line, 1), 1, max(after_line, 1), 2)
