"""Converging 0 -> N -> 0 cloud nodes with --provision-only, against moto's EC2 server on
127.0.0.1, side by side with a plain sequential libcloud loop doing the same work.

Goal (issue [7/9]): Pallet at least 5x faster than the loop with its default parallelism.

Both sides make the same nodes (image, size, key pair, security group, tags, user data),
wait until the API says they run, and destroy them. Pallet is timed as whole processes
(`pallet converge spec web=N` then `web=0`: start, load the spec, list, match the template,
create, wait, list, destroy); the loop runs in this process with its driver already made
(its imports and start are not counted): create_node per node, wait_until_running (its
nodes asked for by id: libcloud's list_nodes reads one page only), destroy_node per node.

A third row, the floor, is what moto itself needs for the same creates and destroys made
the cheapest way: from this process (no start, no spec, no listing), the RunInstances
batches of Pallet at once, one DescribeInstanceStatus, one TerminateInstances. The loop's
time over the floor's is the best ratio any client could reach against this server.

A fourth row is Pallet's own cost: the same two commands on a spec with nothing to change
(`web=0` twice: start, imports, the spec, one listing). Pallet's row less this one is what
its creates and destroys take; against the loop's time, that ratio shows how the batches
do once the two commands have started.

moto runs in its own process; its CPU is reported apart. Rounds alternate the order;
medians are printed, with the machine's load and a calibration loop's time. Nothing
connects to the addresses moto reports (54.x): the pallet processes refuse any connection
outside 127.0.0.0/8, and the loop and the floor make none.

    python bench/bench_cloud.py [--nodes 100] [--rounds 3] [--latency 0.2] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = {"ami_id": "ami-0b00000000000b001",
         "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101",
         "description": "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image", "owner_id": "099720109477",
         "public": True, "architecture": "x86_64", "root_device_type": "ebs",
         "root_device_name": "/dev/sda1", "virtualization_type": "hvm", "hypervisor": "xen",
         "state": "available", "image_location": "amazon/ubuntu-jammy", "image_type": "machine"}
SPEC = """(def web (group-spec "web"
  :node-spec (node-spec :image {:os-family :ubuntu :os-version-matches "22.04"}
                        :hardware {:min-cores 2 :min-ram 1024} :network {:inbound-ports [80]})
  :phases {:configure (phase-fn (file "/etc/web"))}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_moto(tmp: Path) -> tuple[subprocess.Popen, str]:
    (tmp / "amis.json").write_text(json.dumps([IMAGE]))
    port = free_port()
    env = {**os.environ, "MOTO_AMIS_PATH": str(tmp / "amis.json"), "MOTO_ENABLE_AMI_VALIDATION": "1",
           "MOTO_ENABLE_KEYPAIR_VALIDATION": "1", "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "1"}
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def start_proxy(url: str, delay: float) -> tuple[subprocess.Popen, str]:
    """tests/cloud_env.py's Proxy in a process of its own (its CPU is no side's), each call
    delayed by `delay` seconds."""
    code = ("import sys, time\n"
            f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
            "from cloud_env import Proxy\n"
            f"p = Proxy({url!r}); p.delay['*'] = {delay!r}\n"
            "print(p.url, flush=True)\n"
            "while True: time.sleep(3600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def service_text(url: str) -> str:
    return (f'[services.bench]\nprovider = "ec2"\nregion = "us-east-1"\nidentity = "bench"\n'
            f'credential = "bench"\nendpoint = "{url}"\nprivate-key = "id_bench"\n')


def make_key(tmp: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    (tmp / "id_bench").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                     serialization.NoEncryption()))
    (tmp / "id_bench.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" bench\n")


def pallet_round(tmp: Path, n: int, moto_pid: int, tag: str, services: str = "services.toml") -> dict:
    spec = tmp / f"{tag}.pallet"
    spec.write_text(SPEC)
    env = {**os.environ, "PALLET_SERVICES": str(tmp / services),
           "PALLET_CLOUD_STATE": str(tmp / "state"), "PALLET_RECORD_DIR": str(tmp / "runs"),
           "PYTHONPATH": str(ROOT / "tests" / "loopback_only")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)    # as installed: modules compiled once
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    moto_before = cpu_of(moto_pid)
    start = time.perf_counter()
    for count in (n, 0):
        p = subprocess.run([sys.executable, "-m", "pallet", "converge", str(spec), f"web={count}",
                            "--compute", "bench", "--provision-only", "--json"],
                           capture_output=True, text=True, env=env, cwd=tmp)
        if p.returncode != 0:
            raise SystemExit(f"pallet converge web={count} failed:\n{p.stderr[-2000:]}")
        doc = json.loads(p.stdout)
        made = len(doc["created"]) if count else len(doc["destroyed"])
        if made != n:
            raise SystemExit(f"pallet converge web={count}: {made} nodes, expected {n}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "moto_cpu": cpu_of(moto_pid) - moto_before}


def loop_round(driver, n: int, moto_pid: int, tag: str, key_name: str, group: str, user_data: str) -> dict:
    image = driver.list_images(ex_image_ids=[IMAGE["ami_id"]])[0]
    size = next(s for s in driver.list_sizes() if s.id == "t3a.micro")
    moto_before = cpu_of(moto_pid)
    c0 = time.process_time()
    start = time.perf_counter()
    nodes = []
    for i in range(n):
        nodes.append(driver.create_node(
            name=f"web-{i}", size=size, image=image, ex_keyname=key_name, ex_userdata=user_data,
            ex_security_groups=[group], ex_metadata={"pallet-group": "web", "pallet-spec": tag}))
    # Its nodes by id: libcloud's list_nodes reads only the first page (moto's 100
    # reservations), and a tag filter costs moto more the more instances it has seen. A
    # poll every 0.2 s, not libcloud's 5 s: moto runs them at once, so it never waits.
    driver.wait_until_running(nodes, wait_period=0.2, timeout=120,
                              ex_list_nodes_kwargs={"ex_node_ids": [node.id for node in nodes]})
    for node in nodes:
        driver.destroy_node(node)
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": time.process_time() - c0, "moto_cpu": cpu_of(moto_pid) - moto_before}


def floor_round(driver, n: int, moto_pid: int, tag: str, key_name: str, group: str, user_data: str) -> dict:
    """The same creates and destroys made the cheapest way, from this process: Pallet's
    batches at once, one look at the states, one terminate. moto's own cost of the work."""
    from concurrent.futures import ThreadPoolExecutor

    from pallet.runtime.cloud.drivers import ec2_instance_states
    from pallet.runtime.cloud.provider import EC2_BATCH
    image = driver.list_images(ex_image_ids=[IMAGE["ami_id"]])[0]
    size = next(s for s in driver.list_sizes() if s.id == "t3a.micro")
    batches = [min(EC2_BATCH, n - i) for i in range(0, n, EC2_BATCH)]
    moto_before = cpu_of(moto_pid)
    c0 = time.process_time()
    start = time.perf_counter()

    def create(count):
        return driver.create_node(
            name="web", size=size, image=image, ex_keyname=key_name, ex_userdata=user_data,
            ex_security_groups=[group], ex_metadata={"pallet-group": "web", "pallet-spec": tag},
            ex_mincount=count, ex_maxcount=count)
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        nodes = [node for made in pool.map(create, batches) for node in made]
    ids = [node.id for node in nodes]
    states = ec2_instance_states(driver, ids)
    assert len(ids) == n and set(states.values()) == {"running"}, states
    for i in range(0, n, 500):
        driver.connection.request(driver.path, params={"Action": "TerminateInstances",
                                                       **driver._pathlist("InstanceId", ids[i:i + 500])})
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": time.process_time() - c0, "moto_cpu": cpu_of(moto_pid) - moto_before}


def machine() -> dict:
    """The load average, and the time of a calibration loop (a CPU-bound second or so)."""
    load = os.getloadavg()
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["python3", "-c", "sum(i*i for i in range(10**7))"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"load": [round(x, 2) for x in load], "calibration_wall": round(time.perf_counter() - start, 3),
            "calibration_cpu": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 3)}


def scenario(tmp: Path, url: str, services: str, moto_pid: int, nodes: int, rounds: int,
             label: str) -> dict:
    from pallet.runtime.cloud.drivers import make_driver
    from pallet.runtime.cloud.services import parse_services
    (tmp / services).write_text(service_text(url))
    svc = parse_services(service_text(url), services, tmp)["bench"]
    driver = make_driver(svc)           # the loop needs the same EC2 fixes to work on moto
    pub = (tmp / "id_bench.pub").read_text().strip()
    key, group = f"loop-key-{label}", f"loop-web-{label}"
    driver.import_key_pair_from_string(key, pub)
    driver.ex_create_security_group(group, "loop")
    for port in (22, 80):
        driver.ex_authorize_security_group(group, port, port, "0.0.0.0/0")
    user_data = f"#cloud-config\nssh_authorized_keys:\n  - {pub}\n"
    results = {"pallet": [], "loop": [], "floor": [], "idle": []}
    before = machine()
    for r in range(rounds):
        order = ("pallet", "loop", "floor", "idle") if r % 2 == 0 else ("idle", "floor", "loop", "pallet")
        for who in order:
            if who == "pallet":
                results[who].append(pallet_round(tmp, nodes, moto_pid, f"{label}{r}", services))
            elif who == "idle":         # the same two commands with nothing to change
                results[who].append(pallet_round(tmp, 0, moto_pid, f"idle{label}{r}", services))
            else:
                fn = loop_round if who == "loop" else floor_round
                results[who].append(fn(driver, nodes, moto_pid, f"{who}{label}{r}", key, group, user_data))
    med = {who: {k: statistics.median(x[k] for x in rs) for k in ("wall", "cpu", "moto_cpu")}
           for who, rs in results.items()}
    return {"rounds": results, "median": med, "machine": [before, machine()],
            "ratio": med["loop"]["wall"] / med["pallet"]["wall"],
            "ceiling": med["loop"]["wall"] / med["floor"]["wall"]}


def report(title: str, result: dict, goal: bool) -> None:
    med = result["median"]
    print(title)
    for when, m in zip(("before", "after"), result["machine"]):
        print(f"  machine {when}: load {' '.join(map(str, m['load']))}; calibration loop "
              f"{m['calibration_wall']:.2f} s wall, {m['calibration_cpu']:.2f} s cpu")
    print(f"  {'':38}{'wall s':>9}{'cpu s':>9}{'moto cpu s':>12}")
    names = {"pallet": "pallet converge (2 processes)", "loop": "sequential libcloud loop",
             "floor": "floor: the same calls, no client",
             "idle": "pallet, nothing to change (2 proc.)"}
    for who in ("pallet", "loop", "floor", "idle"):
        m = med[who]
        print(f"  {names[who]:38}{m['wall']:9.2f}{m['cpu']:9.2f}{m['moto_cpu']:12.2f}")
    verdict = (" (goal: at least 5x): " + ("met" if result["ratio"] >= 5 else "NOT met")) if goal else ""
    print(f"  pallet is {result['ratio']:.1f}x faster than the loop{verdict}")
    print(f"  the loop over the floor: {result['ceiling']:.1f}x, the most any client could reach here")
    work = med["pallet"]["wall"] - med["idle"]["wall"]
    print(f"  of pallet's {med['pallet']['wall']:.2f} s, {med['idle']['wall']:.2f} s are its two commands' "
          f"own (start, spec, listing; nothing to change); the creates and destroys {work:.2f} s, "
          f"{med['loop']['wall'] / max(work, 1e-9):.1f}x faster than the loop's")
    total = {who: med[who]["cpu"] + med[who]["moto_cpu"] for who in ("pallet", "loop", "floor")}
    print(f"  cpu of client and moto together: loop {total['loop']:.2f} s, pallet {total['pallet']:.2f} s "
          f"({total['loop'] / total['pallet']:.1f}x), floor {total['floor']:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", type=float, default=0.2,
                    help="seconds added to each API call in the second scenario (0: skip it)")
    ap.add_argument("--latency-rounds", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    out = {"nodes": args.nodes}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        moto, url = start_moto(tmp)
        proxy = None
        try:
            make_key(tmp)
            (tmp / "services.toml").write_text(service_text(url))
            from pallet.runtime.cloud.drivers import make_driver
            from pallet.runtime.cloud.services import parse_services
            make_driver(parse_services(service_text(url), "s", tmp)["bench"]).list_images()  # moto's backend
            pallet_round(tmp, 1, moto.pid, "warmup")   # untimed: modules compiled once
            out["plain"] = scenario(tmp, url, "services.toml", moto.pid, args.nodes, args.rounds, "p")
            report(f"0 -> {args.nodes} -> 0 nodes, --provision-only, moto on 127.0.0.1, median of "
                   f"{args.rounds} round(s)", out["plain"], True)
            if args.latency > 0:
                proxy, proxy_url = start_proxy(url, args.latency)
                out["latency"] = scenario(tmp, proxy_url, "services-latency.toml", moto.pid,
                                          args.nodes, args.latency_rounds, "l")
                report(f"the same with {args.latency * 1000:.0f} ms added to every API call (a real "
                       f"cloud's order), median of {args.latency_rounds} round(s)", out["latency"], True)
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait()
            moto.terminate()
            moto.wait()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
