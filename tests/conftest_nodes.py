"""Pytest plugin: real local Debian 12 nodes for end-to-end tests (`pallet.runtime.localnodes`).

Loaded from tests/conftest.py via `pytest_plugins`. Tests that use the nodes carry the
`nodes` marker (`pytest -m "not nodes"` leaves them out). Without root the node fixtures
skip, saying why; as root (as in CI) they run, and a machine that cannot run nodes fails.
The first use on a machine builds the cached root filesystem (about 40 s) during fixture
setup, outside any test's own time.
"""
from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Callable

import pytest

from pallet.runtime.localnodes import LocalNode, LocalNodes, NodesUnavailable, _start_time, ensure_rootfs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "nodes: needs real local Debian nodes (root)")


def _claim(basetemp: Path) -> None:
    """Mark this session's temp dir with its pid and start time."""
    (basetemp / "owner.pid").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")


def _owner_alive(basetemp: Path) -> bool:
    try:
        pid, started = (basetemp / "owner.pid").read_text().split()
    except (OSError, ValueError):
        return False
    return str(_start_time(int(pid))) == started


@pytest.fixture(scope="session")
def local_nodes(tmp_path_factory: pytest.TempPathFactory) -> LocalNodes:
    """A LocalNodes with a state directory of this session; every node is destroyed at the end."""
    if os.geteuid() != 0:
        pytest.skip("local nodes need root (namespaces, overlayfs, chroot); CI runs as root")
    # Nodes of an earlier session that was killed before its teardown: stop them by their pids.
    # A session still running (another pytest on this machine) owns its nodes: leave them.
    for old in tmp_path_factory.getbasetemp().parent.glob("pytest-*/local-nodes*/nodes"):
        if not _owner_alive(old.parent.parent):
            LocalNodes(old.parent).destroy_all()
    _claim(tmp_path_factory.getbasetemp())
    # No egress: private nodes reach nothing, so tests stay on loopback (not even DNS).
    manager = LocalNodes(tmp_path_factory.mktemp("local-nodes"), egress=())
    try:
        ensure_rootfs(manager.cache_dir)
    except NodesUnavailable as e:
        pytest.fail(f"root, but local nodes cannot run here: {e.message}")
    made: list[LocalNode] = []
    create_many = manager.create_many

    def tracked(names, **options):       # remember every node, to prove none outlives us
        nodes = create_many(names, **options)
        made.extend(nodes)
        return nodes

    manager.create_many = tracked
    yield manager
    manager.destroy_all()       # by the pids each node.json keeps
    left = [n.name for n in made if _start_time(n.init_pid) == n.start_time or Path(n.dir).exists()]
    mounts = [m for m in Path("/proc/self/mountinfo").read_text().splitlines() if str(manager.state_dir) in m]
    assert not left and not mounts, f"local nodes left behind: {left} {mounts}"


@pytest.fixture(scope="session")
def debian_nodes(local_nodes: LocalNodes) -> Callable[..., list[LocalNode]]:
    """Factory: `debian_nodes(3)` or `debian_nodes(2, network="private")` -> fresh running nodes.

    Nodes get unique names (`n<call>-<i>`, also their hostnames) and last for the session.
    """
    return _node_factory(local_nodes, "n", "debian-12")


def _node_factory(local_nodes: LocalNodes, letter: str, os_name: str) -> Callable[..., list[LocalNode]]:
    """make(count, network=, prefix=): fresh nodes of a release named `<letter><call>-<i>`."""
    calls = itertools.count(1)

    def make(count: int = 1, *, network: str = "host", prefix: str | None = None) -> list[LocalNode]:
        stem = prefix or f"{letter}{next(calls)}"
        return local_nodes.create_many([f"{stem}-{i}" for i in range(1, count + 1)],
                                       network=network, os_name=os_name)

    return make


def ubuntu_archive_unreachable() -> str | None:
    """Why Ubuntu's archive cannot be reached from here, or None when it can (asked once
    per session): CI's machine may have no route to it. Both hosts the Ubuntu root
    filesystem's sources name are asked (the archive and security). A refusal or a name that
    does not resolve answers at once; a slow answer is waited for (10 s a host, once more
    after a timeout), so a loaded machine does not skip the proof where the archive is there."""
    global _ubuntu_reach
    if _ubuntu_reach is None:
        import urllib.request

        from pallet.runtime.localnodes import RELEASES
        rel = RELEASES["ubuntu-22.04"]
        urls = [f"{line.split()[1].rstrip('/')}/dists/{line.split()[2]}/Release"
                for line in rel.sources.format(mirror=rel.mirror_url()).splitlines()
                if line.split()[2] in ("jammy", "jammy-security")]
        found = [f"{urls[0]}: no answer within 40 s"]

        def ask() -> None:
            for url in urls:
                found[0] = f"{url}: no answer within 40 s"
                for attempt in (1, 2):
                    try:
                        with urllib.request.urlopen(url, timeout=10) as r:
                            r.read(64)
                        break
                    except OSError as exc:
                        found[0] = f"{url}: {getattr(exc, 'reason', exc)}"
                        if attempt == 2 or not isinstance(getattr(exc, "reason", exc), TimeoutError):
                            return
            found[0] = ""

        # In a thread: a name lookup that hangs is not bound by urlopen's timeout.
        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        asker.join(42)
        _ubuntu_reach = found[0]
    return (f"Ubuntu's archive cannot be reached from this machine ({_ubuntu_reach}), so no "
            "Ubuntu 22.04 root filesystem or package can be had here") if _ubuntu_reach else None


_ubuntu_reach: str | None = None


@pytest.fixture(scope="session")
def ubuntu_nodes(local_nodes: LocalNodes) -> Callable[..., list[LocalNode]]:
    """Factory like `debian_nodes`, for Ubuntu 22.04 nodes (`u<call>-<i>`). Skips, saying
    so, when Ubuntu's archive cannot be reached; the first use builds the cached Ubuntu
    root filesystem (about 40 s) here, outside any test's own time."""
    why = ubuntu_archive_unreachable()
    if why:
        pytest.skip(why)
    try:
        ensure_rootfs(local_nodes.cache_dir, os_name="ubuntu-22.04")
    except NodesUnavailable as e:
        pytest.fail(f"Ubuntu's archive answers, but its root filesystem cannot be made: {e.message}")
    return _node_factory(local_nodes, "u", "ubuntu-22.04")
