"""Offline bundles (`pallet bundle`): the NODE.run file on this machine, with real dash,
busybox ash and bash, real shellcheck, ssh-keygen and cloud-init. No packages here (they
need Debian's mirror and a node: tests/test_offline_nodes.py); the bundles write into the
test's own directory."""
from __future__ import annotations

import base64
import gzip
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopback_http import Served

from pallet.compiler.runfile import read_header

ROOT = Path(__file__).resolve().parent.parent


def spec_text(where: Path) -> str:
    return f'''
(def web
  (group-spec "web"
    :phases {{:configure (phase-fn
                          (directory "{where}/etc" :mode "755")
                          (remote-file "{where}/etc/motd" :content "hello from a run file\\n"
                                       :mode "644"))
             :start (phase-fn
                      (exec-checked-script "mark" (echo "started" ">" "{where}/started")))}}))
'''


def pallet(*args, cwd=None, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pallet", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def run(argv, timeout=60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture
def made(tmp_path):
    """A spec whose run file writes under tmp_path/node, bundled into tmp_path/out."""
    where = tmp_path / "node"
    where.mkdir()
    spec = tmp_path / "web.pallet"
    spec.write_text(spec_text(where))
    proc = pallet("bundle", spec, "--os", "debian-12", "--no-packages", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{tmp_path}/out/web.run  {(tmp_path / 'out/web.run').stat().st_size:,} bytes  phases configure start\n"
    return tmp_path / "out" / "web.run", where


def header_of(path: Path) -> str:
    data = path.read_bytes()
    return data[:int(read_header(data)["HEADER"])].decode()


def busybox_path(tmp_path: Path) -> Path:
    """A PATH directory of busybox applets only (and bash for the phases' bash scripts)."""
    bb = shutil.which("busybox")
    assert bb, "busybox is not installed (tests/debian-packages.txt)"
    bin_dir = tmp_path / "busybox-bin"
    bin_dir.mkdir()
    applets = run([bb, "--list"]).stdout.split()
    for applet in applets:
        (bin_dir / applet).symlink_to(bb)
    return bin_dir


def test_header_is_small_and_shellcheck_clean(made, tmp_path):
    path, _ = made
    head = header_of(path)
    assert len(head.encode()) < 16 * 1024
    assert head.startswith("#!/bin/sh\n# Pallet offline bundle for node web (group web, debian-12)")
    script = tmp_path / "header.sh"
    script.write_text(head)
    shellcheck = Path(sys.executable).parent / "shellcheck"
    proc = run([str(shellcheck) if shellcheck.exists() else "shellcheck", "-s", "sh", "-o", "all",
                "-e", "SC2250,SC2248,SC2312,SC2249,SC2292,SC2310,SC2311", str(script)])
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("shell", [["dash"], ["busybox", "sh"], ["bash"]], ids=lambda s: s[0])
def test_the_header_under_each_shell(made, tmp_path, shell):
    path, where = made
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    proc = run([*shell, str(path), "--help"], env=env)
    assert proc.returncode == 0 and "--extract DIR" in proc.stdout
    info = run([*shell, str(path), "--info"], env=env)
    assert info.returncode == 0
    assert "node:     web\n" in info.stdout and "phases:   configure start\n" in info.stdout
    assert "spec:     web.pallet (sha256 " in info.stdout and "created:  pallet 0.1.0" in info.stdout
    check = run([*shell, str(path), "--check"], env=env)
    assert check.returncode == 0 and ": ok: " in check.stderr
    listing = run([*shell, str(path), "--list"], env=env)
    assert listing.returncode == 0
    names = [line.split()[2] for line in listing.stdout.splitlines()]
    assert "configure/run.sh" in names and "start/run.sh" in names and "manifest.json" in names
    first = run([*shell, str(path)], env=env)
    assert first.returncode == 0, first.stderr
    assert re.findall(r"^PALLET-PHASE (\S+)$", first.stdout, re.M) == ["configure", "start"]
    assert "PALLET-SUMMARY ok=0 changed=2 failed=0" in first.stdout
    assert (where / "etc/motd").read_text() == "hello from a run file\n"
    assert (where / "started").read_text() == "started\n"
    second = run([*shell, str(path), "--phase", "configure"], env=env)
    assert second.returncode == 0
    assert re.findall(r"^PALLET-PHASE (\S+)$", second.stdout, re.M) == ["configure"]
    assert "PALLET-SUMMARY ok=2 changed=0 failed=0" in second.stdout
    assert list((tmp_path / "tmp").iterdir()) == []     # the private directory is gone


def test_busybox_tools_only(tmp_path):
    """A busybox system (sh phases, as for Alpine): every tool the header uses is an applet."""
    where = tmp_path / "node"
    where.mkdir()
    spec = tmp_path / "web.pallet"
    spec.write_text(spec_text(where))
    assert pallet("bundle", spec, "--os", "alpine-3.20", "-o", tmp_path / "out").returncode == 0
    env = {"PATH": str(busybox_path(tmp_path)), "TMPDIR": str(tmp_path)}
    path = str(tmp_path / "out/web.run")
    assert run(["sh", path, "--check"], env=env).returncode == 0
    assert run(["sh", path, "--list"], env=env).stdout.count("run.sh") == 2
    proc = run(["sh", path], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "PALLET-SUMMARY ok=0 changed=2 failed=0" in proc.stdout
    assert (where / "etc/motd").read_text() == "hello from a run file\n"


def test_an_edited_truncated_or_extended_file_runs_nothing(made, tmp_path):
    path, where = made
    data = path.read_bytes()
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    edited = bytearray(data)
    edited[-40] ^= 1
    cases = {"edited": bytes(edited), "truncated": data[:-100], "extended": data + b"echo hi\n"}
    messages = {"edited": "the file was changed or damaged; nothing was run",
                "truncated": "truncated: ", "extended": "8 bytes too many (appended to?)"}
    for name, content in cases.items():
        bad = tmp_path / f"{name}.run"
        bad.write_bytes(content)
        for args in ([], ["--check"], ["--list"], ["--extract", str(tmp_path / name)]):
            proc = run(["sh", str(bad), *args], env=env)
            assert proc.returncode == 1, (name, args, proc.stderr)
            assert messages[name] in proc.stderr
            assert "PALLET-" not in proc.stdout
        assert not (where / "etc").exists() and list((tmp_path / "tmp").iterdir()) == []
        assert not (tmp_path / name).exists()
        verify = pallet("verify", bad)
        assert verify.returncode == 1
    assert pallet("check", path.parent).returncode == 0
    path.write_bytes(bytes(edited))
    check = pallet("check", path.parent)
    assert check.returncode == 1 and "changed or damaged" in check.stderr


def test_options_target_keep_quiet_extract_phase(made, tmp_path):
    path, where = made
    target = tmp_path / "unpack-here"
    target.mkdir()
    proc = run(["sh", str(path), "--target", str(target), "--keep", "--quiet"])
    assert proc.returncode == 0 and proc.stdout == ""
    kept = re.search(r"kept (\S+)", proc.stderr).group(1)
    assert Path(kept).parent == target and (Path(kept) / "configure/run.sh").is_file()
    out = tmp_path / "x"
    assert run(["sh", str(path), "--extract", str(out)]).returncode == 0
    assert (out / "FILES").is_file() and (out / "start/run.sh").is_file()
    again = run(["sh", str(path), "--extract", str(out)])
    assert again.returncode == 2 and "is not empty" in again.stderr
    for args, message in ((["--phase", "deploy"], "this bundle has the phases configure start"),
                          (["--bogus"], "unknown option --bogus"), (["--target"], "needs a value"),
                          (["--target", str(tmp_path / "nowhere")], "not a writable directory")):
        proc = run(["sh", str(path), *args])
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a full or noexec /tmp needs root (CI is root)")
def test_a_full_or_noexec_tmpdir_is_passed_over(made, tmp_path):
    path, where = made
    script = (f"set -e; mkdir -p {tmp_path}/noexec {tmp_path}/full; "
              f"mount -t tmpfs -o size=1m,noexec tmpfs {tmp_path}/noexec; "
              f"mount -t tmpfs -o size=8k tmpfs {tmp_path}/full; "
              f"TMPDIR={tmp_path}/noexec sh {path} --phase configure; "
              f"TMPDIR={tmp_path}/full sh {path} --phase configure")
    proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    assert proc.returncode == 0, proc.stderr
    assert f"not unpacking in {tmp_path}/noexec: mounted noexec" in proc.stderr
    assert re.search(rf"not unpacking in {tmp_path}/full: \d+ KiB free, \d+ KiB needed", proc.stderr)
    assert proc.stdout.count("PALLET-SUMMARY") == 2


def _build(spec_dir: Path, out: Path, cwd: Path, umask: int, seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    env.pop("SOURCE_DATE_EPOCH", None)
    code = (f"import os, sys; os.umask({umask}); from pallet.cli import main; "
            f"sys.argv = ['pallet', 'bundle', {str(spec_dir / 'web.pallet')!r}, '--os', 'debian-12', "
            f"'--no-packages', '--cloud-init', '-o', {str(out)!r}]; main()")
    proc = run([sys.executable, "-c", code], cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr


def test_reproducible_whatever_the_clock_umask_seed_or_directory(tmp_path):
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "web.pallet").write_text(spec_text(Path("/srv/app")))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _build(spec_dir, tmp_path / "one", tmp_path / "a", 0o022, "1")
    time.sleep(1.1)
    _build(spec_dir, tmp_path / "two", tmp_path / "b", 0o077, "4242")
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    two = {p.name: p.read_bytes() for p in (tmp_path / "two").iterdir()}
    assert sorted(one) == ["SHA256SUMS", "web.run", "web.user-data"]
    assert one == two
    assert b"/tmp/" not in one["web.run"][:4096] and str(tmp_path).encode() not in one["web.run"]
    # SOURCE_DATE_EPOCH is the one date inside.
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = pallet("bundle", spec_dir / "web.pallet", "--os", "debian-12", "--no-packages",
                  "-o", tmp_path / "three", env=env)
    assert proc.returncode == 0
    assert (tmp_path / "three/web.run").read_bytes() != one["web.run"]


def test_sha256sums_and_check(made):
    path, _ = made
    proc = run(["sha256sum", "-c", "SHA256SUMS"], cwd=path.parent)
    assert proc.returncode == 0 and proc.stdout == "web.run: OK\n"
    check = pallet("check", path.parent)
    assert check.returncode == 0 and check.stdout == "checked 3 scripts: 0 finding(s)\n"


def _keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    keys = []
    for name in ("signer", "other"):
        key = tmp_path / name
        assert run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)]).returncode == 0
        keys.append(key)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'ops@example.org namespaces="pallet-bundle" {(tmp_path / "signer.pub").read_text()}')
    return keys[0], keys[1], allowed


def test_signatures_good_and_bad(tmp_path):
    signer, other, allowed = _keys(tmp_path)
    spec = tmp_path / "web.pallet"
    spec.write_text(spec_text(Path("/srv/app")))
    out = tmp_path / "out"
    proc = pallet("bundle", spec, "--os", "debian-12", "--no-packages", "--sign", signer, "-o", out)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("signed")
    run_file, sig = out / "web.run", out / "web.run.sig"
    assert sig.read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    assert "web.run.sig" in (out / "SHA256SUMS").read_text()

    def ssh_verify(namespace="pallet-bundle", signers=allowed):
        with open(run_file, "rb") as data:
            return subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I",
                                   "ops@example.org", "-n", namespace, "-s", str(sig)],
                                  stdin=data, capture_output=True, text=True, timeout=60)
    assert ssh_verify().returncode == 0
    good = pallet("verify", run_file, "--allowed-signers", allowed)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(f"{run_file}: good signature by ops@example.org; payload ok (")
    assert ssh_verify(namespace="file").returncode != 0
    # Another signer's key, the file signed in another namespace, an edited file: all bad.
    strangers = tmp_path / "strangers"
    strangers.write_text(f'ops@example.org {(tmp_path / "other.pub").read_text()}')
    assert ssh_verify(signers=strangers).returncode != 0
    bad = pallet("verify", run_file, "--allowed-signers", strangers)
    assert bad.returncode == 1 and "BAD signature" in bad.stderr
    original = run_file.read_bytes()
    run_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    assert ssh_verify().returncode == 255
    edited = pallet("verify", run_file, "--allowed-signers", allowed)
    assert edited.returncode == 1 and "BAD signature" in edited.stderr
    run_file.write_bytes(original)
    sig.unlink()
    assert run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(signer), "-n", "file", str(run_file)]).returncode == 0
    wrong = pallet("verify", run_file, "--allowed-signers", allowed)
    assert wrong.returncode == 1 and "BAD signature" in wrong.stderr
    sig.unlink()
    unsigned = pallet("verify", run_file, "--allowed-signers", allowed)
    assert unsigned.returncode == 1 and "not signed" in unsigned.stderr


def test_bad_input_is_refused_and_nothing_is_written(tmp_path):
    spec = tmp_path / "web.pallet"
    spec.write_text(spec_text(Path("/srv/app")))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me\n")
    cases = [
        (["-o", foreign], "is not a Pallet bundle directory"),
        (["--sign", tmp_path / "no-such-key"], "no such key file"),
        (["--sign", spec], "ssh-keygen cannot sign with it"),
        (["--os", "windows"], "runs PowerShell"),
    ]
    for args, message in cases:
        extra = [] if "--os" in args else ["--os", "debian-12"]
        out = [] if "-o" in args else ["-o", tmp_path / "out"]
        proc = pallet("bundle", spec, *extra, "--no-packages", *out, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "out").exists()
    assert (foreign / "notes.txt").read_text() == "keep me\n" and len(list(foreign.iterdir())) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_a_state_file_that_is_not_one(tmp_path):
    spec = tmp_path / "web.pallet"
    spec.write_text('(def web (group-spec "web" :phases {:configure (phase-fn (package "jq"))}))\n')
    for content in ("hello\n", "pallet-state 1\n!!!not base64\n"):
        state = tmp_path / "node.state"
        state.write_text(content)
        proc = pallet("bundle", spec, "--state", state, "-o", tmp_path / "out")
        assert proc.returncode == 2
        assert proc.stderr.startswith(f"{state}:1:1: ") and "pallet state-script" in proc.stderr
        assert not (tmp_path / "out").exists()


def test_packages_for_an_os_that_cannot_embed_them(tmp_path):
    spec = tmp_path / "web.pallet"
    spec.write_text('(def web\n  (group-spec "web"\n    :phases {:configure (phase-fn (package "jq"))}))\n')
    for os_name, packager in (("rocky-9", "dnf"), ("alpine-3.20", "apk")):
        proc = pallet("bundle", spec, "--os", os_name, "-o", tmp_path / "out")
        assert proc.returncode == 2
        assert proc.stderr.startswith(f"{spec}:3:35: node web: {os_name} installs packages with "
                                      f"{packager}, and only apt (Debian, Ubuntu)"), proc.stderr
        assert '(package "jq")' in proc.stderr and "^" in proc.stderr
        assert not (tmp_path / "out").exists()
    # Without packages the same spec bundles (the node has a mirror of its own).
    assert pallet("bundle", spec, "--os", "rocky-9", "--no-packages", "-o", tmp_path / "out").returncode == 0
    # apt, but not a release local nodes run: no installed state is known here.
    for os_name in ("ubuntu-24.04", "debian-11"):
        proc = pallet("bundle", spec, "--os", os_name, "-o", tmp_path / "out2")
        assert proc.returncode == 2 and f"no installed state of {os_name}" in proc.stderr


def test_cloud_init_user_data(made, tmp_path):
    spec = tmp_path / "web.pallet"
    out = tmp_path / "ci"
    proc = pallet("bundle", spec, "--os", "debian-12", "--no-packages", "--cloud-init", "-o", out)
    assert proc.returncode == 0, proc.stderr
    user_data = out / "web.user-data"
    text = user_data.read_text()
    assert text.startswith("#cloud-config\n")
    packed = re.search(r"content: (\S+)", text).group(1)
    assert gzip.decompress(base64.b64decode(packed)) == (out / "web.run").read_bytes()
    cloud_init = shutil.which("cloud-init")
    assert cloud_init, "cloud-init is not installed (tests/debian-packages.txt)"
    schema = run([cloud_init, "schema", "--config-file", str(user_data)])
    assert schema.returncode == 0, schema.stdout + schema.stderr
    assert schema.stdout.startswith("Valid cloud-config")
    broken = tmp_path / "broken.user-data"     # the check is a real one
    broken.write_text(text.replace("permissions: '0700'", "permissions: [0700]"))
    assert run([cloud_init, "schema", "--config-file", str(broken)]).returncode != 0
    big = pallet("bundle", spec, "--os", "debian-12", "--no-packages", "--cloud-init",
                 "--max-user-data", "1000", "-o", tmp_path / "ci2")
    assert big.returncode == 2 and "over --max-user-data 1,000" in big.stderr
    assert not (tmp_path / "ci2").exists()


def test_state_script_output_reads_back(tmp_path):
    from pallet.runtime.node_state import state_from_text
    script = pallet("state-script")
    assert script.returncode == 0 and script.stdout.startswith("#!/bin/sh\n")
    proc = run(["sh", "-c", script.stdout])
    assert proc.returncode == 0, proc.stderr
    state = state_from_text(proc.stdout, "here")
    assert state.packager == "apt" and state.file("var/lib/dpkg/status")
    assert not any(name.startswith("etc/apt/auth.conf") for name, _ in state.files)


# ---- remote-file :url: downloaded when bundling, carried, installed from the file ------------

@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = Served(root)
    yield root, server
    server.stop()


def _download_spec(where: Path, url: str, sha256: str, sha512: str) -> str:
    return f'''
(def web
  (group-spec "web"
    :phases {{:configure (phase-fn
                          (directory "{where}/opt" :mode "755")
                          (remote-file "{where}/opt/tool.tar" :url "{url}/tool.tar"
                                       :sha256 "{sha256}" :mode "644")
                          (remote-file "{where}/opt/notes.txt" :url "{url}/notes.txt"
                                       :sha512 "{sha512}"))}}))
'''


def test_remote_file_url_is_carried_and_installed_from_the_file(tmp_path, served):
    import hashlib
    root, server = served
    tool = os.urandom(70_000)                 # fresh content: not in any cache yet
    notes = b"notes " + os.urandom(8).hex().encode() + b"\n"
    (root / "tool.tar").write_bytes(tool)
    (root / "notes.txt").write_bytes(notes)
    where = tmp_path / "node"
    where.mkdir()
    spec = tmp_path / "web.pallet"
    spec.write_text(_download_spec(where, server.url, hashlib.sha256(tool).hexdigest(),
                                   hashlib.sha512(notes).hexdigest()))
    env = {**os.environ, "PALLET_CACHE": str(tmp_path / "cache")}
    proc = pallet("bundle", spec, "--os", "debian-12", "-o", tmp_path / "out", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("phases configure, 2 downloads\n"), proc.stdout
    assert sorted(server.asked) == ["/notes.txt", "/tool.tar"]
    run_file = tmp_path / "out/web.run"
    # Cached by content: a second bundle (another directory) asks the server for nothing.
    again = pallet("bundle", spec, "--os", "debian-12", "-o", tmp_path / "again", env=env)
    assert again.returncode == 0 and len(server.asked) == 2
    assert (tmp_path / "again/web.run").read_bytes() == run_file.read_bytes()
    server.stop()                             # from here on, nothing answers at that URL
    info = run(["sh", str(run_file), "--info"]).stdout
    assert f"downloads {len(tool) + len(notes)} bytes (2 files)" in info
    listing = run(["sh", str(run_file), "--list"]).stdout
    assert f"{hashlib.sha256(tool).hexdigest()}  {len(tool):>10}  downloads/{hashlib.sha256(tool).hexdigest()}" in listing
    extracted = tmp_path / "x"
    assert run(["sh", str(run_file), "--extract", str(extracted)]).returncode == 0
    assert (extracted / "downloads" / hashlib.sha256(notes).hexdigest()).read_bytes() == notes
    # The script takes the files from the run file: no curl or wget is reached for.
    assert "curl" not in (extracted / "configure/run.sh").read_text()
    (tmp_path / "tmp").mkdir()
    run_env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    first = run(["sh", str(run_file)], env=run_env)
    assert first.returncode == 0, first.stderr
    assert "PALLET-SUMMARY ok=0 changed=3 failed=0" in first.stdout
    assert (where / "opt/tool.tar").read_bytes() == tool
    assert (where / "opt/notes.txt").read_bytes() == notes
    second = run(["sh", str(run_file)], env=run_env)
    assert second.returncode == 0 and "PALLET-SUMMARY ok=3 changed=0 failed=0" in second.stdout
    # Run on its own, out of --extract, the script refuses rather than reach the network.
    (where / "opt/tool.tar").write_bytes(b"changed by hand\n")
    alone = run(["bash", "./run.sh"], cwd=extracted / "configure",
                env={**os.environ, "PALLET_BUNDLE_DIR": str(extracted / "configure")})
    assert alone.returncode != 0
    assert "this script belongs to an offline bundle: run it as sh NODE.run" in alone.stderr


def test_remote_file_url_bad_checksum_unreachable_or_missing(tmp_path, served):
    import hashlib
    root, server = served
    (root / "tool.tar").write_bytes(b"the real content\n")
    where = tmp_path / "node"
    spec = tmp_path / "web.pallet"
    env = {**os.environ, "PALLET_CACHE": str(tmp_path / "cache")}
    closed = Served(root)
    closed.stop()                              # a loopback port where nothing listens
    cases = [
        (server.url, "0" * 64, "the downloaded file's sha256 is "
         f"{hashlib.sha256(b'the real content' + bytes([10])).hexdigest()}, not the :sha256 given"),
        (closed.url, "0" * 64, "cannot download it when bundling"),
        (server.url + "/nothing-here", "0" * 64, "cannot download it when bundling (HTTP 404 "),
    ]
    for url, sha256, message in cases:
        spec.write_text(f'(def web (group-spec "web" :phases {{:configure (phase-fn\n'
                        f'  (remote-file "{where}/f" :url "{url}/tool.tar" :sha256 "{sha256}"))}}))\n')
        proc = pallet("bundle", spec, "--os", "debian-12", "-o", tmp_path / "out", env=env)
        assert proc.returncode == 2, (url, proc.stdout, proc.stderr)
        assert f"\n{spec}:2:3: remote-file :url {url}/tool.tar: " in "\n" + proc.stderr, proc.stderr
        assert message in proc.stderr and "^" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "out").exists()
    assert not [p for p in (tmp_path / "cache/downloads/sha256").iterdir()]   # nothing half-kept
    # No checksum at all: a located error saying to give one.
    spec.write_text(f'(def web (group-spec "web" :phases {{:configure (phase-fn\n'
                    f'  (remote-file "{where}/f" :url "{server.url}/tool.tar"))}}))\n')
    proc = pallet("bundle", spec, "--os", "debian-12", "-o", tmp_path / "out", env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{spec}:2:3: remote-file :url needs :sha256 (64 hex digits) "
                                  "or :sha512 (128)"), proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_cut_inside_its_header_runs_nothing(made, tmp_path):
    path, where = made
    data = path.read_bytes()
    size = int(read_header(data)["HEADER"])
    for cut in (400, 2000, size // 2, size - 1):
        bad = tmp_path / f"cut{cut}.run"
        bad.write_bytes(data[:cut])
        proc = run(["sh", str(bad)])
        assert proc.returncode == 1, (cut, proc.stderr)
        assert proc.stderr == f"{bad}: truncated inside its header; nothing was run\n"
        assert pallet("verify", bad).returncode == 1
    assert not (where / "etc").exists()
    # pallet check reports the cut file, and does not shellcheck half a header.
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "web.run").write_bytes(data[:size // 2])
    check = pallet("check", cut)
    assert check.returncode == 1 and "truncated: " in check.stderr and "SC1" not in check.stderr


def test_an_output_directory_that_cannot_be_made(tmp_path):
    spec = tmp_path / "web.pallet"
    spec.write_text(spec_text(Path("/srv/app")))
    (tmp_path / "afile").write_text("a file\n")
    for out, message in ((tmp_path / "afile", "exists and is not a directory"),
                         (tmp_path / "afile/out", "cannot make the output directory there"),
                         ("/proc/pallet-out", "cannot make the output directory there")):
        proc = pallet("bundle", spec, "--os", "debian-12", "--no-packages", "-o", out)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "afile").read_text() == "a file\n"
    # A `pallet compile` output directory is not a bundle directory either, and stays as it was.
    compiled = tmp_path / "compiled"
    assert pallet("compile", spec, "--os", "debian-12", "-o", compiled).returncode == 0
    before = sorted(p.relative_to(compiled) for p in compiled.rglob("*"))
    proc = pallet("bundle", spec, "--os", "debian-12", "--no-packages", "-o", compiled)
    assert proc.returncode == 2 and "is not a Pallet bundle directory" in proc.stderr
    assert sorted(p.relative_to(compiled) for p in compiled.rglob("*")) == before


def _state_text(files: dict[str, bytes]) -> str:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return "pallet-state 1\n" + base64.encodebytes(gzip.compress(buf.getvalue(), mtime=0)).decode()


def test_ubuntu_packages_are_resolved_from_the_nodes_own_sources_or_refused(tmp_path):
    """No Ubuntu archive is used here: an Ubuntu state is read and apt is pointed at the
    sources it names (a loopback port where nothing answers), and fails clearly; without a
    state, --os of a release local nodes do not run (ubuntu-24.04) says what to give.
    (Real Ubuntu 22.04 packages on a node: tests/test_offline_nodes.py.)"""
    closed = Served(tmp_path)
    closed.stop()                              # a loopback port where nothing listens
    spec = tmp_path / "web.pallet"
    spec.write_text('(def web (group-spec "web" :phases {:configure (phase-fn (package "jq"))}))\n')
    state = tmp_path / "ubuntu.state"
    state.write_text(_state_text({
        "etc/os-release": b'NAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\nID=ubuntu\n',
        "etc/apt/sources.list": f"deb {closed.url}/ubuntu jammy main\n".encode(),
        "var/lib/dpkg/status": b"",
        "pallet-state": b"arch=amd64\npackager=apt\nhostname=u1\n"}))
    env = {**os.environ, "PALLET_CACHE": str(tmp_path / "cache"), "PALLET_APT_LISTS_MAX_AGE": "0"}
    proc = pallet("bundle", spec, "--state", state, "-o", tmp_path / "out", env=env)
    assert proc.returncode == 2, proc.stderr
    assert f"apt-get update for ubuntu-22.04 ({state}) failed:" in proc.stderr
    assert closed.url.removeprefix("http://") in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = pallet("bundle", spec, "--os", "ubuntu-24.04", "-o", tmp_path / "out", env=env)
    assert proc.returncode == 2
    assert ("node web: no installed state of ubuntu-24.04 is known here (only Debian 12's and "
            "Ubuntu 22.04's" in proc.stderr) and "--state FILE from `pallet state-script`" in proc.stderr
    assert not (tmp_path / "out").exists()
    # Without packages an Ubuntu bundle is made (its scripts are compiled for Ubuntu).
    proc = pallet("bundle", spec, "--os", "ubuntu-22.04", "--no-packages", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    info = run(["sh", str(tmp_path / "out/web.run"), "--info"]).stdout
    assert "os:       ubuntu-22.04\n" in info
