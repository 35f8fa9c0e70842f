"""What the core actions compute at compile time: file content (literal, local, Jinja2
template), sed expressions, the gathered package list, package-source definitions. Pure
functions of the action and the target; every error is located at the action's span."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pallet.compiler.model import Action
from pallet.errors import PalletError
from pallet.grammar.forms import Keyword, Symbol
from pallet.stevedore import Target

from .action_options import ACTION_OPTIONS, PACKAGER_KEYS

_DIGESTS = {"sha256": re.compile(r"[0-9a-f]{64}\Z"), "sha512": re.compile(r"[0-9a-f]{128}\Z")}


# ---- remote-file ---------------------------------------------------------------------------


def remote_file_content(action: Action, opts: dict, read_file: Callable[[str], bytes]
                        ) -> tuple[bytes | None, str, str]:
    """(content to carry or None, url, digest when the content is downloaded: the :sha256 or
    the :sha512 given, as hex; the node tells them apart by their length)."""
    sources = [k for k in ("content", "local-file", "template", "url") if opts.get(k) is not None]
    if len(sources) != 1:
        raise PalletError("remote-file needs exactly one of :content :local-file :template :url"
                          + (f", got {' '.join(':' + s for s in sources)}" if sources else ""),
                          action.span)
    if opts.get("values") is not None and "template" not in sources:
        raise PalletError("remote-file :values goes with :template", action.span)
    given = [k for k in _DIGESTS if opts.get(k) is not None]
    if given and "url" not in sources:
        raise PalletError(f"remote-file :{given[0]} goes with :url (other content is checksummed "
                          "by the compiler)", action.span)
    if len(given) > 1:
        raise PalletError("remote-file takes one checksum: :sha256 or :sha512, not both",
                          action.span)
    kind = sources[0]
    if kind == "content":
        value = opts["content"]
        if not isinstance(value, str):
            raise PalletError(f"remote-file :content must be a string, not {value!r}", action.span)
        return value.encode("utf-8"), "", ""
    if kind == "url":
        if not given:
            raise PalletError("remote-file :url needs :sha256 (64 hex digits) or :sha512 (128), "
                              "the file's checksum, so that the node can verify it and a second "
                              "run can skip it", action.span)
        algorithm = given[0]
        digest = opts[algorithm]
        if not (isinstance(digest, str) and _DIGESTS[algorithm].match(digest.lower())):
            digits = 64 if algorithm == "sha256" else 128
            raise PalletError(f"remote-file :{algorithm} is the file's {digits} hex digits, not "
                              f"{_shown(digest)}", action.span)
        return None, _text(action, opts["url"], ":url"), digest.lower()
    path = _text(action, opts[kind], f":{kind}")
    data = _read(action, path, read_file)
    if kind == "local-file":
        return data, "", ""
    return render_template(action, path, data, opts.get("values") or {}).encode("utf-8"), "", ""


def _shown(value: Any) -> str:
    from pallet.compiler.core import pr_str
    text = pr_str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _read(action: Action, path: str, read_file: Callable[[str], bytes]) -> bytes:
    try:
        return read_file(path)
    except PalletError as exc:
        raise PalletError(exc.message, exc.span or action.span, exc.notes) from None
    except OSError as exc:
        raise PalletError(f"cannot read {path}: {exc.strerror or exc}", action.span) from None


def render_template(action: Action, path: str, data: bytes, values: Any) -> str:
    """Jinja2 with StrictUndefined: a missing value is an error, located in the template
    and at the action."""
    import jinja2  # only specs with templates pay for the import

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PalletError(f"template {path} is not UTF-8 text", action.span) from None
    if not isinstance(values, dict):
        raise PalletError(f"remote-file :values must be a map, not {values!r}", action.span)
    # The loader names the template's file, so that Jinja2's tracebacks carry its lines.
    loader = jinja2.FunctionLoader(lambda name: (text, path, lambda: True))
    env = jinja2.Environment(loader=loader, autoescape=False,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.get_template(path).render(template_values(values))
    except jinja2.TemplateSyntaxError as exc:
        raise PalletError(f"template {path}:{exc.lineno}: {exc.message}", action.span) from None
    except jinja2.TemplateError as exc:
        line = _template_line(path)
        where = f"{path}:{line}" if line else path
        raise PalletError(f"template {where}: {exc.message or exc}", action.span) from None
    except Exception as exc:  # an error raised by the template's own expressions
        raise PalletError(f"template {path}: {type(exc).__name__}: {exc}", action.span) from None


def _template_line(path: str) -> int | None:
    """The template line being rendered when the current exception was raised (Jinja2
    rewrites tracebacks so that template frames carry the template's name and lines)."""
    tb = sys.exc_info()[2]
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def template_values(value: Any) -> Any:
    """Spec values as plain Python for Jinja2: keywords by name, vectors as lists."""
    if isinstance(value, dict):
        return {_plain_key(k): template_values(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [template_values(v) for v in value]
    if isinstance(value, frozenset):
        return sorted((template_values(v) for v in value), key=str)
    if isinstance(value, (Keyword, Symbol)):
        return value.name
    return value


def _plain_key(key: Any) -> Any:
    return key.name.replace("-", "_") if isinstance(key, (Keyword, Symbol)) else key


def _text(action: Action, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise PalletError(f"{action.kind} {what} must be a non-empty string, not {value!r}",
                          action.span)
    return value


# ---- sed ----------------------------------------------------------------------------------

_DELIMITERS = "/|#,@!~%:;+="


def sed_expressions(action: Action, replacements: Any, separator: Any = None) -> list[str]:
    """Pairs of words (ERE regex, sed `s` command) for pallet-sed."""
    if not isinstance(replacements, dict) or not replacements:
        raise PalletError('sed takes a map of regex to replacement, such as {"^port=.*" '
                          '"port=8080"}', action.span)
    words: list[str] = []
    for regex, replacement in replacements.items():
        if not isinstance(regex, str) or not isinstance(replacement, str) or not regex:
            raise PalletError(f"sed: {regex!r} -> {replacement!r}: regex and replacement must "
                              "be strings", action.span)
        if "\n" in regex or "\n" in replacement:
            raise PalletError("sed works line by line: a regex or replacement cannot hold a "
                              "newline", action.span)
        if separator is not None:
            delim = str(separator)
            if len(delim) != 1 or delim in "\\\n" or delim in regex or delim in replacement:
                raise PalletError(f"sed :separator must be one character that the regex and "
                                  f"replacement do not contain, not {separator!r}", action.span)
        else:
            delim = next((d for d in _DELIMITERS if d not in regex and d not in replacement), None)
        if delim is None:
            raise PalletError(f"sed: no delimiter among {_DELIMITERS} is free in {regex!r}",
                              action.span)
        words += [regex, f"s{delim}{regex}{delim}{replacement}{delim}g"]
    return words


# ---- packages -------------------------------------------------------------------------------

def gather_packages(actions: Sequence[Action], target: Target
                    ) -> tuple[list[tuple[str, str]], list[str]]:
    """The phase's packages: [(name, version or "")] to install, [name] to remove."""
    installs: dict[str, str] = {}
    removes: list[str] = []
    for action in actions:
        names: list[tuple[str, str, str]] = []  # (name, version, install|remove)
        opts = {(k.name if isinstance(k, Keyword) else k): v for k, v in action.options}
        if action.kind == "package":
            if len(action.args) != 1:
                raise PalletError("package takes one name: (package name :action :install)",
                                  action.span)
            unknown = set(opts) - set(ACTION_OPTIONS["package"])
            if unknown & {"allow-unsigned", "priority"}:
                raise PalletError(f"package :{sorted(unknown)[0]} is not supported: install "
                                  "packages from signed sources (package-source with a key)",
                                  action.span)
            if unknown:
                raise PalletError(f"package has no option :{sorted(unknown)[0]}; its options are "
                                  ":action :version", action.span)
            verb = opts.get("action") or "install"
            verb = verb.name if isinstance(verb, Keyword) else verb
            if verb not in ("install", "remove"):
                raise PalletError(f"package :action must be :install or :remove, not {verb!r}",
                                  action.span)
            names.append((_package_name(action, action.args[0]), str(opts.get("version") or ""),
                          verb))
        else:
            listed: list[Any] = []
            if action.args:
                if len(action.args) != 1 or not isinstance(action.args[0], _COLLECTIONS):
                    raise PalletError('packages takes a vector of names: (packages ["a" "b"])',
                                      action.span)
                listed += _ordered(action.args[0])
            verb = opts.pop("action", None)
            verb = verb.name if isinstance(verb, Keyword) else (verb or "install")
            if verb not in ("install", "remove"):
                raise PalletError(f"packages :action must be :install or :remove, not {verb!r}",
                                  action.span)
            for key, value in opts.items():
                if key not in PACKAGER_KEYS:
                    raise PalletError(f"packages has no option :{key}; its options are "
                                      + " ".join(":" + k for k in ACTION_OPTIONS["packages"]),
                                      action.span)
                if target.packager in PACKAGER_KEYS[key]:
                    listed += _ordered(value) if isinstance(value, _COLLECTIONS) else [value]
            names += [(_package_name(action, n), "", verb) for n in listed]
        for name, version, verb in names:
            if verb == "remove":
                if name in installs:
                    raise PalletError(f"package {name} is both installed and removed in this phase",
                                      action.span)
                if name not in removes:
                    removes.append(name)
                continue
            if name in removes:
                raise PalletError(f"package {name} is both installed and removed in this phase",
                                  action.span)
            if name in installs and version and installs[name] not in ("", version):
                raise PalletError(f"package {name} is asked for in versions {installs[name]} "
                                  f"and {version}", action.span)
            installs[name] = version or installs.get(name, "")
    return list(installs.items()), removes


_COLLECTIONS = (tuple, list, set, frozenset)


def _ordered(values: Any) -> list:
    """A vector in its order, a set sorted: the script must not depend on hashing."""
    return sorted(values, key=str) if isinstance(values, (set, frozenset)) else list(values)


def _package_name(action: Action, value: Any) -> str:
    name = value.name if isinstance(value, (Keyword, Symbol)) else value
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9@._+:-]*", name):
        raise PalletError(f"{action.kind}: {value!r} is not a package name", action.span)
    return name


# ---- package sources ------------------------------------------------------------------------

# Release code names, for an apt source that does not say :release.
_CODENAMES = {"debian": {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie"},
              "ubuntu": {"20.04": "focal", "22.04": "jammy", "24.04": "noble"}}


@dataclass(frozen=True)
class PackageSource:
    path: str
    data: bytes = b""
    line: str | None = None      # a line to add to `path` instead of a whole file
    key_url: str = ""
    key_path: str = ""


def package_source(action: Action, name: str, opts: dict, target: Target) -> PackageSource:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise PalletError(f"package-source name {name!r} must be usable as a file name "
                          "(letters, digits, _ . -)", action.span)
    packager = target.packager
    if packager == "apt":
        spec = _source_map(action, opts, "apt", "aptitude")
        url = _text(action, spec.get("url"), ":apt :url")
        release = spec.get("release") or _CODENAMES.get(target.os_family or "", {}).get(
            target.os_version or "")
        if not release:
            raise PalletError("package-source :apt needs :release (the distribution's code "
                              f"name, unknown for {target.describe()})", action.span)
        scopes = spec.get("scopes") or ["main"]
        scopes = [scopes] if isinstance(scopes, str) else [str(s) for s in scopes]
        key_url = spec.get("key-url") or ""
        key_path = ""
        options = ""
        if key_url:
            key_path = f"/etc/apt/keyrings/{name}" + (".gpg" if key_url.endswith(".gpg") else ".asc")
            options = f"[signed-by={key_path}] "
        line = f"deb {options}{url} {release} {' '.join(scopes)}\n"
        _one_line(action, line)
        return PackageSource(f"/etc/apt/sources.list.d/{name}.list", line.encode(), None,
                             key_url, key_path)
    if packager in ("dnf", "yum", "zypper"):
        keys = ("zypper", "yum") if packager == "zypper" else ("yum", "dnf")
        spec = _source_map(action, opts, *keys)
        url = _text(action, spec.get("url"), ":url")
        gpgkey = spec.get("gpgkey") or spec.get("key-url") or ""
        lines = [f"[{name}]", f"name={name}", f"baseurl={url}", "enabled=1",
                 f"gpgcheck={1 if gpgkey else 0}"] + ([f"gpgkey={gpgkey}"] if gpgkey else [])
        if packager == "zypper":
            lines.append("type=rpm-md")
        text = "\n".join(lines) + "\n"
        for line in lines:
            _one_line(action, line + "\n")
        folder = "/etc/zypp/repos.d" if packager == "zypper" else "/etc/yum.repos.d"
        return PackageSource(f"{folder}/{name}.repo", text.encode())
    if packager == "apk":
        spec = _source_map(action, opts, "apk")
        url = _text(action, spec.get("url"), ":apk :url")
        _one_line(action, url + "\n")
        return PackageSource("/etc/apk/repositories", line=url)
    raise PalletError(f"package-source is not available for {target.describe()}", action.span)


def _source_map(action: Action, opts: dict, *keys: str) -> dict:
    for key in keys:
        value = opts.get(key)
        if value is not None:
            if not isinstance(value, dict):
                raise PalletError(f"package-source :{key} takes a map", action.span)
            return {_plain(k): _plain(v) for k, v in value.items()}
    raise PalletError("package-source needs " + " or ".join(":" + k for k in keys)
                      + " for this target", action.span)


def _plain(value: Any) -> Any:
    if isinstance(value, (Keyword, Symbol)):
        return value.name
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _one_line(action: Action, line: str) -> None:
    if "\n" in line[:-1] or "\r" in line:
        raise PalletError("package-source values cannot hold line breaks", action.span)
