"""A real EC2 API on loopback for the cloud tests: moto's server, with its validation
switches on and images of our own, driven through libcloud by `pallet` subprocesses that
can reach nothing outside 127.0.0.0/8 (tests/loopback_only/sitecustomize.py)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
IMAGES = [
    ("ami-0a00000000000a001", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101",
     "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image", "x86_64"),
    ("ami-0a00000000000a002", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20240101",
     "Canonical, Ubuntu, 22.04 LTS, arm64 jammy image", "arm64"),
    ("ami-0a00000000000a003", "debian-12-amd64-20240102-1614",
     "Debian 12 (20240102-1614)", "x86_64"),
    ("ami-0a00000000000a004", "ubuntu/images/ebs/ubuntu-maverick-10.10-amd64-server-20101225",
     "Ubuntu 10.10 maverick amd64", "x86_64"),
]
SECRET_ID = "AKIAPALLETTEST7XQ2"
SECRET_KEY = "pallet/Secret+Key-Never-Printed-93c1"


def amis_file(path: Path) -> Path:
    path.write_text(json.dumps([
        {"ami_id": i, "name": n, "description": d, "owner_id": "099720109477", "public": True,
         "architecture": a, "root_device_type": "ebs", "root_device_name": "/dev/sda1",
         "virtualization_type": "hvm", "hypervisor": "xen", "state": "available",
         "image_location": f"amazon/{n}", "image_type": "machine"} for i, n, d, a in IMAGES]))
    return path


@pytest.fixture(scope="session")
def moto_ec2(tmp_path_factory):
    """(host, port) of moto's server on 127.0.0.1, for the session."""
    base = tmp_path_factory.mktemp("moto")
    os.environ.update(MOTO_AMIS_PATH=str(amis_file(base / "amis.json")),
                      MOTO_ENABLE_AMI_VALIDATION="1", MOTO_ENABLE_KEYPAIR_VALIDATION="1",
                      MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION="1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    yield host, port
    server.stop()


def ssh_key(path: Path) -> Path:
    """An ed25519 key pair (path, path.pub) made with cryptography, no ssh-keygen."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    Path(str(path) + ".pub").write_bytes(pub + b" pallet-test\n")
    return path


class Cloud:
    """One test's view: its services file, state and record directories, and runs."""

    def __init__(self, tmp: Path, host: str, port: int):
        self.tmp = tmp
        self.endpoint = f"http://{host}:{port}"
        self.key = ssh_key(tmp / "id_test")
        self.services = tmp / "services.toml"
        self.services.write_text(
            "[services.lab]\nprovider = \"aws-ec2\"\nregion = \"us-east-1\"\n"
            "identity = \"env:LAB_ID\"\ncredential = \"file:lab-secret\"\n"
            f"endpoint = \"{self.endpoint}\"\nprivate-key = \"id_test\"\n")
        (tmp / "lab-secret").write_text(SECRET_KEY + "\n")
        self.records = tmp / "runs"
        self.env = {**os.environ, "LAB_ID": SECRET_ID, "PALLET_SERVICES": str(self.services),
                    "PALLET_CLOUD_STATE": str(tmp / "cloud-state"), "PALLET_RECORD_DIR": str(self.records),
                    "PYTHONPATH": os.pathsep.join([str(HERE / "loopback_only"),
                                                   os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    def pallet(self, *args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pallet", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=self.env, cwd=self.tmp,
                              stdin=subprocess.DEVNULL, **kw)

    def spec(self, name: str, text: str) -> Path:
        path = self.tmp / f"{name}.pallet"
        path.write_text(text)
        return path

    def ec2(self):
        import boto3
        return boto3.client("ec2", region_name="us-east-1", endpoint_url=self.endpoint,
                            aws_access_key_id="x", aws_secret_access_key="y")

    def instances(self, spec: str, states=("pending", "running")) -> list[dict]:
        out = []
        pages = self.ec2().describe_instances(Filters=[
            {"Name": "tag:pallet-spec", "Values": [spec]},
            {"Name": "instance-state-name", "Values": list(states)}])
        for r in pages["Reservations"]:
            out += r["Instances"]
        return out


@pytest.fixture
def cloud(moto_ec2, tmp_path) -> Cloud:
    return Cloud(tmp_path, *moto_ec2)


class Proxy:
    """An HTTP forwarder on 127.0.0.1 in front of moto, for faults a real API has: a slow
    RunInstances, a RunInstances refused for lack of capacity, a hook before a request is
    forwarded. Answers what moto answers otherwise."""

    def __init__(self, upstream: str):
        import http.server
        import threading
        import urllib.parse
        import urllib.request
        self.upstream = upstream
        self.delay: dict[str, float] = {}              # Action (or "*") -> seconds before forwarding
        self.fail: dict[str, set[int]] = {}            # Action -> call numbers (1-based) to refuse
        self.hooks: dict[str, object] = {}             # Action -> fn(call number) before forwarding
        self.calls: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                import time
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                query = urllib.parse.urlparse(self.path).query
                params = urllib.parse.parse_qs(query)
                if body:
                    params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
                action = (params.get("Action") or [""])[0]
                with proxy.lock:
                    n = proxy.calls[action] = proxy.calls.get(action, 0) + 1
                if action in proxy.hooks:
                    proxy.hooks[action](n)
                time.sleep(proxy.delay.get(action, proxy.delay.get("*", 0)))
                if n in proxy.fail.get(action, ()):
                    data = (b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
                            b"<Code>InsufficientInstanceCapacity</Code><Message>We currently do not "
                            b"have sufficient capacity in the Availability Zone you requested."
                            b"</Message></Error></Errors><RequestID>1</RequestID></Response>")
                    status = 500
                else:
                    req = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command,
                                                 headers={k: v for k, v in self.headers.items()
                                                          if k.lower() not in ("host", "content-length")})
                    try:
                        with urllib.request.urlopen(req, timeout=60) as resp:
                            status, data = resp.status, resp.read()
                    except urllib.error.HTTPError as exc:
                        status, data = exc.code, exc.read()
                with proxy.lock:
                    proxy.done[action] = proxy.done.get(action, 0) + 1
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxied(cloud):
    """The test's cloud, its service going through a Proxy."""
    proxy = Proxy(cloud.endpoint)
    cloud.services.write_text(cloud.services.read_text().replace(cloud.endpoint, proxy.url))
    cloud.proxy = proxy
    yield cloud
    proxy.close()
