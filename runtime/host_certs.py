"""OpenSSH host certificates (PROTOCOL.certkeys), read and checked as `ssh` checks them.

A server that has a `HostCertificate` offers it in the key exchange; paramiko parses the key
inside it and checks the exchange's signature with that key, but never looks at the rest.
`parse_certificate` reads the certificate's fields; `certificate_problem` says why it does
not vouch for a host (None when it does): its CA's signature, its type (a host certificate,
not a user one), its principals against the host name, its validity window and its
critical options, in the order and with the rules of OpenSSH 9 (`check_host_cert`): a
certificate without principals is valid for any host name, principals are compared
exactly (no patterns), and a CA signature made with SHA-1 (`ssh-rsa`) is refused, as
OpenSSH's default `CASignatureAlgorithms` refuses it.

Whether the CA is trusted for the host is known_hosts' part (`@cert-authority` lines,
runtime/known_hosts.py).
"""
from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass

__all__ = ["HostCertificate", "parse_certificate", "certificate_problem", "CERT_SUFFIX"]

CERT_SUFFIX = "-cert-v01@openssh.com"
USER_CERT, HOST_CERT = 1, 2
FOREVER = 2**64 - 1
# OpenSSH's default CASignatureAlgorithms (no ssh-rsa: SHA-1).
CA_SIGNATURE_ALGORITHMS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                           "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256")
# How many length-prefixed fields hold the public key, after the nonce, per plain type.
_KEY_FIELDS = {"ssh-ed25519": 1, "ssh-rsa": 2, "ecdsa-sha2-nistp256": 2,
               "ecdsa-sha2-nistp384": 2, "ecdsa-sha2-nistp521": 2}


class CertificateError(ValueError):
    """The bytes are not a certificate this module can read."""


@dataclass(frozen=True)
class HostCertificate:
    keytype: str                  # the plain key type: ssh-ed25519, ssh-rsa, ecdsa-sha2-...
    key_blob: bytes               # the certified public key, as a plain key blob
    serial: int
    cert_type: int                # 1 user, 2 host
    key_id: str
    principals: tuple[str, ...]
    valid_after: int              # seconds since the epoch
    valid_before: int
    critical_options: bytes
    ca_blob: bytes                # the CA's public key blob
    signature: bytes              # the CA's signature, an SSH signature blob
    signed: bytes                 # what the CA signed: the certificate up to its signature


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise CertificateError("the certificate is cut short")
        part = self.data[self.at:self.at + n]
        self.at += n
        return part

    def uint32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def uint64(self) -> int:
        return struct.unpack(">Q", self.take(8))[0]

    def string(self) -> bytes:
        return self.take(self.uint32())

    def raw_string(self) -> bytes:
        """A string field with its length prefix, as it stands in the blob."""
        start = self.at
        self.string()
        return self.data[start:self.at]


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def parse_certificate(blob: bytes) -> HostCertificate:
    """The fields of an OpenSSH certificate blob; CertificateError if it is not one."""
    r = _Reader(blob)
    cert_type_name = r.string().decode("ascii", "replace")
    if not cert_type_name.endswith(CERT_SUFFIX):
        raise CertificateError(f"not a certificate: {cert_type_name}")
    keytype = cert_type_name[:-len(CERT_SUFFIX)]
    if keytype not in _KEY_FIELDS:
        raise CertificateError(f"unsupported certificate type {cert_type_name}")
    r.string()                                          # nonce
    fields = b"".join(r.raw_string() for _ in range(_KEY_FIELDS[keytype]))
    serial, cert_type = r.uint64(), r.uint32()
    key_id = r.string().decode("utf-8", "replace")
    names = _Reader(r.string())
    principals = []
    while names.at < len(names.data):
        principals.append(names.string().decode("utf-8", "replace"))
    valid_after, valid_before = r.uint64(), r.uint64()
    critical = r.string()
    r.string()                                          # extensions
    r.string()                                          # reserved
    ca_blob = r.string()
    signed = blob[:r.at]
    signature = r.string()
    if r.at != len(blob):
        raise CertificateError("bytes after the certificate's signature")
    return HostCertificate(keytype, _ssh_string(keytype.encode()) + fields, serial, cert_type,
                           key_id, tuple(principals), valid_after, valid_before, critical,
                           ca_blob, signature, signed)


def _when(seconds: int) -> str:
    if seconds >= FOREVER:
        return "forever"
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _signature_is_valid(cert: HostCertificate) -> tuple[bool, str]:
    import paramiko
    try:
        ca_type = _Reader(cert.ca_blob).string().decode("ascii", "replace")
        algorithm = _Reader(cert.signature).string().decode("ascii", "replace")
    except CertificateError:
        return False, "its CA key or signature cannot be read"
    if ca_type.endswith(CERT_SUFFIX):
        return False, "its CA key is itself a certificate"
    if algorithm not in CA_SIGNATURE_ALGORITHMS:
        return False, f"its CA signed it with {algorithm}, which OpenSSH refuses by default"
    try:
        ca = paramiko.PKey.from_type_string(ca_type, cert.ca_blob)
        ok = ca.verify_ssh_sig(cert.signed, paramiko.Message(cert.signature))
    except Exception as e:      # an unknown key type, a malformed key or signature
        return False, f"its CA signature cannot be checked ({e or type(e).__name__})"
    return bool(ok), "its CA signature does not verify"


def certificate_problem(cert: HostCertificate, host: str, now: float) -> str | None:
    """Why `cert` does not vouch for `host` (the name connected to, without a port) at
    `now`, in words for a message; None when it does."""
    ok, why = _signature_is_valid(cert)
    if not ok:
        return why
    if cert.cert_type != HOST_CERT:
        return "it is a user certificate, not a host certificate" if cert.cert_type == USER_CERT \
            else f"it is of an unknown certificate type {cert.cert_type}"
    if cert.principals and host.lower() not in cert.principals:
        return (f"it names the principals {', '.join(cert.principals)}, not {host.lower()}")
    if now < cert.valid_after:
        return f"it is not valid before {_when(cert.valid_after)}"
    if now >= cert.valid_before:
        return f"it expired at {_when(cert.valid_before)}"
    if cert.critical_options:
        return "it carries critical options, which a host certificate cannot have"
    return None
