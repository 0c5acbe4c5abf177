"""SEC-023: shell commands and subprocess arguments built from non-constant values."""
from __future__ import annotations

import ast
import re

from ..engines.ruff import RuffUnavailable, ruff_hits
from ..findings import Severity, not_verified
from ..code.pyast import literal, of_type
from ..code.pyresolve import Project, import_map, qualify
from ..code.value_origin import Origin, function_of, tracer_for
from . import check
from .sec_020_sql_injection import _whole_statement

SHELL_SINKS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
               "asyncio.create_subprocess_shell", "commands.getoutput", "os.popen2", "os.popen3"}
ARGV_SINKS = {"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
              "subprocess.Popen", "asyncio.create_subprocess_exec", "os.execv", "os.execvp", "os.execvpe",
              "os.execl", "os.execlp", "os.spawnv", "os.spawnvp", "os.spawnl", "os.spawnlp"}
LAUNCH_HINT = re.compile(r"subprocess|system|popen|spawn|exec[lv]|getoutput")
SEVERITY = {"param": Severity.BLOCKER, "unknown": Severity.WARNING, "settings": Severity.RECOMMENDATION}
# without a shell: request data as the program is a BLOCKER; a value whose origin cannot be traced
# (an object's attribute, a helper's result) is only a RECOMMENDATION to validate it
ARGV_SEVERITY = {"param": Severity.BLOCKER, "unknown": Severity.RECOMMENDATION}


@check("SEC-023", "security", "Command injection", engines=("ruff",))
def command_injection(ctx):
    """Process launches in application code: shell sinks (``os.system``, ``os.popen``,
    ``subprocess.getoutput``, ``asyncio.create_subprocess_shell``, any ``subprocess.*``
    with ``shell=True``) and argv launches (``subprocess.run([...])``,
    ``create_subprocess_exec``, ``os.exec*``/``spawn*``), through import aliases. Values
    in the command are traced to their origin (:mod:`auditlib.code.value_origin`). Ruff's
    S602/S604/S605/S609 (the engine part) catch shell launches through wrappers the AST
    pass does not resolve.

    Why: a value interpolated into a shell command line is parsed by the shell
    (``; rm -rf``, ``$(...)``): remote code execution.
    Severity: shell command built from a function parameter (request data, or callers
    passing non-constants): BLOCKER; of unknown origin: WARNING; from settings, or a
    constant command run through a shell: RECOMMENDATION. Without a shell, a program
    from request data is a BLOCKER and arguments from request data a WARNING (argument
    injection, e.g. a value starting with ``-``) when they come from request data; a
    program or arguments of untraced origin (an attribute, a helper's result) are a
    RECOMMENDATION. Argv lists are read through local variables and ``+`` joins (the
    program of ``cmd = ["sudo", "cp", src, dst]`` is the constant ``sudo``), and the same
    values launched at several places of one function make one finding.
    A shell run on a *whole* command line taken from a value (a parameter no request fills,
    a configured script line after ``string.Template(...).safe_substitute``; a parameter
    counts when every caller passes such a value), not values spliced into a command the app
    writes, is a command runner by design (a deployment script step, a process helper): one
    RECOMMENDATION "Shell runs whole command lines taken from a value" instead of a WARNING;
    request data reaching it keeps the BLOCKER.
    An argv list with ``shell=sys.platform == "win32"`` (a shell only on one platform, for
    cmd.exe built-ins) is judged as an argv launch.
    Not flagged: constant argv lists, ``shlex.quote``-d values, int-typed values,
    tests and migrations.
    """
    chk = command_injection.check
    project = Project.of(ctx)
    sources = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None]
    handled: set[tuple[str, int]] = set()
    grouped: dict[tuple, object] = {}  # argv findings, one per function and values
    for src in sources:
        if not LAUNCH_HINT.search(src.text or ""):
            continue
        imports = {k: project.absolute(src, v) for k, v in import_map(src.tree).items()}
        tracer = tracer_for(src, project, sources)
        for call in of_type(src.tree, ast.Call):
            q = qualify(call.func, imports)
            shell = any(k.arg == "shell" and literal(k.value) is not False for k in call.keywords)
            if q not in SHELL_SINKS and q not in ARGV_SINKS and not (shell and q.startswith("subprocess.")):
                continue
            handled.add((src.path, call.lineno))
            cmd = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg in ("args", "cmd")), None)
            if cmd is None:
                continue
            name = q.rsplit(".", 1)[-1] if q.startswith("os.") else q
            fn = function_of(call, tracer.up)
            if shell and q in ARGV_SINKS and _platform_shell(call) and _argv_variants(cmd, call, fn, tracer) != [[cmd]]:
                shell = False  # an argv list, through a shell only on Windows (cmd.exe built-ins): judged as argv
                no_shell = "A shell is used only on one platform (`" + next(
                    ast.unparse(k.value) for k in call.keywords if k.arg == "shell") + "`); elsewhere no shell is involved"
            else:
                no_shell = "No shell is involved"
            if q in SHELL_SINKS or shell:
                _built, parts = tracer.string_parts(cmd, call) if not isinstance(cmd, (ast.List, ast.Tuple)) \
                    else (True, [o for e in cmd.elts for o in tracer.origins(e, call, fn, 3) if o.kind != "constant"])
                risky = [p for p in parts if p.kind in SEVERITY]
                if risky:
                    sev = max((SEVERITY[p.kind] for p in risky), key=lambda s: s.rank)
                    if sev is Severity.WARNING and not isinstance(cmd, (ast.List, ast.Tuple)) \
                            and _whole_statement(tracer, cmd, call):
                        yield _command_runner(ctx, chk, name, risky, src.path, call)
                        continue
                    yield _finding(ctx, chk, sev, f"Shell command for {name}() includes non-constant values",
                                   risky, src.path, call, "The shell parses the whole command line")
                elif not parts:
                    yield chk.finding(
                        ctx, Severity.RECOMMENDATION, f"Constant command run through a shell ({name})",
                        "The command is constant, so not injectable today, but any later interpolation "
                        "becomes shell injection.", "Use `subprocess.run([...], check=True)` with an argv list.",
                        src.path, call.lineno, key=f"const:{name}")
                continue
            variants = [list(call.args)] if q.startswith(("asyncio.", "os.exec", "os.spawn")) else \
                _argv_variants(cmd, call, fn, tracer)
            if q.startswith("os.spawn"):
                variants = [v[1:] for v in variants]  # the mode
            origins = [(i, o) for elts in variants for i, e in enumerate(elts) for o in
                       (tracer.origins(e, call, fn, 3) if not isinstance(e, ast.Starred) else
                        [Origin("unknown", ast.unparse(e), call.lineno, "unpacked arguments")])]
            program = [o for i, o in origins if i == 0 and o.dangerous]
            args = [o for i, o in origins if i > 0 and o.dangerous]
            if program:
                f = _finding(ctx, chk, ARGV_SEVERITY[max((o.kind for o in program), key=lambda k: k == "param")],
                             f"Program run by {name}() is not a constant", program, src.path, call,
                             "Whoever controls the program name runs any executable")
            elif args:
                f = _finding(ctx, chk, Severity.WARNING if any(o.kind == "param" for o in args)
                             else Severity.RECOMMENDATION, f"Arguments of {name}() are not constant", args,
                             src.path, call, f"{no_shell}, but a value starting with `-` is read "
                             "as an option (argument injection)")
            else:
                continue
            group = (src.path, fn.lineno if fn is not None else 0, f.title, f.message)
            if group in grouped:  # the same values launched at several places of one function: one finding
                grouped[group].locations += f.locations
                continue
            grouped[group] = f
    yield from grouped.values()
    try:
        hits = ruff_hits(ctx, ("S602", "S604", "S605", "S609"))
    except RuffUnavailable as exc:
        yield not_verified(chk.id, chk.area, "shell launches through wrappers (Ruff S60x)", str(exc))
        return
    app_paths = {s.path for s in sources}
    for h in hits:
        if h.file in app_paths and (h.file, h.line) not in handled and "seems safe" not in h.message:
            yield chk.finding(ctx, Severity.WARNING, f"Process started with a shell ({h.code})",
                              f"Ruff {h.code}: {h.message}. The command may carry untrusted values.",
                              "Pass an argv list without `shell=True` and validate the values.",
                              h.file, h.line, key=f"{h.code}")


PLATFORM = re.compile(r"\bsys\.platform\b|\bos\.name\b|platform\.system\(\)")


def _platform_shell(call) -> bool:
    """``shell=sys.platform == "win32"`` (or ``os.name == "nt"``): a shell only on one platform."""
    return any(k.arg == "shell" and isinstance(k.value, (ast.Compare, ast.BoolOp))
               and PLATFORM.search(ast.unparse(k.value)) for k in call.keywords)


def _command_runner(ctx, chk, name, parts, path, call):
    """A shell run on a whole command line taken from a value (a parameter no request
    fills, a configured script line): a command runner by design, not a value spliced into
    the app's own command."""
    parts = list({(p.text, p.detail): p for p in parts}.values())
    return chk.finding(
        ctx, Severity.RECOMMENDATION, f"Shell runs whole command lines taken from a value ({name})",
        f"`{name}()` runs through a shell a complete command line taken from "
        + "; ".join(f"`{p.text}` ({p.detail or p.kind})" for p in parts[:4])
        + ", not values spliced into a command the app writes: a command runner by design (a configured "
          "script step, a process helper). Nothing here traces request data to it; whoever can set that "
          "value runs any command as this process.",
        "Keep what reaches it to trusted configuration (never request data), document who may set it, and "
        "prefer an argv list without a shell where shell syntax is not needed.",
        path, call.lineno, key=f"runner:{ast.unparse(call)[:60]}")


def _finding(ctx, chk, severity, title, parts, path, call, why):
    parts = list({(p.text, p.detail): p for p in parts}.values())  # each value once
    return chk.finding(
        ctx, severity, title,
        f"{why}: " + "; ".join(f"`{p.text}` ({p.detail or p.kind})" for p in parts[:4]) + ".",
        "Pass an argv list without a shell (`subprocess.run([\"tool\", \"--\", value], check=True)`), "
        "validate values against a whitelist, and `shlex.quote` anything that must go through a shell.",
        path, call.lineno, key=f"{title}:{ast.unparse(call)[:60]}")


def _argv_variants(cmd, call, fn, tracer, depth: int = 3) -> list[list[ast.AST]]:
    """The argv lists a launch may receive, element by element: a list literal, lists
    joined with ``+``, a local variable's list assignments (``cmd += [...]`` appended);
    anything else is one opaque element."""
    if isinstance(cmd, (ast.List, ast.Tuple)):
        return [list(cmd.elts)]
    if isinstance(cmd, ast.BinOp) and isinstance(cmd.op, ast.Add) and depth > 0:
        left, right = _argv_variants(cmd.left, call, fn, tracer, depth - 1), \
            _argv_variants(cmd.right, call, fn, tracer, depth - 1)
        return [a + b for a in left for b in right][:8]
    if isinstance(cmd, ast.Name) and fn is not None and depth > 0:
        starts = [n for n in of_type(fn, ast.Assign) if n.lineno < call.lineno
                  and any(isinstance(t, ast.Name) and t.id == cmd.id for t in n.targets)]
        if starts and all(isinstance(n.value, (ast.List, ast.Tuple, ast.BinOp)) for n in starts):
            out = [v for n in starts for v in _argv_variants(n.value, n, fn, tracer, depth - 1)]
            extra = [e for n in of_type(fn, ast.AugAssign) if n.lineno < call.lineno
                     and isinstance(n.target, ast.Name) and n.target.id == cmd.id
                     for e in (n.value.elts if isinstance(n.value, (ast.List, ast.Tuple)) else [n.value])]
            return [v + extra for v in out][:8]
    return [[cmd]]
