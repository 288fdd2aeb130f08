"""Segment Tracking API payloads -> tactful events and profile patches."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from tactful import CustomerProfile, CustomerState, EventKind
from tactful.ingest import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SEGMENT_EVENTS,
    IngestError,
    ProfilePatch,
    SegmentMessage,
    check_size,
    event_kind,
    translate_batch,
    translate_message,
)
from tactful.ingest.segment import snake_case

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def track(event: str, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "ann", "event": event, "messageId": "m-1", **extra}


def one(msg: dict[str, Any], **kw: Any) -> Any:
    result = translate_message(msg, NOW, **kw)
    assert len(result.events) == 1
    return result.events[0]


# -- event names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Products Searched", "searched"),
        ("Product List Viewed", "page_viewed"),
        ("Product List Filtered", "searched"),
        ("Promotion Viewed", "page_viewed"),
        ("Promotion Clicked", "page_viewed"),
        ("Product Clicked", "page_viewed"),
        ("Product Viewed", "product_viewed"),
        ("Product Added", "cart_updated"),
        ("Product Removed", "cart_updated"),
        ("Cart Viewed", "cart_updated"),
        ("Checkout Started", "checkout_started"),
        ("Checkout Step Viewed", "checkout_started"),
        ("Checkout Step Completed", "checkout_started"),
        ("Payment Info Entered", "checkout_started"),
        ("Order Completed", "order_completed"),
        ("Order Updated", "order_updated"),
        ("Order Refunded", "order_refunded"),
        ("Order Cancelled", "order_cancelled"),
        ("Coupon Entered", "cart_updated"),
        ("Coupon Applied", "cart_updated"),
        ("Coupon Denied", "cart_updated"),
        ("Coupon Removed", "cart_updated"),
        ("Product Added to Wishlist", "page_viewed"),
        ("Product Removed from Wishlist", "page_viewed"),
        ("Wishlist Product Added to Cart", "cart_updated"),
        ("Product Shared", "page_viewed"),
        ("Cart Shared", "page_viewed"),
        ("Product Reviewed", "page_viewed"),
        # e-commerce v1 names
        ("Viewed Product", "product_viewed"),
        ("Completed Order", "order_completed"),
        ("Started Order", "checkout_started"),
        ("Viewed Product Category", "page_viewed"),
        # other Segment specs
        ("Signed In", "signed_in"),
        ("Signed Up", "signed_in"),
        ("Signed Out", "signed_out"),
        ("Application Opened", "session_started"),
        ("Application Backgrounded", "session_ended"),
        ("Live Chat Conversation Started", "help_requested"),
        ("Live Chat Message Sent", "contact_replied"),
        ("Email Marked as Spam", "complained"),
        ("Email Opened", "email_opened"),
        ("Email Link Clicked", "email_clicked"),
        # tactful's own kinds, any spelling
        ("checkout_started", "checkout_started"),
        ("Offer Declined", "offer_declined"),
        ("offerDeclined", "offer_declined"),
        ("NOT INTERESTED", "not_interested"),
        ("Callback Requested", "callback_requested"),
        ("Call Back Requested", "callback_requested"),
        ("Content Downloaded", "content_downloaded"),
        ("Chat Dismissed", "chat_dismissed"),
        ("Opted Out", "opted_out"),
        ("Unsubscribed", "unsubscribed"),
        # unknown names keep a snake_case kind
        ("Video Playback Started", "video_playback_started"),
        ("  Weird -- Name!! ", "weird_name"),
    ],
)
def test_event_names_map_to_kinds(name: str, kind: str) -> None:
    assert event_kind(name) == kind
    event = one(track(name))
    assert event.kind == kind
    assert type(event.kind) is str
    assert event.properties["segment_event"] == name


def test_every_mapped_kind_is_canonical_or_a_documented_extra() -> None:
    canonical = {k.value for k in EventKind}
    extras = {"email_opened", "email_clicked", "email_delivered", "email_bounced"}
    assert set(SEGMENT_EVENTS.values()) <= canonical | extras
    assert all(snake_case(key) == key for key in SEGMENT_EVENTS)


def test_extra_event_names_can_be_added() -> None:
    assert event_kind("Demo Booked", {"Demo Booked": "callback_requested"}) == (
        "callback_requested"
    )
    event = one(track("Demo Booked"), events={"demo_booked": "help_requested"})
    assert event.kind == "help_requested"


def test_snake_case() -> None:
    assert snake_case("Order Completed") == "order_completed"
    assert snake_case("orderCompleted") == "order_completed"
    assert snake_case("order-completed") == "order_completed"
    assert snake_case("Café Visité") == "cafe_visite"


# -- message types ---------------------------------------------------------------------------


def test_track_keeps_properties_and_message_id() -> None:
    event = one(track("Product Viewed", properties={"product_id": "p1", "price": 9.5}))
    assert event.customer_id == "ann"
    assert event.event_id == "m-1"
    assert event.properties["product_id"] == "p1"
    assert event.properties["price"] == 9.5


@pytest.mark.parametrize("mtype", ["page", "screen"])
def test_page_and_screen_are_page_views(mtype: str) -> None:
    msg = {
        "type": mtype,
        "anonymousId": "anon-1",
        "name": "Pricing",
        "category": "Docs",
        "properties": {"path": "/pricing"},
        "messageId": "p-1",
    }
    result = translate_message(msg, NOW)
    (event,) = result.events
    assert event.kind == "page_viewed"
    assert event.customer_id == "anon-1"
    assert event.properties == {
        "path": "/pricing",
        "name": "Pricing",
        "category": "Docs",
        "segment_type": mtype,
    }


def test_identify_patches_the_profile() -> None:
    msg = {
        "type": "identify",
        "userId": "ann",
        "traits": {
            "email": "  Ann@Example.COM ",
            "phone": "(312) 555-0142",
            "timezone": "America/Chicago",
            "address": {"country": "US", "state": "il"},
        },
        "context": {"timezone": "Europe/Paris"},
    }
    result = translate_message(msg, NOW)
    assert result.events == ()
    assert result.profile_patch == ProfilePatch(
        timezone="America/Chicago",  # the trait wins over the device's zone
        country="US",
        subdivision="IL",
        phones=("+13125550142",),
        emails=("ann@example.com",),
    )
    merged = result.profile_patch.apply(
        CustomerProfile("ann", phones=("+13125550142",), emails=("old@example.com",))
    )
    assert merged.timezone == "America/Chicago"
    assert merged.phones == ("+13125550142",)
    assert merged.emails == ("old@example.com", "ann@example.com")


def test_context_timezone_sets_the_zone_on_any_message() -> None:
    result = translate_message(track("Signed In", context={"timezone": "Europe/Amsterdam"}), NOW)
    assert result.profile_patch.timezone == "Europe/Amsterdam"
    assert not translate_message(track("Signed In"), NOW).profile_patch.timezone


@pytest.mark.parametrize(
    ("country", "code"),
    [("United States", "US"), ("fr", "FR"), ("DEU", "DE"), ("United Kingdom", "GB"), ("UK", "GB")],
)
def test_location_country_names_and_codes(country: str, code: str) -> None:
    msg = track("Signed In", context={"location": {"country": country}})
    assert translate_message(msg, NOW).profile_patch.country == code


def test_bad_profile_values_are_warnings_not_errors() -> None:
    msg = {
        "type": "identify",
        "userId": "ann",
        "traits": {"timezone": "Mars/Olympus", "phone": "12", "email": "nope"},
        "context": {"location": {"country": "Atlantis"}},
    }
    result = translate_message(msg, NOW)
    assert result.profile_patch.empty
    text = "\n".join(result.warnings)
    assert "traits.timezone: not an IANA time zone" in text
    assert "traits.phone: not a phone number" in text
    assert "traits.email: not an email address" in text
    assert "context.location.country: not a country" in text


def test_subscription_traits_never_opt_anyone_in() -> None:
    msg = {
        "type": "identify",
        "userId": "ann",
        "messageId": "id-1",
        "traits": {
            "subscribed": True,
            "email_opt_in": True,
            "marketing_consent": "yes",
            "unsubscribed": False,
            "plan": "pro",
        },
    }
    result = translate_message(msg, NOW)
    assert result.events == ()
    assert set(result.ignored_traits) == {
        "subscribed",
        "email_opt_in",
        "marketing_consent",
        "unsubscribed",
    }


def test_opt_out_traits_are_honoured_with_their_scope() -> None:
    msg = {
        "type": "identify",
        "userId": "ann",
        "messageId": "id-2",
        "traits": {
            "unsubscribed": True,
            "sms_opt_out": "true",
            "do_not_call": 1,
            "unsubscribed_from_marketing": True,
            "optedOut": True,
        },
    }
    events = {e.event_id: e for e in translate_message(msg, NOW).events}
    assert events["id-2:unsubscribed"].kind == "unsubscribed"
    assert "channel" not in events["id-2:unsubscribed"].properties
    assert events["id-2:sms_opt_out"].properties["channel"] == "sms"
    assert events["id-2:do_not_call"].properties["channel"] == "call"
    assert events["id-2:unsubscribed_from_marketing"].properties["purpose"] == "marketing"
    assert events["id-2:opted_out"].kind == "opted_out"


def test_alias_joins_identities() -> None:
    msg = {"type": "alias", "previousId": "anon-1", "userId": "ann", "messageId": "a-1"}
    result = translate_message(msg, NOW)
    assert result.alias == ("anon-1", "ann")
    assert result.customer_id == "ann"
    assert result.events == ()


def test_alias_needs_both_ids() -> None:
    with pytest.raises(IngestError) as info:
        translate_message({"type": "alias", "userId": "ann"}, NOW)
    assert info.value.field == "previousId"


def test_group_keeps_the_group_id_and_makes_no_event() -> None:
    msg = {"type": "group", "userId": "ann", "groupId": "acme", "traits": {"name": "Acme"}}
    result = translate_message(msg, NOW)
    assert result.group_id == "acme"
    assert result.events == ()


def test_user_id_wins_and_both_ids_are_kept() -> None:
    result = translate_message(track("Signed In", anonymousId="anon-1"), NOW)
    assert (result.customer_id, result.user_id, result.anonymous_id) == ("ann", "ann", "anon-1")
    anon = translate_message(
        {"type": "track", "anonymousId": "anon-1", "userId": None, "event": "Signed In"}, NOW
    )
    assert (anon.customer_id, anon.user_id) == ("anon-1", None)


def test_numeric_user_id_is_a_string() -> None:
    assert translate_message(track("Signed In", userId=42), NOW).customer_id == "42"


# -- sessions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        {"properties": {"session_id": "s1"}},
        {"context": {"sessionId": "s1"}},
        {"context": {"session_id": "s1"}},
        {"integrations": {"Actions Amplitude": {"session_id": "s1"}}},
    ],
)
def test_session_id_becomes_an_event_property(where: dict[str, Any]) -> None:
    assert one(track("Product Viewed", **where)).properties["session_id"] == "s1"


def test_numeric_session_ids_are_strings() -> None:
    event = one(track("Product Viewed", context={"sessionId": 1732480000123}))
    assert event.properties["session_id"] == "1732480000123"


# -- time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-24T19:30:00Z", datetime(2026, 11, 24, 19, 30, tzinfo=UTC)),
        ("2026-11-24T19:30:00.250Z", datetime(2026, 11, 24, 19, 30, 0, 250000, tzinfo=UTC)),
        ("2026-11-24T13:30:00-06:00", datetime(2026, 11, 24, 19, 30, tzinfo=UTC)),
        ("2026-11-24T20:30:00+01:00", datetime(2026, 11, 24, 19, 30, tzinfo=UTC)),
        ("2026-11-24T19:30:00.123456789Z", datetime(2026, 11, 24, 19, 30, 0, 123456, tzinfo=UTC)),
        ("2026-11-24T19:30:00", datetime(2026, 11, 24, 19, 30, tzinfo=UTC)),  # naive: UTC
    ],
)
def test_own_timestamp_is_used_without_sent_at(timestamp: str, expected: datetime) -> None:
    assert one(track("Signed In", timestamp=timestamp)).at == expected


def test_no_timestamp_means_the_time_received() -> None:
    assert one(track("Signed In")).at == NOW


def test_clock_skew_is_corrected_from_sent_at() -> None:
    # The device clock runs 2 hours fast: it says it sent at 22:00, we got it at 20:00.
    msg = track(
        "Signed In", originalTimestamp="2026-11-24T21:55:00Z", sentAt="2026-11-24T22:00:00Z"
    )
    assert one(msg).at == NOW - timedelta(minutes=5)
    # SDKs send the device time as `timestamp`; it is corrected the same way.
    msg = track("Signed In", timestamp="2026-11-24T21:55:00Z", sentAt="2026-11-24T22:00:00Z")
    assert one(msg).at == NOW - timedelta(minutes=5)
    # ... unless the caller asks for the timestamp as sent.
    assert one(msg, correct_skew=False).at == NOW  # 21:55 is in the future: clamped


def test_batch_sent_at_applies_to_its_messages() -> None:
    payload = {
        "sentAt": "2026-11-24T19:00:00Z",  # device clock an hour slow
        "batch": [track("Signed In", timestamp="2026-11-24T18:59:00Z")],
    }
    (msg,) = translate_batch(payload, NOW).messages
    assert msg.at == NOW - timedelta(minutes=1)


def test_message_already_through_segment_keeps_its_timestamp() -> None:
    msg = track(
        "Signed In",
        timestamp="2026-11-24T18:00:00Z",
        originalTimestamp="2026-11-24T17:00:00Z",
        sentAt="2026-11-24T17:01:00Z",
        receivedAt="2026-11-24T18:01:00Z",
    )
    assert one(msg).at == datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def test_future_events_are_dated_when_received_with_a_warning() -> None:
    result = translate_message(track("Signed In", timestamp="2026-11-24T23:00:00Z"), NOW)
    assert result.events[0].at == NOW
    assert any("timestamp" in w and "after the message arrived" in w for w in result.warnings)


@pytest.mark.parametrize("field", ["timestamp", "sentAt", "originalTimestamp", "receivedAt"])
@pytest.mark.parametrize("bad", ["yesterday", "2015-2-02T00:30:08.276Z", 1700000000, "", True])
def test_bad_timestamps_name_the_field(field: str, bad: Any) -> None:
    with pytest.raises(IngestError) as info:
        translate_message(track("Signed In", **{field: bad}), NOW)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: not an ISO 8601 date-time")


# -- dedup ids -------------------------------------------------------------------------------


def test_message_id_is_the_event_id_and_dedups_in_the_ledger() -> None:
    event = one(track("Product Viewed"))
    state = CustomerState(CustomerProfile("ann"))
    assert state.add_event(event) is True
    assert state.add_event(one(track("Product Viewed"))) is False


def test_missing_message_id_gets_a_stable_content_id() -> None:
    msg = {"type": "track", "userId": "ann", "event": "Signed In", "timestamp": "2026-11-24T19:00Z"}
    first = translate_message(msg, NOW)
    again = translate_message(dict(msg), NOW + timedelta(seconds=5))
    other = translate_message({**msg, "event": "Signed Out"}, NOW)
    assert first.message_id == again.message_id
    assert first.message_id.startswith("segment-")
    assert first.message_id != other.message_id


# -- semantics the ledger relies on ----------------------------------------------------------


def test_scoped_opt_outs_pass_through_normalised() -> None:
    event = one(track("Unsubscribed", properties={"channel": " Email ", "purpose": "MARKETING"}))
    assert event.kind == "unsubscribed"
    assert event.properties["channel"] == "email"
    assert event.properties["purpose"] == "marketing"
    state = CustomerState(CustomerProfile("ann"), [event])
    assert state.optout_covering("email", "marketing") is not None
    assert state.optout_covering("sms", "marketing") is None


def test_callback_and_snooze_times_are_checked() -> None:
    event = one(track("Callback Requested", properties={"at": "2026-12-15T10:00:00-06:00"}))
    assert event.properties["at"] == "2026-12-15T16:00:00+00:00"
    with pytest.raises(IngestError) as info:
        translate_message(track("Callback Requested", properties={"at": "in 3 weeks"}), NOW)
    assert info.value.field == "properties.at"
    assert one(track("Snooze Requested", properties={"duration": "21d"})).kind == (
        "snooze_requested"
    )
    with pytest.raises(IngestError) as info:
        translate_message(track("Snooze Requested", properties={"duration": "a while"}), NOW)
    assert info.value.field == "properties.duration"
    with pytest.raises(IngestError) as info:
        translate_message(track("Opted Out", properties={"channel": ["sms"]}), NOW)
    assert info.value.field == "properties.channel"


def test_translated_events_fold_into_customer_state() -> None:
    started = one(track("Checkout Started", timestamp="2026-11-24T19:50:00Z", messageId="a"))
    step = one(track("Payment Info Entered", timestamp="2026-11-24T19:55:00Z", messageId="b"))
    state = CustomerState(CustomerProfile("ann"), [started, step])
    t = NOW.timestamp()
    assert state.last_activity(t) == step.at.timestamp()
    assert state.last_event("checkout_started", t) == step.at.timestamp()


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "field", "words"),
    [
        ({"userId": "ann", "event": "x"}, "type", "missing"),
        ({"type": "jump", "userId": "ann"}, "type", "unknown type"),
        ({"type": "track", "event": "x"}, "userId", "userId or an anonymousId"),
        ({"type": "track", "userId": "ann"}, "event", "missing"),
        ({"type": "track", "userId": "ann", "event": "  "}, "event", "missing"),
        ({"type": "track", "userId": "ann", "event": "!!!"}, "event", "no letters"),
        ({"type": "track", "userId": {"id": 1}, "event": "x"}, "userId", "must be a string"),
        ({"type": "track", "userId": "a", "event": "x", "properties": []}, "properties", "object"),
        ({"type": "track", "userId": "a", "event": "x", "context": "x"}, "context", "object"),
        ({"type": "identify", "userId": "a", "traits": 3}, "traits", "object"),
        ({"type": "track", "userId": "a", "event": "x", "messageId": 1.5}, "messageId", "string"),
    ],
)
def test_bad_messages_name_the_field(msg: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(IngestError) as info:
        translate_message(msg, NOW)
    assert info.value.field == field
    assert words in info.value.message


def test_endpoint_gives_the_type_and_must_agree() -> None:
    body = {"userId": "ann", "event": "Signed In"}
    assert translate_message(body, NOW, endpoint="track").type == "track"
    with pytest.raises(IngestError) as info:
        translate_message({**body, "type": "identify"}, NOW, endpoint="track")
    assert info.value.field == "type"


def test_raw_bodies_are_parsed_and_bad_json_is_named() -> None:
    raw = json.dumps(track("Signed In")).encode()
    assert translate_message(raw, NOW).events[0].kind == "signed_in"
    with pytest.raises(IngestError) as info:
        translate_message(b"{not json", NOW)
    assert info.value.field == "body"


def test_batch_reports_every_bad_message_and_keeps_the_good_ones() -> None:
    payload = {
        "batch": [
            track("Signed In", messageId="ok-0"),
            {"type": "track", "userId": "ann", "event": "x", "timestamp": "soon"},
            "not an object",
            track("Product Viewed", messageId="ok-3"),
            {"type": "track", "event": "Signed In"},
        ],
        "context": {"timezone": "Europe/Paris"},
    }
    batch = translate_batch(payload, NOW)
    assert [m.index for m in batch.messages] == [0, 3]
    assert [e.event_id for e in batch.events] == ["ok-0", "ok-3"]
    assert [(e.index, e.field) for e in batch.errors] == [
        (1, "batch[1].timestamp"),
        (2, "batch[2]"),
        (4, "batch[4].userId"),
    ]
    assert str(batch.errors[0]) == "batch[1].timestamp: not an ISO 8601 date-time: 'soon'"
    assert batch.errors[0].as_dict() == {
        "field": "batch[1].timestamp",
        "message": "not an ISO 8601 date-time: 'soon'",
        "index": 1,
    }
    # The envelope's context reaches every message.
    assert all(m.profile_patch.timezone == "Europe/Paris" for m in batch.messages)


def test_message_context_wins_over_the_batch_context() -> None:
    payload = {
        "context": {"timezone": "Europe/Paris"},
        "batch": [track("Signed In", context={"timezone": "Asia/Tokyo"})],
    }
    assert translate_batch(payload, NOW).messages[0].profile_patch.timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"[", "body"),
        (b"[]", "body"),
        ({"batch": {"type": "track"}}, "batch"),
        ({}, "batch"),
        ({"batch": [], "context": []}, "context"),
        ({"batch": [], "sentAt": "later"}, "sentAt"),
    ],
)
def test_bad_batch_envelopes_raise(payload: Any, field: str) -> None:
    with pytest.raises(IngestError) as info:
        translate_batch(payload, NOW)
    assert info.value.field == field


def test_empty_batch_is_fine() -> None:
    batch = translate_batch({"batch": []}, NOW)
    assert batch.messages == () and batch.errors == ()


# -- size limits -----------------------------------------------------------------------------


def test_size_limits() -> None:
    assert MAX_MESSAGE_BYTES == 32 * 1024
    assert MAX_BATCH_BYTES == 500 * 1024
    check_size(b"x" * MAX_MESSAGE_BYTES, batch=False)
    with pytest.raises(IngestError, match="32KB"):
        check_size(b"x" * (MAX_MESSAGE_BYTES + 1), batch=False)
    check_size(b"x" * MAX_BATCH_BYTES, batch=True)
    with pytest.raises(IngestError, match="500KB"):
        check_size(b"x" * (MAX_BATCH_BYTES + 1), batch=True)


def test_oversized_message_in_a_batch_is_rejected_alone() -> None:
    big = track("Signed In", properties={"blob": "x" * MAX_MESSAGE_BYTES}, messageId="big")
    batch = translate_batch({"batch": [track("Signed In"), big]}, NOW)
    assert len(batch.messages) == 1
    (error,) = batch.errors
    assert error.field == "batch[1]"
    assert "32KB" in error.message


def test_oversized_batch_is_refused() -> None:
    items = [track("Signed In", properties={"blob": "x" * 30_000}) for _ in range(20)]
    with pytest.raises(IngestError, match="500KB"):
        translate_batch({"batch": items}, NOW)
    with pytest.raises(IngestError, match="32KB"):
        translate_message(json.dumps(items[0]).encode() + b" " * MAX_MESSAGE_BYTES, NOW)


# -- the real SDK ----------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    headers_seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        type(self).bodies.append(raw)
        type(self).headers_seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"success": true}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Recorder", (_Recorder,), {"bodies": [], "headers_seen": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("use_gzip", [False, True])
def test_what_the_real_sdk_sends_is_accepted(
    recorder: tuple[str, type[_Recorder]], use_gzip: bool
) -> None:
    analytics = pytest.importorskip("segment.analytics")
    host, handler = recorder
    past = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    client = analytics.Client("write-key", host=host, gzip=use_gzip, sync_mode=False, max_retries=0)
    client.identify(
        "ann",
        {"email": "Ann@Example.com", "phone": "+1 312 555 0142"},
        context={"timezone": "America/Chicago"},
    )
    client.track("ann", "Checkout Started", {"order_id": "o1", "session_id": "s9"})
    client.page("ann", "Docs", "Pricing", {"path": "/pricing"})
    client.track(
        None,
        "Product Viewed",
        {"product_id": "p1"},
        anonymous_id="anon-7",
        timestamp=past,
    )
    client.alias("anon-7", "ann")
    client.flush()
    client.join()

    assert handler.bodies, "the SDK sent nothing"
    assert handler.headers_seen[0]["Authorization"].startswith("Basic ")
    assert (handler.headers_seen[0].get("Content-Encoding") == "gzip") is use_gzip
    received = datetime.now(UTC)
    messages: list[SegmentMessage] = []
    for raw in handler.bodies:
        batch = translate_batch(raw, received)
        assert batch.errors == ()
        messages.extend(batch.messages)
    by_type = {m.type: m for m in messages if m.type != "track"}
    tracks = [m for m in messages if m.type == "track"]

    identify = by_type["identify"]
    assert identify.customer_id == "ann"
    assert identify.profile_patch.timezone == "America/Chicago"
    assert identify.profile_patch.emails == ("ann@example.com",)
    assert identify.profile_patch.phones == ("+13125550142",)

    checkout = next(m for m in tracks if m.user_id == "ann")
    (event,) = checkout.events
    assert event.kind == "checkout_started"
    assert event.properties["session_id"] == "s9"
    assert event.event_id == checkout.message_id and len(event.event_id) > 10
    assert abs((event.at - received).total_seconds()) < 60

    viewed = next(m for m in tracks if m.user_id is None)
    assert viewed.customer_id == "anon-7"
    # An explicit historical timestamp survives (sentAt is now, so skew is ~0).
    assert abs((viewed.at - past).total_seconds()) < 60

    assert by_type["page"].events[0].kind == "page_viewed"
    assert by_type["page"].events[0].properties["name"] == "Pricing"
    assert by_type["alias"].alias == ("anon-7", "ann")
