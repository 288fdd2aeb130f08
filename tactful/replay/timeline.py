"""The timeline: a log's events and contacts as one table of plain columns, and back.

`io` builds it (validated, mapped, one row per event or contact, profile columns joined
on); the local and Spark engines both cut it by customer and hand each customer's rows
to `fold_columns`, which turns them into events (in the ledger's own form) and
proposals, runs `fold`, and returns the verdicts as plain columns again. Times are
integer epoch microseconds (UTC) so that every engine reads exactly the same instants.

Rows are ordered per customer by time; at the same instant events come before contacts
(a signal logged at the moment of a contact is one the sender could have seen), and
rows of one kind keep their order in the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tactful.model import ContactProposal, Content, CustomerProfile, Reason, Trigger
from tactful.policy.document import Policy
from tactful.replay.fold import Item, LoggedContact, ReplayVerdict, fold
from tactful.state import LedgerEvent

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The timeline's columns and their types (Arrow/Polars/Spark names alike; in Polars, the
#: `CATEGORICAL_COLUMNS` are categoricals, which read and write as text).
TIMELINE_COLUMNS: dict[str, str] = {
    "customer_id": "string",
    "at_us": "int64",
    "is_contact": "bool",
    "row": "int64",  # 1-based data row in the file the row came from
    # events
    "event": "string",
    "event_id": "string",
    # JSON object; null values mean "absent". An event whose only property is a text
    # `session_id` (most of a visit's events) has none here: `event_properties`.
    "properties": "string",
    # The `session_id` property as text (null: none), what visits are keyed by: the
    # replay kernel reads it here rather than parse every event's JSON.
    "session_id": "string",
    # contacts
    "channel": "string",
    "purpose": "string",
    "trigger": "string",
    "trigger_at_us": "int64",
    "offer": "string",
    "campaign": "string",
    "source": "string",
    "outcome": "string",
    "subject": "string",
    "body": "string",
    "flags": "string",  # ";"-separated content flags (greeting, chat_offer, ...)
    "discount": "bool",
    "priority": "int64",
    "tags": "string",  # JSON object of extra keys to count by
    # the customer's profile, the same on every row of a customer
    "timezone": "string",
    "country": "string",
    "subdivision": "string",
    "phones": "string",  # ";"-separated
}

#: Text columns of few distinct values (kinds, channels, purposes, zones, ...): the local
#: engine holds them as Polars categoricals, a quarter of the memory of text.
CATEGORICAL_COLUMNS = frozenset(
    {
        "event",
        "channel",
        "purpose",
        "trigger",
        "offer",
        "campaign",
        "source",
        "outcome",
        "flags",
        "timezone",
        "country",
        "subdivision",
        # Not few: a visit's id is on a handful of rows. But the kernel reads it only to
        # tell visits apart, which the categorical's codes do as they are; ranking the
        # text in every chunk instead took ~8% of the fold's time.
        "session_id",
    }
)

#: The verdict columns every engine returns, one row per logged contact and policy.
VERDICT_COLUMNS: dict[str, str] = {
    "run": "int64",  # 0: --policy, 1: --compare
    "row": "int64",
    "customer_id": "string",
    "at_us": "int64",
    "channel": "string",
    "purpose": "string",
    "source": "string",
    "campaign": "string",
    "trigger": "string",
    "offer": "string",
    "outcome": "string",
    "verdict": "string",
    "not_before_us": "int64",
    "rules": "string",  # ";"-separated ids of the rules that held it back
    "reasons": "string",  # JSON: [{rule, kind, message, until}]
    "flags": "string",  # ";"-separated ids of rules that flagged it
    "outcome_observed": "bool",
    "pressure_logged": "float64",
    "pressure_replayed": "float64",
}


def to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def to_us(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(p.strip() for p in value.split(";") if p.strip())


def _json_object(value: str | None) -> dict[str, Any]:
    if not value or value == "{}":
        return {}
    data = json.loads(value)
    return {k: v for k, v in data.items() if v is not None}


def event_properties(text: str | None, session_id: str | None) -> dict[str, Any]:
    """An event's properties from its timeline row: the JSON object in `properties`, or,
    where that is null and the row has a `session_id`, that id, its only property (the
    loader writes no JSON for such events: 7.7M events, ~1.3 CPU-seconds and ~0.4 GB)."""
    if text is None and session_id is not None:
        return {"session_id": session_id}
    return _json_object(text)


def profile_at(columns: Mapping[str, Sequence[Any]], i: int) -> CustomerProfile:
    """The profile carried by row `i` (UTC and nothing else when none was given)."""
    return CustomerProfile(
        columns["customer_id"][i],
        timezone=columns["timezone"][i] or None,
        country=columns["country"][i] or None,
        subdivision=columns["subdivision"][i] or None,
        phones=_split(columns["phones"][i]),
    )


def items_of(columns: Mapping[str, Sequence[Any]], start: int, end: int) -> list[Item]:
    """Rows [start, end) as events and logged contacts."""
    c = columns
    cid, at_us, is_contact, row = c["customer_id"], c["at_us"], c["is_contact"], c["row"]
    event, event_id, properties = c["event"], c["event_id"], c["properties"]
    sessions = c["session_id"]
    channel, purpose, trigger, trigger_at = (
        c["channel"],
        c["purpose"],
        c["trigger"],
        c["trigger_at_us"],
    )
    offer, campaign, source, outcome = c["offer"], c["campaign"], c["source"], c["outcome"]
    subject, body, flags, discount = c["subject"], c["body"], c["flags"], c["discount"]
    priority, tags = c["priority"], c["tags"]
    items: list[Item] = []
    append = items.append
    # A visit's events carry the same properties: each text is decoded once (the events
    # share the mapping, which nothing changes).
    decoded: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for i in range(start, end):
        if not is_contact[i]:
            key = (properties[i], sessions[i] if properties[i] is None else None)
            props = decoded.get(key)
            if props is None:
                props = decoded[key] = event_properties(*key)
            # Epoch seconds as `datetime.timestamp` gives them: microseconds / 10**6,
            # rounded once.
            append(LedgerEvent(at_us[i] / 1_000_000, event[i], event_id[i], props))
            continue
        at_ = EPOCH + timedelta(microseconds=at_us[i])
        trig = None
        if trigger[i]:
            t_at = trigger_at[i]
            trig = Trigger(trigger[i], None if t_at is None else to_datetime(t_at))
        content = None
        if subject[i] or body[i] or flags[i] or discount[i]:
            content = Content(subject[i], body[i], bool(discount[i]), _split(flags[i]))
        proposal = ContactProposal(
            cid[i],
            channel[i],
            purpose[i],
            at=at_,
            trigger=trig,
            offer=offer[i],
            campaign=campaign[i],
            source=source[i],
            priority=priority[i] or 0,
            content=content,
            tags=_json_object(tags[i]) if tags[i] else {},
        )
        append(LoggedContact(row[i], proposal, outcome[i]))
    return items


def customer_runs(customer_ids: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) of each customer's rows in a timeline sorted by customer."""
    runs: list[tuple[int, int]] = []
    start = 0
    n = len(customer_ids)
    for i in range(1, n + 1):
        if i == n or customer_ids[i] != customer_ids[start]:
            runs.append((start, i))
            start = i
    return runs


def empty_verdicts() -> dict[str, list[Any]]:
    return {name: [] for name in VERDICT_COLUMNS}


#: Verdict columns that are the contact's own timeline columns, copied from its row.
COPIED_COLUMNS = (
    "row",
    "customer_id",
    "at_us",
    "channel",
    "purpose",
    "source",
    "campaign",
    "trigger",
    "offer",
    "outcome",
)

#: Verdict text columns of few distinct values (the copied text, the verdict and the rules
#: held and flagged; all but the reasons): the local engine's verdicts hold them as
#: Polars categoricals, and their Parquet as dictionaries (2.5M verdicts written in 1.1
#: CPU-seconds instead of 1.7; Polars reads them back as categoricals, Arrow as
#: dictionaries, Spark and CSV readers as text).
VERDICT_CATEGORICAL = frozenset({*COPIED_COLUMNS, "verdict", "rules", "flags"} - {"row", "at_us"})


def add_verdicts(
    out: dict[str, list[Any]],
    run: int,
    verdicts: Sequence[ReplayVerdict],
    rendered: dict[tuple[Reason, ...], str] | None = None,
) -> None:
    """Append what the policy answered (the columns not in `COPIED_COLUMNS`) as plain
    column values. `rendered` memoises the JSON of reasons across calls (many contacts are
    held back for the same reasons)."""
    if rendered is None:
        rendered = {}
    runs = out["run"].append
    verdict_values, not_befores = out["verdict"].append, out["not_before_us"].append
    rules, reasons, flags = out["rules"].append, out["reasons"].append, out["flags"].append
    observed = out["outcome_observed"].append
    logged, replayed = out["pressure_logged"].append, out["pressure_replayed"].append
    for v in verdicts:
        d = v.decision
        runs(run)
        verdict_values(d.verdict.value)
        not_befores(to_us(d.not_before) if d.not_before else None)
        held_by = d.reasons
        if held_by:
            rules(";".join([r.rule for r in held_by]))
            text = rendered.get(held_by)
            if text is None:
                text = rendered[held_by] = json.dumps(
                    [r.as_dict() for r in held_by], ensure_ascii=False
                )
            reasons(text)
        else:
            rules(None)
            reasons(None)
        flags(";".join([r.rule for r in d.flags]) if d.flags else None)
        observed(v.outcome_observed)
        logged(v.pressure_logged)
        replayed(v.pressure_replayed)


def fold_columns(
    columns: Mapping[str, Sequence[Any]], policies: Sequence[Policy]
) -> dict[str, list[Any]]:
    """Fold every customer in a timeline slice (sorted by customer, then time) through each
    policy; the verdicts as columns (see `VERDICT_COLUMNS`)."""
    out = empty_verdicts()
    rendered: dict[tuple[Reason, ...], str] = {}
    is_contact = columns["is_contact"]
    #: The timeline row of each verdict, in order.
    positions: list[int] = []
    for start, end in customer_runs(columns["customer_id"]):
        profile = profile_at(columns, start)
        items = items_of(columns, start, end)
        contacts = [i for i in range(start, end) if is_contact[i]]
        for run, policy in enumerate(policies):
            add_verdicts(out, run, fold(profile, items, policy), rendered)
            positions += contacts
    for name in COPIED_COLUMNS:
        column = columns[name]
        if name == "trigger":
            # As `items_of` reads it: an empty trigger is none.
            out[name] = [column[i] or None for i in positions]
        else:
            out[name] = [column[i] for i in positions]
    return out
