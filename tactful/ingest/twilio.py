"""Twilio inbound messages as tactful events: a customer who texts STOP is unsubscribed.

Twilio posts each inbound SMS as form fields (`From`, `To`, `Body`, `MessageSid`,
`AccountSid`, and `OptOutType` when Advanced Opt-Out is on). Translation:

| message                                | event (`kind`)                                   |
|----------------------------------------|--------------------------------------------------|
| opt-out keyword, or `OptOutType=STOP`  | `unsubscribed`, channel `sms`                    |
| opt-in keyword, or `OptOutType=START`  | `subscribed`, channel `sms`; and `contact_replied` |
| help keyword, or `OptOutType=HELP`     | `sms_help` (no opt-out)                          |
| anything else                          | `contact_replied`                                |

The keywords are Twilio's defaults: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
OPTOUT; START, YES, UNSTOP; HELP, INFO. A message is a keyword only when the whole of it
is, ignoring case, accents, spaces and punctuation ("Stop.", " stop! ", "opt-out"), as
Twilio only acts on single-word replies; "please don't stop" is an ordinary reply.
Twilio blocks one sender number on STOP, but the customer is asking the business to stop
texting, so the unsubscribe covers the `sms` channel for every purpose (the number that
was texted is kept in `properties.to`). An opt-in is also a reply: "YES" may well answer
a question, and either way the customer engaged. WhatsApp senders (`whatsapp:+1...`) get
channel `whatsapp`. The message text is not stored, except a keyword's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tactful.addresses import phone_or_none
from tactful.ingest.errors import IngestError
from tactful.model import ID_MAX, Event, EventKind, utc
from tactful.text import NUL_MESSAGE, nul_path

SIGNATURE_HEADER = "X-Twilio-Signature"

OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

#: The kind for a help request by keyword: an information request, not an opt-out, and
#: not the `help_requested` of a customer asking for a person.
SMS_HELP = "sms_help"

_OPT_OUT_TYPES: Mapping[str, str] = {
    "STOP": EventKind.UNSUBSCRIBED,
    "START": EventKind.SUBSCRIBED,
    "HELP": SMS_HELP,
}


@dataclass(frozen=True, slots=True)
class InboundSms:
    """One inbound message. `phone` is the sender in E.164: the caller resolves it to a
    customer and asks `events(customer_id)` for the ledger events."""

    phone: str
    to: str | None
    channel: str
    kind: str
    keyword: str | None
    at: datetime
    event_id: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    #: Problems that did not stop the message, each naming its field.
    warnings: tuple[str, ...] = ()

    def events(self, customer_id: str) -> tuple[Event, ...]:
        first = Event(customer_id, self.kind, self.at, self.event_id, self.properties)
        if self.kind != EventKind.SUBSCRIBED:
            return (first,)
        reply_props = {k: v for k, v in self.properties.items() if k not in ("keyword", "text")}
        reply = Event(
            customer_id,
            EventKind.CONTACT_REPLIED.value,
            self.at,
            f"{self.event_id}:reply",
            reply_props,
        )
        return (first, reply)


def keyword(body: str) -> str:
    """`body` reduced to a keyword: letters and digits only, upper case, accents dropped."""
    text = unicodedata.normalize("NFKD", body)
    return "".join(c for c in text if c.isalnum() and not unicodedata.combining(c)).upper()


def translate_twilio_inbound(
    params: Mapping[str, Any],
    received_at: datetime,
    *,
    opt_out_keywords: frozenset[str] = OPT_OUT_KEYWORDS,
    opt_in_keywords: frozenset[str] = OPT_IN_KEYWORDS,
    help_keywords: frozenset[str] = HELP_KEYWORDS,
    default_region: str | None = "US",
) -> InboundSms:
    """Translate the form fields of an inbound-message webhook. Twilio sends no event
    time, so the message is dated `received_at`. Keyword sets extend with, e.g.,
    `opt_out_keywords=OPT_OUT_KEYWORDS | {"ARRET"}` (write them as `keyword()` returns
    them). Raises `IngestError` naming the field when `From` or `MessageSid` is unusable.
    """
    warnings: list[str] = []
    nul = nul_path(dict(params))
    if nul is not None:
        raise IngestError(nul, NUL_MESSAGE)
    sender = _field(params, "From")
    if not sender:
        raise IngestError("From", "missing: the sender's number")
    channel = "sms"
    scheme, colon, address = sender.partition(":")
    if colon and not scheme.startswith("+"):
        if scheme.lower() == "whatsapp":
            channel = "whatsapp"
        elif scheme.lower() != "rcs":  # Twilio unifies RCS and SMS opt-outs
            raise IngestError("From", f"not a phone number: {sender!r}")
        sender = address
    phone = phone_or_none(sender, default_region)
    if phone is None:
        raise IngestError("From", f"not a phone number: {sender!r}")
    sid = _field(params, "MessageSid") or _field(params, "SmsSid")
    if not sid:
        raise IngestError("MessageSid", "missing: the message id Twilio assigned")
    if len(sid) > ID_MAX:
        raise IngestError("MessageSid", f"at most {ID_MAX} characters")
    raw_to = _field(params, "To")
    to = None
    if raw_to:
        to = phone_or_none(raw_to.partition(":")[2] or raw_to, default_region) or raw_to
    body = _field(params, "Body") or ""
    word = keyword(body)

    kind: str | None = None
    opt_out_type = (_field(params, "OptOutType") or "").strip().upper()
    if opt_out_type:
        kind = _OPT_OUT_TYPES.get(opt_out_type)
        if kind is None:
            warnings.append(f"OptOutType: unknown value {opt_out_type!r}; read the message instead")
    if kind is None:
        if word in opt_out_keywords:
            kind = EventKind.UNSUBSCRIBED
        elif word in opt_in_keywords:
            kind = EventKind.SUBSCRIBED
        elif word in help_keywords:
            kind = SMS_HELP
        else:
            kind = EventKind.CONTACT_REPLIED

    props: dict[str, Any] = {"channel": channel, "source": "twilio", "message_sid": sid}
    if to:
        props["to"] = to
    for name, key in (
        ("AccountSid", "account_sid"),
        ("MessagingServiceSid", "messaging_service_sid"),
    ):
        value = _field(params, name)
        if value:
            props[key] = value
    if opt_out_type:
        props["opt_out_type"] = opt_out_type
    is_keyword = kind != EventKind.CONTACT_REPLIED
    if is_keyword:
        props["keyword"] = word
        props["text"] = body.strip()
    return InboundSms(
        phone=phone,
        to=to,
        channel=channel,
        kind=str(kind),
        keyword=word if is_keyword else None,
        at=utc(received_at),
        event_id=sid,
        properties=props,
        warnings=tuple(warnings),
    )


def _field(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    if not isinstance(value, str):
        raise IngestError(name, f"must be a string, not {type(value).__name__}")
    return value.strip() or None


# -- request validation ------------------------------------------------------------------------


def compute_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str | Sequence[str]] | None = None
) -> str:
    """Twilio's `X-Twilio-Signature` for a request: base64 HMAC-SHA1, keyed by the auth
    token, of the URL followed by every parameter name and value, sorted by name (and a
    repeated name's values sorted), with no separators."""
    data = url
    for name in sorted(set(params or {})):
        value = (params or {})[name]
        values = [value] if isinstance(value, str) else list(value)
        for v in sorted(set(values)):
            data += name + v
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def validate_twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str | Sequence[str]] | None,
    signature: str | None,
) -> bool:
    """Whether a webhook request really comes from Twilio.

    `url` is the full URL Twilio requested, query string included, as configured in
    Twilio; `params` the POST form fields. Twilio is inconsistent about the port, so the
    URL is tried as given, without its port and with the scheme's default port, as
    Twilio's own libraries do. The comparison is constant-time.
    """
    if not signature:
        return False
    given = signature.strip().encode()
    valid = False
    for candidate in _url_variants(url):
        expected = compute_twilio_signature(auth_token, candidate, params).encode()
        valid |= hmac.compare_digest(expected, given)
    return valid


def _url_variants(url: str) -> tuple[str, ...]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return (url,)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    prefix = userinfo + at
    host = hostport.rsplit(":", 1)[0] if port is not None else hostport
    default = 443 if parts.scheme == "https" else 80
    without = urlunsplit(parts._replace(netloc=prefix + host))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port or default}"))
    return tuple(dict.fromkeys((url, without, with_port)))
