"""A compute service's nodes as a Provider: listed by tags, created in parallel, destroyed.

Tags (EC2 tags; metadata elsewhere): `pallet-group` (the group) and `pallet-spec` (the spec
file's name without its extension), so nodes of other specs, and nodes Pallet did not make,
are never counted nor destroyed. Nodes are named `STEM-<8 hex>` (jclouds' `group-<hex>`),
the hex from the provider's id where a call makes several nodes (EC2), else chosen before
the call. Only running and pending nodes count.

Creation: one call per node, or per batch of up to `batch` nodes where the provider makes
several in one call (EC2's RunInstances), up to `parallel` calls at once. Each node is handed
to `on_created` as soon as its call returns its id, before any wait, so a run that stops
(a failure, Ctrl-C) has recorded every node it made.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from pallet.errors import PalletError

from ..model import Endpoint, NodeRecord
from .services import Service
from .template import Template, choose_template

GROUP_TAG = "pallet-group"
SPEC_TAG = "pallet-spec"
LOGIN_TAG = "pallet-login-user"
LIVE_STATES = ("running", "pending", "starting", "rebooting", "reconfiguring")
EC2_BATCH = 25


def state_root() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(os.environ.get("PALLET_CLOUD_STATE") or Path(base) / "pallet" / "cloud")


@dataclass
class CloudNode:
    """A node as the service reports it."""

    id: str
    name: str
    group: str | None
    spec: str | None
    state: str
    address: str | None
    private_ip: str | None
    port: int
    size: str | None
    image: str | None
    login_user: str | None = None
    raw: object = field(default=None, repr=False)

    def row(self) -> dict:
        return {"name": self.name, "group": self.group, "spec": self.spec, "id": self.id,
                "address": self.address, "private_ip": self.private_ip, "state": self.state,
                "size": self.size, "image": self.image}


class CreateFailed(Exception):
    def __init__(self, count: int, message: str):
        super().__init__(message)
        self.count = count
        self.message = message


def _stem(group: str) -> str:
    from ..provider_names import name_stem
    return name_stem(group)


def _tags(node) -> dict:
    extra = getattr(node, "extra", None) or {}
    tags = extra.get("tags") or extra.get("metadata") or {}
    return tags if isinstance(tags, dict) else {}


class CloudProvider:
    """The nodes of one service (`Service`) that carry Pallet's tags."""

    def __init__(self, service: Service, spec_tag: str | None = None, *, driver=None,
                 parallel: int | None = None):
        self.service = service
        self.name = service.name
        self.spec_tag = spec_tag
        self._driver = driver
        self.parallel = parallel or int(service.get("parallel") or 16)
        self.batch = EC2_BATCH if service.provider == "ec2" else 1
        self.boot_timeout = float(service.get("boot-timeout") or 600)
        self.poll_interval = 0.2 if service.endpoint and "127.0.0.1" in service.endpoint else 3.0
        self._templates: dict[str, Template] = {}
        self._key_lock = threading.Lock()
        self._key_name: str | None = None
        self._groups_lock = threading.Lock()
        self._firewalls: dict[str, str] = {}
        self._looked_up: dict[str, object] = {}     # read-only look-ups made ahead (futures)
        self._last: dict[str, CloudNode] = {}
        self.accept_new_host_keys = True       # nodes this provider makes are new hosts

    # -- the driver, and errors without secrets ------------------------------------------
    @property
    def driver(self):
        if self._driver is None:
            from .drivers import make_driver
            self._driver = make_driver(self.service)
        return self._driver

    def error(self, what: str, exc: BaseException) -> PalletError:
        return PalletError(f"{self.name}: {what}: {self.explain(exc)}")

    def explain(self, exc: BaseException) -> str:
        text = getattr(exc, "value", None) or str(exc) or type(exc).__name__
        return self.service.redact(" ".join(str(text).split()))[:600]

    def call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PalletError:
            raise
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a provider's error, reported without secrets
            raise self.error(what, exc) from None

    # -- the user's key ------------------------------------------------------------------
    @property
    def known_hosts(self) -> Path:
        """Host keys of the nodes of every service, recorded at first contact."""
        return state_root() / "known_hosts"

    def key_files(self) -> tuple[Path, Path]:
        """(private key, public key): the service's, else ~/.ssh/id_ed25519, id_rsa."""
        private = self.service.path("private-key")
        public = self.service.path("public-key")
        if private is None:
            for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
                p = Path.home() / ".ssh" / name
                if p.exists():
                    private = p
                    break
        if public is None and private is not None:
            public = Path(str(private) + ".pub")
        if public is None or not public.exists():
            raise PalletError(f"{self.name}: no public key to give the nodes: set public-key (and "
                              f"private-key) in services.{self.name}, or make one with ssh-keygen",
                              self.service.span("public-key"))
        return private, public

    def public_key(self) -> str:
        _, public = self.key_files()
        text = public.read_text().strip()
        if not text.startswith(("ssh-", "ecdsa-")):
            raise PalletError(f"{public}: not an OpenSSH public key", self.service.span("public-key"))
        return text

    def key_name(self) -> str | None:
        """The key pair of the user's key on the service, imported once (None: the provider
        has no key pairs; the key travels in the user data)."""
        with self._key_lock:
            if self._key_name is not None:
                return self._key_name or None
            pub = self.public_key()
            digest = hashlib.sha256(" ".join(pub.split()[:2]).encode()).hexdigest()[:16]
            name = f"pallet-{digest}"
            try:
                looked_up = self._looked_up.pop("key pairs", None)
                pairs = looked_up.result() if looked_up is not None else self.driver.list_key_pairs()
            except NotImplementedError:
                self._key_name = ""
                return None
            except Exception as exc:  # noqa: BLE001
                raise self.error("listing key pairs", exc) from None
            if not any(getattr(p, "name", None) == name for p in pairs):
                self.call("importing the key pair", self.driver.import_key_pair_from_string, name, pub)
            self._key_name = name
            return name

    # -- firewall ------------------------------------------------------------------------
    def firewall_name(self, group: str) -> str:
        return f"pallet-{self.spec_tag or 'spec'}-{_stem(group)}"[:255]

    def firewall(self, group: str, ports: Sequence[int]) -> str | None:
        """The group's security group, with a rule per inbound port (EC2); None elsewhere."""
        if self.service.provider != "ec2":
            return None
        name = self.firewall_name(group)
        with self._groups_lock:
            if name in self._firewalls:
                return name
            d = self.driver
            looked_up = self._looked_up.pop(name, None)
            found = (looked_up.result() if looked_up is not None else
                     self.call("listing security groups", d.ex_get_security_groups,
                               filters={"group-name": name}))
            if not found:
                self.call("creating the security group", d.ex_create_security_group, name,
                          f"Pallet: inbound ports of group {group}")
                open_ports: set[int] = set()
            else:
                open_ports = {int(r.get("from_port") or -1) for r in found[0].ingress_rules
                              if "0.0.0.0/0" in (r.get("cidr_ips") or [])}
            wanted = [p for p in dict.fromkeys(ports) if p not in open_ports]
            if wanted:
                from .drivers import ec2_open_ports
                what = f"opening port{'s' if len(wanted) > 1 else ''} {', '.join(map(str, wanted))}"
                self.call(what, ec2_open_ports, d, name, wanted, "0.0.0.0/0")
            self._firewalls[name] = name
            return name

    # -- listing -------------------------------------------------------------------------
    def cloud_nodes(self, every_spec: bool = False, addresses: bool = True) -> list[CloudNode]:
        """The live nodes with Pallet's tags (of this spec, unless `every_spec`). Without
        `addresses` (a run that connects to none), EC2's are read from their tags and
        states alone: no address, size or image."""
        d = self.driver
        if self.service.provider == "ec2" and not addresses:
            nodes = self._ec2_tagged_nodes(every_spec)
            self._last.update({n.name: n for n in nodes})
            return sorted(nodes, key=lambda n: (n.group or "", n.name))
        if self.service.provider == "ec2":
            filters = {"instance-state-name": ["pending", "running"], f"tag-key": GROUP_TAG}
            if self.spec_tag and not every_spec:
                filters[f"tag:{SPEC_TAG}"] = self.spec_tag
            from .drivers import ec2_list_nodes
            raw = self.call("listing nodes", ec2_list_nodes, d, filters)
        else:
            raw = self.call("listing nodes", d.list_nodes)
        nodes = []
        for n in raw:
            tags = _tags(n)
            state = str(getattr(n.state, "value", n.state) or "unknown").lower()
            if GROUP_TAG not in tags or state not in LIVE_STATES:
                continue
            if self.spec_tag and not every_spec and tags.get(SPEC_TAG) != self.spec_tag:
                continue
            nodes.append(self._node(n, tags))
        self._last.update({n.name: n for n in nodes})
        return sorted(nodes, key=lambda n: (n.group or "", n.name))

    def _ec2_tagged_nodes(self, every_spec: bool) -> list[CloudNode]:
        """DescribeTags for the ids (of the spec), then at once DescribeInstanceStatus for
        which of them live and DescribeTags for their group and name: a few hundred bytes
        a node where DescribeInstances answers kilobytes."""
        from .drivers import ec2_instance_states, ec2_tags
        d = self.driver
        by_spec = bool(self.spec_tag and not every_spec)
        first = {"key": SPEC_TAG, "value": self.spec_tag} if by_spec else {"key": GROUP_TAG}
        ids = list(self.call("listing nodes", ec2_tags, d, first))
        if not ids:
            return []
        keys = [GROUP_TAG, SPEC_TAG, LOGIN_TAG, "pallet-name"]
        with ThreadPoolExecutor(max_workers=4) as pool:       # round trips at once
            status = pool.submit(self.call, "listing nodes", ec2_instance_states, d, ids)
            parts = [pool.submit(self.call, "listing nodes", ec2_tags, d,
                                 {"resource-id": ids[i:i + 200], "key": keys})
                     for i in range(0, len(ids), 200)]
            states = status.result()
            tags: dict[str, dict[str, str]] = {}
            for part in parts:
                tags.update(part.result())
        live = [i for i in ids if states.get(i) in LIVE_STATES]
        nodes = []
        for node_id in live:
            t = tags.get(node_id, {})
            if GROUP_TAG not in t or (by_spec and t.get(SPEC_TAG) != self.spec_tag):
                continue
            group = t[GROUP_TAG]
            nodes.append(CloudNode(node_id, t.get("pallet-name") or _name_from_id(group, node_id), group,
                                   t.get(SPEC_TAG), states[node_id], None, None, 22, None, None,
                                   t.get(LOGIN_TAG)))
        return nodes

    def _node(self, n, tags=None) -> CloudNode:
        tags = tags if tags is not None else _tags(n)
        extra = getattr(n, "extra", None) or {}
        group = tags.get(GROUP_TAG)
        name = tags.get("pallet-name") or _name_from_id(group or "node", n.id)
        public = [ip for ip in (getattr(n, "public_ips", None) or []) if ip]
        private = [ip for ip in (getattr(n, "private_ips", None) or []) if ip]
        size = extra.get("instance_type") or extra.get("flavorId") or getattr(getattr(n, "size", None), "id", None)
        image = extra.get("image_id") or extra.get("imageId") or getattr(getattr(n, "image", None), "id", None)
        state = str(getattr(n.state, "value", n.state) or "unknown").lower()
        return CloudNode(str(n.id), name, group, tags.get(SPEC_TAG), state,
                         (public or private or [None])[0], (private or [None])[0],
                         int(extra.get("ssh_port") or 22), size, image, tags.get(LOGIN_TAG), n)

    def private_key(self) -> str | None:
        try:
            private, _ = self.key_files()
        except PalletError:
            return None                      # the agent's keys
        return str(private) if private else None

    def record(self, node: CloudNode) -> NodeRecord:
        user = (self.service.get("login-user") or node.login_user
                or (self._templates[node.group].login_user if node.group in self._templates else None)
                or "root")
        endpoint = Endpoint(host=node.address or node.private_ip or node.name, port=node.port,
                            user=user, private_key=self.private_key())
        return NodeRecord(node.name, node.group or "", endpoint, self.name, private_ip=node.private_ip)

    def list_nodes(self, addresses: bool = True) -> list[NodeRecord]:
        return [self.record(n) for n in self.cloud_nodes(addresses=addresses)]

    # -- templates -----------------------------------------------------------------------
    def template(self, group, node_spec, span=None) -> Template:
        """The group's template (cached): the service's images, sizes and locations read once."""
        name = getattr(group, "name", group)
        if name in self._templates:
            return self._templates[name]
        from .drivers import list_sizes
        d = self.driver
        # The calls at once (on a real cloud each is a round trip), with the read-only
        # look-ups creating needs next: the key pairs, the group's security group.
        with ThreadPoolExecutor(max_workers=5) as pool:
            if "key pairs" not in self._looked_up and self._key_name is None:
                self._looked_up["key pairs"] = pool.submit(d.list_key_pairs)
            firewall = self.firewall_name(name)
            if self.service.provider == "ec2" and firewall not in self._firewalls:
                self._looked_up[firewall] = pool.submit(self.call, "listing security groups",
                                                        d.ex_get_security_groups,
                                                        filters={"group-name": firewall})
            if not hasattr(self, "_catalogue"):
                kwargs = {}
                if self.service.provider == "ec2":
                    owners = self.service.get("image-owners")
                    kwargs["ex_filters"] = {"state": "available", "image-type": "machine",
                                            **({"owner-id": owners} if owners else {})}
                images = pool.submit(self.call, "listing images", d.list_images, **kwargs)
                sizes = pool.submit(self.call, "listing sizes", list_sizes, d)
                locations = pool.submit(self.call, "listing locations", d.list_locations)
                self._catalogue = (images.result(), sizes.result(), locations.result())
        images, sizes, locations = self._catalogue
        template = choose_template(name, node_spec, images, sizes, locations, service=self.name,
                                   provider=self.service.provider, span=span,
                                   login_user=self.service.get("login-user"),
                                   service_region=self.service.region)
        self._templates[name] = template
        return template

    # -- creating ------------------------------------------------------------------------
    def user_data(self) -> str:
        return f"#cloud-config\nssh_authorized_keys:\n  - {self.public_key()}\n"

    def provision(self, group: str, count: int, template: Template,
                  on_created: Callable[[list[CloudNode]], None],
                  on_failed: Callable[[int, str], None], stop: threading.Event | None = None) -> None:
        """Create `count` nodes of a group; `on_created` gets each call's nodes as soon as the
        call returns, `on_failed(count, why)` each call that made none."""
        with ThreadPoolExecutor(max_workers=2) as pool:     # two round trips at once
            key_call = pool.submit(self.key_name)
            firewall_call = pool.submit(self.firewall, group, template.inbound_ports)
            key, firewall = key_call.result(), firewall_call.result()
        user_data = self.user_data()
        tags = {GROUP_TAG: group, **({SPEC_TAG: self.spec_tag} if self.spec_tag else {}),
                LOGIN_TAG: template.login_user,
                **{str(k): str(v) for k, v in (self.service.get("tags") or {}).items()}}
        calls = []
        left = count
        while left > 0:
            n = min(self.batch, left)
            calls.append(n)
            left -= n
        stop = stop or threading.Event()
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.parallel, len(calls))),
                                  thread_name_prefix=f"pallet-create-{self.name}")
        futures = {}
        try:
            for n in calls:
                futures[pool.submit(self._create_call, group, n, template, key, firewall,
                                    user_data, tags, stop)] = n
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    self._deliver(f, futures[f], on_created, on_failed)
        except KeyboardInterrupt:
            # The calls in flight return their nodes' ids: record them before stopping.
            stop.set()
            for f in futures:
                f.cancel()
            _wait_through_interrupts([f for f in futures if not f.cancelled()])
            for f in futures:
                if f.done() and not f.cancelled() and not getattr(f, "_pallet_delivered", False):
                    self._deliver(f, futures[f], on_created, on_failed)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _deliver(self, f, n, on_created, on_failed) -> None:
        if getattr(f, "_pallet_delivered", False):
            return
        f._pallet_delivered = True
        exc = f.exception()
        if exc is None:
            nodes = f.result()
            if nodes:
                on_created(nodes)
            if len(nodes) < n:
                on_failed(n - len(nodes), f"the provider made {len(nodes)} of {n} node(s)")
        elif isinstance(exc, CreateFailed):
            on_failed(exc.count, exc.message)
        else:
            on_failed(n, self.explain(exc))

    def _create_call(self, group, n, template, key, firewall, user_data, tags, stop) -> list[CloudNode]:
        if stop.is_set():
            raise CreateFailed(n, "not created: the run was interrupted")
        d = self.driver
        kwargs = dict(size=template.size, image=template.image)
        if template.location is not None:
            kwargs["location"] = template.location
        if self.service.provider == "ec2":
            name = _stem(group)
            kwargs.update(ex_userdata=user_data, ex_metadata=dict(tags), ex_mincount=n,
                          ex_maxcount=n, ex_clienttoken=secrets.token_hex(16))
            if key:
                kwargs["ex_keyname"] = key
            if firewall:
                kwargs["ex_security_groups"] = [firewall]
            if template.spot_price is not None:
                kwargs.update(ex_spot=True, ex_spot_max_price=template.spot_price)
        else:
            name = f"{_stem(group)}-{secrets.token_hex(4)}"
            accepted = _parameters(d.create_node)
            meta = {**tags, "pallet-name": name}
            if "ex_metadata" in accepted:
                kwargs["ex_metadata"] = meta
            if key and "ex_keyname" in accepted:
                kwargs["ex_keyname"] = key
            if "ex_userdata" in accepted:
                kwargs["ex_userdata"] = user_data
        try:
            made = d.create_node(name=name, **kwargs)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001
            raise CreateFailed(n, self.explain(exc)) from None
        made = made if isinstance(made, list) else [made]
        nodes = []
        for m in made:
            m.extra = dict(getattr(m, "extra", None) or {})
            if not _tags(m):
                m.extra["tags"] = dict(tags)
            node = self._node(m)
            if node.group is None:
                node.group = group
            nodes.append(node)
        self._last.update({x.name: x for x in nodes})
        return nodes

    def wait_running(self, nodes: list[CloudNode], stop: threading.Event | None = None,
                     timeout: float | None = None, addresses: bool = True
                     ) -> tuple[list[CloudNode], dict[str, str]]:
        """Poll until each node runs (with an address unless `addresses` is False: a run
        that makes no connection needs none): (running nodes, {name: why} of the others:
        failed to boot, or not running within the boot timeout).

        EC2: the poll is DescribeInstanceStatus (the states of the ids, a few hundred bytes
        a node); DescribeInstances (a few kilobytes a node) is asked once for the nodes
        that run, for the addresses a node gets when it runs. Ids not visible yet (EC2 is
        eventually consistent) are asked again."""
        deadline = time.monotonic() + (timeout or self.boot_timeout)
        # A node the create call already reports running (with an address) is not asked again.
        def up(n: CloudNode) -> bool:
            return n.state == "running" and (bool(n.address) or not addresses)
        ready = [n for n in nodes if up(n)]
        waiting = {n.id: n for n in nodes if not up(n)}
        failed: dict[str, str] = {}
        while waiting:
            try:
                fresh = self._poll(waiting, addresses)
            except Exception as exc:  # noqa: BLE001
                raise self.error("waiting for the nodes to run", exc) from None
            for node_id, node in list(waiting.items()):
                now = fresh.get(node_id)
                if now is None:
                    if self.service.provider != "ec2":
                        failed[node.name] = "did not boot: the provider no longer lists it"
                        del waiting[node_id]
                    continue
                now.name, now.group = node.name, node.group or now.group
                if up(now):
                    ready.append(now)
                    del waiting[node_id]
                elif now.state in ("terminated", "error", "stopped", "stopping", "suspended", "shutting-down"):
                    failed[node.name] = f"did not boot: the provider says {now.state}"
                    del waiting[node_id]
            if not waiting:
                break
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                for n in waiting.values():
                    failed[n.name] = (f"did not run within {self.boot_timeout:.0f} s"
                                      if not (stop and stop.is_set()) else "interrupted while booting")
                break
            time.sleep(self.poll_interval)
        return ready, failed

    def _poll(self, waiting: dict[str, CloudNode], addresses: bool) -> dict[str, CloudNode]:
        """{id: the node as the provider reports it now} of the waiting nodes it reports."""
        if self.service.provider != "ec2":
            return {str(r.id): self._node(r) for r in self.driver.list_nodes() if str(r.id) in waiting}
        from .drivers import ec2_instance_states, ec2_list_nodes, not_found
        try:
            states = ec2_instance_states(self.driver, list(waiting))
        except Exception as exc:  # noqa: BLE001
            if not not_found(exc):
                raise
            return {}                               # not visible yet: asked again
        fresh = {}
        for node_id, state in states.items():
            fresh[node_id] = replace(waiting[node_id], state=state)
        running = [i for i, state in states.items() if state == "running"]
        if addresses and running:
            try:
                raw = ec2_list_nodes(self.driver, ids=running)
            except Exception as exc:  # noqa: BLE001
                if not not_found(exc):
                    raise
                raw = []
            described = {str(r.id): self._node(r) for r in raw}
            for i in running:
                if i in described:
                    fresh[i] = described[i]
                else:
                    del fresh[i]                # asked again at the next poll
        return fresh

    def create_nodes(self, group: str, names, node_spec=None) -> list[NodeRecord]:
        """The Provider interface: create nodes of a group, waiting until they run; any node
        that fails is destroyed and the call raises."""
        count = names if isinstance(names, int) else len(list(names))
        template = self.template(group, node_spec)
        made: list[CloudNode] = []
        failures: list[str] = []
        self.provision(group, count, template, made.extend, lambda n, why: failures.append(why))
        ready, bad = self.wait_running(made)
        if bad:
            self.destroy([n for n in made if n.name in bad])
        if failures or bad:
            raise PalletError(f"{self.name}: creating {count} node(s) of {group} failed: "
                              + "; ".join([*failures, *(f"{k}: {v}" for k, v in bad.items())]))
        return [self.record(n) for n in ready]

    # -- destroying ----------------------------------------------------------------------
    def destroy(self, nodes: Sequence[CloudNode]) -> None:
        nodes = list(nodes)
        if not nodes:
            return
        d = self.driver
        if self.service.provider == "ec2":
            ids = [n.id for n in nodes]
            unknown = [n.id for n in nodes if not n.address]
            if unknown and self._host_key_lines():
                # listed without addresses: their host keys are forgotten below by address,
                # which is theirs only until they are terminated
                from .drivers import ec2_list_nodes
                addresses = {str(r.id): self._node(r) for r in
                             self.call("listing nodes", ec2_list_nodes, d, ids=unknown)}
                nodes = [replace(n, address=addresses[n.id].address, port=addresses[n.id].port)
                         if n.id in addresses else n for n in nodes]
            for i in range(0, len(ids), 500):
                params = {"Action": "TerminateInstances", **d._pathlist("InstanceId", ids[i:i + 500])}
                self.call("destroying nodes", d.connection.request, d.path, params=params)
        else:
            pool = ThreadPoolExecutor(max_workers=max(1, min(self.parallel, len(nodes))))
            try:
                errors = [f.exception() for f in [pool.submit(d.destroy_node, n.raw) for n in nodes]]
            finally:
                pool.shutdown()
            bad = [e for e in errors if e is not None]
            if bad:
                raise self.error("destroying nodes", bad[0])
        self._forget_host_keys(nodes)
        for n in nodes:
            self._last.pop(n.name, None)

    def destroy_nodes(self, names: Sequence[str]) -> None:
        names = list(dict.fromkeys(names))
        if not names:
            return
        missing = [n for n in names if n not in self._last]
        if missing:
            self.cloud_nodes()
        unknown = [n for n in names if n not in self._last]
        if unknown:
            raise PalletError(f"{self.name}: no node named {', '.join(unknown)}")
        self.destroy([self._last[n] for n in names])

    def _host_key_lines(self) -> list[str]:
        try:
            return self.known_hosts.read_text().splitlines(keepends=True)
        except OSError:
            return []

    def _forget_host_keys(self, nodes: Sequence[CloudNode]) -> None:
        # Addresses are reused by the provider: a later node at the same one has another key.
        lines = self._host_key_lines()
        if not lines:
            return
        gone = {n.address if n.port == 22 else f"[{n.address}]:{n.port}" for n in nodes if n.address}
        kept = [line for line in lines if line.split(" ", 1)[0] not in gone]
        if len(kept) != len(lines):
            tmp = self.known_hosts.with_suffix(f".tmp.{os.getpid()}")
            tmp.write_text("".join(kept))
            os.replace(tmp, self.known_hosts)

    # -- ready for SSH ---------------------------------------------------------------------
    def wait_ssh(self, record: NodeRecord, timeout: float | None = None,
                 stop: threading.Event | None = None) -> str | None:
        """Wait until the node's SSH port answers with an SSH banner; None, or why not."""
        deadline = time.monotonic() + (timeout or self.boot_timeout)
        last = "no answer"
        while time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                return "interrupted while waiting for SSH"
            try:
                with socket.create_connection((record.endpoint.host, record.endpoint.port), timeout=5) as s:
                    s.settimeout(5)
                    if s.recv(4).startswith(b"SSH-"):
                        return None
                    last = "the port answers, but not with SSH"
            except OSError as exc:
                last = exc.strerror or str(exc)
            time.sleep(min(self.poll_interval * 5, 2.0))
        return f"SSH did not answer within {timeout or self.boot_timeout:.0f} s ({last})"


def _name_from_id(group: str, node_id: str) -> str:
    tail = "".join(c for c in str(node_id).lower() if c.isalnum())[-8:] or "0"
    return f"{_stem(group)}-{tail}"


def _parameters(fn) -> set[str]:
    import inspect
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return set()
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return set(params) | {"ex_metadata", "ex_keyname", "ex_userdata"}
    return set(params)


def _wait_through_interrupts(futures) -> None:
    """Wait for calls in flight; a second Ctrl-C does not stop the wait (their nodes exist)."""
    while True:
        try:
            wait(futures)
            return
        except KeyboardInterrupt:
            continue
