"""Outgoing webhooks, the pure parts: how a delivery is signed and verified, and when a
failed one is tried again.

A delivery is a JSON POST with two headers:

- `Tactful-Delivery: <id>`: the same id on every attempt of one delivery; a receiver keeps
  the ids it has processed and ignores a repeat (deliveries are at-least-once).
- `Tactful-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
  HMAC-SHA256(secret, f"{t}.{body}"). A receiver checks it with `verify`, which also
  refuses a timestamp more than `tolerance` seconds away from its clock (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

SIGNATURE_HEADER = "Tactful-Signature"
DELIVERY_HEADER = "Tactful-Delivery"
EVENT_HEADER = "Tactful-Event"

#: The first retry waits this long; each further one twice as long, up to `RETRY_CAP`.
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
#: A delivery still failing this long after it was made is given up (dead).
GIVE_UP_AFTER = timedelta(hours=72)


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match the body."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.{body}"` under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: datetime) -> str:
    """The `Tactful-Signature` header value for `body` sent at `now`."""
    t = int(now.timestamp())
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str, header: str | None, body: bytes, now: datetime, tolerance: float = 300
) -> int:
    """Check a `Tactful-Signature` header against the raw body; returns its timestamp.

    Raises SignatureError when the header is missing or malformed, when no `v1` value
    matches (a wrong secret or a changed body), or when the timestamp is more than
    `tolerance` seconds from `now` (an old delivery replayed)."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    t: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                t = int(value)
            except ValueError:
                raise SignatureError(f"{SIGNATURE_HEADER}: t={value!r} is not a number") from None
        elif name == "v1" and value:
            candidates.append(value)
    if t is None or not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} needs t=<unix seconds> and v1=<hex>")
    if abs(now.timestamp() - t) > tolerance:
        raise SignatureError(
            f"{SIGNATURE_HEADER} timestamp {t} is more than {tolerance:g} s from now"
        )
    expected = signature(secret, t, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")
    return t


def retry_delay(
    attempts: int, *, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP
) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt (1: `base`, then doubling,
    never more than `cap`)."""
    if attempts < 1:
        return timedelta(0)
    # Doubling past 2**20 overflows nothing but is far beyond any sensible cap.
    delay: timedelta = base * (2 ** min(attempts - 1, 20))
    return min(delay, cap)
