"""How `cronctl logs` shows a run still going, and the output `logs --follow` passes on.

Followed output goes where `run-now` puts it: the job's stdout to stdout, its stderr to stderr,
so `cronctl logs 12 -f | grep x` gets the job's stdout only. On a terminal the job's stderr is
red (not with --no-color or NO_COLOR). Both are shown as safe text (records.safe_text: no
terminal escapes), decoded per stream so that a character split between two chunks stays whole.
"""

from __future__ import annotations

import codecs
import sys
from dataclasses import replace
from pathlib import Path
from typing import IO

from cronctl import timefmt
from cronctl.records import Output, Run, Status, safe_text
from cronctl.render import Renderer, is_terminal
from cronctl.runner.capture import drop_marker
from cronctl.spool import STDERR, STDOUT, Chunk, read_so_far

RED = "\x1b[31m"
RESET = "\x1b[0m"


class OutputPrinter:
    """Writes followed chunks of the `streams` asked for (see the module's docstring)."""

    def __init__(self, renderer: Renderer, streams: tuple[str, ...]) -> None:
        self.streams = streams
        self.decoders = {
            name: codecs.getincrementaldecoder("utf-8")("backslashreplace") for name in streams
        }
        self.red_stderr = not renderer.no_color and is_terminal(sys.stderr)
        self.last: tuple[IO[str], str] | None = None
        """Where the last text went, and that text."""

    def __call__(self, chunk: Chunk) -> None:
        if chunk.stream is None:  # the spool lost output its reader never reached
            self._write(sys.stdout, drop_marker(chunk.dropped).decode())
            return
        decoder = self.decoders.get(chunk.stream)
        if decoder is not None:
            self._show(chunk.stream, decoder.decode(chunk.data))

    def finish(self) -> None:
        """Pass on what an unfinished character held back; on a terminal, end an unfinished
        last line, so that the line saying how the run ended starts a line of its own."""
        for name, decoder in self.decoders.items():
            self._show(name, decoder.decode(b"", final=True))
        if self.last is not None and not self.last[1].endswith("\n"):
            if is_terminal(self.last[0]):
                self._write(self.last[0], "\n")

    def _show(self, stream: str, text: str) -> None:
        if not text:
            return
        shown = safe_text(text.encode())
        if stream == STDERR:
            self._write(sys.stderr, _red(shown) if self.red_stderr else shown)
        else:
            self._write(sys.stdout, shown)

    def _write(self, target: IO[str], text: str) -> None:
        target.write(text)
        target.flush()
        self.last = (target, text)


def _red(text: str) -> str:
    """`text` in red, line by line: the colour never runs past a line's end."""
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        lines.append(f"{RED}{body}{RESET}{line[len(body) :]}" if body else line)
    return "".join(lines)


def run_so_far(run: Run, state_dir: Path) -> Run:
    """`run` with the output its spool holds so far (a running run), as `logs` shows it."""
    if run.status != Status.RUNNING:
        return run
    chunks = read_so_far(state_dir, run.id)
    if chunks is None:
        return run
    data = {STDOUT: bytearray(), STDERR: bytearray()}
    dropped = 0
    for chunk in chunks:
        if chunk.stream is None:
            dropped += chunk.dropped
            for kept in data.values():
                kept += drop_marker(chunk.dropped)
        else:
            data[chunk.stream] += chunk.data
    outputs = {name: Output(bytes(kept), len(kept), dropped) for name, kept in data.items()}
    return replace(run, stdout=outputs[STDOUT], stderr=outputs[STDERR])


def still_running(run: Run, zone: str) -> str:
    """The line `logs` adds, on stderr, for a run that is still going."""
    since = timefmt.stamp(run.started_at, zone, seconds=True)
    pid = f", pid {run.pid}" if run.pid is not None else ""
    return (
        f"run {run.id} of {run.task} is still running (since {since}{pid});"
        f" `cronctl logs {run.id} --follow` shows the rest as it comes"
    )


def ending(run: Run, orphaned: bool) -> str:
    """The one line `logs --follow` ends with: how the run ended."""
    if orphaned:
        who = "run-now" if run.trigger == "manual" else "serve"
        return (
            f"run {run.id} of {run.task}: the {who} that ran it is gone (killed?), so its end"
            " was never recorded; serve marks it abandoned when it starts again"
        )
    parts = [str(run.status)]
    if run.exit_code is not None:
        parts.append(f"exit code {run.exit_code}")
    elif run.signal is not None:
        parts.append(f"signal {run.signal}")
    detail = f" ({', '.join(parts[1:])})" if len(parts) > 1 else ""
    took = f" after {timefmt.duration_ms(run.duration_ms)}" if run.duration_ms is not None else ""
    plain = run.reason in (None, f"exit status {run.exit_code}")
    reason = "" if plain or run.status == Status.SUCCEEDED else f": {run.reason}"
    return f"run {run.id} of {run.task} {parts[0]}{detail}{took}{reason}"
