"""Tenant-isolation calibration on real code (issue 14): the per-endpoint verdicts of
``auditlib.tenancy`` on the projects of ``projects.toml``, checked three ways.

    AUDITLIB_CALIBRATION_CACHE=/work/calib-cache PYTHONPATH=$PWD \\
        .venv/bin/python bench/calibration/tenancy.py [PROJECT ...] [-v] [--sample N] [--routes]

Per project it prints:

1. the verdict distribution (SEC-013's table);
2. **(a) missed tenant data**: routes with the verdict "no tenant data" whose handler (or one
   of its dependencies) reaches, through an over-approximating call graph independent of
   the engine (imports, classes and their bases, methods matched by name when few classes
   define them), a query on a table that has the org column (``select(M)``, ``M.get(...)``,
   a class method of ``M``, ``session.get(M, ...)``, raw SQL naming the table);
3. **(b) missed authentication**: routes the inventory reports unprotected although one of
   their dependencies (any level, followed through the helpers it calls) rejects with
   401/403 or uses a ``fastapi.security`` scheme;
4. tenant BLOCKERs (SEC-011 / SEC-012) with their labels and the precision;
5. the labelled verdict sample: how many routes have the verdict a reviewer gave them.

Both (a) and (b) are *candidates*: the oracle over-approximates (a method matched by name
may not be the one called). Read the code behind each before calling it an engine error.

Labels live in ``labels/<project>-tenancy.jsonl``, two kinds of JSON lines:

* verdict labels, one per route, the verdict a reviewer gives after reading the handler::

    {"route": "GET /api/v1/datasets/{dataset_id}", "verdict": "<engine verdict when labelled>",
     "expected": "scoped (org)", "reason": "one line citing file:line"}

  ``expected`` may be a list when several classes are right (``["scoped (org)", "platform"]``);
  a route is right when its current verdict is one of them;
* tenant finding labels, calibrate.py's format (``fingerprint``, ``check``, ``label`` TRUE /
  FALSE / OVERRATED ...); labels of the same findings in ``labels/<project>.jsonl`` count too.

``--sample N`` prints verdict-label stubs for N random unlabelled routes whose verdict is not a
BLOCKER class (seeded by the project name) and finding stubs for unlabelled tenant BLOCKERs.
``--routes`` lists every route with its verdict and reason.
"""
from __future__ import annotations

import argparse
import ast
import collections
import json
import random
import re
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from calibrate import fetch, load_labels, match, right, stub  # noqa: E402

TENANT_CHECKS = ("SEC-011", "SEC-012")
FuncNode = (ast.FunctionDef, ast.AsyncFunctionDef)
# methods too generic to match by name (dict / list / session / query methods)
GENERIC = {"get", "list", "create", "update", "delete", "add", "all", "first", "one", "execute", "commit", "refresh",
           "close", "dict", "json", "copy", "items", "keys", "values", "append", "extend", "run", "call", "__init__",
           "__call__", "scalar", "scalars", "flush", "merge", "remove", "pop", "set", "save", "send", "format", "join",
           "split", "strip", "encode", "decode", "model_dump", "model_validate", "from_orm", "parse_obj", "load",
           "loads", "dump", "dumps", "read", "write", "open", "start", "stop", "wait", "sleep", "info", "debug",
           "warning", "error", "exception", "filter", "where", "order_by", "limit", "offset", "count", "exists"}
MAX_BY_NAME = 4
AUTH_EXC = re.compile(r"(?i)unauthori[sz]|forbidden|notauthenticated|unauthenticated|permissiondenied|"
                      r"authenticationerror|authorizationerror|invalidtoken|invalidcredentials|accessdenied")
# a refusal that sends the browser to the login page (a session-based app's 401)
LOGIN_REDIRECT = re.compile(r"(?is)(HTTP_30[1237]|\b30[1237]\b).*Location['\"]?\s*:[^}]*\blogin\b|"
                            r"Location['\"]?\s*:[^}]*\blogin\b.*(HTTP_30[1237]|\b30[1237]\b)")
QUERY_CALLS = {"select", "update", "delete", "insert", "get", "get_one", "query", "join", "outerjoin", "select_from",
               "execute", "scalars", "scalar", "exists"}


# ---------------------------------------------------------------------------------------
class Oracle:
    """An engine-independent, over-approximating view of calls and data accesses."""

    def __init__(self, ctx):
        from auditlib.code.pymodules import functions, project
        from auditlib.facts.orm_schema import schema

        self.ctx = ctx
        self.p = project(ctx)
        self.s = schema(ctx)
        self.by_name: dict[str, list] = collections.defaultdict(list)  # method name -> [(mod, node, "mod:Cls")]
        self.classes: dict[str, tuple] = {}
        for mod in self.p.by_path.values():
            for qual, node in functions(mod):
                if "." in qual:
                    cls = qual.rsplit(".", 1)[0]
                    self.by_name[node.name].append((mod, node, f"{mod.name}:{cls}"))
        self.org_tables = {t for t in self.s.tables if self.s.org_col(t)}
        self.org_models = {q: t for q, t in self.s.by_class.items() if t in self.org_tables}
        self._refs: dict[int, list] = {}
        self._callees: dict[int, list] = {}
        self._auth: dict[int, str] = {}

    # -- calls ----------------------------------------------------------------------------
    def method(self, cls_qual: str, name: str, depth: int = 0):
        modname, _, cname = cls_qual.partition(":")
        mod = self.p.modules.get(modname)
        cls = mod.defs.get(cname.split(".")[0]) if mod else None
        if not isinstance(cls, ast.ClassDef) or depth > 8:
            return None
        for n in cls.body:
            if isinstance(n, FuncNode) and n.name == name:
                return mod, n
        for b in cls.bases:
            sym = self.p.resolve(mod, b.value if isinstance(b, ast.Subscript) else b)
            if sym is not None and sym.kind == "class":
                found = self.method(sym.qualname, name, depth + 1)
                if found:
                    return found
        return None

    def callees(self, mod, func) -> list:
        """(label, module, function) of every project function ``func`` may call."""
        if id(func) in self._callees:
            return self._callees[id(func)]
        from auditlib.code.pymodules import own_nodes
        from auditlib.facts.routes import handler_params

        out, seen = [], set()

        def add(label, m, f):
            if id(f) not in seen and f is not func:
                seen.add(id(f))
                out.append((label, m, f))

        for n in own_nodes(func):
            if not isinstance(n, ast.Call):
                continue
            f = n.func
            sym = self.p.resolve(mod, f)
            if sym is not None and sym.kind == "func":
                add(sym.qualname, sym.module, sym.node)
                continue
            if sym is not None and sym.kind == "class":
                init = self.method(sym.qualname, "__init__")
                if init:
                    add(f"{sym.qualname}.__init__", *init)
                continue
            if isinstance(f, ast.Attribute):
                owner = self.p.resolve(mod, f.value)
                if owner is not None and owner.kind == "class":
                    found = self.method(owner.qualname, f.attr)
                    if found:
                        add(f"{owner.qualname}.{f.attr}", *found)
                        continue
                cands = self.by_name.get(f.attr, [])
                if f.attr not in GENERIC and 0 < len(cands) <= MAX_BY_NAME:
                    for m, node, cls in cands:
                        add(f"{cls}.{f.attr}~", m, node)  # ~: matched by name
            elif isinstance(f, ast.Name):  # a local import inside the function
                pass
        for pname, dexpr, _ann, dmod in handler_params(func, self.p, mod):  # sub-dependencies
            if dexpr is not None and dexpr.args:
                sym = self.p.resolve(dmod, dexpr.args[0].func if isinstance(dexpr.args[0], ast.Call) else dexpr.args[0])
                if sym is not None and sym.kind == "func":
                    add(sym.qualname, sym.module, sym.node)
        self._callees[id(func)] = out
        return out

    def reach(self, roots, depth: int = 8, limit: int = 4000):
        """Breadth-first: [(chain, module, function)] reachable from ``roots``."""
        seen = {id(f) for _, _, f in roots}
        frontier = [((label,), m, f) for label, m, f in roots]
        out = list(frontier)
        for _ in range(depth):
            nxt = []
            for chain, m, f in frontier:
                for label, m2, f2 in self.callees(m, f):
                    if id(f2) in seen:
                        continue
                    seen.add(id(f2))
                    nxt.append(((*chain, label), m2, f2))
            out += nxt
            frontier = nxt
            if len(out) > limit:
                break
        return out

    # -- data accesses --------------------------------------------------------------------
    def tenant_refs(self, mod, func) -> list:
        """[(table, line, how)] of queries on org-column tables in ``func``'s own code."""
        if id(func) in self._refs:
            return self._refs[id(func)]
        from auditlib.code.pymodules import own_nodes
        from auditlib.code.pyast import dotted, literal

        out = []
        nodes = own_nodes(func)
        for n in nodes:
            if isinstance(n, ast.Call):
                name = dotted(n.func).rsplit(".", 1)[-1]
                if name in QUERY_CALLS:
                    for a in n.args[:2]:
                        for x in ast.walk(a):
                            t = self.model_of(mod, x)
                            if t:
                                out.append((t, n.lineno, f"{name}({dotted(x)})"))
                                break
                if isinstance(n.func, ast.Attribute):  # Model.get_or_raise(...), Model.read_async(...)
                    t = self.model_of(mod, n.func.value)
                    if t:
                        out.append((t, n.lineno, f"{dotted(n.func)}(...)"))
                if name == "text" and n.args and isinstance(literal(n.args[0]), str):
                    for t in self.org_tables:
                        if re.search(rf"\b(from|join|update|into)\s+\"?{re.escape(t)}\b", literal(n.args[0]), re.I):
                            out.append((t, n.lineno, "text(...)"))
        # a class method of a model on ``cls`` (``select(cls)`` in ``Dataset.get_or_raise``) is
        # counted at its call site: ``Dataset.get_or_raise(...)`` above
        self._refs[id(func)] = out
        return out

    def model_of(self, mod, expr) -> str | None:
        if not isinstance(expr, (ast.Name, ast.Attribute)):
            return None
        sym = self.p.resolve(mod, expr)
        if sym is not None and sym.kind == "class":
            return self.org_models.get(sym.qualname)
        return None

    def roots(self, route) -> list:
        from auditlib.facts.routes import handler_params

        out = [(route.handler, route.module, route.node)]
        for pname, dexpr, _ann, dmod in handler_params(route.node, self.p, route.module):
            if dexpr is not None and dexpr.args:
                tgt = dexpr.args[0]
                sym = self.p.resolve(dmod, tgt.func if isinstance(tgt, ast.Call) else tgt)
                if sym is not None and sym.kind == "func":
                    out.append((f"Depends({sym.short})", sym.module, sym.node))
        return out

    def tenant_reach(self, route):
        """First (chain, table, file:line, how) of a query on an org-column table, or None."""
        for chain, m, f in self.reach(self.roots(route)):
            refs = self.tenant_refs(m, f)
            if refs:
                t, line, how = refs[0]
                return chain, t, f"{m.path}:{line}", how
        return None

    # -- authentication -------------------------------------------------------------------
    def rejects(self, mod, func, depth: int = 0) -> str:
        """Where ``func`` or a helper it calls (3 levels) rejects with 401/403, or ""."""
        key = id(func)
        if key in self._auth:
            return self._auth[key]
        self._auth[key] = ""
        from auditlib.code.pymodules import own_nodes
        from auditlib.code.pyast import dotted
        from auditlib.facts.routes import _denial

        found = ""
        for n in own_nodes(func):
            if _denial(n):
                found = f"{mod.path}:{n.lineno}"
                break
            if isinstance(n, ast.Raise) and n.exc is not None and LOGIN_REDIRECT.search(ast.unparse(n.exc)):
                found = f"{mod.path}:{n.lineno} redirect to login"
                break
            if isinstance(n, ast.Raise) and n.exc is not None:
                exc = n.exc.func if isinstance(n.exc, ast.Call) else n.exc
                name = dotted(exc).rsplit(".", 1)[-1]
                sym = self.p.resolve(mod, exc)
                bases = self.p.class_bases(sym.module, sym.node) if sym is not None and sym.kind == "class" else []
                if AUTH_EXC.search(name) or any(AUTH_EXC.search(b.rsplit(".", 1)[-1].rsplit(":", 1)[-1]) for b in bases):
                    found = f"{mod.path}:{n.lineno} raise {name}"
                    break
                if sym is not None and sym.kind == "func" and any(_denial(x) or isinstance(x, ast.Return) and isinstance(
                        x.value, ast.Call) and AUTH_EXC.search(dotted(x.value.func)) for x in own_nodes(sym.node)):
                    found = f"{mod.path}:{n.lineno} raise {name}()"
                    break
            if isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] in (
                    "HTTPBearer", "OAuth2PasswordBearer", "APIKeyHeader", "APIKeyCookie", "HTTPBasic") and not any(
                    k.arg == "auto_error" and isinstance(k.value, ast.Constant) and k.value.value is False
                    for k in n.keywords):  # a scheme that rejects a request without the credential
                found = f"{mod.path}:{n.lineno} {dotted(n.func)}()"
                break
        if not found and depth < 3:
            for label, m, f in self.callees(mod, func):
                if label.endswith("~"):
                    continue  # only resolved calls: a name match says nothing about the dependency
                sub = self.rejects(m, f, depth + 1)
                if sub:
                    found = f"{label.rsplit(':', 1)[-1]} -> {sub}"
                    break
        self._auth[key] = found
        return found

    def authenticates(self, route) -> str:
        """Evidence that one of the route's dependencies authenticates, or ""."""
        b = _builder(self.ctx)
        for d in route.dependencies:
            for name in (d.name, *d.chain):
                info = _dep_info(b, name)
                if info is None:
                    continue
                if info.get("kind") == "scheme" and info.get("auth"):
                    return f"{name}: {info.get('evidence')}"
                if info.get("node") is not None:
                    ev = self.rejects(info["module"], info["node"])
                    if ev:
                        return f"Depends({name.rsplit(':', 1)[-1]}): {ev}"
        return ""


def _builder(ctx):
    from auditlib.facts.routes import builder
    return builder(ctx)


def _dep_info(b, name):
    from auditlib.tenancy.scoping import _dep_info as info
    return info(b, name)


# ---------------------------------------------------------------------------------------
def open_ctx(root: Path, config: dict, tmp: str):
    from auditlib.target.context import AuditContext

    cfg = Path(tmp) / "auditlib.toml"
    cfg.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
    return AuditContext.open(root, Path(tmp) / "out", config_file=cfg)


def tenant_findings(ctx) -> list[dict]:
    from dataclasses import asdict

    from auditlib.checks import run_checks
    from auditlib.findings import assign_fingerprints

    rows = []
    for f in assign_fingerprints(run_checks(ctx, ids=list(TENANT_CHECKS), source="static")):
        d = asdict(f)
        d["severity"] = f.severity.value
        rows.append(d)
    return rows


def route_key(r) -> str:
    return f"{'|'.join(r.methods)} {r.path}"


def load_tenancy_labels(name: str) -> tuple[dict, list]:
    path = HERE / "labels" / f"{name}-tenancy.jsonl"
    verdicts, findings = {}, []
    if path.exists():
        for ln in path.read_text().splitlines():
            if not ln.strip() or ln.startswith("//"):
                continue
            lb = json.loads(ln)
            if "route" in lb:
                verdicts[lb["route"]] = lb
            else:
                findings.append(lb)
    return verdicts, findings


def expected_of(lb: dict) -> list[str]:
    e = lb["expected"]
    return list(e) if isinstance(e, list) else [e]


def run_project(name: str, p: dict, args) -> dict:
    from auditlib.facts.routes import protection
    from auditlib.tenancy.scoping import BAD, endpoint_verdicts

    root = fetch(name, p["version"])
    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_ctx(root, p.get("config", {}), tmp)
        t0 = time.perf_counter()
        verdicts = endpoint_verdicts(ctx)
        findings = tenant_findings(ctx)
        took = time.perf_counter() - t0
        oracle = Oracle(ctx)
        dist = collections.Counter(v.verdict for v in verdicts)
        print(f"\n== {name} {p['version']}: {len(verdicts)} routes (tenancy {took:.1f} s); org column "
              f"{oracle.s.org_column!r}, {len(oracle.org_tables)} tables with it")
        print("  verdicts: " + ", ".join(f"{n} {k}" for k, n in dist.most_common()))
        missed_data, missed_auth, plumbing = [], [], []
        for v in verdicts:
            if v.verdict == "no tenant data" and oracle.org_tables:
                hit = oracle.tenant_reach(v.route)
                if hit and v.reason.startswith("identity plumbing"):
                    plumbing.append(v)  # the engine saw the query: the logging-in user's own rows
                elif hit:
                    missed_data.append((v, hit))
            if protection(ctx, v.route) is None:
                ev = oracle.authenticates(v.route)
                if ev:
                    missed_auth.append((v, ev))
        inferred = " (tenancy inferred from a table name: informative only)" if oracle.s.tenancy_inferred else ""
        print(f"  (a) 'no tenant data' routes reaching a query on an org-column table: {len(missed_data)}{inferred}"
              + (f"; {len(plumbing)} more judged identity plumbing ({', '.join(route_key(v.route) for v in plumbing[:4])})"
                 if plumbing else ""))
        reviewed = {k for k, lb in load_tenancy_labels(name)[0].items() if "no tenant data" in expected_of(lb)}
        if reviewed & {route_key(v.route) for v, _ in missed_data}:
            print(f"      of which labelled 'no tenant data' after reading the code (oracle over-approximation): "
                  f"{len(reviewed & {route_key(v.route) for v, _ in missed_data})}")
        for v, (chain, t, where, how) in missed_data[: None if args.verbose else 15]:
            print(f"      {route_key(v.route)}: {t} via {' -> '.join(chain)} ({where} {how})")
        if not args.verbose and len(missed_data) > 15:
            print(f"      ... and {len(missed_data) - 15} more (-v)")
        print(f"  (b) routes reported unprotected with an authenticating dependency: {len(missed_auth)}")
        for v, ev in missed_auth[: None if args.verbose else 15]:
            print(f"      {route_key(v.route)}: {ev}")
        if not args.verbose and len(missed_auth) > 15:
            print(f"      ... and {len(missed_auth) - 15} more (-v)")

        vlabels, flabels = load_tenancy_labels(name)
        blockers = [f for f in findings if f["severity"] == "BLOCKER"]
        pairs, _gone = match(blockers, flabels + [lb for lb in load_labels(name) if lb["check"] in TENANT_CHECKS])
        labelled = [(f, lb) for f, lb in pairs if lb is not None]
        ok = sum(right(f, lb) for f, lb in labelled)
        prec = f"{100 * ok / len(labelled):.0f} %" if labelled else "-"
        print(f"  tenant BLOCKERs: {len(blockers)} ({', '.join(f'{c} {n}' for c, n in collections.Counter(f['check'] for f in blockers).items()) or 'none'}); "
              f"precision {prec} ({ok}/{len(labelled)} labelled right)")
        for f, lb in pairs:
            loc = (f.get("locations") or [{}])[0]
            mark = (lb["label"] + ("" if right(f, lb) else "*")) if lb else "UNLABELLED"
            print(f"      {mark:10} {f['check']} {loc.get('file')}:{loc.get('line')} {f['title']} ({len(f.get('routes') or [])} routes)")
        others = [f for f in findings if f["severity"] != "BLOCKER"]
        if others:
            print("  other tenant findings: " + ", ".join(f"{f['severity']} {f['check']} {f['title'][:70]}" for f in others))

        by_key = {route_key(v.route): v for v in verdicts}
        got_right, n_lab, wrong = 0, 0, []
        per_class = collections.Counter()
        for key, lb in vlabels.items():
            v = by_key.get(key)
            if v is None:
                print(f"      GONE route label {key}")
                continue
            n_lab += 1
            if v.verdict in expected_of(lb):
                got_right += 1
                per_class[v.verdict] += 1
            else:
                wrong.append((key, v.verdict, lb))
        if n_lab:
            print(f"  labelled verdicts: {got_right}/{n_lab} right ({100 * got_right / n_lab:.0f} %)")
            for key, got, lb in wrong:
                print(f"      WRONG {key}: {got}, should be {' / '.join(expected_of(lb))} ({lb.get('reason', '')[:150]})")
        if args.routes:
            for v in verdicts:
                print(f"    {v.verdict:16} {route_key(v.route)}  [{v.route.auth}] {v.reason[:160]}")
        if args.sample:
            rnd = random.Random(name)
            todo = [v for v in verdicts if v.verdict not in BAD and route_key(v.route) not in vlabels]
            picked = rnd.sample(todo, min(args.sample, len(todo)))
            print(f"// {name}: {len(picked)} verdict stubs")
            for v in picked:
                print(json.dumps({"route": route_key(v.route), "verdict": v.verdict, "expected": "?",
                                  "handler": f"{v.route.file}:{v.route.handler_line}",
                                  "reason": ""}, ensure_ascii=False))
            for f, lb in pairs:
                if lb is None:
                    print(stub(f))
        open_data = [v for v, _ in missed_data if route_key(v.route) not in reviewed]
        return {"routes": len(verdicts), "dist": dist, "missed_data": len(open_data), "reviewed": len(missed_data) - len(open_data),
                "inferred": bool(inferred), "missed_auth": len(missed_auth),
                "blockers": len(blockers), "blockers_labelled": len(labelled), "blockers_right": ok,
                "verdicts_labelled": n_lab, "verdicts_right": got_right}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("projects", nargs="*", help="project names (default: all in projects.toml)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every candidate of (a) and (b)")
    ap.add_argument("--sample", type=int, default=0, metavar="N", help="print N verdict-label stubs per project")
    ap.add_argument("--routes", action="store_true", help="list every route with its verdict")
    args = ap.parse_args(argv)
    projects = tomllib.loads((HERE / "projects.toml").read_text())["projects"]
    names = args.projects or list(projects)
    rows = {name: run_project(name, projects[name], args) for name in names}
    print("\n== summary (project: routes; (a) 'no tenant data' routes reaching an org-column table, not reviewed as "
          "oracle over-approximation; (b) missed auth; tenant BLOCKERs right/labelled/found; verdicts right/labelled)")
    for name, r in rows.items():
        print(f"  {name:15} {r['routes']:4} routes; (a) {r['missed_data']:3}" + (" (inferred tenancy)" if r["inferred"] else "")
              + (f" +{r['reviewed']} reviewed" if r["reviewed"] else "") + f"; (b) {r['missed_auth']:3}; BLOCKERs "
              f"{r['blockers_right']}/{r['blockers_labelled']}/{r['blockers']}; verdicts {r['verdicts_right']}/{r['verdicts_labelled']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
