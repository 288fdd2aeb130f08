"""Schemathesis against /openapi.json: no 5xx, and responses match the published schema.

The app is built at import (schemathesis generates its cases from the schema while pytest
collects), over a throwaway SQLite store with an admin key; `test_fuzz_postgresql.py` runs
the same check over PostgreSQL, which refuses what SQLite stores (NUL characters, text
longer than a column).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tactful.service import create_app
from tactful.service.config import Settings
from tactful.service.runtime import Runtime
from tactful.store import open_store
from tactful.text import NUL_MESSAGE


def fuzzed_app(url: str) -> tuple[Any, str]:
    """The app over the store at `url` (closed at exit), and an admin key."""
    store = open_store(url)
    atexit.register(store.close)
    _, admin = store.create_key(["admin"], name="fuzz", now=datetime.now(UTC))
    settings_ = Settings(database_url=url)
    app = create_app(settings_, store=store)
    app.state.runtime = Runtime(settings_, store)
    return app, admin


_dir = Path(tempfile.mkdtemp(prefix="tactful-fuzz-"))
atexit.register(shutil.rmtree, _dir, True)
app, ADMIN = fuzzed_app(f"sqlite:///{_dir}/tactful.db")

schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: object, value: object) -> bytes:
    """An NDJSON body (audience checks) as the schema gives it: text."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


#: Inputs in other systems' formats (Segment, SendGrid, Twilio) and signed customer links
#: carry meaning no schema can state (a real token, a known message shape): a schema-valid
#: request may still be refused with a 4xx, and, as Segment itself does, tactful takes
#: what it can from a message that bends the published shape. They must still never fail
#: (5xx) and always answer in the documented shape.
EXTERNAL = ("/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/alias",
            "/v1/group", "/v1/webhooks/", "/u/")  # fmt: skip


SEMANTIC = {
    # A proposal's `to` must be a number in its country's plan, and `expires_at` applies
    # only to a queued proposal (`on_defer: "queue"`): cross-field and numbering-plan rules.
    ("/v1/decisions", "POST"),
    ("/v1/decisions/batch", "POST"),
    # An NDJSON audience is a string to the schema; its lines' shapes are stated in prose.
    ("/v1/audiences/check", "POST"),
    ("/v1/policy", "PUT"),
    ("/v1/customers/{customer_id}", "PATCH"),
    ("/v1/audit", "GET"),
}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_keeps_its_schema(case: schemathesis.Case) -> None:
    check_case(case, ADMIN)


def check_case(case: schemathesis.Case, admin: str) -> None:
    """Call the API with `case` as `admin`: no 5xx, and an answer in the published shape."""
    # Starlette's 405 lists only the methods of the first route on a path; not ours to fix.
    excluded = [checks.allow_header_conformance]
    if case.path.startswith(EXTERNAL):
        excluded += [checks.positive_data_acceptance, checks.negative_data_rejection]
    elif (case.path, case.method) in SEMANTIC:
        # A policy's validity, whether a phone number exists in its country's numbering plan,
        # or whether a cursor came from a previous page is beyond what a schema states: a
        # schema-valid value may be refused (422).
        excluded.append(checks.positive_data_acceptance)
    headers = {"Authorization": f"Bearer {admin}"}
    response = case.call(headers=headers)
    if _refused_for(response, "date-time out of range", NUL_MESSAGE):
        # A date-time the schema admits but no instant is (year 1 at +01:00 is before year
        # 1 in UTC), or text with the NUL character (which PostgreSQL cannot store; the API
        # description says it is refused): a 422 that names the field, as it should be.
        excluded.append(checks.positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded, headers=headers)


def _refused_for(response: Any, *reasons: str) -> bool:
    """A 422 whose problems include one of these `reasons`."""
    if response.status_code != 422:
        return False
    detail = response.json().get("detail")
    return isinstance(detail, list) and any(
        isinstance(d, dict) and any(r in str(d.get("message")) for r in reasons) for d in detail
    )
