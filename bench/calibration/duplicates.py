"""Duplicates on real code: how many findings of each check likely describe one defect.

    .venv/bin/python bench/calibration/duplicates.py                 # every project
    .venv/bin/python bench/calibration/duplicates.py dstack -v       # one, listing its groups
    .venv/bin/python bench/calibration/duplicates.py --from DIR      # findings dumped by calibrate.py --dump DIR

Issue 10: the same value, excerpt or helper reported at N places must be one finding with N
locations, since the counts in the verdict should be defects. This tool audits the projects
of ``projects.toml`` (``calibrate.py``'s fetch and audit, or reads its ``--dump``), and links
two findings of one check that share the same title and one of:

- ``title``: nothing else, when the title names its subject (a `backticked` name, a
  ``table(column)``, a route path): "Sync helper `_load_template` ..." twice is one helper;
  a template title ("TODO left in application code") alone links nothing;
- ``excerpt``: the same source text (whitespace-normalised, at least 8 characters, not the
  opening line of a longer call such as ``r = subprocess.run(``), e.g. one note copied
  into several files;
- ``function``: the same enclosing function of the same file (not for findings about a
  comment, whose message says "comment": two notes in one function are two notes);
- ``helper``: the message names the same helper (``via f()``, ``parameter `x` of `f()```,
  ``helper `f```);
- ``value``: the same message naming a `value` (the message says what the value is, so the
  same message at two places is the same value reaching them).

Linked findings form groups (connected components); each group is counted as one suspected
defect. Printed per project and check: findings, suspected groups (of 2 or more), the
defects that leaves and the ratio findings / defects (1.00 = one finding per defect), with
the criteria that linked them. These are suspicions to read in the code, not verdicts: a
template title with a common variable name (`_run`, `engine`) links unrelated places.
INFO findings (inventory) are left out unless ``--info``.
"""
from __future__ import annotations

import argparse
import ast
import collections
import json
import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from calibrate import SEVERITIES, audit, fetch  # noqa: E402

NAMED_TITLE = re.compile(r"`[^`]+`|\b\w+\(\w+(?:, ?\w+)*\)|(?:^|\s)/[\w{}/.-]+|'[^']+'|\"[^\"]+\"")
# a helper the message names: "via f() at", "parameter `x` of `f()`", "helper `f`"
HELPER = re.compile(r"\bvia ([A-Za-z_][\w.]*)\(\)|\bparameter `\w+` of `([A-Za-z_][\w.]*)\(\)`|"
                    r"\bhelpers? `([A-Za-z_][\w.]*)`")
VALUE = re.compile(r"`[^`]+`")
CRITERIA = ("title", "excerpt", "function", "helper", "value")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


class Functions:
    """The innermost function (qualified name) enclosing a line of a file of the target."""

    def __init__(self, root: Path):
        self.root = root
        self.spans: dict[str, list[tuple[int, int, str]]] = {}

    def at(self, file: str, line: int | None) -> str | None:
        if not line or not file.endswith(".py"):
            return None
        if file not in self.spans:
            self.spans[file] = self._spans(file)
        best = None
        for start, end, name in self.spans[file]:
            if start <= line <= end and (best is None or start >= best[0]):
                best = (start, end, name)
        return best[2] if best else None

    def _spans(self, file: str) -> list[tuple[int, int, str]]:
        try:
            tree = ast.parse((self.root / file).read_text(encoding="utf-8", errors="replace"))
        except (OSError, SyntaxError, ValueError):
            return []
        out = []

        def visit(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                        out.append((start, child.end_lineno or child.lineno, name))
                    visit(child, name + ".")
                else:
                    visit(child, prefix)
        visit(tree, "")
        return out


def keys(f: dict, funcs: Functions) -> dict[str, set]:
    """The values of each criterion this finding carries (any of them shared = linked)."""
    title, msg = f["title"], f.get("message") or ""
    out = {c: set() for c in CRITERIA}
    if NAMED_TITLE.search(title):
        out["title"].add(title)
    about_comment = "comment" in msg.lower()
    for loc in f.get("locations") or []:
        ex = _norm(loc.get("excerpt"))
        if len(ex) >= 8 and not ex.endswith(("(", "[", "{")):
            out["excerpt"].add(ex)
        if ex and not about_comment:
            fn = funcs.at(loc.get("file") or "", loc.get("line"))
            if fn:
                out["function"].add((loc["file"], fn))
    out["helper"] = {next(g for g in m.groups() if g) for m in HELPER.finditer(msg)}
    if VALUE.search(msg):
        out["value"].add(_norm(msg))
    return out


def groups(findings: list[dict], funcs: Functions) -> list[tuple[list[dict], set[str]]]:
    """Groups (2 findings or more) of one check and title linked by a shared criterion."""
    out = []
    by_title = collections.defaultdict(list)
    for f in findings:
        by_title[(f["check"], f["title"])].append(f)
    for fs in by_title.values():
        if len(fs) < 2:
            continue
        parent = list(range(len(fs)))
        how = collections.defaultdict(set)

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i
        seen: dict[tuple, int] = {}
        for i, f in enumerate(fs):
            for crit, vals in keys(f, funcs).items():
                for v in vals:
                    j = seen.setdefault((crit, v), i)
                    if j != i:
                        a, b = find(i), find(j)
                        if a != b:
                            parent[a] = b
                            how[b] |= how.pop(a, set())
                        how[find(i)].add(crit)
        comp = collections.defaultdict(list)
        for i, f in enumerate(fs):
            comp[find(i)].append(f)
        out += [(members, how[root]) for root, members in comp.items() if len(members) > 1]
    return out


def report(name: str, findings: list[dict], funcs: Functions, verbose: bool) -> collections.Counter:
    grp = groups(findings, funcs)
    n = collections.Counter(f["check"] for f in findings)
    merged, ngroups, crits = collections.Counter(), collections.Counter(), collections.defaultdict(collections.Counter)
    for members, how in grp:
        c = members[0]["check"]
        merged[c] += len(members) - 1
        ngroups[c] += 1
        crits[c].update(how)
    defects = sum(n.values()) - sum(merged.values())
    print(f"\n== {name}: {sum(n.values())} findings, {sum(ngroups.values())} suspected groups, "
          f"{defects} defects, ratio {sum(n.values()) / max(defects, 1):.2f}")
    for c in sorted(n, key=lambda c: (-merged[c], c)):
        d = n[c] - merged[c]
        how = ", ".join(f"{k} {v}" for k, v in sorted(crits[c].items())) if crits[c] else ""
        print(f"  {c:9} {n[c]:4} findings  {ngroups[c]:3} groups  {d:4} defects  ratio {n[c] / d:4.2f}  {how}")
    if verbose:
        for members, how in sorted(grp, key=lambda g: (-len(g[0]), g[0][0]["check"])):
            f = members[0]
            print(f"\n  {f['check']} x{len(members)} [{', '.join(sorted(how))}] {f['title']}")
            for m in members:
                locs = m.get("locations") or [{}]
                more = f" (+{len(locs) - 1} locations)" if len(locs) > 1 else ""
                print(f"     {m['severity'][:4]} {locs[0].get('file')}:{locs[0].get('line')}{more}  "
                      f"{_norm(locs[0].get('excerpt'))[:70]}  [{m.get('fingerprint', '')}]")
    return collections.Counter(findings=sum(n.values()), groups=sum(ngroups.values()), defects=defects)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("projects", nargs="*", help="project names (default: all in projects.toml)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every suspected group with its findings")
    ap.add_argument("--from", dest="source", metavar="DIR", help="read DIR/<name>.json (calibrate.py --dump) "
                    "instead of auditing")
    ap.add_argument("--check", action="append", default=[], help="only this check id (repeatable)")
    ap.add_argument("--info", action="store_true", help="count INFO findings too")
    args = ap.parse_args(argv)
    projects = tomllib.loads((HERE / "projects.toml").read_text())["projects"]
    names = args.projects or list(projects)
    wanted = SEVERITIES if args.info else SEVERITIES[:3]
    total = collections.Counter()
    for name in names:
        p = projects[name]
        root = fetch(name, p["version"])
        if args.source:
            findings = json.loads((Path(args.source) / f"{name}.json").read_text())
        else:
            findings = audit(root, p.get("config", {}))
        findings = [f for f in findings if f["severity"] in wanted and (not args.check or f["check"] in args.check)]
        total += report(f"{name} {p['version']}", findings, Functions(root), args.verbose)
    if len(names) > 1:
        print(f"\n== all projects: {total['findings']} findings, {total['groups']} suspected groups, "
              f"{total['defects']} defects, ratio {total['findings'] / max(total['defects'], 1):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
