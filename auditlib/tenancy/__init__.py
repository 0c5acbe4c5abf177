"""Tenant isolation: per-endpoint scoping verdicts from the code (:mod:`.scoping`) and the
tenant columns of the migrated database (:mod:`.database`)."""
