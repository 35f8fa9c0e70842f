"""A loaded spec file and its targets: the entry point of the compile pipeline.

    project = load_project(path)                 # evaluate the spec (files read via a loader)
    nodes = project.targets(inventory=..., os_spec=...)
    plans = project.plan(nodes, phases)         # {(node name, phase): (Action, ...)}
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from pallet.errors import PalletError, Source, Span

from .evaluator import Evaluator
from .model import Action, NodeFacts
from .plan import PLAN_BUILTINS, World, plan_phase
from .spelling import closest
from .specs import (SPEC_BUILTINS, PHASE_ORDER, ClusterSpec, GroupSpec, NodeList, Operation,
                    groups_of)

if TYPE_CHECKING:
    from .crates import CrateIndex


def core_env() -> dict[str, Any]:
    from .core import CORE
    from .secrets import secret_builtins
    from .crate_api import BUILTINS as CRATE_API
    from .versions import BUILTINS as VERSIONS
    return {**CORE, **SPEC_BUILTINS, **PLAN_BUILTINS, **CRATE_API, **VERSIONS, **secret_builtins()}


def file_loader(search_path: Iterable[Path] = (), index: "CrateIndex | None" = None
                ) -> Callable[[str, str | None], tuple[str, str]]:
    """Load `require`d files (relative to the requiring file) and crate namespaces: from the
    search path, then installed crate packages, then the bundled crates (see crates.py)."""
    from .crates import CrateIndex
    crates = index if index is not None else CrateIndex(search_path)

    def load(name: str, relative_to: str | None) -> tuple[str, str]:
        if name.endswith(".pallet") or "/" in name:
            base = Path(relative_to).parent if relative_to and not relative_to.startswith("<") else Path.cwd()
            path = base / name
            return str(path), _read(path)
        found = crates.find(name)
        if found is None:
            raise PalletError(crates.not_found(name))
        return found.display, found.read()
    return load


def local_reader(base: Path) -> Callable[[str], bytes]:
    """Local files for `slurp`: relative paths are relative to the spec, as :local-file."""
    def read(name: str) -> bytes:
        target = Path(name)
        target = target if target.is_absolute() else base / target
        try:
            return target.read_bytes()
        except OSError as exc:
            raise PalletError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return read


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PalletError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PalletError(f"{path}: cannot read: {exc}") from None


@dataclass
class Project:
    evaluator: Evaluator
    file: str
    groups: tuple[GroupSpec, ...]
    operations: tuple[Operation, ...]
    node_lists: tuple[NodeList, ...] = ()    # (node-list ...) values the spec compiles for

    def spec_nodes(self) -> tuple[NodeFacts, ...] | None:
        """The nodes of the spec's own node-lists, or None when it has none."""
        if not self.node_lists:
            return None
        nodes: list[NodeFacts] = []
        seen: dict[str, NodeFacts] = {}
        for node_list in self.node_lists:
            for node in node_list.nodes:
                if node.name in seen:
                    raise PalletError(f"node-list: node name {node.name!r} is in two node-lists "
                                      f"(first at {seen[node.name].span})", node.span)
                seen[node.name] = node
                nodes.append(node)
        return tuple(nodes)

    def group(self, name: str) -> GroupSpec | None:
        return next((g for g in self.groups if g.name == name), None)

    def targets(self, inventory: tuple[NodeFacts, ...] | None = None,
                os_spec: str | None = None) -> tuple[tuple[NodeFacts, GroupSpec], ...]:
        """The nodes to compile for: the inventory's nodes of known groups, or one node per
        group for an OS (image baking, offline use), or, given neither, the nodes of the
        spec's own (node-list ...)."""
        what = "inventory node"
        if inventory is None and not os_spec:
            inventory, what = self.spec_nodes(), "node-list node"
        if inventory is not None:
            out = []
            for node in inventory:
                group = self.group(node.group)
                if group is None:
                    names = [g.name for g in self.groups]
                    close = closest(node.group, names, cutoff=0.6)
                    raise PalletError(f"{what} {node.name!r} is in group {node.group!r}, "
                                      f"which {self.file} does not define" +
                                      (f"; did you mean {close!r}?" if close else "") +
                                      f" (groups: {', '.join(names) or 'none'})", node.span)
                if not node.os_family:
                    raise PalletError(f"{what} {node.name!r} has no os-family; add "
                                      "os-family and os-version, or let `pallet lift` detect them",
                                      node.span)
                out.append((node, group))
            return tuple(out)
        if not os_spec:
            raise PalletError("say what to compile for: --nodes INVENTORY or --os FAMILY-VERSION, "
                              "or write a (node-list [...]) in the spec")
        from pallet.stevedore import target_for
        target = target_for(os_spec)
        return tuple((NodeFacts(g.name, g.name, target.os_family or "", target.os_version,
                                roles=g.roles), g) for g in self.groups)

    def phases_for(self, group: GroupSpec, requested: tuple[str, ...]) -> tuple[str, ...]:
        """The phases to run for a group: those asked for; else the :phase of the spec's own
        converge or lift that names the group; else the group's :default-phases; else every
        phase the group defines (:settings always runs first, apart from these)."""
        if requested:
            return requested
        for op in self.operations:
            if op.phases and any(g is group or g.name == group.name for g, _ in op.groups):
                return op.phases
        if group.default_phases:
            return group.default_phases
        names = [p for p in group.phase_names if p != "settings"]
        return tuple(names) or ("configure",)

    def check_phases(self, nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
                     phases: tuple[str, ...]) -> None:
        for phase in phases:
            if not any(phase in dict(g.phases) for _, g in nodes):
                known = sorted({p for _, g in nodes for p in dict(g.phases)})
                close = closest(phase, known, cutoff=0.6)
                raise PalletError(f"--phase {phase}: no group of {self.file} defines the phase "
                                  f":{phase}" + (f"; did you mean :{close}?" if close else "") +
                                  f" (phases: {' '.join(':' + p for p in known) or 'none'})")

    def world(self, nodes: tuple[tuple[NodeFacts, GroupSpec], ...]) -> World:
        """The nodes, with the settings each made: :settings runs first for every node, so
        every phase can read every node's settings."""
        world = World(nodes)
        for node, group in nodes:
            plan_phase(self.evaluator, node, group, "settings", world)
        return world

    def phase_order(self, nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
                    phases: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Every phase to run, in order: a barrier each when the runtime runs them."""
        if phases:  # as the user named them
            return tuple(p for p in phases if p != "settings")
        order: list[str] = []
        for _, group in nodes:
            for phase in self.phases_for(group, phases):
                if phase != "settings" and phase not in order:
                    order.append(phase)
        # Across groups, Pallet's lifecycle order (install before configure...), then the rest
        # in the order first met.
        return tuple(sorted(order, key=lambda p: (PHASE_ORDER.index(p) if p in PHASE_ORDER
                                                  else len(PHASE_ORDER), order.index(p))))

    def plan_phase(self, world: World, phase: str,
                   phases: tuple[str, ...] = ()) -> dict[str, tuple[Action, ...]]:
        """The actions of one phase for every node whose group runs it."""
        out: dict[str, tuple[Action, ...]] = {}
        for node, group in world.nodes:
            if phase in self.phases_for(group, phases) and group.phase(phase):
                out[node.name] = plan_phase(self.evaluator, node, group, phase, world)
        return out

    def plan(self, nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
             phases: tuple[str, ...] = ()) -> dict[tuple[str, str], tuple[Action, ...]]:
        """Every node's actions for every phase (for `pallet compile`: no phase has run,
        so values published at run time are not known yet)."""
        self.check_phases(nodes, phases)
        world = self.world(nodes)
        return {(node.name, phase): self.plan_one(world, node, group, phase)
                for node, group, phase in self.bundles(nodes, phases)}

    def bundles(self, nodes: tuple[tuple[NodeFacts, GroupSpec], ...],
                phases: tuple[str, ...] = ()) -> list[tuple[NodeFacts, GroupSpec, str]]:
        """The bundles to make, node by node, each node's phases in order."""
        return [(node, group, phase) for node, group in nodes
                for phase in self.phases_for(group, phases)
                if phase != "settings" and group.phase(phase)]

    def plan_one(self, world: World, node: NodeFacts, group: GroupSpec,
                 phase: str) -> tuple[Action, ...]:
        """One node's actions for one phase. A node's phases plan in order; what a phase
        assoc's into settings its node's later phases see, other nodes only the :settings
        phase's (the nodes may be planned in separate processes)."""
        return plan_phase(self.evaluator, node, group, phase, world)


def load_project(path: str | Path, search_path: Iterable[Path] = (),
                 text: str | None = None, environ: Mapping[str, str] | None = None) -> Project:
    """`environ`: the controller's environment, for `(env "NAME")` (the command line gives
    os.environ; the compiler never reads it itself)."""
    path = Path(path)
    source = text if text is not None else _read(path)
    ev = Evaluator(core_env(), file_loader(search_path), environ)
    ev.read_local = local_reader(path.parent if text is None or str(path) != "-" else Path.cwd())
    ns = ev.load_text(source, str(path), cache=True)
    groups: dict[str, GroupSpec] = {}
    for op in ev.operations:
        for g, _ in op.groups:
            groups.setdefault(g.name, g)
    for value in ns.env.vars.values():
        if isinstance(value, (GroupSpec, ClusterSpec)):
            for g in groups_of(value):
                groups.setdefault(g.name, g)
    # A group that serves only as a member of a cluster ("slaves" in a cluster "hadoop") is
    # compiled as the cluster's copy ("hadoop-slaves"), not a second time on its own; unless
    # a converge or lift names the group itself.
    members = {id(g.origin) for g in groups.values() if g.origin is not None}
    alone = {id(g) for op in ev.operations for g, _ in op.groups}
    groups = {name: g for name, g in groups.items() if id(g) not in members or id(g) in alone}
    if not groups:
        raise PalletError(f"{path} defines no group-spec or cluster-spec to compile",
                          Span(Source(str(path), source), 1, 1, 1, 2))
    # The existing servers the spec names: the node-lists its converge/lift forms take as
    # :compute, else those it defines.
    lists = [op.compute for op in ev.operations if isinstance(op.compute, NodeList)]
    if not lists:
        lists = [v for v in ns.env.vars.values() if isinstance(v, NodeList)]
    node_lists = tuple({id(n): n for n in lists}.values())
    return Project(ev, str(path), tuple(groups.values()), tuple(ev.operations), node_lists)

