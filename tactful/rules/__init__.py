"""Rule kinds, one module each. Adding a kind: a new module and one line in `KINDS`."""

from __future__ import annotations

from tactful.rules.activity import ActivityRule
from tactful.rules.base import NEVER, Context, Rule, Scope
from tactful.rules.callback import CallbackRule
from tactful.rules.cap import CapRule
from tactful.rules.consent import ConsentRule
from tactful.rules.content import ContentRule
from tactful.rules.cooldown import CooldownRule
from tactful.rules.decline import DeclineRule
from tactful.rules.frequency import FrequencyRule
from tactful.rules.gap import GapRule
from tactful.rules.holiday import HolidayRule
from tactful.rules.hours import HoursRule
from tactful.rules.preferences import PreferencesRule
from tactful.rules.pressure import PressureRule
from tactful.rules.revocation import RevocationRule
from tactful.rules.session import SessionRule
from tactful.rules.snooze import SnoozeRule
from tactful.rules.trigger import TriggerRule
from tactful.rules.unanswered import UnansweredRule

KINDS: dict[str, type[Rule]] = {
    "consent": ConsentRule,
    "cap": CapRule,
    "gap": GapRule,
    "hours": HoursRule,
    "activity": ActivityRule,
    "trigger": TriggerRule,
    "decline": DeclineRule,
    "unanswered": UnansweredRule,
    "snooze": SnoozeRule,
    "callback": CallbackRule,
    "session": SessionRule,
    "pressure": PressureRule,
    "content": ContentRule,
    "preferences": PreferencesRule,
    # Regulatory kinds, used by the law packs (us-tcpa, us-reg-f, fr-demarchage, ...).
    "frequency": FrequencyRule,
    "cooldown": CooldownRule,
    "holiday": HolidayRule,
    "revocation": RevocationRule,
}

__all__ = ["KINDS", "NEVER", "Context", "Rule", "Scope"]
