"""Signed, expiring links for customers: one-click unsubscribe and the preference centre.

A token names one customer and one purpose (`unsubscribe` with a scope, or `prefs`),
carries its expiry, and is HMAC-SHA256 signed with the installation secret. It cannot be
forged, altered to name another customer, or used to list customers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime


class TokenError(ValueError):
    """A token that is malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class LinkToken:
    customer_id: str
    action: str  # "unsubscribe" | "prefs"
    expires: datetime
    channel: str | None = None
    purpose: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(token: LinkToken, secret: bytes) -> str:
    body = json.dumps(
        {
            "c": token.customer_id,
            "a": token.action,
            "e": int(token.expires.timestamp()),
            "ch": token.channel,
            "p": token.purpose,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    payload = _b64(body)
    mac = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify(text: str, secret: bytes, *, now: datetime, action: str | None = None) -> LinkToken:
    """The token's content, or TokenError if forged, malformed, of another kind, or expired."""
    payload, sep, mac = text.partition(".")
    if not sep or not payload or not mac or not text.isascii():
        raise TokenError("malformed link")
    expected = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
    except ValueError as exc:
        raise TokenError("malformed link") from exc
    if not hmac.compare_digest(expected, given):
        raise TokenError("this link is not valid")
    try:
        data = json.loads(_unb64(payload))
        token = LinkToken(
            customer_id=str(data["c"]),
            action=str(data["a"]),
            expires=datetime.fromtimestamp(int(data["e"]), UTC),
            channel=data.get("ch"),
            purpose=data.get("p"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("malformed link") from exc
    if action is not None and token.action != action:
        raise TokenError("this link is for something else")
    if token.expires <= now:
        raise TokenError("this link has expired")
    return token
