"""DEP-005's container PID 1 analysis beyond the fixture comparison: the messages say
what PID 1 does with SIGTERM, and one wrapper script run by two Dockerfiles is one finding."""
from __future__ import annotations

from pathlib import Path

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

CASE = Path(__file__).resolve().parent / "fixtures" / "checks" / "DEP-005"


def _warnings(case, tmp_path):
    ctx = AuditContext.open(CASE / case, tmp_path)
    return {f.title: f for f in run_checks(ctx, ids=["DEP-005"], source="static") if f.severity.value == "WARNING"}


def test_pid1_messages_and_locations(tmp_path):
    got = _warnings("pid1", tmp_path)
    assert sorted(got) == ["Job runner `main` does not handle SIGTERM",
                           "Python runs as PID 1 without an init and ignores SIGTERM",
                           "Wrapper script entrypoint.sh stays PID 1 and swallows SIGTERM"]
    runner = got["Job runner `main` does not handle SIGTERM"]
    assert [(loc.file, loc.line) for loc in runner.locations] == [("app/runner.py", 10), ("Dockerfile", 3)]
    assert "runs as PID 1 of a container without an init" in runner.message
    assert "ignores SIGTERM" in runner.message and "SIGKILL" in runner.message
    assert "terminates the process immediately" not in runner.message
    wrapper = got["Wrapper script entrypoint.sh stays PID 1 and swallows SIGTERM"]
    assert [(loc.file, loc.line) for loc in wrapper.locations] == [("docker/wrapper/Dockerfile", 5),
                                                                   ("docker/wrapper_stg/Dockerfile", 5)]
    assert "never `exec`s" in wrapper.message


def test_runner_outside_a_known_container_keeps_both_outcomes(tmp_path):
    runner = _warnings("abrupt", tmp_path)["Job runner `main` does not handle SIGTERM"]
    assert "terminates the process immediately" in runner.message
    assert "where it is PID 1 of a container without an init" in runner.message


def test_compose_init_forwards_sigterm_and_a_comment_is_no_handler(tmp_path):
    got = _warnings("compose_init", tmp_path)
    assert sorted(got) == ["Job runner `main` does not handle SIGTERM"]  # no PID 1 finding: an init is in front
    runner = got["Job runner `main` does not handle SIGTERM"]
    assert [(loc.file, loc.line) for loc in runner.locations] == [("app/runner.py", 11)]
    assert "runs as PID 1 of a container without an init" not in runner.message


def test_engines_left_by_the_shutdown_path_are_one_finding(tmp_path):
    # one variable created in two branches, and a second engine in another module: the
    # shutdown path is the one place to fix, so one finding with every creation a location
    ctx = AuditContext.open(CASE / "abrupt", tmp_path)
    [f] = [f for f in run_checks(ctx, ids=["DEP-005"], source="static") if "disposed" in f.title]
    assert f.title == "2 engines are not disposed on shutdown (`engine`, `reporting_engine`)"
    assert [(loc.file, loc.line) for loc in f.locations] == [("app/db.py", 6), ("app/db.py", 8),
                                                             ("app/reporting.py", 4)]
    assert "never calls `engine.dispose()`, `reporting_engine.dispose()`" in f.message


def test_wrapper_that_execs_python_makes_python_pid1(tmp_path):
    ctx = AuditContext.open(CASE / "pid1", tmp_path)
    [f] = [f for f in run_checks(ctx, ids=["DEP-005"], source="static")
           if f.locations[0].file == "docker/wrapper_exec_python/Dockerfile"]
    assert (f.severity.value, f.title) == ("WARNING", "Python runs as PID 1 without an init and ignores SIGTERM")
    assert "docker/wrapper_exec_python/start.sh runs `exec python -m app.drain $@`" in f.message
    assert "ignores SIGTERM" in f.message and "SIGKILL" in f.message and "app/drain.py" in f.message
