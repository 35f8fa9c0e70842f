"""A libcloud NodeDriver whose nodes are Pallet's local nodes: the end-to-end cloud test
registers it as a third-party driver is registered (`libcloud.compute.providers.set_driver`,
from the services file's driver-module and driver-class), so create, wait, SSH, bundles
and destroy all go through Pallet's libcloud code path, on nodes reachable on 127.0.0.1.

Key pairs are kept in the state directory; a node created with `ex_keyname` has that
public key in root's authorized_keys, as a cloud image's cloud-init would put it."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from libcloud.common.base import ConnectionKey
from libcloud.compute.base import KeyPair, Node, NodeDriver, NodeImage, NodeLocation, NodeSize
from libcloud.compute.types import NodeState

from pallet.runtime.localnodes import LocalNodes

_lock = threading.Lock()
_create_lock = threading.Lock()


class LocalNodeDriver(NodeDriver):
    connectionCls = ConnectionKey
    type = "pallet-local"
    name = "Pallet local nodes"
    website = "https://example.invalid/pallet"
    features = {"create_node": ["ssh_key"]}

    def __init__(self, key="local", secret=None, state_dir=None, cache_dir=None, **kwargs):
        super().__init__(key or "local")
        self.nodes = LocalNodes(state_dir, cache_dir, egress=())
        self.meta_file = Path(self.nodes.state_dir) / "libcloud.json"

    # -- what this "cloud" offers ----------------------------------------------------------
    def list_sizes(self, location=None):
        return [NodeSize("local-1", "one local node", 1024, 0, None, 0.0, self, {"vcpus": 1})]

    def list_images(self, location=None):
        return [NodeImage("debian-12-local", "Debian 12 (bookworm) local node amd64", self,
                          {"architecture": "x86_64", "description": "debian 12 bookworm"})]

    def list_locations(self):
        return [NodeLocation("here", "this machine", "ZZ", self)]

    # -- key pairs -------------------------------------------------------------------------
    def _meta(self) -> dict:
        try:
            return json.loads(self.meta_file.read_text())
        except (OSError, ValueError):
            return {"keys": {}, "nodes": {}}

    def _save(self, meta: dict) -> None:
        self.meta_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.meta_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        tmp.replace(self.meta_file)

    def list_key_pairs(self):
        return [KeyPair(n, k, None, self) for n, k in self._meta()["keys"].items()]

    def import_key_pair_from_string(self, name, key_material):
        with _lock:
            meta = self._meta()
            meta["keys"][name] = key_material
            self._save(meta)
        return KeyPair(name, key_material, None, self)

    # -- nodes -----------------------------------------------------------------------------
    def _node(self, local, meta) -> Node:
        info = meta["nodes"].get(local.name, {})
        state = NodeState.RUNNING if local.running else NodeState.STOPPED
        return Node(local.name, local.name, state, ["127.0.0.1"], [], self,
                    image=NodeImage(info.get("image", "?"), "", self),
                    size=NodeSize(info.get("size", "?"), "", 0, 0, None, 0, self),
                    extra={"ssh_port": local.port, "metadata": info.get("metadata", {})})

    def create_node(self, name, size, image, location=None, ex_keyname=None, ex_userdata=None,
                    ex_metadata=None, **kwargs):
        with _create_lock:              # LocalNodes' first-use checks are not for two threads
            local = self.nodes.create(name)
        if ex_keyname:
            key = self._meta()["keys"][ex_keyname]
            self.nodes.exec_in(name, ["sh", "-c", "cat >> /root/.ssh/authorized_keys"],
                               input=key.strip() + "\n", check=True)
        with _lock:
            meta = self._meta()
            meta["nodes"][name] = {"metadata": dict(ex_metadata or {}), "image": image.id,
                                   "size": size.id, "userdata": ex_userdata}
            self._save(meta)
        return self._node(local, meta)

    def list_nodes(self):
        meta = self._meta()
        return [self._node(n, meta) for n in self.nodes.list() if n.name in meta["nodes"]]

    def destroy_node(self, node):
        self.nodes.destroy_many([node.id])
        with _lock:
            meta = self._meta()
            meta["nodes"].pop(node.id, None)
            self._save(meta)
        return True
