"""Pipelines under bash's pipefail: a program writing into a reader that has finished early
(`head`, `grep -q`, a program that reads nothing) is killed by SIGPIPE, and the pipeline must
not fail for it, nor pass or fail as the two processes race. Run in real bash, many times."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pallet.stevedore import compile_script_text

BASH = shutil.which("bash")


def run(forms: str, times: int = 1) -> set[int]:
    script = compile_script_text(forms, "pipe.pallet")
    return {subprocess.run([BASH, "-c", script], capture_output=True, timeout=20).returncode
            for _ in range(times)}


@pytest.mark.parametrize("forms", [
    '(pipe ("yes") ("head" "-1"))',
    '(pipe ("yes") ("grep" "-q" "y"))',
    '(pipe ("yes") ("grep" "y") ("head" "-n" "1"))',
    '(pipe ("seq" "100000") ("sed" "2q"))',
    '(pipe ("seq" "100000") ("true"))',
])
def test_a_writer_cut_short_by_its_reader_is_no_failure(forms):
    assert run(forms, times=20) == {0}


@pytest.mark.parametrize("forms, status", [
    ('(pipe ("false") ("head" "-1"))', 1),
    ('(pipe ("sh" "-c" "exit 3") ("cat"))', 3),
    ('(pipe ("yes") ("sh" "-c" "read -r x; exit 4"))', 4),
])
def test_any_other_failure_still_fails_the_pipeline(forms, status):
    assert run(forms) == {status}


def test_readers_that_read_to_the_end_leave_the_pipeline_as_written():
    script = compile_script_text('(pipe ("getent" "passwd" "root") ("cut" "-d" ":" "-f" "6"))',
                                 "p.pallet")
    assert "getent passwd root | cut -d : -f 6" in script


def test_sh_has_no_pipefail_and_no_guard():
    assert "141" not in compile_script_text('(pipe ("yes") ("head" "-1"))', "p.pallet", "sh")


def test_a_function_writing_into_head_keeps_errexit():
    # A function on the left of `||` would run with errexit suspended: its failing first
    # command would not stop it. Functions are left as written.
    forms = ('(defscript f []) (defimpl f :default [] ("false") (println "went on"))'
             '(pipe (f) ("head" "-1"))')
    script = compile_script_text(forms, "p.pallet")
    proc = subprocess.run([BASH, "-c", script], capture_output=True, text=True, timeout=20)
    assert "went on" not in proc.stdout and proc.returncode != 0
