"""The CLI skeleton: every contract command is listed and has --help; errors are one line."""

from __future__ import annotations

import subprocess
import sys

from wikipersona_data.cli import COMMANDS, main

CONTRACT = {"scan", "show", "llm-sim", "build", "demo", "verify", "extend", "publish", "get-dump"}


def test_every_contract_command_is_registered() -> None:
    assert CONTRACT <= set(COMMANDS)


def test_help_lists_commands(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in CONTRACT:
        assert name in out


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wikipersona_data.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "wikipersona" in proc.stdout
