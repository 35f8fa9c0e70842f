"""The services file (runtime/cloud/services.py) and `pallet services`: located errors that
name the near ones, values from env: and file:, and credentials never shown."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pallet.errors import PalletError
from pallet.runtime.cloud.services import load_services, parse_services

GOOD = """\
[services.lab]
provider = "aws-ec2"
region = "us-east-1"
identity = "env:LAB_ID"
credential = "file:secret.txt"
endpoint = "http://127.0.0.1:5000"
"""


def error(text: str, tmp_path=None) -> str:
    with pytest.raises(PalletError) as info:
        parse_services(text, "services.toml")
    return info.value.format()


def test_a_service_and_its_secrets(tmp_path, monkeypatch):
    (tmp_path / "secret.txt").write_text("s3cr3t-value\n")
    monkeypatch.setenv("LAB_ID", "AKIAEXAMPLE")
    svc = parse_services(GOOD, "services.toml", tmp_path)["lab"]
    assert (svc.provider, svc.region, svc.endpoint) == ("ec2", "us-east-1", "http://127.0.0.1:5000")
    assert "AKIA" not in repr(svc) and svc.describe_secret("identity") == "env:LAB_ID"
    assert (svc.secret("identity"), svc.secret("credential")) == ("AKIAEXAMPLE", "s3cr3t-value")
    assert svc.redact("denied for AKIAEXAMPLE with s3cr3t-value") == "denied for ******** with ********"


def test_unknown_provider_names_the_near_ones():
    text = error(GOOD.replace('"aws-ec2"', '"ec3"'))
    assert text.splitlines()[0] == ("services.toml:2:12: services.lab: libcloud has no compute "
                                    "provider 'ec3'; did you mean ec2?")
    assert text.splitlines()[2] == "             ^^^^^"


def test_unknown_key_and_bad_values_are_located():
    assert error(GOOD + "regoin = \"x\"\n").splitlines()[0] == \
        "services.toml:7:1: services.lab: unknown key 'regoin'; did you mean region?"
    assert error(GOOD.replace('"http://127.0.0.1:5000"', '"127.0.0.1:5000"')).startswith(
        "services.toml:6:12: services.lab.endpoint must be a URL")
    assert error("[services.lab]\nregion = \"x\"\n").startswith("services.toml:1:1: services.lab needs a provider")
    assert error("[services.lab\n").startswith("services.toml:1:")
    assert error(GOOD + "parallel = 0\n").startswith("services.toml:7:12: services.lab.parallel must be")


def test_a_literal_secret_is_masked_in_the_line_an_error_shows():
    text = error('[services.lab]\nprovider = "ec2"\ncredential = "hunter2-secret" x\n')
    assert text.splitlines()[0].startswith("services.toml:3:")
    assert text.splitlines()[1] == '  credential = "********" x' and "hunter2" not in text
    with pytest.raises(PalletError) as info:
        svc = parse_services('[services.lab]\nprovider = "ec2"\nidentity = 42\n', "s.toml")["lab"]
        svc.secret("identity")
    assert info.value.format().splitlines()[:2] == [
        "s.toml:3:1: services.lab.identity must be a string", '  identity = "********"']


def test_missing_env_and_file_name_where_not_what(tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_ID", raising=False)
    svc = parse_services(GOOD, "services.toml", tmp_path)["lab"]
    with pytest.raises(PalletError, match="the environment variable LAB_ID is not set"):
        svc.secret("identity")
    with pytest.raises(PalletError, match=r"credential: cannot read .*secret.txt"):
        svc.secret("credential")


def test_files_default_env_and_named(tmp_path, monkeypatch):
    assert load_services() == {}                           # no default file: no services
    monkeypatch.setenv("PALLET_SERVICES", str(tmp_path / "nope.toml"))
    with pytest.raises(PalletError, match="no such services file"):
        load_services()
    (tmp_path / "s.toml").write_text(GOOD)
    monkeypatch.setenv("PALLET_SERVICES", str(tmp_path / "s.toml"))
    assert list(load_services()) == ["lab"]


def test_pallet_services_lists_without_secrets(tmp_path):
    (tmp_path / "s.toml").write_text(GOOD.replace('"env:LAB_ID"', '"AKIALITERALSECRET"'))
    p = subprocess.run([sys.executable, "-m", "pallet", "services", "--services", str(tmp_path / "s.toml"),
                        "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [{"name": "lab", "provider": "ec2", "region": "us-east-1",
                                     "endpoint": "http://127.0.0.1:5000", "identity": "(value in the file)",
                                     "credential": "file:secret.txt"}]
    assert "AKIALITERALSECRET" not in p.stdout + p.stderr
