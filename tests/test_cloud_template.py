"""node-spec to template (runtime/cloud/template.py), pure: images, sizes and locations as
libcloud's EC2 driver returns them, matched with jclouds' semantics."""
from __future__ import annotations

import pytest
from libcloud.compute.base import NodeImage, NodeLocation, NodeSize

from pallet.compiler.project import load_project
from pallet.errors import PalletError
from pallet.runtime.cloud.template import choose_template, image_info, size_info

IMAGES = [
    NodeImage("ami-1", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101", None,
              {"architecture": "x86_64", "description": "Canonical, Ubuntu, 22.04 LTS"}),
    NodeImage("ami-2", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20240101", None,
              {"architecture": "arm64"}),
    NodeImage("ami-3", "debian-12-amd64-20240102-1614", None, {"architecture": "x86_64"}),
    NodeImage("ami-4", "ubuntu/images/ebs/ubuntu-maverick-10.10-amd64-server-20101225", None,
              {"architecture": "x86_64"}),
    NodeImage("ami-5", "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20230101", None,
              {"architecture": "x86_64"}),
]


def size(id, cores, ram, processor="Intel Xeon", disk=0):
    return NodeSize(id, id, ram, disk, None, None, None,
                    {"vcpu": str(cores), "physicalProcessor": processor,
                     "processorArchitecture": "64-bit"})


SIZES = [size("t4g.nano", 2, 512, "AWS Graviton2 Processor"), size("t3.nano", 2, 512),
         size("t3.small", 2, 2048), size("m5.large", 2, 8192), size("c5.xlarge", 4, 8192),
         size("t4g.xlarge", 4, 16384, "AWS Graviton2 Processor"), size("m5.2xlarge", 8, 32768)]
LOCATIONS = [NodeLocation("0", "us-east-1a", "US", None), NodeLocation("1", "us-east-1b", "US", None)]


def spec_of(tmp_path, node_spec: str):
    (tmp_path / "s.pallet").write_text(f'(def g (group-spec "g" :node-spec (node-spec {node_spec})))\n')
    project = load_project(str(tmp_path / "s.pallet"))
    return project.group("g")


def choose(tmp_path, node_spec, provider="ec2", **kw):
    g = spec_of(tmp_path, node_spec)
    return choose_template("g", g.node_spec, IMAGES, SIZES, LOCATIONS, service="lab",
                           provider=provider, span=g.span, **kw)


def test_images_read_family_version_and_architecture():
    assert [(i.family, i.version, i.arch) for i in map(image_info, IMAGES)] == [
        ("ubuntu", "22.04", "x86_64"), ("ubuntu", "22.04", "arm64"), ("debian", "12", "x86_64"),
        ("ubuntu", "10.10", "x86_64"), ("ubuntu", "20.04", "x86_64")]
    assert size_info(SIZES[0]).arch == ("arm64",) and size_info(SIZES[1]).arch == ("x86_64",)


def test_the_talks_small_node(tmp_path):
    t = choose(tmp_path, ':image {:os-family :ubuntu :os-version-matches "10.10"} '
                         ':hardware {:min-cores 2 :min-ram 512} :network {:inbound-ports [22 80]}')
    assert (t.image.id, t.size.id, t.inbound_ports, t.login_user) == ("ami-4", "t3.nano", (22, 80), "ubuntu")


def test_smallest_size_with_the_images_architecture(tmp_path):
    # t4g.nano is as small, but arm64: not for an x86_64 image
    assert choose(tmp_path, ":hardware {:min-ram 512}").size.id == "t3.nano"
    t = choose(tmp_path, ":image {:architecture :arm64} :hardware {:min-cores 4}")
    assert (t.image.id, t.size.id) == ("ami-2", "t4g.xlarge")
    assert choose(tmp_path, ":hardware {:min-cores 4 :min-ram 4096}").size.id == "c5.xlarge"


def test_version_as_a_regular_expression_matched_whole(tmp_path):
    assert choose(tmp_path, ':image {:os-version-matches "2[02]\\\\..*"}').image.id == "ami-1"  # newest
    assert choose(tmp_path, ':image {:os-version-matches "20.04"}').image.id == "ami-5"
    with pytest.raises(PalletError, match="no image matches"):
        choose(tmp_path, ':image {:os-version-matches "2"}')          # not a prefix match


def test_without_an_image_ubuntu_x86_64_newest(tmp_path):
    t = choose(tmp_path, ':hardware {:min-cores 1}')
    assert (t.image.id, t.login_user) == ("ami-1", "ubuntu")
    t = choose(tmp_path, ':image {:os-family :debian}')
    assert (t.image.id, t.login_user) == ("ami-3", "admin")


def test_ids_location_and_login_user(tmp_path):
    t = choose(tmp_path, ':image {:image-id "ami-3" :os-family :ubuntu :login-user "root"} '
                         ':hardware {:hardware-id "m5.large"} :location {:location-id "us-east-1b"}')
    assert (t.image.id, t.size.id, t.location.name, t.login_user) == ("ami-3", "m5.large", "us-east-1b", "root")


def test_errors_are_located_and_list_the_nearest(tmp_path):
    with pytest.raises(PalletError) as info:
        choose(tmp_path, ':image {:os-family :ubuntu :os-version-matches "24.04"}')
    text = info.value.format()
    assert text.startswith(f"{tmp_path}/s.pallet:1:73: group g on lab: no image matches :os-family "
                           ':ubuntu :os-version-matches "24.04" :architecture :x86_64; nearest images: ')
    assert text.splitlines()[-1].strip() == "^" * len(":os-version-matches")
    assert "ami-1 (ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101: ubuntu 22.04 x86_64)" in text
    with pytest.raises(PalletError) as info:
        choose(tmp_path, ':hardware {:min-cores 16 :min-ram 1024}')
    assert "no size for x86_64 has :min-cores 16 :min-ram 1024; nearest sizes: m5.2xlarge (8 cores" in str(info.value)
    with pytest.raises(PalletError, match=r"no size m5\.larg; nearest sizes: m5\.large"):
        choose(tmp_path, ':hardware {:hardware-id "m5.larg"}')
    with pytest.raises(PalletError, match="no location us-west-2a .locations: us-east-1a, us-east-1b"):
        choose(tmp_path, ':location {:location-id "us-west-2a"}')
    with pytest.raises(PalletError, match="the size t4g.nano is arm64, the image ami-1 is x86_64"):
        choose(tmp_path, ':hardware {:hardware-id "t4g.nano"}')
    with pytest.raises(PalletError, match="spot instances, which the openstack provider does not have"):
        choose(tmp_path, ':qos {:spot-price 0.05}', provider="openstack")
    with pytest.raises(PalletError, match=":region eu-west-1 is not the service's region"):
        choose(tmp_path, ':location {:region "eu-west-1"}', service_region="us-east-1")


def test_spot_price(tmp_path):
    assert choose(tmp_path, ':qos {:spot-price 0.05}').spot_price == 0.05
