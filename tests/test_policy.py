"""The policy loader: errors that name file, line and field; `extends`, overrides, `disable`."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from tactful import Policy, PolicyError
from tactful.policy import pack_names
from tactful.rules.cap import CapRule
from tactful.rules.gap import GapRule


def load_error(text: str, file: str = "team.yaml") -> PolicyError:
    with pytest.raises(PolicyError) as info:
        Policy.from_text(dedent(text), file)
    return info.value


def only(err: PolicyError) -> tuple[int | None, str, str]:
    assert len(err.problems) == 1, err.problems
    return err.problems[0]


# -- errors say where -------------------------------------------------------------------------


def test_unknown_kind() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: nice
            kind: politeness
            message: be nice
    """)
    line, field, message = only(err)
    assert (line, field) == (5, "rules[0].kind")
    assert "unknown rule kind 'politeness'" in message and "cap" in message
    assert str(err).startswith("team.yaml:5: rules[0].kind: unknown rule kind")
    assert err.as_list()[0] == {
        "file": "team.yaml",
        "line": 5,
        "field": "rules[0].kind",
        "message": message,
    }


def test_missing_kind() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: nice
            message: be nice
    """)
    assert only(err)[:2] == (4, "rules[0].kind")


def test_missing_message_points_at_the_rule() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: ok
            kind: gap
            gap: 1h
            message: fine
          - id: quiet
            kind: gap
            gap: 1h
    """)
    assert only(err) == (8, "rules[1].message", "required")


def test_bad_duration() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: weekly
            kind: cap
            count: 3
            window: 7 parsecs
            message: three a week
    """)
    line, field, message = only(err)
    assert (line, field) == (7, "rules[0].window")
    assert "not a duration: '7 parsecs'" in message


def test_unknown_per_key() -> None:
    # A typo in `per` used to load and then fail at every decision the rule applied to.
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: weekly
            kind: cap
            count: 3
            window: 7d
            per: [offerr]
            message: three a week per offer
    """)
    line, field, message = only(err)
    assert (line, field) == (8, "rules[0].per")
    assert "unknown key 'offerr'" in message and "tags.NAME" in message
    assert Policy.from_text(
        "name: t\nversion: 1\nrules:\n  - {id: a, kind: cap, count: 1, window: 1d,"
        " per: [offer, tags.account], message: m}\n"
    ).rules[0].per == ("offer", "tags.account")


def test_bad_schedule() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: hours
            kind: hours
            message: office hours
            schedule:
              mon-fri: "9am-5pm"
    """)
    line, field, message = only(err)
    assert (line, field) == (8, "rules[0].schedule")
    assert "'9am-5pm'" in message


def test_unknown_field() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: gap
            kind: gap
            gap: 1h
            message: an hour
            colour: red
    """)
    line, field, message = only(err)
    assert (line, field) == (8, "rules[0].colour")
    assert message.startswith("unknown field for a gap rule (allowed: ")


def test_unknown_scope_field() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: gap
            kind: gap
            gap: 1h
            message: an hour
            scope:
              channels: [call]
              teams: [sales]
    """)
    assert only(err)[:2] == (10, "rules[0].scope.teams")


def test_unknown_top_level_key() -> None:
    err = load_error("""\
        name: team
        version: 1
        owner: ops
        rules: []
    """)
    assert only(err)[:2] == (3, "owner")


def test_duplicate_key() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: gap
            kind: gap
            gap: 1h
            message: an hour
            gap: 2h
    """)
    assert only(err) == (8, "rules[0].gap", "duplicate key")


def test_duplicate_rule_id() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: gap
            kind: gap
            gap: 1h
            message: an hour
          - id: gap
            kind: gap
            gap: 2h
            message: two hours
    """)
    line, field, message = only(err)
    assert (line, field) == (8, "rules[1].id")
    assert message == "duplicate rule id 'gap'"


def test_bad_yaml_syntax() -> None:
    err = load_error("""\
        name: team
        version: 1
        rules:
          - id: gap
            kind: gap
            gap: [1h
            message: an hour
    """)
    line, field, message = only(err)
    # The parser notices the unclosed flow sequence where it expected `,` or `]`.
    assert (line, field) == (7, "")
    assert message.startswith("not valid YAML: ")
    assert str(err).startswith("team.yaml:7: not valid YAML")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("=\n", 1),  # YAML's `value` tag, which the safe loader cannot make
        ("name: team\nversion: 1\nrules:\n  - id: a\n    kind: !!python/object:os.system x\n", 5),
        ("name: !!binary zz\n", 1),
    ],
)
def test_values_yaml_cannot_make_are_policy_errors_with_their_line(text: str, line: int) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.from_text(text, "team.yaml")
    (problem,) = caught.value.as_list()
    assert problem["line"] == line and problem["message"].startswith("not valid YAML: ")


def test_several_problems_are_all_reported() -> None:
    err = load_error("""\
        name: team
        rules:
          - id: a
            kind: cap
            count: 0
            window: 7d
            message: none
          - id: b
            kind: gap
            gap: soon
            message: soon
    """)
    fields = [p[1] for p in err.problems]
    assert fields == ["version", "rules[0].count", "rules[1].gap"]
    assert [p[0] for p in err.problems] == [1, 5, 10]


def test_not_a_mapping_and_missing_name() -> None:
    assert only(load_error("- just\n- a list\n"))[0] == 1
    err = load_error("""\
        version: 1
        rules: []
    """)
    assert only(err)[1] == "name"


def test_bad_weights_and_horizon() -> None:
    err = load_error("""\
        name: team
        version: 1
        horizon: forever
        weights: {call: -1, email: 1}
        rules: []
    """)
    assert [(p[0], p[1]) for p in err.problems] == [(4, "weights.call"), (3, "horizon")]


def test_disable_of_an_unknown_id() -> None:
    err = load_error("""\
        name: team
        version: 1
        extends: [courtesy]
        disable:
          - snooze
          - no-such-rule
    """)
    line, field, message = only(err)
    assert (line, field) == (6, "disable[1]")
    assert message == "no inherited rule with id 'no-such-rule'"


def test_unknown_extends() -> None:
    err = load_error("""\
        name: team
        version: 1
        extends:
          - courtesy
          - politeness
    """)
    line, field, message = only(err)
    assert (line, field) == (5, "extends[1]")
    assert "cannot load 'politeness'" in message and "courtesy" in message


def test_circular_extends(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nversion: 1\nextends: [b.yaml]\nrules: []\n")
    (tmp_path / "b.yaml").write_text(
        "name: b\nversion: 1\n# b builds on a\nextends:\n  - a.yaml\nrules: []\n"
    )
    with pytest.raises(PolicyError) as info:
        Policy.load(tmp_path / "a.yaml")
    err = info.value
    line, field, message = only(err)
    assert message.startswith("circular extends: ")
    assert "a.yaml" in message and "b.yaml" in message
    # Reported in the file whose `extends` closes the loop, on that line.
    assert (err.file, line, field) == (str(tmp_path / "a.yaml"), 3, "extends[0]")


def test_self_extends(tmp_path: Path) -> None:
    (tmp_path / "me.yaml").write_text("name: me\nversion: 1\nextends: [me.yaml]\n")
    with pytest.raises(PolicyError) as info:
        Policy.load(tmp_path / "me.yaml")
    assert info.value.line == 3 and "circular extends" in str(info.value)


def test_an_error_in_a_parent_file_names_the_parent(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: base\nversion: 1\nrules:\n"
        "  - id: g\n    kind: gap\n    gap: 1 fortnight\n    message: m\n"
    )
    (tmp_path / "team.yaml").write_text("name: team\nversion: 1\nextends: [base.yaml]\n")
    with pytest.raises(PolicyError) as info:
        Policy.load(tmp_path / "team.yaml")
    assert info.value.file == str(tmp_path / "base.yaml")
    assert only(info.value)[:2] == (6, "rules[0].gap")


def test_missing_file() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.load("/nonexistent/policy.yaml")
    assert "no such file" in str(info.value)


# -- composing ---------------------------------------------------------------------------------


def test_extends_courtesy_with_an_override_by_id_and_a_disable() -> None:
    base = Policy.load("courtesy")
    team = Policy.from_text(
        dedent("""\
            name: team
            version: 2026-11
            extends: [courtesy]
            disable: [pressure, snooze]
            weights: {call: 8}
            rules:
              - id: sales-call-cap
                kind: cap
                scope: {channels: [call], purposes: [sales]}
                count: 2
                window: 14d
                message: Two sales calls a fortnight.
              - id: team-email-gap
                kind: gap
                scope: {channels: [email]}
                gap: 3d
                message: Emails three days apart.
        """),
        "team.yaml",
    )
    ids = [r.id for r in team.rules]
    base_ids = [r.id for r in base.rules]
    assert ids == [i for i in base_ids if i not in ("pressure", "snooze")] + ["team-email-gap"]
    cap = team.rule("sales-call-cap")
    assert isinstance(cap, CapRule) and (cap.count, cap.window) == (2, 14 * 86400.0)
    # The override keeps its place in the parent's order.
    assert ids.index("sales-call-cap") == base_ids.index("sales-call-cap")
    assert isinstance(team.rule("team-email-gap"), GapRule)
    with pytest.raises(KeyError):
        team.rule("pressure")
    assert team.weight("call") == 8.0 and team.weight("sms") == 3.0
    assert team.horizon == base.horizon
    assert (team.name, team.version, team.extends) == ("team", "2026-11", ("courtesy",))
    # The pack itself is untouched.
    base_cap = Policy.load("courtesy").rule("sales-call-cap")
    assert isinstance(base_cap, CapRule) and base_cap.count == 3


def test_extends_a_sibling_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: base\nversion: 1\nhorizon: 30d\nrules:\n"
        "  - id: g\n    kind: gap\n    gap: 1h\n    message: m\n"
    )
    (tmp_path / "team.yaml").write_text("name: team\nversion: 1\nextends: base.yaml\n")
    team = Policy.load(tmp_path / "team.yaml")
    assert [r.id for r in team.rules] == ["g"] and team.horizon == 30 * 86400.0


def test_rules_are_required_without_extends() -> None:
    err = load_error("name: team\nversion: 1\n")
    assert only(err)[1] == "rules"


def test_the_courtesy_pack_loads() -> None:
    assert "courtesy" in pack_names()
    courtesy = Policy.load("courtesy")
    assert (courtesy.name, courtesy.version) == ("courtesy", "1")
    assert courtesy.horizon == 400 * 86400.0


def test_rules_for_filters_by_channel_purpose_and_exemptions() -> None:
    courtesy = Policy.load("courtesy")
    ids = {r.id for r in courtesy.rules_for("email", "transactional")}
    assert "opt-out" in ids and "marketing-email-cap" not in ids and "pressure" not in ids
    call_ids = {r.id for r in courtesy.rules_for("call", "transactional")}
    assert "calling-hours" in call_ids
