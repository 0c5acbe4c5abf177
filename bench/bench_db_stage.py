"""Benchmark of the database stage on a generated 60-revision Alembic history.

Creates a throwaway target (alembic.ini, env.py, models, 60 revisions: tables with an
org column, foreign keys, indexes, a few column additions), starts an embedded
PostgreSQL, and times the whole db stage (upgrade + current + offline SQL + check +
downgrade round trip + schema queries + every db check). Target: under 20 s.

    .venv/bin/python bench/bench_db_stage.py [N_REVISIONS]
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURE = REPO / "tests" / "fixtures" / "alembic" / "linear"


def generate(root: Path, n: int) -> None:
    (root / "alembic" / "versions").mkdir(parents=True)
    (root / "app").mkdir()
    shutil.copy(FIXTURE / "alembic.ini", root / "alembic.ini")
    shutil.copy(FIXTURE / "alembic" / "env.py", root / "alembic" / "env.py")
    shutil.copy(FIXTURE / "app" / "main.py", root / "app" / "main.py")
    (root / "app" / "__init__.py").write_text("")
    models = ["from sqlalchemy import BigInteger, ForeignKey, String",
              "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column", "", "",
              "class Base(DeclarativeBase):", "    pass", "", "",
              "class Organization(Base):", '    __tablename__ = "organizations"',
              "    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)"]
    prev = None
    for i in range(1, n + 1):
        rid = f"{i:04d}"
        if i == 1:
            up = '    op.create_table("organizations", sa.Column("id", sa.BigInteger(), primary_key=True))'
            down = '    op.drop_table("organizations")'
        elif i % 3:
            t = f"t{i:03d}"
            up = (f'    op.create_table("{t}", sa.Column("id", sa.BigInteger(), primary_key=True),\n'
                  f'                    sa.Column("org_id", sa.BigInteger(), sa.ForeignKey("organizations.id"), nullable=False),\n'
                  f'                    sa.Column("name", sa.String(80), nullable=False))\n'
                  f'    op.create_index("ix_{t}_org_id", "{t}", ["org_id"])')
            down = f'    op.drop_index("ix_{t}_org_id", table_name="{t}")\n    op.drop_table("{t}")'
            models += ["", "", f"class T{i:03d}(Base):", f'    __tablename__ = "{t}"',
                       "    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)",
                       '    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)',
                       "    name: Mapped[str] = mapped_column(String(80))"]
        else:
            t = f"t{i - 1:03d}"
            up = f'    op.add_column("{t}", sa.Column("note", sa.String(200), nullable=True))'
            down = f'    op.drop_column("{t}", "note")'
            models.append('    note: Mapped[str | None] = mapped_column(String(200))')
        (root / "alembic" / "versions" / f"{rid}_rev.py").write_text(
            f'"""revision {rid}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f'revision = "{rid}"\ndown_revision = {prev!r}\n\n\ndef upgrade() -> None:\n{up}\n\n\n'
            f'def downgrade() -> None:\n{down}\n')
        prev = rid
    (root / "app" / "models.py").write_text("\n".join(models) + "\n")


def main() -> None:
    from auditlib.checks import run_checks
    from auditlib.target.context import AuditContext
    from auditlib.target.pg import EmbeddedPostgres
    from auditlib.stages.database import close_all, migrated_database

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    with tempfile.TemporaryDirectory(prefix="auditlib-bench-") as tmp, EmbeddedPostgres() as pg:
        root = Path(tmp) / "target"
        generate(root, n)
        ctx = AuditContext.open(root, Path(tmp) / "out", db=pg.url(driver=""), target_python=sys.executable)
        t0 = time.monotonic()
        findings = run_checks(ctx, source="db")
        total = time.monotonic() - t0
        stage = migrated_database(ctx)
        close_all()
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in stage.timings.items())
    print(f"db stage, {n} revisions: {total:.2f} s (status {stage.status}; {steps}); "
          f"{len(findings)} finding(s) {'OK' if total < 20 else 'SLOWER THAN 20 s'}")


if __name__ == "__main__":
    main()
