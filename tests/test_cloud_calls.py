"""What Pallet asks an EC2 API (moto's server on 127.0.0.1, through a counting proxy), and
that the lean calls give the same answers as the whole ones: --provision-only lists nodes
by their tags and states, waits on DescribeInstanceStatus, creates in batches and
terminates in one call; libcloud is loaded without paramiko, and cryptography when used."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cloud_env import SECRET_ID, cloud, moto_ec2, proxied  # noqa: F401 (fixtures)
from test_cloud_ec2 import WEB, run_json


@pytest.fixture
def loopback_only(monkeypatch):
    """This process, like the pallet processes of the tests, connects to loopback only."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "loopback_only"))
    try:
        import importlib
        guard = importlib.import_module("sitecustomize")
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(socket.socket, "connect", guard.connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guard.connect_ex)


def provider(cloud, spec_tag, monkeypatch):
    from pallet.runtime.cloud.provider import CloudProvider
    from pallet.runtime.cloud.services import load_services
    monkeypatch.setenv("LAB_ID", SECRET_ID)
    monkeypatch.setenv("PALLET_CLOUD_STATE", str(cloud.tmp / "cloud-state"))
    monkeypatch.chdir(cloud.tmp)
    return CloudProvider(load_services(cloud.services)["lab"], spec_tag)


def test_provision_only_makes_few_and_lean_calls(proxied):
    cloud = proxied
    spec = cloud.spec("calls", WEB)
    p, doc = run_json(cloud, "converge", spec, "web=60", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["created"]) == 60, p.stderr
    calls = dict(cloud.proxy.calls)
    assert calls["RunInstances"] == 3                      # 25 + 25 + 10
    assert calls["DescribeInstanceStatus"] == 1            # one look: moto runs them at once
    assert "DescribeInstances" not in calls                # no whole instances read
    cloud.proxy.calls.clear()
    p, doc = run_json(cloud, "converge", spec, "web=0", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["destroyed"]) == 60, p.stderr
    calls = dict(cloud.proxy.calls)
    assert calls["TerminateInstances"] == 1 and "DescribeInstances" not in calls
    assert "RunInstances" not in calls
    assert cloud.instances("calls") == []


def test_the_lean_listing_finds_what_the_whole_one_does(cloud, monkeypatch, loopback_only):
    spec = cloud.spec("lean", WEB + '(def db (group-spec "db" :phases {:configure (phase-fn (file "/x"))}))\n')
    assert cloud.pallet("converge", spec, "web=3", "db=2", "--compute", "lab", "--provision-only").returncode == 0
    other = cloud.spec("lean_other", WEB)
    assert cloud.pallet("converge", other, "web=1", "--compute", "lab", "--provision-only").returncode == 0
    ec2 = cloud.ec2()
    # a node of the spec that is gone, and one with the spec's tag that Pallet did not make
    gone = cloud.instances("lean")[0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])
    ec2.run_instances(ImageId="ami-0a00000000000a001", InstanceType="t3a.micro", MinCount=1, MaxCount=1,
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": [{"Key": "pallet-spec", "Value": "lean"}]}])

    def seen(nodes):
        return sorted((n.id, n.name, n.group, n.spec, n.state, n.login_user) for n in nodes)
    whole = provider(cloud, "lean", monkeypatch).cloud_nodes()
    lean = provider(cloud, "lean", monkeypatch).cloud_nodes(addresses=False)
    assert len(whole) == 4 and gone not in {n.id for n in whole}
    assert seen(lean) == seen(whole)
    assert all(n.address for n in whole) and not any(n.address for n in lean)
    every = provider(cloud, "lean", monkeypatch).cloud_nodes(every_spec=True, addresses=False)
    assert seen(every) == seen(provider(cloud, "lean", monkeypatch).cloud_nodes(every_spec=True))
    assert {n.spec for n in every} >= {"lean", "lean_other"}


def test_states_of_ids_ec2_does_not_show(cloud, monkeypatch, loopback_only):
    from pallet.runtime.cloud.drivers import ec2_instance_states
    ec2 = cloud.ec2()
    made = ec2.run_instances(ImageId="ami-0a00000000000a001", InstanceType="t3a.micro", MinCount=2, MaxCount=2)
    ids = [i["InstanceId"] for i in made["Instances"]]
    ec2.terminate_instances(InstanceIds=ids[:1])
    d = provider(cloud, "states", monkeypatch).driver
    states = ec2_instance_states(d, ids + ["i-0123456789abcdef0", "i-0123456789abcdef1"])
    assert states == {ids[0]: "terminated", ids[1]: "running"}


def test_creating_through_the_provider_waits_for_addresses(cloud, monkeypatch, loopback_only):
    # The Provider interface (and converge with phases) waits for running nodes with an
    # address: those are read with DescribeInstances once the states say running.
    p = provider(cloud, "addr", monkeypatch)
    records = p.create_nodes("web", 2)
    live = {i["InstanceId"]: i for i in cloud.instances("addr")}
    assert len(records) == 2 and len(live) == 2
    assert {r.endpoint.host for r in records} == {i["PublicIpAddress"] for i in live.values()}
    assert all(r.endpoint.user == "ubuntu" for r in records)


def test_destroying_nodes_listed_without_addresses_forgets_their_host_keys(cloud):
    spec = cloud.spec("keys", WEB)
    assert cloud.pallet("converge", spec, "web=2", "--compute", "lab", "--provision-only").returncode == 0
    addresses = [i["PublicIpAddress"] for i in cloud.instances("keys")]
    known = cloud.tmp / "cloud-state" / "known_hosts"
    known.parent.mkdir(parents=True, exist_ok=True)
    kept = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherHostKeyKeptAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    known.write_text("".join(f"{a} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKey{n}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
                             for n, a in enumerate(addresses)) + kept)
    p, doc = run_json(cloud, "converge", spec, "web=0", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["destroyed"]) == 2, p.stderr
    assert known.read_text() == kept


def test_libcloud_is_loaded_without_paramiko():
    code = ("import sys\n"
            "from pallet.runtime.cloud.libcloud_loader import import_libcloud\n"
            "import_libcloud()\n"
            "import libcloud.compute.drivers.ec2, libcloud.compute.ssh as ssh\n"
            "print(json.dumps(['paramiko' in sys.modules, 'invoke' in sys.modules, ssh.have_paramiko]))\n"
            "import paramiko\n"
            "print(json.dumps(paramiko.__name__))\n")
    p = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.splitlines()
    assert json.loads(first) == [False, False, False]
    assert json.loads(second) == "paramiko"              # still importable afterwards


def test_every_node_of_every_batch_is_tagged_keyed_and_firewalled(proxied):
    # 30 nodes: two RunInstances (25 + 5), the tags, key pair, security group and user data
    # in each call; the rules of the ports in one AuthorizeSecurityGroupIngress
    import base64
    cloud = proxied
    spec = cloud.spec("batches", WEB)
    p, doc = run_json(cloud, "converge", spec, "web=30", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["created"]) == 30, p.stderr
    assert cloud.proxy.calls["RunInstances"] == 2
    assert cloud.proxy.calls["AuthorizeSecurityGroupIngress"] == 1
    ec2 = cloud.ec2()
    live = cloud.instances("batches")
    assert len(live) == 30
    names = sorted(doc["created"])
    assert len(set(names)) == 30 and sorted(f"web-{i['InstanceId'][-8:]}" for i in live) == names
    pub = " ".join((cloud.tmp / "id_test.pub").read_text().split()[:2])
    for inst in live:
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert (tags["pallet-group"], tags["pallet-spec"], tags["pallet-login-user"]) == ("web", "batches", "ubuntu")
        assert inst["KeyName"].startswith("pallet-")
        assert [g["GroupName"] for g in inst["SecurityGroups"]] == ["pallet-batches-web"]
        data = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
        assert pub in base64.b64decode(data["UserData"]["Value"]).decode()
    assert len({i["KeyName"] for i in live}) == 1
    group = ec2.describe_security_groups(GroupNames=["pallet-batches-web"])["SecurityGroups"][0]
    assert sorted((r["FromPort"], r["IpRanges"][0]["CidrIp"]) for r in group["IpPermissions"]) == [
        (22, "0.0.0.0/0"), (80, "0.0.0.0/0"), (443, "0.0.0.0/0")]
    p, doc = run_json(cloud, "converge", spec, "web=0", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["destroyed"]) == 30


def test_a_port_opened_meanwhile_is_passed_over(proxied):
    # another run opens port 80 between the look-up and the rules: EC2 refuses the call of
    # all the ports; each is then opened alone, the duplicate passed over
    cloud = proxied
    ec2 = cloud.ec2()

    def open_80(n):
        if n == 1:
            ec2.authorize_security_group_ingress(GroupName="pallet-meanwhile-web", IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    cloud.proxy.hooks["AuthorizeSecurityGroupIngress"] = open_80
    spec = cloud.spec("meanwhile", WEB)
    p, doc = run_json(cloud, "converge", spec, "web=1", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["created"]) == 1, p.stderr
    group = ec2.describe_security_groups(GroupNames=["pallet-meanwhile-web"])["SecurityGroups"][0]
    assert sorted(r["FromPort"] for r in group["IpPermissions"]) == [22, 80, 443]
    assert cloud.proxy.calls["AuthorizeSecurityGroupIngress"] == 4     # all, then one by one
    assert cloud.pallet("converge", spec, "web=0", "--compute", "lab", "--provision-only").returncode == 0


def test_the_catalogue_is_read_while_the_nodes_are_listed(proxied):
    # the listing (DescribeTags) is held until the images are asked for: a converge that
    # listed first and read the catalogue after would wait here in vain
    import threading
    import time
    cloud = proxied
    asked = threading.Event()
    held = []

    def images(n):
        asked.set()

    def listing(n):
        if n == 1:
            held.append(asked.wait(20))
    cloud.proxy.hooks.update(DescribeImages=images, DescribeTags=listing)
    spec = cloud.spec("atonce", WEB)
    start = time.monotonic()
    p, doc = run_json(cloud, "converge", spec, "web=2", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["created"]) == 2, p.stderr
    assert held == [True], time.monotonic() - start
    # no node needed: the catalogue is not read, nor a key pair imported
    cloud.proxy.calls.clear()
    cloud.proxy.hooks.clear()
    p, doc = run_json(cloud, "converge", spec, "web=0", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["destroyed"]) == 2
    assert not {"DescribeImages", "DescribeKeyPairs", "ImportKeyPair"} & set(cloud.proxy.calls)


def test_a_node_spec_that_matches_nothing_is_no_error_when_no_node_is_needed(cloud):
    bad = WEB.replace(":min-cores 2", ":min-cores 4096")
    spec = cloud.spec("unneeded", WEB)
    assert cloud.pallet("converge", spec, "web=1", "--compute", "lab", "--provision-only").returncode == 0
    spec.write_text(bad)
    p, doc = run_json(cloud, "converge", spec, "web=1", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and doc["created"] == [], p.stderr          # the node it has
    p = cloud.pallet("converge", spec, "web=2", "--compute", "lab", "--provision-only")
    assert p.returncode == 2 and "min-cores 4096" in p.stderr and "Traceback" not in p.stderr
    spec.write_text(WEB)
    assert cloud.pallet("converge", spec, "web=0", "--compute", "lab", "--provision-only").returncode == 0


def test_libcloud_loads_cryptography_only_when_its_key_helpers_are_used(tmp_path):
    from cloud_env import ssh_key
    pub = Path(str(ssh_key(tmp_path / "id")) + ".pub").read_text()
    code = ("import json, sys\n"
            "from pallet.runtime.cloud.libcloud_loader import import_libcloud\n"
            "import_libcloud()\n"
            "from libcloud.compute.providers import get_driver\n"
            "get_driver('ec2'), get_driver('openstack')\n"
            "print(json.dumps(any(m.startswith('cryptography') for m in sys.modules)))\n"
            "from libcloud.utils.publickey import get_pubkey_openssh_fingerprint as f\n"
            f"print(json.dumps(f({pub!r})))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.splitlines()
    assert json.loads(first) is False
    # the same fingerprint as libcloud's own, cryptography loaded at once
    from libcloud.utils.publickey import get_pubkey_openssh_fingerprint
    assert json.loads(second) == get_pubkey_openssh_fingerprint(pub)
