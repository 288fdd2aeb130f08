"""Audiences: one proposal, many customers: who may receive it now, who later, who never."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import Field, ValidationError, model_validator

from tactful.audience.ids import inside, read_ids
from tactful.model import ID_MAX, ContactProposal, Decision, Verdict
from tactful.service.deps import DecideKey, RuntimeDep
from tactful.service.errors import ApiError
from tactful.service.identity import address_check
from tactful.service.runtime import ERASED, Runtime
from tactful.service.schemas import NAME, ContentIn, ErrorOut, Instant, Strict
from tactful.state import CustomerState
from tactful.store.audience import Summary, check_store
from tactful.text import NUL_MESSAGE

router = APIRouter(prefix="/v1/audiences", tags=["audiences"])

#: Most ids one request may carry.
MAX_IDS = 5_000_000
NDJSON = "application/x-ndjson"


class AudienceProposalIn(Strict):
    """The proposal every customer of the audience is checked for."""

    channel: str = Field(pattern=NAME, description="email, sms, call, push, in_app, chat, ...")
    purpose: str = Field(pattern=NAME, description="marketing, sales, service, ...")
    campaign: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=200, description="Team or rep.")
    offer: str | None = Field(default=None, max_length=200)
    content: ContentIn | None = None
    at: Instant | None = Field(default=None, description="When it would be sent (default now).")
    hold: bool = Field(
        default=False,
        description="Place a hold for every allowed customer, exactly as a single decision "
        "would (each one recorded in the audit log with its `decision_id`).",
    )

    def to_model(self) -> ContactProposal:
        from tactful.model import Content, utc

        content = None
        if self.content is not None:
            c = self.content
            content = Content(c.subject, c.body, c.discount, tuple(c.flags))
        return ContactProposal(
            customer_id="",
            channel=self.channel,
            purpose=self.purpose,
            at=utc(self.at) if self.at else None,
            offer=self.offer,
            campaign=self.campaign,
            source=self.source,
            content=content,
        )


class AudienceCheckIn(Strict):
    """A small audience as one JSON document (large ones: send NDJSON), or a reference to
    an audience file in the server's `TACTFUL_AUDIENCE_DIR`."""

    proposal: AudienceProposalIn
    customer_ids: list[str] | None = Field(default=None, max_length=100_000)
    file: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="An ids file (one per line, or CSV with customer_id) inside the "
        "server's audience directory, named relative to it; instead of `customer_ids`.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> AudienceCheckIn:
        if (self.customer_ids is None) == (self.file is None):
            raise ValueError("give either customer_ids or file")
        return self


EXAMPLE_NDJSON = (
    '{"channel": "email", "purpose": "marketing", "campaign": "winter"}\n"cust-1"\n"cust-2"\n'
)
EXAMPLE_OUT = (
    '{"customer_id": "cust-1", "verdict": "allow", "not_before": null, "reasons": []}\n'
    '{"customer_id": "cust-2", "verdict": "defer", "not_before": "2026-11-25T10:00:00+00:00", '
    '"reasons": [{"rule": "marketing-email-gap", "kind": "gap", "message": "Marketing emails '
    'are at least 20 hours apart.", "until": "2026-11-25T10:00:00+00:00"}]}\n'
    '{"summary": {"counts": {"allow": 1, "defer": 1, "deny": 0}, '
    '"by_rule": {"marketing-email-gap": 1}, "paths": {"vector": 2, "engine": 0}}}\n'
)


def _problem(line: int | None, field: str, message: str) -> ApiError:
    where = {"line": line} if line is not None else {}
    return ApiError(422, "invalid_request", [{**where, "field": field, "message": message}])


def _template(data: Any, line: int | None) -> AudienceProposalIn:
    try:
        return AudienceProposalIn.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(str(x) for x in e["loc"]) or "proposal"
        raise _problem(line, f"proposal.{field}", e["msg"]) from None


def _customer_id(raw: str, line: int) -> str:
    text = raw.strip()
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            raise _problem(line, "customer_id", "not a JSON string") from None
        text = value if isinstance(value, str) else ""
    if not text or len(text) > ID_MAX or any(ch in text for ch in "\r\n\t"):
        raise _problem(line, "customer_id", f"a customer id of 1 to {ID_MAX} characters")
    if "\x00" in text:
        raise _problem(line, "customer_id", NUL_MESSAGE)
    return text


async def _read(request: Request) -> tuple[AudienceProposalIn, list[str]]:
    """The proposal and the ids, all validated before anything is decided."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != NDJSON:
        try:
            body = AudienceCheckIn.model_validate_json(await request.body())
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = e["loc"]
            field = ".".join(str(x) for x in loc) or "body"
            return_line = int(loc[1]) + 1 if len(loc) > 1 and loc[0] == "customer_ids" else None
            raise _problem(return_line, field, e["msg"]) from None
        if body.file is not None:
            return body.proposal, await _file_ids(request, body.file)
        assert body.customer_ids is not None
        for i, cid in enumerate(body.customer_ids):
            _customer_id(json.dumps(cid), i + 1)
        return body.proposal, body.customer_ids
    template: AudienceProposalIn | None = None
    ids: list[str] = []
    line = 0
    rest = b""
    async for part in request.stream():
        rest += part
        *lines, rest = rest.split(b"\n")
        for raw in lines:
            line += 1
            template = _take(raw, line, template, ids)
    if rest:
        line += 1
        template = _take(rest, line, template, ids)
    if template is None:
        raise _problem(1, "proposal", "the first line must be the proposal (a JSON object)")
    return template, ids


async def _file_ids(request: Request, name: str) -> list[str]:
    """The ids of an audience file inside the configured directory (line numbers in
    errors are the file's)."""
    folder = request.app.state.runtime.settings.audience_dir
    if folder is None:
        raise _problem(None, "file", "file references are off: set TACTFUL_AUDIENCE_DIR")
    try:
        path = inside(folder, name)
        ids = await anyio.to_thread.run_sync(read_ids, path)
    except ValueError as exc:  # IdsFileError too: it names the file and line
        raise _problem(None, "file", str(exc).replace(str(folder.resolve()) + "/", "")) from None
    for i, cid in enumerate(ids, 1):
        _customer_id(json.dumps(cid), i)
    return ids


def _take(
    raw: bytes, line: int, template: AudienceProposalIn | None, ids: list[str]
) -> AudienceProposalIn:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _problem(line, "body", "not UTF-8") from None
    if template is None:
        try:
            data = json.loads(text)
        except ValueError:
            raise _problem(line, "proposal", "the first line must be a JSON object") from None
        return _template(data, line)
    if text.strip():
        if len(ids) >= MAX_IDS:
            raise _problem(line, "customer_id", f"at most {MAX_IDS} customers per request")
        ids.append(_customer_id(text, line))
    return template


def _erased(runtime: Runtime) -> Any:
    def erased(state: CustomerState, p: ContactProposal, now: Any) -> Decision:
        at = max(now, p.at) if p.at else now
        return Decision(Verdict.DENY, (ERASED,), runtime.policy.ref, at)

    return erased


def _stream(
    runtime: Runtime, template: ContactProposal, ids: list[str], hold: bool
) -> Iterator[bytes]:
    summary = Summary()
    policy = runtime.policy

    def held(p: ContactProposal) -> Decision:
        return runtime.decide(p, hold=True)[0]

    lines = check_store(
        runtime.store,
        ids,
        template,
        policy,
        runtime.clock,
        if_suppressed=_erased(runtime),
        address_check=address_check,
        hold=held if hold else None,
        summary=summary,
    )
    batch: list[str] = []
    for line in lines:
        batch.append(json.dumps(line.as_dict()))
        if len(batch) >= 1000:
            yield ("\n".join(batch) + "\n").encode()
            batch = []
    batch.append(json.dumps({"summary": summary.as_dict()}))
    yield ("\n".join(batch) + "\n").encode()


@router.post(
    "/check",
    responses={
        200: {
            "content": {NDJSON: {"example": EXAMPLE_OUT}},
            "description": "One line per customer, in the order sent, then a summary line.",
        },
        401: {"model": ErrorOut, "description": "No or unknown API key."},
        403: {"model": ErrorOut, "description": "The key lacks the `decide` scope."},
        422: {"model": ErrorOut, "description": "A bad line or field; `detail` names it."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                NDJSON: {
                    "schema": {"type": "string"},
                    "example": EXAMPLE_NDJSON,
                },
                "application/json": {
                    "schema": AudienceCheckIn.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    ),
                    "example": {
                        "proposal": {"channel": "email", "purpose": "marketing"},
                        "customer_ids": ["cust-1", "cust-2"],
                    },
                },
            },
        }
    },
    summary="Check one proposal for a whole audience",
)
async def check(request: Request, runtime: RuntimeDep, key: DecideKey) -> StreamingResponse:
    """Send NDJSON (`Content-Type: application/x-ndjson`): the proposal on the first line,
    then one customer id per line (plain or a JSON string); or JSON `{proposal,
    customer_ids}` for small lists, or `{proposal, file}` naming an ids file in the server's
    `TACTFUL_AUDIENCE_DIR`. The answer streams back as NDJSON: per customer
    `{customer_id, verdict, not_before, reasons}` (`decision_id` too when held), in the
    order sent, then `{summary: {counts, by_rule, paths}}`. Each line is what a single
    decision without a hold answers for that id: a merged id as its customer, an erased id
    denied, a customer whose phone or email is on the suppression list by address denied
    (`address-suppressed`). Every input line is validated before anything is decided: a
    bad one is a 422 naming its line and field, and nothing is held.
    With `hold: true`, each allowed customer is decided again as a single decision and
    held; the line carries that decision."""
    body, ids = await _read(request)
    stream = _stream(runtime, body.to_model(), ids, body.hold)
    return StreamingResponse(stream, media_type=NDJSON)
