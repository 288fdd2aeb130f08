"""The dashboard's overview: what tactful decided lately, which rules fired, who is under
pressure, who asked to be left alone.

Everything is computed from the store's protocol (`audit` pages, `list_customers`,
`load_state`); nothing here writes. The store has no aggregate queries yet, so the work is
bounded: at most `DECISION_CAP` decisions (newest first) and `CUSTOMER_CAP` customers are
read, and the page says so when a cap was reached.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from tactful.engine import pressure
from tactful.model import EventKind, from_ts
from tactful.policy.document import Policy
from tactful.rules.pressure import PressureRule
from tactful.store.base import AuditQuery, DecisionRecord, Store

#: Decisions read from the audit log for one overview (newest first).
DECISION_CAP = 20_000
#: Customers whose ledger is folded for pressure and opt-outs (in id order).
CUSTOMER_CAP = 1_000
#: Audit records fetched per round trip.
PAGE = 2_000
#: Event kinds that ask tactful to stop.
SUPPRESSIONS = (EventKind.OPTED_OUT, EventKind.UNSUBSCRIBED, EventKind.COMPLAINED)
NO_TEAM = "(no team)"


@dataclass(frozen=True, slots=True)
class RuleRow:
    rule: str
    passed: int
    deferred: int
    denied: int

    @property
    def fired(self) -> int:
        return self.deferred + self.denied


@dataclass
class Overview:
    days: int
    since: datetime
    now: datetime
    day_labels: list[str] = field(default_factory=list)
    verdicts: dict[str, list[int]] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)
    rules: list[RuleRow] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    teams: dict[str, list[int]] = field(default_factory=dict)
    pressures: list[tuple[str, float]] = field(default_factory=list)
    budget: float | None = None
    suppressions: dict[str, list[int]] = field(default_factory=dict)
    decisions_read: int = 0
    decisions_capped: bool = False
    customers_read: int = 0
    customers_capped: bool = False

    @property
    def day_rows(self) -> list[tuple[str, int, int, int]]:
        """(day, allow, defer, deny) for each day with any decision, newest first."""
        rows = []
        for i, day in enumerate(self.day_labels):
            a, d, n = (self.verdicts[v][i] for v in ("allow", "defer", "deny"))
            if a or d or n:
                rows.append((day, a, d, n))
        return rows[::-1]

    @property
    def contact_rows(self) -> list[tuple[str, str, int]]:
        """(channel, team, contacts), most first."""
        rows = [
            (channel, team, counts[i])
            for team, counts in self.teams.items()
            for i, channel in enumerate(self.channels)
            if counts[i]
        ]
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))

    @property
    def suppression_rows(self) -> list[tuple[str, dict[str, int]]]:
        """(day, {kind: count}) for each day with any, newest first."""
        rows = []
        for i, day in enumerate(self.day_labels):
            counts = {k: v[i] for k, v in self.suppressions.items() if v[i]}
            if counts:
                rows.append((day, counts))
        return rows[::-1]

    @property
    def over_budget(self) -> int:
        if self.budget is None:
            return 0
        return sum(1 for _, level in self.pressures if level > self.budget)

    @property
    def most_pressured(self) -> list[tuple[str, float]]:
        return [p for p in self.pressures[:10] if p[1] > 0]


def recent_decisions(
    store: Store, since: datetime, *, cap: int = DECISION_CAP
) -> tuple[list[DecisionRecord], bool]:
    """Decisions since `since`, newest first, at most `cap` (and whether it was reached)."""
    out: list[DecisionRecord] = []
    before: tuple[datetime, str] | None = None
    while len(out) < cap:
        limit = min(PAGE, cap - len(out))
        page = store.audit(AuditQuery(since=since, limit=limit, before=before))
        out.extend(page)
        if len(page) < limit:
            return out, False
        before = (page[-1].decided_at, page[-1].decision_id)
    return out, True


def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]


def build(store: Store, policy: Policy, now: datetime, *, days: int = 30) -> Overview:
    """The overview of the last `days` days (UTC calendar days, today included)."""
    first = (now.astimezone(UTC) - timedelta(days=days - 1)).date()
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    view = Overview(days=days, since=since, now=now)
    calendar = _days(first, now.astimezone(UTC).date())
    index = {d: i for i, d in enumerate(calendar)}
    view.day_labels = [d.isoformat() for d in calendar]

    records, view.decisions_capped = recent_decisions(store, since)
    view.decisions_read = len(records)
    _decisions(view, records, policy, index)
    _customers(view, store, policy, now, index)
    return view


def _decisions(
    view: Overview, records: list[DecisionRecord], policy: Policy, index: dict[date, int]
) -> None:
    width = len(index)
    verdicts = {v: [0] * width for v in ("allow", "defer", "deny")}
    passed: Counter[str] = Counter()
    fired: dict[str, Counter[str]] = defaultdict(Counter)
    contacts: Counter[tuple[str, str]] = Counter()
    for r in records:
        i = index.get(r.decided_at.astimezone(UTC).date())
        if i is not None and r.verdict in verdicts:
            verdicts[r.verdict][i] += 1
        view.totals[r.verdict] += 1
        held_back = {str(x.get("rule")) for x in r.reasons}
        for rule_id in held_back:
            fired[rule_id][r.verdict] += 1
        # A rule of the active policy whose scope covers the contact, and that did not hold
        # it back, let it pass (an approximation for decisions under older versions, and
        # regions aside).
        trigger = (r.proposal.get("trigger") or {}).get("event")
        flags = tuple((r.proposal.get("content") or {}).get("flags") or ())
        for rule in policy.rules_for(r.channel, r.purpose):
            if (
                rule.id not in held_back
                and rule.effective_mode != "flag"
                and rule.scope.matches(
                    r.channel, r.purpose, r.source, r.campaign, trigger, flags, rule.exempt
                )
            ):
                passed[rule.id] += 1
        if r.verdict == "allow" and r.status in ("sent", "held"):
            contacts[(r.channel, r.source or NO_TEAM)] += 1
    view.verdicts = verdicts
    view.rules = sorted(
        (
            RuleRow(rule, passed[rule], c["defer"], c["deny"])
            for rule, c in fired.items()
            if c["defer"] or c["deny"]
        ),
        key=lambda row: (-row.fired, row.rule),
    )
    channels = sorted({ch for ch, _ in contacts}, key=lambda ch: -sum(
        n for (c, _), n in contacts.items() if c == ch
    ))  # fmt: skip
    teams = sorted({t for _, t in contacts})
    view.channels = channels
    view.teams = {t: [contacts[(ch, t)] for ch in channels] for t in teams}


def _customers(
    view: Overview, store: Store, policy: Policy, now: datetime, index: dict[date, int]
) -> None:
    budget = next((r.budget for r in policy.rules if isinstance(r, PressureRule)), None)
    view.budget = budget
    width = len(index)
    suppressions = {str(k): [0] * width for k in SUPPRESSIONS}
    levels: list[tuple[str, float]] = []
    after: str | None = None
    since = view.since.timestamp()
    while view.customers_read < CUSTOMER_CAP:
        ids = store.list_customers(limit=min(500, CUSTOMER_CAP - view.customers_read), after=after)
        if not ids:
            break
        for cid in ids:
            state = store.load_state(cid)
            level = pressure(state, policy, now)
            if level is not None:
                levels.append((cid, round(level, 2)))
            for e in state.events:
                if e.ts >= since and e.kind in suppressions:
                    i = index.get(from_ts(e.ts).date())
                    if i is not None:
                        suppressions[e.kind][i] += 1
        view.customers_read += len(ids)
        after = ids[-1]
    else:
        view.customers_capped = bool(store.list_customers(limit=1, after=after))
    view.pressures = sorted(levels, key=lambda p: (-p[1], p[0]))
    view.suppressions = suppressions
