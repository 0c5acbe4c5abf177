"""Shared pytest fixtures.

``pg`` is one real, embedded PostgreSQL cluster for the whole session
(init+start takes well under a second).  Tests that need isolation create
their own database with ``pg.create_database()``.
"""

from __future__ import annotations

import pytest

from auditlib.target.pg import EmbeddedPostgres, find_pg_bindir


@pytest.fixture(scope="session")
def pg():
    """A started :class:`~auditlib.target.pg.EmbeddedPostgres` (stopped at the end).

    Skips only when no PostgreSQL binaries exist at all; if binaries exist
    but the server cannot start, the error propagates (that is a bug, not an
    environment limitation).
    """
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (set PG_BINDIR or install postgresql >= 15)")
    server = EmbeddedPostgres(bindir=bindir).start()
    try:
        yield server
    finally:
        server.stop()
