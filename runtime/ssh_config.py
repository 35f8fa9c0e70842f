"""OpenSSH client configuration (`~/.ssh/config`) for the hosts of an inventory.

An inventory entry's `host` (else its `name`) is looked up as `ssh HOST` would look it up:
`Host` and `Match` blocks, first value wins, `Include` files (parsed with
`paramiko.SSHConfig`). What Pallet takes from it:

    HostName            the address to connect to (the alias stays the node's name)
    Port, User          unless the inventory gives `port`, `user` (Pallet's defaults: 22, root)
    IdentityFile        the first that exists, unless the inventory gives `private-key`
    ProxyJump           jump hosts (a comma list: the first is reached first), each looked up
                        in the config too; unless the inventory gives `jump` or `--jump` is given
    UserKnownHostsFile  the known_hosts files of that host (the first records new keys),
                        unless `--known-hosts` is given

Which files: `--ssh-config FILE` (or `$PALLET_SSH_CONFIG`) names the only file, as `ssh -F`
does (`none`: no file); by default `~/.ssh/config`, then `/etc/ssh/ssh_config`.
"""
from __future__ import annotations

import glob
import io
import os
import re
from dataclasses import replace
from pathlib import Path

from pallet.errors import PalletError

from .model import Endpoint

__all__ = ["SshConfig", "ENV", "parse_hop"]

ENV = "PALLET_SSH_CONFIG"
_MAX_JUMPS = 8
_INCLUDE = re.compile(r"^\s*include(?:\s*=\s*|\s+)(.*)$", re.IGNORECASE)
# The keywords whose values Pallet takes (or that change them: Match blocks, hostname
# canonicalisation); a config with none of them changes no endpoint.
_READ = re.compile(r"^\s*(hostname|port|user|identityfile|proxyjump|userknownhostsfile|match|"
                   r"canonical\w*)(\s*=|\s)", re.IGNORECASE)


def parse_hop(text: str) -> tuple[str | None, str, int | None]:
    """A jump host as ssh -J and ProxyJump write it: [user@]host[:port] (or ssh://...), as
    (user or None, host, port or None)."""
    m = re.fullmatch(r"(?:ssh://)?(?:([^@\s]+)@)?(\[[0-9a-fA-F:.]+\]|[^:@\s\[\]/]+)(?::(\d+))?/?",
                     text.strip())
    if not m or (m.group(3) and not 0 < int(m.group(3)) < 65536):
        raise PalletError(f"cannot read the jump host {text!r}: write [user@]host[:port]")
    return m.group(1), m.group(2).strip("[]"), int(m.group(3)) if m.group(3) else None


def _expanded(path: Path, base: Path, depth: int = 0) -> str:
    """The text of a config file with its Include lines replaced by the files they name
    (relative names are under `base`, as OpenSSH reads them), which paramiko does not do."""
    if depth > 16:
        raise PalletError(f"{path}: Include nested more than 16 deep")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise PalletError(f"cannot read the SSH config {path}: {e.strerror}") from None
    out = []
    for line in text.splitlines():
        m = _INCLUDE.match(line)
        if not m:
            out.append(line)
            continue
        for pattern in m.group(1).split():
            pattern = os.path.expanduser(pattern.strip('"'))
            full = pattern if os.path.isabs(pattern) else str(base / pattern)
            for name in sorted(glob.glob(full)):
                if os.path.isfile(name):
                    out.append(_expanded(Path(name), base, depth + 1))
    return "\n".join(out) + "\n"


class SshConfig:
    """The parsed configuration files (none: every lookup gives the defaults)."""

    def __init__(self, files: list[tuple[Path, Path]] = ()):
        self.files = [path for path, _ in files]
        texts = [(path, _expanded(path, base)) for path, base in files]
        self._config = None
        # A config that sets nothing Pallet reads (Debian's /etc/ssh/ssh_config: SendEnv,
        # HashKnownHosts, GSSAPIAuthentication) gives every host the defaults: no paramiko
        # to import for it (this process compiles; the SSH helper imports paramiko).
        if not any(_READ.match(line) for _, text in texts for line in text.splitlines()):
            return
        import paramiko
        self._config = paramiko.SSHConfig()
        for path, text in texts:
            try:
                self._config.parse(io.StringIO(text))
            except paramiko.ConfigParseError as e:
                raise PalletError(f"{path}: {e}") from None

    @classmethod
    def named(cls, option: str | os.PathLike | None = None) -> "SshConfig":
        """The configuration `--ssh-config` names (else `$PALLET_SSH_CONFIG`, else the
        default files that exist)."""
        chosen = option if option is not None else os.environ.get(ENV) or None
        if chosen is not None:
            if str(chosen) == "none":
                return cls()
            path = Path(chosen).expanduser()
            if not path.is_file():
                raise PalletError(f"the SSH config {path} does not exist")
            return cls([(path, Path.home() / ".ssh")])
        found = [(Path.home() / ".ssh" / "config", Path.home() / ".ssh"),
                 (Path("/etc/ssh/ssh_config"), Path("/etc/ssh"))]
        return cls([(p, b) for p, b in found if p.is_file()])

    def lookup(self, alias: str) -> dict:
        if self._config is None:
            return {"hostname": alias}
        try:
            return self._config.lookup(alias)
        except Exception as e:       # a Match exec without invoke, a bad token, ...
            raise PalletError(f"{self.files[0]}: cannot apply it to {alias}: {e}") from None

    def endpoint(self, alias: str, *, port: int | None = None, user: str | None = None,
                 private_key: str | None = None, jump: Endpoint | None = None,
                 use_config_jump: bool = True, depth: int = 0, **fields) -> Endpoint:
        """The endpoint for `alias`: the given values, else the config's, else Pallet's
        defaults. `jump` (given) wins over the config's ProxyJump."""
        found = self.lookup(alias)
        if port is None and "port" in found:
            try:
                port = int(found["port"])
            except ValueError:
                raise PalletError(f"{self.files[0]}: Port {found['port']!r} of {alias} is not a number") from None
        if private_key is None:
            private_key = next((str(p) for p in (Path(f).expanduser() for f in found.get("identityfile", []))
                                if p.is_file()), None)
        if jump is None and use_config_jump and found.get("proxyjump", "none").lower() != "none":
            if depth >= _MAX_JUMPS:
                raise PalletError(f"{self.files[0]}: ProxyJump of {alias} goes through more than "
                                  f"{_MAX_JUMPS} jump hosts (a loop?)")
            jump = self.jump_endpoint(found["proxyjump"], None, private_key, depth + 1)
        known = tuple(str(Path(f).expanduser()) for f in found.get("userknownhostsfile", "").split())
        return Endpoint(host=found.get("hostname", alias), port=port or 22, user=user or found.get("user", "root"),
                        private_key=private_key, jump=jump, known_hosts=known, **fields)

    def jump_endpoint(self, text: str, key: str | None = None, fallback_key: str | None = None,
                      depth: int = 0) -> Endpoint:
        """The jump hosts of `ssh -J TEXT` (a comma list), each looked up in the config; their
        key file: `key` (jump-key, --jump-key), else the config's IdentityFile, else
        `fallback_key` (the node's own, as Pallet's jump hosts take it)."""
        hops = [h for h in text.split(",") if h.strip()]
        if not hops:
            raise PalletError(f"cannot read the jump host {text!r}: write [user@]host[:port]")
        jump = None
        for i, hop in enumerate(hops):
            user, host, port = parse_hop(hop)
            # The first hop takes its own ProxyJump from the config; a later one goes through
            # the hop before it (as `ssh -J a,b` does).
            found = self.endpoint(host, port=port, user=user, private_key=key, jump=jump,
                                  use_config_jump=i == 0, depth=depth)
            if found.private_key is None and fallback_key is not None:
                found = replace(found, private_key=fallback_key)
            jump = found
        return jump
