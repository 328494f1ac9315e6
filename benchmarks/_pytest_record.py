"""pytest plugin of ``benchmarks/gpu_check.py``: a journal of the test run, one JSON line per event, appended to the
file named by ``COTRACKER_GPU_CHECK_RECORD`` the moment the event happens.

The journal, unlike a ``--junitxml`` report written at the end, survives a pytest process that is killed at its
deadline or dies with it (a CUDA fault can take the process down): every finished test is in it, and a test that
started but never reported is the one that was running. ``gpu_check`` reads it back into its results JSON (which is
written atomically); the journal itself is only appended to, and is never read while the run that writes it lives.

Events: ``{"event": "collected", "nodeids"}`` once the tests to run are known (a test never started is then known
too); ``{"event": "start", "nodeid"}`` before a test; ``{"event": "report", "nodeid", "when", "outcome",
"duration", "message"}`` for the call phase and for any setup / teardown phase that did not pass (a fixture error, a
skip); ``{"event": "collect", "nodeid", "outcome": "failed", "message"}`` for a file that failed to collect.
Loaded with ``-p benchmarks._pytest_record``; without the variable it writes nothing.
"""
from __future__ import annotations

import json
import os

ENV = "COTRACKER_GPU_CHECK_RECORD"
MESSAGE_CHARS = 3000  # the end of a failure's text: the assertion and its values, not the whole traceback


def _append(record: dict) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())  # on disk before the next test can crash or hang the process


def _message(report) -> str:
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])  # (file, line, reason)
    if report.outcome == "passed":
        return ""
    return report.longreprtext[-MESSAGE_CHARS:]


def pytest_collection_finish(session):
    _append({"event": "collected", "nodeids": [item.nodeid for item in session.items]})


def pytest_runtest_logstart(nodeid, location):
    _append({"event": "start", "nodeid": nodeid})


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        _append({"event": "report", "nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                 "duration": round(report.duration, 4), "message": _message(report)})


def pytest_collectreport(report):
    if report.outcome == "failed":
        _append({"event": "collect", "nodeid": report.nodeid, "outcome": "failed",
                 "message": report.longreprtext[-MESSAGE_CHARS:]})
