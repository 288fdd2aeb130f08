"""Packs composed with `courtesy` and with each other.

Every pack loads on its own and composes by `extends`; its rule ids carry the pack's name,
so a decision under several packs reports each pack's reasons separately, and the engine's
"earliest instant every rule allows" makes the strictest overlapping pack win.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tactful import ContactProposal, Engine, Outcome, Policy, PolicyError, Verdict
from tactful.policy import pack_names
from tests.conftest import Clock
from tests.packs._helpers import ask, customer, event, pack, past, proposal, rules_of

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
LAW_PACKS = [
    "us-tcpa",
    "us-reg-f",
    "us-fl-ftsa",
    "us-ok",
    "us-md",
    "ca-crtc",
    "fr-demarchage",
    "au-telemarketing",
]


@pytest.mark.parametrize("name", LAW_PACKS)
def test_each_pack_loads_alone_and_every_rule_cites_its_source(name: str) -> None:
    policy = Policy.load(name)
    assert name in pack_names()
    assert policy.rules
    for rule in policy.rules:
        assert rule.id.startswith(f"{name}."), rule.id
        assert rule.cite, rule.id
        assert rule.scope.regions, rule.id  # every law rule names where it applies


def test_all_packs_compose_with_courtesy_without_clashing() -> None:
    policy = pack("courtesy", *LAW_PACKS)
    ids = [r.id for r in policy.rules]
    assert len(ids) == len(set(ids))
    assert len(ids) == len(Policy.load("courtesy").rules) + sum(
        len(Policy.load(n).rules) for n in LAW_PACKS
    )


def test_reasons_from_each_pack_are_reported_separately() -> None:
    """A Florida customer at 21:30: courtesy's hours, the TCPA window and Florida's window
    each give their own reason; the decision waits for the strictest (courtesy, 09:00)."""
    policy = pack("courtesy", "us-tcpa", "us-fl-ftsa")
    st = customer(country="US", phones=("+13055550123",))
    d = ask(policy, st, proposal("call", "sales"), datetime(2026, 11, 24, 21, 30, tzinfo=NY))
    assert d.verdict is Verdict.DEFER
    assert {"calling-hours", "us-tcpa.calling-window", "us-fl-ftsa.calling-window"} <= set(
        rules_of(d)
    )
    assert d.not_before == datetime(2026, 11, 25, 9, tzinfo=NY)
    # At 20:30 the TCPA window is still open: only courtesy and Florida speak.
    d = ask(policy, st, proposal("call", "sales"), datetime(2026, 11, 24, 20, 30, tzinfo=NY))
    assert set(rules_of(d)) == {"calling-hours", "us-fl-ftsa.calling-window"}


def test_the_strictest_overlapping_pack_wins() -> None:
    """TCPA allows until 21:00, Florida until 20:00: at 20:30 the call waits for 08:00."""
    policy = pack("us-tcpa", "us-fl-ftsa")
    st = customer(country="US", phones=("+13055550123",))
    d = ask(policy, st, proposal("call", "sales"), datetime(2026, 11, 24, 20, 30, tzinfo=NY))
    assert d.not_before == datetime(2026, 11, 25, 8, tzinfo=NY)
    assert rules_of(d) == ["us-fl-ftsa.calling-window"]


def test_an_unknown_zone_takes_candidates_from_the_phone_and_every_state_pack_that_may_apply() -> (
    None
):
    """No profile zone or state: numbers in Florida and Maryland make both states' packs
    apply; their caps count separately and the stricter holds."""
    policy = pack("us-tcpa", "us-fl-ftsa", "us-md")
    st = customer(phones=("+13055550123", "+14105550123"))
    d = ask(policy, st, proposal("sms", "marketing"), datetime(2026, 11, 24, 20, 15, tzinfo=NY))
    assert set(rules_of(d)) == {"us-fl-ftsa.calling-window", "us-md.calling-window"}


def test_us_and_canadian_numbers_bring_both_regimes() -> None:
    """A customer with a New York and a Toronto number: Saturday 09:30 suits the TCPA but
    not the CRTC's weekend hours (from 10:00)."""
    policy = pack("us-tcpa", "ca-crtc")
    st = customer(phones=("+12125550123", "+14169672222"))
    d = ask(policy, st, proposal(), datetime(2026, 11, 28, 9, 30, tzinfo=NY))
    assert rules_of(d) == ["ca-crtc.calling-hours"]
    assert d.not_before == datetime(2026, 11, 28, 10, tzinfo=NY)


def test_courtesy_and_reg_f_compose_for_collections() -> None:
    """A collection call at 07:00: courtesy's calling hours and Reg F both speak; a
    collection email at 07:00 only Reg F (courtesy's hours are for calls and texts)."""
    policy = pack("courtesy", "us-reg-f")
    st = customer(tz="America/New_York", country="US")
    seven = datetime(2026, 11, 24, 7, tzinfo=NY)
    d = ask(policy, st, proposal("call", "collections", tags={"account": "A"}), seven)
    assert set(rules_of(d)) == {"calling-hours", "us-reg-f.inconvenient-time"}
    assert d.not_before == datetime(2026, 11, 24, 9, tzinfo=NY)
    d = ask(policy, st, proposal("email", "collections", tags={"account": "A"}), seven)
    assert rules_of(d) == ["us-reg-f.inconvenient-time"]
    assert d.not_before == datetime(2026, 11, 24, 8, 1, tzinfo=NY)


def test_courtesy_and_the_french_decree() -> None:
    """Courtesy allows Saturday calls; D223-9 does not. On 14 July both courtesy (the
    customer's country's holidays) and the decree close, each with its own reason."""
    policy = pack("courtesy", "fr-demarchage")
    st = customer(country="FR", phones=("+33612345678",))
    d = ask(policy, st, proposal(), datetime(2026, 11, 28, 11, tzinfo=PARIS))
    assert rules_of(d) == ["fr-demarchage.days-and-hours"]
    assert d.not_before == datetime(2026, 11, 30, 10, tzinfo=PARIS)
    d = ask(policy, st, proposal(), datetime(2026, 7, 14, 11, tzinfo=PARIS))
    assert {"calling-hours", "fr-demarchage.public-holidays"} <= set(rules_of(d))
    assert d.not_before == datetime(2026, 7, 15, 10, tzinfo=PARIS)


def test_a_policy_file_extends_packs_and_disables_a_rule(tmp_path: object) -> None:
    text = (
        "name: acme\nversion: '3'\n"
        "extends: [courtesy, us-tcpa, us-reg-f]\n"
        "disable: [us-tcpa.revocation]\n"
    )
    policy = Policy.from_text(text, "acme.yaml")
    ids = {r.id for r in policy.rules}
    assert "us-tcpa.revocation" not in ids and "us-reg-f.seven-in-seven" in ids


def test_a_bad_regulatory_rule_names_file_line_and_field() -> None:
    text = (
        "name: bad\nversion: '1'\nrules:\n"
        "  - id: x\n    kind: frequency\n    count: 3\n    message: m\n"
    )
    with pytest.raises(PolicyError) as exc:
        Policy.from_text(text, "bad.yaml")
    assert exc.value.file == "bad.yaml" and exc.value.line == 4
    assert "either `days` or `window`" in str(exc.value)


def test_reg_f_through_the_engine_with_an_injected_clock() -> None:
    """1006.14(b)(2)(i)(A) end to end: a collector calls about debt A once a day, Monday to
    Sunday, never reaching anyone; an eighth attempt on Sunday waits for Monday 08:01, while
    debt B may still be called."""
    clock = Clock(datetime(2026, 11, 9, 10, tzinfo=NY))
    engine = Engine(pack("us-tcpa", "us-reg-f"), clock=clock)
    engine.profile(customer(tz="America/New_York", country="US").profile)
    a = ContactProposal("c1", "call", "collections", tags={"account": "A"})
    for day in range(7):
        clock.set(datetime(2026, 11, 9, 10, tzinfo=NY) + timedelta(days=day))
        d = engine.decide(a)
        assert d.verdict is Verdict.ALLOW, (day, d)
        engine.sent(d.decision_id)  # type: ignore[arg-type]
        engine.outcome(d.decision_id, Outcome.NO_ANSWER)  # type: ignore[arg-type]
    clock.set(datetime(2026, 11, 15, 15, tzinfo=NY))
    d = engine.decide(a)
    assert d.verdict is Verdict.DEFER
    # The cap reopens at midnight, inside inconvenient hours: both reasons are given.
    assert rules_of(d) == ["us-reg-f.seven-in-seven", "us-reg-f.inconvenient-time"]
    assert d.not_before == datetime(2026, 11, 16, 8, 1, tzinfo=NY)
    b = ContactProposal("c1", "call", "collections", tags={"account": "B"})
    assert engine.decide(b).verdict is Verdict.ALLOW


def test_policy_show_prints_the_pack_with_its_citations() -> None:
    """`tactful policy show us-reg-f` prints each rule with its citation."""
    cli = pytest.importorskip("tactful.cli")
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, ["policy", "show", "us-reg-f"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for text in ("us-reg-f.seven-in-seven", "1006.14(b)(2)(i)(A)", "1006.6(b)(1)(i)", "US"):
        assert text in result.output


def test_state_pack_events_about_a_refusal_do_not_leak_across_regions() -> None:
    """A French refusal rule does not hold back a US customer who said "not interested"
    (courtesy's decline rules handle that)."""
    policy = pack("fr-demarchage")
    st = customer(
        tz="America/New_York",
        country="US",
        events=[event("not_interested", datetime(2026, 11, 2, 11, tzinfo=NY))],
        contacts=[past(datetime(2026, 11, 2, 11, tzinfo=NY), outcome="declined")],
    )
    d = ask(policy, st, proposal(), datetime(2026, 11, 3, 11, tzinfo=NY))
    assert d.verdict is Verdict.ALLOW
