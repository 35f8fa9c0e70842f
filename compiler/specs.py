"""The spec model: node-spec, server-spec, group-spec, cluster-spec, and the operations
converge and lift. Specs are frozen; `:extends` is merged when a spec is made, as in Pallet:
inherited phase bodies run first, in the order of :extends; roles are united; node-specs merge.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pallet.errors import Span
from pallet.grammar.forms import Keyword, MapForm, VectorForm, span_of

from .core import describe
from .model import NodeFacts
from .spelling import closest
from .values import ArgError, Builtin, Fn, PhaseFn

NODE_SPEC_SECTIONS = {
    "image": {"os-family", "os-version-matches", "os-version", "os-64-bit", "image-id",
              "login-user", "architecture"},
    "hardware": {"min-cores", "min-ram", "min-disk", "hardware-id"},
    "network": {"inbound-ports"},
    "location": {"location-id", "region"},
    "qos": {"spot-price", "enable-monitoring"},
}
# Where each phase runs when the user names none: Pallet's usual lifecycle order first.
PHASE_ORDER = ("bootstrap", "settings", "install", "configure", "deploy", "start", "stop")


@dataclass(frozen=True, eq=False)
class NodeSpec:
    image: dict = field(default_factory=dict)
    hardware: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)
    location: dict = field(default_factory=dict)
    qos: dict = field(default_factory=dict)

    def merge(self, other: "NodeSpec | None") -> "NodeSpec":
        if other is None:
            return self
        return NodeSpec(**{s: {**getattr(self, s), **getattr(other, s)} for s in NODE_SPEC_SECTIONS})

    @property
    def os_family(self) -> str | None:
        family = self.image.get(Keyword("os-family"))
        return family.name if isinstance(family, Keyword) else family

    def describe(self) -> str:
        return "a node-spec"


@dataclass(frozen=True, eq=False)
class ServerSpec:
    phases: tuple[tuple[str, tuple[Any, ...]], ...] = ()   # phase name -> phase functions
    roles: frozenset[str] = frozenset()
    default_phases: tuple[str, ...] = ()
    packager: str | None = None
    node_spec: NodeSpec | None = None
    span: Span | None = field(default=None, compare=False)

    def phase(self, name: str) -> tuple[Any, ...]:
        return dict(self.phases).get(name, ())

    @property
    def phase_names(self) -> tuple[str, ...]:
        names = [p for p, _ in self.phases]
        return tuple(sorted(names, key=lambda p: (PHASE_ORDER.index(p) if p in PHASE_ORDER
                                                  else len(PHASE_ORDER), p)))

    def describe(self) -> str:
        return "a server-spec"


@dataclass(frozen=True, eq=False)
class GroupSpec(ServerSpec):
    name: str = ""
    count: int | None = None
    # For a cluster's copy of a group ("hadoop-slaves"), the group it was made from ("slaves").
    origin: "GroupSpec | None" = field(default=None, compare=False, repr=False)
    compute: Any = None             # the group's own compute service (ComputeRef), if any

    def describe(self) -> str:
        return f"the group-spec {self.name!r}"


@dataclass(frozen=True, eq=False)
class ClusterSpec:
    name: str
    groups: tuple[GroupSpec, ...]
    span: Span | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"the cluster-spec {self.name!r}"


@dataclass(frozen=True, eq=False)
class ComputeRef:
    """A compute service named in a spec (`aws-ec2`, `local`...); runtime/ resolves it."""

    name: str

    def describe(self) -> str:
        return f"the compute service {self.name}"


@dataclass(frozen=True, eq=False)
class NodeList(ComputeRef):
    """`(node-list [{:name "tt-1" :group "task-tracker" :host "10.0.0.1" ...} ...])`: existing
    servers, written in the spec; the same nodes a TOML inventory describes."""

    nodes: tuple[NodeFacts, ...] = ()
    span: Span | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"a node-list of {len(self.nodes)} node{'' if len(self.nodes) == 1 else 's'}"


@dataclass(frozen=True, eq=False)
class NodeListService(ComputeRef):
    """`node-list`: the compute service of existing servers (`:compute node-list`); called
    with a vector of node maps, it makes a NodeList."""

    def invoke(self, ev, args, form) -> NodeList:
        return node_list(args, form)


def node_list(args, form) -> NodeList:
    """Each node map is checked as a TOML inventory's [[node]] is; an error points at the
    offending key's value (or the map) when the vector is written in the call."""
    from pallet.errors import PalletError
    from .inventory import SPEC_WORDS, node_facts
    call = span_of(form)
    if len(args) != 1 or not isinstance(args[0], (tuple, list)):
        raise PalletError('node-list takes a vector of node maps: (node-list [{:name "n1" '
                          ':group "web" :host "10.0.0.1"} ...])', call)
    entries = args[0]
    if not entries:
        raise PalletError("node-list needs at least one node", call)
    literal = form.items[1] if form is not None and len(form.items) == 2 else None
    forms = literal.items if isinstance(literal, VectorForm) and len(literal.items) == len(entries) else None
    nodes, seen = [], {}
    for i, entry in enumerate(entries):
        entry_form = forms[i] if forms is not None else None
        where = span_of(entry_form) or call
        pairs = dict((k.name, (k, v)) for k, v in entry_form.pairs
                     if isinstance(k, Keyword)) if isinstance(entry_form, MapForm) else {}

        def err(message, key=None, pairs=pairs, where=where):
            at = where
            if key in pairs:
                key_form, value_form = pairs[key]
                from .inventory import KEYS
                at = span_of(key_form if key not in KEYS else value_form) or where
            return PalletError(f"node-list: {message}", at)

        if not isinstance(entry, dict):
            raise err("each node is a map such as {:name \"n1\" :group \"web\" :host \"10.0.0.1\"}")
        plain = {}
        for key, value in entry.items():
            if not isinstance(key, Keyword):
                raise err(f"a node's keys are keywords such as :name, not {key!r}")
            plain[key.name] = _plain_node_value(key.name, value)
        place = str(where) if where is not None else f"node {i + 1}"
        nodes.append(node_facts(plain, err, seen, place, where, SPEC_WORDS))
    return NodeList("node-list", tuple(nodes), call)


def _plain_node_value(key: str, value: Any) -> Any:
    """Spec values as an inventory holds them: keywords by name, roles as a list of names."""
    if isinstance(value, Keyword):
        return value.name
    if key == "roles" and isinstance(value, (tuple, list, frozenset)):
        items = sorted(value, key=str) if isinstance(value, frozenset) else value
        return [v.name if isinstance(v, Keyword) else v for v in items]
    return value


@dataclass(frozen=True, eq=False)
class Operation:
    """A `(converge ...)` or `(lift ...)` written in a spec file."""

    kind: str
    groups: tuple[tuple[GroupSpec, int | None], ...]
    phases: tuple[str, ...]
    compute: Any = None
    span: Span | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"a {self.kind} operation"


def _options(args: tuple, allowed: set[str], what: str, offset: int = 0) -> dict[str, Any]:
    """Keyword options `:key value ...`; errors point at the offending keyword."""
    if len(args) % 2:
        raise ArgError(f"{what} options come in :key value pairs", offset + len(args) - 1)
    out: dict[str, Any] = {}
    for i in range(0, len(args), 2):
        key = args[i]
        if not isinstance(key, Keyword):
            raise ArgError(f"expected an option keyword, got {describe(key)}", offset + i)
        if key.name not in allowed:
            close = closest(key.name, allowed, cutoff=0.6)
            hint = f"; did you mean :{close}?" if close else f"; options: {' '.join(':' + a for a in sorted(allowed))}"
            raise ArgError(f"unknown option {key}{hint}", offset + i)
        out[key.name] = (args[i + 1], offset + i + 1)
    return out


def opts_index(args: tuple, name: str) -> int:
    """The index (in a call's arguments, the name counting as 0) of an option's keyword."""
    for i, a in enumerate(args):
        if isinstance(a, Keyword) and a.name == name:
            return i
    return 0


def _kw_name(value: Any, index: int, what: str) -> str:
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, str):
        return value
    raise ArgError(f"{what} must be a keyword or a string", index)


def _node_spec(*args) -> NodeSpec:
    opts = _options(args, set(NODE_SPEC_SECTIONS), "node-spec")
    sections = {}
    for name, (value, index) in opts.items():
        if not isinstance(value, dict):
            raise ArgError(f":{name} must be a map", index)
        for key in value:
            if not isinstance(key, Keyword) or key.name not in NODE_SPEC_SECTIONS[name]:
                allowed = " ".join(":" + k for k in sorted(NODE_SPEC_SECTIONS[name]))
                raise ArgError(f"unknown key {key} in :{name}; keys: {allowed}", index)
        sections[name] = dict(value)
    return NodeSpec(**sections)


SERVER_OPTIONS = {"phases", "extends", "roles", "default-phases", "packager", "node-spec",
                  *NODE_SPEC_SECTIONS}


def _server_parts(opts: dict) -> dict[str, Any]:
    """Merge :extends, then this spec's own options over them."""
    phases: dict[str, tuple] = {}
    roles: set[str] = set()
    default_phases: tuple[str, ...] = ()
    packager = None
    node_spec: NodeSpec | None = None
    if "extends" in opts:
        value, index = opts["extends"]
        parents = value if isinstance(value, (tuple, list)) else (value,)
        for parent in parents:
            if not isinstance(parent, ServerSpec):
                raise ArgError(f":extends takes server-specs, got {describe(parent)}", index)
            for name, fns in parent.phases:
                phases[name] = phases.get(name, ()) + fns
            roles |= parent.roles
            default_phases = default_phases or parent.default_phases
            packager = parent.packager or packager
            node_spec = (node_spec or NodeSpec()).merge(parent.node_spec) if parent.node_spec else node_spec
    if "phases" in opts:
        value, index = opts["phases"]
        if not isinstance(value, dict):
            raise ArgError(":phases must be a map of phase keyword to phase-fn", index)
        for key, fn in value.items():
            name = _kw_name(key, index, "a phase name")
            if not isinstance(fn, (PhaseFn, Fn)):
                raise ArgError(f"phase :{name} must be a phase-fn, got {describe(fn)}", index)
            phases[name] = phases.get(name, ()) + (fn,)
    if "roles" in opts:
        value, index = opts["roles"]
        items = value if isinstance(value, (tuple, frozenset, set, list)) else (value,)
        roles |= {_kw_name(r, index, "a role") for r in items}
    if "default-phases" in opts:
        value, index = opts["default-phases"]
        items = value if isinstance(value, (tuple, list)) else (value,)
        default_phases = tuple(_kw_name(p, index, "a phase") for p in items)
    if "packager" in opts:
        packager = _kw_name(opts["packager"][0], opts["packager"][1], ":packager")
    if "node-spec" in opts:
        value, index = opts["node-spec"]
        if value is not None and not isinstance(value, NodeSpec):
            raise ArgError(":node-spec takes a node-spec", index)
        node_spec = (node_spec or NodeSpec()).merge(value) if value else node_spec
    shorthand = [(k, opts[k]) for k in NODE_SPEC_SECTIONS if k in opts]
    if shorthand:  # :image {...} on a spec is short for :node-spec (node-spec :image {...})
        flat = tuple(x for k, (v, _) in shorthand for x in (Keyword(k), v))
        try:
            extra = _node_spec(*flat)
        except ArgError as exc:
            raise ArgError(exc.message, shorthand[0][1][1]) from None
        node_spec = (node_spec or NodeSpec()).merge(extra)
    return dict(phases=tuple(phases.items()), roles=frozenset(roles),
                default_phases=default_phases, packager=packager, node_spec=node_spec)


def _server_spec(ev, form, *args) -> ServerSpec:
    return ServerSpec(**_server_parts(_options(args, SERVER_OPTIONS, "server-spec")),
                      span=span_of(form))


def _group_spec(ev, form, name, *args) -> GroupSpec:
    group_name = _kw_name(name, 0, "a group name")
    opts = _options(args, SERVER_OPTIONS | {"count", "compute"}, "group-spec", offset=1)
    compute = opts.pop("compute", (None,))[0]
    if isinstance(compute, (Keyword, str)):
        compute = ComputeRef(compute.name if isinstance(compute, Keyword) else compute)
    if compute is not None and not isinstance(compute, ComputeRef):
        raise ArgError(":compute takes a compute service: aws-ec2, (compute-service \"lab\"), "
                       ":lab or \"lab\"", opts_index(args, "compute") + 1)
    count = None
    if "count" in opts:
        count, index = opts.pop("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ArgError(":count must be a whole number", index)
    parts = _server_parts(opts)
    defined = {p for p, _ in parts["phases"]}
    for phase in parts["default_phases"]:
        if phase not in defined:
            close = closest(phase, defined, cutoff=0.6)
            raise ArgError(f":default-phases names :{phase}, which the group does not define" +
                           (f"; did you mean :{close}?" if close else "") +
                           f" (phases: {' '.join(':' + d for d in sorted(defined)) or 'none'})",
                           opts["default-phases"][1] if "default-phases" in opts else None)
    return GroupSpec(**parts, name=group_name, count=count, span=span_of(form), compute=compute)


def _cluster_spec(ev, form, name, *args) -> ClusterSpec:
    cluster = _kw_name(name, 0, "a cluster name")
    opts = _options(args, {"groups", "extends", "node-spec", "roles"}, "cluster-spec", offset=1)
    groups_value, index = opts.pop("groups", ((), 0))
    shared = _server_parts(opts)
    groups = []
    for g in groups_value:
        if not isinstance(g, GroupSpec):
            raise ArgError(":groups takes group-specs", index)
        phases = dict(shared["phases"])
        for phase, fns in g.phases:
            phases[phase] = phases.get(phase, ()) + fns
        node_spec = shared["node_spec"].merge(g.node_spec) if shared["node_spec"] else g.node_spec
        groups.append(GroupSpec(tuple(phases.items()), g.roles | shared["roles"],
                                g.default_phases or shared["default_phases"],
                                g.packager or shared["packager"], node_spec, g.span,
                                name=f"{cluster}-{g.name}", count=g.count, origin=g,
                                compute=g.compute))
    return ClusterSpec(cluster, tuple(groups), span_of(form))


def groups_of(value: Any) -> tuple[GroupSpec, ...]:
    if isinstance(value, GroupSpec):
        return (value,)
    if isinstance(value, ClusterSpec):
        return value.groups
    if isinstance(value, (tuple, list, frozenset)):
        return tuple(g for v in value for g in groups_of(v))
    return ()


def _operation(ev, form, kind, target, *args):
    opts = _options(args, {"phase", "compute", "environment", "user"}, kind, offset=1)
    if kind == "converge":
        if not isinstance(target, dict):
            raise ArgError("converge takes a map of group-spec to count", 0)
        groups = []
        for g, n in target.items():
            if n is None and isinstance(g, ClusterSpec):  # each group to its own :count
                missing = [x.name for x in g.groups if x.count is None]
                if missing:
                    raise ArgError(f"converge of {g.describe()} to the counts of its groups: "
                                   f"{', '.join(missing)} has no :count", 0)
                groups += [(x, x.count) for x in g.groups]
                continue
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ArgError("each count must be a whole number", 0)
            if isinstance(g, ClusterSpec):
                groups += [(x, n) for x in g.groups]
            elif isinstance(g, GroupSpec):
                groups.append((g, n))
            else:
                raise ArgError("converge counts group-specs or cluster-specs", 0)
    else:
        found = groups_of(target)
        if not found:
            raise ArgError("lift takes a group-spec, a cluster-spec or a vector of them", 0)
        groups = [(g, None) for g in found]
    phases: tuple[str, ...] = ()
    if "phase" in opts:
        value, index = opts["phase"]
        items = value if isinstance(value, (tuple, list)) else (value,)
        phases = tuple(_kw_name(p, index, "a phase") for p in items)
        defined = {p for g, _ in groups for p, _ in g.phases}
        for p in phases:
            if p not in defined:
                close = closest(p, defined, cutoff=0.6)
                raise ArgError(f"no group of this {kind} defines the phase :{p}" +
                               (f"; did you mean :{close}?" if close else "") +
                               f" (phases: {' '.join(':' + d for d in sorted(defined)) or 'none'})",
                               index)
    op = Operation(kind, tuple(groups), phases, opts.get("compute", (None,))[0], span_of(form))
    _note(ev, op)
    return op


def _note(ev, op: Operation) -> None:
    # Only the operations of the file being run count, not those of files it requires.
    if not ev._loading:
        ev.operations.append(op)


def _create_cluster(ev, form, cluster, compute=None):
    """The talk's (create-cluster cluster compute): converge every group to its :count."""
    if not isinstance(cluster, ClusterSpec):
        raise ArgError("create-cluster takes a cluster-spec", 0)
    op = Operation("converge", tuple((g, g.count if g.count is not None else 1) for g in cluster.groups),
                   (), compute, span_of(form))
    _note(ev, op)
    return op


def _compute_service(name) -> ComputeRef:
    """Pallet's (compute-service :lab): the service of that name in the services file."""
    return ComputeRef(_kw_name(name, 0, "a compute service name"))


SPEC_BUILTINS = {
    "compute-service": Builtin("compute-service", _compute_service),
    "create-cluster": Builtin("create-cluster", _create_cluster, contextual=True),
    "node-spec": Builtin("node-spec", _node_spec),
    "server-spec": Builtin("server-spec", _server_spec, contextual=True),
    "group-spec": Builtin("group-spec", _group_spec, contextual=True),
    "cluster-spec": Builtin("cluster-spec", _cluster_spec, contextual=True),
    "converge": Builtin("converge", lambda ev, form, *a: _operation(ev, form, "converge", *a), True),
    "lift": Builtin("lift", lambda ev, form, *a: _operation(ev, form, "lift", *a), True),
    **{name: ComputeRef(name) for name in ("aws-ec2", "virtualbox", "local")},
    "node-list": NodeListService("node-list"),
}
