"""Pallet's script library, `pallet.script.lib`, for scripts written against it:
`(lib/rm "/tmp/x" :recursive true)`, `(lib/user-home ~user)`, `(~lib/etc-default)`.

Each function is expanded where it is called, as in Pallet, for the target being compiled
(its OS family and packager pick the variant), from quoted words: an argument is one word, as
everywhere in Stevedore. Keyword options (`:force true`) and option maps are read when the
script is compiled, so they must be literal or `~` of spec values. A value function (a path
such as `etc-default`, or `user-home`, the output of a command) is a word where a word stands
and prints its value as a statement; the others are commands. A name Pallet's library had
that is not here is a located error naming it.

This module does not import lower.py: lower.py calls `call` with its Lowering.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pallet.grammar.forms import Form, Keyword, ListForm, MapForm, Symbol, head_name

from . import ast as A
from .names import err, munge
from .pallet_forms import literal_value

NAMESPACE = "pallet.script.lib"
ALIASES = frozenset({"lib", NAMESPACE})

# Every function of Pallet 0.8's pallet.script.lib.
PALLET_NAMES = frozenset("""
exit export source alias xargs which has-command? canonical-path rm mv cp ln backup-option
basename dirname path-owner path-group path-mode user-default-group ls cat tail diff cut chown
chgrp chmod touch sed-file sed-ext md5sum normalise-md5 md5sum-verify download-file
download-request tmp-dir make-temp-file heredoc-in heredoc rmdir mkdir make-temp-dir
os-version-name hostname dnsdomainname nameservers debian-version redhat-version
ubuntu-version arch user-exists? modify-user create-user remove-user lock-user unlock-user
user-home current-user group-exists? modify-group create-group remove-group
update-package-list upgrade-all-packages install-package upgrade-package remove-package
purge-package list-installed-packages debconf-set-selections package-manager-non-interactive
configure-service file etc-default log-root state-root pid-root spool-root config-root
etc-hosts etc-init upstart-script-dir pkg-etc-default pkg-log-root pkg-pid-root
pkg-config-root pkg-sbin system-environment file-changed set-flag set-flag-value flag?
selinux-file-type selinux-bool sudo bash env
""".split())

_RHEL = frozenset({"rhel", "centos", "rocky", "alma", "amzn", "fedora"})
_DARWIN = frozenset({"darwin", "os-x", "osx", "macos"})
_SEPARATORS = "/_|:%!@" + "".join(chr(c) for c in range(42, 127))


@dataclass(frozen=True)
class LibFn:
    # value functions return a Word; the others a statement (or None for nothing)
    build: Callable
    value: bool = False
    powershell: bool = False


@dataclass(frozen=True)
class LibRef:
    """A function of the library as a spec value: what `lib/rm` or a name referred from
    `pallet.script.lib` is in spec code, called in a script as `(~rm ...)`."""

    name: str

    def describe(self) -> str:
        return f"the script function {NAMESPACE}/{self.name}"


def lib_name(low, head: Form) -> str | None:
    """The library function a form's head names (`lib/x`, `pallet.script.lib/x`, `~lib/x`, an
    alias or a name the spec's namespace refers: `(sl/rm ...)`, `(rm ...)`, `(~rm ...)`), or
    None when it names none (then it is an ordinary command, such as lib/run.sh)."""
    unquoted = False
    if type(head) is ListForm:  # the common case first: a plain command name
        if head_name(head) != "unquote" or len(head.items) != 2:
            return None
        head, unquoted = head.items[1], True
    if type(head) is not Symbol:
        return None
    if "/" not in head.name or head.namespace not in ALIASES:
        names = getattr(low.resolver, "lib_function", None)  # the spec's names for the library
        if names is not None:
            found = names(head, unquoted)
            if found is not None:
                return _supported(found, head)
        return None
    if head.local in FUNCTIONS or head.local in PALLET_NAMES or head.namespace == NAMESPACE:
        return _supported(head.local, head)
    return None


def _supported(name: str, head: Form) -> str:
    if name in FUNCTIONS:
        return name
    if name in PALLET_NAMES:
        raise err(f"{NAMESPACE}/{name} is a Pallet name not yet supported here", head)
    raise err(f"{NAMESPACE} has no function {name!r}", head)


def call(low, name: str, form: ListForm, as_word: bool):
    fn = FUNCTIONS[name]
    if low.target.shell == "powershell" and not fn.powershell:
        raise err(f"lib/{name} is written for POSIX shells (bash, sh); it is not available in "
                  "a PowerShell script", form)
    result = fn.build(_Call(low, name, form))
    if as_word:
        if not fn.value:
            raise err(f"(lib/{name} ...) is a command; write @(lib/{name} ...) for its output", form)
        return result
    if not fn.value:
        return result
    if len(result.parts) == 1 and isinstance(result.parts[0], A.CmdSub):
        return result.parts[0].body  # the command prints the value
    return A.Print((result,))


class _Call:
    """One call's arguments: positional forms, then keyword options or an options map."""

    def __init__(self, low, name: str, form: ListForm):
        self.low, self.name, self.form = low, name, form
        self.target = low.target

    @property
    def family(self) -> str | None:
        return self.target.os_family

    def args(self, low_count: int, high_count: int | None = None) -> tuple[tuple[Form, ...], dict]:
        """The positional arguments (at least low_count, at most high_count) and the options."""
        items = list(self.form.items[1:])
        options: dict = {}
        positional: list[Form] = []
        i = 0
        while i < len(items):
            item = items[i]
            if isinstance(item, Keyword) and len(positional) >= low_count:
                if i + 1 >= len(items):
                    raise err(f"lib/{self.name}: option {item} needs a value", item)
                options[item.name] = literal_value(self.low, items[i + 1], f"the value of {item}")
                i += 2
                continue
            if isinstance(item, MapForm) and len(positional) >= low_count and i == len(items) - 1:
                options.update({(k.name if isinstance(k, Keyword) else k): v for k, v in
                                _as_map(literal_value(self.low, item, "an options map")).items()})
                i += 1
                continue
            if head_name(item) == "unquote" and len(positional) >= low_count and i == len(items) - 1:
                value = self.low.resolver(item.items[1])
                if isinstance(value, dict):  # ~options, a map of spec values
                    options.update({_key(k): v for k, v in value.items()})
                    i += 1
                    continue
            positional.append(item)
            i += 1
        high = low_count if high_count is None else high_count
        if not low_count <= len(positional) <= (high if high >= 0 else len(positional)):
            want = f"{low_count}" if high == low_count else f"{low_count} or more" if high < 0 \
                else f"{low_count} to {high}"
            raise err(f"lib/{self.name} takes {want} arguments (and options), got "
                      f"{len(positional)}", self.form)
        return tuple(positional), options

    def word(self, form: Form) -> A.Word:
        return self.low.word(form)

    def need_os(self) -> str:
        if not self.family:
            raise err(f"lib/{self.name} depends on the target's OS: compile with --os (such as "
                      "--os debian-12)", self.form)
        return self.family

    def packager(self) -> str:
        if not self.target.packager:
            raise err(f"lib/{self.name} needs the target's package manager: compile with --os",
                      self.form)
        return self.target.packager

    def no_variant(self):
        return err(f"lib/{self.name} has no variant for {self.target.describe()}", self.form)


def _as_map(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(value)
    return value


def _key(k) -> str:
    return k.name if isinstance(k, (Keyword, Symbol)) else str(k)


def _text(value) -> str:
    if isinstance(value, (Keyword, Symbol)):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cmd(*words, redirects: tuple[A.Redirect, ...] = (), span=None) -> A.Command:
    return A.Command(tuple(w if isinstance(w, A.Word) else A.lit(str(w)) for w in words),
                     redirects, span)


def flags(options: dict, names: dict[str, str], assign: bool = False) -> list[A.Word]:
    """Words for the options that are set, as Pallet's map-to-arg-string made them: a flag for
    `true`, a flag and its value for anything else; false and nil are left out. `names` maps
    an option to its flag (options not named are refused by the caller)."""
    out: list[A.Word] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = names[key]
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is True:
                out.append(A.lit(flag))
            elif assign and flag.startswith("--"):
                out.append(A.lit(f"{flag}={_text(v)}"))
            else:
                out += [A.lit(flag), A.lit(_text(v))]
    return out


def _check_options(c: _Call, options: dict, allowed) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise err(f"lib/{c.name}: unknown option :{unknown[0]}; it takes "
                  + (", ".join(":" + a for a in sorted(allowed)) or "no options"), c.form)


def _simple(command: str, count: int, option_flags: dict[str, str] | None = None,
            assign: bool = False, before: bool = True):
    """A command of `count` word arguments after its flags."""
    option_flags = option_flags or {}

    def build(c: _Call):
        args, options = c.args(count)
        _check_options(c, options, option_flags)
        return cmd(command, *flags(options, option_flags, assign), *(c.word(a) for a in args),
                   span=c.form.span)
    return build


def _const(path: str | Callable[[_Call], str]):
    def build(c: _Call):
        c.args(0)
        return A.lit(path(c) if callable(path) else path)
    return build


def _capture(*stmts: A.Stmt) -> A.Word:
    body = stmts[0] if len(stmts) == 1 else A.Pipeline(stmts)
    return A.Word((A.CmdSub(A.Block((body,))),))


# ---- values ---------------------------------------------------------------------------------


def _file(c: _Call):
    args, _ = c.args(1, -1)
    parts: list[A.Part] = []
    for i, arg in enumerate(args):
        if i:
            parts.append(A.Lit("/"))
        parts.extend(c.word(arg).parts)
    return A.Word(tuple(parts))


def _etc_default(c: _Call) -> str:
    family = c.need_os()
    if family in ("debian", "ubuntu"):
        return "/etc/default"
    if family in _RHEL:
        return "/etc/sysconfig"
    if family in _DARWIN:
        return "/etc/defaults"
    raise c.no_variant()


def _system_environment(c: _Call) -> str:
    family = c.family
    if family in ("rhel", "centos", "fedora"):
        return "/etc/profile.d"
    if family in _DARWIN:
        return "/etc/profile"
    return "/etc/environment"


def _user_home(c: _Call):
    (user,), _ = c.args(1)
    if c.family in _DARWIN:
        return _capture(cmd("dscl", "localhost", "-read",
                            A.Word((A.Lit("/Local/Default/Users/"), *c.word(user).parts)),
                            "dsAttrTypeNative:home"), cmd("cut", "-d", " ", "-f", "2"))
    return _capture(cmd("getent", "passwd", c.word(user)), cmd("cut", "-d:", "-f6"))


def _tmp_dir(c: _Call):
    c.args(0)
    tmp = A.Var("TMP", "default-value", A.lit("/tmp"))
    temp = A.Var("TEMP", "default-value", A.Word((tmp,)))
    return A.Word((A.Var("TMPDIR", "default-value", A.Word((temp,))),))


def _temp_path(c: _Call, directory: bool):
    (pattern,), options = c.args(1)
    _check_options(c, options, ("tmpdir",))
    where = options.get("tmpdir")
    base = A.lit(_text(where)) if isinstance(where, str) else _tmp_dir_word()
    template = A.Word((*base.parts, A.Lit("/"), *c.word(pattern).parts, A.Lit("XXXXXX")))
    return _capture(cmd("mktemp", *(["-d"] if directory else []), template))


def _tmp_dir_word() -> A.Word:
    return A.Word((A.Var("TMPDIR", "default-value", A.lit("/tmp")),))


def _os_version_name(c: _Call):
    c.args(0)
    if c.family in ("debian", "ubuntu"):
        return _capture(cmd("sed", "-n", "s/^VERSION_CODENAME=//p", "/etc/os-release"))
    return A.lit("")


def _hostname(c: _Call):
    _, options = c.args(0)
    names = {k: ("-" if len(k) == 1 else "--") + k for k in options}
    return _capture(cmd("hostname", *flags(options, names)))


def _nameservers(c: _Call):
    c.args(0)
    return _capture(cmd("sed", "-n", "s/^nameserver[[:space:]]*//p", "/etc/resolv.conf"))


def _by_os(default: str, **variants: str):
    def pick(c: _Call) -> str:
        c.args(0)
        for families, value in variants.items():
            if c.family in _FAMILY_SETS[families]:
                return value
        return default
    return pick


_FAMILY_SETS = {"darwin": _DARWIN, "pacman": frozenset({"arch"})}


# ---- commands -------------------------------------------------------------------------------


def _exit(c: _Call):
    (value,), _ = c.args(1)
    return cmd("exit", c.word(value), span=c.form.span)


def _export(c: _Call):
    (name, value), _ = c.args(2)
    text = literal_value(c.low, name, "the name lib/export sets")
    return A.Assign("export", munge(_text(text), c.form.span), c.word(value))


def _source(c: _Call):
    (path,), _ = c.args(1)
    return cmd(".", c.word(path), span=c.form.span)


def _alias(c: _Call):
    (name, value), _ = c.args(2)
    text = _text(literal_value(c.low, name, "an alias name"))
    return cmd("alias", A.Word((A.Lit(text + "="), *c.word(value).parts)), span=c.form.span)


def _has_command(c: _Call):
    (name,), _ = c.args(1)
    return cmd("command", "-v", c.word(name),
               redirects=(A.Redirect(">", A.lit("/dev/null")), A.Redirect("2>&1", None)))


def _getent(database: str):
    def build(c: _Call):
        (name,), _ = c.args(1)
        return cmd("getent", database, c.word(name), redirects=(A.Redirect(">", A.lit("/dev/null")),))
    return build


def _os_file(path: str, lsb: bool = False):
    def build(c: _Call):
        c.args(0)
        test = A.Test("-e", (A.lit(path),))
        body = cmd(path, "-c", "-s") if lsb else cmd("cat", path)
        return A.If(test, A.Block((body,)))
    return build


def _heredoc(c: _Call):
    (path, content), options = c.args(2)
    _check_options(c, options, ("literal",))
    text = literal_value(c.low, content, "the content of lib/heredoc")
    if not isinstance(text, str):
        raise err("lib/heredoc needs the content as a string", content)
    if not options.get("literal") and any(ch in text for ch in "$`\\"):
        raise err("Pallet's heredoc expanded $, ` and \\ in its content unless {:literal true}; "
                  "here the content is always written as it is: pass {:literal true} to say "
                  "so, or build the text in the spec code", content)
    return A.Heredoc(c.word(path), text)


def _sed_file(c: _Call):
    args, options = c.args(2, 3)
    _check_options(c, options, ("seperator", "separator", "restriction", "quote-with"))
    path, exprs = args[0], args[1]
    mapping = literal_value(c.low, exprs, "the expressions of lib/sed-file")
    restriction = options.get("restriction")
    prefix = f"{restriction} " if restriction else ""
    words: list = ["sed", "-i"]
    if isinstance(mapping, str):
        words += ["-e", prefix + mapping]
    elif isinstance(mapping, dict):
        for key, value in mapping.items():
            key, value = _text(key), _text(value)
            sep = options.get("seperator") or options.get("separator") or next(
                ch for ch in _SEPARATORS if ch not in key and ch not in value)
            words += ["-e", f"{prefix}s{sep}{key}{sep}{value}{sep}"]
    else:
        raise err("lib/sed-file takes a map of regular expression to replacement, or a sed "
                  "expression string", exprs)
    return cmd(*words, c.word(path), span=c.form.span)


def _download_file(c: _Call):
    (url, path), options = c.args(2)
    _check_options(c, options, ("proxy", "insecure"))
    proxy, insecure = options.get("proxy"), options.get("insecure")
    curl = cmd("curl", "-o", c.word(path), "--retry", "5", "--silent", "--show-error", "--fail",
               "--location", *(["--proxy", _text(proxy)] if proxy else []),
               *(["--insecure"] if insecure else []), c.word(url))
    wget = cmd("wget", "-O", c.word(path), "--tries", "5", "--no-verbose",
               *(["-e", f"http_proxy = {proxy}", "-e", f"ftp_proxy = {proxy}"] if proxy else []),
               *(["--no-check-certificate"] if insecure else []), c.word(url))
    fail = A.Block((A.Print((A.lit("No download utility available"),), redirects=A.TO_STDERR),
                    cmd("exit", "1")))
    has = lambda name: cmd("command", "-v", name, redirects=(A.Redirect(">", A.lit("/dev/null")),))
    return A.If(has("curl"), A.Block((curl,)),
                A.Block((A.If(has("wget"), A.Block((wget,)), fail),)))


_USER_FLAGS = {"home": "--home", "shell": "--shell", "comment": "--comment", "uid": "--uid",
               "gid": "--gid", "group": "-g", "groups": "--groups", "system": "--system",
               "create-home": "--create-home", "password": "--password", "append": "--append",
               "move-home": "--move-home", "expiredate": "--expiredate", "r": "-r", "g": "-g",
               "G": "-G", "p": "-p", "a": "-a", "remove": "--remove", "force": "--force",
               "non-unique": "--non-unique", "m": "-m", "M": "-M", "d": "-d", "s": "-s",
               "u": "-u", "c": "-c", "new-name": "--new-name", "lock": "--lock",
               "unlock": "--unlock", "login": "--login"}
_RHEL_USER = {"system": "r", "group": "g", "password": "p", "groups": "G", "append": "a"}


def _user_command(command: str):
    def build(c: _Call):
        args, options = c.args(1, 2)
        if len(args) == 2:  # Pallet passed the options as a map, the second argument
            options = {**{_key(k): v for k, v in _as_map(
                literal_value(c.low, args[1], f"the options of lib/{c.name}")).items()}, **options}
        options = dict(options)
        if isinstance(options.get("groups"), (list, tuple)):
            options["groups"] = ",".join(_text(g) for g in options["groups"])
        if c.family in _RHEL and command in ("useradd", "usermod"):
            options = {_RHEL_USER.get(k, k): v for k, v in options.items()}
        _check_options(c, options, _USER_FLAGS)
        return cmd(f"/usr/sbin/{command}", *flags(options, _USER_FLAGS), c.word(args[0]),
                   span=c.form.span)
    return build


def _user_flag(command: str, flag: str):
    def build(c: _Call):
        (name,), _ = c.args(1)
        return cmd(f"/usr/sbin/{command}", flag, c.word(name), span=c.form.span)
    return build


_PACKAGES = {
    # packager: {function: (command words before the options, words after, takes a name)}
    "apt": {"update-package-list": ["apt-get", "-qq", "update"],
            "upgrade-all-packages": ["apt-get", "-qq", "-y", "upgrade"],
            "install-package": ["apt-get", "-qq", "-y", "install"],
            "upgrade-package": ["apt-get", "-qq", "-y", "install"],
            "remove-package": ["apt-get", "-qq", "-y", "remove"],
            "purge-package": ["apt-get", "-qq", "-y", "purge"],
            "list-installed-packages": ["dpkg", "--get-selections"]},
    "dnf": {"update-package-list": ["dnf", "makecache", "-q"],
            "upgrade-all-packages": ["dnf", "upgrade", "-y", "-q"],
            "install-package": ["dnf", "install", "-y", "-q"],
            "upgrade-package": ["dnf", "upgrade", "-y", "-q"],
            "remove-package": ["dnf", "remove", "-y"],
            "purge-package": ["dnf", "remove", "-y"],
            "list-installed-packages": ["dnf", "list", "installed"]},
    "apk": {"update-package-list": ["apk", "update", "-q"],
            "upgrade-all-packages": ["apk", "upgrade", "-q"],
            "install-package": ["apk", "add", "-q"],
            "upgrade-package": ["apk", "add", "-q", "--upgrade"],
            "remove-package": ["apk", "del", "-q"],
            "purge-package": ["apk", "del", "-q", "--purge"],
            "list-installed-packages": ["apk", "info"]},
    "pacman": {"update-package-list": ["pacman", "-Sy", "--noconfirm", "--noprogressbar"],
               "upgrade-all-packages": ["pacman", "-Su", "--noconfirm", "--noprogressbar"],
               "install-package": ["pacman", "-S", "--noconfirm", "--noprogressbar"],
               "upgrade-package": ["pacman", "-S", "--noconfirm", "--noprogressbar"],
               "remove-package": ["pacman", "-R", "--noconfirm"],
               "purge-package": ["pacman", "-R", "--noconfirm", "--nosave"],
               "list-installed-packages": ["pacman", "-Q"]},
    "zypper": {"update-package-list": ["zypper", "--non-interactive", "refresh"],
               "upgrade-all-packages": ["zypper", "--non-interactive", "update"],
               "install-package": ["zypper", "--non-interactive", "install"],
               "upgrade-package": ["zypper", "--non-interactive", "update"],
               "remove-package": ["zypper", "--non-interactive", "remove"],
               "purge-package": ["zypper", "--non-interactive", "remove", "--clean-deps"],
               "list-installed-packages": ["zypper", "search", "--installed-only"]},
}
_TAKES_NAME = {"install-package", "upgrade-package", "remove-package", "purge-package"}


def _package(c: _Call):
    packager = c.packager()
    commands = _PACKAGES.get(packager)
    if commands is None:
        raise c.no_variant()
    args, options = c.args(1 if c.name in _TAKES_NAME else 0)
    names = {k: ("-" if len(k) == 1 else "--") + k for k in options}
    return cmd(*commands[c.name], *flags(options, names, assign=True), *(c.word(a) for a in args),
               span=c.form.span)


def _debconf(lines: list[A.Word], c: _Call):
    if c.target.packager != "apt":
        return None
    return A.Pipeline((A.Command((A.lit("printf"), A.lit("%s\\n"), *lines)),
                       cmd("debconf-set-selections")))


def _debconf_set_selections(c: _Call):
    args, _ = c.args(0, -1)
    return _debconf([c.word(a) for a in args], c) if args else None


def _non_interactive(c: _Call):
    c.args(0)
    return _debconf([A.lit("debconf debconf/frontend select noninteractive"),
                     A.lit("debconf debconf/frontend seen false")], c)


def _configure_service(c: _Call):
    args, options = c.args(2, 3)
    name, action = args[0], literal_value(c.low, args[1], "the action of lib/configure-service")
    if len(args) == 3:
        options = {**{_key(k): v for k, v in _as_map(literal_value(
            c.low, args[2], "the options of lib/configure-service")).items()}, **options}
    action = _text(action)
    start = options.get("sequence-start", 20)
    if c.target.packager in ("dnf", "yum") or c.family in _RHEL:
        levels = "".join(str(x) for x in (start[1:] if isinstance(start, (list, tuple))
                                          else [2, 3, 4, 5]))
        if action == "disable":
            return cmd("/sbin/chkconfig", c.word(name), "off")
        if action in ("enable", "start-stop"):
            return cmd("/sbin/chkconfig", c.word(name), "on", "--level", levels)
    else:
        force = ["-f"] if options.get("force") else []
        stop = options.get("sequence-stop", start)
        if action == "disable":
            return cmd("update-rc.d", *force, c.word(name), "remove")
        if action == "enable":
            return cmd("update-rc.d", c.word(name), "defaults", _text(start), _text(stop))
        if action == "start-stop":
            return cmd("update-rc.d", c.word(name), "start", _text(start), ".", "stop",
                       _text(stop), ".")
    raise err(f"lib/configure-service: the action is :enable, :disable or :start-stop, not "
              f"{action!r}", c.form)


def _set_flag(c: _Call):
    args, _ = c.args(1, 2)
    head = "SETFLAG:" if len(args) == 1 else "SETVALUE:"
    tail = ":SETFLAG" if len(args) == 1 else ":SETVALUE"
    return A.Print((A.lit(head), *(c.word(a) for a in args), A.lit(tail)))


def _selinux_guard(*extra: A.Stmt) -> A.Stmt:
    return A.AndOr("&&", (cmd("command", "-v", "chcon", redirects=(A.Redirect(">", A.lit("/dev/null")),)),
                          A.Test("-d", (A.lit("/etc/selinux"),)),
                          A.Test("-e", (A.lit("/selinux/enforce"),)), *extra))


def _selinux_file_type(c: _Call):
    (path, kind), _ = c.args(2)
    probe = cmd("stat", "--format", "%C", c.word(path),
                redirects=(A.Redirect(">", A.lit("/dev/null")), A.Redirect("2>", A.lit("/dev/null"))))
    chcon = cmd("chcon", "-Rv", A.Word((A.Lit("--type="), *c.word(kind).parts)), c.word(path))
    return A.If(_selinux_guard(probe), A.Block((chcon,)))


def _selinux_bool(c: _Call):
    (flag, value), options = c.args(2)
    _check_options(c, options, ("persist",))
    words = ["setsebool", *(["-P"] if options.get("persist") else []), c.word(flag), c.word(value)]
    return A.If(_selinux_guard(), A.Block((cmd(*words),)))


def _env(c: _Call):
    _, options = c.args(0)
    _check_options(c, options, ("vars",))
    pairs = _as_map(options.get("vars"))
    return cmd("/usr/bin/env", *(A.lit(f"{_key(k)}={_text(v)}") for k, v in pairs.items()))


def _bash(c: _Call):
    _, options = c.args(0)
    _check_options(c, options, ("login",))
    return cmd("/bin/bash", *(["-l"] if options.get("login") else []))


_SHORT = {"recursive": "-r", "force": "-f"}

FUNCTIONS: dict[str, LibFn] = {
    # values: paths and what commands print
    "file": LibFn(_file, value=True, powershell=True),
    "etc-default": LibFn(_const(_etc_default), value=True),
    "pkg-etc-default": LibFn(_const(_etc_default), value=True),
    "log-root": LibFn(_const("/var/log"), value=True),
    "pkg-log-root": LibFn(_const("/var/log"), value=True),
    "state-root": LibFn(_const("/var/lib"), value=True),
    "pid-root": LibFn(_const("/var/run"), value=True),
    "pkg-pid-root": LibFn(_const("/var/run"), value=True),
    "spool-root": LibFn(_const("/var/spool"), value=True),
    "config-root": LibFn(_const("/etc"), value=True),
    "pkg-config-root": LibFn(_const("/etc"), value=True),
    "pkg-sbin": LibFn(_const("/sbin"), value=True),
    "etc-hosts": LibFn(_const("/etc/hosts"), value=True),
    "etc-init": LibFn(_const(_by_os("/etc/init.d", pacman="/etc/rc.d")), value=True),
    "upstart-script-dir": LibFn(_const("/etc/init"), value=True),
    "system-environment": LibFn(_const(_system_environment), value=True),
    "backup-option": LibFn(_const(_by_os("--backup=numbered", darwin="")), value=True),
    "sed-ext": LibFn(_const(_by_os("", darwin=".bak")), value=True),
    "user-home": LibFn(_user_home, value=True),
    "current-user": LibFn(lambda c: (c.args(0), _capture(cmd("whoami")))[1], value=True),
    "tmp-dir": LibFn(_tmp_dir, value=True),
    "make-temp-file": LibFn(lambda c: _temp_path(c, False), value=True),
    "make-temp-dir": LibFn(lambda c: _temp_path(c, True), value=True),
    "os-version-name": LibFn(_os_version_name, value=True),
    "hostname": LibFn(_hostname, value=True),
    "dnsdomainname": LibFn(lambda c: (c.args(0), _capture(cmd("dnsdomainname")))[1], value=True),
    "nameservers": LibFn(_nameservers, value=True),
    "arch": LibFn(lambda c: (c.args(0), _capture(cmd("uname", "-m")))[1], value=True),
    # commands
    "exit": LibFn(_exit, powershell=True),
    "export": LibFn(_export),
    "source": LibFn(_source),
    "alias": LibFn(_alias),
    "which": LibFn(_simple("which", 1)),
    "has-command?": LibFn(_has_command),
    "canonical-path": LibFn(lambda c: cmd("readlink", "-f", *(c.word(a) for a in c.args(1)[0]))),
    "rm": LibFn(_simple("rm", 1, _SHORT)),
    "mv": LibFn(_simple("mv", 2, {"force": "-f", "backup": "--backup"}, assign=True)),
    "cp": LibFn(_simple("cp", 2, {"force": "-f", "backup": "--backup", "preserve": "-p"},
                        assign=True)),
    "ln": LibFn(_simple("ln", 2, {"force": "-f", "symbolic": "-s", "no-deref": "-n"})),
    "chown": LibFn(_simple("chown", 2, {"recursive": "-R", "force": "-f", "R": "-R"})),
    "chgrp": LibFn(_simple("chgrp", 2, {"recursive": "-R", "force": "-f", "R": "-R"})),
    "chmod": LibFn(_simple("chmod", 2, {"recursive": "-R", "force": "-f", "R": "-R"})),
    "touch": LibFn(_simple("touch", 1, {"no-create": "-c", "c": "-c"})),
    "mkdir": LibFn(_simple("mkdir", 1, {"mode": "-m", "path": "-p", "verbose": "-v",
                                        "m": "-m", "p": "-p"})),
    "rmdir": LibFn(_simple("rmdir", 1, {"parents": "-p", "p": "-p"})),
    "basename": LibFn(_simple("basename", 1)),
    "dirname": LibFn(_simple("dirname", 1)),
    "path-owner": LibFn(lambda c: cmd("stat", "-c%U", *(c.word(a) for a in c.args(1)[0]))),
    "path-group": LibFn(lambda c: cmd("stat", "-c%G", *(c.word(a) for a in c.args(1)[0]))),
    "path-mode": LibFn(lambda c: cmd("stat", "-c%a", *(c.word(a) for a in c.args(1)[0]))),
    "user-default-group": LibFn(lambda c: cmd("id", "-ng", *(c.word(a) for a in c.args(1)[0]))),
    "ls": LibFn(_simple("ls", 1, {"sort-by-time": "-t", "sort-by-size": "-S", "reverse": "-r"})),
    "cat": LibFn(_simple("cat", 1)),
    "tail": LibFn(_simple("tail", 1, {"max-lines": "-n"})),
    "diff": LibFn(_simple("diff", 2, {"unified": "-u"})),
    "cut": LibFn(_simple("cut", 1, {"fields": "-f", "delimiter": "-d"})),
    "md5sum": LibFn(_simple("md5sum", 1)),
    "heredoc": LibFn(_heredoc, powershell=True),
    "sed-file": LibFn(_sed_file),
    "download-file": LibFn(_download_file),
    "debian-version": LibFn(_os_file("/etc/debian_version")),
    "redhat-version": LibFn(_os_file("/etc/redhat-release")),
    "ubuntu-version": LibFn(_os_file("/usr/bin/lsb_release", lsb=True)),
    "user-exists?": LibFn(_getent("passwd")),
    "group-exists?": LibFn(_getent("group")),
    "create-user": LibFn(_user_command("useradd")),
    "modify-user": LibFn(_user_command("usermod")),
    "remove-user": LibFn(_user_command("userdel")),
    "lock-user": LibFn(_user_flag("usermod", "--lock")),
    "unlock-user": LibFn(_user_flag("usermod", "--unlock")),
    "create-group": LibFn(_user_command("groupadd")),
    "modify-group": LibFn(_user_command("groupmod")),
    "remove-group": LibFn(_user_command("groupdel")),
    **{name: LibFn(_package) for name in _PACKAGES["apt"]},
    "debconf-set-selections": LibFn(_debconf_set_selections),
    "package-manager-non-interactive": LibFn(_non_interactive),
    "configure-service": LibFn(_configure_service),
    "set-flag": LibFn(_set_flag),
    "set-flag-value": LibFn(_set_flag),
    "selinux-file-type": LibFn(_selinux_file_type),
    "selinux-bool": LibFn(_selinux_bool),
    "env": LibFn(_env),
    "bash": LibFn(_bash),
}

assert set(FUNCTIONS) <= PALLET_NAMES, set(FUNCTIONS) - PALLET_NAMES

__all__ = ["ALIASES", "FUNCTIONS", "NAMESPACE", "PALLET_NAMES", "call", "lib_name"]
