"""A node-spec matched against what a service offers: Pallet 0.8's jclouds template, here.

Pure: libcloud's image, size and location objects (or anything with their attributes) in, a
`Template` or a located PalletError out; no I/O.

    :image     :image-id (then the other image keys are ignored), else :os-family,
               :os-version-matches (a regular expression, matched whole against the version
               read from the image's name), :os-version (exact), :os-64-bit, :architecture
               (default x86_64); of the images that match, the newest version, then the last
               by name. Without :os-family, Ubuntu (jclouds' default).
    :hardware  :hardware-id, else the smallest size by (cores, ram, disk) with at least
               :min-cores, :min-ram (MB) and :min-disk (GB) whose architecture the image has.
    :location  :location-id (an id or a name such as us-east-1a), else the service's default.
    :network   :inbound-ports: the group's firewall rules (22 always).
    :qos       :spot-price: a spot request with that maximum price (EC2).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pallet.errors import PalletError, Span

FAMILIES = ("ubuntu", "debian", "centos", "rhel", "rocky", "almalinux", "fedora", "amzn",
            "suse", "alpine", "arch", "freebsd", "windows", "cirros")
_FAMILY_WORDS = {"amazon linux": "amzn", "amzn": "amzn", "red hat": "rhel", "redhat": "rhel",
                 "rhel": "rhel", "alma": "almalinux", "opensuse": "suse", "sles": "suse"}
UBUNTU_CODENAMES = {"warty": "4.10", "lucid": "10.04", "maverick": "10.10", "natty": "11.04",
                    "oneiric": "11.10", "precise": "12.04", "trusty": "14.04", "xenial": "16.04",
                    "bionic": "18.04", "focal": "20.04", "jammy": "22.04", "noble": "24.04"}
DEBIAN_CODENAMES = {"squeeze": "6", "wheezy": "7", "jessie": "8", "stretch": "9",
                    "buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13"}
LOGIN_USERS = {"ubuntu": "ubuntu", "debian": "admin", "amzn": "ec2-user", "centos": "centos",
               "rhel": "ec2-user", "rocky": "rocky", "almalinux": "ec2-user", "fedora": "fedora",
               "suse": "ec2-user", "alpine": "alpine", "freebsd": "ec2-user", "cirros": "cirros"}
ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "x86-64": "x86_64",
                "arm64": "arm64", "aarch64": "arm64", "i386": "i386", "x86": "i386", "i686": "i386"}


@dataclass(frozen=True)
class ImageInfo:
    id: str
    name: str
    family: str | None
    version: str | None
    arch: str | None

    def describe(self) -> str:
        what = " ".join(p for p in (self.family, self.version, self.arch) if p) or "unknown OS"
        return f"{self.id} ({self.name}: {what})"


@dataclass(frozen=True)
class SizeInfo:
    id: str
    cores: float
    ram: int
    disk: int
    arch: tuple[str, ...] | None     # None: any
    price: float | None = None

    def describe(self) -> str:
        arch = f", {'/'.join(self.arch)}" if self.arch else ""
        cores = int(self.cores) if float(self.cores).is_integer() else self.cores
        return f"{self.id} ({cores} cores, {self.ram} MB, {self.disk} GB{arch})"


@dataclass(frozen=True)
class Template:
    image: object            # the provider's objects, handed to create_node
    size: object
    location: object | None
    image_info: ImageInfo
    size_info: SizeInfo
    inbound_ports: tuple[int, ...]
    spot_price: float | None
    login_user: str

    def describe(self) -> str:
        where = getattr(self.location, "name", None) or "default location"
        return f"{self.size_info.describe()}, image {self.image_info.describe()}, {where}"


# -- reading what a provider returns ------------------------------------------------------
def image_info(image) -> ImageInfo:
    extra = getattr(image, "extra", None) or {}
    name = getattr(image, "name", None) or ""
    text = " ".join(str(x) for x in (name, extra.get("description") or "", extra.get("os_distro") or "")).lower()
    family = _family(text)
    version = extra.get("os_version") or _version(text, family)
    arch = extra.get("architecture") or extra.get("arch") or _arch_in(text)
    arch = ARCH_ALIASES.get(str(arch).lower(), str(arch).lower()) if arch else None
    return ImageInfo(str(image.id), name, family, str(version) if version else None, arch)


def _family(text: str) -> str | None:
    best = None
    for word, family in _FAMILY_WORDS.items():
        i = text.find(word)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, family)
    for family in FAMILIES:
        m = re.search(rf"(?<![a-z]){family}(?![a-z])", text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), family)
    return best[1] if best else None


def _version(text: str, family: str | None) -> str | None:
    if family == "ubuntu":
        m = re.search(r"(?<![\d.])(\d{1,2}\.\d{2})(?:\.\d+)?(?![\d])", text)
        if m:
            return m.group(1)
        for name, number in UBUNTU_CODENAMES.items():
            if re.search(rf"(?<![a-z]){name}(?![a-z])", text):
                return number
        return None
    if family == "debian":
        for name, number in DEBIAN_CODENAMES.items():
            if re.search(rf"(?<![a-z]){name}(?![a-z])", text):
                return number
    if family:
        m = re.search(rf"{re.escape(family)}[^0-9]{{0,12}}?(\d+(?:\.\d+)*)", text)
        if m:
            return m.group(1)
    return None


def _arch_in(text: str) -> str | None:
    m = re.search(r"(?<![a-z0-9])(x86_64|amd64|arm64|aarch64|i386|i686)(?![a-z0-9])", text)
    return m.group(1) if m else None


def size_info(size) -> SizeInfo:
    extra = getattr(size, "extra", None) or {}
    cores = (extra.get("vcpu") or getattr(size, "vcpus", None) or extra.get("vcpus")
             or extra.get("guestCpus") or extra.get("numberOfCores") or extra.get("cpu") or 0)
    try:
        cores = float(cores)
    except (TypeError, ValueError):
        cores = 0.0
    arch = None
    processor = str(extra.get("physicalProcessor") or "")
    if processor:                           # EC2: Graviton sizes are arm64, the others x86
        arch = ("arm64",) if "graviton" in processor.lower() or "aws" == processor.lower()[:3] \
            else ("x86_64", "i386") if "32-bit" in str(extra.get("processorArchitecture", "")) \
            else ("x86_64",)
    elif extra.get("architecture"):
        a = ARCH_ALIASES.get(str(extra["architecture"]).lower(), str(extra["architecture"]).lower())
        arch = (a,)
    price = getattr(size, "price", None)
    try:
        price = float(price) if price is not None else None
    except (TypeError, ValueError):
        price = None
    return SizeInfo(str(size.id), cores, int(getattr(size, "ram", 0) or 0),
                    int(getattr(size, "disk", 0) or 0), arch, price)


# -- matching ---------------------------------------------------------------------------
def _get(section: dict, key: str, default=None):
    for k, v in section.items():
        if getattr(k, "name", k) == key:
            return v
    return default


def _key_span(section: dict, key: str | None, fallback: Span | None) -> Span | None:
    for k in section:
        if (key is None or getattr(k, "name", k) == key) and getattr(k, "span", None) is not None:
            return k.span
    return fallback


def _name(value) -> str:
    return getattr(value, "name", value) if value is not None else None


def choose_template(group: str, node_spec, images, sizes, locations, *, service: str,
                    provider: str, span: Span | None = None, login_user: str | None = None,
                    service_region: str | None = None) -> Template:
    image_section = dict(getattr(node_spec, "image", None) or {})
    hardware = dict(getattr(node_spec, "hardware", None) or {})
    location_section = dict(getattr(node_spec, "location", None) or {})
    network = dict(getattr(node_spec, "network", None) or {})
    qos = dict(getattr(node_spec, "qos", None) or {})
    where = f"group {group} on {service}"

    image, info = _choose_image(image_section, images, where, span)
    size, sinfo = _choose_size(hardware, sizes, info, where, span)
    location = _choose_location(location_section, locations, where, span)

    ports = {22}
    raw_ports = _get(network, "inbound-ports", ())
    for p in raw_ports if isinstance(raw_ports, (tuple, list, frozenset)) else (raw_ports,):
        if not isinstance(p, int) or isinstance(p, bool) or not 0 < p < 65536:
            raise PalletError(f"{where}: :inbound-ports takes port numbers (1-65535), not {p!r}",
                              _key_span(network, "inbound-ports", span))
        ports.add(p)
    spot = _get(qos, "spot-price")
    if spot is not None:
        if not isinstance(spot, (int, float)) or isinstance(spot, bool) or spot <= 0:
            raise PalletError(f"{where}: :spot-price takes a price per hour, such as 0.05",
                              _key_span(qos, "spot-price", span))
        if provider != "ec2":
            raise PalletError(f"{where}: :spot-price needs spot instances, which the {provider} "
                              "provider does not have; remove :spot-price for this service",
                              _key_span(qos, "spot-price", span))
        spot = float(spot)
    if _get(qos, "enable-monitoring") is not None:
        raise PalletError(f"{where}: :enable-monitoring is not supported on clouds in this "
                          "version (libcloud's create_node has no such option); remove it",
                          _key_span(qos, "enable-monitoring", span))
    region = _get(location_section, "region")
    if region is not None and service_region is not None and str(_name(region)) != service_region:
        raise PalletError(f"{where}: :region {_name(region)} is not the service's region "
                          f"({service_region}); define a service for that region",
                          _key_span(location_section, "region", span))
    user = _get(image_section, "login-user") or login_user or LOGIN_USERS.get(info.family or "", "root")
    return Template(image, size, location, info, sinfo, tuple(sorted(ports)), spot, str(user))


@dataclass(frozen=True)
class _Kw:
    name: str

    def __str__(self) -> str:
        return ":" + self.name


def _version_key(version: str | None) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", version or ""))


def _choose_image(section: dict, images, where: str, span):
    infos = [(img, image_info(img)) for img in images]
    image_id = _get(section, "image-id")
    if image_id is not None:
        hit = [(i, x) for i, x in infos if x.id == str(image_id)]
        if hit:
            return hit[0]
        near = _nearest_ids(str(image_id), [x for _, x in infos])
        raise PalletError(f"{where}: no image {image_id}" + _listing("images", near),
                          _key_span(section, "image-id", span))
    family = _name(_get(section, "os-family")) or "ubuntu"
    family = str(family).lower()
    pattern = _get(section, "os-version-matches")
    exact = _get(section, "os-version")
    bits64 = _get(section, "os-64-bit")
    arch = _get(section, "architecture")
    arch = ARCH_ALIASES.get(str(_name(arch)).lower(), str(_name(arch)).lower()) if arch is not None else None
    if pattern is not None:
        try:
            regex = re.compile(str(pattern))
        except re.error as exc:
            raise PalletError(f"{where}: :os-version-matches is not a regular expression: {exc}",
                              _key_span(section, "os-version-matches", span)) from None
    wanted_arch = arch or ("x86_64" if bits64 is not False else None)

    def fits(x: ImageInfo) -> bool:
        if x.family != family:
            return False
        if pattern is not None and not (x.version and regex.fullmatch(x.version)):
            return False
        if exact is not None and x.version != str(exact):
            return False
        if bits64 is True and x.arch not in (None, "x86_64", "arm64"):
            return False
        if bits64 is False and x.arch not in (None, "i386"):
            return False
        if wanted_arch and x.arch not in (None, wanted_arch):
            return False
        return True

    matching = [(i, x) for i, x in infos if fits(x)]
    if matching:
        return max(matching, key=lambda p: (_version_key(p[1].version), p[1].name))
    def shown(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return f'"{v}"' if isinstance(v, str) else str(v)
    asked = " ".join(f":{k} {shown(v)}" for k, v in
                     ((("os-family", _Kw(family)), ("os-version-matches", pattern), ("os-version", exact),
                       ("os-64-bit", bits64), ("architecture", _Kw(wanted_arch) if wanted_arch else None)))
                     if v is not None)
    same = [x for _, x in infos if x.family == family] or [x for _, x in infos]
    near = sorted(same, key=lambda x: _distance(str(pattern or exact or ""), x.version or ""))[:5]
    key = next((k for k in ("os-version-matches", "os-version", "architecture", "os-family")
                if _get(section, k) is not None), None)
    raise PalletError(f"{where}: no image matches {asked}" + _listing("images", near),
                      _key_span(section, key, span))


def _distance(a: str, b: str) -> float:
    import difflib
    return 1 - difflib.SequenceMatcher(None, a, b).ratio()


def _nearest_ids(want: str, infos) -> list:
    import difflib
    return sorted(infos, key=lambda x: 1 - difflib.SequenceMatcher(None, want, x.id).ratio())[:5]


def _listing(what: str, items) -> str:
    if not items:
        return f" (the service offers no {what})"
    return f"; nearest {what}: " + "; ".join(x.describe() for x in items)


def _number(section, key, where, span, kind=(int, float)):
    value = _get(section, key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) or value < 0:
        raise PalletError(f"{where}: :{key} takes a number", _key_span(section, key, span))
    return value


def _choose_size(section: dict, sizes, image: ImageInfo, where: str, span):
    infos = [(s, size_info(s)) for s in sizes]
    hardware_id = _get(section, "hardware-id")
    if hardware_id is not None:
        hit = [(s, x) for s, x in infos if x.id == str(_name(hardware_id))]
        if hit:
            s, x = hit[0]
            if x.arch and image.arch and image.arch not in x.arch:
                raise PalletError(f"{where}: the size {x.id} is {'/'.join(x.arch)}, the image "
                                  f"{image.id} is {image.arch}", _key_span(section, "hardware-id", span))
            return hit[0]
        near = _nearest_ids(str(_name(hardware_id)), [x for _, x in infos])
        raise PalletError(f"{where}: no size {_name(hardware_id)}" + _listing("sizes", near),
                          _key_span(section, "hardware-id", span))
    cores = _number(section, "min-cores", where, span) or 0
    ram = _number(section, "min-ram", where, span) or 0
    disk = _number(section, "min-disk", where, span) or 0
    arch_ok = [(s, x) for s, x in infos if not (x.arch and image.arch and image.arch not in x.arch)]
    # A size without a local disk (0 GB: network storage, such as EBS) is given its root
    # volume at creation, so it satisfies :min-disk.
    fit = [(s, x) for s, x in arch_ok if x.cores >= cores and x.ram >= ram and (x.disk == 0 or x.disk >= disk)]
    if fit:
        return min(fit, key=lambda p: (p[1].cores, p[1].ram, p[1].disk, p[1].price or 0, p[1].id))
    asked = " ".join(f":{k} {v}" for k, v in (("min-cores", cores), ("min-ram", ram), ("min-disk", disk)) if v)
    # The nearest: the largest sizes for the image's architecture (each falls short somewhere).
    near = sorted((x for _, x in arch_ok), key=lambda x: (-min(x.cores / max(cores, 1), 1)
                                                          - min(x.ram / max(ram, 1), 1), x.id))[:5]
    arch = f" for {image.arch}" if image.arch else ""
    raise PalletError(f"{where}: no size{arch} has {asked}" + _listing("sizes", near),
                      _key_span(section, None, span))


def _choose_location(section: dict, locations, where: str, span):
    wanted = _get(section, "location-id")
    if wanted is None:
        return None
    wanted = str(_name(wanted))
    for loc in locations:
        if wanted in (str(getattr(loc, "id", "")), str(getattr(loc, "name", ""))):
            return loc
    names = [str(getattr(loc, "name", None) or loc.id) for loc in locations]
    raise PalletError(f"{where}: no location {wanted}" +
                      (f" (locations: {', '.join(names)})" if names else " (the service lists none)"),
                      _key_span(section, "location-id", span))
