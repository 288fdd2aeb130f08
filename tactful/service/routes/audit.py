"""The audit log: every decision with its reasons, filterable, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from tactful.model import utc
from tactful.service.deps import ReadKey, RuntimeDep
from tactful.service.schemas import NAME, ErrorOut, Instant, ReasonOut
from tactful.store.base import AuditQuery, DecisionRecord

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditEntry(BaseModel):
    decision_id: str
    customer_id: str
    channel: str
    purpose: str
    source: str | None
    campaign: str | None
    verdict: str
    not_before: datetime | None
    reasons: list[ReasonOut]
    policy: dict[str, str]
    decided_at: datetime
    at: datetime
    status: str | None = None
    outcome: str | None = None

    @classmethod
    def of(cls, r: DecisionRecord) -> AuditEntry:
        return cls(
            decision_id=r.decision_id,
            customer_id=r.customer_id,
            channel=r.channel,
            purpose=r.purpose,
            source=r.source,
            campaign=r.campaign,
            verdict=r.verdict,
            not_before=r.not_before,
            reasons=[ReasonOut.model_validate(x) for x in r.reasons],
            policy={"name": r.policy_name, "version": r.policy_version},
            decided_at=r.decided_at,
            at=r.at,
            status=r.status,
            outcome=r.outcome,
        )


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next: str | None = None


CSV_COLUMNS = (
    "decided_at", "decision_id", "customer_id", "channel", "purpose", "source", "campaign",
    "verdict", "not_before", "rules", "messages", "policy", "status", "outcome",
)  # fmt: skip


def to_csv(records: list[DecisionRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            [
                r.decided_at.isoformat(),
                r.decision_id,
                r.customer_id,
                r.channel,
                r.purpose,
                r.source or "",
                r.campaign or "",
                r.verdict,
                r.not_before.isoformat() if r.not_before else "",
                " ".join(x["rule"] for x in r.reasons),
                " | ".join(x["message"] for x in r.reasons),
                f"{r.policy_name}@{r.policy_version}",
                r.status or "",
                r.outcome or "",
            ]
        )
    return out.getvalue()


@router.get(
    "",
    response_model=AuditPage,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
    },
    summary="Decisions, newest first (JSON, or CSV with format=csv)",
)
def audit(
    runtime: RuntimeDep,
    key: ReadKey,
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    channel: Annotated[str | None, Query(pattern=NAME)] = None,
    purpose: Annotated[str | None, Query(pattern=NAME)] = None,
    verdict: Literal["allow", "defer", "deny"] | None = None,
    rule: Annotated[str | None, Query(max_length=200)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    before: Annotated[
        str | None,
        Query(
            description="The `next` cursor of the previous page.",
            pattern=r"^\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})?\|.+$",
        ),
    ] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    cursor = None
    if before:
        try:
            stamp, _, did = before.partition("|")
            cursor = (utc(datetime.fromisoformat(stamp)), did)
        except ValueError:
            from tactful.service.errors import ApiError

            raise ApiError(
                422, "invalid_cursor", "`before` must be a `next` value from a page"
            ) from None
    records = runtime.store.audit(
        AuditQuery(
            customer_id=customer_id,
            channel=channel,
            purpose=purpose,
            verdict=verdict,
            rule=rule,
            since=utc(since) if since else None,
            until=utc(until) if until else None,
            limit=limit,
            before=cursor,
        )
    )
    if format == "csv":
        return Response(
            to_csv(records),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="tactful-audit.csv"'},
        )
    nxt = None
    if len(records) == limit and records:
        last = records[-1]
        nxt = f"{last.decided_at.isoformat()}|{last.decision_id}"
    return AuditPage(entries=[AuditEntry.of(r) for r in records], next=nxt)
