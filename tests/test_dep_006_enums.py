"""DEP-006 groups by enum type: one finding per PostgreSQL enum type, every column mapped
on it named and located (static fallback: no database needed)."""
from __future__ import annotations

import sys

from auditlib.checks import run_checks
from auditlib.stages.database import close_all
from auditlib.target.context import AuditContext

MODELS = '''import enum

from sqlalchemy import BigInteger, Column, Enum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Plan(str, enum.Enum):
    free = "free"
    pro = "pro"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan: Mapped[Plan] = mapped_column(Enum(Plan, name="plan"))


class Invoice(Base):
    __tablename__ = "invoices"

    id = Column(BigInteger, primary_key=True)
    billed_plan = Column("plan_at_billing", Enum(Plan, name="plan"))
'''
REVISION = '''import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    plan = sa.Enum("free", "pro", "enterprise", name="plan")
    op.create_table("accounts", sa.Column("id", sa.BigInteger(), primary_key=True), sa.Column("plan", plan))


def downgrade() -> None:
    op.drop_table("accounts")
'''


def test_extra_labels_are_one_finding_per_type(tmp_path):
    root = tmp_path / "target"
    (root / "app").mkdir(parents=True)
    (root / "alembic" / "versions").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "models.py").write_text(MODELS)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = alembic\n")
    (root / "alembic" / "env.py").write_text("from app.models import Base\n\ntarget_metadata = Base.metadata\n")
    (root / "alembic" / "versions" / "0001_initial.py").write_text(REVISION)
    ctx = AuditContext.open(root, tmp_path / "work", db="none", target_python=sys.executable)
    try:
        found = [f for f in run_checks(ctx, ids=["DEP-006"], source="db") if not f.title.startswith("DEP-006 not")]
    finally:
        close_all()
    [f] = found
    assert (f.severity.value, f.title) == ("WARNING", "Enum plan has labels the ORM does not know")
    assert [(loc.file, loc.line) for loc in f.locations] == [("app/models.py", 20), ("app/models.py", 27)]
    assert "from columns accounts.plan, invoices.plan_at_billing raises LookupError" in f.message
    assert f.tables == ["accounts", "invoices"]
