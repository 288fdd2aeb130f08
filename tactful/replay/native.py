"""Replay in machine code, for the policies `tactful.replay.kernel` covers.

`fold_frame` gives exactly the verdicts `timeline.fold_columns` gives (the same columns,
reasons worded alike, pressures to the last bit), for a timeline slice and one policy whose
rules are all of a kind the kernel restates: caps over a rolling window, gaps and pressure
(`unsupported` says why a policy is not). The local engine uses it for such a policy
unless `TACTFUL_REPLAY_NATIVE=0`; any other policy is folded by the engine itself.

Here the slice becomes arrays: each contact's shape (the fields a rule's scope and `per`
keys read) as a code, and per shape the rules of its plan, the customer having asked for
the contact or not. Scopes, plans and keys are worked out by the policy's own code, once per
shape. After the kernel, the reasons are worded here, by each rule's message.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from tactful.engine import _Placeholders
from tactful.model import REQUESTED_TRIGGERS, UNANSWERED_OUTCOMES, ContactProposal
from tactful.policy.document import Policy
from tactful.replay import kernel
from tactful.replay.timeline import COPIED_COLUMNS, _split
from tactful.rules.base import Rule, contact_key
from tactful.rules.cap import CapRule
from tactful.rules.gap import GapRule
from tactful.rules.pressure import PressureRule
from tactful.state import LedgerContact

#: Set to 0 to fold every policy through the engine itself.
NATIVE_ENV = "TACTFUL_REPLAY_NATIVE"

KINDS: dict[type[Rule], int] = {
    CapRule: kernel.CAP,
    GapRule: kernel.GAP,
    PressureRule: kernel.PRESSURE,
}
_MODES = {"defer": kernel.DEFER, "deny": kernel.DENY, "flag": kernel.FLAG}
_VERDICTS = ("allow", "defer", "deny")
#: A contact's shape: what scopes, plans and `per` keys read.
SHAPE_COLUMNS = ("channel", "purpose", "source", "campaign", "trigger", "flags", "offer")
#: The timeline columns `fold_frame` reads: a worker is sent these alone.
COLUMNS = tuple(
    dict.fromkeys(
        ("customer_id", "at_us", "is_contact", "row", "event", *SHAPE_COLUMNS, *COPIED_COLUMNS)
    )
)
_REQUESTS = tuple(sorted(REQUESTED_TRIGGERS))
_UNANSWERED = tuple(str(o) for o in UNANSWERED_OUTCOMES)


def unsupported(policy: Policy) -> list[str]:
    """Why the kernel cannot replay `policy` (nothing: it can)."""
    why = []
    if sys.version_info >= (3, 12):
        # Its sum() of floats compensates rounding; the kernel adds as 3.11 does.
        why.append("Python 3.12 and later sum floats otherwise than the kernel")
    for rule in policy.rules:
        if type(rule) not in KINDS:
            why.append(f"rule {rule.id!r}: kind {rule.kind!r}")
        elif rule.scope.regions:
            why.append(f"rule {rule.id!r}: regions")
        elif isinstance(rule, CapRule) and not isinstance(rule.window, float):
            why.append(f"rule {rule.id!r}: a {rule.window} window")
        elif any(f.startswith("tags.") for f in getattr(rule, "per", ())):
            why.append(f"rule {rule.id!r}: per tag")
    return why


def enabled(policy: Policy) -> bool:
    """Whether the local engine replays `policy` natively."""
    return os.environ.get(NATIVE_ENV, "1") != "0" and not unsupported(policy)


def path_taken(policy: Policy) -> str:
    """How the local engine replays `policy`, in words for the replay's summary."""
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return f"folded by the engine ({NATIVE_ENV}=0)"
    why = unsupported(policy)
    if not why:
        return "folded by the replay kernel"
    more = f", and {len(why) - 3} more" if len(why) > 3 else ""
    return f"folded by the engine; the replay kernel does not cover {'; '.join(why[:3])}{more}"


class _Codes(dict[Any, int]):
    def code(self, value: Any) -> int:
        found = self.get(value)
        if found is None:
            found = self[value] = len(self)
        return found


def _shapes(frame: pl.DataFrame) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Per row, the code of its contact's shape (-1: an event); the shapes' values."""
    contacts = frame.select(*SHAPE_COLUMNS, "is_contact").with_row_index("i")
    contacts = contacts.filter(pl.col("is_contact")).drop("is_contact")
    distinct = contacts.select(SHAPE_COLUMNS).unique(maintain_order=True)
    coded = contacts.join(
        distinct.with_row_index("shape"),
        on=list(SHAPE_COLUMNS),
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    shape = np.full(frame.height, -1, dtype=np.int32)
    shape[coded.get_column("i").to_numpy()] = coded.get_column("shape").to_numpy()
    return shape, distinct.to_dicts()


def _proposal(values: dict[str, Any]) -> ContactProposal:
    """A proposal of this shape, its fields read as `timeline.items_of` reads them."""
    from tactful.model import Content, Trigger

    trigger = values["trigger"]
    flags = values["flags"]
    return ContactProposal(
        "",
        values["channel"],
        values["purpose"],
        trigger=Trigger(trigger, None) if trigger else None,
        offer=values["offer"],
        campaign=values["campaign"],
        source=values["source"],
        content=Content(None, None, False, _split(flags)) if flags else None,
    )


class Prepared:
    """A policy and a slice's shapes as the kernel's tables."""

    def __init__(self, policy: Policy, shapes: list[dict[str, Any]]) -> None:
        rules = list(policy.rules)
        index = {id(r): i for i, r in enumerate(rules)}
        n_rules, n_shapes = len(rules), len(shapes)
        self.rules = rules
        self.rule_kind = np.array([KINDS[type(r)] for r in rules], dtype=np.int8)
        self.rule_f = np.zeros((max(n_rules, 1), 5))
        for i, r in enumerate(rules):
            if isinstance(r, CapRule):
                assert isinstance(r.window, float)
                self.rule_f[i, kernel.F_COUNT] = r.count
                self.rule_f[i, kernel.F_SPAN] = r.window
            elif isinstance(r, GapRule):
                self.rule_f[i, kernel.F_SPAN] = r.gap
            elif isinstance(r, PressureRule):
                self.rule_f[i, kernel.F_BUDGET] = r.budget
                self.rule_f[i, kernel.F_HALF_LIFE] = r.half_life
                self.rule_f[i, kernel.F_FACTOR] = r.unanswered_factor
        self.counts = np.zeros((max(n_rules, 1), max(n_shapes, 1)), dtype=np.bool_)
        self.keys = np.zeros((max(n_rules, 1), max(n_shapes, 1)), dtype=np.int32)
        self.shape_request = np.full(max(n_shapes, 1), -1, dtype=np.int32)
        self.shape_weight = np.zeros(max(n_shapes, 1))
        self.shape_asked = np.zeros(max(n_shapes, 1), dtype=np.bool_)
        offsets = [0]
        plan_rule: list[int] = []
        plan_mode: list[int] = []
        keys = [_Codes() for _ in rules]
        for s, values in enumerate(shapes):
            p = _proposal(values)
            lc = LedgerContact.sent("", p, 0.0, None)
            trigger = lc.trigger_event
            if trigger in REQUESTED_TRIGGERS:
                self.shape_request[s] = _REQUESTS.index(trigger)
                self.shape_asked[s] = True
            self.shape_weight[s] = policy.weight(p.channel)
            for i, r in enumerate(rules):
                if isinstance(r, CapRule | GapRule):
                    self.counts[i, s] = r._counting[1](lc)
                    self.keys[i, s] = keys[i].code(tuple(contact_key(lc, f) for f in r.per))
            flags = p.content.flags if p.content is not None else ()
            plan = policy.plan(p.channel, p.purpose, p.source, p.campaign, trigger, flags)
            for asked in (False, True):
                for step in plan.steps:
                    if asked and step.waived:
                        continue
                    plan_rule.append(index[id(step.rule)])
                    plan_mode.append(_MODES[step.mode])
                offsets.append(len(plan_rule))
        self.plan_off = np.array(offsets, dtype=np.int64)
        self.plan_rule = np.array(plan_rule, dtype=np.int32)
        self.plan_mode = np.array(plan_mode, dtype=np.int8)
        pressure = next((r for r in rules if isinstance(r, PressureRule)), None)
        from tactful.replay.fold import DEFAULT_HALF_LIFE, DEFAULT_UNANSWERED_FACTOR

        self.gauge_hl = pressure.half_life if pressure else DEFAULT_HALF_LIFE
        self.gauge_factor = pressure.unanswered_factor if pressure else DEFAULT_UNANSWERED_FACTOR
        self.horizon = policy.horizon
        self.horizon_message = (
            f"No time within {policy.horizon / 86400:g} days satisfies every rule."
        )


def fold_frame(frame: pl.DataFrame, policy: Policy, run: int = 0) -> pl.DataFrame:
    """`timeline.fold_columns` of a slice of whole customers for one policy the kernel
    covers, as a frame of `VERDICT_COLUMNS`."""
    from tactful.replay.local import VERDICT_SCHEMA

    n = frame.height
    ids = frame.get_column("customer_id")
    starts = np.append((ids != ids.shift(1)).fill_null(True).arg_true().to_numpy(), n)
    starts = starts.astype(np.int64)
    is_contact = frame.get_column("is_contact").to_numpy()
    shape, shapes = _shapes(frame)
    prepared = Prepared(policy, shapes)
    outcome = frame.get_column("outcome").cast(pl.String)
    unanswered = outcome.is_in(_UNANSWERED).fill_null(False).to_numpy()
    request = (
        frame.get_column("event")
        .cast(pl.String)
        .replace_strict(list(_REQUESTS), list(range(len(_REQUESTS))), default=-1)
        .fill_null(-1)
        .cast(pl.Int32)
        .to_numpy()
    )
    ts = frame.get_column("at_us").to_numpy() / 1e6
    rows = frame.get_column("row").to_numpy().astype(np.int64)
    nc = int(is_contact.sum())
    n_rules = len(prepared.rules)
    verdict = np.zeros(nc, dtype=np.int8)
    not_before = np.zeros(nc, dtype=np.int64)
    logged = np.zeros(nc)
    replayed = np.zeros(nc)
    r_off = np.zeros(nc + 1, dtype=np.int64)
    f_off = np.zeros(nc + 1, dtype=np.int64)
    room = max(nc * (n_rules + 1), 1)
    r_rule = np.zeros(room, dtype=np.int32)
    r_value = np.zeros(room)
    r_until = np.zeros(room)
    f_rule = np.zeros(max(nc * n_rules, 1), dtype=np.int32)
    p = prepared
    kernel.fold(
        starts, ts, is_contact, shape, unanswered, rows, request,
        p.shape_request, p.shape_weight, p.shape_asked,
        p.plan_off, p.plan_rule, p.plan_mode, p.rule_kind, p.rule_f, p.counts, p.keys,
        len(_REQUESTS), p.horizon, p.gauge_hl, p.gauge_factor,
        verdict, not_before, logged, replayed, r_off, r_rule, r_value, r_until, f_off, f_rule,
    )  # fmt: skip
    held, reasons = _reasons(p, r_off, r_rule, r_value, r_until)
    flagged = _flags(p, f_off, f_rule)
    contacts = frame.filter(pl.col("is_contact"))
    out: dict[str, Any] = {
        "run": pl.repeat(run, nc, dtype=pl.Int64, eager=True),
        "verdict": pl.Series(np.array(_VERDICTS)[verdict], dtype=pl.String),
        "not_before_us": pl.Series(not_before).replace(-1, None),
        "rules": held,
        "reasons": reasons,
        "flags": flagged,
        "outcome_observed": pl.Series(verdict == kernel.ALLOW)
        & contacts.get_column("outcome").is_not_null(),
        "pressure_logged": logged,
        "pressure_replayed": replayed,
    }
    for name in COPIED_COLUMNS:
        column = contacts.get_column(name)
        if name == "trigger":
            # As `items_of` reads it: an empty trigger is none.
            column = column.cast(pl.String).replace("", None)
        out[name] = column
    return pl.DataFrame(
        [pl.Series(name, out[name]).cast(dtype) for name, dtype in VERDICT_SCHEMA.items()]
    )


#: Stands for the pressure a reason shows while its message is laid out (no JSON escape).
_SHOWN = "\ue000"


def _message_parts(rule: Rule) -> list[str]:
    """The rule's message as `engine._reason` words it, JSON-escaped, cut where the
    pressure shown goes."""
    message = rule.message
    if "{" in message:
        details = {}
        if isinstance(rule, PressureRule):
            details = {"pressure": _SHOWN, "budget": rule._budget}
        message = message.format_map(_Placeholders(details))
    return json.dumps(message, ensure_ascii=False)[1:-1].split(_SHOWN)


def _lists(offsets: np.ndarray, values: pl.Series, sep: str) -> pl.Series:
    """`values[offsets[j]:offsets[j + 1]]` joined by `sep`, per j (null when none)."""
    lists = pl.from_arrow(
        pa.ListArray.from_arrays(pa.array(offsets, pa.int64()), values.to_arrow())
    )
    assert isinstance(lists, pl.Series)
    joined = lists.list.join(sep)
    return pl.select(pl.when(lists.list.len() > 0).then(joined)).to_series()


def _reasons(
    p: Prepared, r_off: np.ndarray, r_rule: np.ndarray, r_value: np.ndarray, r_until: np.ndarray
) -> tuple[pl.Series, pl.Series]:
    """The `rules` and `reasons` columns, each reason as `engine._reason` words it and
    `Reason.as_dict` lays it out, in `json.dumps`'s format."""
    n = int(r_off[-1])
    rules = p.rules
    codes = r_rule[:n].astype(np.int64)
    codes[codes == kernel.HORIZON] = len(rules)
    ids = [r.id for r in rules] + ["horizon"]
    kinds = [r.kind for r in rules] + ["horizon"]
    heads = [
        json.dumps({"rule": i, "kind": k, "message": ""}, ensure_ascii=False)[:-2]
        for i, k in zip(ids, kinds, strict=True)
    ]
    parts = [_message_parts(r) for r in rules] + [
        [json.dumps(p.horizon_message, ensure_ascii=False)[1:-1]]
    ]
    frame = pl.DataFrame({"code": codes, "until": kernel.micros_all(r_until[:n])})
    # The pressure a reason shows: `PressureRule._shown`, where its message shows one.
    values = r_value[:n]
    shown = np.full(n, None, dtype=object)
    showing = np.flatnonzero(np.array([len(x) > 1 for x in parts])[codes])
    shown[showing] = [f"{v:.1f}" for v in values[showing].tolist()]
    frame = frame.with_columns(shown=pl.Series(shown.tolist(), dtype=pl.String))
    code = pl.col("code")
    message: pl.Expr = pl.lit(None, dtype=pl.String)
    for c, pieces in enumerate(parts):
        text = pl.lit(pieces[0])
        for piece in pieces[1:]:
            text = pl.concat_str([text, pl.col("shown"), pl.lit(piece)])
        message = pl.when(code == c).then(text).otherwise(message)
    stamp = pl.col("until").cast(pl.Datetime("us", "UTC"))
    iso = pl.concat_str(
        [
            pl.lit('"'),
            stamp.dt.strftime("%Y-%m-%dT%H:%M:%S"),
            pl.when(pl.col("until") % 1_000_000 != 0)
            .then(stamp.dt.strftime("%.6f"))
            .otherwise(pl.lit("")),
            pl.lit('+00:00"'),
        ]
    )
    until = pl.when(pl.col("until") >= 0).then(iso).otherwise(pl.lit("null"))
    entries = frame.select(
        pl.concat_str(
            [
                code.replace_strict(list(range(len(heads))), heads, return_dtype=pl.String),
                message,
                pl.lit('", "until": '),
                until,
                pl.lit("}"),
            ]
        ),
        code.replace_strict(list(range(len(ids))), ids, return_dtype=pl.String).alias("id"),
    )
    offsets = r_off.astype(np.int64)
    texts = _lists(offsets, entries.to_series(0), ", ")
    texts = pl.select(
        pl.when(texts.is_not_null()).then(pl.concat_str([pl.lit("["), texts, pl.lit("]")]))
    ).to_series()
    return _lists(offsets, entries.to_series(1), ";"), texts


def _flags(p: Prepared, f_off: np.ndarray, f_rule: np.ndarray) -> pl.Series:
    n = int(f_off[-1])
    ids = pl.Series([r.id for r in p.rules], dtype=pl.String)
    return _lists(f_off.astype(np.int64), ids.gather(f_rule[:n]), ";")
