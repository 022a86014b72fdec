"""``provstore.cli.progress.TerminalProgress``: entity counts and a files bar with bytes, rate and time left, drawn
only on a terminal."""

from __future__ import annotations

import io

from provstore.cli.progress import TerminalProgress

MIB = 1024 * 1024


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_draws_counts_and_a_files_bar_with_bytes_rate_and_eta() -> None:
    """Entity kinds get a line each; files a bar with count, bytes, rate and ETA; redrawn at most every 0.1 s."""
    terminal, clock = FakeTerminal(), Clock()
    with TerminalProgress(terminal, clock=clock) as report:
        report('node', 1000, 0)
        clock.now = 0.01
        report('node', 2000, 2000)
        clock.now = 1.0
        report('bytes', MIB, 4 * MIB)
        clock.now = 3.0
        report('objects', 1, 4)
        clock.now = 3.05
        report('bytes', 2 * MIB, 4 * MIB)  # too soon after the last drawing: not drawn
        clock.now = 5.0
        report('bytes', 4 * MIB, 4 * MIB)
        report('objects', 4, 4)
    output = terminal.getvalue()
    assert output.startswith('\rnode: 1,000\rnode: 2,000\n')
    assert '\rfiles  [######------------------]  0  1.0 MiB of 4.0 MiB' in output
    assert '\rfiles  [######------------------]  1/4  1.0 MiB of 4.0 MiB  512.0 KiB/s  ETA 0:00:06' in output
    assert '2.0 MiB of' not in output
    assert output.endswith('\rfiles  [########################]  4/4  4.0 MiB of 4.0 MiB  1.0 MiB/s  ETA 0:00:00\n')


def test_a_shorter_line_blanks_the_longer_one_it_replaces() -> None:
    """A line drawn over a longer one is padded with spaces, so no stale characters stay on the terminal."""
    terminal, clock = FakeTerminal(), Clock()
    with TerminalProgress(terminal, clock=clock) as report:
        report('node', 123456, 1000000)
        clock.now = 1.0
        report('node', 1000000, 1000000)
    longer, shorter = 'node: 123,456 of 1,000,000', 'node: 1,000,000'
    assert terminal.getvalue() == f'\r{longer}\r{shorter}' + ' ' * (len(longer) - len(shorter)) + '\n'


def test_unknown_totals_show_counts_and_rate_without_bar() -> None:
    """With no totals (create_archive's bytes) there is no bar and no ETA, but count, bytes and rate."""
    terminal, clock = FakeTerminal(), Clock()
    report = TerminalProgress(terminal, clock=clock)
    report('bytes', 0, 0)
    clock.now = 2.0
    report('bytes', 3 * 1024, 0)
    report.close()
    assert terminal.getvalue().endswith('\rfiles  0  3.0 KiB  1.5 KiB/s\n')


def test_silent_when_not_a_terminal() -> None:
    """A stream that is not a terminal (a pipe, a file, a test runner) gets nothing at all."""
    stream = io.StringIO()
    with TerminalProgress(stream) as report:
        report('node', 5, 5)
        report('bytes', MIB, 2 * MIB)
        report('objects', 1, 2)
    assert stream.getvalue() == ''
