"""Checking a run file outside itself: a header cannot vouch for the file it is part of (an
edited file can carry an edited header), so the signature is checked by ssh-keygen against
the operator's allowed signers, and the payload against the digest the signed header states.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from pallet.compiler.runfile import read_header, stated_size
from pallet.errors import PalletError

NAMESPACE = "pallet-bundle"


def check_payload(path: Path) -> tuple[bool, str, dict[str, str] | None]:
    """(ok, what was found, the header's values) for the file's size and payload sha256."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
            values = read_header(head)
            if values is None:
                return False, "not a Pallet run file", None
            start = int(values["HEADER"])
            want = stated_size(values)
            have = path.stat().st_size
            if have != want:
                what = "truncated" if have < want else "longer than its header says"
                return False, f"{what}: {have} bytes, expected {want}", values
            f.seek(start)
            digest = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise PalletError(f"{path}: cannot read: {exc.strerror}") from None
    if digest.hexdigest() != values["SHA256"]:
        return False, (f"the payload's sha256 is {digest.hexdigest()}, expected "
                       f"{values['SHA256']}: changed or damaged"), values
    return True, f"payload ok ({want} bytes, sha256 {values['SHA256']})", values


def verify_run(path: Path, allowed_signers: Path | None, identity: str | None) -> tuple[bool, str]:
    if not path.is_file():
        raise PalletError(f"{path}: no such file")
    signed = ""
    if allowed_signers is not None:
        ok, message = check_signature(path, allowed_signers, identity)
        if not ok:
            return False, message
        signed = message + "; "
    ok, message, _ = check_payload(path)
    return ok, signed + message


def check_signature(path: Path, allowed_signers: Path, identity: str | None) -> tuple[bool, str]:
    if not shutil.which("ssh-keygen"):
        raise PalletError("checking signatures needs ssh-keygen (Debian: apt-get install openssh-client)")
    if not allowed_signers.is_file():
        raise PalletError(f"--allowed-signers {allowed_signers}: no such file")
    sig = path.with_name(path.name + ".sig")
    if not sig.is_file():
        return False, f"not signed: no {sig.name} beside it"
    if identity is None:
        r = subprocess.run(["ssh-keygen", "-Y", "find-principals", "-s", str(sig), "-f",
                            str(allowed_signers), "-n", NAMESPACE],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        principals = r.stdout.split()
        if r.returncode != 0 or not principals:
            return False, (f"BAD signature: {sig.name} is by no signer in {allowed_signers} "
                           f"(namespace {NAMESPACE})")
        identity = principals[0]
    with open(path, "rb") as data:
        r = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed_signers), "-I",
                            identity, "-n", NAMESPACE, "-s", str(sig)], stdin=data,
                           capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        why = (r.stderr.strip() or r.stdout.strip()).splitlines()
        return False, f"BAD signature ({why[-1] if why else 'exit status ' + str(r.returncode)})"
    return True, f"good signature by {identity}"


def run_file_scripts(path: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """For `pallet check`: a run file's header and the scripts inside it, as (where, name,
    text) to check, and the problems found in the file itself (its payload, its SHA256SUMS
    line)."""
    import gzip
    import io
    import tarfile
    ok, message, values = check_payload(path)
    if values is None:
        return [], [f"{path}: {message}"]
    problems = [] if ok else [f"{path}: {message}"]
    sums = path.parent / "SHA256SUMS"
    if sums.is_file():
        listed = dict(reversed(line.split("  ", 1)) for line in sums.read_text().splitlines()
                      if "  " in line)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if listed.get(path.name) not in (None, digest):
            problems.append(f"{path}: its sha256 is not the one {sums} lists")
        elif path.name not in listed:
            problems.append(f"{path}: not listed in {sums}")
    data = path.read_bytes()
    start, size = int(values["HEADER"]), int(values["SCRIPTS"])
    if len(data) < start:     # cut inside the header: nothing whole to check
        return [], problems
    texts = [(f"{path}:header", "header.sh", data[:start].decode("utf-8", "replace"))]
    if not ok:
        return texts, problems
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data[start:start + size])), mode="r:") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith("/run.sh"):
                extracted = tar.extractfile(member)
                if extracted is not None:
                    texts.append((f"{path}:{member.name}", "run.sh",
                                  extracted.read().decode("utf-8", "replace")))
    return texts, problems
