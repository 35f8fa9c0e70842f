"""The services file: the compute services a spec's `:compute NAME` can name.

    ~/.config/pallet/services.toml   ($XDG_CONFIG_HOME), or $PALLET_SERVICES, or --services FILE

    [services.lab]
    provider = "ec2"                          # libcloud's provider name (aws-ec2 works too)
    region = "us-east-1"
    identity = "env:AWS_ACCESS_KEY_ID"        # a value, env:NAME or file:PATH
    credential = "env:AWS_SECRET_ACCESS_KEY"
    endpoint = "http://127.0.0.1:5000"        # optional: a private cloud or a test endpoint

Secrets (identity, credential and the values under [services.NAME.driver]) are resolved only
when the service is used, never printed: errors about them name the key and where the value
should come from, and the source line shown with an error has its secret values masked.
`Service.redact(text)` removes every resolved secret from a text that leaves the process
(messages of libcloud's exceptions among them).
"""
from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pallet.errors import PalletError, Source, Span

ENV = "PALLET_SERVICES"
# Pallet's (jclouds') names for libcloud's providers.
ALIASES = {"aws-ec2": "ec2", "aws": "ec2", "google-compute-engine": "gce", "azure": "azure_arm",
           "openstack-nova": "openstack"}
KEYS = {"provider", "region", "identity", "credential", "endpoint", "login-user", "public-key",
        "private-key", "image-owners", "tags", "driver", "driver-module", "driver-class",
        "parallel", "boot-timeout", "security-groups"}
SECRET_KEYS = ("identity", "credential")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_MASK = "********"


def default_path() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "pallet" / "services.toml"


@dataclass(frozen=True, eq=False)
class Service:
    """One [services.NAME] table. `spec_of(key)` is how a secret is given (`env:NAME`,
    `file:PATH`, or `a value`), never the value."""

    name: str
    provider: str                      # libcloud's name, aliases resolved
    region: str | None
    endpoint: str | None
    options: dict = field(repr=False)  # the table as written (secrets unresolved)
    source: Source = field(repr=False)
    line: int = 1                      # the [services.NAME] header
    base: Path = field(default=Path("."), repr=False)
    _resolved: dict = field(default_factory=dict, repr=False)

    def span(self, key: str | None = None) -> Span:
        return _key_span(self.source, key, self.line)

    def get(self, key: str, default=None):
        return self.options.get(key, default)

    def secret(self, key: str, value=None, where: str | None = None) -> str | None:
        """The value of a secret option (`identity`, or `driver.KEY` with `value`), resolved
        once."""
        cache_key = where or key
        if cache_key in self._resolved:
            return self._resolved[cache_key]
        raw = self.options.get(key) if value is None else value
        if raw is None:
            return None
        resolved = resolve_value(raw, key if where is None else where, self)
        self._resolved[cache_key] = resolved
        return resolved

    def secrets(self) -> list[str]:
        return [v for v in self._resolved.values() if isinstance(v, str) and v]

    def redact(self, text: str) -> str:
        for value in sorted(self.secrets(), key=len, reverse=True):
            if len(value) >= 3:
                text = text.replace(value, _MASK)
        return text

    def describe_secret(self, key: str) -> str:
        raw = self.options.get(key)
        if raw is None:
            return "-"
        if isinstance(raw, str) and raw.startswith(("env:", "file:")):
            return raw
        return "(value in the file)"

    def path(self, key: str) -> Path | None:
        raw = self.options.get(key)
        if raw is None:
            return None
        p = Path(str(raw)).expanduser()
        return p if p.is_absolute() else self.base / p


def resolve_value(raw, key: str, service: Service) -> str:
    """`env:NAME`, `file:PATH` (relative to the services file; one trailing newline dropped)
    or the value itself."""
    if not isinstance(raw, str):
        raise PalletError(f"services.{service.name}.{key} must be a string", service.span(key))
    if raw.startswith("env:"):
        name = raw[4:]
        if name not in os.environ:
            raise PalletError(f"services.{service.name}.{key}: the environment variable {name} "
                              "is not set", service.span(key))
        return os.environ[name]
    if raw.startswith("file:"):
        p = Path(raw[5:]).expanduser()
        p = p if p.is_absolute() else service.base / p
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PalletError(f"services.{service.name}.{key}: cannot read {p}: "
                              f"{exc.strerror or exc}", service.span(key)) from None
        return text[:-1] if text.endswith("\n") else text
    return raw


def known_providers() -> list[str]:
    """libcloud's compute provider names, with those registered by set_driver."""
    from .libcloud_loader import import_libcloud
    import_libcloud()
    from libcloud.compute.providers import DRIVERS
    names = {getattr(k, "value", k) for k in DRIVERS}
    return sorted(str(n) for n in names)


def load_services(path: str | os.PathLike | None = None, *, required: bool = False) -> dict[str, Service]:
    """The services of a file (default `default_path()`); {} when the default file does not
    exist. A file named by the user (argument or $PALLET_SERVICES) must exist."""
    named = path is not None or bool(os.environ.get(ENV))
    p = Path(path).expanduser() if path is not None else default_path()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named or required:
            raise PalletError(f"{p}: no such services file") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise PalletError(f"{p}: cannot read: {exc}") from None
    return parse_services(text, str(p), p.absolute().parent)


def _masked(text: str) -> str:
    """The text with the values of secret keys hidden, for the lines errors show."""
    keys = "|".join(SECRET_KEYS) + r"|[A-Za-z0-9_-]*(?:password|secret|key|token)[A-Za-z0-9_-]*"
    def hide(m):
        value = m.group(3)
        if value.startswith(("\"env:", "\"file:", "'env:", "'file:")):
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}\"{_MASK}\""
    return re.sub(rf"^(\s*(?:{keys})\s*)(=\s*)(\"[^\"\n]*\"|'[^'\n]*'|[^\s#]+)", hide, text,
                  flags=re.M | re.I)


def parse_services(text: str, name: str, base: Path = Path(".")) -> dict[str, Service]:
    source = Source(name, _masked(text))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS.search(str(exc))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        raise PalletError(f"invalid TOML: {_TOML_POS.sub('', str(exc)).strip()}",
                          Span(source, line, col, line, col + 1)) from None
    extra = sorted(set(data) - {"services"})
    if extra:
        raise PalletError(f"unknown table {extra[0]!r}; a services file holds [services.NAME] tables",
                          _key_span(source, extra[0], 0))
    tables = data.get("services", {})
    if not isinstance(tables, dict):
        raise PalletError("services must be tables: [services.NAME]", _key_span(source, "services", 0))
    providers = None
    out: dict[str, Service] = {}
    for sname, table in tables.items():
        line = _header_line(source, sname)
        if not isinstance(table, dict):
            raise PalletError(f"services.{sname} must be a table", Span(source, line, 1, line, 2))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", sname) or sname in ("local", "node-list"):
            raise PalletError(f"{sname!r} cannot name a service: use letters, digits, '-', '_' "
                              "(local and node-list are Pallet's own)", Span(source, line, 1, line, 2))
        for key in table:
            if key not in KEYS:
                close = difflib.get_close_matches(key, sorted(KEYS), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]}?" if close else f" (keys: {', '.join(sorted(KEYS))})"
                raise PalletError(f"services.{sname}: unknown key {key!r}{hint}",
                                  _key_span(source, key, line))
        provider = table.get("provider")
        if not isinstance(provider, str) or not provider:
            raise PalletError(f"services.{sname} needs a provider: libcloud's name, e.g. "
                              "provider = \"ec2\"", _key_span(source, "provider", line)
                              if "provider" in table else Span(source, line, 1, line, 2))
        provider = ALIASES.get(provider.lower(), provider.lower())
        if "driver-module" not in table:
            providers = providers or known_providers()
            if provider not in providers:
                close = difflib.get_close_matches(provider, providers, n=3, cutoff=0.6)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise PalletError(f"services.{sname}: libcloud has no compute provider "
                                  f"{table['provider']!r}{hint}",
                                  _value_span(source, "provider", line))
        for key in ("region", "endpoint", "login-user", "driver-module", "driver-class"):
            if key in table and not isinstance(table[key], str):
                raise PalletError(f"services.{sname}.{key} must be a string",
                                  _value_span(source, key, line))
        if "driver-module" in table and "driver-class" not in table:
            raise PalletError(f"services.{sname}: driver-module needs driver-class (the "
                              "NodeDriver class in that module)", _key_span(source, "driver-module", line))
        for key in ("parallel", "boot-timeout"):
            if key in table and (not isinstance(table[key], int) or isinstance(table[key], bool)
                                 or table[key] < 1):
                raise PalletError(f"services.{sname}.{key} must be a whole number above 0",
                                  _value_span(source, key, line))
        for key in ("tags", "driver"):
            if key in table and not isinstance(table[key], dict):
                raise PalletError(f"services.{sname}.{key} must be a table", _key_span(source, key, line))
        for key in ("image-owners", "security-groups"):
            if key in table and (not isinstance(table[key], list)
                                 or not all(isinstance(x, str) for x in table[key])):
                raise PalletError(f"services.{sname}.{key} must be a list of strings",
                                  _value_span(source, key, line))
        endpoint = table.get("endpoint")
        if endpoint is not None and not re.match(r"https?://[^/\s:]+(:\d+)?(/.*)?$", endpoint):
            raise PalletError(f"services.{sname}.endpoint must be a URL: http(s)://HOST[:PORT][/PATH]",
                              _value_span(source, "endpoint", line))
        out[sname] = Service(sname, provider, table.get("region"), endpoint, dict(table), source,
                             line, base)
    return out


def unknown_service(name: str, services: dict[str, Service], path: Path | None,
                    span: Span | None = None) -> PalletError:
    from pallet.runtime.provider_names import PROVIDERS
    names = [*PROVIDERS, *services]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    where = f"{path}" if path is not None else "the services file"
    defined = f"services: {', '.join(services)}" if services else f"{where} defines none"
    return PalletError(f"unknown compute service {name!r}{hint} ({', '.join(PROVIDERS)} are "
                       f"built in; {defined}; add a [services.{name}] table to {where})", span)


def _header_line(source: Source, name: str) -> int:
    for i, line in enumerate(source.text.splitlines()):
        s = line.strip().replace(" ", "")
        if s in (f"[services.{name}]", f'[services."{name}"]'):
            return i + 1
    return 1


def _key_span(source: Source, key: str | None, after_line: int) -> Span:
    lines = source.text.splitlines()
    for i in range(max(after_line - 1, 0), len(lines)):
        stripped = lines[i].lstrip()
        if key and re.match(rf"\[?{re.escape(key)}\b", stripped) and i + 1 >= after_line:
            if i + 1 > after_line and stripped.startswith("[services.") and not stripped.startswith(f"[{key}"):
                break
            col = len(lines[i]) - len(stripped) + 1
            return Span(source, i + 1, col, i + 1, col + len(key))
    line = max(after_line, 1)
    return Span(source, line, 1, line, 2)


def _value_span(source: Source, key: str, after_line: int) -> Span:
    span = _key_span(source, key, after_line)
    text = source.line(span.line)
    m = re.match(rf"\s*{re.escape(key)}\s*=\s*", text)
    if not m:
        return span
    end = len(text.split("#")[0].rstrip())
    return Span(source, span.line, m.end() + 1, span.line, max(end + 1, m.end() + 2))
