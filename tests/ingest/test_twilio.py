"""Twilio inbound SMS -> tactful events (STOP keywords); Twilio request signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest

from tactful import CustomerProfile, CustomerState
from tactful.ingest import (
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    IngestError,
    compute_twilio_signature,
    translate_twilio_inbound,
    validate_twilio_signature,
)
from tactful.ingest.twilio import keyword

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def sms(body: str, **extra: Any) -> dict[str, Any]:
    return {
        "From": "+13125550142",
        "To": "+18005551212",
        "Body": body,
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        **extra,
    }


def kind_of(body: str, **extra: Any) -> str:
    return translate_twilio_inbound(sms(body, **extra), NOW).kind


# -- keywords --------------------------------------------------------------------------------


def test_twilio_default_keywords() -> None:
    assert {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"} == (
        OPT_OUT_KEYWORDS
    )
    assert {"START", "YES", "UNSTOP"} == OPT_IN_KEYWORDS


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "Stop.",
        " stop! ",
        "\tSTOP\n",
        "S.T.O.P",
        "stop 🛑",
        "StopAll",
        "stop all",
        "Unsubscribe",
        "cancel",
        "END",
        "quit!!",
        "revoke",
        "opt-out",
        "Opt Out",
        "OPTOUT",
    ],
)
def test_opt_out_keywords_unsubscribe_from_sms(body: str) -> None:
    result = translate_twilio_inbound(sms(body), NOW)
    assert result.kind == "unsubscribed"
    assert result.properties["channel"] == "sms"
    assert "purpose" not in result.properties
    assert result.properties["text"] == body.strip()
    assert result.keyword == keyword(body)
    assert result.keyword in OPT_OUT_KEYWORDS


@pytest.mark.parametrize(
    "body",
    [
        "please don't stop",
        "STOP PLEASE",
        "stop calling me at work",
        "Don't stop",
        "stopped",
        "nonstop",
        "the end",
        "I want to cancel my order",
        "STOP2",
        "",
        "🛑",
        "Yes please",
        "helpful",
    ],
)
def test_other_messages_are_replies(body: str) -> None:
    result = translate_twilio_inbound(sms(body), NOW)
    assert result.kind == "contact_replied"
    assert result.keyword is None
    assert "text" not in result.properties  # message text is not stored


@pytest.mark.parametrize("body", ["START", "start.", " Yes ", "unstop", "UnStop!"])
def test_opt_in_keywords_resubscribe_and_count_as_a_reply(body: str) -> None:
    result = translate_twilio_inbound(sms(body), NOW)
    assert result.kind == "subscribed"
    subscribed, replied = result.events("ann")
    assert (subscribed.kind, subscribed.properties["channel"]) == ("subscribed", "sms")
    assert replied.kind == "contact_replied"
    assert replied.event_id == f"{result.event_id}:reply"


@pytest.mark.parametrize("body", ["HELP", "help?", "Info", " info. "])
def test_help_is_an_information_request_not_an_opt_out(body: str) -> None:
    result = translate_twilio_inbound(sms(body), NOW)
    assert result.kind == "sms_help"
    (event,) = result.events("ann")
    assert event.kind == "sms_help"


def test_advanced_opt_out_type_is_authoritative() -> None:
    # A localised keyword Twilio recognised ("ARRET") with Advanced Opt-Out.
    assert kind_of("Arrêt", OptOutType="STOP") == "unsubscribed"
    assert kind_of("commencer", OptOutType="start") == "subscribed"
    assert kind_of("aide", OptOutType="HELP") == "sms_help"
    result = translate_twilio_inbound(sms("stop", OptOutType="WHATEVER"), NOW)
    assert result.kind == "unsubscribed"
    assert result.warnings and result.warnings[0].startswith("OptOutType:")


def test_keyword_sets_can_be_extended() -> None:
    result = translate_twilio_inbound(
        sms("Arrêt"), NOW, opt_out_keywords=OPT_OUT_KEYWORDS | {"ARRET"}
    )
    assert result.kind == "unsubscribed"
    assert result.keyword == "ARRET"


def test_keyword_normalisation() -> None:
    assert keyword(" Stop. ") == "STOP"
    assert keyword("opt-out") == "OPTOUT"
    assert keyword("Arrêt!") == "ARRET"
    assert keyword("please don't stop") == "PLEASEDONTSTOP"


# -- what the ledger makes of it -------------------------------------------------------------


def test_stop_then_start_in_the_ledger() -> None:
    stop = translate_twilio_inbound(sms("STOP", MessageSid="SM1"), NOW).events("ann")
    state = CustomerState(CustomerProfile("ann"), stop)
    assert state.optout_covering("sms", "marketing") is not None
    assert state.optout_covering("sms", "service") is not None
    assert state.optout_covering("email", "marketing") is None
    later = NOW.replace(hour=21)
    start = translate_twilio_inbound(sms("START", MessageSid="SM2"), later).events("ann")
    state = CustomerState(CustomerProfile("ann"), [*stop, *start])
    assert state.optout_covering("sms", "marketing") is None
    assert state.last_engagement(later.timestamp()) == later.timestamp()


def test_message_sid_is_the_dedup_id() -> None:
    first = translate_twilio_inbound(sms("STOP"), NOW).events("ann")[0]
    retry = translate_twilio_inbound(sms("STOP"), NOW.replace(minute=5)).events("ann")[0]
    assert first.event_id == "SM0123456789abcdef0123456789abcdef"
    state = CustomerState(CustomerProfile("ann"))
    assert state.add_event(first) is True
    assert state.add_event(retry) is False


# -- fields ----------------------------------------------------------------------------------


def test_numbers_are_normalised_to_e164_and_details_kept() -> None:
    result = translate_twilio_inbound(
        sms("hi", From=" (312) 555-0142 ", MessagingServiceSid="MG1"), NOW
    )
    assert result.phone == "+13125550142"
    assert result.to == "+18005551212"
    assert result.at == NOW
    assert result.properties == {
        "channel": "sms",
        "source": "twilio",
        "message_sid": "SM0123456789abcdef0123456789abcdef",
        "to": "+18005551212",
        "account_sid": "AC0123456789abcdef0123456789abcdef",
        "messaging_service_sid": "MG1",
    }


def test_national_numbers_use_the_default_region() -> None:
    result = translate_twilio_inbound(sms("hi", From="030 123456"), NOW, default_region="DE")
    assert result.phone == "+4930123456"


def test_whatsapp_senders() -> None:
    result = translate_twilio_inbound(
        sms("stop", From="whatsapp:+13125550142", To="whatsapp:+18005551212"), NOW
    )
    assert result.phone == "+13125550142"
    assert result.channel == "whatsapp"
    assert result.to == "+18005551212"
    assert result.properties["channel"] == "whatsapp"


def test_multi_valued_form_fields_take_the_first() -> None:
    result = translate_twilio_inbound(sms(["STOP"], From=["+13125550142"]), NOW)  # type: ignore[arg-type]
    assert result.kind == "unsubscribed"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"Body": "STOP", "MessageSid": "SM1"}, "From"),
        ({"From": "", "Body": "STOP", "MessageSid": "SM1"}, "From"),
        ({"From": "not a number", "MessageSid": "SM1"}, "From"),
        ({"From": "messenger:12345", "MessageSid": "SM1"}, "From"),
        ({"From": "+13125550142", "Body": "STOP"}, "MessageSid"),
        ({"From": "+13125550142", "MessageSid": "SM1", "Body": 5}, "Body"),
    ],
)
def test_bad_requests_name_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(IngestError) as info:
        translate_twilio_inbound(params, NOW)
    assert info.value.field == field


def test_legacy_sms_sid() -> None:
    params = {"From": "+13125550142", "SmsSid": "SM9", "Body": "hi"}
    assert translate_twilio_inbound(params, NOW).event_id == "SM9"


# -- request signatures ----------------------------------------------------------------------

# Twilio's published example (twilio-python tests/unit/test_request_validator.py).
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


def test_twilio_published_vectors() -> None:
    assert compute_twilio_signature(TOKEN, URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert validate_twilio_signature(TOKEN, URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    # The security docs' example: a different caller, same URL and token.
    docs = {**PARAMS, "From": "+12349013030", "Caller": "+12349013030"}
    assert compute_twilio_signature(TOKEN, URL, docs) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_repeated_parameters_are_sorted_by_value() -> None:
    params = {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234"]}
    assert compute_twilio_signature(TOKEN, URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ],
)
def test_port_variants_like_twilios_libraries(url: str, signature: str) -> None:
    assert validate_twilio_signature(TOKEN, url, PARAMS, signature)


def test_independent_computation() -> None:
    params = {"Body": "STOP", "From": "+13125550142", "MessageSid": "SM1", "To": "+18005551212"}
    url = "https://tactful.example/v1/webhooks/twilio"
    data = url + "BodySTOPFrom+13125550142MessageSidSM1To+18005551212"
    expected = base64.b64encode(hmac.new(b"secret", data.encode(), hashlib.sha1).digest()).decode()
    assert compute_twilio_signature("secret", url, params) == expected
    assert validate_twilio_signature("secret", url, params, expected)


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("54321", URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (TOKEN, URL + "&x=1", PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (TOKEN, URL, {**PARAMS, "Digits": "9999"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (TOKEN, URL, {**PARAMS, "Extra": "1"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (TOKEN, URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B9="),
        (TOKEN, URL, PARAMS, ""),
        (TOKEN, URL, PARAMS, None),
        (TOKEN, "https://mycompany.com:notaport/x", PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ],
)
def test_forgeries_fail(
    token: str, url: str, params: dict[str, str], signature: str | None
) -> None:
    assert not validate_twilio_signature(token, url, params, signature)


def test_no_params() -> None:
    signature = compute_twilio_signature(TOKEN, URL, None)
    assert validate_twilio_signature(TOKEN, URL, {}, signature)
