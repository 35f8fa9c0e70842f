"""package-repo: an apt source (Debian's bookworm-backports, through the private node's apt
proxy) signed by a key from a local file: the key lands in /etc/apt/keyrings, the source names
it with signed-by, and apt fetched and verified that source's index; a changed source is
refreshed again, once."""
from __future__ import annotations

from pallet.runtime.localnodes import ensure_rootfs

from .relift import changes, lift


SPEC = r'''
(def node
  (group-spec "node"
    :extends [(package-repo/server
                :repositories {"backports" {:url "http://deb.debian.org/debian"
                                            :release "bookworm-backports"
                                            :components %(components)s
                                            :key-file "keys/debian-automatic.asc"}})]))
'''


def test_package_repo_apt_source_with_key(converge, local_nodes):
    # The key that signs Debian's bookworm-backports, as the node's own keyring package has it.
    key = (ensure_rootfs(local_nodes.cache_dir)
           / "etc/apt/trusted.gpg.d/debian-archive-bookworm-automatic.asc").read_text()
    result = converge(SPEC % {"components": '["main"]'}, {"node": 1}, network="private",
                      files={"keys/debian-automatic.asc": key})
    node = "node-1"
    assert result.sh(node, "cat /etc/apt/keyrings/backports.asc") == key
    assert result.sh(node, "stat -c '%a %U' /etc/apt/keyrings/backports.asc") == "644 root\n"
    assert result.sh(node, "grep -v '^#' /etc/apt/sources.list.d/backports.list") == (
        "deb [signed-by=/etc/apt/keyrings/backports.asc] http://deb.debian.org/debian "
        "bookworm-backports main\n")
    # apt fetched the source's index and verified it with that key alone.
    assert "bookworm-backports/main" in result.sh(node, "apt-cache policy")
    assert result.sh(node, "ls /var/lib/apt/lists | grep -c 'bookworm-backports_InRelease$'") == "1\n"
    # A changed source: the file and the refresh change, once.
    report = lift(result, SPEC % {"components": '["main" "contrib"]'})
    assert changes(report) == 2
    assert "bookworm-backports/contrib" in result.sh(node, "apt-cache policy")
    report = lift(result, SPEC % {"components": '["main" "contrib"]'})
    assert changes(report) == 0
