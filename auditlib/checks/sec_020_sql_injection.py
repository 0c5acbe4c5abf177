"""SEC-020: SQL built from strings and run through text()/execute()."""
from __future__ import annotations

import ast
import re

from ..engines.ruff import RuffUnavailable, ruff_hits
from ..findings import Location, Severity, not_verified
from ..code.pyast import NOT_LITERAL, dotted, literal, of_type
from ..code.pyresolve import Project, import_map, qualify
from ..code.value_origin import function_of, tracer_for
from . import check

TEXT_SINKS = {"sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text", "sqlalchemy.literal_column",
              "sqlalchemy.sql.literal_column", "sqlalchemy.sql.expression.literal_column"}
METHOD_SINKS = {"execute", "executemany", "executescript", "exec_driver_sql", "fetch", "fetchrow", "fetchval",
                "fetch_all", "fetch_one", "fetch_val", "execute_many", "copy_expert", "mogrify"}
DB_RECEIVER = re.compile(r"session|conn|connection|cursor|cur$|db$|database|engine|tx$|transaction|pool", re.IGNORECASE)
SINK_HINT = re.compile(r"text|literal_column|" + "|".join(sorted(METHOD_SINKS)))
SEVERITY = {"param": Severity.BLOCKER, "unknown": Severity.WARNING, "settings": Severity.RECOMMENDATION}


def sql_sinks(src, imports):
    """(call, sql expression, sink name) for every SQL-executing call of a module."""
    for node in of_type(src.tree, ast.Call):
        if not node.args:
            continue
        q = qualify(node.func, imports)
        if q in TEXT_SINKS:
            yield node, node.args[0], q.rsplit(".", 1)[-1] + "()"
        elif isinstance(node.func, ast.Attribute) and node.func.attr in METHOD_SINKS:
            recv = ast.unparse(node.func.value)
            arg = node.args[0]
            if isinstance(arg, ast.Call) and qualify(arg.func, imports) in TEXT_SINKS:
                continue  # the text() call is the sink
            if node.func.attr == "exec_driver_sql" or DB_RECEIVER.search(recv.rsplit(".", 1)[-1].rstrip("()")):
                yield node, arg, f".{node.func.attr}()"


@check("SEC-020", "security", "SQL injection", engines=("ruff",))
def sql_injection(ctx):
    """SQL strings built by formatting (f-strings, ``%``, ``.format``, ``+``,
    ``"".join``) or passed in non-literal, at the SQL sinks: ``sqlalchemy.text()`` /
    ``literal_column()`` (through any import alias), ``.exec_driver_sql()``, and
    ``.execute()``/``executemany``/asyncpg ``fetch*`` on a session, connection or cursor.
    Each interpolated value is traced (:mod:`auditlib.code.value_origin`): local variables
    back to their assignments in the function, loop variables to what they iterate,
    parameters to the project's call sites.

    Why: a value spliced into SQL text is parsed as SQL: data theft, tenant isolation
    bypass, ``DROP TABLE``. Bound parameters (``text("... :id")`` with params, DBAPI
    ``execute("... %s", (x,))``) are safe and never flagged.
    A sink's argument that is a statement object (a call result such as ``select()`` or
    ``query.where()``, awaited or unpacked from a tuple, or a parameter annotated with a
    non-string type like ``Select``/``Executable``/``Select[tuple[Any, ...]]``) is not SQL
    text and is not flagged. The title says "built by string formatting" only when the SQL
    is formatted there (or in a local assignment), else "not a literal".
    Severity: BLOCKER when a value comes from a function parameter (request data in a
    handler, or a helper whose callers pass non-constants); WARNING for values of unknown
    origin (a call result, an object attribute) and for Ruff S608 hits (SQL-looking
    strings built by formatting; the engine part) outside a recognised sink;
    RECOMMENDATION for values from settings.
    A module that runs *whole statements* taken from a value (``text(sql)``,
    ``conn.execute(rendered_sql)``, ``f"EXPLAIN {sql}"``; a parameter counts when every
    caller passes such a value) and guards execution with a read-only transaction or
    connection or an authorizer (``SET TRANSACTION READ ONLY``, ``?mode=ro``,
    ``PRAGMA query_only``, ``set_authorizer``) is a query feature by design (an
    analytics / SQL console tool): one RECOMMENDATION for the module, naming the guards
    and listing the sinks (least-privilege role, admission under test), not a WARNING
    per call; request data reaching such a sink directly keeps its BLOCKER.
    Not flagged: literals, module constants (also f-strings of constants), class
    constants (``Model.__tablename__``), whitelist lookups (``COLUMNS[sort]``),
    ``int()``-cast or int-annotated values and calls of project functions annotated
    ``-> int``, loops over constants, values quoted with ``.replace("'", "''")`` (the SQL
    literal escape), a ``ContextVar`` the app only ever sets to literals (``BEGIN {mode}``),
    the output of ``template.render(k=v)`` when the project's SQL templates
    (``*.sql.jinja``) print none of those keywords with ``{{ }}`` (used only in ``{% if %}``,
    the values bound as ``:params``), ``self.query`` where ``query`` is a
    ``@property``/``@cached_property`` returning a statement object (or annotated with a
    non-string type), migrations and tests (their SQL is not fed by
    requests); Ruff S608 hits on the message of an exception or a log call
    (``raise FilterError(f"Select a key from {name}")``); ``.execute()`` on an instance
    of a project class that defines ``execute`` itself without a database base class
    (a sandbox or job runner session, typed through annotations, constructors,
    ``with ... as`` and the return annotations of project methods).
    """
    chk = sql_injection.check
    project = Project.of(ctx)
    sources = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None]
    covered_functions: set[tuple[str, int]] = set()
    for src in sources:
        if not SINK_HINT.search(src.text or ""):
            continue
        imports = {k: project.absolute(src, v) for k, v in import_map(src.tree).items()}
        tracer = tracer_for(src, project, sources)
        guards = [(m.group(0), src.text.count("\n", 0, m.start()) + 1) for m in READ_ONLY_GUARD.finditer(src.text)]
        by_design: list[tuple[ast.Call, str, list]] = []  # whole caller statements behind the module's guard
        for call, expr, sink in sql_sinks(src, imports):
            fn = _function_line(tracer, call)
            covered_functions.add((src.path, fn))
            for c in of_type(expr, ast.Call):  # text(where_clause(x)): the helper's SQL is judged here
                found = tracer.callee(c)
                if found is not None:
                    covered_functions.add((found[0].path, found[1].lineno))
            if sink.startswith(".") and _statement_object(tracer, expr, call):
                continue  # session.execute(stmt) with stmt = text(...)/select(...): analysed there
            if sink.startswith(".") and _project_method(tracer, project, call):
                continue  # sandbox.execute(code): the project's own method on its own class, not a driver
            _built, parts = tracer.string_parts(expr, call)
            risky = [p for p in parts if p.kind in SEVERITY and not _harmless(ctx, tracer, p, call)]
            if not risky:
                continue
            if guards and all(p.kind != "param" for p in risky) and _whole_statement(tracer, expr, call):
                by_design.append((call, sink, risky))
                continue
            severity = max((SEVERITY[p.kind] for p in risky), key=lambda s: s.rank)
            how = "built by string formatting" if _formatted(tracer, expr, call) else "not a literal"
            yield chk.finding(
                ctx, severity, f"SQL passed to {sink} is {how}",
                f"The SQL given to {sink} includes "
                + "; ".join(f"`{p.text}` ({p.detail or p.kind}, line {p.line})" for p in risky[:4])
                + ". Values spliced into SQL text are parsed as SQL (injection), unlike bound parameters.",
                "Use bound parameters: `text(\"... WHERE id = :id\").bindparams(id=value)` or "
                "`session.execute(stmt, {\"id\": value})`; for identifiers (columns, sort order) map "
                "the input through a whitelist dict of constants.",
                src.path, call.lineno, key=f"{sink}:{ast.unparse(expr)[:60]}")
        if by_design:
            yield _guarded_statements(ctx, chk, src, by_design, guards)
    try:
        hits = [h for h in ruff_hits(ctx, ("S608",)) if h.code == "S608"]
    except RuffUnavailable as exc:
        yield not_verified(chk.id, chk.area, "SQL strings built outside recognised sinks (Ruff S608)", str(exc))
        return
    by_path = {s.path: s for s in sources}
    for h in hits:
        src = by_path.get(h.file)
        if src is None:
            continue
        tracer = tracer_for(src, project, sources)
        on_line = [n for n in of_type(src.tree, (ast.JoinedStr, ast.BinOp, ast.Call)) if n.lineno == h.line]
        node = next((n for n in on_line if n.col_offset == h.column - 1), None) or next(  # the string Ruff means
            (n for n in on_line if not isinstance(n, ast.Call)), None) or next(iter(on_line), None)
        if node is None or (src.path, _function_line(tracer, node)) in covered_functions:
            continue
        if _message_text(tracer, node):
            continue  # raise SomeError(f"Select a key from {name}"): a message, never executed
        callees = [tracer.callee(c) for c in of_type(src.tree, ast.Call) if c.lineno == h.line]
        if any(c is not None and (c[0].path, c[1].lineno) in covered_functions for c in callees):
            continue  # passed straight to a function whose sink is analysed (and reported) there
        _built, parts = tracer.string_parts(node, node)
        risky = [p for p in parts if p.kind in ("param", "unknown")]
        if risky:
            yield chk.finding(
                ctx, Severity.WARNING, "SQL text built by string formatting (Ruff S608)",
                "A SQL-looking string is assembled from "
                + "; ".join(f"`{p.text}` ({p.detail or p.kind})" for p in risky[:4])
                + "; where it is executed could not be followed, so it may reach the database unbound.",
                "Build the statement with SQLAlchemy constructs or bound parameters.",
                src.path, h.line, key=f"S608:{ast.unparse(node)[:60]}")


STRING_TYPES = {"str", "Any", "LiteralString", "bytes", "object", "typing.Any", "typing.LiteralString"}
# The module runs statements under a read-only transaction / connection or an authorizer
READ_ONLY_GUARD = re.compile(
    r"SET\s+(?:SESSION\s+CHARACTERISTICS\s+AS\s+)?TRANSACTION\s+READ\s+ONLY|default_transaction_read_only"
    r"|postgresql_readonly|[?&]mode=ro\b|PRAGMA\s+query_only|\.set_authorizer\(", re.IGNORECASE)
STATEMENT_PREFIX = re.compile(r"\s*(EXPLAIN(\s+(ANALYZE|VERBOSE|QUERY\s+PLAN|\([^)]*\)))*)?\s*", re.IGNORECASE)
DB_BASE = re.compile(r"sqlalchemy|sqlmodel|asyncpg|psycopg|aiosqlite|sqlite3|databases|Session|Connection|Cursor"
                     r"|Engine|Pool", re.IGNORECASE)
MESSAGE_CALL = re.compile(r"(Error|Exception|Warning)$|^(debug|info|warning|warn|error|exception|critical|log"
                          r"|print|echo|secho|fail|abort)$")


QUOTE_DOUBLED = ("'", "''")
SQL_TEMPLATE = re.compile(r"\.sql\.(jinja2?|j2)$|\.sql$", re.IGNORECASE)


def _node_of(tracer, part, at):
    """The expression a traced part stands for (same line and text), in the function of ``at``."""
    scope = function_of(at, tracer.up) or tracer.tree
    return next((n for n in of_type(scope, ast.expr) if getattr(n, "lineno", 0) == part.line
                 and ast.unparse(n)[:80] == part.text), None)


def _harmless(ctx, tracer, part, at) -> bool:
    """A value that cannot change the statement though it is spliced into SQL text: quoted
    with ``.replace("'", "''")`` (the SQL literal escape: it stays one string literal), read
    from a ContextVar that the app only ever sets to literals (``BEGIN {mode}`` with mode
    "IMMEDIATE"/"DEFERRED"), or the output of a Jinja template whose render values appear in
    the project's SQL templates only in ``{% if %}`` tests (bound as ``:params``)."""
    node = _node_of(tracer, part, at)
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    f = node.func
    if f.attr == "replace" and len(node.args) == 2 and tuple(literal(a) for a in node.args) == QUOTE_DOUBLED:
        return True
    if f.attr == "get" and not node.args and isinstance(f.value, ast.Name):
        return _literal_context_var(ctx, tracer, f.value.id)
    if f.attr == "render" and not node.args and node.keywords and all(k.arg for k in node.keywords):
        return _template_values_not_output(ctx, {k.arg for k in node.keywords})
    return False


def _literal_context_var(ctx, tracer, name: str) -> bool:
    """``name`` is a module-level (or imported) ``ContextVar`` whose default and every
    ``name.set(...)`` in the app are literals (or a conditional between literals)."""
    def const(v):
        if isinstance(v, ast.IfExp):
            return const(v.body) and const(v.orelse)
        return literal(v) is not NOT_LITERAL
    decl = next((st.value for st in tracer.tree.body if isinstance(st, (ast.Assign, ast.AnnAssign))
                 and st.value is not None and any(isinstance(t, ast.Name) and t.id == name
                                                  for t in (st.targets if isinstance(st, ast.Assign) else [st.target]))),
                None)
    if decl is not None and not (isinstance(decl, ast.Call) and dotted(decl.func).rsplit(".", 1)[-1] == "ContextVar"
                                 and all(const(k.value) for k in decl.keywords if k.arg == "default")):
        return False
    if decl is None and not any(isinstance(st, ast.ImportFrom) and any((a.asname or a.name) == name for a in st.names)
                                for st in tracer.tree.body):
        return False
    sources = [f for f in ctx.index.files.values() if f.is_python and name in (f.text or "") and f.tree is not None]
    sets = [c for src in sources for c in of_type(src.tree, ast.Call)
            if isinstance(c.func, ast.Attribute) and c.func.attr == "set" and dotted(c.func.value) == name]
    return bool(sets) and all(len(c.args) == 1 and const(c.args[0]) for c in sets)


def _template_values_not_output(ctx, names: set[str]) -> bool:
    """The project ships SQL templates (``*.sql.jinja``) and none of ``names`` is printed
    by ``{{ ... }}`` in any of them (directly or as a ``{% for x in name %}`` loop)."""
    templates = [f for path, f in ctx.index.files.items() if SQL_TEMPLATE.search(path) and "{%" in (f.text or "")]
    if not templates:
        return False
    for t in templates:
        printed = set(re.findall(r"\w+", " ".join(re.findall(r"\{\{(.*?)\}\}", t.text, re.DOTALL))))
        for var, seq in re.findall(r"\{%-?\s*for\s+(\w+)\s+in\s+(\w+)", t.text):
            if var in printed:
                printed.add(seq)
        if printed & names:
            return False
    return True


def _statement_object(tracer, expr, at) -> bool:
    """Whether a method sink's argument is a statement object, not a string: a call
    result (``select()``/``text()``/``query.where()``, awaited or not), directly, through
    its local assignments (tuple unpacking included), or a parameter annotated with a
    non-string type (``stmt: Select``, ``statement: Executable``)."""
    def is_stmt(v):
        if isinstance(v, ast.Await):
            v = v.value
        if isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name) and v.value.id == "self":
            return _property_statement(tracer, v.attr, at, is_stmt)
        if not isinstance(v, ast.Call):
            return False
        f = v.func  # "...".format() / ", ".join() build strings; query.join(Other, cond) is a statement
        return not (isinstance(f, ast.Attribute) and (f.attr == "format" or f.attr == "join" and isinstance(
            f.value, ast.Constant)))
    if isinstance(expr, ast.Name):
        fn = tracer.up.get(id(at))
        while fn is not None and not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            fn = tracer.up.get(id(fn))
        values = tracer.assignments(expr.id, fn, at) + _unpacked(expr.id, fn, at)
        if values:
            return all(is_stmt(v) for v in values)
        p = tracer.param(expr.id, fn)
        return p is not None and p.annotation is not None and not _string_annotation(p.annotation)
    return is_stmt(expr)


def _property_statement(tracer, attr: str, at, is_stmt) -> bool:
    """``self.attr`` is a ``@property``/``@cached_property`` of the enclosing class whose
    return annotation is not a string type, or whose every return value is a statement
    object (``return self._build_query()``, directly or through a local)."""
    cls = tracer.up.get(id(at))
    while cls is not None and not isinstance(cls, ast.ClassDef):
        cls = tracer.up.get(id(cls))
    if cls is None:
        return False
    m = next((m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name == attr
              and any(dotted(d).rsplit(".", 1)[-1] in ("property", "cached_property") for d in m.decorator_list)), None)
    if m is None:
        return False
    if m.returns is not None:
        return not _string_annotation(m.returns)
    rets = [r.value for r in of_type(m, ast.Return) if r.value is not None]
    def stmt(v, r):
        if isinstance(v, ast.Name):
            vals = tracer.assignments(v.id, m, r)
            return bool(vals) and all(not isinstance(x, ast.Attribute) and is_stmt(x) for x in vals)
        return not isinstance(v, ast.Attribute) and is_stmt(v)
    return bool(rets) and all(stmt(v, r) for v, r in zip(rets, [r for r in of_type(m, ast.Return) if r.value]))


def _string_annotation(ann: ast.AST) -> bool:
    """Whether a parameter's annotation admits a string: ``str``, ``Optional[str]``,
    ``str | TextClause``, ``Any``; not ``Select[tuple[Any, ...]]`` (a statement whose
    type arguments mention Any)."""
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            ann = ast.parse(ann.value, mode="eval").body
        except SyntaxError:
            return True
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        return _string_annotation(ann.left) or _string_annotation(ann.right)
    if isinstance(ann, ast.Subscript):
        outer = dotted(ann.value).rsplit(".", 1)[-1]
        args = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        if outer in ("Optional", "Union"):
            return any(_string_annotation(a) for a in args)
        if outer == "Annotated":
            return _string_annotation(args[0])
        return False
    return dotted(ann) in STRING_TYPES


def _formatted(tracer, expr, at, depth: int = 3) -> bool:
    """Whether the SQL is assembled by formatting here (an f-string, ``%``, ``+``,
    ``.format``, ``"".join``), directly or in a local assignment; not a bare value."""
    if isinstance(expr, (ast.JoinedStr, ast.BinOp)):
        return True
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and (
            expr.func.attr == "format" or expr.func.attr == "join" and isinstance(expr.func.value, ast.Constant)):
        return True
    if isinstance(expr, ast.Name) and depth > 0:
        fn = function_of(at, tracer.up)
        return any(_formatted(tracer, v, v, depth - 1) for v in tracer.assignments(expr.id, fn, at))
    return False


def _message_text(tracer, node) -> bool:
    """A string built as the argument of an exception or a log/print call
    (``raise SyntaxError(f"Select a key from {name}")``): text for people, not SQL."""
    cur, parent = node, tracer.up.get(id(node))
    while parent is not None and not isinstance(parent, ast.stmt):
        if isinstance(parent, ast.Call) and cur is not parent.func:
            return bool(MESSAGE_CALL.search(dotted(parent.func).rsplit(".", 1)[-1]))
        cur, parent = parent, tracer.up.get(id(parent))
    return isinstance(parent, ast.Raise)


def _whole_statement(tracer, expr, at, depth: int = 3) -> bool:
    """The SQL is a complete statement taken from a value, not values spliced into the
    app's own SQL text: a variable, a parameter or a call result (``text(sql)``,
    ``conn.execute(rendered_sql)``, ``sql.replace(":", r"\\:")``), or such a value after
    an ``EXPLAIN`` prefix; a parameter counts when every call site passes such a value."""
    while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) \
            and expr.func.attr in ("replace", "strip", "rstrip", "lstrip"):
        expr = expr.func.value
    if isinstance(expr, ast.JoinedStr):
        consts = [v for v in expr.values if isinstance(v, ast.Constant)]
        values = [v for v in expr.values if isinstance(v, ast.FormattedValue)]
        return len(values) == 1 and expr.values[-1] is values[0] and \
            STATEMENT_PREFIX.fullmatch("".join(str(c.value) for c in consts)) is not None and \
            _whole_statement(tracer, values[0].value, at, depth)
    if isinstance(expr, (ast.BinOp, ast.Constant)) or _formatted(tracer, expr, at, 0):
        return False
    if isinstance(expr, ast.Call):  # a project helper that formats SQL (build_where(x)) splices values
        found = tracer.callee(expr)
        if found is not None:
            t = tracer if found[0] is tracer.src else tracer_for(found[0], tracer.project, tracer.app_sources)
            return not any(_formatted(t, r.value, r, 1) for r in of_type(found[1], ast.Return)
                           if r.value is not None)
    if isinstance(expr, ast.Name):
        fn = function_of(at, tracer.up)
        values = tracer.assignments(expr.id, fn, at)
        if values:
            return depth > 0 and all(_whole_statement(tracer, v, v, depth - 1) for v in values)
        p = tracer.param(expr.id, fn)
        if p is not None and depth > 0:
            return all(_whole_statement(t, arg, call, depth - 1) for t, arg, call in _call_sites(tracer, fn, p))
    return True


def _call_sites(tracer, fn, p: ast.arg):
    """(tracer, argument, call) for each call of ``fn`` in the app that passes ``p``."""
    args = [x.arg for x in [*fn.args.posonlyargs, *fn.args.args]]
    skip = 1 if args and args[0] in ("self", "cls") else 0
    for src in tracer.app_sources:
        if src.tree is None or fn.name not in (src.text or ""):
            continue
        t = tracer if src is tracer.src else tracer_for(src, tracer.project, tracer.app_sources)
        for call in of_type(src.tree, ast.Call):
            if dotted(call.func).rsplit(".", 1)[-1] != fn.name:
                continue
            arg = next((k.value for k in call.keywords if k.arg == p.arg), None)
            if arg is None and p.arg in args and 0 <= args.index(p.arg) - skip < len(call.args):
                arg = call.args[args.index(p.arg) - skip]
            if arg is not None:
                yield t, arg, call


def _guarded_statements(ctx, chk, src, found, guards):
    """One RECOMMENDATION for a module that runs whole statements from values behind
    read-only guards: a query feature by design (an analytics or SQL console tool)."""
    kinds: dict[str, int] = {}
    for text, line in guards:
        kinds.setdefault(re.sub(r"\s+", " ", text.strip("(.?&")), line)
    guard_text = ", ".join(f"`{k}` (line {ln})" for k, ln in list(kinds.items())[:4])
    values = list(dict.fromkeys(p.text for _c, _s, risky in found for p in risky))
    sites = ", ".join(f"{sink} at line {call.lineno}" for call, sink, _r in found[:6])
    call, _sink, _risky = found[0]
    f = chk.finding(
        ctx, Severity.RECOMMENDATION, "Whole SQL statements executed from values behind a read-only guard",
        f"{sites} run a complete SQL statement taken from "
        + ", ".join(f"`{v}`" for v in values[:3])
        + " rather than values spliced into the app's own SQL text: the module runs statements written "
          f"elsewhere (a query or analytics feature), under {guard_text}. No app query is built from these "
          "values, so there is nothing to inject into; what the feature can reach is whatever its database "
          "role can read.",
        "Check the statements before they run (allowed statements, tables and functions, with tests), let "
        "only the intended callers reach them, and run them as a database role granted SELECT on the tables "
        "they may read, so the read-only transaction is not the only limit.",
        src.path, call.lineno, key="guarded-statements")
    for c, _s, _r in found[1:]:
        f.locations.append(Location(src.path, c.lineno, c.lineno, src.line(c.lineno)[:300]))
    return f


WRAPPERS = {"Optional", "Annotated", "AsyncIterator", "Iterator", "AsyncGenerator", "Generator", "Awaitable",
            "ContextManager", "AsyncContextManager", "AbstractContextManager", "AbstractAsyncContextManager"}


def _project_method(tracer, project, call: ast.Call) -> bool:
    """``session.execute(code)`` where ``session`` is an instance of a project class that
    defines ``execute`` itself (a sandbox session, a job runner): the project's own
    method runs, not a database driver's. A class with a database base
    (``class TenantSession(AsyncSession)``) stays a sink."""
    owner = _instance_of(tracer, project, call.func.value, call, 8)
    return owner is not None and _defines(project, owner, call.func.attr, 3)


def _defines(project, owner, method: str, depth: int) -> bool:
    src, cls = owner
    if depth <= 0:
        return False
    for b in cls.bases:
        base = b.value if isinstance(b, ast.Subscript) else b
        if DB_BASE.search(project.qualify(src, base)):
            return False
    if any(isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name == method for m in cls.body):
        return True
    return any(_defines(project, found, method, depth - 1) for found in
               (_class_named(project, src, b.value if isinstance(b, ast.Subscript) else b) for b in cls.bases)
               if found is not None)


def _class_named(project, src, node):
    """(source, ClassDef) of the project class a name or dotted reference points at."""
    if isinstance(node, ast.Name):
        c = next((c for c in src.tree.body if isinstance(c, ast.ClassDef) and c.name == node.id), None)
        if c is not None:
            return src, c
    if not isinstance(node, (ast.Name, ast.Attribute)):
        return None
    mod, _, name = project.qualify(src, node).rpartition(".")
    target = project.by_module.get(mod) if mod else None
    if target is None or target.tree is None:
        return None
    c = next((c for c in target.tree.body if isinstance(c, ast.ClassDef) and c.name == name), None)
    return (target, c) if c is not None else None


def _annotation_class(project, src, ann, depth: int = 4):
    """The project class an annotation names, through Optional / a single-member Union /
    Annotated / (Async)Iterator / (Async)ContextManager / Awaitable wrappers."""
    if ann is None or depth <= 0:
        return None
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            ann = ast.parse(ann.value, mode="eval").body
        except SyntaxError:
            return None
    members = None
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        members = [ann.left, ann.right]
    elif isinstance(ann, ast.Subscript):
        outer = dotted(ann.value).rsplit(".", 1)[-1]
        args = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        if outer == "Union":
            members = args
        elif outer in WRAPPERS:
            return _annotation_class(project, src, args[0], depth - 1)
        elif outer == "Coroutine":
            return _annotation_class(project, src, args[-1], depth - 1)
        else:
            return _class_named(project, src, ann.value)
    if members is not None:
        real = [m for m in members if not (isinstance(m, ast.Constant) and m.value is None)]
        return _annotation_class(project, src, real[0], depth - 1) if len(real) == 1 else None
    return _class_named(project, src, ann)


def _instance_of(tracer, project, node, at, depth: int):
    """(source, ClassDef) of the project class ``node`` is an instance of, read from
    ``with ... as x`` targets, assignments, annotations, constructors and the return
    annotations of project functions and methods; None when it cannot be told."""
    if depth <= 0 or node is None:
        return None
    if isinstance(node, ast.Await):
        node = node.value
    src = tracer.src
    fn = function_of(at, tracer.up)
    if isinstance(node, ast.Name) and fn is not None:
        for w in reversed(of_type(fn, (ast.With, ast.AsyncWith))):  # the nearest binding first
            if w.lineno <= at.lineno:
                for item in w.items:
                    if isinstance(item.optional_vars, ast.Name) and item.optional_vars.id == node.id:
                        found = _instance_of(tracer, project, item.context_expr, at, depth - 1)
                        if found is not None:
                            return found
        for v in tracer.assignments(node.id, fn, at):
            found = _instance_of(tracer, project, v, v, depth - 1)
            if found is not None:
                return found
        p = tracer.param(node.id, fn)
        return _annotation_class(project, src, p.annotation) if p is not None else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        cls = tracer.up.get(id(at))
        while cls is not None and not isinstance(cls, ast.ClassDef):
            cls = tracer.up.get(id(cls))
        for st in cls.body if cls is not None else []:
            if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.target.id == node.attr:
                return _annotation_class(project, src, st.annotation)
        for st in of_type(cls, (ast.Assign, ast.AnnAssign)) if cls is not None else []:
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            if any(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                   and t.attr == node.attr for t in targets):
                found = _annotation_class(project, src, st.annotation) if isinstance(st, ast.AnnAssign) else \
                    _instance_of(tracer, project, st.value, st.value, depth - 1)
                if found is not None:
                    return found
        return None
    if isinstance(node, ast.Call):
        found = _class_named(project, src, node.func)  # a constructor
        if found is not None:
            return found
        callee = tracer.callee(node)
        if callee is not None:
            return _annotation_class(project, callee[0], callee[1].returns)
        if isinstance(node.func, ast.Attribute):
            owner = _instance_of(tracer, project, node.func.value, at, depth - 1)
            method = _method(project, owner, node.func.attr, 3) if owner is not None else None
            if method is not None:
                return _annotation_class(project, method[0], method[1].returns)
    return None


def _method(project, owner, name: str, depth: int):
    """(source, def) of method ``name`` on a project class or its project bases."""
    src, cls = owner
    m = next((m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name == name),
             None)
    if m is not None or depth <= 0:
        return (src, m) if m is not None else None
    for b in cls.bases:
        base = _class_named(project, src, b.value if isinstance(b, ast.Subscript) else b)
        found = _method(project, base, name, depth - 1) if base is not None else None
        if found is not None:
            return found
    return None


def _unpacked(name: str, fn, at) -> list[ast.AST]:
    """Values of ``name, other = value`` assignments before ``at`` in ``fn``."""
    if fn is None:
        return []
    return [n.value for n in of_type(fn, ast.Assign) if n.lineno < at.lineno
            and any(isinstance(t, (ast.Tuple, ast.List)) and any(isinstance(e, ast.Name) and e.id == name
                                                                  for e in t.elts) for t in n.targets)]


def _function_line(tracer, node) -> int:
    p = tracer.up.get(id(node))
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
        p = tracer.up.get(id(p))
    return p.lineno if p is not None else 0
