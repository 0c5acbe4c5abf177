"""A pytest plugin that auditlib loads into the *target's* test run (``-p auditlib_probe``).

It is copied next to the run as ``auditlib_probe.py`` and must only use the standard
library (and SQLAlchemy when the target has it). It records, into the JSON file named
by ``AUDITLIB_PROBE_OUT``:

- ``dialects``: which database dialects SQLAlchemy actually connected to (TEST-003);
- ``warnings``: every warning pytest recorded, with its category and source;
- ``async_tests``: node ids of ``async def`` tests (to spot those no plugin ran).
"""
import inspect
import json
import os

_DATA = {"dialects": {}, "warnings": [], "async_tests": []}


def _count_connection(conn, *args):
    try:
        name = f"{conn.engine.dialect.name}+{conn.engine.dialect.driver}"
    except Exception:
        return
    _DATA["dialects"][name] = _DATA["dialects"].get(name, 0) + 1


def pytest_configure(config):
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except Exception:
        return
    event.listen(Engine, "engine_connect", _count_connection)


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "obj", None)):
            _DATA["async_tests"].append(item.nodeid)


def pytest_warning_recorded(warning_message, when, nodeid, location):
    _DATA["warnings"].append({
        "category": type(warning_message.message).__name__ if isinstance(warning_message.message, Warning)
        else getattr(warning_message.category, "__name__", "Warning"),
        "message": str(warning_message.message).splitlines()[0][:300] if str(warning_message.message) else "",
        "file": warning_message.filename, "line": warning_message.lineno, "nodeid": nodeid, "when": when,
    })


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("AUDITLIB_PROBE_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(_DATA, fh)
