"""Channel addresses: phone numbers (E.164, via `phonenumbers`) and email addresses.

One definition of what a valid address is and of its normal form, for every caller:

- `parse_phone` / `parse_email` / `parse_address` are strict: they return the normal form
  or raise `ValueError` naming the field, for request bodies (`ProfilePatch`, a proposal's
  `to`).
- `phone_or_none` / `email_or_none` are lenient: None for anything that is not an
  address, for ingestion, where a bad trait is a warning and not an error.
- `hash_form` is the text an address is hashed in (keyed hashes in the identity index and
  the suppression list). It never fails: anything that does not parse is hashed as written
  (emails lower-cased, phones reduced to + and digits), so lookups and stored hashes agree.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any, Literal

import phonenumbers

AddressKind = Literal["phone", "email"]

#: Channels that reach a customer at a phone number. An opt-out of one of them recorded
#: against a number covers them all: a number cannot say which it meant, and revoking
#: consent to a number covers calls and texts alike (47 CFR 64.1200(a)(10)).
PHONE_CHANNELS = frozenset({"call", "sms", "mms", "whatsapp"})
#: Channels that reach a customer at an email address.
EMAIL_CHANNELS = frozenset({"email"})


def phone_or_none(value: Any, region: str | None = None) -> str | None:
    """`value` in E.164 (`+13125550142`), reading national numbers in `region`; None if
    it is not a possible phone number."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    formatted: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted


def email_or_none(value: Any) -> str | None:
    """The address stripped and lower-cased; None if it does not look like one."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or "." not in domain:
        return None
    if any(ch.isspace() for ch in text) or domain.startswith(".") or domain.endswith("."):
        return None
    return text


def parse_phone(value: Any, field: str = "phone", region: str | None = None) -> str:
    """E.164 form of a phone number; ValueError naming `field` if it is not one."""
    phone = phone_or_none(value, region)
    if phone is None:
        raise ValueError(
            f"{field}: {value!r} is not a possible phone number; write it with its country "
            "code, e.g. +13125550142"
        )
    return phone


def parse_email(value: Any, field: str = "email") -> str:
    """Normal form of an email address; ValueError naming `field` if it is not one."""
    email = email_or_none(value)
    if email is None:
        raise ValueError(f"{field}: {value!r} is not an email address, e.g. ann@example.com")
    return email


def parse_address(value: Any, field: str = "to") -> tuple[AddressKind, str]:
    """(kind, normal form) of a phone number or email address; ValueError naming `field`."""
    if isinstance(value, str) and "@" in value:
        return "email", parse_email(value, field)
    if isinstance(value, str) and value.strip().startswith("+"):
        return "phone", parse_phone(value, field)
    raise ValueError(
        f"{field}: {value!r} is neither a phone number with its country code "
        "(+13125550142) nor an email address"
    )


def hash_form(kind: str, value: str) -> str:
    """The text an address is hashed in; "" if nothing is left of it."""
    if kind == "email":
        return email_or_none(value) or value.strip().lower()
    return phone_or_none(value) or "".join(ch for ch in value if ch.isdigit() or ch == "+")


def scope_covers(
    kind: str, scope_channel: str | None, scope_purpose: str | None, channel: str, purpose: str
) -> bool:
    """Whether an opt-out of (scope_channel, scope_purpose), None meaning any, recorded
    against an address of `kind`, covers a contact on `channel` for `purpose`."""
    if scope_purpose is not None and scope_purpose != purpose:
        return False
    if scope_channel is None or scope_channel == channel:
        return True
    return kind == "phone" and scope_channel in PHONE_CHANNELS and channel in PHONE_CHANNELS


def channel_kind(channel: str) -> AddressKind | None:
    """The kind of address a channel reaches the customer at (None: no address, e.g. push)."""
    if channel in PHONE_CHANNELS:
        return "phone"
    if channel in EMAIL_CHANNELS:
        return "email"
    return None
