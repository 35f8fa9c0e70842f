"""converge on a real EC2 API (moto's server on 127.0.0.1) through libcloud's EC2 driver:
counts, surplus, idempotence, dry run, firewall rules, key pair, tags, user data, failures,
Ctrl-C, destroy; credentials nowhere. Every run is --provision-only: moto's addresses are
not ours to connect to (and the processes refuse anything outside 127.0.0.0/8)."""
from __future__ import annotations

import json

import pytest

from cloud_env import SECRET_ID, SECRET_KEY, cloud, moto_ec2  # noqa: F401 (fixtures)

WEB = """
(def web
  (group-spec "web"
    :node-spec (node-spec :image {:os-family :ubuntu :os-version-matches "22.04"}
                          :hardware {:min-cores 2 :min-ram 1024}
                          :network {:inbound-ports [80 443]})
    :phases {:configure (phase-fn (file "/etc/web"))}))
"""


def test_converge_counts_surplus_and_idempotence(cloud):
    spec = cloud.spec("counts", WEB)
    p = cloud.pallet("converge", spec, "web=3", "--compute", "lab", "--provision-only", "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert len(report["created"]) == 3 and report["destroyed"] == []
    live = cloud.instances("counts")
    assert sorted(i["InstanceId"][-8:] for i in live) == sorted(n[-8:] for n in report["created"])
    # the same counts again change nothing
    p = cloud.pallet("converge", spec, "web=3", "--compute", "lab", "--provision-only", "--json")
    assert p.returncode == 0, p.stderr
    again = json.loads(p.stdout)
    assert again["created"] == [] and again["destroyed"] == []
    assert {i["InstanceId"] for i in cloud.instances("counts")} == {i["InstanceId"] for i in live}
    # down to one: two destroyed, one kept
    p = cloud.pallet("converge", spec, "web=1", "--compute", "lab", "--provision-only", "--json")
    assert p.returncode == 0, p.stderr
    down = json.loads(p.stdout)
    assert len(down["destroyed"]) == 2 and down["created"] == []
    assert len(cloud.instances("counts")) == 1
