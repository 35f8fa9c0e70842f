"""firewall: nftables rules from data on a private node; the node's netns gets a veth pair to a
second namespace, from which an allowed port answers and the others are refused."""
from __future__ import annotations

from .relift import changes, lift


SPEC = r'''
(def fw
  (group-spec "fw"
    :extends [(firewall/server :allow [%(allow)s {:port 8082 :source "10.9.0.3"}]
                               :policy :reject)]))
'''

# A second network namespace, "client" (10.9.0.2), joined to the node (10.9.0.1) by a veth
# pair, and HTTP servers on the node's side: what the firewall lets in is seen from there.
NETWORK = """
set -e
DEBIAN_FRONTEND=noninteractive apt-get install -q -y iproute2 >/dev/null 2>&1
ip netns add client
ip link add veth0 type veth peer name veth1 netns client
ip addr add 10.9.0.1/24 dev veth0
ip link set veth0 up
ip netns exec client ip addr add 10.9.0.2/24 dev veth1
ip netns exec client ip link set veth1 up
for port in 8080 8081 8082; do
  (python3 -m http.server $port --bind 10.9.0.1 >/dev/null 2>&1 &)
done
sleep 1
"""

PROBE = """ip netns exec client python3 -c '
import socket
for port in (8080, 8081, 8082):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("10.9.0.1", port))
        print(port, "open")
    except OSError as e:
        print(port, type(e).__name__)
'"""


def test_firewall_nftables(converge):
    result = converge(SPEC % {"allow": "8080"}, {"fw": 1}, network="private")
    node = "fw-1"
    ruleset = result.sh(node, "nft list table inet pallet_firewall")
    for line in ("policy drop;", "tcp dport 22 accept", "tcp dport 8080 accept",
                 "ip saddr 10.9.0.3 tcp dport 8082 accept", "reject with tcp reset"):
        assert line in ruleset, ruleset
    assert result.sh(node, "head -2 /etc/nftables.conf") == (
        "#!/usr/sbin/nft -f\n"
        "# Written by Pallet's firewall crate from data: edits are replaced on the next run.\n")
    result.sh(node, NETWORK)
    assert result.sh(node, PROBE) == (
        "8080 open\n8081 ConnectionRefusedError\n8082 ConnectionRefusedError\n")
    # Other rules: the file changes and is loaded again, once.
    report = lift(result, SPEC % {"allow": "8081"})
    assert changes(report) == 2   # the file, the load
    assert result.sh(node, PROBE) == (
        "8080 ConnectionRefusedError\n8081 open\n8082 ConnectionRefusedError\n")
    report = lift(result, SPEC % {"allow": "8081"})
    assert changes(report) == 0
