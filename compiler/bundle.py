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
class StepInfo:
    """One step of a script, as its status lines number it (PALLET-ACTION <number>): the
    actions of a phase after their package actions were gathered into one step."""

    number: int
    kind: str
    label: str
    where: str                    # the spec's call, via crate functions, to the action
    sources: tuple[str, ...]      # every place gathered into the step (one for most)

    def manifest(self) -> dict:
        out = {"index": self.number, "kind": self.kind, "label": self.label, "source": self.where}
        if len(self.sources) > 1:
            out["sources"] = list(self.sources)
        return out


@dataclass(frozen=True)
class Bundle:
    node: NodeFacts
    group: str
    phase: str
    target: Target
    script_name: str
    script: str
    files: tuple[tuple[str, bytes], ...]
    actions: tuple[Action, ...]          # as the phase recorded them
    steps: tuple[StepInfo, ...] = ()     # as the script runs them

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
            "actions": [step.manifest() for step in self.steps],
            "files": {name: sha256(data) for name, data in
                      sorted(((self.script_name, self.script.encode()),) + self.files)},
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def target_of(node: NodeFacts, group: GroupSpec, shell: str | None = None) -> Target:
    family = node.os_family or None
    # Windows runs PowerShell; Alpine has no bash until someone installs it.
    chosen = shell or {"windows": "powershell", "alpine": "sh"}.get(family or "", "bash")
    return Target(family, node.os_version, group.packager or PACKAGERS.get(family or ""), chosen)


def build_bundles(plans: dict[tuple[str, str], tuple[Action, ...]],
                  nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
                  read_file: Callable[[str], bytes], shell: str | None = None,
                  jobs: int = 1) -> tuple[Bundle, ...]:
    """Render and compile every bundle. With jobs > 1 and many bundles, forked workers share
    the work (the output is the same: each bundle depends only on its own plan)."""
    by_name = {n.name: (n, g) for n, g in nodes}
    keys = list(plans)
    made: dict[tuple[str, str], tuple[str, tuple[tuple[str, bytes], ...], tuple[StepInfo, ...]]] = {}
    if keys:  # the first in this process: library caches are warm before any fork
        made[keys[0]] = _compile_one(plans, by_name, keys[0], read_file, shell)
    rest = keys[1:]
    if jobs > 1 and len(rest) >= _PARALLEL_FROM:
        made.update(_compile_forked(plans, by_name, rest, read_file, shell, jobs))
    else:
        for key in rest:
            made[key] = _compile_one(plans, by_name, key, read_file, shell)
    bundles = []
    for key in keys:
        node, group = by_name[key[0]]
        target = target_of(node, group, shell)
        script, files, steps = made[key]
        script_name = "run.ps1" if target.shell == "powershell" else "run.sh"
        bundles.append(Bundle(node, group.name, key[1], target, script_name, script, files,
                              plans[key], steps))
    return tuple(bundles)


def plan_steps(plans: dict[tuple[str, str], tuple[Action, ...]],
               nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
               read_file: Callable[[str], bytes], shell: str | None = None
               ) -> dict[tuple[str, str], tuple[StepInfo, ...]]:
    """The steps each bundle's script would run (for `pallet explain`), without making the
    scripts: the same numbering as the status lines."""
    from pallet.crates.actions import render_actions
    by_name = {n.name: (n, g) for n, g in nodes}
    out = {}
    for key, actions in plans.items():
        node, group = by_name[key[0]]
        out[key] = _step_infos(render_actions(actions, target_of(node, group, shell), read_file))
    return out


def _step_infos(rendered) -> tuple[StepInfo, ...]:
    return tuple(StepInfo(s.number, s.kind, s.label, s.where, s.sources) for s in rendered.steps)


_PARALLEL_FROM = 200
_WORK: tuple | None = None  # what forked workers read: set just before the fork


def _compile_one(plans, by_name, key, read_file, shell):
    from pallet.crates.actions import compile_phase_script, render_actions
    node, group = by_name[key[0]]
    target = target_of(node, group, shell)
    rendered = render_actions(plans[key], target, read_file)
    return compile_phase_script(rendered, target), tuple(rendered.files), _step_infos(rendered)


def _compile_chunk(indices: list[int]):
    plans, by_name, keys, read_file, shell = _WORK  # type: ignore[misc]
    out = []
    for i in indices:
        try:
            out.append((i, _compile_one(plans, by_name, keys[i], read_file, shell)))
        except PalletError as exc:  # crosses the process boundary as text with its place
            return ("error", exc.message, str(exc.span) if exc.span else None, exc.format())
    return ("ok", out)


def _compile_forked(plans, by_name, keys, read_file, shell, jobs):
    import multiprocessing

    global _WORK
    _WORK = (plans, by_name, keys, read_file, shell)
    chunks = [list(range(i, len(keys), jobs)) for i in range(jobs)]
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_compile_chunk, chunks)
    finally:
        _WORK = None
    made = {}
    for result in results:
        if result[0] == "error":
            # Compile the failing bundle here again for a PalletError with its span.
            for key in keys:
                _compile_one(plans, by_name, key, read_file, shell)
            raise PalletError(result[1])
        for i, value in result[1]:
            made[keys[i]] = value
    return made


def top_manifest(bundles: tuple[Bundle, ...], spec: str) -> dict:
    return {"spec": spec,
            "bundles": [{"node": b.node.name, "group": b.group, "phase": b.phase, "path": b.path,
                         "script": f"{b.path}/{b.script_name}",
                         "sha256": sha256(b.script.encode())} for b in bundles]}


def _dump(data: dict) -> bytes:
    """JSON with a line per key and per list item: readable and diffable, and made by the
    C encoder (json's indent= falls back to the slow pure-Python one)."""
    def value(v) -> str:
        if isinstance(v, list) and v:
            return "[\n" + ",\n".join("    " + _compact(x) for x in v) + "\n  ]"
        if isinstance(v, dict) and len(v) > 1:
            return "{\n" + ",\n".join(f"    {json.dumps(k)}: {_compact(v[k])}" for k in sorted(v)) + "\n  }"
        return _compact(v)
    lines = [f"  {json.dumps(k)}: {value(data[k])}" for k in sorted(data)]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def _compact(v) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def write_bundles(bundles: tuple[Bundle, ...], out: Path, spec: str) -> None:
    """Make `out` hold exactly the bundles. Refuses a directory that Pallet did not make.

    A new output directory is written beside and renamed into place. An existing one is
    brought up to date bundle by bundle: a bundle whose manifest and script are what they
    should be is left alone (a recompile after a small edit touches only what changed), a
    changed one is written beside and swapped in, and bundles no longer wanted go; the top
    manifest is replaced last. No file is ever seen half-written."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise PalletError(f"{out} exists and is not a Pallet output directory; choose another -o")
    if out.is_dir() and (out / "manifest.json").is_file():
        _update(bundles, out, spec)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for b in bundles:
            _write_bundle(b, staging / b.path)
        (staging / "manifest.json").write_bytes(_dump(top_manifest(bundles, spec)))
        staging.chmod(0o755)
        if out.exists():  # an empty directory
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_bundle(b: Bundle, base: Path) -> None:
    (base / "files" if b.files else base).mkdir(parents=True, exist_ok=True)
    script = base / b.script_name
    script.write_bytes(b.script.encode())
    script.chmod(0o755)
    for name, data in b.files:
        (base / name).write_bytes(data)
    (base / "manifest.json").write_bytes(_dump(b.manifest()))


def _current(b: Bundle, base: Path) -> bool:
    """Is the bundle on disk already this one? (Its manifest lists every file's sha256.)"""
    try:
        if (base / "manifest.json").read_bytes() != _dump(b.manifest()):
            return False
        if (base / b.script_name).read_bytes() != b.script.encode():
            return False  # edited by hand since
        return all((base / name).stat().st_size == len(data) for name, data in b.files)
    except OSError:
        return False


def _update(bundles: tuple[Bundle, ...], out: Path, spec: str) -> None:
    wanted = {b.path for b in bundles}
    try:
        old_paths = {entry["path"] for entry in json.loads((out / "manifest.json").read_text())["bundles"]}
    except (OSError, ValueError, KeyError, TypeError):
        old_paths = set()
    for b in bundles:
        base = out / b.path
        if _current(b, base):
            continue
        fresh = base.parent / f".{base.name}.new.{os.getpid()}"
        shutil.rmtree(fresh, ignore_errors=True)
        try:
            _write_bundle(b, fresh)
            stale = None
            if base.exists():
                stale = base.parent / f".{base.name}.old.{os.getpid()}"
                base.rename(stale)
            fresh.rename(base)
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            raise
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    for path in sorted(old_paths - wanted):
        gone = out / path
        if gone.is_dir() and out.resolve() in gone.resolve().parents:
            shutil.rmtree(gone, ignore_errors=True)
            try:
                gone.parent.rmdir()  # the node's directory, when it was its last phase
            except OSError:
                pass
    tmp = out / f".manifest.json.{os.getpid()}"
    tmp.write_bytes(_dump(top_manifest(bundles, spec)))
    os.replace(tmp, out / "manifest.json")
