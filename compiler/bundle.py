"""Bundles: one directory per node and phase holding the script, the files it installs and
a manifest. Everything is computed in memory first (pure), then written in one swap, so a
failed compile leaves the previous output as it was; the same input gives the same bytes.

    DIR/manifest.json
    DIR/<node>/<phase>/run.sh | run.ps1
    DIR/<node>/<phase>/files/<sha256>
    DIR/<node>/<phase>/manifest.json
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pallet.errors import PalletError
from pallet.stevedore import Target
from pallet.stevedore.target import PACKAGERS

from .model import Action, NodeFacts
from .specs import GroupSpec


@dataclass(frozen=True)
class Bundle:
    node: NodeFacts
    group: str
    phase: str
    target: Target
    script_name: str
    script: str
    files: tuple[tuple[str, bytes], ...]
    actions: tuple[Action, ...]

    @property
    def path(self) -> str:
        return f"{self.node.name}/{self.phase}"

    def manifest(self) -> dict:
        return {
            "node": self.node.name,
            "group": self.group,
            "phase": self.phase,
            "os": {"family": self.target.os_family, "version": self.target.os_version,
                   "packager": self.target.packager, "shell": self.target.shell},
            "script": self.script_name,
            "actions": [{"index": i, "kind": a.kind, "label": a.label,
                         "source": str(a.span) if a.span else None}
                        for i, a in enumerate(self.actions, start=1)],
            "files": {name: sha256(data) for name, data in
                      sorted(((self.script_name, self.script.encode()),) + self.files)},
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def target_of(node: NodeFacts, group: GroupSpec, shell: str | None = None) -> Target:
    family = node.os_family or None
    chosen = shell or ("powershell" if family == "windows" else "bash")
    return Target(family, node.os_version, group.packager or PACKAGERS.get(family or ""), chosen)


def build_bundles(plans: dict[tuple[str, str], tuple[Action, ...]],
                  nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
                  read_file: Callable[[str], bytes], shell: str | None = None) -> tuple[Bundle, ...]:
    from pallet.crates.actions import compile_phase_script, render_actions
    by_name = {n.name: (n, g) for n, g in nodes}
    bundles = []
    for (node_name, phase), actions in plans.items():
        node, group = by_name[node_name]
        target = target_of(node, group, shell)
        rendered = render_actions(actions, target, read_file)
        script = compile_phase_script(rendered, target)
        script_name = "run.ps1" if target.shell == "powershell" else "run.sh"
        bundles.append(Bundle(node, group.name, phase, target, script_name, script,
                              tuple(rendered.files), actions))
    return tuple(bundles)


def top_manifest(bundles: tuple[Bundle, ...], spec: str) -> dict:
    return {"spec": spec,
            "bundles": [{"node": b.node.name, "group": b.group, "phase": b.phase, "path": b.path,
                         "script": f"{b.path}/{b.script_name}",
                         "sha256": sha256(b.script.encode())} for b in bundles]}


def _dump(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_bundles(bundles: tuple[Bundle, ...], out: Path, spec: str) -> None:
    """Replace `out` with the bundles. Refuses to replace a directory that Pallet did not make."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise PalletError(f"{out} exists and is not a Pallet output directory; choose another -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for b in bundles:
            base = staging / b.path
            (base / "files").mkdir(parents=True, exist_ok=True)
            script = base / b.script_name
            script.write_bytes(b.script.encode())
            script.chmod(0o755)
            for name, data in b.files:
                (base / name).write_bytes(data)
            (base / "manifest.json").write_bytes(_dump(b.manifest()))
        (staging / "manifest.json").write_bytes(_dump(top_manifest(bundles, spec)))
        staging.chmod(0o755)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old.{os.getpid()}"
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
