"""auditlib: a re-runnable production-readiness audit of FastAPI + PostgreSQL backends."""
__version__ = "0.1.0"
