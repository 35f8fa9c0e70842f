"""Logging in over SSH (paramiko): the key file of the endpoint (or the agent's copy of an
encrypted one), else the agent's keys and ~/.ssh/id_*, then a password. A refusal names the
user, every key tried with its fingerprint, and the methods the server accepts.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .known_hosts import fingerprint
from .model import Endpoint, SshOptions, TransportError, transport_error, where_of

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

__all__ = ["authenticate", "DEFAULT_KEY_FILES"]

DEFAULT_KEY_FILES = ("id_ed25519", "id_ecdsa", "id_rsa")


def _load_key_file(path: str, passphrase: str | None, endpoint: Endpoint) -> "paramiko.PKey":
    import paramiko
    file = Path(path).expanduser()
    try:
        # bytes: PKey.from_path hands the password to cryptography, which wants bytes
        return paramiko.PKey.from_path(file, passphrase.encode() if passphrase is not None else None)
    except FileNotFoundError:
        raise transport_error("auth", f"{where_of(endpoint)}: the private key file {file} "
                                      "does not exist") from None
    except PermissionError:
        raise transport_error("auth", f"{where_of(endpoint)}: cannot read the private key "
                                      f"file {file}") from None
    except TypeError:       # cryptography: encrypted and no password, or a password and not
        if passphrase is not None:   # encrypted: `password` is then the login's alone
            return _load_key_file(path, None, endpoint)
        raise transport_error("auth", f"{where_of(endpoint)}: the private key {file} is encrypted; add it to "
                                      "ssh-agent (ssh-add) or give its passphrase as the password") from None
    except (ValueError, paramiko.SSHException) as e:
        why = "wrong passphrase, or not a private key" if passphrase else str(e) or "not a private key"
        raise transport_error("auth", f"{where_of(endpoint)}: cannot load the private key "
                                      f"{file}: {why}") from None


def _agent_key_for(file: Path, agent_keys: list):
    try:
        blob = base64.b64decode(Path(f"{file}.pub").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return next((k for k in agent_keys if k.asbytes() == blob), None)


def _describe_key(key: "paramiko.PKey", origin: str) -> str:
    return f"{origin} ({key.get_name()} {fingerprint(key.asbytes())})"


def authenticate(transport: "paramiko.Transport", endpoint: Endpoint, options: SshOptions) -> None:
    import paramiko
    agent = None
    if options.use_agent and os.environ.get("SSH_AUTH_SOCK"):
        try:
            agent = paramiko.Agent()
        except (paramiko.SSHException, OSError):
            agent = None
    try:
        _authenticate_with(transport, endpoint, options, list(agent.get_keys()) if agent else [])
    finally:
        if agent is not None:
            agent.close()


def _authenticate_with(transport: "paramiko.Transport", endpoint: Endpoint, options: SshOptions,
                       agent_keys: list) -> None:
    import paramiko
    user = endpoint.user
    tried: list[str] = []
    skipped: list[str] = []
    allowed: list[str] | None = None
    keys: list[tuple[paramiko.PKey, str]] = []
    if endpoint.private_key:
        file = Path(endpoint.private_key).expanduser()
        try:
            keys.append((_load_key_file(endpoint.private_key, endpoint.password, endpoint),
                         f"key file {file}"))
        except TransportError:
            # An encrypted key file the agent holds (found by its .pub file) is used as OpenSSH would.
            held = _agent_key_for(file, agent_keys)
            if held is None:
                raise
            keys.append((held, f"ssh-agent key for {file}"))
    else:
        keys += [(k, "ssh-agent key") for k in agent_keys]
        for name in DEFAULT_KEY_FILES:
            path = Path.home() / ".ssh" / name
            if not path.exists():
                continue
            try:
                keys.append((paramiko.PKey.from_path(path, None), f"key file {path}"))
            except Exception:  # encrypted or unreadable: the agent may hold it
                skipped.append(f"{path} (encrypted or unreadable)")

    def fail() -> TransportError:
        nonlocal allowed
        if allowed is None:         # learn what the server accepts, for the message
            try:
                transport.auth_none(user)
                allowed = ["none"]
            except paramiko.BadAuthenticationType as e:
                allowed = list(e.allowed_types)
            except Exception:
                pass
        parts = [f"{where_of(endpoint)} refused to log in {user}"]
        if tried:
            parts.append("tried " + ", ".join(tried))
        else:
            parts.append("no key or password to try (no key file given, "
                         + ("no agent keys, " if options.use_agent else "agent not used, ")
                         + "no ~/.ssh/id_* keys)")
        if skipped:
            parts.append("skipped " + ", ".join(skipped))
        if allowed is not None:
            parts.append("the server accepts: " + ", ".join(allowed))
        return transport_error("auth", "; ".join(parts))

    for key, origin in keys:
        if allowed is not None and "publickey" not in allowed:
            break
        tried.append(f"the {_describe_key(key, origin)}")
        try:
            more = transport.auth_publickey(user, key)
        except paramiko.BadAuthenticationType as e:
            allowed = list(e.allowed_types)
            continue
        except paramiko.AuthenticationException as e:
            if _broken(transport, e):
                raise _broke(transport, endpoint, e) from None
            continue
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _broke(transport, endpoint, e) from None
        if not more:
            return
        allowed = list(more)     # partial success: the server wants another method too
    if endpoint.password is not None and (allowed is None or "password" in allowed
                                          or "keyboard-interactive" in allowed):
        tried.append("a password")
        try:
            more = transport.auth_password(user, endpoint.password)
            if not more:
                return
            allowed = list(more)
        except paramiko.BadAuthenticationType as e:
            allowed = list(e.allowed_types)
        except paramiko.AuthenticationException as e:
            if _broken(transport, e):
                raise _broke(transport, endpoint, e) from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise _broke(transport, endpoint, e) from None
    raise fail()


def _broken(transport: "paramiko.Transport", e: Exception) -> bool:
    """An AuthenticationException that is no refusal: the server took too long to answer, or
    the connection ended."""
    return str(e) == "Authentication timeout." or not transport.is_active()


def _broke(transport: "paramiko.Transport", endpoint: Endpoint, e: Exception) -> TransportError:
    """The connection failed during authentication: a network fault, retried like one."""
    if str(e) == "Authentication timeout.":
        return transport_error("timeout", f"{where_of(endpoint)}: the server did not answer "
                                          f"authentication within {transport.auth_timeout:g} s")
    return transport_error("unreachable", f"{where_of(endpoint)}: the connection broke during "
                                          f"authentication ({e or type(e).__name__})")
