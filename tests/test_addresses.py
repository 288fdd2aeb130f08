"""One definition of addresses: strict parsing names the field, lenient parsing says None,
and the hash form is the same for every spelling of one address."""

from __future__ import annotations

import pytest

from tactful.addresses import (
    channel_kind,
    email_or_none,
    hash_form,
    parse_address,
    parse_email,
    parse_phone,
    phone_or_none,
    scope_covers,
)


def test_phone_spellings_share_one_normal_form() -> None:
    for spelling in ("+1 312 555 0142", "+1 (312) 555-0142", "+13125550142", " +1.312.555.0142 "):
        assert parse_phone(spelling) == "+13125550142"
        assert hash_form("phone", spelling) == "+13125550142"
    assert phone_or_none("312 555 0142", "US") == "+13125550142"


def test_strict_parsing_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^phones\[2\]: '12' is not a possible phone number"):
        parse_phone("12", "phones[2]")
    with pytest.raises(ValueError, match=r"^emails\[0\]: 'nope'"):
        parse_email("nope", "emails[0]")
    with pytest.raises(ValueError, match=r"^to: 'call me' is neither"):
        parse_address("call me")


def test_lenient_parsing_returns_none() -> None:
    assert phone_or_none("12") is None and phone_or_none(True) is None
    assert email_or_none("nope") is None and email_or_none("a b@example.com") is None
    assert email_or_none(" Ann@Example.COM ") == "ann@example.com"


def test_parse_address_tells_phone_from_email() -> None:
    assert parse_address("Ann@Example.com") == ("email", "ann@example.com")
    assert parse_address("+1 312 555 0142") == ("phone", "+13125550142")


def test_scopes_of_phone_channels_cover_each_other_only_for_phones() -> None:
    assert scope_covers("phone", "sms", None, "call", "sales")
    assert not scope_covers("email", "sms", None, "call", "sales")
    assert not scope_covers("phone", "sms", "marketing", "call", "sales")
    assert scope_covers("email", None, "marketing", "email", "marketing")
    assert not scope_covers("email", "email", None, "push", "marketing")
    assert channel_kind("whatsapp") == "phone" and channel_kind("push") is None
