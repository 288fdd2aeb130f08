"""SendGrid's Event Webhook as tactful events and contact outcomes.

SendGrid posts a JSON array of events (`processed`, `dropped`, `delivered`, `deferred`,
`bounce`, `open`, `click`, `spamreport`, `unsubscribe`, `group_unsubscribe`,
`group_resubscribe`), each with `email`, `timestamp` (unix seconds), `sg_event_id`,
`sg_message_id`, `asm_group_id` for unsubscribe groups, and the sender's custom args as
top-level keys. Each becomes a `SendgridEvent`:

| SendGrid            | tactful event (`kind`)                        | outcome        |
|---------------------|-----------------------------------------------|----------------|
| processed, deferred | none                                          | none           |
| dropped             | none (`reason` kept)                          | none           |
| delivered           | none                                          | `delivered`    |
| bounce              | none                                          | `bounced`      |
| open                | `email_opened`                                | none           |
| click               | `email_clicked`                               | none           |
| spamreport          | `complained` (email, marketing)               | `complained`   |
| unsubscribe         | `unsubscribed` (email, every purpose)         | `unsubscribed` |
| group_unsubscribe   | `unsubscribed` (email, the group's purpose)   | `unsubscribed` |
| group_resubscribe   | `subscribed` (email, the group's purpose)     | none           |

Opens and clicks are kept but are not engagement: mail privacy proxies open and link
scanners click without a person, so neither counts as a reply. The outcome applies to the
contact named by the `decision_id` custom arg, when there is one. The customer is the
`customer_id` custom arg, else whoever has the (normalised) `email`: resolving that is the
caller's job. `sg_event_id` is the event id, so SendGrid's retries deduplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tactful.addresses import email_or_none
from tactful.ingest.errors import IngestError, identifier, parse_json
from tactful.model import Event, EventKind, Outcome, utc
from tactful.text import NUL_MESSAGE, nul_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

SENDGRID_EVENTS: tuple[str, ...] = (
    "processed",
    "dropped",
    "delivered",
    "deferred",
    "bounce",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
)

_Fail = Callable[[str, str], IngestError]

_KINDS: Mapping[str, str] = {
    "open": "email_opened",
    "click": "email_clicked",
    "spamreport": EventKind.COMPLAINED,
    "unsubscribe": EventKind.UNSUBSCRIBED,
    "group_unsubscribe": EventKind.UNSUBSCRIBED,
    "group_resubscribe": EventKind.SUBSCRIBED,
}

_OUTCOMES: Mapping[str, Outcome] = {
    "delivered": Outcome.DELIVERED,
    "bounce": Outcome.BOUNCED,
    "spamreport": Outcome.COMPLAINED,
    "unsubscribe": Outcome.UNSUBSCRIBED,
    "group_unsubscribe": Outcome.UNSUBSCRIBED,
}


@dataclass(frozen=True, slots=True)
class SendgridEvent:
    """One webhook event: a customer event (`kind`), a contact `outcome`, both or neither."""

    type: str
    at: datetime
    event_id: str
    email: str | None
    customer_id: str | None
    kind: str | None
    outcome: Outcome | None
    decision_id: str | None
    properties: Mapping[str, Any] = field(default_factory=dict)
    index: int | None = None

    def event(self, customer_id: str | None = None) -> Event | None:
        """The ledger event for the customer (`customer_id` overrides the custom arg); None
        if this webhook event is not a customer signal."""
        if self.kind is None:
            return None
        cid = customer_id or self.customer_id
        if not cid:
            raise ValueError(f"no customer for {self.event_id}: resolve {self.email!r} first")
        return Event(cid, self.kind, self.at, self.event_id, self.properties)


@dataclass(frozen=True, slots=True)
class SendgridBatch:
    """A translated webhook post: the good events, and an error for each bad one."""

    events: tuple[SendgridEvent, ...]
    errors: tuple[IngestError, ...] = ()


def translate_sendgrid(
    payload: bytes | str | Sequence[Any],
    received_at: datetime,
    *,
    group_purposes: Mapping[int, str] | None = None,
    default_purpose: str = "marketing",
    customer_arg: str = "customer_id",
    decision_arg: str = "decision_id",
) -> SendgridBatch:
    """Translate an Event Webhook body.

    `group_purposes` maps an unsubscribe group (`asm_group_id`) to the purpose it stands
    for; groups not in it are `default_purpose`. `customer_arg` and `decision_arg` name
    the custom args that carry tactful's ids. A body that is not a JSON array raises
    `IngestError`; a bad event is reported in `errors` (`[3].timestamp: ...`) and the
    others are still returned.
    """
    if isinstance(payload, bytes | str):
        payload = parse_json(payload)
    if not isinstance(payload, list):
        raise IngestError("body", "must be a JSON array of events")
    received = utc(received_at)
    purposes = dict(group_purposes or {})
    events: list[SendgridEvent] = []
    errors: list[IngestError] = []
    for i, item in enumerate(payload):
        try:
            events.append(
                _translate(item, i, received, purposes, default_purpose, customer_arg, decision_arg)
            )
        except IngestError as exc:
            errors.append(exc)
    return SendgridBatch(tuple(events), tuple(errors))


def _translate(
    item: Any,
    index: int,
    received_at: datetime,
    purposes: Mapping[int, str],
    default_purpose: str,
    customer_arg: str,
    decision_arg: str,
) -> SendgridEvent:
    where = f"[{index}]"

    def fail(name: str, problem: str) -> IngestError:
        return IngestError(f"{where}.{name}" if name else where, problem, index=index)

    if not isinstance(item, Mapping):
        raise fail("", "must be a JSON object")
    nul = nul_path(item)
    if nul is not None:
        raise fail(nul, NUL_MESSAGE)
    etype = item.get("event")
    if not isinstance(etype, str) or not etype.strip():
        raise fail("event", "missing: the SendGrid event type")
    etype = etype.strip().lower()
    at = min(_unix_time(item.get("timestamp"), fail), received_at)

    raw_email = item.get("email")
    email = email_or_none(raw_email) if raw_email is not None else None
    if raw_email is not None and email is None:
        raise fail("email", f"not an email address: {raw_email!r}")
    custom = _custom_args(item)
    customer_id = _text(custom.get(customer_arg), customer_arg, fail)
    decision_id = _text(custom.get(decision_arg), f"{decision_arg}", fail)
    event_id = _text(item.get("sg_event_id"), "sg_event_id", fail) or _derived_id(item)

    group = item.get("asm_group_id")
    group_id: int | None = None
    if group is not None:
        if isinstance(group, int) and not isinstance(group, bool):
            group_id = group
        elif isinstance(group, str) and group.strip().isdigit():
            group_id = int(group)
        else:
            raise fail("asm_group_id", f"not a group id: {group!r}")

    mapped = _KINDS.get(etype)
    kind = str(mapped) if mapped is not None else None
    if kind is not None and email is None and customer_id is None:
        raise fail("email", f"missing: a {etype} event needs `email` or the {customer_arg} arg")

    props: dict[str, Any] = {"source": "sendgrid", "sendgrid_event": etype}
    for key, name in (
        ("sg_message_id", "sg_message_id"),
        ("category", "category"),
        ("reason", "reason"),
        ("type", "bounce_type"),
        ("bounce_classification", "bounce_classification"),
        ("url", "url"),
        ("sg_machine_open", "machine_open"),
    ):
        if item.get(key) is not None:
            props[name] = item[key]
    if decision_id:
        props["decision_id"] = decision_id
    if group_id is not None:
        props["asm_group_id"] = group_id
    if etype == "spamreport":
        # A spam complaint stops marketing email; transactional mail is a separate question.
        props.update(channel="email", purpose="marketing")
    elif etype == "unsubscribe":
        props["channel"] = "email"  # SendGrid's global unsubscribe: every email
    elif etype in ("group_unsubscribe", "group_resubscribe"):
        purpose = purposes.get(group_id, default_purpose) if group_id is not None else None
        props.update(channel="email", purpose=purpose or default_purpose)

    return SendgridEvent(
        type=etype,
        at=at,
        event_id=event_id,
        email=email,
        customer_id=customer_id,
        kind=kind,
        outcome=_OUTCOMES.get(etype),
        decision_id=decision_id,
        properties=props,
        index=index,
    )


def _unix_time(value: Any, fail: _Fail) -> datetime:
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            seconds = None
    if seconds is not None and seconds >= 0:
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise fail("timestamp", f"not a unix time in seconds: {value!r}")


def _text(value: Any, name: str, fail: _Fail) -> str | None:
    return identifier(value, lambda problem: fail(name, problem))


def _custom_args(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """Custom args arrive as top-level keys; older integrations nest them."""
    merged: dict[str, Any] = {}
    for nested in ("unique_args", "custom_args"):
        value = item.get(nested)
        if isinstance(value, Mapping):
            merged.update(value)
    merged.update(item)
    return merged


def _derived_id(item: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(
        json.dumps(item, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()
    return f"sendgrid-{digest[:32]}"


# -- signed webhook --------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _public_key(key: str) -> EllipticCurvePublicKey:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    text = key.strip()
    try:
        if "BEGIN PUBLIC KEY" in text:
            loaded = load_pem_public_key(text.encode())
        else:
            loaded = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not a SendGrid verification key: {exc}") from exc
    if not isinstance(loaded, EllipticCurvePublicKey):
        raise ValueError("not a SendGrid verification key: not an elliptic-curve public key")
    return loaded


def verify_sendgrid_signature(
    public_key: str, payload: bytes | str, signature: str, timestamp: str
) -> bool:
    """Whether a Signed Event Webhook request is genuine.

    `public_key` is the verification key from SendGrid's Mail Settings (base64 DER, as
    shown there, or PEM); `payload` the raw request body, byte for byte; `signature` and
    `timestamp` the `X-Twilio-Email-Event-Webhook-Signature` and `...-Timestamp` headers.
    SendGrid signs `timestamp + payload` with ECDSA over SHA-256. An unusable key raises
    `ValueError` (a configuration error); a bad or missing signature is just False.
    Needs the `cryptography` package.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _public_key(public_key)
    if not signature or not timestamp:
        return False
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (ValueError, binascii.Error):
        return False
    body = payload.encode() if isinstance(payload, str) else payload
    try:
        key.verify(der, timestamp.strip().encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
