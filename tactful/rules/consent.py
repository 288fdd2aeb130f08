"""`consent`: opt-outs, unsubscribes and explicit consent. Absolute: they deny, not defer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tactful.rules.base import ALWAYS, NEVER, Context, Rule, Threshold

_SCOPE_WORDS = {None: "everything"}


def consent_keys(channel: str, purpose: str) -> tuple[str, ...]:
    """Profile consent keys that speak for a channel and purpose, most specific first."""
    return (f"{channel}:{purpose}", channel, f"*:{purpose}", "*")


class ConsentRule(Rule):
    """Deny while the customer has opted out of, or unsubscribed from, a scope covering the
    contact. A global opt-out leaves `global_exempt_purposes` (transactional) alone; an
    opt-out of a channel or purpose covers every purpose in it."""

    kind: Literal["consent"]
    global_exempt_purposes: tuple[str, ...] = ("transactional",)
    require_opt_in: tuple[str, ...] = Field(
        default=(),
        description="Consent keys ('sms:marketing', 'call') that need an explicit opt-in.",
    )
    default_mode = "deny"
    default_exempt = ()
    timeless = True
    threshold_exact = True

    def describe(self) -> str:
        text = "honour opt-outs and unsubscribes"
        if self.global_exempt_purposes:
            text += f"; a global opt-out leaves {', '.join(self.global_exempt_purposes)} alone"
        if self.require_opt_in:
            text += f"; explicit opt-in needed for {', '.join(self.require_opt_in)}"
        return text

    def _blocking(self, ctx: Context) -> str | None:
        """Why the contact may not be made (None: it may). Memoised per channel and purpose
        with the state's `signal_fact`: it reads only the ledger's opt-outs and the
        profile's consent."""
        key = ("consent", self.token, ctx.channel, ctx.purpose)
        why: str | None = ctx.state.signal_fact(key, lambda: self._why(ctx))
        return why

    def _why(self, ctx: Context) -> str | None:
        channel, purpose = ctx.channel, ctx.purpose
        hit = ctx.state.optout_covering(channel, purpose)
        if hit is not None:
            _, kind, scope = hit
            is_global = scope.channel is None and scope.purpose is None
            if not (is_global and purpose in self.global_exempt_purposes):
                what = " ".join(x for x in (scope.purpose, scope.channel) if x) or "all contact"
                return f"{kind.replace('_', ' ')} from {what}"
        consent = ctx.state.profile.consent
        keys = consent_keys(channel, purpose)
        if consent:
            for key in keys:
                if key in consent:
                    if consent[key] is False and not (
                        key == "*" and purpose in self.global_exempt_purposes
                    ):
                        return f"consent refused for {key}"
                    break
        for key in self.require_opt_in:
            if key in keys and not any(consent.get(k) is True for k in keys):
                return f"no opt-in recorded for {key}"
        return None

    def check(self, ctx: Context, t: float) -> float:
        return NEVER if self._blocking(ctx) else t

    def threshold(self, ctx: Context) -> Threshold:
        return ALWAYS, NEVER if self._blocking(ctx) else ALWAYS

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        return {"scope": self._blocking(ctx) or ""}
