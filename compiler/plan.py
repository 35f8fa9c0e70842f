"""Planning: run a group's phase functions for one node and collect the actions they record.

While a phase runs, `Evaluator.plan` holds a PlanContext: the node, its group, every other
node (for relationships such as nodes-in-group), and the settings made so far.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pallet.crates.action_options import ACTION_OPTIONS  # shared with crates/actions.py
from pallet.crates.actions import core_library
from pallet.errors import PalletError
from pallet.grammar.forms import Keyword, span_of
from pallet.secret import has_secret
from pallet.stevedore import ScriptLibrary, Target

from .bundle import target_of
from .core import describe
from .model import Action, NodeFacts
from .specs import GroupSpec
from .spelling import closest
from .values import ArgError, Builtin

ACTION_ARITY = {"file": 1, "directory": 1, "symbolic-link": 2, "remote-file": 1, "user": 1,
                "group": 1, "service": 1, "sed": 2, "package": 1, "packages": 1,
                "package-manager": 1, "package-source": 1}


@dataclass
class World:
    """Every node being compiled, and the settings each has made."""

    nodes: tuple[tuple[NodeFacts, GroupSpec], ...]
    # node -> (facility, instance id or None) -> map (crate_api.py)
    settings: dict[str, dict[tuple[str, Any], Any]] = field(default_factory=dict)
    # Values phases published on the nodes while running (node -> key -> text): known only
    # to phases that run after the one that published them.
    published: dict[str, dict[str, str]] = field(default_factory=dict)
    # Atoms of the spec (made while loading): their values once every :settings phase ran,
    # each node's own values after its phases, and the node they hold now. A node's phases
    # see what its earlier phases did to them, never another node's (whatever the order or
    # the process the nodes are planned in).
    atoms_base: list | None = None
    atoms_of: dict[str, list] = field(default_factory=dict)
    atoms_node: str | None = None


@dataclass
class PlanContext:
    node: NodeFacts
    group: GroupSpec
    phase: str
    world: World
    actions: list[Action] = field(default_factory=list)
    allow_actions: bool = True

    def script_target(self) -> Target:
        """The shell and OS the node's scripts are compiled for (`(str (script ...))`)."""
        return target_of(self.node, self.group)

    @staticmethod
    def script_library() -> ScriptLibrary:
        """The script functions the bundles use."""
        return core_library()


def record(ev, form, kind: str, args: tuple, options: tuple, label: str) -> None:
    plan = ev.plan
    if plan is None:
        raise PalletError(f"{kind} is an action: call it inside a phase-fn or a crate function",
                          span_of(form))
    if not plan.allow_actions:
        raise PalletError(f"{kind}: the :settings phase computes settings; actions belong in "
                          "other phases", span_of(form))
    call = span_of(ev.crate_calls[0][1]) if ev.crate_calls else None
    plan.actions.append(Action(kind, args, options, span_of(form), label, tuple(ev.calls), call))
    return None


def _action(kind: str) -> Builtin:
    def act(ev, form, *args):
        arity = ACTION_ARITY[kind]
        if kind == "packages" and (not args or isinstance(args[0], Keyword)):
            arity = 0  # Pallet's (packages :apt [...] :yum [...]): names per packager only
        elif len(args) < arity or isinstance(args[0], Keyword) and kind != "package-manager":
            raise ArgError(f"takes {arity} argument{'s' if arity > 1 else ''} before its options")
        positional, rest = args[:arity], args[arity:]
        if len(rest) % 2:
            raise ArgError("options come in :key value pairs", len(args) - 1)
        options = []
        for i in range(0, len(rest), 2):
            key = rest[i]
            allowed = ACTION_OPTIONS[kind]
            if not isinstance(key, Keyword):
                raise ArgError(f"expected an option keyword, got {describe(key)}", arity + i)
            if key.name not in allowed:
                close = closest(key.name, allowed, cutoff=0.6)
                hint = f"; did you mean :{close}?" if close else (
                    f"; options: {' '.join(':' + a for a in sorted(allowed))}" if allowed else "")
                raise ArgError(f"unknown option {key}{hint}", arity + i)
            options.append((key.name, rest[i + 1]))
        for i, value in enumerate(positional):
            if kind in ("packages",):
                if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
                    raise ArgError("takes a vector of package names", i)
            elif kind == "sed" and i == 1:
                if not isinstance(value, dict):
                    raise ArgError("takes a map of pattern to replacement", i)
            elif kind == "package-manager":
                if not isinstance(value, Keyword):
                    raise ArgError("takes an action keyword such as :update", i)
            elif has_secret(value):
                raise ArgError("a secret cannot be in its arguments: they are shown in labels "
                               "and logs; secrets go into files (remote-file :content) and "
                               "scripts (~ in exec-script)", i)
            elif not isinstance(value, str):
                raise ArgError(f"expected a string, got {describe(value)}", i)
        label = f"{kind} {' '.join(_label_part(v) for v in positional)}"
        return record(ev, form, kind, tuple(positional), tuple(options), label)
    return Builtin(kind, act, contextual=True)


def _label_part(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def _plan(ev, form) -> PlanContext:
    if ev.plan is None:
        raise ArgError("asks about the target node, so it works only inside a phase")
    return ev.plan


def _group_name(value: Any) -> str:
    if isinstance(value, GroupSpec):
        return value.name
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, str):
        return value
    raise ArgError("expected a group name (keyword or string) or a group-spec", 0)


def _nodes_in_group(ev, form, group):
    name = _group_name(group)
    return tuple(n for n, g in _plan(ev, form).world.nodes if g.name == name)


def _nodes_with_role(ev, form, role):
    role_name = role.name if isinstance(role, Keyword) else str(role)
    return tuple(n for n, g in _plan(ev, form).world.nodes if role_name in g.roles | n.roles)


def _node_attr(attr):
    def get(node):
        if not isinstance(node, NodeFacts):
            raise ArgError("expected a node (from nodes-in-group or nodes-with-role)", 0)
        value = getattr(node, attr)
        return value if value is not None else getattr(node, "host")
    return get


def _published(ev, form, node, key, default=None):
    name = node.name if isinstance(node, NodeFacts) else str(node)
    k = key.name if isinstance(key, Keyword) else str(key)
    return _plan(ev, form).world.published.get(name, {}).get(k, default)


def _ctx(fn):
    return lambda ev, form: fn(_plan(ev, form))


PLAN_BUILTINS = {
    **{kind: _action(kind) for kind in ACTION_ARITY},
    "target-name": Builtin("target-name", _ctx(lambda p: p.node.name), True),
    "target-ip": Builtin("target-ip", _ctx(lambda p: p.node.private_ip or p.node.host), True),
    "target-node": Builtin("target-node", _ctx(lambda p: p.node), True),
    "os-family": Builtin("os-family", _ctx(lambda p: Keyword(p.node.os_family)), True),
    "os-version": Builtin("os-version", _ctx(lambda p: p.node.os_version), True),
    "group-name": Builtin("group-name", _ctx(lambda p: p.group.name), True),
    # the group's roles and the node's own (from its inventory entry), as nodes-with-role sees them
    "target-roles": Builtin("target-roles", _ctx(lambda p: frozenset(
        Keyword(r) for r in p.group.roles | p.node.roles)), True),
    "phase-name": Builtin("phase-name", _ctx(lambda p: Keyword(p.phase)), True),
    "nodes-in-group": Builtin("nodes-in-group", _nodes_in_group, True),
    "nodes-with-role": Builtin("nodes-with-role", _nodes_with_role, True),
    "node-ip": Builtin("node-ip", _node_attr("private_ip")),
    "node-name": Builtin("node-name", _node_attr("name")),
    "node-address": Builtin("node-address", _node_attr("host")),
    "published": Builtin("published", _published, True),
}


def plan_phase(ev, node: NodeFacts, group: GroupSpec, phase: str, world: World) -> tuple[Action, ...]:
    """The actions `phase` records for `node`, in order."""
    if ev.atoms and phase != "settings":
        _atoms_for(ev, world, node.name)
    ctx = PlanContext(node, group, phase, world, allow_actions=(phase != "settings"))
    saved, ev.plan = ev.plan, ctx
    try:
        for fn in group.phase(phase):
            ev.apply(fn, [], None)
    finally:
        ev.plan = saved
    return tuple(ctx.actions)


def _atoms_for(ev, world: World, name: str) -> None:
    """Give the spec's atoms the values they have for node `name` (see World)."""
    if world.atoms_base is None:
        world.atoms_base = [a.value for a in ev.atoms]
    if world.atoms_node == name:
        return
    if world.atoms_node is not None:
        world.atoms_of[world.atoms_node] = [a.value for a in ev.atoms]
    values = world.atoms_of.get(name, world.atoms_base)
    for atom, value in zip(ev.atoms, values):
        atom.value = value
    world.atoms_node = name
