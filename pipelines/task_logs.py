"""The console of an embedded (``kfp.local``) run: a summary per task, the whole stream in per-task log files.

``kfp.local`` streams each task's subprocess output to stdout, including the executor input: a JSON dump of
every parameter, so the whole configuration of every task. The console keeps every line except that dump
(replaced by one line naming the log file); ``<log_dir>/<task>.log`` keeps everything the task printed.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_TASK_RE = re.compile(r"Executing task \S*?'([\w.-]+)'")
_INPUT_START = "Got executor_input:"
_INPUT_END = ("}", "    }")  # the dump's closing brace, bare or as kfp.local indents streamed lines


class TaskLogStream:
    """A text stream that routes whole lines: all to the current task's log file, all but the dump to the
    console."""

    def __init__(self, console: TextIO, log_dir: Path) -> None:
        self.console = console
        self.log_dir = log_dir
        self.task = "pipeline"
        self._pending = ""
        self._in_input = False
        self._files: dict[str, TextIO] = {}

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._route(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._route(self._pending)
            self._pending = ""
        for file in self._files.values():
            file.flush()
        self.console.flush()

    def close_files(self) -> None:
        self.flush()
        for file in self._files.values():
            file.close()
        self._files.clear()

    def _log_file(self) -> TextIO:
        if self.task not in self._files:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._files[self.task] = (self.log_dir / f"{self.task}.log").open("a", encoding="utf-8")
        return self._files[self.task]

    def _route(self, line: str) -> None:
        found = _TASK_RE.search(line)
        if found:
            self.task = found.group(1)
        self._log_file().write(line)
        if self._in_input:
            self._in_input = line.rstrip("\n") not in _INPUT_END
            return
        if _INPUT_START in line:
            self._in_input = True
            self.console.write(
                line.replace(_INPUT_START, f"executor input in {self.log_dir / self.task}.log", 1)
            )
            return
        self.console.write(line)


@contextlib.contextmanager
def task_logs(log_dir: Path) -> Iterator[TaskLogStream]:
    """Route ``sys.stdout`` through a ``TaskLogStream`` while an embedded pipeline runs."""
    stream = TaskLogStream(sys.stdout, Path(log_dir))
    with contextlib.redirect_stdout(stream):  # type: ignore[type-var]
        try:
            yield stream
        finally:
            stream.close_files()
