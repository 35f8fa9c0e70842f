"""sysctl: a file of /etc/sysctl.d, applied when it changes. Only parameters of the node's own
network namespace (a private node), so the host's kernel settings never change."""
from __future__ import annotations

from pathlib import Path

KEYS = ("net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding")


def host_values() -> list[str]:
    return [Path("/proc/sys", k).read_text() for k in KEYS]

SPEC = r'''
(def router
  (group-spec "router"
    :extends [(sysctl/server :files {"60-forwarding" {"net.ipv4.ip_forward" 1
                                                      "net.ipv4.conf.all.forwarding" 1}})]))
'''


def test_sysctl_applied_in_a_private_node(converge):
    before = host_values()
    result = converge(SPEC, {"router": 1}, network="private")
    node = "router-1"
    assert result.sh(node, "cat /etc/sysctl.d/60-forwarding.conf") == (
        "# Managed by Pallet (sysctl crate): changes made here are overwritten.\n"
        "net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.forwarding = 1\n")
    assert result.sh(node, "stat -c '%a %U' /etc/sysctl.d/60-forwarding.conf") == "644 root\n"
    assert result.sh(node, "sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.forwarding") == "1\n1\n"
    assert host_values() == before   # the host's own namespace kept its values
