"""The core actions, run for real: scripts rendered for debian-12 run with bash and dash against
a temporary directory, twice (the second run must change nothing), and every OS family's
scripts pass shellcheck (or the PowerShell parser)."""
from __future__ import annotations

import getpass
import hashlib
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

from pallet.checks import format_findings, parse_powershell, shellcheck
from pallet.compiler.model import Action
from pallet.crates.actions import compile_phase_script, core_library, render_actions
from pallet.errors import PalletError, Source, Span
from pallet.grammar.forms import Keyword
from pallet.grammar.reader import read
from pallet.stevedore import ScriptForms, target_for
from pallet.stevedore.lower import literal_resolver

ROOT = Path(__file__).resolve().parent.parent
SPEC = Source("spec.pallet", "\n".join(f"(action-{n})" for n in range(1, 60)))
EXE = {"bash": "bash", "sh": "dash"}
ACTION_LINE = re.compile(r"PALLET-ACTION (\d+) (ok|changed|failed) (.*)\Z")


def at(line: int) -> Span:
    return Span(SPEC, line, 1)


def script(text: str, **values) -> ScriptForms:
    """Script forms; `~name` reaches `values`, as spec code's values would."""
    def resolve(form):
        return values[form.name] if getattr(form, "name", None) in values else literal_resolver(form)
    return ScriptForms(read(text, "body.pallet"), resolve)


def act(kind: str, *args, line: int = 1, label: str = "", **options) -> Action:
    opts = tuple((k.replace("_", "-"), v) for k, v in options.items())
    first = args[0] if args and isinstance(args[0], str) else ""
    return Action(kind, args, opts, at(line), label or f"{kind} {first}".strip())


def local_files(root: Path):
    def read_file(path: str) -> bytes:
        return (root / path).read_bytes()
    return read_file


def bundle(actions, shell: str, bundle_dir: Path, read_file=None, os_name: str = "debian-12"):
    target = target_for(os_name, shell)
    rendered = render_actions(actions, target, read_file or (lambda p: b""))
    text = compile_phase_script(rendered, target)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    (bundle_dir / "run.sh").write_text(text)
    for name, data in rendered.files:
        (bundle_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle_dir / name).write_bytes(data)
    return rendered, text


def run(shell: str, bundle_dir: Path, cwd: Path) -> tuple[int, list[tuple[int, str, str]], str, str]:
    """Run the bundle from another directory (it finds its files from $0). What the node keeps
    (records of the files Pallet wrote, backups, raised flags) goes to `state` beside the
    bundle, not /var/lib/pallet."""
    proc = subprocess.run([EXE[shell], str(bundle_dir / "run.sh")], capture_output=True, text=True,
                          cwd=cwd, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
                               "PALLET_STATE_DIR": str(bundle_dir.parent / "state")})
    statuses = [(int(m[1]), m[2], m[3]) for line in proc.stdout.splitlines()
                if (m := ACTION_LINE.match(line))]
    summary = [line for line in proc.stdout.splitlines() if line.startswith("PALLET-SUMMARY ")]
    assert len(summary) == 1, proc.stdout + proc.stderr
    return proc.returncode, statuses, summary[0], proc.stderr


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".pallet.*")]


# ---- running the scripts -----------------------------------------------------------------


@pytest.fixture(params=["bash", "sh"])
def shell(request):
    return request.param


def file_actions(root: Path) -> list[Action]:
    # A name with a space, quotes and a dollar: no value may be split or expanded.
    odd = root / "odd $HOME 'dir'"
    me = getpass.getuser()
    (root / "local.conf").write_bytes(b"from a local file\n")
    (root / "motd.j2").write_text("Welcome to {{ host }}\n{% for p in ports %}port {{ p }}\n{% endfor %}")
    (root / "edit.conf").write_text("port=80\nname=x\n")
    return [
        act("directory", str(odd), mode=750, line=3),
        act("file", str(odd / "empty"), owner=me, mode="0640", line=4),
        act("directory", str(root / "tree" / "deep"), line=5),
        act("symbolic-link", str(odd / "empty"), str(root / "link"), line=6),
        act("remote-file", str(root / "content.txt"), content="line 1\n$x 'q' \"d\"\n", mode=600,
            overwrite_changes=True, line=7),
        act("remote-file", str(odd / "copy.conf"), local_file="local.conf", line=8),
        act("remote-file", str(root / "motd"), template="motd.j2",
            values={Keyword("host"): "web-1", Keyword("ports"): (80, 443)}, line=9),
        act("sed", str(root / "edit.conf"), {"^port=[0-9]+$": "port=8080"}, line=10),
        act("exec-script", script("(touch ~p)", p=str(root / "created")),
            creates=str(root / "created"), line=11),
        act("exec-checked-script", "marker", script('(printf "ran\\n" >> ~p)', p=str(root / "ran")),
            unless=script("(file-exists? ~p)", p=str(root / "ran")), line=12),
    ]


def test_first_run_changes_everything_second_run_nothing(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    actions = file_actions(root)
    bundle(actions, shell, tmp_path / "bundle", local_files(root))

    code, statuses, summary, err = run(shell, tmp_path / "bundle", root)
    assert code == 0, err
    assert [(n, s) for n, s, _ in statuses] == [(n, "changed") for n in range(1, len(actions) + 1)]
    assert [label for _, _, label in statuses] == [a.label for a in actions]
    assert summary == f"PALLET-SUMMARY ok=0 changed={len(actions)} failed=0"

    odd = root / "odd $HOME 'dir'"
    assert oct((odd).stat().st_mode & 0o7777) == "0o750"
    assert oct((odd / "empty").stat().st_mode & 0o7777) == "0o640"
    assert (root / "tree" / "deep").is_dir()
    assert os.readlink(root / "link") == str(odd / "empty")
    assert (root / "content.txt").read_text() == "line 1\n$x 'q' \"d\"\n"
    assert oct((root / "content.txt").stat().st_mode & 0o7777) == "0o600"
    assert (odd / "copy.conf").read_bytes() == b"from a local file\n"
    assert (root / "motd").read_text() == "Welcome to web-1\nport 80\nport 443\n"
    assert (root / "edit.conf").read_text() == "port=8080\nname=x\n"
    assert (root / "created").exists() and (root / "ran").read_text() == "ran\n"
    assert leftovers(root) == []

    code, statuses, summary, err = run(shell, tmp_path / "bundle", root)
    assert code == 0, err
    assert [(n, s) for n, s, _ in statuses] == [(n, "ok") for n in range(1, len(actions) + 1)]
    assert summary == f"PALLET-SUMMARY ok={len(actions)} changed=0 failed=0"
    assert (root / "ran").read_text() == "ran\n"
    assert leftovers(root) == []


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_remote_file_downloads_and_checks_the_checksum(tmp_path, shell, algorithm):
    """:url with :sha256 or :sha512 (Apache publishes .sha512 files): downloaded (curl, here
    from a file:// URL), checked, installed; a second run changes nothing; the record is the
    checksum given, so an edit is caught by the drift guard; a wrong checksum fails the step
    and leaves the file and no temporary file behind."""
    root = tmp_path / "root"
    root.mkdir()
    release = tmp_path / "release.tar.gz"
    release.write_bytes(b"not really a tarball\n" * 100)
    digest = hashlib.new(algorithm, release.read_bytes()).hexdigest()
    dest = root / "cache" / "release.tar.gz"
    (root / "cache").mkdir()
    bundle([act("remote-file", str(dest), url=release.as_uri(), **{algorithm: digest.upper()})],
           shell, tmp_path / "bundle")
    for expect in ("changed", "ok"):
        code, statuses, _, err = run(shell, tmp_path / "bundle", root)
        assert code == 0 and [s for _, s, _ in statuses] == [expect], err
    assert dest.read_bytes() == release.read_bytes()
    assert record_of(tmp_path, dest).read_text() == f"{digest}  {dest}\n"
    dest.write_bytes(b"edited\n")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 1 and "was changed outside Pallet" in err and dest.read_bytes() == b"edited\n"

    wrong = hashlib.new(algorithm, b"something else").hexdigest()
    other = root / "cache" / "other.tar.gz"
    bundle([act("remote-file", str(other), url=release.as_uri(), **{algorithm: wrong})],
           shell, tmp_path / "bundle2")
    code, statuses, _, err = run(shell, tmp_path / "bundle2", root)
    assert code == 1 and [s for _, s, _ in statuses] == ["failed"], err
    assert f"pallet: {release.as_uri()} does not have the checksum {wrong}" in err
    assert not other.exists() and leftovers(root) == []


def tools_dir(folder: Path, log: Path | None = None, leave_out: tuple[str, ...] = ()) -> Path:
    """A PATH of one directory: every command of the current PATH but `leave_out`; with
    `log`, each one (but the shells) writes its name there before it runs."""
    folder.mkdir()
    for entry in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        if not Path(entry).is_dir():
            continue
        for exe in sorted(Path(entry).iterdir()):
            tool = folder / exe.name
            if exe.name in leave_out or tool.exists() or not os.access(exe, os.X_OK):
                continue
            if log is None or exe.name in ("bash", "dash", "sh"):
                tool.symlink_to(exe)
            else:
                tool.write_text(f'#!/bin/sh\nprintf "%s\\n" {exe.name} >> {log}\nexec {exe} "$@"\n')
                tool.chmod(0o755)
    return folder


def test_a_second_run_starts_few_processes(tmp_path, shell, monkeypatch):
    """Nothing to do costs about what a hand-written script would: one stat per path for
    owner, group and mode, one cmp per file (none in bash, which compares small files
    itself), readlink for a link, grep for sed; no cut, tr, dirname, id or sha256sum."""
    root = tmp_path / "root"
    root.mkdir()
    actions = file_actions(root)
    bundle(actions, shell, tmp_path / "bundle", local_files(root))
    assert run(shell, tmp_path / "bundle", root)[0] == 0
    log = tmp_path / "commands"
    monkeypatch.setenv("PATH", str(tools_dir(tmp_path / "bin", log)))
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and {s for _, s, _ in statuses} == {"ok"}, err
    # sed's regex still matches the line it wrote: it edits a temporary copy and compares.
    compares = [] if shell == "bash" else ["cmp"] * 4
    assert sorted(log.read_text().split()) == sorted(
        ["stat", "stat", "readlink", "stat", "grep", "mktemp", "sed", "rm", *compares])


def test_remote_file_without_cmp_compares_checksums(tmp_path, shell, monkeypatch):
    """cmp (diffutils) is not on every node: then the sha256 of the file is compared."""
    root = tmp_path / "root"
    root.mkdir()
    bundle([act("remote-file", str(root / "f"), content="data\n", mode=600,
                overwrite_changes=True)], shell, tmp_path / "bundle")
    tools = tools_dir(tmp_path / "bin", leave_out=("cmp",))
    assert not (tools / "cmp").exists()
    monkeypatch.setenv("PATH", str(tools))
    for content, expect in ((None, "changed"), (None, "ok"), ("edited\n", "changed"),
                            ("data\n", "ok")):
        if content:
            (root / "f").write_text(content)
        code, statuses, _, err = run(shell, tmp_path / "bundle", root)
        assert code == 0 and statuses[0][1] == expect, err
    assert (root / "f").read_text() == "data\n" and leftovers(root) == []


def test_changes_on_the_node_are_put_right(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    actions = file_actions(root)
    bundle(actions, shell, tmp_path / "bundle", local_files(root))
    assert run(shell, tmp_path / "bundle", root)[0] == 0
    # Drift: content edited, mode changed, link repointed, line reverted.
    (root / "content.txt").write_text("edited\n")
    os.chmod(root / "odd $HOME 'dir'" / "empty", 0o600)
    os.remove(root / "link")
    os.symlink("/elsewhere", root / "link")
    (root / "edit.conf").write_text("port=81\nname=x\n")
    code, statuses, summary, err = run(shell, tmp_path / "bundle", root)
    assert code == 0, err
    changed = {n for n, s, _ in statuses if s == "changed"}
    assert changed == {2, 4, 5, 8}, statuses
    assert (root / "content.txt").read_text() == "line 1\n$x 'q' \"d\"\n"
    assert os.readlink(root / "link") == str(root / "odd $HOME 'dir'" / "empty")
    assert (root / "edit.conf").read_text() == "port=8080\nname=x\n"


def test_delete_and_touch(tmp_path, shell):
    root = tmp_path / "root"
    (root / "gone-dir" / "sub").mkdir(parents=True)
    (root / "gone").write_text("x")
    (root / "gone.conf").write_text("x")
    os.symlink("gone", root / "gone-link")
    actions = [act("file", str(root / "gone"), action=Keyword("delete")),
               act("directory", str(root / "gone-dir"), action=Keyword("delete")),
               act("remote-file", str(root / "gone.conf"), action=Keyword("delete")),
               act("symbolic-link", "gone", str(root / "gone-link"), action=Keyword("delete")),
               act("file", str(root / "stamp"), action=Keyword("touch"))]
    bundle(actions, shell, tmp_path / "bundle")
    _, statuses, _, _ = run(shell, tmp_path / "bundle", root)
    assert [s for _, s, _ in statuses] == ["changed"] * 5
    assert sorted(p.name for p in root.iterdir()) == ["stamp"]
    _, statuses, _, _ = run(shell, tmp_path / "bundle", root)
    assert [s for _, s, _ in statuses] == ["ok", "ok", "ok", "ok", "changed"]  # touch touches


def test_sed_acts_only_when_a_line_matches(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    conf = root / "app.conf"
    conf.write_text("a=1\nb=2\n")
    os.chmod(conf, 0o604)
    actions = [act("sed", str(conf), {"^c=.*": "c=3"}, line=2),
               act("sed", str(conf), {"^a=(.*)$": "a=\\1\\1", "/": "|"}, line=3),
               act("sed", str(conf), {"^b=2$": "b=/2/"}, separator="#", line=4)]
    bundle(actions, shell, tmp_path / "bundle")
    _, statuses, _, _ = run(shell, tmp_path / "bundle", root)
    assert [s for _, s, _ in statuses] == ["ok", "changed", "changed"]
    assert conf.read_text() == "a=11\nb=/2/\n"
    assert oct(conf.stat().st_mode & 0o7777) == "0o604"  # the file keeps its mode
    assert leftovers(root) == []


def test_failing_checked_script_stops_with_its_label_and_location(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    actions = [act("file", str(root / "first"), line=2),
               act("exec-checked-script", "break things",
                   script('(println "about to fail") (false) (touch ~p)', p=str(root / "never")),
                   line=7, label="exec-checked-script break things"),
               act("file", str(root / "after"), line=9)]
    _, text = bundle(actions, shell, tmp_path / "bundle")
    assert "# spec.pallet:7:1 exec-checked-script break things" in text
    code, statuses, summary, err = run(shell, tmp_path / "bundle", root)
    assert code != 0
    assert statuses == [(1, "changed", "file " + str(root / "first")),
                        (2, "failed", "exec-checked-script break things")]
    assert summary == "PALLET-SUMMARY ok=0 changed=1 failed=1"
    assert "spec.pallet:7:1: action 2 failed (exit status 1): exec-checked-script break things" in err
    assert not (root / "never").exists() and not (root / "after").exists()


def test_the_output_of_an_unless_test_stays_out_of_the_status_lines(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    actions = [act("exec-checked-script", "skipped", script("(touch ~p)", p=str(root / "never")),
                   unless=script('(echo "noise from a passing test")'), line=2,
                   label="exec-checked-script skipped"),
               act("exec-checked-script", "runs", script("(touch ~p)", p=str(root / "ran")),
                   unless=script('(chain-and (pipe (echo "a") (cat)) (echo "b" "2>&1") (false))'),
                   line=3, label="exec-checked-script runs")]
    bundle(actions, shell, tmp_path / "bundle")
    proc = subprocess.run([EXE[shell], str(tmp_path / "bundle" / "run.sh")], capture_output=True,
                          text=True, cwd=root, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["PALLET-ACTION 1 ok exec-checked-script skipped",
                                        "PALLET-ACTION 2 changed exec-checked-script runs",
                                        "PALLET-SUMMARY ok=1 changed=1 failed=0"]
    assert (root / "ran").exists() and not (root / "never").exists()


def test_failed_remote_file_leaves_no_temporary_file(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    rendered, _ = bundle([act("remote-file", str(root / "f"), content="data\n")], shell,
                         tmp_path / "bundle")
    (tmp_path / "bundle" / rendered.files[0][0]).unlink()  # the copy into the temp file fails
    code, statuses, _, _ = run(shell, tmp_path / "bundle", root)
    assert code != 0 and statuses[0][1] == "failed"
    assert leftovers(root) == [] and not (root / "f").exists()


# ---- change tracking: the drift guard, backups, diffs, flags ----------------------------------


def record_of(tmp_path: Path, path: Path) -> Path:
    """Where the node keeps the sha256 of what Pallet wrote to `path` (run() sets the state)."""
    return Path(str(tmp_path / "state" / "files") + str(path) + ".sha256")


def backups_of(tmp_path: Path, path: Path) -> dict[str, str]:
    base = Path(str(tmp_path / "state" / "backups") + str(path))
    return {p.name[len(base.name):]: p.read_text() for p in sorted(base.parent.glob(base.name + ".*"))}


def test_a_file_edited_outside_pallet_is_not_replaced_unless_told(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    conf = root / "app.conf"
    bundle([act("remote-file", str(conf), content="port=80\n", line=4)], shell, tmp_path / "bundle")
    assert run(shell, tmp_path / "bundle", root)[1][0][1] == "changed"
    sha = hashlib.sha256(b"port=80\n").hexdigest()
    assert record_of(tmp_path, conf).read_text() == f"{sha}  {conf}\n"
    assert list(root.iterdir()) == [conf]  # nothing beside the file

    conf.write_text("port=81  # by hand\n")
    code, statuses, summary, err = run(shell, tmp_path / "bundle", root)
    assert code == 1 and statuses == [(1, "failed", f"remote-file {conf}")], err
    assert summary == "PALLET-SUMMARY ok=0 changed=0 failed=1"
    assert (f"pallet: {conf} was changed outside Pallet since Pallet wrote it (its checksum is not "
            f"the one in {record_of(tmp_path, conf)}); it is left as it is. To replace it give "
            "remote-file :overwrite-changes true (it is backed up first), or restore it, or "
            f"delete {record_of(tmp_path, conf)}\n") in err
    assert f"spec.pallet:4:1: action 1 failed (exit status 1): remote-file {conf}" in err
    assert "-port=81  # by hand\n+port=80\n" in err  # what replacing it would have done
    assert conf.read_text() == "port=81  # by hand\n" and leftovers(root) == []
    assert backups_of(tmp_path, conf) == {}

    # The spec changed too: still refused; told to, the edit is backed up and replaced.
    bundle([act("remote-file", str(conf), content="port=82\n")], shell, tmp_path / "bundle")
    assert run(shell, tmp_path / "bundle", root)[0] == 1
    bundle([act("remote-file", str(conf), content="port=82\n", overwrite_changes=True)], shell,
           tmp_path / "bundle")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and statuses[0][1] == "changed", err
    assert conf.read_text() == "port=82\n"
    assert backups_of(tmp_path, conf) == {".1": "port=81  # by hand\n"}
    assert record_of(tmp_path, conf).read_text().startswith(hashlib.sha256(b"port=82\n").hexdigest())

    # Restored by hand to what Pallet wrote: the guard is satisfied, the spec's change goes in.
    bundle([act("remote-file", str(conf), content="port=83\n")], shell, tmp_path / "bundle")
    conf.write_text("port=81\n")
    assert run(shell, tmp_path / "bundle", root)[0] == 1
    conf.write_text("port=82\n")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and statuses[0][1] == "changed" and conf.read_text() == "port=83\n", err
    # Or the record deleted: the file is adopted (backed up, replaced) as on a first run.
    conf.write_text("by hand again\n")
    record_of(tmp_path, conf).unlink()
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and statuses[0][1] == "changed" and conf.read_text() == "port=83\n", err
    assert backups_of(tmp_path, conf)[".1"] == "by hand again\n"


def test_a_file_pallet_never_wrote_is_backed_up_then_replaced(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    conf = root / "sshd_config"
    conf.write_text("PermitRootLogin yes\n")
    conf.chmod(0o600)
    found = root / "found"
    found.write_text("right already\n")
    bundle([act("remote-file", str(conf), content="PermitRootLogin no\n"),
            act("remote-file", str(found), content="right already\n")], shell, tmp_path / "bundle")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and [s for _, s, _ in statuses] == ["changed", "ok"], err
    assert conf.read_text() == "PermitRootLogin no\n"
    assert backups_of(tmp_path, conf) == {".1": "PermitRootLogin yes\n"}
    backup = Path(str(tmp_path / "state" / "backups") + str(conf) + ".1")
    assert oct(backup.stat().st_mode & 0o777) == "0o600"  # a backup keeps the file's mode
    # A file found with the right content is Pallet's from then on: edited, it is guarded.
    sha = hashlib.sha256(b"right already\n").hexdigest()
    assert record_of(tmp_path, found).read_text() == f"{sha}  {found}\n"
    found.write_text("edited\n")
    code, statuses, _, _ = run(shell, tmp_path / "bundle", root)
    assert code == 1 and statuses[1][1] == "failed" and found.read_text() == "edited\n"


def test_backups_are_numbered_newest_first_and_pruned(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    conf = root / "app.conf"
    for n in range(1, 6):
        bundle([act("remote-file", str(conf), content=f"v{n}\n", backups=3)], shell,
               tmp_path / "bundle")
        code, statuses, _, err = run(shell, tmp_path / "bundle", root)
        assert code == 0 and statuses[0][1] == "changed", err
    assert conf.read_text() == "v5\n"
    assert backups_of(tmp_path, conf) == {".1": "v4\n", ".2": "v3\n", ".3": "v2\n"}
    # Fewer kept from now on: the oldest go at the next change.
    bundle([act("remote-file", str(conf), content="v6\n", backups=1)], shell, tmp_path / "bundle")
    assert run(shell, tmp_path / "bundle", root)[0] == 0
    assert backups_of(tmp_path, conf) == {".1": "v5\n"}
    # :backups 0 and :no-versioning true keep none (and leave the old ones alone).
    for n, options in ((7, {"backups": 0}), (8, {"no_versioning": True})):
        bundle([act("remote-file", str(conf), content=f"v{n}\n", **options)], shell,
               tmp_path / "bundle")
        assert run(shell, tmp_path / "bundle", root)[0] == 0
        assert conf.read_text() == f"v{n}\n" and backups_of(tmp_path, conf) == {".1": "v5\n"}
    # The default keeps five.
    for n in range(9, 17):
        bundle([act("remote-file", str(conf), content=f"v{n}\n")], shell, tmp_path / "bundle")
        assert run(shell, tmp_path / "bundle", root)[0] == 0
    assert backups_of(tmp_path, conf) == {f".{i}": f"v{16 - i}\n" for i in range(1, 6)}


def test_a_replaced_file_shows_a_diff_on_stderr(tmp_path, shell, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    conf, blob = root / "app.conf", root / "blob"
    conf.write_text("a\nb\nc\n")
    blob.write_bytes(b"\x00\x01old")
    long_file = root / "long"
    long_file.write_text("".join(f"old {i}\n" for i in range(300)))
    quiet = root / "secret"
    quiet.write_text("password=old\n")
    bundle([act("remote-file", str(conf), content="a\nB\nc\n"),
            act("remote-file", str(blob), content="\x00\x02new"),
            act("remote-file", str(long_file), content="".join(f"new {i}\n" for i in range(300))),
            act("remote-file", str(quiet), content="password=new\n", diff=False)],
           shell, tmp_path / "bundle")
    proc_code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert proc_code == 0 and [s for _, s, _ in statuses] == ["changed"] * 4, err
    assert f"--- {conf}\n+++ {conf} (new)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n" in err
    assert f"Binary files {blob} and {blob} (new) differ\n" in err
    assert "\n... 403 more lines of diff\n" in err   # 603 lines: 200 shown
    assert err.count("old ") + err.count("new ") == 197 and "-old 196\n" in err
    assert "password" not in err
    # Status lines are all the standard output has.
    assert leftovers(root) == []

    # No diff installed: one line says so.
    monkeypatch.setenv("PATH", str(tools_dir(tmp_path / "bin", leave_out=("diff",))))
    bundle([act("remote-file", str(conf), content="a\n")], shell, tmp_path / "bundle")
    proc_code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert proc_code == 0 and statuses[0][1] == "changed", err
    assert err == f"pallet: {conf} changes; no diff shown: diff is not installed\n"


def fake_services(folder: Path, log: Path) -> Path:
    """`service`, `systemctl` and `rc-service` that log their arguments; a restart fails while
    the file `folder/broken` exists."""
    folder.mkdir()
    for name in ("service", "systemctl", "rc-service"):
        tool = folder / name
        tool.write_text(f'#!/bin/sh\ncase "$*" in *restart*) [ -e {folder}/broken ] && exit 1 ;; esac\n'
                        f'case "$*" in *status*|*is-active*) exit 0 ;; esac\n'
                        f'printf "%s\\n" "$*" >> {log}\n')
        tool.chmod(0o755)
    return folder


def test_a_service_restarts_only_when_its_configuration_changed(tmp_path, shell, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    log = tmp_path / "services.log"
    fakes = fake_services(tmp_path / "fake", log)
    monkeypatch.setenv("PATH", f"{fakes}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    conf, site = root / "nginx.conf", root / "site.conf"

    def phase(conf_text: str, site_text: str):
        return [act("remote-file", str(conf), content=conf_text, flag_on_changed="nginx-config"),
                act("remote-file", str(site), content=site_text),
                act("exec-script", script("(true)"), line=3),  # always changes: no flag
                act("service", "nginx", action=Keyword("restart"), if_flag="nginx-config"),
                act("service", "site", action=Keyword("reload"), if_changed=[str(site)]),
                act("service", "both", action=Keyword("restart"), if_config_changed=True)]

    def restarts():
        text = log.read_text() if log.exists() else ""
        log.write_text("")
        return sorted(line.split()[0] if line.split()[0] in ("nginx", "site", "both")
                      else line.split()[-1] for line in text.splitlines())

    bundle(phase("a\n", "x\n"), shell, tmp_path / "bundle")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and [s for _, s, _ in statuses] == ["changed"] * 6, err
    assert restarts() == ["both", "nginx", "site"]
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and [s for _, s, _ in statuses] == [
        "ok", "ok", "changed", "ok", "ok", "ok"], err  # skipped: ok, nothing ran
    assert restarts() == []
    bundle(phase("a\n", "y\n"), shell, tmp_path / "bundle")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and [s for _, s, _ in statuses] == [
        "ok", "changed", "changed", "ok", "changed", "changed"], err
    assert restarts() == ["both", "site"]

    # A restart that fails leaves the flag up on the node: the next run restarts, though the
    # file is unchanged by then; the one after does not.
    bundle(phase("b\n", "y\n"), shell, tmp_path / "bundle")
    (fakes / "broken").write_text("")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 1 and statuses[-1] == (4, "failed", "service nginx"), err
    assert (tmp_path / "state" / "flags" / "nginx-config").read_text() == f"remote-file {conf}\n"
    (fakes / "broken").unlink()
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and [s for _, s, _ in statuses] == [
        "ok", "ok", "changed", "changed", "ok", "changed"], err
    assert restarts() == ["both", "nginx"]
    assert not (tmp_path / "state" / "flags" / "nginx-config").exists()
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and restarts() == [] and statuses[3] == (4, "ok", "service nginx"), err


def test_waiting_for_a_flag_costs_no_process(tmp_path, shell, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    conf = root / "app.conf"
    bundle([act("remote-file", str(conf), content="x\n", flag_on_changed="app"),
            act("exec-checked-script", "reload app", script("(touch ~p)", p=str(root / "reloaded")),
                if_flag="app"),
            act("exec-script", script("(touch ~p)", p=str(root / "again")), if_changed=[str(conf)])],
           shell, tmp_path / "bundle")
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and [s for _, s, _ in statuses] == ["changed"] * 3, err
    (root / "reloaded").unlink()
    log = tmp_path / "commands"
    monkeypatch.setenv("PATH", str(tools_dir(tmp_path / "bin", log)))
    code, statuses, _, err = run(shell, tmp_path / "bundle", root)
    assert code == 0 and [s for _, s, _ in statuses] == ["ok"] * 3, err
    started = log.read_text().split() if log.exists() else []
    assert started == ([] if shell == "bash" else ["cmp"])
    assert not (root / "reloaded").exists()


def test_sed_on_a_file_pallet_wrote_is_not_an_edit_outside_pallet(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    conf = root / "app.ini"
    bundle([act("remote-file", str(conf), content="mode = debug\n"),
            act("sed", str(conf), {"^mode = .*$": "mode = production"})], shell, tmp_path / "bundle")
    for _ in range(2):  # the two undo each other on every run, but neither fails
        code, statuses, _, err = run(shell, tmp_path / "bundle", root)
        assert code == 0 and [s for _, s, _ in statuses] == ["changed", "changed"], err
        assert conf.read_text() == "mode = production\n"


def test_exit_zero_inside_an_action_is_not_success(tmp_path, shell):
    root = tmp_path / "root"
    root.mkdir()
    bundle([act("exec-script", script("(exit 0)")), act("file", str(root / "x"))], shell,
           tmp_path / "bundle")
    code, statuses, summary, _ = run(shell, tmp_path / "bundle", root)
    assert code != 0 and statuses == [(1, "failed", "exec-script")]
    assert summary.endswith("failed=1")


# ---- what the compiler refuses ----------------------------------------------------------------


def test_bundle_files_are_named_by_checksum_and_carried_once(tmp_path):
    actions = [act("remote-file", "/a", content="same\n"), act("remote-file", "/b", content="same\n")]
    rendered = render_actions(actions, target_for("debian-12"), lambda p: b"")
    assert rendered.files == (("files/" + hashlib.sha256(b"same\n").hexdigest(), b"same\n"),)


@pytest.mark.parametrize("action, message", [
    (act("remote-file", "/x", url="http://example.invalid/x"), ":sha256 (64 hex digits) or :sha512"),
    (act("remote-file", "/x", url="http://example.invalid/x", sha512="ab" * 32),
     "remote-file :sha512 is the file's 128 hex digits, not \"abab"),
    (act("remote-file", "/x", url="http://example.invalid/x", sha256="0" * 64, sha512="0" * 128),
     "one checksum: :sha256 or :sha512, not both"),
    (act("remote-file", "/x", content="x", sha512="0" * 128), ":sha512 goes with :url"),
    (act("remote-file", "/x", content="a", template="t"), "exactly one of"),
    (act("file", "/x", mode="rwx"), "octal"),
    (act("file", "/x", colour="red"), "no option :colour"),
    (act("service", "ssh", action=Keyword("bounce")), ":action must be one of"),
    (act("frobnicate", "x"), "unknown action"),
    (act("package", "curl", priority=50), "not supported"),
    (act("sed", "/x", {"a/b": "c"}, separator="/"), ":separator"),
    (act("user", "bob", uid="x"), "must be a number"),
])
def test_bad_actions_are_located_errors(action, message):
    with pytest.raises(PalletError) as info:
        render_actions([action], target_for("debian-12"), lambda p: b"")
    assert message in info.value.message and info.value.span == action.span


@pytest.mark.parametrize("actions, message", [
    ([act("service", "nginx", action=Keyword("restart"), if_flag="nginx-config")],
     "service :if-flag 'nginx-config': no earlier action of this phase has :flag-on-changed"),
    ([act("service", "nginx", action=Keyword("restart"), if_flag="cfg", line=2),
      act("remote-file", "/etc/x", content="x", flag_on_changed="cfg")],
     "no earlier action of this phase has :flag-on-changed 'cfg'"),
    ([act("remote-file", "/etc/nginx/nginx.conf", content="x"),
      act("service", "nginx", action=Keyword("restart"), if_changed=["/etc/nginx/nginx.cnf"], line=2)],
     "service :if-changed: no earlier action of this phase writes '/etc/nginx/nginx.cnf'"),
    ([act("exec-script", script("(true)")),
      act("service", "nginx", action=Keyword("restart"), if_config_changed=True, line=2)],
     "service :if-config-changed: no earlier action of this phase writes a file"),
    ([act("remote-file", "/x", content="x", flag_on_changed="has space")], "a flag name"),
    ([act("remote-file", "/x", content="x", backups=-1)], ":backups is how many backups"),
    ([act("remote-file", "/x", content="x", backups="5")], ":backups is how many backups"),
    ([act("remote-file", "/x", content="x", backups=3, no_versioning=True)],
     "does not go with :backups 3"),
    ([act("remote-file", "/x", content="x", overwrite_changes="yes")],
     ":overwrite-changes is true or false"),
])
def test_flags_and_change_options_are_checked_where_they_are_written(actions, message):
    with pytest.raises(PalletError) as info:
        render_actions(actions, target_for("debian-12"), lambda p: b"")
    assert message in info.value.message, info.value.message
    # located at the action with the option (written on line 2 when there are two)
    assert info.value.span == next((a.span for a in actions if a.span == at(2)), actions[-1].span)


def test_template_errors_name_the_template_line_and_the_action(tmp_path):
    (tmp_path / "t.j2").write_text("ok\n{{ missing }}\n")
    action = act("remote-file", "/x", template="t.j2", values={}, line=5)
    with pytest.raises(PalletError) as info:
        render_actions([action], target_for("debian-12"), local_files(tmp_path))
    assert str(info.value.span) == "spec.pallet:5:1"
    assert "t.j2:2" in info.value.message and "missing" in info.value.message
    (tmp_path / "t.j2").write_text("{% if %}\n")
    with pytest.raises(PalletError, match="t.j2:1"):
        render_actions([action], target_for("debian-12"), local_files(tmp_path))


@pytest.mark.parametrize("os_name, action", [
    ("windows", act("sed", "C:/x", {"a": "b"})),
    ("windows", act("symbolic-link", "C:/a", "C:/b")),
    ("windows", act("file", "C:/x", mode=644)),
    ("windows", act("user", "bob", shell="/bin/sh")),
    ("windows", act("service", "w3svc", action=Keyword("reload"))),
    ("arch", act("package", "curl", version="8.0")),
    ("arch", act("package-source", "extra", apt={Keyword("url"): "http://x"})),
])
def test_what_an_os_cannot_serve_is_a_compile_error(os_name, action):
    shell = "powershell" if os_name == "windows" else "bash"
    with pytest.raises(PalletError) as info:
        render_actions([action], target_for(os_name, shell), lambda p: b"")
    assert info.value.span == action.span and "not available" in info.value.message


# ---- packages -----------------------------------------------------------------------------------


def test_packages_of_a_phase_are_one_step_where_the_first_was():
    actions = [act("file", "/a", line=1),
               act("package", "curl", line=2),
               act("directory", "/d", line=3),
               act("packages", ("git", "curl"), line=4),
               act("package", "nano", action=Keyword("remove"), line=5),
               act("package-source", "extra", line=6,
                   apt={Keyword("url"): "http://deb.example.org/debian",
                        Keyword("key-url"): "http://deb.example.org/key.gpg"}),
               act("package", "vim", version="2:9.0", line=7)]
    target = target_for("debian-12")
    rendered = render_actions(actions, target, lambda p: b"")
    assert [s.label for s in rendered.steps] == [
        "file /a", "package-source extra", "packages curl git vim remove nano", "directory /d"]
    step = rendered.steps[2]
    assert step.where == "spec.pallet:2:1"
    assert step.sources == ("spec.pallet:2:1", "spec.pallet:4:1", "spec.pallet:5:1",
                            "spec.pallet:7:1")
    text = compile_phase_script(rendered, target)
    assert "pallet_package_install curl '' git '' vim 2:9.0\n" in text
    assert "pallet_package_remove nano\n" in text
    assert text.count("apt-get install") == 1
    assert rendered.files == ((
        "files/" + hashlib.sha256(
            b"deb [signed-by=/etc/apt/keyrings/extra.gpg] http://deb.example.org/debian "
            b"bookworm main\n").hexdigest(),
        b"deb [signed-by=/etc/apt/keyrings/extra.gpg] http://deb.example.org/debian "
        b"bookworm main\n"),)


def test_packages_per_packager():
    actions = [act("packages", apt=("apache2",), yum=("httpd",), line=1)]
    for os_name, expected in (("debian-12", "apache2"), ("rocky-9", "httpd"),
                              ("alpine-3.20", None)):
        rendered = render_actions(actions, target_for(os_name), lambda p: b"")
        labels = [s.label for s in rendered.steps]
        assert labels == ([f"packages {expected}"] if expected else [])


# ---- every OS family: shellcheck-clean, PowerShell parses ----------------------------------


def every_action(os_name: str) -> list[Action]:
    windows = os_name == "windows"
    body = script('(println "configured") (var x "a b") (println @x)')
    actions = [
        act("file", "/etc/app.conf", owner="app", **({} if windows else {"group": "app", "mode": 640})),
        act("directory", "/srv/app", owner="app", **({} if windows else {"mode": 750, "recursive": True})),
        act("remote-file", "/etc/motd", content="hello\n", flag_on_changed="motd", backups=2),
        act("remote-file", "/etc/app.ini", content="x\n", overwrite_changes=True, diff=False,
            no_versioning=True),
        act("remote-file", "/opt/app.tgz", url="https://example.org/app.tgz", sha256="ab" * 32),
        act("exec-script", body, creates="/opt/done"),
        act("exec-checked-script", "configure", body, unless=script('(file-exists? "/x")')),
        act("package", "curl"),
        act("packages", ("git", "jq")),
        act("package", "nano", action=Keyword("remove")),
        act("user", "app", groups=("adm", "staff"), comment="The app",
            **({} if windows else {"home": "/srv/app", "shell": "/bin/sh", "system": True,
                                   "create_home": False})),
        act("group", "staff", **({} if windows else {"system": True, "gid": 900})),
        act("user", "old", action=Keyword("remove")),
        act("group", "old", action=Keyword("remove")),
        act("service", "app", action=Keyword("restart"), if_config_changed=True),
        act("service", "motd", action=Keyword("restart"), if_flag=Keyword("motd"),
            if_changed=["/etc/app.ini"]),
        act("exec-checked-script", "after motd", body, if_changed="/etc/motd"),
        act("remote-file", "/etc/old.conf", action=Keyword("delete")),
        act("exec-script", None, body),
        *(act("service", "app", action=Keyword(a))
          for a in ("start", "stop", "restart", "enable", "disable")),
    ]
    if not windows:
        actions += [
            act("service", "app", action=Keyword("reload")),
            act("symbolic-link", "/srv/app/current", "/srv/app/live", owner="app", force=True),
            act("sed", "/etc/app.conf", {"^port=.*": "port=1", "a|b": "c/d"}),
            act("package-manager", Keyword("update")),
            act("user", "app2", uid=1500),
            act("sed", "/etc/app.conf", {"a": "b"}, separator="#"),
            act("symbolic-link", "/a", "/srv/old-link", action=Keyword("delete")),
            act("packages", ("nano", "ed"), action=Keyword("remove")),
        ]
        if os_name != "arch":
            actions.append(act("package-source", "extra",
                               apt={Keyword("url"): "http://deb.example.org/debian",
                                    Keyword("key-url"): "http://deb.example.org/key.asc"},
                               yum={Keyword("url"): "http://rpm.example.org/",
                                    Keyword("gpgkey"): "http://rpm.example.org/key"},
                               apk={Keyword("url"): "http://apk.example.org/main"}))
        if os_name not in ("arch",):
            actions.append(act("package", "tzdata", version="2024a-1"))
    return actions


LINUXES = ["debian-12", "ubuntu-22.04", "rocky-9", "fedora-40", "amzn-2023", "alpine-3.20", "arch",
           "opensuse-15"]


@pytest.mark.parametrize("shell_name", ["bash", "sh"])
@pytest.mark.parametrize("os_name", LINUXES)
def test_every_linux_script_is_shellcheck_clean(os_name, shell_name):
    target = target_for(os_name, shell_name)
    text = compile_phase_script(render_actions(every_action(os_name), target, lambda p: b""), target)
    findings = shellcheck(text, shell_name)
    assert not findings, format_findings(findings, f"{os_name}.{shell_name}") + "\n" + text
    assert_functions_defined(text)
    assert subprocess.run([EXE[shell_name], "-n"], input=text, text=True).returncode == 0


def assert_functions_defined(text: str) -> None:
    defined = set(re.findall(r"^(pallet_\w+)\(\) \{", text, re.M))
    # command positions: a line's start, after if / ! / && / || / | / $(
    called = set(re.findall(r"(?:^\s*|\bif |! |&& |\|\| |\| |\$\()(pallet_\w+)\b(?!=|\(\))",
                            text, re.M))
    assert called <= defined, f"called but not defined: {sorted(called - defined)}"


def test_a_script_does_not_depend_on_what_was_compiled_before():
    """Library functions are shared between scripts: a script must come out the same (and
    complete) whatever the process compiled first."""
    code = """if True:
        import sys; sys.path.insert(0, "tests")
        from test_actions import act
        from pallet.crates.actions import render_actions, compile_phase_script
        from pallet.stevedore import target_for
        t = target_for("debian-12", "sh")
        first = [act("remote-file", "/a", content="x"), act("user", "u", groups=("g",))]
        if sys.argv[1] == "after":
            compile_phase_script(render_actions(first, t, lambda p: b""), t)
        later = [act("sed", "/c", {"a": "b"}), act("service", "s", action="stop")]
        sys.stdout.write(compile_phase_script(render_actions(later, t, lambda p: b""), t))
    """
    import sys as _sys
    from test_actions import ROOT
    texts = [subprocess.run([_sys.executable, "-c", code, order], capture_output=True, text=True,
                            cwd=ROOT, check=True).stdout for order in ("alone", "after")]
    assert texts[0] == texts[1]
    assert_functions_defined(texts[0])
    assert "pallet_temp_beside()" in texts[0] and "pallet_service_running()" in texts[0]


def test_only_the_functions_used_are_carried():
    target = target_for("debian-12")
    text = compile_phase_script(render_actions([act("file", "/x")], target, lambda p: b""), target)
    assert "pallet_file()" in text and "pallet_attrs()" in text
    assert "pallet_package" not in text and "pallet_remote_file" not in text


def test_windows_script_parses():
    try:
        import pallet.stevedore.emit_powershell  # noqa: F401
    except ImportError:
        pytest.skip("the PowerShell emitter is not there yet")
    target = target_for("windows", "powershell")
    text = compile_phase_script(render_actions(every_action("windows"), target, lambda p: b""),
                                target)
    assert not parse_powershell(text), format_findings(parse_powershell(text), "run.ps1")
    assert "try {" in text and "} catch {" in text and "pallet_choco_install curl ''" in text


def test_library_loads_and_every_function_has_an_implementation():
    library = core_library()
    assert all(library.impls[name] for name in library.functions)


@pytest.mark.parametrize("os_name, shell_name",
                         [(o, s) for o in LINUXES for s in ("bash", "sh")] + [("windows", "powershell")])
def test_shared_library_functions_give_the_same_script(os_name, shell_name):
    target = target_for(os_name, shell_name)
    actions = every_action(os_name)
    # (reversed, without the actions that wait for earlier ones)
    alone = [a for a in actions if not any(k.startswith("if-") for k, _ in a.options)]
    for some in (actions, actions[:3], alone[::-1]):
        rendered = render_actions(some, target, lambda p: b"")
        assert (compile_phase_script(rendered, target)
                == compile_phase_script(rendered, target, cache=False))


def test_a_target_without_packager_compiles_what_it_can():
    target = target_for("haiku-1")  # an OS Pallet knows nothing about: no packager
    text = compile_phase_script(render_actions([act("file", "/x")], target, lambda p: b""), target)
    assert "pallet_file /x create" in text
    with pytest.raises(PalletError, match="not available"):
        render_actions([act("package", "curl")], target, lambda p: b"")


@pytest.mark.parametrize("os_name, shell_name", [("debian-12", "bash"), ("alpine-3.20", "sh"),
                                                 ("windows", "powershell")])
def test_the_render_memo_changes_nothing(os_name, shell_name):
    """Steps reused from other bundles of the compile are the steps rendering would make:
    every action, in several orders and with other step numbers, with one memo throughout,
    gives the scripts and files that rendering each phase alone gives."""
    from pallet.crates.actions import RenderMemo
    target = target_for(os_name, shell_name)
    actions = every_action(os_name) + [act("remote-file", "/etc/local", local_file="here")]
    alone = [a for a in actions if not any(k.startswith("if-") for k, _ in a.options)]
    memo = RenderMemo()
    for some in (actions, actions, alone[::-1], actions[2:], alone[1:]):
        with_memo = render_actions(some, target, lambda p: b"local", memo=memo)
        without = render_actions(some, target, lambda p: b"local")
        assert with_memo.steps == without.steps and with_memo.files == without.files
        assert [s.holes for s in with_memo.steps] == [s.holes for s in without.steps]
        assert compile_phase_script(with_memo, target) == compile_phase_script(without, target)
    again = render_actions(actions, target, lambda p: b"local", memo=memo)
    reused = {id(step) for step, _ in memo.steps.values()}
    assert sum(id(step) in reused for step in again.steps) >= 10   # it was used


def test_the_render_memo_tells_true_from_1():
    """True == 1 in Python; as option values they are not the same (the memo keys on types)."""
    from pallet.crates.actions import RenderMemo
    target = target_for("debian-12")
    memo = RenderMemo()
    render_actions([act("file", "/x", mode=644)], target, lambda p: b"", memo=memo)
    render_actions([act("remote-file", "/y", content="a", overwrite_changes=True)], target,
                   lambda p: b"", memo=memo)
    with pytest.raises(PalletError, match="true or false"):
        render_actions([act("remote-file", "/y", content="a", overwrite_changes=1)], target,
                       lambda p: b"", memo=memo)


@pytest.mark.parametrize("os_name, shell_name", [("debian-12", "bash"), ("alpine-3.20", "sh"),
                                                 ("windows", "powershell")])
def test_the_render_memo_puts_in_each_bundles_own_content_and_bodies(os_name, shell_name):
    """A remote-file's :content and exec-script bodies reach a step only by name, so nodes
    differing in them share the memoised step: each bundle still gets its own file, its own
    bodies, the script rendering it alone gives; and the step is reused."""
    from pallet.crates.actions import RenderMemo
    target = target_for(os_name, shell_name)

    def phase(node: str) -> list[Action]:
        return [act("remote-file", "/etc/a", content=f"node={node}\n", line=1),
                act("remote-file", "/etc/b", content="same", line=2),
                act("remote-file", "/etc/c", content=f"node={node}\n", line=3),
                act("exec-checked-script", "one", script("(echo ~n)", n=node), line=4,
                    creates="/x", label="exec-checked-script one"),
                act("exec-script", script("(echo ~n)", n=node), script("(touch ~n)", n=node),
                    line=5, unless=script("(file-exists? ~n)", n=node), label="exec-script"),
                act("remote-file", "/etc/d", content=node, action=Keyword("delete"), line=6),
                act("exec-checked-script", "two", script("(echo ~n)", n=node), line=7,
                    unless=script("(file-exists? ~n)", n=node),
                    label="exec-checked-script two")]
    memo = RenderMemo()
    for node in ("n1", "n2", "n2", "n3"):
        actions = phase(node)
        with_memo = render_actions(actions, target, lambda p: b"", memo=memo)
        without = render_actions(actions, target, lambda p: b"")
        assert with_memo.steps == without.steps and with_memo.files == without.files
        assert [s.holes for s in with_memo.steps] == [s.holes for s in without.steps]
        assert with_memo.bodies == without.bodies
        text = compile_phase_script(with_memo, target)
        assert text == compile_phase_script(without, target)
        assert node in text
    reused = {id(step) for step, _ in memo.steps.values()}
    assert sum(id(step) in reused for step in with_memo.steps) >= 4


@pytest.mark.parametrize("shell_name", ["bash", "sh"])
def test_steps_differing_in_a_files_content_name_their_own_file(shell_name):
    """The text of a remote-file step is made once for every content (a placeholder stands
    for the sha256, then each bundle's is put in): each script names its own file."""
    target = target_for("debian-12", shell_name)
    for content in ("one\n", "two\n", "three\n"):
        rendered = render_actions([act("remote-file", "/etc/a", content=content, mode="644"),
                                   act("file", "/etc/b")], target, lambda p: b"")
        sha = hashlib.sha256(content.encode()).hexdigest()
        text = compile_phase_script(rendered, target)
        assert rendered.files == ((f"files/{sha}", content.encode()),)
        assert f"pallet_remote_file /etc/a {sha} " in text and "PALLETFILEHOLE" not in text
        assert text == compile_phase_script(rendered, target, cache=False)


def test_a_value_written_like_the_placeholder_stays_as_written():
    target = target_for("debian-12")
    rendered = render_actions([act("remote-file", "PALLETFILEHOLE1X", content="x"),
                               act("remote-file", "/b", content="PALLETFILEHOLE1X",
                                   owner="PALLETFILEHOLE1X")], target, lambda p: b"")
    text = compile_phase_script(rendered, target)
    sha_x = hashlib.sha256(b"x").hexdigest()
    assert f"pallet_remote_file PALLETFILEHOLE1X {sha_x} " in text
    assert text == compile_phase_script(rendered, target, cache=False)
    # the path in the comment, the status label and the call; and the owner of /b
    assert text.count("PALLETFILEHOLE1X") == 4


def _bash_functions(text: str, *names: str) -> str:
    return "".join(re.search(rf"^{name}\(\) {{\n.*?^}}\n", text, re.M | re.S)[0] for name in names)


@lru_cache(maxsize=None)
def _library(*names: str) -> str:
    """The bash text of these core library functions, as a remote-file bundle carries them."""
    target = target_for("debian-12")
    text = compile_phase_script(render_actions([act("remote-file", "/x", content="x")], target,
                                               lambda p: b""), target)
    return _bash_functions(text, *names)


@settings(max_examples=60, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300), same=st.booleans(),
       big=st.sampled_from([0, 0, 32767, 32768, 40000]))
# In a UTF-8 locale bash's read swallowed a NUL after an incomplete sequence, and the rest.
@example(a=b"\xc2\x00a", b=b"\xc2\x00b", same=False, big=0)
def test_bash_compares_files_in_the_shell_exactly_as_cmp(tmp_path_factory, a, b, same, big):
    """bash's pallet_same reads small files without a process: it must agree with byte
    equality for any content (NUL bytes, newlines at the end, invalid UTF-8, past the limit)."""
    tmp = tmp_path_factory.mktemp("same")
    if same:
        b = a
    if big:
        a, b = a + b"y" * big, b + b"y" * big
    (tmp / "a").write_bytes(a)
    (tmp / "b").write_bytes(b)
    script = _library("pallet_same", "pallet_digest_is") + 'if pallet_same "$1" "$2"; then echo same; else echo differ; fi\n'
    for locale in ("C", "C.UTF-8"):
        out = subprocess.run(["bash", "-c", script, "bash", str(tmp / "a"), str(tmp / "b")],
                             capture_output=True, text=True, env={**os.environ, "LC_ALL": locale})
        assert out.stdout == ("same\n" if a == b else "differ\n"), (locale, out.stderr)


def test_bash_compare_of_a_missing_file_differs(tmp_path):
    (tmp_path / "a").write_text("")
    script = _library("pallet_same", "pallet_digest_is") + 'if pallet_same "$1" "$2"; then echo same; else echo differ; fi\n'
    for pair in (("a", "missing"), ("missing", "a"), ("a", ".")):
        out = subprocess.run(["bash", "-c", script, "bash", *(str(tmp_path / p) for p in pair)],
                             capture_output=True, text=True)
        assert out.stdout == "differ\n", pair


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400), big=st.sampled_from([0, 0, 32767, 32768, 40000]))
@example(data=b"\xc2\x00", big=0)
def test_bash_copies_files_in_the_shell_byte_for_byte(tmp_path_factory, data, big):
    """bash's pallet_copy_into writes small files without a process: every byte arrives
    (NUL bytes, newlines at the end, invalid UTF-8, past the limit: then cp)."""
    tmp = tmp_path_factory.mktemp("copy")
    data += b"z" * big
    (tmp / "from").write_bytes(data)
    for locale in ("C", "C.UTF-8"):
        (tmp / "to").write_bytes(b"old content that is longer than some")
        out = subprocess.run(["bash", "-c", _library("pallet_copy_into") + 'pallet_copy_into "$1" "$2"', "bash",
                              str(tmp / "from"), str(tmp / "to")], capture_output=True,
                             env={**os.environ, "LC_ALL": locale})
        assert out.returncode == 0, out.stderr
        assert (tmp / "to").read_bytes() == data, locale
