"""Running the CLI in the tests' process: succeeded, or failed with one clear error line."""

from __future__ import annotations

from click.testing import CliRunner, Result

from provstore.cli import cli


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in this process and return the result."""
    return CliRunner().invoke(cli, list(args), input=input)


def ok(*args: str, input: str | None = None) -> Result:
    """Run the CLI and check that it succeeded."""
    result = invoke(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def error(*args: str, input: str | None = None) -> str:
    """Run the CLI, check that it failed with exit code 1 and one line on stderr, and return that line."""
    result = invoke(*args, input=input)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('Error: ')
    assert 'Traceback' not in result.output
    return lines[0]
