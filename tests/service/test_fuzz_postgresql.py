"""The schemathesis check of `test_fuzz.py` over PostgreSQL: PostgreSQL refuses what SQLite
stores (NUL characters, text longer than a column), so a request can fail there alone.
The app is built at import over a database made for this run and dropped at exit."""

from __future__ import annotations

import atexit
import os
import uuid

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import PG_ADMIN_URL, REQUIRE_SERVICES, _pg_available
from tests.service.test_fuzz import check_case, fuzzed_app

_why = _pg_available()
if _why:
    if REQUIRE_SERVICES:
        pytest.fail(_why, pytrace=False)
    pytest.skip(_why, allow_module_level=True)

_name = f"tactful_fuzz_{os.getpid()}_{uuid.uuid4().hex[:8]}"
with psycopg.connect(PG_ADMIN_URL, autocommit=True) as _conn:
    _conn.execute(f'CREATE DATABASE "{_name}"')


def _drop() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (_name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{_name}"')


atexit.register(_drop)  # registered first: runs after the store is closed
app, ADMIN = fuzzed_app(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{_name}")
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_keeps_its_schema_on_postgresql(case: schemathesis.Case) -> None:
    check_case(case, ADMIN)
