"""Calibration on real code: audit pinned open-source FastAPI applications and measure
the findings against labels written by reading their code.

    .venv/bin/python bench/calibration/calibrate.py              # every project
    .venv/bin/python bench/calibration/calibrate.py dstack -v    # one, listing every finding
    .venv/bin/python bench/calibration/calibrate.py --sample 30  # stubs of unlabelled WARNINGs

Projects are pinned in ``projects.toml``; their sdists are downloaded once into the cache
(``$AUDITLIB_CALIBRATION_CACHE``, default ``~/.cache/auditlib/calibration``) with
``pip download --no-deps --no-binary NAME`` (the project as an sdist; its build tools may come as
wheels: with ``:all:`` they are compiled too, which fails where a build tool needs Rust crates) and never committed. The audit is the
static one (``--db none``), in process. Labels are JSON lines in ``labels/<name>.jsonl``:

    {"fingerprint": "...", "check": "SEC-030", "severity": "BLOCKER", "file": "a/b.py",
     "line": 12, "title": "...", "label": "TRUE" | "FALSE" | "OVERRATED",
     "severity_should_be": "WARNING", "reason": "one line, with file:line"}

(``"superseded_by": FINGERPRINT`` marks a label whose defect is now reported elsewhere and
labelled there: it is no longer listed as gone.)

A label matches a finding by fingerprint, else by (check, file, line, title). A finding is
*right at its severity* when labelled TRUE at the severity it now has, or
OVERRATED/UNDERRATED with ``severity_should_be`` equal to it. Printed: per project and in
total, precision per severity and per check (over labelled findings, with how many are
labelled), the BLOCKERs still unlabelled, and labelled findings that disappeared.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

SEVERITIES = ("BLOCKER", "WARNING", "RECOMMENDATION", "INFO")


def cache_dir() -> Path:
    base = os.environ.get("AUDITLIB_CALIBRATION_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "auditlib" / "calibration"


def fetch(name: str, version: str) -> Path:
    """The extracted sdist of ``name==version`` (downloaded and unpacked on first use)."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}"
    root = cache / stem
    if root.is_dir():
        return root
    sdist = next(cache.glob(f"{stem}.tar.gz"), None) or next(cache.glob(f"{name}-{version}.tar.gz"), None)
    if sdist is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name,
                        "--ignore-requires-python", f"{name}=={version}", "-d", str(cache)], check=True)
        sdist = next(cache.glob(f"{stem}.tar.gz"), None) or next(cache.glob(f"{name}-{version}.tar.gz"))
    with tarfile.open(sdist) as tar:
        top = {m.name.split("/", 1)[0] for m in tar.getmembers()}
        tar.extractall(cache, filter="data")
    (extracted,) = top
    if cache / extracted != root:
        (cache / extracted).rename(root)
    return root


def audit(root: Path, config: dict) -> list[dict]:
    """Every static finding of the target, fingerprinted as findings.json has them."""
    from auditlib.checks import run_checks
    from auditlib.findings import assign_fingerprints
    from auditlib.target.context import AuditContext

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "auditlib.toml"
        cfg.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
        ctx = AuditContext.open(root, Path(tmp) / "out", config_file=cfg)
        found = assign_fingerprints(run_checks(ctx, source="static"))
    rows = []
    for f in found:
        d = asdict(f)
        d["severity"] = f.severity.value
        rows.append(d)
    return rows


def load_labels(name: str) -> list[dict]:
    path = HERE / "labels" / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("//")]


def where(f: dict) -> tuple:
    loc = (f.get("locations") or [{}])[0]
    return f["check"], loc.get("file") or "", loc.get("line")


def match(findings: list[dict], labels: list[dict]):
    """(finding, label or None) pairs, and the labels that matched no finding.

    By fingerprint, else by check, file, line and title. A finding whose title changed
    is a new judgement to make: it is listed as unlabelled and its old label as gone."""
    by_fp = {lb["fingerprint"]: lb for lb in labels if lb.get("fingerprint")}
    by_title = {(*_place(lb), lb.get("title", "")): lb for lb in labels}
    used, pairs = set(), []
    for f in findings:
        lb = by_fp.get(f["fingerprint"]) or by_title.get((*where(f), f["title"]))
        if lb is not None and id(lb) in used:
            lb = None if lb is not by_fp.get(f["fingerprint"]) else lb
        if lb is not None:
            used.add(id(lb))
        pairs.append((f, lb))
    # a label whose finding moved (same defect, new place and fingerprint, labelled there:
    # ``superseded_by``) is not a lost finding
    return pairs, [lb for lb in labels if id(lb) not in used and not lb.get("superseded_by")]


def _place(lb: dict) -> tuple:
    return lb["check"], lb.get("file") or "", lb.get("line")


def right(f: dict, lb: dict) -> bool:
    """Right at the severity it has now: labelled TRUE at this severity, or judged to
    deserve it (``severity_should_be``); a TRUE label at another severity is not."""
    if lb["label"] == "FALSE":
        return False
    should = lb.get("severity_should_be") or (lb.get("severity") if lb["label"] == "TRUE" else None)
    return should == f["severity"]


class Tally:
    def __init__(self):
        self.n = collections.Counter()        # (key) -> findings
        self.labelled = collections.Counter()
        self.right = collections.Counter()

    def add(self, key, f, lb):
        self.n[key] += 1
        if lb is not None:
            self.labelled[key] += 1
            self.right[key] += right(f, lb)

    def row(self, key) -> str:
        lab, ok = self.labelled[key], self.right[key]
        pct = f"{100 * ok / lab:5.1f} %" if lab else "    - "
        return f"{pct}  ({ok}/{lab} labelled right, {self.n[key]} found)"


def report(name: str, pairs, gone, verbose: bool, total_sev: Tally, total_chk: Tally) -> None:
    sev, chk = Tally(), Tally()
    for f, lb in pairs:
        if f["severity"] in ("BLOCKER", "WARNING"):
            for t in (sev, total_sev):
                t.add(f["severity"], f, lb)
            for t in (chk, total_chk):
                t.add((f["check"], f["severity"]), f, lb)
    print(f"\n== {name}: {len(pairs)} findings "
          + ", ".join(f"{s} {sum(1 for f, _ in pairs if f['severity'] == s)}" for s in SEVERITIES))
    for s in ("BLOCKER", "WARNING"):
        print(f"  {s:8} precision {sev.row(s)}")
    for key in sorted(chk.n, key=lambda k: (SEVERITIES.index(k[1]), k[0])):
        print(f"    {key[0]:9} {key[1]:8} {chk.row(key)}")
    missing = [f for f, lb in pairs if lb is None and f["severity"] == "BLOCKER"]
    for f in missing:
        print(f"  UNLABELLED BLOCKER {f['check']} {where(f)[1]}:{where(f)[2]} {f['title']} [{f['fingerprint']}]")
    for lb in gone:
        print(f"  GONE ({lb['label']}) {lb['check']} {lb.get('file')}:{lb.get('line')} {lb.get('title', '')}")
    lost = [lb for lb in gone if lb["label"] == "TRUE"]
    if lost:
        print(f"  {len(lost)} finding(s) labelled TRUE are gone (a real defect no longer reported, "
              "or reported elsewhere under a new label): see the GONE (TRUE) lines")
    if verbose:
        for f, lb in pairs:
            mark = lb["label"] + ("" if right(f, lb) else "*") if lb else "-"
            print(f"  {f['severity']:8} {mark:10} {f['check']:9} {where(f)[1]}:{where(f)[2]} {f['title']}")


def stub(f: dict) -> str:
    c, file, line = where(f)
    return json.dumps({"fingerprint": f["fingerprint"], "check": c, "severity": f["severity"], "file": file,
                       "line": line, "title": f["title"], "label": "?", "severity_should_be": None,
                       "reason": ""}, ensure_ascii=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("projects", nargs="*", help="project names (default: all in projects.toml)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every BLOCKER/WARNING with its label")
    ap.add_argument("--sample", type=int, default=0, metavar="N",
                    help="print label stubs for the unlabelled BLOCKERs and N random unlabelled WARNINGs")
    ap.add_argument("--dump", metavar="DIR", help="write each project's findings as DIR/<name>.json")
    args = ap.parse_args(argv)
    projects = tomllib.loads((HERE / "projects.toml").read_text())["projects"]
    names = args.projects or list(projects)
    total_sev, total_chk = Tally(), Tally()
    held_sev, held_chk = Tally(), Tally()  # the held-out projects alone: generalisation
    for name in names:
        p = projects[name]
        root = fetch(name, p["version"])
        t0 = time.perf_counter()
        findings = [f for f in audit(root, p.get("config", {})) if f["severity"] in SEVERITIES]
        took = time.perf_counter() - t0
        if args.dump:
            Path(args.dump).mkdir(parents=True, exist_ok=True)
            (Path(args.dump) / f"{name}.json").write_text(json.dumps(findings, indent=1, default=str))
        pairs, gone = match(findings, load_labels(name))
        if args.sample:
            rnd = random.Random(name)
            todo = [f for f, lb in pairs if lb is None]
            warn = [f for f in todo if f["severity"] == "WARNING"]
            picked = [f for f in todo if f["severity"] == "BLOCKER"] + rnd.sample(warn, min(args.sample, len(warn)))
            print(f"// {name}: {len(picked)} stubs")
            print("\n".join(stub(f) for f in picked))
            continue
        role = p.get("role", "tuning")
        report(f"{name} {p['version']} [{role}] (audit {took:.1f} s)", pairs, gone, args.verbose, total_sev,
               total_chk)
        if role == "held-out":
            for f, lb in pairs:
                if f["severity"] in ("BLOCKER", "WARNING"):
                    held_sev.add(f["severity"], f, lb)
                    held_chk.add((f["check"], f["severity"]), f, lb)
    if not args.sample and len(names) > 1:
        print(f"\n== all projects")
        for s in ("BLOCKER", "WARNING"):
            print(f"  {s:8} precision {total_sev.row(s)}")
        for key in sorted(total_chk.n, key=lambda k: (SEVERITIES.index(k[1]), k[0])):
            if total_chk.labelled[key]:
                print(f"    {key[0]:9} {key[1]:8} {total_chk.row(key)}")
        if held_sev.n:
            print(f"\n== held-out projects only (never used to tune a check)")
            for s in ("BLOCKER", "WARNING"):
                print(f"  {s:8} precision {held_sev.row(s)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
