"""Segment's HTTP Tracking API as tactful events and profile changes.

Takes what Segment's SDKs and HTTP API send (`track`, `identify`, `page`, `screen`,
`alias`, `group`, and the `batch` envelope) and returns, for each message, the customer
it is about, the tactful `Event`s it means and a `ProfilePatch`. Pure: the time the
request arrived is passed in, nothing is read from a clock, a store or the network.

Event names: Segment's semantic events (E-commerce v2 with its v1 aliases, B2B SaaS,
Mobile, Live Chat, Email) map onto tactful's kinds through `SEGMENT_EVENTS`. A name that
is a canonical kind in another spelling ("Offer Declined", "checkoutStarted") is that
kind. Any other name is kept under its snake_case form, so nothing is lost: the rules
ignore kinds they do not know. The original name stays in `properties.segment_event`.

Time: as Segment does, a client clock is corrected for skew when the sender says when it
sent the message: `at = received_at - (sentAt - originalTimestamp)`, where the SDKs'
`timestamp` stands in for `originalTimestamp`. Without `sentAt` the message's own
`timestamp` is taken as it is (a historical import). Without any timestamp, the time it
was received. A message that has already been through Segment (it carries `receivedAt`)
keeps its corrected `timestamp`. No event is dated after it arrived.

Consent: traits never opt anyone in. Explicit opt-out traits (`unsubscribed: true`,
`do_not_contact`, `sms_opt_out`, ...) are honoured as opt-out events, because dropping an
opt-out is worse than honouring a broad one. Every other consent-like trait is listed in
`ignored_traits` so the caller can say it was not applied.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from tactful.addresses import email_or_none, phone_or_none
from tactful.durations import parse_datetime, parse_duration
from tactful.ingest.errors import IngestError, identifier, json_size, parse_json
from tactful.model import (
    CHANNELS,
    KIND_MAX,
    PURPOSES,
    CustomerProfile,
    Event,
    EventKind,
    utc,
)
from tactful.text import NUL_MESSAGE, nul_path

#: Segment's limits: 32KB per message (per call, and per item of a batch), 500KB per batch.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MESSAGE_TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "alias", "group")

_K = EventKind

#: Segment event names (in snake_case) -> tactful event kinds. Judgment calls:
#: - browsing that is not a product view (lists, promotions, product clicks, wishlists,
#:   shares, reviews) is `page_viewed`: it shows presence without being a product trigger;
#: - every checkout step and payment entry is `checkout_started`: the ledger's open
#:   checkout is "the last start with no order after it", so repeating it is harmless, and
#:   a checkout whose "Checkout Started" was never sent is still seen as open;
#: - coupon events and "Cart Viewed" are `cart_updated`;
#: - "Signed Up" is `signed_in` (a new account is a signed-in visit);
#: - "Order Updated/Refunded/Cancelled" stay as their own kinds: usually server-side, so
#:   not a sign that the customer is present;
#: - a live chat the customer opens is `help_requested`; a chat message they send is
#:   `contact_replied`;
#: - "Email Marked as Spam" is `complained` with no scope, which the ledger reads as "no
#:   more marketing email" (a channel alone would stop transactional email too).
SEGMENT_EVENTS: Mapping[str, str] = {
    # E-commerce v2: browsing and promotions
    "products_searched": _K.SEARCHED,
    "product_list_filtered": _K.SEARCHED,
    "product_list_viewed": _K.PAGE_VIEWED,
    "promotion_viewed": _K.PAGE_VIEWED,
    "promotion_clicked": _K.PAGE_VIEWED,
    # E-commerce v2: core ordering
    "product_clicked": _K.PAGE_VIEWED,
    "product_viewed": _K.PRODUCT_VIEWED,
    "product_added": _K.CART_UPDATED,
    "product_removed": _K.CART_UPDATED,
    "cart_viewed": _K.CART_UPDATED,
    "checkout_started": _K.CHECKOUT_STARTED,
    "checkout_step_viewed": _K.CHECKOUT_STARTED,
    "checkout_step_completed": _K.CHECKOUT_STARTED,
    "payment_info_entered": _K.CHECKOUT_STARTED,
    "order_completed": _K.ORDER_COMPLETED,
    # E-commerce v2: coupons, wishlists, sharing, reviewing
    "coupon_entered": _K.CART_UPDATED,
    "coupon_applied": _K.CART_UPDATED,
    "coupon_denied": _K.CART_UPDATED,
    "coupon_removed": _K.CART_UPDATED,
    "product_added_to_wishlist": _K.PAGE_VIEWED,
    "product_removed_from_wishlist": _K.PAGE_VIEWED,
    "wishlist_product_added_to_cart": _K.CART_UPDATED,
    "product_shared": _K.PAGE_VIEWED,
    "cart_shared": _K.PAGE_VIEWED,
    "product_reviewed": _K.PAGE_VIEWED,
    # E-commerce v1 names, still sent by older integrations
    "searched_products": _K.SEARCHED,
    "viewed_product_category": _K.PAGE_VIEWED,
    "viewed_promotion": _K.PAGE_VIEWED,
    "clicked_promotion": _K.PAGE_VIEWED,
    "clicked_product": _K.PAGE_VIEWED,
    "viewed_product": _K.PRODUCT_VIEWED,
    "added_product": _K.CART_UPDATED,
    "removed_product": _K.CART_UPDATED,
    "viewed_cart": _K.CART_UPDATED,
    "started_order": _K.CHECKOUT_STARTED,
    "viewed_checkout_step": _K.CHECKOUT_STARTED,
    "completed_checkout_step": _K.CHECKOUT_STARTED,
    "completed_order": _K.ORDER_COMPLETED,
    # B2B SaaS
    "signed_in": _K.SIGNED_IN,
    "signed_up": _K.SIGNED_IN,
    # Mobile
    "application_opened": _K.SESSION_STARTED,
    "application_backgrounded": _K.SESSION_ENDED,
    "deep_link_opened": _K.PAGE_VIEWED,
    # Live chat
    "live_chat_conversation_started": _K.HELP_REQUESTED,
    "live_chat_message_sent": _K.CONTACT_REPLIED,
    # Email (sent back into Segment by email tools)
    "email_marked_as_spam": _K.COMPLAINED,
    "email_opened": "email_opened",
    "email_link_clicked": "email_clicked",
    "email_delivered": "email_delivered",
    "email_bounced": "email_bounced",
    # Other spellings of tactful's own kinds
    "call_back_requested": _K.CALLBACK_REQUESTED,
    "viewed_page": _K.PAGE_VIEWED,
}

_SCOPED_KINDS = frozenset(
    {_K.UNSUBSCRIBED, _K.SUBSCRIBED, _K.OPTED_OUT, _K.OPTED_IN, _K.COMPLAINED}
)


@dataclass(frozen=True, slots=True)
class ProfilePatch:
    """Profile facts a message carried. Lists add to the profile; consent is never here."""

    timezone: str | None = None
    country: str | None = None
    subdivision: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.timezone or self.country or self.subdivision or self.phones or self.emails)

    def apply(self, profile: CustomerProfile) -> CustomerProfile:
        """`profile` with these facts merged in (known values replaced, lists extended)."""
        return replace(
            profile,
            timezone=self.timezone or profile.timezone,
            country=self.country or profile.country,
            subdivision=self.subdivision or profile.subdivision,
            phones=_union(profile.phones, self.phones),
            emails=_union(profile.emails, self.emails),
        )


@dataclass(frozen=True, slots=True)
class SegmentMessage:
    """One translated Segment message.

    `customer_id` is `user_id` when present, else `anonymous_id`; both are kept so an
    identity service can join them, as is `alias` (`(previous_id, user_id)`) for an alias
    call. `events` may be empty (alias, group, most identifies).
    """

    type: str
    customer_id: str
    user_id: str | None
    anonymous_id: str | None
    message_id: str
    at: datetime
    events: tuple[Event, ...] = ()
    profile_patch: ProfilePatch = ProfilePatch()
    alias: tuple[str, str] | None = None
    group_id: str | None = None
    #: Consent-like traits that were not applied (traits never opt anyone in).
    ignored_traits: tuple[str, ...] = ()
    #: Problems that did not stop the message, each naming its field.
    warnings: tuple[str, ...] = ()
    #: Position in the batch, if it came in one.
    index: int | None = None


@dataclass(frozen=True, slots=True)
class SegmentBatch:
    """A translated batch: the good messages, and an error for each bad one."""

    messages: tuple[SegmentMessage, ...]
    errors: tuple[IngestError, ...] = ()

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(e for m in self.messages for e in m.events)


# -- names -------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[\W_]+")


def snake_case(name: str) -> str:
    """`"Order Completed"`, `"orderCompleted"`, `"order-completed"` -> `"order_completed"`."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NOT_WORD.sub("_", _CAMEL.sub("_", text).lower()).strip("_")


def event_kind(name: str, events: Mapping[str, str] | None = None) -> str:
    """The tactful kind for a Segment event name (see `SEGMENT_EVENTS`; `events` adds to it)."""
    key = snake_case(name)
    if events:
        for extra, kind in events.items():
            if snake_case(extra) == key:
                return str(kind)
    return str(SEGMENT_EVENTS.get(key, key))


# -- entry points ------------------------------------------------------------------------


def check_size(body: bytes | str | Mapping[str, Any], *, batch: bool) -> None:
    """Raise `IngestError` if `body` is over Segment's limit (500KB a batch, 32KB a call)."""
    if isinstance(body, bytes):
        size = len(body)
    elif isinstance(body, str):
        size = len(body.encode())
    else:
        size = json_size(body)
    limit = MAX_BATCH_BYTES if batch else MAX_MESSAGE_BYTES
    if size > limit:
        what = "a batch" if batch else "a message"
        raise IngestError(
            "body", f"{size} bytes, over Segment's limit of {limit // 1024}KB for {what}"
        )


def translate_message(
    message: bytes | str | Mapping[str, Any],
    received_at: datetime,
    *,
    endpoint: str | None = None,
    events: Mapping[str, str] | None = None,
    correct_skew: bool = True,
) -> SegmentMessage:
    """Translate one call (`POST /v1/track`, `/identify`, ...).

    `endpoint` is the call's type when the URL says it (`"track"`); the body's `type`, if
    any, must agree. `events` adds event-name mappings to `SEGMENT_EVENTS`. Raises
    `IngestError` naming the field that is wrong.
    """
    if isinstance(message, bytes | str):
        check_size(message, batch=False)
        message = parse_json(message)
    if endpoint is not None and endpoint not in MESSAGE_TYPES:
        raise ValueError(f"not a Segment call type: {endpoint!r}")
    return _Translator(utc(received_at), events, correct_skew).message(
        message, where="body", prefix="", index=None, endpoint=endpoint
    )


def translate_batch(
    payload: bytes | str | Mapping[str, Any],
    received_at: datetime,
    *,
    events: Mapping[str, str] | None = None,
    correct_skew: bool = True,
) -> SegmentBatch:
    """Translate a `POST /v1/batch` body: `{"batch": [...], "context"?, "sentAt"?, ...}`.

    A bad envelope (not JSON, over 500KB, no `batch` list) raises `IngestError`. A bad
    message does not: it is reported in `errors` with its index (`batch[3].timestamp: ...`)
    and the good messages are returned alongside, so they can be accepted.
    """
    check_size(payload, batch=True)
    if isinstance(payload, bytes | str):
        payload = parse_json(payload)
    if not isinstance(payload, Mapping):
        raise IngestError("body", "must be a JSON object with a `batch` array")
    items = payload.get("batch")
    if not isinstance(items, list):
        raise IngestError("batch", "missing or not an array of messages")
    translator = _Translator(utc(received_at), events, correct_skew)
    env_context = payload.get("context")
    if env_context is not None and not isinstance(env_context, Mapping):
        raise IngestError("context", "must be an object")
    translator.env_context = env_context or {}
    translator.env_sent_at = _instant(payload.get("sentAt"), "sentAt", None)
    messages: list[SegmentMessage] = []
    errors: list[IngestError] = []
    for i, item in enumerate(items):
        try:
            messages.append(
                translator.message(
                    item, where=f"batch[{i}]", prefix=f"batch[{i}].", index=i, endpoint=None
                )
            )
        except IngestError as exc:
            errors.append(exc)
    return SegmentBatch(tuple(messages), tuple(errors))


# -- the translation -----------------------------------------------------------------------


class _Translator:
    def __init__(
        self, received_at: datetime, events: Mapping[str, str] | None, correct_skew: bool
    ) -> None:
        self.received_at = received_at
        self.events = events
        self.correct_skew = correct_skew
        self.env_context: Mapping[str, Any] = {}
        self.env_sent_at: datetime | None = None

    def message(
        self, msg: Any, *, where: str, prefix: str, index: int | None, endpoint: str | None
    ) -> SegmentMessage:
        def fail(name: str, problem: str) -> IngestError:
            return IngestError(prefix + name if name else where, problem, index=index)

        if not isinstance(msg, Mapping):
            raise fail("", "must be a JSON object")
        nul = nul_path(msg)
        if nul is not None:
            raise fail(nul, NUL_MESSAGE)
        size = json_size(msg)
        if size > MAX_MESSAGE_BYTES:
            raise fail("", f"{size} bytes, over Segment's limit of 32KB for a message")
        mtype = msg.get("type")
        if mtype is None or mtype == "":
            mtype = endpoint
        if mtype is None:
            raise fail("type", f"missing: one of {', '.join(MESSAGE_TYPES)}")
        if not isinstance(mtype, str) or mtype.lower() not in MESSAGE_TYPES:
            raise fail("type", f"unknown type {mtype!r}: one of {', '.join(MESSAGE_TYPES)}")
        mtype = mtype.lower()
        if endpoint is not None and mtype != endpoint:
            raise fail("type", f"a {mtype!r} message sent to the {endpoint} call")

        user_id = _identifier(msg.get("userId"), prefix + "userId", index)
        anonymous_id = _identifier(msg.get("anonymousId"), prefix + "anonymousId", index)
        alias: tuple[str, str] | None = None
        if mtype == "alias":
            previous = _identifier(msg.get("previousId"), prefix + "previousId", index)
            if previous is None:
                raise fail("previousId", "missing: an alias joins previousId to userId")
            if user_id is None:
                raise fail("userId", "missing: an alias joins previousId to userId")
            alias = (previous, user_id)
        customer_id = user_id or anonymous_id
        if customer_id is None:
            raise fail("userId", "missing: a message needs a userId or an anonymousId")

        context = {**self.env_context, **_object(msg.get("context"), prefix + "context", index)}
        properties = _object(msg.get("properties"), prefix + "properties", index)
        traits = _object(msg.get("traits"), prefix + "traits", index)
        warnings: list[str] = []
        at = self._time(msg, prefix, index, warnings)
        message_id = _identifier(msg.get("messageId"), prefix + "messageId", index)
        if message_id is None:
            message_id = _derived_id(msg, at)
        group_id = None
        if mtype == "group":
            group_id = _identifier(msg.get("groupId"), prefix + "groupId", index)

        patch = _profile_patch(mtype, traits, context, prefix, warnings)
        session_id = _session_id(properties, context, msg.get("integrations"))
        events: list[Event] = []
        ignored: list[str] = []
        if mtype == "track":
            name = msg.get("event")
            if not isinstance(name, str) or not name.strip():
                raise fail("event", "missing: a track call needs the event name")
            kind = event_kind(name, self.events)
            if not kind:
                raise fail("event", f"{name!r} has no letters or digits to name a kind by")
            if len(kind) > KIND_MAX:
                raise fail("event", f"a name of at most {KIND_MAX} characters (in snake_case)")
            props: dict[str, Any] = dict(properties)
            props["segment_event"] = name
            if session_id is not None:
                props["session_id"] = session_id
            props = _semantics(kind, props, prefix + "properties", index)
            events.append(Event(customer_id, kind, at, message_id, props))
        elif mtype in ("page", "screen"):
            props = dict(properties)
            for key in ("name", "category"):
                value = msg.get(key)
                if isinstance(value, str) and value and key not in props:
                    props[key] = value
            props["segment_type"] = mtype
            if session_id is not None:
                props["session_id"] = session_id
            events.append(Event(customer_id, _K.PAGE_VIEWED.value, at, message_id, props))
        elif mtype == "identify":
            events.extend(_consent_events(traits, customer_id, at, message_id, ignored))

        return SegmentMessage(
            type=mtype,
            customer_id=customer_id,
            user_id=user_id,
            anonymous_id=anonymous_id,
            message_id=message_id,
            at=at,
            events=tuple(events),
            profile_patch=patch,
            alias=alias,
            group_id=group_id,
            ignored_traits=tuple(ignored),
            warnings=tuple(warnings),
            index=index,
        )

    def _time(
        self, msg: Mapping[str, Any], prefix: str, index: int | None, warnings: list[str]
    ) -> datetime:
        timestamp = _instant(msg.get("timestamp"), prefix + "timestamp", index)
        original = _instant(msg.get("originalTimestamp"), prefix + "originalTimestamp", index)
        sent_at = _instant(msg.get("sentAt"), prefix + "sentAt", index) or self.env_sent_at
        upstream = _instant(msg.get("receivedAt"), prefix + "receivedAt", index)
        try:
            at = self._corrected(timestamp, original, sent_at, upstream)
        except OverflowError:
            raise IngestError(
                prefix + "sentAt",
                "the clock-skew correction leaves the range of dates",
                index=index,
            ) from None
        ahead = (at - self.received_at).total_seconds()
        if ahead > 0:
            if ahead >= 1:
                warnings.append(
                    f"{prefix}timestamp: {ahead:.0f}s after the message arrived; "
                    "dated when it arrived instead"
                )
            at = self.received_at
        return at

    def _corrected(
        self,
        timestamp: datetime | None,
        original: datetime | None,
        sent_at: datetime | None,
        upstream: datetime | None,
    ) -> datetime:
        """The event time after Segment's clock-skew correction."""
        if upstream is not None:
            # Already through Segment: its `timestamp` is the corrected one.
            if timestamp is not None:
                at = timestamp
            elif original is not None and sent_at is not None:
                at = upstream - (sent_at - original)
            else:
                at = original or upstream
        else:
            client = original or timestamp
            if client is not None and sent_at is not None and self.correct_skew:
                at = self.received_at - (sent_at - client)
            elif timestamp is not None or original is not None:
                at = timestamp or original or self.received_at
            else:
                at = self.received_at
        return at


# -- fields --------------------------------------------------------------------------------


def _identifier(value: Any, field: str, index: int | None) -> str | None:
    return identifier(value, lambda problem: IngestError(field, problem, index=index))


def _object(value: Any, field: str, index: int | None) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise IngestError(field, f"must be an object, not {type(value).__name__}", index=index)
    return value


def _instant(value: Any, field: str, index: int | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    raise IngestError(field, f"not an ISO 8601 date-time: {value!r}", index=index)


def _derived_id(msg: Mapping[str, Any], at: datetime) -> str:
    """A stable id for a message without `messageId`: the same content dedups."""
    digest = hashlib.sha256(
        json.dumps(msg, sort_keys=True, separators=(",", ":"), default=str).encode()
        + at.isoformat().encode()
    ).hexdigest()
    return f"segment-{digest[:32]}"


def _scalar_id(value: Any) -> str | None:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def _session_id(
    properties: Mapping[str, Any], context: Mapping[str, Any], integrations: Any
) -> str | None:
    candidates: list[Any] = [
        properties.get("session_id"),
        properties.get("sessionId"),
        context.get("sessionId"),
        context.get("session_id"),
    ]
    if isinstance(integrations, Mapping):
        # Segment's Amplitude (Actions) plugin puts the browser session here.
        amplitude = integrations.get("Actions Amplitude")
        if isinstance(amplitude, Mapping):
            candidates.append(amplitude.get("session_id"))
    for value in candidates:
        sid = _scalar_id(value)
        if sid is not None:
            return sid
    return None


def _semantics(kind: str, props: dict[str, Any], field: str, index: int | None) -> dict[str, Any]:
    """Check (and normalise) the properties the ledger reads for canonical kinds, so a bad
    value is refused here, naming its field, rather than failing when state is folded."""
    if kind in _SCOPED_KINDS:
        for key in ("channel", "purpose"):
            value = props.get(key)
            if value is None or value == "":
                props.pop(key, None)
            elif isinstance(value, str):
                props[key] = value.strip().lower()
            else:
                raise IngestError(f"{field}.{key}", "must be a string", index=index)
    elif kind == _K.CALLBACK_REQUESTED:
        for key in ("at", "callback_at"):
            if props.get(key):
                props[key] = _property_instant(props[key], f"{field}.{key}", index)
    elif kind == _K.SNOOZE_REQUESTED:
        if props.get("until"):
            props["until"] = _property_instant(props["until"], f"{field}.until", index)
        elif props.get("duration"):
            value = props["duration"]
            try:
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise ValueError(f"not a duration: {value!r}")
                parse_duration(value)
            except ValueError as exc:
                raise IngestError(f"{field}.duration", str(exc), index=index) from exc
    return props


def _property_instant(value: Any, field: str, index: int | None) -> str:
    parsed = _instant(value, field, index)
    assert parsed is not None
    return parsed.isoformat()


# -- profile -------------------------------------------------------------------------------


def _profile_patch(
    mtype: str,
    traits: Mapping[str, Any],
    context: Mapping[str, Any],
    prefix: str,
    warnings: list[str],
) -> ProfilePatch:
    context_traits = context.get("traits")
    if not isinstance(context_traits, Mapping):
        context_traits = {}
    own: Mapping[str, Any] = traits if mtype == "identify" else {}
    address = own.get("address")
    address = address if isinstance(address, Mapping) else {}
    location = context.get("location")
    location = location if isinstance(location, Mapping) else {}

    timezone = None
    for field, value in (
        ("traits.timezone", own.get("timezone")),
        ("context.timezone", context.get("timezone")),
    ):
        if value is not None:
            timezone = _timezone(value, prefix + field, warnings)
            if timezone:
                break

    country = None
    for field, value in (
        ("traits.address.country", address.get("country")),
        ("traits.country", own.get("country")),
        ("context.location.country", location.get("country")),
    ):
        if value is not None:
            country = _country(value, prefix + field, warnings)
            if country:
                break

    subdivision = None
    state = address.get("state")
    if isinstance(state, str) and re.fullmatch(r"[A-Za-z0-9]{1,3}", state.strip()):
        subdivision = state.strip().upper()

    phones: list[str] = []
    for field, value in (
        ("traits.phone", own.get("phone")),
        ("context.traits.phone", context_traits.get("phone")),
    ):
        if value is not None:
            phone = phone_or_none(value, country)
            if phone is None:
                warnings.append(f"{prefix}{field}: not a phone number: {value!r}; ignored")
            elif phone not in phones:
                phones.append(phone)

    emails: list[str] = []
    for field, value in (
        ("traits.email", own.get("email")),
        ("context.traits.email", context_traits.get("email")),
    ):
        if value is not None:
            email = email_or_none(value)
            if email is None:
                warnings.append(f"{prefix}{field}: not an email address: {value!r}; ignored")
            elif email not in emails:
                emails.append(email)

    return ProfilePatch(timezone, country, subdivision, tuple(phones), tuple(emails))


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        return False
    return True


def _timezone(value: Any, field: str, warnings: list[str]) -> str | None:
    if isinstance(value, str) and value.strip() and _known_zone(value.strip()):
        return value.strip()
    warnings.append(f"{field}: not an IANA time zone: {value!r}; ignored")
    return None


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """English country names and alpha-3 codes -> alpha-2, from the holidays registry."""
    names: dict[str, str] = {}
    try:
        from holidays.registry import COUNTRIES
    except ImportError:  # pragma: no cover - holidays is a dependency
        return names
    for module, entry in COUNTRIES.items():
        alpha2 = str(entry[1]).upper()
        names[module] = alpha2
        names[snake_case(str(entry[0]))] = alpha2
        names[str(entry[2]).lower()] = alpha2
    names.update({"uk": "GB", "usa": "US", "united_states_of_america": "US"})
    return names


def _country(value: Any, field: str, warnings: list[str]) -> str | None:
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if len(text) == 2 and text.upper() in phonenumbers.SUPPORTED_REGIONS:
            return text.upper()
        code = _country_names().get(snake_case(text))
        if code:
            return code
    warnings.append(f"{field}: not a country (ISO 3166 code or English name): {value!r}; ignored")
    return None


def _union(first: Sequence[str], second: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *second]))


# -- consent traits ------------------------------------------------------------------------

_OUT_WORDS = ("unsubscribed", "opted_out", "opt_out", "optout", "opted_out_of")
_CHANNEL_WORDS: Mapping[str, str] = {
    **{c: c for c in CHANNELS},
    "text": "sms",
    "phone": "call",
    "calls": "call",
    "emails": "email",
}
_DO_NOT: Mapping[str, str] = {
    "do_not_email": "email",
    "do_not_call": "call",
    "do_not_text": "sms",
    "do_not_sms": "sms",
    "do_not_mail": "mail",
    "do_not_push": "push",
}
_CONSENTISH = re.compile(
    r"subscri|opt_?in|opted_in|opt_?out|opted_out|consent|accepts_marketing|do_not"
)


def _opt_out_scope(key: str) -> tuple[str, str | None, str | None] | None:
    """(kind, channel, purpose) for a trait that states an opt-out, else None."""
    if key in ("opted_out", "opt_out", "optout", "do_not_contact", "dnc"):
        return (_K.OPTED_OUT, None, None)
    if key == "unsubscribed":
        return (_K.UNSUBSCRIBED, None, None)
    if key in _DO_NOT:
        return (_K.UNSUBSCRIBED, _DO_NOT[key], None)
    for word in _OUT_WORDS:
        for scope in (
            key.removesuffix(f"_{word}") if key.endswith(f"_{word}") else None,
            key.removeprefix(f"{word}_") if key.startswith(f"{word}_") else None,
        ):
            if scope is None:
                continue
            scope = scope.removeprefix("from_")
            if scope in _CHANNEL_WORDS:
                return (_K.UNSUBSCRIBED, _CHANNEL_WORDS[scope], None)
            if scope in PURPOSES:
                return (_K.UNSUBSCRIBED, None, scope)
    return None


def _truthy(value: Any) -> bool:
    if value is True:
        return True
    if isinstance(value, int) and not isinstance(value, bool):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("true", "yes", "y", "1")


def _consent_events(
    traits: Mapping[str, Any],
    customer_id: str,
    at: datetime,
    message_id: str,
    ignored: list[str],
) -> list[Event]:
    events: list[Event] = []
    for name, value in traits.items():
        key = snake_case(str(name))
        scope = _opt_out_scope(key)
        if scope is not None and _truthy(value):
            kind, channel, purpose = scope
            props: dict[str, Any] = {"trait": name, "segment_type": "identify"}
            if channel:
                props["channel"] = channel
            if purpose:
                props["purpose"] = purpose
            events.append(Event(customer_id, str(kind), at, f"{message_id}:{key}", props))
        elif scope is not None or _CONSENTISH.search(key):
            ignored.append(str(name))
    return events
