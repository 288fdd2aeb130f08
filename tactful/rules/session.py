"""`session`: in-session approaches (chat offers, greetings) only when they are welcome."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tactful.model import EventKind
from tactful.rules.base import ALWAYS, NEVER, Context, Rule, Threshold


class SessionRule(Rule):
    """One condition on the visit the approach would interrupt:

    - `live`: the visitor is on the site now (deny otherwise: nobody to talk to);
    - `min_length`: deny once the visitor left a visit shorter than `seconds`;
    - `dwell`: only after `seconds` in the visit, or after a help request or a download;
    - `not_dismissed`: never after the visitor dismissed one in this visit;
    - `not_in_checkout`: never while this visit has a checkout open.
    """

    kind: Literal["session"]
    condition: Literal["live", "min_length", "dwell", "not_dismissed", "not_in_checkout"]
    seconds: float = Field(default=0, ge=0)

    def describe(self) -> str:
        return {
            "live": "only during a live visit",
            "min_length": f"never in a visit shorter than {self.seconds:g}s",
            "dwell": f"only after {self.seconds:g}s in the visit, or a help request or download",
            "not_dismissed": "never after the visitor dismissed one in this visit",
            "not_in_checkout": "never during checkout",
        }[self.condition]

    def check(self, ctx: Context, t: float) -> float:
        state = ctx.state
        if self.condition == "min_length":
            last = state.last_session_before(t)
            if last is not None and last.ended is not None and last.ended <= t:
                return NEVER if last.duration < self.seconds else t
            return t
        session = state.session_at(t)
        if session is None:
            return NEVER if self.condition == "live" else t
        if self.condition == "dwell":
            engaged = session.engaged_at is not None and session.engaged_at <= t
            ready = session.start + self.seconds
            return t if engaged or t >= ready else ready
        if self.condition == "not_dismissed":
            dismissed = session.chat_dismissed_at
            return NEVER if dismissed is not None and dismissed <= t else t
        if self.condition == "not_in_checkout":
            started = session.checkout_started_at
            if started is not None and started <= t:
                done = state.first_event_after(EventKind.ORDER_COMPLETED, started)
                return t if done is not None and done <= t else NEVER
        return t

    def steady(self, ctx: Context, t: float, u: float) -> float:
        # The answer moves only with the visit (the ledger's events: a visit starting or
        # ending, a help request, a dismissal, a checkout; its timeout) and, for `dwell`,
        # when the visit is old enough.
        state = ctx.state
        s = state.next_visit_change(t)
        if self.condition == "dwell":
            live = state.session_at(t)
            if live is not None and t < live.start + self.seconds < s:
                s = live.start + self.seconds
        return s

    def threshold(self, ctx: Context) -> Threshold:
        # Once the last visit is over there is no live visit, and the last one is final.
        state = ctx.state
        since = state.sessions_over()
        if self.condition == "live":
            return since, NEVER
        if self.condition == "min_length":
            last = state.last_session_before(since)
            if last is not None and last.ended is not None and last.duration < self.seconds:
                return max(since, last.ended), NEVER
        return since, ALWAYS
