"""`preferences`: the customer's own choice of channels and pace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from tactful.durations import parse_duration
from tactful.rules.base import ALWAYS, NEVER, Context, Rule, Threshold
from tactful.rules.cap import rolling_earliest, rolling_threshold


def pace_of(preferences: Any) -> tuple[int, float] | None:
    """(count, window seconds) from {"pace": {"count": 1, "per": "7d"}}, if set."""
    pace = preferences.get("pace") if isinstance(preferences, Mapping) else None
    if not pace:
        return None
    return int(pace["count"]), parse_duration(pace["per"])


class PreferencesRule(Rule):
    """Honour what the customer chose in the preference centre: only the channels they
    picked (when they picked any), and no more contacts in scope than their pace."""

    kind: Literal["preferences"]
    waived_on_request = True

    def describe(self) -> str:
        return "only the customer's chosen channels, at the customer's chosen pace"

    def check(self, ctx: Context, t: float) -> float:
        prefs = ctx.state.profile.preferences
        if not prefs:
            return t
        channels = prefs.get("channels")
        if channels is not None and ctx.channel not in channels:
            return NEVER
        pace = pace_of(prefs)
        if pace is None:
            return t
        return rolling_earliest(self.counted_times(ctx), t, pace[0], pace[1])

    def threshold(self, ctx: Context) -> Threshold:
        prefs = ctx.state.profile.preferences
        if not prefs:
            return ALWAYS, ALWAYS
        channels = prefs.get("channels")
        if channels is not None and ctx.channel not in channels:
            return ALWAYS, NEVER
        pace = pace_of(prefs)
        if pace is None:
            return ALWAYS, ALWAYS
        return rolling_threshold(self.counted_times(ctx), pace[0], pace[1])

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        prefs = ctx.state.profile.preferences or {}
        channels = prefs.get("channels")
        if channels is not None and ctx.channel not in channels:
            return {"why": f"{ctx.channel} is not among the channels they chose"}
        pace = prefs.get("pace") or {}
        return {"why": f"their pace is at most {pace.get('count')} per {pace.get('per')}"}
