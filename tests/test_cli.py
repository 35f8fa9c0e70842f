"""The `pallet` command line, run as a real subprocess the way a user runs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import pallet
from pallet.cli import cli

HELLO = '(println "hello")\n(doseq [x ["a" "b" "c"]] (println @x))\n'


def pallet_cmd(*args: str, stdin: str | bytes | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m pallet ARGS` with this interpreter (the venv's under `make test`)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run([sys.executable, "-m", "pallet", *args], input=data,
                          capture_output=True, cwd=cwd, timeout=60)


def text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in text(proc.stderr) + text(proc.stdout)


# --- version and help ---------------------------------------------------------------------


def test_version():
    proc = pallet_cmd("--version")
    assert proc.returncode == 0
    assert text(proc.stdout).strip() == f"pallet {pallet.__version__}"
    assert pallet.__version__ == "0.1.0"


def all_commands() -> list[str]:
    with click.Context(cli) as ctx:
        return cli.list_commands(ctx)


def test_group_help_lists_every_command():
    proc = pallet_cmd("--help")
    assert proc.returncode == 0
    out = text(proc.stdout)
    assert out.startswith("Usage: pallet ")
    for name in all_commands():
        assert f"  {name} " in out


@pytest.mark.parametrize("command", all_commands())
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_on_every_command(command, flag):
    proc = pallet_cmd(command, flag)
    assert proc.returncode == 0, text(proc.stderr)
    assert text(proc.stdout).startswith(f"Usage: pallet {command} ")


def test_unknown_command_is_a_usage_error():
    proc = pallet_cmd("no-such-command")
    assert proc.returncode == 2
    assert "No such command" in text(proc.stderr)
    assert_no_traceback(proc)


# --- unreadable input: exit 2, a clear message --------------------------------------------


def test_missing_file(tmp_path):
    missing = tmp_path / "absent.pallet"
    proc = pallet_cmd("script", str(missing))
    assert proc.returncode == 2
    assert text(proc.stderr).strip() == f"error: {missing}: no such file"
    assert proc.stdout == b""


def test_directory_instead_of_file(tmp_path):
    proc = pallet_cmd("script", str(tmp_path))
    assert proc.returncode == 2
    assert f"{tmp_path}: is a directory" in text(proc.stderr)
    assert_no_traceback(proc)


def test_file_that_is_not_utf8(tmp_path):
    bad = tmp_path / "latin1.pallet"
    bad.write_bytes(b'(println "caf\xe9")\n')
    proc = pallet_cmd("script", str(bad))
    assert proc.returncode == 2
    assert f"{bad}: not UTF-8 text" in text(proc.stderr)
    assert_no_traceback(proc)


def test_unknown_target_is_a_usage_error(tmp_path):
    proc = pallet_cmd("script", "-", "-t", "zsh", stdin=HELLO)
    assert proc.returncode == 2
    assert "'zsh' is not one of" in text(proc.stderr)


# --- syntax errors: file:line:col, the line, a caret; exit 2 ------------------------------


def test_syntax_error_in_file(tmp_path):
    src = tmp_path / "broken.pallet"
    src.write_text('(println "ok")\n  (echo "hi"\n')
    proc = pallet_cmd("script", str(src))
    assert proc.returncode == 2
    lines = text(proc.stderr).splitlines()
    assert lines[0].startswith(f"{src}:2:3: ")
    assert lines[1:3] == ['    (echo "hi"', "    ^"]
    assert proc.stdout == b""
    assert_no_traceback(proc)


def test_syntax_error_on_stdin_is_named_stdin():
    proc = pallet_cmd("script", "-", stdin='(println "a"]\n')
    assert proc.returncode == 2
    lines = text(proc.stderr).splitlines()
    assert lines[0].startswith("<stdin>:1:13: ")
    assert lines[2] == "  " + " " * 12 + "^"
    assert_no_traceback(proc)


def test_failed_compile_leaves_output_file_alone(tmp_path):
    out = tmp_path / "out.sh"
    out.write_text("previous\n")
    proc = pallet_cmd("script", "-", "-o", str(out), stdin="(oops")
    assert proc.returncode == 2
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.sh"]


# --- compiling (needs pallet.stevedore.compile_script_text) --------------------------------


def test_script_to_stdout_runs_in_bash(tmp_path):
    src = tmp_path / "hello.pallet"
    src.write_text(HELLO)
    proc = pallet_cmd("script", str(src))
    assert proc.returncode == 0, text(proc.stderr)
    run = subprocess.run(["bash", "-c", text(proc.stdout)], capture_output=True, timeout=30)
    assert run.stdout == b"hello\na\nb\nc\n"


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_check_passes_on_clean_output(shell):
    proc = pallet_cmd("script", "-", "-t", shell, "--check", stdin=HELLO)
    assert proc.returncode == 0, text(proc.stderr)
    assert proc.stderr == b""


def test_check_reports_findings_and_exits_1():
    # `raw` is emitted as written, so an unquoted expansion reaches shellcheck.
    proc = pallet_cmd("script", "-", "--check", stdin='(raw "echo $x")\n')
    assert proc.returncode == 1
    err = text(proc.stderr)
    assert "SC2086" in err
    assert err.startswith("<stdout>:")
    assert proc.stdout  # the script is still printed


def test_output_file_is_written_whole(tmp_path):
    out = tmp_path / "hello.sh"
    out.write_text("old\n")
    out.chmod(0o750)
    proc = pallet_cmd("script", "-", "-o", str(out), stdin=HELLO)
    assert proc.returncode == 0, text(proc.stderr)
    assert proc.stdout == b""
    assert out.read_text().startswith("#!")
    assert out.stat().st_mode & 0o777 == 0o750  # an existing file keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.sh"]  # no temp debris
    same = pallet_cmd("script", "-", stdin=HELLO)
    assert same.stdout == out.read_bytes()


def test_output_into_missing_directory(tmp_path):
    proc = pallet_cmd("script", "-", "-o", str(tmp_path / "nope" / "x.sh"), stdin=HELLO)
    assert proc.returncode == 2
    assert "cannot write" in text(proc.stderr)
    assert_no_traceback(proc)


# --- start-up cost ------------------------------------------------------------------------


def test_script_command_imports_nothing_heavy(tmp_path):
    """`pallet script` must start fast: the SSH, cloud, template and UI libraries stay out."""
    src = tmp_path / "hello.pallet"
    src.write_text(HELLO)
    probe = (
        "import sys\n"
        "from pallet.cli import main\n"
        "try:\n"
        f"    main(['script', {str(src)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('paramiko', 'libcloud', 'jinja2', 'rich', 'tree_sitter')\n"
        "sys.stderr.write(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
    assert text(proc.stderr) == ""


def test_the_version_constant_matches_pyproject():
    import tomllib
    from pathlib import Path

    import pallet
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert pallet.__version__ == project["project"]["version"]
