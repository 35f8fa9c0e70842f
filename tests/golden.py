"""Golden files: a case's source and its expected outputs side by side in one text file.

    ;; Short description of the case.
    ;; os: debian-12                  (optional: the target OS; default none)
    ;; targets: bash sh powershell    (optional: the shells the case is compiled for)
    (script (doseq [x ["a" "b" "c"]] (println @x)))
    === stdout
    a
    b
    c
    === bash
    ...

The source is everything before the first `=== NAME` line, kept verbatim (the `;;` lines are
comments in the language too, so line numbers in errors point into the golden file itself).
Each section runs to the next `=== ` line or the end of the file. A section's text normally
ends with a newline; one that does not is marked `=== NAME (no final newline)`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

NO_NEWLINE = " (no final newline)"
_HEADER = re.compile(r"=== ([A-Za-z0-9_-]+)((?: \(no final newline\))?)\Z")
DIRECTIVES = ("os", "targets")
_DIRECTIVE = re.compile(r";;\s*(os|targets):\s*(.*?)\s*\Z")
ALL_TARGETS = ("bash", "sh", "powershell")


@dataclass
class Golden:
    path: Path
    source: str
    sections: dict[str, str] = field(default_factory=dict)  # in file order

    # ---- the header comments -------------------------------------------------------------

    def directive(self, name: str) -> str | None:
        """The value of `;; name: value` among the leading comment lines."""
        for line in self.source.splitlines():
            if not line.startswith(";"):
                if line.strip():
                    break
                continue
            m = _DIRECTIVE.match(line)
            if m and m.group(1) == name:
                return m.group(2)
        return None

    @property
    def description(self) -> str:
        for line in self.source.splitlines():
            if line.startswith(";;") and not _DIRECTIVE.match(line):
                return line.lstrip("; ").strip()
        return ""

    @property
    def os(self) -> str | None:
        return self.directive("os") or None

    def targets(self, default: tuple[str, ...] = ALL_TARGETS) -> tuple[str, ...]:
        value = self.directive("targets")
        if value is None:
            return default
        targets = tuple(value.split())
        unknown = [t for t in targets if t not in ALL_TARGETS]
        if unknown or not targets:
            raise ValueError(f"{self.path}: unknown targets {unknown or value!r}")
        return targets

    # ---- reading and writing -------------------------------------------------------------

    def render(self) -> str:
        out = [self.source if self.source.endswith("\n") else self.source + "\n"]
        for name, text in self.sections.items():
            for line in text.split("\n"):
                if line.startswith("=== "):
                    raise ValueError(f"{self.path}: section {name} has a line starting with "
                                     f"'=== ', which this format cannot hold: {line!r}")
            if text.endswith("\n") or text == "":
                out.append(f"=== {name}\n{text}")
            else:
                out.append(f"=== {name}{NO_NEWLINE}\n{text}\n")
        return "".join(out)

    def save(self) -> None:
        self.path.write_text(self.render(), encoding="utf-8")


def parse(text: str, path: Path) -> Golden:
    lines = text.split("\n")
    # split("\n") of text ending in "\n" leaves a final "": the newline of the last line.
    source: list[str] = []
    sections: dict[str, str] = {}
    current: str | None = None
    chomp = False
    body: list[str] = []

    def finish():
        if current is None:
            return
        joined = "\n".join(body)
        sections[current] = joined if chomp else joined + "\n" if body else ""

    if text.endswith("\n"):
        lines = lines[:-1]
    for line in lines:
        m = _HEADER.match(line)
        if m:
            finish()
            current, chomp, body = m.group(1), bool(m.group(2)), []
            if current in sections:
                raise ValueError(f"{path}: section {current} appears twice")
        elif current is None:
            source.append(line)
        else:
            body.append(line)
    finish()
    src = "\n".join(source) + ("\n" if source else "")
    return Golden(path, src, sections)


def load(path: Path) -> Golden:
    return parse(path.read_text(encoding="utf-8"), path)


def bundles_text(bundles, spec_name: str) -> tuple[str, list[tuple[str, str]]]:
    """Compiled bundles as golden text (every file of every bundle, in order), and the
    (name, text) of each script in them, for the checks."""
    from pallet.compiler.bundle import _dump, entry_of, top_manifest
    parts = ["=== manifest.json\n", _dump(top_manifest([entry_of(b) for b in bundles], spec_name)).decode()]
    scripts = []
    for b in bundles:
        scripts.append((f"{b.path}/{b.script_name}", b.script))
        parts += [f"=== {b.path}/{b.script_name}\n", b.script,
                  f"=== {b.path}/manifest.json\n", _dump(b.manifest()).decode()]
        for name, data in b.files:
            parts += [f"=== {b.path}/{name}\n", data.decode("utf-8", "replace")]
            if not data.endswith(b"\n"):
                parts.append("\n=== (no final newline)\n")
    return "".join(parts), scripts
