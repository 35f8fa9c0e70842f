"""Providers: where nodes come from (`pallet.runtime.model.Provider`).

    node-list   `NodeListProvider(path)`: the servers of a TOML inventory (`--nodes FILE`);
                it lists them and never creates or destroys any.
    local       `LocalProvider(state_dir)`: local Debian 12 nodes (`localnodes.LocalNodes`),
                the default when neither `--nodes` nor `--compute` is given.

    cloud       `cloud.provider.CloudProvider(service)`: the nodes of a compute service of the
                services file (`cloud/services.py`), through apache-libcloud.

`provider_for(name, inventory, state_dir)` picks one by name (`--compute NAME` or a spec's
`:compute`); a name that is neither built in nor a service is a located error naming the
near ones.

A local node's group is kept in `nodes/NAME/group.json` of the state directory, beside the
node's `node.json`, so it goes when the node is destroyed. A node whose group file is missing
(a create interrupted between starting the node and writing it) takes its group from its
name. Node names are `STEM-N`: the stem is the group's name as a hostname (lowercase, other
characters as '-'), N the lowest numbers not in use in the state directory.

The provider also keeps `known_hosts` in the state directory: one line per running node
(`[127.0.0.1]:PORT ssh-ed25519 ...`), rewritten whenever it lists, creates or destroys nodes,
so a transport can check the local nodes' host keys strictly without touching
~/.ssh/known_hosts (`SshOptions(known_hosts=provider.known_hosts)`).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

from pallet.errors import PalletError, Span

from .localnodes import (NAME_RE, NETWORKS, LocalNode, LocalNodes, NodesUnavailable, file_lock,
                         default_state_dir)
from .model import Endpoint, NodeRecord
from .provider_names import LOCAL, NODE_LIST, PROVIDERS, name_stem  # noqa: F401 (importers' names)

# Compute services of Pallet (jclouds/pallet-aws) that this version does not run on.
CLOUDS = ("aws-ec2", "ec2", "gce", "google-compute-engine", "azure", "digitalocean",
          "openstack", "rackspace", "linode", "hetzner", "virtualbox", "vmfest", "docker")
NETWORK_ENV = "PALLET_LOCAL_NETWORK"


class WithEndpointDefaults:
    """A provider whose nodes' endpoints take a jump host and a sudo password from the command
    line where the inventory gives none."""

    def __init__(self, provider, jump: Endpoint | None = None, sudo_password: str | None = None):
        self.inner = provider
        self.name = provider.name
        self.jump = jump
        self.sudo_password = sudo_password

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def _apply(self, records):
        from dataclasses import replace
        out = []
        for r in records:
            e = r.endpoint
            jump = self.jump
            if jump is not None and jump.private_key is None:
                jump = replace(jump, private_key=e.private_key)  # the node's key, as for ssh -J
            e = replace(e, jump=e.jump or jump,
                        sudo_password=e.sudo_password or self.sudo_password)
            out.append(replace(r, endpoint=e))
        return out

    def list_nodes(self):
        return self._apply(self.inner.list_nodes())

    def create_nodes(self, group, names, node_spec=None):
        return self._apply(self.inner.create_nodes(group, names, node_spec))

    def destroy_nodes(self, names):
        return self.inner.destroy_nodes(names)


class SpecNodeList:
    """The servers of a spec's own (node-list ...): like an inventory file, written in the
    spec. Key paths are relative to the spec's directory."""

    name = NODE_LIST

    def __init__(self, nodes, base: Path):
        self.nodes = tuple(nodes)
        self.base = Path(base)

    def list_nodes(self) -> list[NodeRecord]:
        records = []
        for fact in self.nodes:
            key_file = None
            if fact.private_key:
                p = Path(fact.private_key).expanduser()
                key_file = str(p if p.is_absolute() else self.base / p)
            endpoint = Endpoint(host=fact.host or fact.name, port=fact.port, user=fact.user,
                                private_key=key_file, password=_plain(fact.password),
                                sudo_password=_plain(fact.sudo_password))
            records.append(NodeRecord(fact.name, fact.group, endpoint, NODE_LIST,
                                      fact.os_family or None, fact.os_version, fact.private_ip,
                                      fact.roles))
        return records

    def create_nodes(self, group, names, node_spec=None):
        raise PalletError("a (node-list ...) names existing servers: it cannot create nodes; "
                          "add them to the node-list, or use local nodes (--compute local)")

    def destroy_nodes(self, names):
        raise PalletError("a (node-list ...) names existing servers: it cannot destroy nodes")


def _plain(value):
    """A password as the connection takes it: a (secret ...) by its value."""
    from pallet.secret import Secret
    return value.value if isinstance(value, Secret) else value


# -- node-list ---------------------------------------------------------------------------
class NodeListProvider:
    """The servers of a TOML inventory; see `pallet.compiler.inventory` for its format.

    `private-key` paths are relative to the inventory file's directory (`~` is expanded);
    `password` and `sudo-password` are passed on in the endpoint. The file is read on every
    `list_nodes()`; its errors point at the entry at fault.
    """

    name = NODE_LIST

    def __init__(self, path: str | os.PathLike, ssh_config=None, jump: str | None = None,
                 jump_key: str | None = None):
        """`ssh_config`: a `ssh_config.SshConfig`, or the file `SshConfig.named` takes (read at
        the first listing); `jump`, `jump_key`: --jump and --jump-key, for the entries that give
        no `jump` (they win over the config's ProxyJump)."""
        self.path = Path(path)
        self.ssh_config = ssh_config
        self.jump, self.jump_key = jump, jump_key

    def list_nodes(self) -> list[NodeRecord]:
        import tomllib

        from pallet.compiler.inventory import _key_span, parse_inventory
        from pallet.errors import Source
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PalletError(f"{self.path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PalletError(f"{self.path}: cannot read: {exc}") from None
        name = str(self.path)
        facts = parse_inventory(text, name)          # validates, with located errors
        from .ssh_config import SshConfig
        if not isinstance(self.ssh_config, SshConfig):
            self.ssh_config = SshConfig.named(self.ssh_config)
        config = self.ssh_config
        entries = tomllib.loads(text)["node"]         # for what NodeFacts does not keep
        source = Source(name, text)
        base = self.path.absolute().parent
        records = []
        for fact, entry in zip(facts, entries):
            line = fact.span.line if fact.span else 1
            secrets = {}
            for key in ("password", "sudo-password"):
                if key in entry and not isinstance(entry[key], str):
                    raise PalletError(f"{key} must be a string", _key_span(source, key, line))
                secrets[key] = entry.get(key)
            key_file = None
            if fact.private_key:
                p = Path(fact.private_key).expanduser()
                key_file = str(p if p.is_absolute() else base / p)
            jump_text, jump_key = entry.get("jump", self.jump), self.jump_key
            if "jump" in entry:
                if not isinstance(entry["jump"], str):
                    raise PalletError("jump must be a string: [user@]host[:port]",
                                      _key_span(source, "jump", line))
                jump_key = entry.get("jump-key")
                if jump_key is not None:
                    p = Path(str(jump_key)).expanduser()
                    jump_key = str(p if p.is_absolute() else base / p)
            try:
                jump = config.jump_endpoint(jump_text, jump_key, key_file) if jump_text else None
            except PalletError as exc:
                raise PalletError(exc.message, _key_span(source, "jump", line) if "jump" in entry else None) from None
            # The inventory's values, else the SSH config's (ssh HOST), else Pallet's defaults.
            try:
                endpoint = config.endpoint(fact.host or fact.name, port=entry.get("port"), user=entry.get("user"),
                                           private_key=key_file, jump=jump, password=secrets["password"],
                                           sudo_password=secrets["sudo-password"])
            except PalletError as exc:
                raise PalletError(f"node {fact.name}: {exc.message}", fact.span) from None
            records.append(NodeRecord(
                name=fact.name, group=fact.group, endpoint=endpoint, provider=NODE_LIST,
                os_family=fact.os_family or None, os_version=fact.os_version,
                private_ip=fact.private_ip, roles=fact.roles))
        return records

    def create_nodes(self, group: str, names: Sequence[str] | int, node_spec: object = None) -> list[NodeRecord]:
        raise self._cannot("create")

    def destroy_nodes(self, names: Sequence[str]) -> None:
        raise self._cannot("destroy")

    def _cannot(self, what: str) -> PalletError:
        return PalletError(
            f"a node-list ({self.path}) cannot {what} nodes: it names existing servers; edit the "
            "inventory to add or remove them, or use local nodes (--compute local)")


# -- local -------------------------------------------------------------------------------
def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NodesUnavailable(
            f"local nodes need root to {what} them: each node is an overlayfs mount in its own "
            "mount, PID and UTS namespaces, which only root can make and stop. Run as root "
            "(sudo), or target existing servers with an inventory instead (`--nodes "
            "inventory.toml`, a [[node]] table per server with name, group, host, port, user, "
            "private-key).")


class LocalProvider:
    """Local Debian 12 nodes (`LocalNodes`) as a provider, each remembering its group.

    state_dir: default `$PALLET_NODES_DIR`, else ~/.local/state/pallet/nodes.
    network: "host" (default) or "private" (each node its own ports; for clusters whose
    nodes run the same services), else `$PALLET_LOCAL_NETWORK`.
    """

    name = LOCAL

    def __init__(self, state_dir: str | os.PathLike | None = None, *, network: str | None = None,
                 cache_dir: str | os.PathLike | None = None, egress=None):
        source = "the network of local nodes"
        if not network and os.environ.get(NETWORK_ENV):
            network, source = os.environ[NETWORK_ENV], f"${NETWORK_ENV}"
        network = network or "host"
        if network not in NETWORKS:
            raise PalletError(f"{source} must be one of {', '.join(NETWORKS)}, not {network!r}")
        if network == "none":  # such a node has no SSH port: Pallet could not reach it
            raise PalletError(f"{source}: nodes without a network cannot be reached over SSH; "
                              "use host or private (LocalNodes.exec_in reaches a none node)")
        self.network = network
        self.state_dir = Path(state_dir or default_state_dir()).expanduser().absolute()
        self.nodes = LocalNodes(self.state_dir, cache_dir, egress)

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file with the host key of every running node of the state directory."""
        return self.state_dir / "known_hosts"

    # -- reading -----------------------------------------------------------------------
    def _names(self) -> list[str]:
        root = self.state_dir / "nodes"
        return sorted(p.parent.name for p in root.glob("*/node.json")) if root.is_dir() else []

    def _group_of(self, name: str) -> str:
        try:
            return json.loads((self.state_dir / "nodes" / name / "group.json").read_text())["group"]
        except (OSError, ValueError, KeyError, TypeError):
            return name.rsplit("-", 1)[0] if re.search(r"-\d+$", name) else name

    def _record(self, node: LocalNode, group: str) -> NodeRecord:
        endpoint = Endpoint(host=node.host, port=node.port, user=node.user, private_key=node.private_key)
        return NodeRecord(name=node.name, group=group, endpoint=endpoint, provider=LOCAL,
                          os_family=node.os_family, os_version=node.os_version,
                          # on the host's network, other nodes reach its services on loopback
                          private_ip=node.host if node.network == "host" else None)

    def nodes_with_state(self) -> list[tuple[NodeRecord, LocalNode]]:
        """Every node of the state directory, running or not, with its LocalNode facts."""
        self._reap()
        found = []
        for name in self._names():
            try:
                node = self.nodes.get(name)
            except PalletError:              # destroyed meanwhile by another process
                continue
            found.append((self._record(node, self._group_of(name)), node))
        self._write_known_hosts([n for _, n in found if n.running])
        return found

    def list_nodes(self) -> list[NodeRecord]:
        """The running nodes (a node stopped by a reboot is left out; `pallet nodes` shows it)."""
        return [rec for rec, node in self.nodes_with_state() if node.running]

    def next_names(self, group: str, count: int) -> list[str]:
        """`count` new names for a group: STEM-N with the lowest N not in use."""
        taken = set(self._names())
        root = self.state_dir / "nodes"
        if root.is_dir():
            taken |= {p.name for p in root.iterdir()}
        stem, names, i = name_stem(group), [], 0
        while len(names) < count:
            i += 1
            if f"{stem}-{i}" not in taken:
                names.append(f"{stem}-{i}")
        return names

    # -- changing ----------------------------------------------------------------------
    def create_nodes(self, group: str, names: Sequence[str] | int, node_spec: object = None) -> list[NodeRecord]:
        """Create and start nodes of a group in parallel; `names` may be a count, in which
        case they are named by `next_names`. Returns when each node's sshd answers."""
        _need_root("create")
        os_name = _node_os(group, node_spec)
        if isinstance(names, int):
            if names < 0:
                raise PalletError(f"cannot create {names} nodes")
        else:
            names = list(names)
            for n in names:
                if not isinstance(n, str) or not NAME_RE.match(n):
                    raise PalletError(f"bad node name {n!r}: use lowercase letters, digits and '-' (a hostname)")
        if not names:
            return []
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Naming and creating under one lock: two creates never pick the same names.
        with file_lock(self.state_dir / ".lock-names"):
            if isinstance(names, int):
                names = self.next_names(group, names)
            made = self.nodes.create_many(names, network=self.network, os_name=os_name)
            for node in made:
                path = Path(node.dir) / "group.json"
                tmp = path.with_suffix(f".tmp.{os.getpid()}")
                tmp.write_text(json.dumps({"group": group}) + "\n")
                os.replace(tmp, path)
        self.nodes_with_state()                      # known_hosts now has them
        return [self._record(node, group) for node in made]

    def destroy_nodes(self, names: Sequence[str]) -> None:
        """Stop nodes by their stored pids and remove their directories."""
        names = list(dict.fromkeys(names))
        if not names:
            return
        _need_root("destroy")
        known = set(self._names())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise PalletError(f"no local node named {', '.join(unknown)} in {self.state_dir}")
        self.nodes.destroy_many(names)
        self.nodes_with_state()

    def _reap(self) -> None:
        # Nodes this process started and another destroyed: collect their exit status.
        for proc in list(getattr(self.nodes, "_procs", {}).values()):
            proc.poll()

    def _write_known_hosts(self, running: list[LocalNode]) -> None:
        text = "".join(sorted(n.known_hosts_line() + "\n" for n in running))
        try:
            if self.known_hosts.exists() and self.known_hosts.read_text() == text:
                return
            if not text and not self.known_hosts.exists():
                return
            tmp = self.known_hosts.with_suffix(f".tmp.{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, self.known_hosts)
        except OSError:
            pass                                      # a read-only look (not root): no file


def _node_os(group: str, node_spec: object) -> str:
    """The release (a key of localnodes.RELEASES) a group's node-spec asks local nodes for:
    os-family debian (the default) or ubuntu, and its os-version if given."""
    from .localnodes import RELEASES
    runs = " or ".join(r.name for r in RELEASES.values())
    family = str(getattr(node_spec, "os_family", None) or "debian").lower()
    if family not in {r.family for r in RELEASES.values()}:
        raise PalletError(f"group {group}: its node-spec asks for os-family {family}, but local "
                          f"nodes run {runs}; use an inventory of such servers (--nodes)")
    release = next(r for r in RELEASES.values() if r.family == family)
    image = getattr(node_spec, "image", None) or {}
    for key, value in image.items():
        if getattr(key, "name", key) == "os-version":
            if str(value) not in (release.version, f"{release.version}.0", release.suite):
                raise PalletError(f"group {group}: its node-spec asks for os-version {value}, "
                                  f"but local nodes run {runs}; use an inventory of such "
                                  "servers (--nodes)")
    return release.os


# -- by name -----------------------------------------------------------------------------
def provider_for(name: object = None, inventory: str | os.PathLike | None = None,
                 state_dir: str | os.PathLike | None = None, *, span: Span | None = None,
                 network: str | None = None, services: str | os.PathLike | None = None,
                 spec_tag: str | None = None, parallel: int | None = None,
                 ssh_config: str | None = None, jump: str | None = None, jump_key: str | None = None):
    """The provider for `--compute NAME` (a str, a spec's `ComputeRef`, or None) and
    `--nodes INVENTORY`: local by default, node-list with an inventory, else a service of
    the services file (`services`, default `cloud.services.default_path()`) on a cloud,
    whose nodes carry the tag `spec_tag`. `span` locates errors (e.g. the spec's
    `(converge ...)` form). An inventory's hosts are looked up in the SSH config
    `ssh_config` (`--ssh-config`; see runtime/ssh_config.py), `jump`/`jump_key` (--jump,
    --jump-key) winning over its ProxyJump."""
    compute = getattr(name, "name", name)
    if compute is not None and not isinstance(compute, str):
        raise PalletError(f":compute must name a compute service, not {compute!r}", span)
    if compute is not None:
        compute = compute.strip().lstrip(":")
    if compute is None:
        compute = NODE_LIST if inventory else LOCAL
    if compute == NODE_LIST:
        if not inventory:
            raise PalletError("the node-list compute service needs an inventory: --nodes INVENTORY", span)
        return NodeListProvider(inventory, ssh_config, jump, jump_key)
    if compute == LOCAL:
        if inventory:
            raise PalletError("give either --nodes INVENTORY (a node-list) or --compute local, not both", span)
        return LocalProvider(state_dir, network=network)
    # A cloud: a service of the services file (runtime/cloud/services.py).
    from .cloud.services import default_path, load_services, unknown_service
    found = load_services(services)
    if compute in found:
        if inventory:
            raise PalletError(f"give either --nodes INVENTORY or --compute {compute}, not both", span)
        from .cloud.provider import CloudProvider
        return CloudProvider(found[compute], spec_tag, parallel=parallel)
    path = Path(services).expanduser() if services else default_path()
    if compute in CLOUDS:
        raise PalletError(f"compute service {compute} is not configured: add a [services.{compute}] "
                          f"table to {path} (provider, region, identity, credential), or run on "
                          "local nodes (--compute local) or an inventory (--nodes INVENTORY)", span)
    raise unknown_service(compute, found, path, span)
