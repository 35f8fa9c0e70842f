"""`pallet compile` of a whole project into an output directory: plan, build and write every
bundle.

A bundle depends only on the world (every node and the settings its :settings phase made)
and on its own node's phases. So once :settings has run for every node, the nodes are shared
out: forked workers each plan, build and write the bundles of their nodes, while this process
does a share too. The output is byte for byte what one process makes (a test compares them),
and it reaches the output directory only when every bundle is made (bundle.OutputWriter).
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from pallet.errors import PalletError

from .bundle import BundleEntry, OutputWriter, build_bundle, entry_of

# Below this many bundles a worker costs more than it saves.
PARALLEL_FROM = 200

_WORK: "_Work | None" = None  # what forked workers read: set just before the fork


class _Work:
    def __init__(self, project, world, units, read_file, writer: OutputWriter, shell):
        from pallet.crates.actions import RenderMemo
        self.project, self.world, self.units = project, world, units
        self.read_file, self.writer, self.shell = read_file, writer, shell
        self.memo = RenderMemo()

    def make(self, index: int) -> tuple[BundleEntry, bool]:
        node, group, phase = self.units[index]
        actions = self.project.plan_one(self.world, node, group, phase)
        bundle = build_bundle(node, group, phase, actions, self.read_file, self.shell, self.memo)
        return entry_of(bundle), self.writer.stage(bundle)


def compile_to_directory(project, nodes, phases: tuple[str, ...],
                         read_file: Callable[[str], bytes], out: Path, spec: str,
                         jobs: int = 1, shell: str | None = None) -> tuple[BundleEntry, ...]:
    """Every bundle of `project` for `nodes`, written to `out`; their entries, in order."""
    global _WORK
    project.check_phases(nodes, phases)
    with no_cycle_collection():
        world = project.world(nodes)
        units = project.bundles(nodes, phases)
        writer = OutputWriter(Path(out), spec)
        work = _Work(project, world, units, read_file, writer, shell)
        try:
            made = _make_all(work, jobs)
            writer.finish([made[i][0] for i in range(len(units))],
                          [made[i][0].path for i in range(len(units)) if made[i][1]])
        except BaseException:
            writer.discard([f"{node.name}/{phase}" for node, _, phase in units])
            raise
        finally:
            _WORK = None
    return tuple(made[i][0] for i in range(len(units)))


def _make_all(work: _Work, jobs: int) -> dict[int, tuple[BundleEntry, bool]]:
    global _WORK
    by_node: dict[str, list[int]] = {}
    for i, (node, _, _) in enumerate(work.units):
        by_node.setdefault(node.name, []).append(i)
    nodes = list(by_node.values())
    made: dict[int, tuple[BundleEntry, bool]] = {}
    if not nodes:
        return made
    for i in nodes[0]:  # in this process first: the library's caches are warm before a fork
        made[i] = work.make(i)
    rest = nodes[1:]
    if jobs < 2 or len(work.units) < PARALLEL_FROM:
        for indices in rest:
            for i in indices:
                made[i] = work.make(i)
        return made
    import multiprocessing
    # Whole nodes, dealt out in turn: a node's phases plan in order in one process.
    shares = [[i for indices in rest[k::jobs] for i in indices] for k in range(jobs)]
    _WORK = work
    with multiprocessing.get_context("fork").Pool(jobs - 1) as pool:
        pending = pool.map_async(_make_share, shares[1:])
        results = [_make_share(shares[0]), *pending.get()]
    for result in results:
        if result[0] == "error":
            _raise_located(work, result[1], result[2])
        made.update(result[1])
    return made


def _make_share(indices: list[int]):
    work = _WORK
    assert work is not None
    out = {}
    for i in indices:
        try:
            out[i] = work.make(i)
        except PalletError as exc:  # crosses the process boundary as text; see _raise_located
            return ("error", i, exc.message)
    return ("ok", out)


def _raise_located(work: _Work, index: int, message: str):
    """A worker's error, raised here with its place: the failing node's phases are planned
    again in this process, up to the one that failed."""
    node = work.units[index][0]
    for i, (other, group, phase) in enumerate(work.units[:index + 1]):
        if other is node:
            actions = work.project.plan_one(work.world, other, group, phase)
            if i == index:
                build_bundle(other, group, phase, actions, work.read_file, work.shell)
    raise PalletError(message)


@contextmanager
def no_cycle_collection():
    """Planning and building make many small objects and free few: the cycle collector
    would scan them again and again (a third of a large compile's time) for nothing.
    (The collector is paused, not off: it runs again after the block.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
