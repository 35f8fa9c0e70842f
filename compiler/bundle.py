"""Bundles: one directory per node and phase holding the script, the files it installs and
a manifest. Everything is computed in memory first (pure), then written in one swap, so a
failed compile leaves the previous output as it was; the same input gives the same bytes.

    DIR/manifest.json
    DIR/<node>/<phase>/run.sh | run.ps1
    DIR/<node>/<phase>/files/<sha256>
    DIR/<node>/<phase>/secrets/N, secrets/file-N   secret values and contents (mode 600)
    DIR/<node>/<phase>/manifest.json

A secret's text is only in its file under secrets/: the script names the variable it is read
into, the manifests name the file and give no checksum (the sha256 of a short password finds
it), and a run record keeps the bundle without its secrets/.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
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

    @property
    def manifest_line(self) -> str:
        """manifest() as its line of the bundle's manifest.json (see _dump); made once: the
        nodes of a group share their steps' infos (_step_infos)."""
        made = self.__dict__.get("_json")
        if made is None:
            made = _compact(self.manifest())
            object.__setattr__(self, "_json", made)   # not a field: not in ==, hash, repr
        return made


@dataclass(frozen=True)
class Bundle:
    node: NodeFacts
    group: str
    phase: str
    target: Target
    script_name: str
    script: str
    files: tuple[tuple[str, bytes], ...]
    steps: tuple[StepInfo, ...] = ()     # as the script runs them
    # The names among `files` whose content is secret (secrets/...), and the texts of the
    # secrets the bundle holds (for masking them in what the node prints).
    secret_files: tuple[str, ...] = ()
    secret_texts: tuple[str, ...] = field(default=(), repr=False)

    @property
    def path(self) -> str:
        return f"{self.node.name}/{self.phase}"

    @cached_property
    def script_sha256(self) -> str:
        """(Computed once: the manifest and the top manifest's entry both list it.)"""
        return sha256(self.script.encode())

    def manifest(self) -> dict:
        return self._manifest([step.manifest() for step in self.steps])

    def manifest_json(self) -> bytes:
        """_dump(self.manifest()), the same bytes, with each step's line made once."""
        return _dump(self._manifest(None), {"actions": [s.manifest_line for s in self.steps]})

    def _manifest(self, actions: list | None) -> dict:
        secret = set(self.secret_files)
        out = {
            "node": self.node.name,
            "group": self.group,
            "phase": self.phase,
            "os": {"family": self.target.os_family, "version": self.target.os_version,
                   "packager": self.target.packager, "shell": self.target.shell},
            "script": self.script_name,
            "actions": actions,
            "files": dict(sorted([(self.script_name, self.script_sha256),
                                  *((name, sha256(data)) for name, data in self.files
                                    if name not in secret)])),
        }
        if secret:
            out["secrets"] = sorted(secret)
        return out

    def public_files(self) -> tuple[tuple[str, bytes], ...]:
        """The files without the secret ones: what a run record keeps."""
        secret = set(self.secret_files)
        return tuple((name, data) for name, data in self.files if name not in secret)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def target_of(node: NodeFacts, group: GroupSpec, shell: str | None = None,
              offline: bool = False) -> Target:
    """The node's target; `offline` for a script an offline bundle (NODE.run) carries."""
    family = node.os_family or None
    # Windows runs PowerShell; Alpine has no bash until someone installs it.
    chosen = shell or {"windows": "powershell", "alpine": "sh"}.get(family or "", "bash")
    return Target(family, node.os_version, group.packager or PACKAGERS.get(family or ""), chosen,
                  offline)


def build_bundle(node: NodeFacts, group: GroupSpec, phase: str, actions: tuple[Action, ...],
                 read_file: Callable[[str], bytes], shell: str | None = None,
                 memo=None, offline: bool = False) -> Bundle:
    """One node's bundle for one phase. `memo` (a crates.actions.RenderMemo) reuses the steps
    of actions other bundles of the same compile recorded alike. `offline`: for an offline
    bundle (see target_of)."""
    from pallet.crates.actions import compile_phase_script, render_actions
    from pallet.secret import SecretStore
    target = target_of(node, group, shell, offline)
    rendered = render_actions(actions, target, read_file, memo=memo)
    store = SecretStore()
    script = compile_phase_script(rendered, target, secrets=store)
    steps = _step_infos(rendered)
    values = store.files()
    secret_files = (*rendered.secret_files, *(name for name, _ in values))
    texts = store.texts() + tuple(data.decode("utf-8", "replace") for name, data in rendered.files
                                  if name in rendered.secret_files)
    return Bundle(node, group.name, phase, target,
                  "run.ps1" if target.shell == "powershell" else "run.sh", script,
                  tuple(rendered.files) + values, steps, secret_files, texts)


def build_bundles(plans: dict[tuple[str, str], tuple[Action, ...]],
                  nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
                  read_file: Callable[[str], bytes], shell: str | None = None,
                  offline: bool = False) -> tuple[Bundle, ...]:
    """Every bundle of `plans`, in its order. (compiler/compile_project.py shares a whole
    project's planning, building and writing among processes.)"""
    from pallet.crates.actions import RenderMemo
    by_name = {n.name: (n, g) for n, g in nodes}
    memo = RenderMemo()
    return tuple(build_bundle(*by_name[node], phase, actions, read_file, shell, memo, offline)
                 for (node, phase), actions in plans.items())


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


_INFOS: dict = {}   # Step -> its StepInfo: the nodes of a group share most steps


def _step_infos(rendered) -> tuple[StepInfo, ...]:
    out = []
    for s in rendered.steps:
        info = _INFOS.get(s)
        if info is None:
            if len(_INFOS) > 50_000:
                _INFOS.clear()
            info = _INFOS[s] = StepInfo(s.number, s.kind, s.label, s.where, s.sources)
        out.append(info)
    return tuple(out)


@dataclass(frozen=True)
class BundleEntry:
    """A bundle as the top manifest lists it (and `pallet compile` prints it)."""

    node: str
    group: str
    phase: str
    script_name: str
    script_sha256: str
    steps: int
    secrets: int = 0              # files of secrets/ it carries

    @property
    def path(self) -> str:
        return f"{self.node}/{self.phase}"


def entry_of(b: Bundle) -> BundleEntry:
    return BundleEntry(b.node.name, b.group, b.phase, b.script_name, b.script_sha256,
                       len(b.steps), len(b.secret_files))


def top_manifest(entries, spec: str) -> dict:
    return {"spec": spec,
            "bundles": [{"node": e.node, "group": e.group, "phase": e.phase, "path": e.path,
                         "script": f"{e.path}/{e.script_name}",
                         "sha256": e.script_sha256} for e in entries]}


def _dump(data: dict, lines: dict[str, list[str]] | None = None) -> bytes:
    """JSON with a line per key and per list item: readable and diffable, and made by the
    C encoder (json's indent= falls back to the slow pure-Python one). `lines`: lists given
    as the text of their items (_item's), for their keys."""
    def value(v) -> str:
        if isinstance(v, list) and v:
            return "[\n" + ",\n".join("    " + _item(x) for x in v) + "\n  ]"
        if isinstance(v, dict) and len(v) > 1:
            return "{\n" + ",\n".join(f"    {json.dumps(k)}: {_compact(v[k])}" for k in sorted(v)) + "\n  }"
        return _compact(v)
    def given(items: list[str]) -> str:
        return "[\n" + ",\n".join("    " + x for x in items) + "\n  ]" if items else "[]"
    lines = lines or {}
    out = [f"  {json.dumps(k)}: {given(lines[k]) if k in lines else value(data[k])}"
           for k in sorted(data)]
    return ("{\n" + ",\n".join(out) + "\n}\n").encode()


def _compact(v) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


_ITEMS: dict[tuple, str] = {}  # the JSON of list items met before: the nodes of a group share steps


def _item(v) -> str:
    """_compact of a list item; a flat one (a step's) made once per distinct value."""
    if type(v) is not dict:
        return _compact(v)
    key = tuple((k, type(x), x) for k, x in v.items())  # the type too: True == 1
    try:
        text = _ITEMS.get(key)
    except TypeError:  # a list inside
        return _compact(v)
    if text is None:
        if len(_ITEMS) > 50_000:
            _ITEMS.clear()
        text = _ITEMS[key] = _compact(v)
    return text


def write_bundles(bundles: tuple[Bundle, ...], out: Path, spec: str) -> None:
    """Make `out` hold exactly the bundles (see OutputWriter)."""
    writer = OutputWriter(Path(out), spec)
    try:
        fresh = [b.path for b in bundles if writer.stage(b)]
        writer.finish([entry_of(b) for b in bundles], fresh)
    except BaseException:
        writer.discard([b.path for b in bundles])
        raise


class OutputWriter:
    """Writes bundles into an output directory so that no file is ever seen half-written and
    a failed compile leaves the previous output as it was. Refuses a directory that Pallet
    did not make.

    A new output directory is written beside (staging) and renamed into place. An existing
    one is brought up to date bundle by bundle: a bundle whose manifest and script are what
    they should be is left alone (a recompile after a small edit touches only what changed),
    a changed one is written beside, and only when every bundle is made are they swapped in,
    bundles no longer wanted removed, and the top manifest replaced last.

    `stage` touches only its own bundle's paths, so forked workers can stage bundles in
    parallel; `finish` and `discard` run once, in the process that made the writer."""

    def __init__(self, out: Path, spec: str):
        self.out, self.spec, self.token = out, spec, str(os.getpid())
        if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                                  and not (out / "manifest.json").is_file())):
            raise PalletError(f"{out} exists and is not a Pallet output directory; choose another -o")
        self.staging: Path | None = None
        if not (out.is_dir() and (out / "manifest.json").is_file()):
            out.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))

    def _fresh(self, path: str) -> Path:
        base = self.out / path
        return base.parent / f".{base.name}.new.{self.token}"

    def stage(self, b: Bundle) -> bool:
        """Write the bundle where it waits to be put in place; False when nothing is to do
        for it later (staged with the whole new directory, or already current)."""
        if self.staging is not None:
            _write_bundle(b, self.staging / b.path)
            return False
        if _current(b, self.out / b.path):
            return False
        fresh = self._fresh(b.path)
        shutil.rmtree(fresh, ignore_errors=True)
        _write_bundle(b, fresh)
        return True

    def finish(self, entries, fresh_paths) -> None:
        manifest = _dump(top_manifest(entries, self.spec))
        if self.staging is not None:
            (self.staging / "manifest.json").write_bytes(manifest)
            self.staging.chmod(0o755)
            if self.out.exists():  # an empty directory
                self.out.rmdir()
            self.staging.rename(self.out)
            return
        try:
            old_paths = {e["path"] for e in json.loads((self.out / "manifest.json").read_text())["bundles"]}
        except (OSError, ValueError, KeyError, TypeError):
            old_paths = set()
        for path in fresh_paths:
            base = self.out / path
            stale = None
            if base.exists():
                stale = base.parent / f".{base.name}.old.{self.token}"
                base.rename(stale)
            self._fresh(path).rename(base)
            if stale is not None:
                shutil.rmtree(stale, ignore_errors=True)
        for path in sorted(old_paths - {e.path for e in entries}):
            gone = self.out / path
            if gone.is_dir() and self.out.resolve() in gone.resolve().parents:
                shutil.rmtree(gone, ignore_errors=True)
                try:
                    gone.parent.rmdir()  # the node's directory, when it was its last phase
                except OSError:
                    pass
        tmp = self.out / f".manifest.json.{self.token}"
        tmp.write_bytes(manifest)
        os.replace(tmp, self.out / "manifest.json")

    def discard(self, paths) -> None:
        """After a failure: remove what was staged, leave the output as it was."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        for path in paths:
            shutil.rmtree(self._fresh(path), ignore_errors=True)


def _write_bundle(b: Bundle, base: Path) -> None:
    # os calls, not pathlib's: a large compile writes tens of thousands of files.
    where = os.fspath(base)
    try:
        os.mkdir(where)
    except FileNotFoundError:       # the node's first bundle: its directory too
        os.makedirs(where, exist_ok=True)
    except FileExistsError:
        pass
    secret = set(b.secret_files)
    made = set()
    for name, _ in b.files:
        folder = name.rpartition("/")[0]
        if folder and folder not in made:
            made.add(folder)
            try:
                os.makedirs(f"{where}/{folder}", 0o700 if name in secret else 0o777)
            except FileExistsError:
                pass
    _write_file(f"{where}/{b.script_name}", b.script.encode(), 0o755)
    for name, data in b.files:
        if name in secret:      # readable by its owner only, from the first byte
            _write_file(f"{where}/{name}", data, 0o600, create=0o600)
        else:
            _write_file(f"{where}/{name}", data)
    _write_file(where + "/manifest.json", b.manifest_json())


def _write_file(path: str, data: bytes, mode: int | None = None, create: int = 0o666) -> None:
    """As Path.write_bytes (then chmod to `mode`)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, create)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _current(b: Bundle, base: Path) -> bool:
    """Is the bundle on disk already this one? (Its manifest lists every file's sha256.)"""
    try:
        if (base / "manifest.json").read_bytes() != b.manifest_json():
            return False
        if (base / b.script_name).read_bytes() != b.script.encode():
            return False  # edited by hand since
        secret = set(b.secret_files)   # the manifest has no checksum of these: compare them
        return all((base / name).read_bytes() == data if name in secret
                   else (base / name).stat().st_size == len(data) for name, data in b.files)
    except OSError:
        return False
