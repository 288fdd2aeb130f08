"""Dashboard sessions and CSRF tokens: signed cookies, never the API key itself.

A person signs in by pasting an API key; the server checks it with the store and sets a
cookie that names only the key's id, a random session id and an expiry, HMAC-signed with a
key derived from the installation secret. Every request re-reads the key from the store, so
revoking the key ends its sessions at once and a scope change applies at the next click.

CSRF: every POST form carries a token that is an HMAC of the session id (for the sign-in
form, of a random pre-session nonce held in its own cookie). A cross-site page can neither
read the cookie nor compute the token; the cookies are also `SameSite=Strict`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tactful.store.base import ApiKey

SESSION_COOKIE = "tactful_session"
SIGNIN_COOKIE = "tactful_signin"
#: A dashboard session lasts a working day.
SESSION_TTL = timedelta(hours=8)
#: The sign-in form must be sent back within this time.
SIGNIN_TTL = timedelta(hours=1)
#: Scopes that may open the dashboard at all; `admin` also edits the policy.
DASHBOARD_SCOPES = frozenset({"read", "admin"})


def _derive(secret: bytes, purpose: str) -> bytes:
    # One key per use, so a value signed for one purpose (a customer link, a session, a
    # CSRF token) never verifies as another.
    return hmac.new(secret, f"tactful-web:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, text: str) -> str:
    return _b64(hmac.new(key, text.encode("ascii"), hashlib.sha256).digest())


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person: which key they signed in with, until when."""

    sid: str
    key_id: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class Viewer:
    """A session whose key is still valid, with the key's current name and scopes."""

    session: Session
    key: ApiKey

    @property
    def name(self) -> str:
        return self.key.name or self.key.key_id

    @property
    def admin(self) -> bool:
        return "admin" in self.key.scopes


def issue(key: ApiKey, secret: bytes, *, now: datetime) -> tuple[str, Session]:
    """A new session for `key`: the cookie value and what it says."""
    expires = (now + SESSION_TTL).replace(microsecond=0)
    session = Session(secrets.token_urlsafe(18), key.key_id, expires)
    body = json.dumps(
        {"s": session.sid, "k": session.key_id, "e": int(session.expires.timestamp())},
        separators=(",", ":"),
        sort_keys=True,
    )
    payload = _b64(body.encode())
    return f"{payload}.{_mac(_derive(secret, 'session'), payload)}", session


def read(cookie: str | None, secret: bytes, *, now: datetime) -> Session | None:
    """The session in a cookie, or None when absent, altered, malformed or expired."""
    if not cookie or not cookie.isascii():
        return None
    payload, sep, mac = cookie.partition(".")
    if not sep or not payload or not mac:
        return None
    if not hmac.compare_digest(_mac(_derive(secret, "session"), payload), mac):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(
            sid=str(data["s"]),
            key_id=str(data["k"]),
            expires=datetime.fromtimestamp(int(data["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return session if session.expires > now else None


def csrf_token(secret: bytes, sid: str) -> str:
    """The CSRF token for forms of session `sid` (or of a sign-in nonce)."""
    return _mac(_derive(secret, "csrf"), sid)


def csrf_valid(secret: bytes, sid: str, given: str | None) -> bool:
    if not given or not given.isascii():
        return False
    return hmac.compare_digest(csrf_token(secret, sid), given)


def signin_nonce(secret: bytes, *, now: datetime) -> str:
    """A value for the sign-in cookie: a random nonce with its expiry, signed."""
    payload = f"{secrets.token_urlsafe(18)}~{int((now + SIGNIN_TTL).timestamp())}"
    return f"{payload}.{_mac(_derive(secret, 'signin'), payload)}"


def read_signin_nonce(cookie: str | None, secret: bytes, *, now: datetime) -> str | None:
    """The nonce of a valid, unexpired sign-in cookie."""
    if not cookie or not cookie.isascii():
        return None
    payload, sep, mac = cookie.rpartition(".")
    if not sep or not hmac.compare_digest(_mac(_derive(secret, "signin"), payload), mac):
        return None
    nonce, _, expires = payload.partition("~")
    try:
        if datetime.fromtimestamp(int(expires), UTC) <= now:
            return None
    except (ValueError, OverflowError):
        return None
    return nonce


def link_csrf(secret: bytes, token: str) -> str:
    """The CSRF token of a preference-centre page: bound to that page's link token."""
    return _mac(_derive(secret, "prefs-csrf"), token)
