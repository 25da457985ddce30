"""Logging set-up: records go to the stderr of the moment, so an in-process CLI run whose captured stderr was
closed (pytest, notebooks) cannot break every later record with "I/O operation on closed file"."""

import io
import logging
import sys

from hyperrec.logs import configure_logging


def test_records_follow_sys_stderr_after_the_stream_they_started_with_is_closed(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO")
    logging.getLogger("hyperrec.test").info("one")
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("hyperrec.test").info("two")
    assert "INFO hyperrec.test: two" in second.getvalue()
