"""The static migration-schema reader, the name resolver, and the reliability checks'
findings that have no line (missing inputs)."""
from __future__ import annotations

import textwrap

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.facts.migration_schema import schema_for
from auditlib.code.pyast import NOT_LITERAL
from auditlib.code.pyresolve import Project

REV1 = '''
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "leads",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("org", sa.BigInteger(), nullable=False),
        sa.Index("ix_leads_email", "email"),
    )
    op.create_table("tmp", sa.Column("id", sa.Integer(), primary_key=True))
'''
REV2 = '''
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.alter_column("leads", "org", new_column_name="org_id")
    op.alter_column("leads", "email", nullable=False)
    op.drop_index("ix_leads_email", table_name="leads")
    op.add_column("leads", sa.Column("team_id", sa.BigInteger()))
    op.create_foreign_key("fk_leads_team", "leads", "teams", ["team_id"], ["id"])
    op.rename_table("tmp", "email_events")
    with op.batch_alter_table("email_events") as batch_op:
        batch_op.add_column(sa.Column("booking_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("email_type", sa.String(), nullable=False))
    op.execute(
        "CREATE UNIQUE INDEX uq_ev ON email_events (booking_id, email_type) NULLS NOT DISTINCT"
    )
    op.execute(sa.text("CREATE INDEX ix_leads_org ON leads USING btree (org_id) WHERE org_id > 0"))
'''


def _target(tmp_path, files: dict[str, str]):
    root = tmp_path / "t"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return AuditContext.open(root, tmp_path / "out")


def test_replays_revisions_in_order(tmp_path):
    # file names sort opposite to the revision order: the graph decides
    ctx = _target(tmp_path, {"alembic.ini": "[alembic]\nscript_location = alembic\n",
                             "alembic/env.py": "", "alembic/versions/b_first.py": REV1,
                             "alembic/versions/a_second.py": REV2, "app/main.py": "x = 1\n"})
    s = schema_for(ctx)
    assert s.files == ["alembic/versions/b_first.py", "alembic/versions/a_second.py"]
    leads = s.table("leads")
    assert set(leads.columns) == {"id", "email", "org_id", "team_id"}
    assert leads.columns["email"].nullable is False and leads.columns["id"].nullable is False
    assert leads.columns["team_id"].file == "alembic/versions/a_second.py"
    assert [i.name for i in leads.indexes if i.kind == "index"] == ["ix_leads_org"]
    assert leads.indexes[-1].partial is True and leads.covered(("org_id",)) is None
    assert [(f.columns, f.ref_table) for f in leads.foreign_keys] == [(("team_id",), "teams")]
    ev = s.table("email_events")
    assert s.table("tmp") is None and set(ev.columns) == {"id", "booking_id", "email_type"}
    uq = [i for i in ev.indexes if i.name == "uq_ev"][0]
    assert uq.unique and uq.nulls_not_distinct and uq.columns == ("booking_id", "email_type")
    assert ev.columns["booking_id"].nullable is True


def test_no_migrations_is_not_verified(tmp_path):
    ctx = _target(tmp_path, {"app/main.py": "import sqlalchemy\nfrom fastapi import FastAPI\napp = FastAPI()\n"})
    found = {(f.check, f.severity.value, f.title) for f in run_checks(ctx, ids=["PERF-001", "REL-007", "REL-001"],
                                                                      source="static")}
    assert ("PERF-001", "WARNING", "PERF-001 not verified: indexes (static fallback)") in found
    assert ("REL-007", "WARNING", "REL-007 not verified: e-mail de-duplication (static fallback)") in found
    assert ("REL-001", "WARNING", "REL-001 not verified: database engine pool") in found


def test_an_app_without_sql_gets_not_applicable(tmp_path):
    ctx = _target(tmp_path, {"app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n"})
    found = {(f.check, f.severity.value, f.title) for f in run_checks(ctx, ids=["PERF-001", "REL-007", "REL-001"],
                                                                      source="static")}
    assert found == {("PERF-001", "INFO", "PERF-001 not applicable: indexes (static fallback)"),
                     ("REL-007", "INFO", "REL-007 not applicable: e-mail de-duplication (static fallback)"),
                     ("REL-001", "INFO", "REL-001 not applicable: database engine pool")}


def test_static_fallback_defers_to_the_database(tmp_path):
    ctx = _target(tmp_path, {"alembic.ini": "[alembic]\nscript_location = alembic\n",
                             "alembic/env.py": "", "alembic/versions/b_first.py": REV1.replace('"org"', '"org_id"'),
                             "app/main.py": "x = 1\n"})
    assert [f.check for f in run_checks(ctx, ids=["PERF-001"], source="static")] == ["PERF-001"]
    ctx.db = ctx.db_requested = "postgresql://audit@localhost/x"  # as if opened with --db URL
    assert run_checks(ctx, ids=["PERF-001", "REL-007"], source="static") == []


def test_no_email_table_and_no_runner_are_info(tmp_path):
    ctx = _target(tmp_path, {"alembic.ini": "[alembic]\nscript_location = alembic\n",
                             "alembic/env.py": "", "alembic/versions/b_first.py": REV1.replace('"tmp"', '"x"'),
                             "app/main.py": "x = 1\n"})
    got = [(f.check, f.severity.value) for f in run_checks(ctx, ids=["REL-007", "REL-006"], source="static")]
    assert sorted(got) == [("REL-006", "INFO"), ("REL-007", "INFO")]


def test_resolver_follows_imports_and_settings(tmp_path):
    ctx = _target(tmp_path, {
        "app/__init__.py": "",
        "app/settings.py": "from pydantic_settings import BaseSettings\nfrom pydantic import Field\n\n"
                           "class Settings(BaseSettings):\n    pool: int = Field(default=7)\n    url: str\n",
        "app/svc/__init__.py": "",
        "app/svc/mail.py": "import smtplib as s\n\ndef deliver():\n    s.SMTP('h')\n",
        "app/svc/api.py": "from . import mail\nfrom .mail import deliver as d\n\nasync def go():\n"
                          "    mail.deliver()\n    d()\n",
    })
    proj = Project.of(ctx)
    api, mail = ctx.index.get("app/svc/api.py"), ctx.index.get("app/svc/mail.py")
    assert proj.imports[api.path] == {"mail": "app.svc.mail", "d": "app.svc.mail.deliver"}
    call = mail.tree.body[1].body[0].value
    assert proj.qualify(mail, call.func) == "smtplib.SMTP"
    go = api.tree.body[2]
    targets = [proj.resolve_call(api, stmt.value.func).func.name for stmt in go.body]
    assert targets == ["deliver", "deliver"]
    assert proj.settings_fields["pool"].value == 7 and proj.settings_fields["url"].value is NOT_LITERAL


def test_dialect_guards_read_as_postgresql_or_not():
    import ast

    from auditlib.facts.migration_schema import on_postgres

    cases = {'op.get_bind().dialect.name == "sqlite"': False, 'bind.dialect.name != "sqlite"': True,
             'conn.dialect.name in ("postgresql",)': True, "settings.engine is Choice.POSTGRES": True,
             "settings.pg_uri": True, "not settings.pg_uri": False, "is_sqlite": False,
             "not has_pg_trgm": None, "use_pgvector": None, "context.is_offline_mode()": None, "x == 1": None}
    assert {c: on_postgres(ast.parse(c).body[0].value) for c in cases} == cases


# --- where the revisions are: script_location and version_locations in all their forms ---
from pathlib import Path  # noqa: E402

ALEMBIC_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "alembic"


def test_package_script_location_with_per_dialect_versions_reads_postgresql(tmp_path):
    ctx = AuditContext.open(ALEMBIC_FIXTURES / "package_per_dialect", tmp_path / "out")
    lay = ctx.layout
    mig = "src/shop/db/_migrations"
    assert lay.alembic_ini == "src/shop/db/alembic.ini" and lay.alembic_dir == mig
    assert lay.migration_files == [f"{mig}/versions/postgresql/2024_01_01_p1_orders.py",
                                   f"{mig}/versions/postgresql/2024_02_01_p2_customers.py"]
    assert "sqlite set is ignored" in lay.migration_note
    assert lay.is_migration(f"{mig}/versions/sqlite/2024_01_01_s1_orders.py")  # not app code either
    s = schema_for(ctx)
    assert s.table("orders") is not None and s.table("customers") is not None and s.table("orders_lite") is None
    found = {(f.check, f.severity.value, f.title): f for f in run_checks(ctx, ids=["DEP-002", "PERF-001"],
                                                                         source="static")}
    head = found[("DEP-002", "INFO", "Alembic head is p2")]
    assert "PostgreSQL set is read" in head.message
    assert not [k for k in found if "not verified" in k[2]]


def test_version_locations_in_the_ini(tmp_path):
    ctx = AuditContext.open(ALEMBIC_FIXTURES / "version_locations", tmp_path / "out")
    lay = ctx.layout
    assert lay.alembic_dir == "migrations" and lay.version_dirs == ["migrations/versions", "app/db/extra_versions"]
    assert lay.migration_files == ["app/db/extra_versions/0002_invoices.py", "migrations/versions/0001_accounts.py"]
    assert lay.migration_note == "" and lay.is_migration("app/db/extra_versions/0002_invoices.py")
    assert [f for f in schema_for(ctx).files] == ["migrations/versions/0001_accounts.py",
                                                  "app/db/extra_versions/0002_invoices.py"]


def test_script_and_version_locations_set_in_code(tmp_path):
    ctx = AuditContext.open(ALEMBIC_FIXTURES / "location_in_code", tmp_path / "out")
    lay = ctx.layout
    assert lay.alembic_ini == "" and lay.alembic_dir == "app/migrations"
    assert lay.migration_files == ["app/migrations/revisions/0001_users.py"]
    assert schema_for(ctx).table("users") is not None


def test_location_forms(tmp_path):
    rev = REV1.replace('"tmp"', '"x"')
    # pkg.mod:path, comma-separated version_locations, per-dialect folders named by the ini
    ctx = _target(tmp_path, {
        "deploy/alembic.ini": "[alembic]\nscript_location = svc.store:alembic\n"
                              "version_locations = %(here)s/../svc/store/alembic/pg,%(here)s/../svc/store/alembic/mysql\n",
        "svc/__init__.py": "", "svc/store/__init__.py": "", "svc/store/alembic/env.py": "",
        "svc/store/alembic/pg/a.py": rev, "svc/store/alembic/mysql/a.py": rev})
    lay = ctx.layout
    assert lay.alembic_dir == "svc/store/alembic"
    assert lay.version_dirs == ["svc/store/alembic/pg", "svc/store/alembic/mysql"]
    assert lay.migration_files == ["svc/store/alembic/pg/a.py"] and "mysql set is ignored" in lay.migration_note


def test_one_history_in_sub_folders_is_read_whole(tmp_path):
    # sub-folders that are not dialects (recursive_version_locations): one history, all read
    ctx = _target(tmp_path, {"alembic.ini": "[alembic]\nscript_location = alembic\nrecursive_version_locations = true\n",
                             "alembic/env.py": "", "alembic/versions/2023/b_first.py": REV1,
                             "alembic/versions/2024/a_second.py": REV2, "app/main.py": "x = 1\n"})
    assert ctx.layout.migration_files == ["alembic/versions/2023/b_first.py", "alembic/versions/2024/a_second.py"]
    assert ctx.layout.migration_note == ""
