"""A policy: a named, versioned list of rules, loaded from YAML, composable by `extends`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from tactful.durations import parse_duration
from tactful.model import DEFAULT_WEIGHT, PolicyRef
from tactful.policy.errors import PolicyError
from tactful.policy.source import dotted, line_of, load_yaml
from tactful.rules import KINDS, Rule
from tactful.rules.base import Mode

if TYPE_CHECKING:
    from tactful.rules.base import Context

#: The longest policy name and version the audit log keeps with each decision.
NAME_MAX = 255
VERSION_MAX = 64
TOP_KEYS = ("name", "version", "description", "extends", "weights", "horizon", "disable", "rules")
#: How far ahead a defer may reach before the engine calls it a deny.
DEFAULT_HORIZON = 400 * 86400.0


#: Bound on the proposal shapes a policy keeps plans for (campaign ids are an open set).
PLAN_CACHE_SIZE = 4096


_plan_ids = itertools.count(1)


class PlanStep(NamedTuple):
    """One rule as the engine runs it for a proposal of a given shape: the rule, its
    `check`, its mode, and what is left to ask per decision (both depend on the customer):
    whether a request of theirs waives it, and the regions it is limited to."""

    rule: Rule
    check: Callable[[Context, float], float]
    mode: Mode
    waived: bool
    regions: tuple[str, ...]


class Plan:
    """The rules a policy applies to proposals of one shape (channel, purpose, source,
    campaign, trigger, content flags), in policy order. `uid` names it in the memos of
    customer states; `fields` are the other proposal fields its rules' thresholds read."""

    __slots__ = ("asking", "fields", "regional", "steps", "uid")

    def __init__(self, steps: tuple[PlanStep, ...]) -> None:
        self.steps = steps
        self.uid = next(_plan_ids)
        fields: list[str] = []
        for step in steps:
            fields += [f for f in step.rule.threshold_fields() if f not in fields]
        self.fields = tuple(fields)
        #: Whether a rule is limited to regions (then which apply depends on the customer).
        self.regional = any(step.regions for step in steps)
        #: The engine's steps for this plan with every rule asked (no thresholds), where
        #: they are the same for every customer (see `tactful.engine.steps`).
        self.asking: Any = None


def pack_names() -> list[str]:
    """Names of the policy packs shipped inside the package."""
    folder = resources.files("tactful.policy") / "packs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def pack_text(name: str) -> str:
    return (resources.files("tactful.policy") / "packs" / f"{name}.yaml").read_text("utf-8")


class Policy:
    """A validated policy ready for the engine. Build it with `Policy.load` or `from_text`."""

    def __init__(
        self,
        name: str,
        version: str,
        rules: Iterable[Rule],
        *,
        weights: Mapping[str, float] | None = None,
        horizon: float = DEFAULT_HORIZON,
        description: str = "",
        extends: tuple[str, ...] = (),
        file: str = "<policy>",
        text: str = "",
    ) -> None:
        self.name = name
        self.version = version
        #: What a decision names the policy by.
        self.ref = PolicyRef(name, version)
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.weights: dict[str, float] = dict(weights or {})
        self.horizon = horizon
        self.description = description
        self.extends = extends
        self.file = file
        self.text = text
        self._by_target: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self._plans_by_rules: dict[tuple[Any, ...], Plan] = {}

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, version={self.version!r}, rules={len(self.rules)})"

    def weight(self, channel: str) -> float:
        return self.weights.get(channel, DEFAULT_WEIGHT)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def rules_for(self, channel: str, purpose: str) -> tuple[Rule, ...]:
        """Rules whose channel and purpose scope admit this pair (cached; the hot path)."""
        key = (channel, purpose)
        hit = self._by_target.get(key)
        if hit is None:
            hit = tuple(
                r
                for r in self.rules
                if (not r.scope.channels or channel in r.scope.channels)
                and (not r.scope.purposes or purpose in r.scope.purposes)
                and purpose not in r.exempt
            )
            self._by_target[key] = hit
        return hit

    def plan(
        self,
        channel: str,
        purpose: str,
        source: str | None,
        campaign: str | None,
        trigger: str | None,
        flags: tuple[str, ...],
    ) -> Plan:
        """The rules whose scope admits a proposal of this shape, in policy order, ready to
        run (cached per shape). Scope matching is pure, so it is done once per shape; what
        depends on the customer, regions and requested contacts, is left to each decision
        (together they are `Rule.applies`)."""
        key = (channel, purpose, source, campaign, trigger, flags)
        hit = self._plans.get(key)
        if hit is None:
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()
                self._plans_by_rules.clear()
            rules = tuple(
                r
                for r in self.rules_for(channel, purpose)
                if r.scope.matches(channel, purpose, source, campaign, trigger, flags, r.exempt)
            )
            # Shapes that differ only in source or campaign and meet the same rules share
            # one plan (a campaign no rule names is one more shape, not one more plan),
            # and so the memos states keep per plan. Rules read the channel, purpose,
            # trigger and flags themselves; source and campaign only through their scope
            # and `per` keys (`Plan.fields`). The policy holds its rules: ids stay theirs.
            same = (channel, purpose, trigger, flags, *map(id, rules))
            hit = self._plans_by_rules.get(same)
            if hit is None:
                hit = self._plans_by_rules[same] = Plan(
                    tuple(
                        PlanStep(r, r.check, r.effective_mode, r.waived_on_request, r.scope.regions)
                        for r in rules
                    )
                )
            self._plans[key] = hit
        return hit

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, ref: str | Path) -> Policy:
        """A shipped pack by name (`courtesy`), or a YAML file by path."""
        text, file = read_policy(ref)
        return cls.from_text(text, file)

    @classmethod
    def from_text(cls, text: str, file: str = "<policy>") -> Policy:
        return _compile(text, file, seen=())


def read_policy(ref: str | Path) -> tuple[str, str]:
    """The text and display name of a policy reference (pack name or file path)."""
    if isinstance(ref, str) and ref in pack_names():
        return pack_text(ref), f"{ref}.yaml (pack)"
    path = Path(ref)
    try:
        return path.read_text("utf-8"), str(path)
    except FileNotFoundError:
        packs = ", ".join(pack_names())
        raise PolicyError(
            str(path), [(None, "", f"no such file, and no pack of that name (packs: {packs})")]
        ) from None
    except OSError as exc:
        raise PolicyError(str(path), [(None, "", f"cannot read: {exc.strerror}")]) from exc


def _resolve_parent(ref: str, child_file: str) -> tuple[str, str]:
    if ref in pack_names():
        return pack_text(ref), f"{ref}.yaml (pack)"
    base = Path(child_file).parent if not child_file.startswith("<") else Path.cwd()
    return read_policy(base / ref)


def _compile(text: str, file: str, seen: tuple[str, ...]) -> Policy:
    data, lines = load_yaml(text, file)
    problems: list[tuple[int | None, str, str]] = []

    def problem(path: tuple[str | int, ...], message: str) -> None:
        problems.append((line_of(lines, path), dotted(path), message))

    if not isinstance(data, dict):
        raise PolicyError(file, [(1, "", "a policy is a mapping with `name`, `version`, `rules`")])
    for key in data:
        if key not in TOP_KEYS:
            problem((key,), f"unknown key (expected one of: {', '.join(TOP_KEYS)})")

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problem(("name",), "required: the policy's name")
    elif len(name) > NAME_MAX:
        problem(("name",), f"at most {NAME_MAX} characters")
    version = data.get("version")
    if version is None or isinstance(version, bool | list | dict):
        problem(("version",), "required: a version such as '1' or '2026-11-23'")
    elif len(str(version)) > VERSION_MAX:
        problem(("version",), f"at most {VERSION_MAX} characters")

    # Parents first: their rules, then ours (same id replaces, `disable` removes).
    extends_raw = data.get("extends") or []
    if isinstance(extends_raw, str):
        extends_raw = [extends_raw]
    if not isinstance(extends_raw, list):
        problem(("extends",), "a list of pack names or file paths")
        extends_raw = []
    rules: dict[str, Rule] = {}
    weights: dict[str, float] = {}
    horizon = DEFAULT_HORIZON
    for i, parent_ref in enumerate(extends_raw):
        parent_ref = str(parent_ref)
        if parent_ref in seen:
            problem(("extends", i), f"circular extends: {' -> '.join((*seen, parent_ref))}")
            continue
        try:
            ptext, pfile = _resolve_parent(parent_ref, file)
            parent = _compile(ptext, pfile, (*seen, parent_ref))
        except PolicyError as exc:
            if exc.file == parent_ref or "no such file" in str(exc):
                problem(("extends", i), f"cannot load {parent_ref!r}: {exc.problems[0][2]}")
                continue
            raise
        for r in parent.rules:
            rules[r.id] = r
        weights.update(parent.weights)
        horizon = parent.horizon

    raw_weights = data.get("weights") or {}
    if not isinstance(raw_weights, dict):
        problem(("weights",), "a mapping of channel to weight, e.g. {call: 5, email: 1}")
    else:
        for channel, w in raw_weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
                problem(("weights", channel), "a weight is a number >= 0")
            else:
                weights[str(channel)] = float(w)

    if "horizon" in data:
        try:
            horizon = parse_duration(data["horizon"])
        except ValueError as exc:
            problem(("horizon",), str(exc))

    disable = data.get("disable") or []
    if not isinstance(disable, list):
        problem(("disable",), "a list of rule ids to drop from the packs this extends")
        disable = []
    for i, rid in enumerate(disable):
        if rules.pop(str(rid), None) is None:
            problem(("disable", i), f"no inherited rule with id {rid!r}")

    raw_rules = data.get("rules")
    if raw_rules is None and not extends_raw:
        problem(("rules",), "required: a list of rules")
    elif raw_rules is not None and not isinstance(raw_rules, list):
        problem(("rules",), "a list of rules, each with `id`, `kind` and `message`")
    own_ids: set[str] = set()
    for i, raw in enumerate(raw_rules or []):
        rule = _compile_rule(raw, ("rules", i), problem)
        if rule is None:
            continue
        if rule.id in own_ids:
            problem(("rules", i, "id"), f"duplicate rule id {rule.id!r}")
            continue
        own_ids.add(rule.id)
        rules[rule.id] = rule

    if problems:
        raise PolicyError(file, problems)
    assert isinstance(name, str)
    return Policy(
        name=name.strip(),
        version=str(version),
        rules=rules.values(),
        weights=weights,
        horizon=horizon,
        description=str(data.get("description") or ""),
        extends=tuple(str(e) for e in extends_raw),
        file=file,
        text=text,
    )


def _compile_rule(raw: Any, path: tuple[str | int, ...], problem: Any) -> Rule | None:
    if not isinstance(raw, dict):
        problem(path, "a rule is a mapping with `id`, `kind`, `message` and its parameters")
        return None
    kind = raw.get("kind")
    if kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        if kind is None:
            problem((*path, "kind"), f"required: one of {known}")
        else:
            problem((*path, "kind"), f"unknown rule kind {kind!r} (known: {known})")
        return None
    try:
        return KINDS[kind].model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(
                x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function"))
            )
            field_path = (*path, *loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(KINDS[kind].model_fields))
                msg = f"unknown field for a {kind} rule (allowed: {allowed})"
            elif err["type"] == "missing":
                msg = "required"
            problem(field_path, msg)
        return None
