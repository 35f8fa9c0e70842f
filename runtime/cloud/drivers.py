"""A libcloud NodeDriver for a service, and what it takes to make libcloud's EC2 driver
speak to EC2-compatible endpoints.

EC2 (measured against moto's server; harmless against AWS, which answers what libcloud asks):
- requests are signed with SigV4 (libcloud signs us-east-1 with SigV2, which endpoints that
  route by the SigV4 scope answer with an empty 200, so every list is empty);
- responses whose XML namespace is not the one libcloud looks elements up in (another API
  version, or no trailing slash) are read as if they had libcloud's: otherwise every lookup
  misses, `create_node` returns [] while the instance exists, and key import fails;
- error bodies lose their namespace before parsing, so error messages are not empty.

Third-party drivers: a service with `driver-module` and `driver-class` registers that class
under its provider name with `libcloud.compute.providers.set_driver`, as such drivers are.
"""
from __future__ import annotations

import re
from urllib.parse import urlparse

from pallet.errors import PalletError

from .libcloud_loader import import_libcloud
from .services import Service, resolve_value

SECRET_WORDS = re.compile(r"password|secret|key|token|credential", re.I)

_XMLNS = re.compile(rb'xmlns="http://ec2\.amazonaws\.com/doc/[^"]*"')
_ANY_XMLNS = re.compile(rb' xmlns="[^"]*"')


def _ec2_response_class():
    from libcloud.compute.drivers.ec2 import NAMESPACE, EC2Response

    wanted = f'xmlns="{NAMESPACE}"'.encode()

    class EC2CompatibleResponse(EC2Response):
        def __init__(self, response, connection):
            super().__init__(_Normalised(response, self._fix), connection)

        @staticmethod
        def _fix(body: bytes, ok: bool) -> bytes:
            head, rest = body[:400], body[400:]
            if ok:
                return _XMLNS.sub(wanted, head, count=1) + rest
            return _ANY_XMLNS.sub(b"", head, count=1) + rest   # errors are read without one

    return EC2CompatibleResponse


class _Normalised:
    """A response whose body is rewritten once, as libcloud's Response reads it."""

    def __init__(self, response, fix):
        self._response = response
        self._fix = fix

    def __getattr__(self, name):
        return getattr(self._response, name)

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    @property
    def content(self):
        if "_fixed" not in self.__dict__:
            body = self._response.content or b""
            self._fixed = self._fix(body, 200 <= self._response.status_code < 300) if body else body
        return self._fixed


def make_driver(service: Service):
    """The NodeDriver of a service, credentials resolved (errors name the option at fault)."""
    import_libcloud()
    from libcloud.compute.providers import get_driver, set_driver
    module, klass = service.get("driver-module"), service.get("driver-class")
    if module:
        from libcloud.compute.providers import DRIVERS
        if service.provider not in DRIVERS:
            set_driver(service.provider, module, klass)
    try:
        cls = get_driver(service.provider)
    except (AttributeError, ImportError) as exc:
        raise PalletError(f"services.{service.name}: cannot load the driver "
                          f"{module or service.provider}: {exc}", service.span("driver-module")) from None
    identity = service.secret("identity")
    credential = service.secret("credential")
    kwargs: dict = {}
    for key, raw in (service.get("driver") or {}).items():
        # env:/file: values and secret-looking keys are secrets (kept out of every message)
        secret = isinstance(raw, str) and (raw.startswith(("env:", "file:")) or SECRET_WORDS.search(key))
        if secret:
            kwargs[key] = service.secret(key, raw, where=f"driver.{key}")
        else:
            kwargs[key] = resolve_value(raw, f"driver.{key}", service) if isinstance(raw, str) else raw
    is_ec2 = service.provider == "ec2"
    if is_ec2:
        kwargs.setdefault("signature_version", "4")
        if service.region:
            kwargs.setdefault("region", service.region)
    elif service.provider == "openstack":
        if service.region:                  # the region of the catalogue's endpoints
            kwargs.setdefault("ex_force_service_region", service.region)
    elif service.region and "region" not in kwargs and _takes(cls, "region"):
        kwargs["region"] = service.region
    if service.endpoint:
        url = urlparse(service.endpoint)
        if service.provider == "openstack":
            # OpenStack's endpoint is Keystone's: the compute endpoint comes from its catalogue
            kwargs.setdefault("ex_force_auth_url", service.endpoint)
        elif is_ec2 or _takes(cls, "host"):
            kwargs.setdefault("host", url.hostname)
            kwargs.setdefault("port", url.port or (443 if url.scheme == "https" else 80))
            kwargs.setdefault("secure", url.scheme == "https")
    args = [a for a in (identity, credential) if a is not None]
    try:
        driver = cls(*args, **kwargs)
    except PalletError:
        raise
    except Exception as exc:  # noqa: BLE001 - a driver's own check of its arguments
        raise PalletError(f"services.{service.name}: the {service.provider} driver refused its "
                          f"settings: {service.redact(str(exc))}", service.span("provider")) from None
    if is_ec2:
        driver.connection.responseCls = _ec2_response_class()
    return driver


def list_sizes(driver) -> list:
    """The driver's sizes. libcloud prices each size from its pricing file, and for a driver
    that file does not name (OpenStack's) it reads and parses the whole file (2 MB) again
    for every size: 35 sizes took 25 s. The file is read once here; such a driver's sizes
    have no price (as libcloud gives them in the end)."""
    from libcloud import pricing
    name = getattr(driver, "api_name", None)
    if name and getattr(driver, "type", None) != "ec2" and name not in pricing.PRICING_DATA["compute"]:
        try:
            pricing.get_pricing("compute", name)
        except KeyError:
            pricing.set_pricing("compute", name, {})
        except OSError:
            pass
    return driver.list_sizes()


def _takes(cls, name: str) -> bool:
    import inspect
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def ec2_list_nodes(driver, filters: dict | None = None, ids: list | None = None) -> list:
    """DescribeInstances, every page: libcloud's list_nodes reads the first page only, and
    EC2 (and moto, 100 reservations a page) pages. A count that missed a page would
    create nodes that exist already."""
    from libcloud.compute.drivers.ec2 import NAMESPACE
    from libcloud.utils.xml import findall, findtext
    if ids and len(ids) > 200:
        return [n for i in range(0, len(ids), 200) for n in ec2_list_nodes(driver, filters, ids[i:i + 200])]
    nodes: list = []
    token = None
    while True:
        params = {"Action": "DescribeInstances"}
        if ids:
            params.update(driver._pathlist("InstanceId", ids))
        else:
            params["MaxResults"] = "1000"
        if filters:
            params.update(driver._build_filters(filters))
        if token:
            params["NextToken"] = token
        elem = driver.connection.request(driver.path, params=params).object
        for rs in findall(element=elem, xpath="reservationSet/item", namespace=NAMESPACE):
            nodes += driver._to_nodes(rs, "instancesSet/item")
        token = findtext(element=elem, xpath="nextToken", namespace=NAMESPACE)
        if not token:
            return nodes


def not_found(exc: BaseException) -> bool:
    """EC2's answer for an id it does not show (yet: a new instance can take a moment; or
    no longer: a terminated one is forgotten after a while)."""
    return "InvalidInstanceID.NotFound" in str(getattr(exc, "value", None) or exc)


_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")


def ec2_instance_states(driver, ids: list) -> dict[str, str]:
    """{id: state} of instances: DescribeInstanceStatus with every state, 100 ids a call,
    their states only (not the whole instances DescribeInstances answers with). Ids EC2
    says it does not show are left out, the others asked again; an answer naming no id
    raises."""
    from libcloud.compute.drivers.ec2 import NAMESPACE
    from libcloud.utils.xml import findall, findtext
    states: dict[str, str] = {}
    for i in range(0, len(ids), 100):
        chunk = list(ids[i:i + 100])
        while chunk:
            params = {"Action": "DescribeInstanceStatus", "IncludeAllInstances": "true",
                      **driver._pathlist("InstanceId", chunk)}
            try:
                elem = driver.connection.request(driver.path, params=params).object
            except Exception as exc:  # noqa: BLE001
                gone = set(_INSTANCE_ID.findall(str(getattr(exc, "value", None) or exc))) & set(chunk)
                if not (not_found(exc) and gone):
                    raise
                chunk = [x for x in chunk if x not in gone]
                continue
            for item in findall(element=elem, xpath="instanceStatusSet/item", namespace=NAMESPACE):
                node_id = findtext(element=item, xpath="instanceId", namespace=NAMESPACE)
                state = findtext(element=item, xpath="instanceState/name", namespace=NAMESPACE)
                if node_id and state:
                    states[node_id] = state
            break
    return states


def ec2_tags(driver, filters: dict) -> dict[str, dict[str, str]]:
    """{instance id: {key: value}} of the tags DescribeTags finds (every page): ids and
    tags without the instances (which DescribeInstances answers whole, kilobytes each)."""
    from libcloud.compute.drivers.ec2 import NAMESPACE
    from libcloud.utils.xml import findall, findtext
    found: dict[str, dict[str, str]] = {}
    token = None
    while True:
        params = {"Action": "DescribeTags", "MaxResults": "1000",
                  **driver._build_filters({"resource-type": "instance", **filters})}
        if token:
            params["NextToken"] = token
        elem = driver.connection.request(driver.path, params=params).object
        for item in findall(element=elem, xpath="tagSet/item", namespace=NAMESPACE):
            node_id = findtext(element=item, xpath="resourceId", namespace=NAMESPACE)
            key = findtext(element=item, xpath="key", namespace=NAMESPACE)
            if node_id and key is not None:
                found.setdefault(node_id, {})[key] = findtext(element=item, xpath="value",
                                                              namespace=NAMESPACE) or ""
        token = findtext(element=elem, xpath="nextToken", namespace=NAMESPACE)
        if not token:
            return found


def ec2_open_ports(driver, group: str, ports: list[int], cidr: str) -> None:
    """TCP `ports` open to `cidr` in a security group: one AuthorizeSecurityGroupIngress
    with every port (EC2 takes many IpPermissions.N; libcloud's call takes one). A port
    opened meanwhile (another run) makes EC2 refuse the whole call: then one port at a
    time, libcloud's call passing over the duplicates."""
    params = {"Action": "AuthorizeSecurityGroupIngress", "GroupName": group}
    for n, port in enumerate(ports, 1):
        params.update({f"IpPermissions.{n}.IpProtocol": "tcp", f"IpPermissions.{n}.FromPort": str(port),
                       f"IpPermissions.{n}.ToPort": str(port), f"IpPermissions.{n}.IpRanges.1.CidrIp": cidr})
    try:
        driver.connection.request(driver.path, params=params)
    except Exception as exc:  # noqa: BLE001
        if "InvalidPermission.Duplicate" not in str(getattr(exc, "value", None) or exc):
            raise
        for port in ports:
            driver.ex_authorize_security_group(group, port, port, cidr)
