"""Snapshot every static finding on every target tree in the repo, for refactors that
must not change findings:

    .venv/bin/python bench/snapshot_findings.py before.json
    (refactor)
    .venv/bin/python bench/snapshot_findings.py after.json && cmp before.json after.json
"""
import json, sys, tempfile, traceback
from dataclasses import asdict
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

R = Path(__file__).resolve().parent.parent
targets = [R / "examples/bookly", R / "tests/fixtures/tenant_app"]
targets += sorted(p for p in (R / "tests/fixtures/targets").glob("*") if p.is_dir())
targets += sorted(p for p in (R / "tests/fixtures/apps").glob("*") if p.is_dir())
targets += sorted(p for p in (R / "tests/fixtures/alembic").glob("*") if p.is_dir())
targets += sorted(p for p in (R / "tests/fixtures/checks").glob("*/*") if p.is_dir())
out = {}
for t in targets:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ctx = AuditContext.open(t, Path(tmp))
            fs = run_checks(ctx, source="static")
            rows = []
            for f in fs:
                d = asdict(f); d["severity"] = f.severity.value
                rows.append(d)
            out[str(t.relative_to(R))] = rows
        except Exception:
            out[str(t.relative_to(R))] = "ERROR " + traceback.format_exc()
json.dump(out, open(sys.argv[1], "w"), indent=1, sort_keys=True, default=str)
print(len(targets), "targets", sum(len(v) for v in out.values() if isinstance(v, list)), "findings")
