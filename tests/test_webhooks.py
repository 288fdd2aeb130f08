"""Signing and verifying deliveries; the retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tactful.webhooks import SignatureError, retry_delay, sign, signature, verify

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
SECRET = "whsec_0123456789abcdef"
BODY = b'{"id":"dl_1","type":"callback.due"}'


def test_a_signed_body_verifies_and_gives_its_timestamp() -> None:
    header = sign(SECRET, BODY, NOW)
    assert header == f"t={int(NOW.timestamp())},v1={signature(SECRET, int(NOW.timestamp()), BODY)}"
    assert verify(SECRET, header, BODY, NOW + timedelta(seconds=299)) == int(NOW.timestamp())


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    t = int(NOW.timestamp())
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, t, BODY) == expected


@pytest.mark.parametrize(
    ("header", "body", "secret", "now", "complaint"),
    [
        (None, BODY, SECRET, NOW, "no Tactful-Signature"),
        ("v1=abc", BODY, SECRET, NOW, "needs t="),
        ("t=x,v1=abc", BODY, SECRET, NOW, "not a number"),
        (sign(SECRET, BODY, NOW), BODY + b" ", SECRET, NOW, "does not match"),
        (sign(SECRET, BODY, NOW), BODY, "whsec_another_secret", NOW, "does not match"),
        # A delivery captured and replayed ten minutes later.
        (sign(SECRET, BODY, NOW), BODY, SECRET, NOW + timedelta(minutes=10), "more than 300"),
        (sign(SECRET, BODY, NOW), BODY, SECRET, NOW - timedelta(minutes=10), "more than 300"),
    ],
)
def test_tampered_stale_or_malformed_deliveries_are_refused(
    header: str | None, body: bytes, secret: str, now: datetime, complaint: str
) -> None:
    with pytest.raises(SignatureError, match=complaint):
        verify(secret, header, body, now)


def test_a_rotated_secret_may_sign_with_several_v1_values() -> None:
    t = int(NOW.timestamp())
    header = (
        f"t={t},v1={signature('whsec_old_secret_123', t, BODY)},v1={signature(SECRET, t, BODY)}"
    )
    assert verify(SECRET, header, BODY, NOW) == t


def test_retries_double_from_30_seconds_up_to_an_hour() -> None:
    waits = [retry_delay(n).total_seconds() for n in range(1, 12)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
    assert retry_delay(10_000) == timedelta(hours=1)
    # Within 72 hours that is some 76 attempts: give-up comes from time, not a count.
    total, n = timedelta(0), 0
    while total < timedelta(hours=72):
        n += 1
        total += retry_delay(n)
    assert 70 < n < 80
