"""converge on a real EC2 API (moto's server on 127.0.0.1) through libcloud's EC2 driver:
counts, surplus, idempotence, dry run, firewall rules, key pair, tags, user data, failures,
Ctrl-C, destroy; credentials nowhere. Every run is --provision-only: moto's addresses are
not ours to connect to (and the processes refuse anything outside 127.0.0.0/8)."""
from __future__ import annotations

import json

import pytest

from cloud_env import SECRET_ID, SECRET_KEY, cloud, moto_ec2, proxied  # noqa: F401 (fixtures)

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


def run_json(cloud, *args):
    p = cloud.pallet(*args, "--json")
    assert "Traceback" not in p.stderr, p.stderr
    return p, (json.loads(p.stdout) if p.stdout.strip().startswith(("{", "[")) else None)


def test_dry_run_prints_the_plan_and_changes_nothing(cloud):
    spec = cloud.spec("dry", WEB)
    p = cloud.pallet("converge", spec, "web=2", "--compute", "lab", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "web on lab: 0 -> 2 node(s): create 2: t3a.micro (2 cores, 1024 MB, 0 GB, x86_64), image "
        "ami-0a00000000000a001 (ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101: "
        "ubuntu 22.04 x86_64), default location; ports 22, 80, 443; login ubuntu",
        "then phases :configure on every node of the groups",
        "dry run: nothing was changed"]
    assert cloud.instances("dry") == []
    assert not cloud.records.exists()            # nothing written either
    p, doc = run_json(cloud, "converge", spec, "web=2", "--compute", "lab", "--dry-run")
    assert doc["groups"][0]["size"] == "t3a.micro" and doc["groups"][0]["create"] == 2


def test_the_talks_node_specs_match_ubuntu_10_10(cloud):
    text = open(__file__.replace("tests/test_cloud_ec2.py", "examples/hadoop.pallet")).read()
    spec = cloud.spec("talk", text.replace(":compute aws-ec2", ":compute (compute-service :lab)"))
    p, doc = run_json(cloud, "converge", spec, "--dry-run")
    assert p.returncode == 0, p.stderr
    groups = {g["group"]: g for g in doc["groups"]}
    assert groups["task-tracker"]["want"] == 10 and groups["job-tracker"]["want"] == 1
    assert {g["image"] for g in groups.values()} == {"ami-0a00000000000a004"}   # 10.10
    assert groups["job-tracker"]["size"] == "t3a.nano"      # 2 cores, 512 MB: the smallest
    assert groups["task-tracker"]["inbound_ports"] == [22, 80, 8042]


def test_firewall_key_pair_tags_and_user_data(cloud):
    spec = cloud.spec("fw", WEB)
    p = cloud.pallet("converge", spec, "web=2", "--compute", "lab", "--provision-only")
    assert p.returncode == 0, p.stderr
    ec2 = cloud.ec2()
    live = cloud.instances("fw")
    assert len(live) == 2
    pub = (cloud.tmp / "id_test.pub").read_text().split()
    for inst in live:
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert tags["pallet-group"] == "web" and tags["pallet-spec"] == "fw"
        assert tags["pallet-login-user"] == "ubuntu"
        assert inst["InstanceType"] == "t3a.micro" and inst["ImageId"] == "ami-0a00000000000a001"
        assert [g["GroupName"] for g in inst["SecurityGroups"]] == ["pallet-fw-web"]
        data = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
        import base64
        user_data = base64.b64decode(data["UserData"]["Value"]).decode()
        assert user_data.startswith("#cloud-config\n") and " ".join(pub[:2]) in user_data
        key_name = inst["KeyName"]
    # the key pair: imported once, named after the key's fingerprint
    pairs = [k for k in ec2.describe_key_pairs()["KeyPairs"] if k["KeyName"] == key_name]
    assert len(pairs) == 1 and key_name.startswith("pallet-")
    group = ec2.describe_security_groups(GroupNames=["pallet-fw-web"])["SecurityGroups"][0]
    ports = sorted(r["FromPort"] for r in group["IpPermissions"])
    assert ports == [22, 80, 443]
    assert all(r["IpRanges"][0]["CidrIp"] == "0.0.0.0/0" for r in group["IpPermissions"])
    # a second converge reuses the key pair and the group (no duplicate rules)
    p = cloud.pallet("converge", spec, "web=3", "--compute", "lab", "--provision-only")
    assert p.returncode == 0, p.stderr
    assert len([k for k in ec2.describe_key_pairs()["KeyPairs"] if k["KeyName"] == key_name]) == 1
    group = ec2.describe_security_groups(GroupNames=["pallet-fw-web"])["SecurityGroups"][0]
    assert sorted(r["FromPort"] for r in group["IpPermissions"]) == [22, 80, 443]


def test_two_specs_never_count_each_others_nodes(cloud):
    a, b = cloud.spec("spec_a", WEB), cloud.spec("spec_b", WEB)
    assert cloud.pallet("converge", a, "web=2", "--compute", "lab", "--provision-only").returncode == 0
    p, doc = run_json(cloud, "converge", b, "web=1", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["created"]) == 1 and doc["destroyed"] == []
    p, doc = run_json(cloud, "converge", b, "web=0", "--compute", "lab", "--provision-only")
    assert len(doc["destroyed"]) == 1
    assert len(cloud.instances("spec_a")) == 2 and cloud.instances("spec_b") == []


def test_nodes_and_destroy(cloud):
    spec = cloud.spec("listing", WEB + '(def db (group-spec "db" :phases {:configure (phase-fn (file "/x"))}))\n')
    p = cloud.pallet("converge", spec, "web=2", "db=1", "--compute", "lab", "--provision-only")
    assert p.returncode == 0, p.stderr
    p, rows = run_json(cloud, "nodes", "--compute", "lab")
    mine = [r for r in rows if r["spec"] == "listing"]
    assert sorted(r["group"] for r in mine) == ["db", "web", "web"]
    ids = {i["InstanceId"] for i in cloud.instances("listing")}
    assert {r["id"] for r in mine} == ids
    assert all(r["state"] == "running" and r["size"] and r["image"] and r["address"] for r in mine)
    # db's node is t3a.nano? no node-spec: the smallest size of all, an Ubuntu image
    db = next(r for r in mine if r["group"] == "db")
    assert db["image"] == "ami-0a00000000000a001"
    p = cloud.pallet("destroy", "--compute", "lab", "nosuch", "--yes")
    assert p.returncode == 2 and "no node or group named 'nosuch' on lab" in p.stderr
    p = cloud.pallet("destroy", "--compute", "lab", db["name"], "--yes")
    assert p.returncode == 0 and db["name"] in p.stdout
    assert len(cloud.instances("listing")) == 2
    p = cloud.pallet("destroy", "--compute", "lab", "web")
    assert p.returncode == 2 and "needs confirmation: add --yes" in p.stderr
    other = cloud.spec("listing_other", WEB)
    assert cloud.pallet("converge", other, "web=1", "--compute", "lab", "--provision-only").returncode == 0
    p = cloud.pallet("destroy", "--compute", "lab", "web", "--spec", "listing", "--yes")
    assert p.returncode == 0
    assert [i for i in cloud.instances("listing")] == []
    assert len(cloud.instances("listing_other")) == 1         # another spec's group "web"
    assert cloud.pallet("destroy", "--compute", "lab", "--all", "--spec", "listing_other",
                        "--yes").returncode == 0
    assert cloud.instances("listing_other") == []


def test_a_failing_create_in_the_middle_of_a_batch(proxied):
    cloud = proxied
    cloud.proxy.fail["RunInstances"] = {2}        # the second of three calls: 25 + 25 + 10
    spec = cloud.spec("middle", WEB)
    p, doc = run_json(cloud, "converge", spec, "web=60", "--compute", "lab", "--provision-only",
                      "--parallel", "1")
    assert p.returncode == 1, p.stderr
    assert len(doc["created"]) == 35
    failed = [ph for n in doc["nodes"] for ph in n["phases"] if ph["status"] == "failed"]
    assert len(failed) == 1 and "InsufficientInstanceCapacity" in failed[0]["error"]
    assert failed[0]["failed"] == 25
    assert len(cloud.instances("middle")) == 35            # the others go on
    # converging again makes the missing ones
    cloud.proxy.fail.clear()
    p, doc = run_json(cloud, "converge", spec, "web=60", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["created"]) == 25
    assert len(cloud.instances("middle")) == 60
    assert cloud.pallet("destroy", "--compute", "lab", "--all", "--yes").returncode == 0


def test_a_node_that_does_not_boot_is_destroyed_and_reported(proxied):
    cloud = proxied
    ec2 = cloud.ec2()
    stopped = []

    def stop_one(n):                  # the provider stops one node before it ever runs
        ids = [i["InstanceId"] for i in cloud.instances("noboot")]
        if ids and not stopped:       # the first look after the nodes were made: the wait
            stopped.append(sorted(ids)[0])
            ec2.stop_instances(InstanceIds=stopped)
    cloud.proxy.hooks["DescribeInstanceStatus"] = stop_one     # the wait's poll
    spec = cloud.spec("noboot", WEB)
    p, doc = run_json(cloud, "converge", spec, "web=3", "--compute", "lab", "--provision-only")
    assert p.returncode == 1, p.stderr
    failed = [(n["name"], ph) for n in doc["nodes"] for ph in n["phases"] if ph["status"] == "failed"]
    assert len(failed) == 1 and "did not boot" in failed[0][1]["error"]
    assert failed[0][0] in doc["destroyed"]
    left = cloud.instances("noboot", states=("pending", "running", "stopping", "stopped"))
    assert len(left) == 2 and stopped[0] not in {i["InstanceId"] for i in left}


def test_ctrl_c_while_creating_leaves_no_node_unrecorded(proxied):
    import signal
    import subprocess
    import sys
    import time
    cloud = proxied
    cloud.proxy.delay["RunInstances"] = 1.5
    spec = cloud.spec("sigint", WEB)
    proc = subprocess.Popen([sys.executable, "-m", "pallet", "converge", str(spec), "web=60",
                             "--compute", "lab", "--provision-only", "--parallel", "1", "--json"],
                            env=cloud.env, cwd=cloud.tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while cloud.proxy.done.get("RunInstances", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    # the second call in flight (awaited, not slept for: on a loaded machine the process
    # takes its time to record the first call's nodes and make the second)
    while cloud.proxy.calls.get("RunInstances", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cloud.proxy.calls.get("RunInstances") == 2 and cloud.proxy.done["RunInstances"] == 1
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True
    live = {i["InstanceId"] for i in cloud.instances("sigint")}
    assert len(live) == 50 and cloud.proxy.calls["RunInstances"] == 2   # no third call
    journal = [json.loads(line) for line in
               (cloud.records / next(p.name for p in cloud.records.iterdir()) / "nodes.jsonl").open()]
    assert {e["id"] for e in journal if e["event"] == "created"} == live
    assert len(report["created"]) == 50
    # the next converge counts them
    p, doc = run_json(cloud, "converge", spec, "web=60", "--compute", "lab", "--provision-only")
    assert p.returncode == 0 and len(doc["created"]) == 10
    assert cloud.pallet("destroy", "--compute", "lab", "--all", "--yes").returncode == 0


def test_credentials_appear_nowhere(cloud):
    spec = cloud.spec("secrets", WEB)
    outputs = []
    for args in (["converge", spec, "web=2", "--compute", "lab", "--provision-only"],
                 ["converge", spec, "web=2", "--compute", "lab", "--provision-only", "--json"],
                 ["converge", spec, "web=3", "--compute", "lab", "--dry-run", "--json"],
                 ["nodes", "--compute", "lab", "--json"], ["nodes", "--compute", "lab"],
                 ["services", "--check", "--json"], ["services"],
                 ["converge", spec, "web=1", "--compute", "lab", "--provision-only"],
                 ["destroy", "--compute", "lab", "web", "--yes"]):
        p = cloud.pallet(*args)
        assert p.returncode == 0, (args, p.stderr)
        outputs.append(p.stdout + p.stderr)
    # errors: a service that does not answer, and one that refuses the request
    cloud.services.write_text(cloud.services.read_text().replace(cloud.endpoint, "http://127.0.0.1:9"))
    for args in (["converge", spec, "web=1", "--compute", "lab", "--provision-only"],
                 ["services", "--check"], ["nodes", "--compute", "lab", "--json"]):
        p = cloud.pallet(*args)
        assert p.returncode in (1, 2) and "Traceback" not in p.stderr, p.stderr
        outputs.append(p.stdout + p.stderr)
    assert "lab: listing nodes:" in outputs[-1]
    files = [f for f in cloud.tmp.rglob("*") if f.is_file()
             and f.name not in ("services.toml", "lab-secret")]
    assert any(f.name == "summary.json" for f in files) and any(f.name == "nodes.jsonl" for f in files)
    for secret in (SECRET_ID, SECRET_KEY):
        for text in outputs:
            assert secret not in text
        for f in files:
            assert secret.encode() not in f.read_bytes(), f


def test_counts_read_every_page_of_the_listing(cloud):
    # 101 reservations: moto answers DescribeInstances 100 reservations a page, as EC2 pages;
    # a count from the first page would create a node that exists.
    ec2 = cloud.ec2()
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "pallet-group", "Value": "web"},
                                                  {"Key": "pallet-spec", "Value": "pages"}]}]
    for _ in range(101):
        ec2.run_instances(ImageId="ami-0a00000000000a001", InstanceType="t3a.micro", MinCount=1,
                          MaxCount=1, TagSpecifications=tags)
    spec = cloud.spec("pages", WEB)
    p, doc = run_json(cloud, "converge", spec, "web=101", "--compute", "lab", "--provision-only")
    assert p.returncode == 0, p.stderr
    assert doc["created"] == [] and doc["destroyed"] == [] and len(doc["nodes"]) == 101
    p, doc = run_json(cloud, "converge", spec, "web=0", "--compute", "lab", "--provision-only")
    assert len(doc["destroyed"]) == 101 and cloud.instances("pages") == []


def test_groups_on_different_services_in_one_converge(cloud):
    # "hybrid clouds": a group-spec's own :compute; here two regions of the same API
    west = cloud.services.read_text().replace("[services.lab]", "[services.lab-west]").replace(
        "us-east-1", "us-west-2")
    cloud.services.write_text(cloud.services.read_text() + "\n" + west)
    spec = cloud.spec("hybrid", WEB + '(def db (group-spec "db" :compute (compute-service :lab-west)\n'
                      '  :phases {:configure (phase-fn (file "/x"))}))\n'
                      "(converge {web 2 db 1} :compute :lab)\n")
    p, doc = run_json(cloud, "converge", spec, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert {(g["group"], g["compute"], g["create"]) for g in doc["groups"]} == {("web", "lab", 2), ("db", "lab-west", 1)}
    p, doc = run_json(cloud, "converge", spec, "--provision-only")
    assert p.returncode == 0, p.stderr
    assert len(doc["created"]) == 3
    import boto3
    west_ec2 = boto3.client("ec2", region_name="us-west-2", endpoint_url=cloud.endpoint,
                            aws_access_key_id="x", aws_secret_access_key="y")
    there = [i for r in west_ec2.describe_instances(Filters=[{"Name": "tag:pallet-spec", "Values": ["hybrid"]}])["Reservations"]
             for i in r["Instances"] if i["State"]["Name"] in ("pending", "running")]
    assert [{t["Key"]: t["Value"] for t in i["Tags"]}["pallet-group"] for i in there] == ["db"]
    assert sorted({t["Key"]: t["Value"] for t in i["Tags"]}["pallet-group"] for i in cloud.instances("hybrid")) == ["web", "web"]
    # --compute on the command line puts every group there
    p, doc = run_json(cloud, "converge", spec, "--compute", "lab", "--dry-run")
    assert {(g["group"], g["compute"]) for g in doc["groups"]} == {("web", "lab"), ("db", "lab")}
    p, doc = run_json(cloud, "converge", spec, "web=0", "db=0", "--provision-only")
    assert p.returncode == 0 and len(doc["destroyed"]) == 3
