"""Every command's --help renders (rich markup in a help text would crash it)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from imu_stream.cli import app

COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_renders(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_all_commands_are_listed() -> None:
    assert {"run", "demo", "collect", "process", "analyze", "simulate"} <= set(COMMANDS)
